//! Aggregation: one [`CellRecord`] per cell (what `results.jsonl`/`results.csv` hold), and per
//! prover the solved counts, pass@1 and pass@N, cost, tokens and times.
//!
//! What "solved" means (one rule, [`Outcome::of`]): the verifier verified the candidate **and**
//! every definition hole was proved equal to its official answer. A verified proof with a hole
//! that is unchecked or undecided is `hole_unchecked`; a hole proved different is `hole_wrong`
//! (the verifier also refuses it). Neither counts as solved.

use std::collections::BTreeMap;

use atp_prover::{ProofResult, Status};
use atp_verify::{HoleCheck, ViolationKind};
use serde::{Deserialize, Serialize};

use crate::store::{CellId, Store};

/// A cell's outcome in the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Verified, every definition hole equal to the official answer.
    Solved,
    /// Verified, but a definition hole is not confirmed (no answer, or Lean decided nothing).
    HoleUnchecked,
    /// A definition hole was proved different from the official answer.
    HoleWrong,
    Unverified,
    Timeout,
    Error,
    Cancelled,
    /// No result (not run yet, or killed before its result was written).
    NotRun,
}

impl Outcome {
    /// Every outcome, in table order.
    pub const ALL: [Outcome; 8] = [
        Outcome::Solved,
        Outcome::HoleUnchecked,
        Outcome::HoleWrong,
        Outcome::Unverified,
        Outcome::Timeout,
        Outcome::Error,
        Outcome::Cancelled,
        Outcome::NotRun,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Solved => "solved",
            Outcome::HoleUnchecked => "hole_unchecked",
            Outcome::HoleWrong => "hole_wrong",
            Outcome::Unverified => "unverified",
            Outcome::Timeout => "timeout",
            Outcome::Error => "error",
            Outcome::Cancelled => "cancelled",
            Outcome::NotRun => "not_run",
        }
    }

    /// The outcome of a stored result (see the module docs).
    pub fn of(r: Option<&ProofResult>) -> Outcome {
        let Some(r) = r else {
            return Outcome::NotRun;
        };
        let v = r.verification.as_ref();
        let wrong = v.is_some_and(|v| {
            v.violations
                .iter()
                .any(|x| x.kind == ViolationKind::WrongAnswer)
                || v.definition_holes
                    .iter()
                    .any(|h| h.check == HoleCheck::Wrong)
        });
        match r.status {
            Status::Verified => {
                if v.is_some_and(|v| v.holes_confirmed()) {
                    Outcome::Solved
                } else if wrong {
                    Outcome::HoleWrong
                } else {
                    Outcome::HoleUnchecked
                }
            }
            Status::Unverified if wrong => Outcome::HoleWrong,
            Status::Unverified => Outcome::Unverified,
            Status::Timeout => Outcome::Timeout,
            Status::Error => Outcome::Error,
            Status::Cancelled => Outcome::Cancelled,
        }
    }

    /// Whether the cell reached an end (it ran and was not interrupted).
    pub fn attempted(self) -> bool {
        !matches!(self, Outcome::Cancelled | Outcome::NotRun)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A definition hole as a cell record shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoleRecord {
    pub name: String,
    pub check: HoleCheck,
    pub body: Option<String>,
}

/// One cell, flattened (a line of `results.jsonl`, a row of `results.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellRecord {
    pub task: String,
    pub prover: String,
    pub attempt: u32,
    /// The lifecycle's status (`None`: no result).
    pub status: Option<Status>,
    pub outcome: Outcome,
    /// One line: the first violation or the error.
    pub reason: Option<String>,
    pub model: Option<String>,
    pub cost_usd: Option<f64>,
    pub cost_source: Option<String>,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
    pub turns: Option<u64>,
    pub tool_calls: Option<u64>,
    pub generation_s: f64,
    pub verification_s: f64,
    pub total_s: f64,
    pub holes: Vec<HoleRecord>,
    /// The cell's directory, relative to `OUT`.
    pub dir: String,
    pub run_id: Option<String>,
    pub config_hash: Option<String>,
}

impl CellRecord {
    /// The record of `id` from its stored result (if any).
    pub fn of(id: &CellId, r: Option<&ProofResult>) -> CellRecord {
        let outcome = Outcome::of(r);
        let usage = r.and_then(|r| r.usage.clone()).unwrap_or_default();
        let reason = r.and_then(|r| {
            if let Some(e) = &r.error {
                return Some(format!("{}: {}", e.kind, e.message));
            }
            let v = r.verification.as_ref()?;
            if v.verified && !v.holes_confirmed() {
                return v
                    .definition_holes
                    .iter()
                    .find(|h| h.check != HoleCheck::Equal)
                    .map(|h| {
                        format!(
                            "definition hole `{}` {}{}",
                            h.name,
                            h.check.as_str(),
                            h.note
                                .as_deref()
                                .map(|n| format!(": {n}"))
                                .unwrap_or_default()
                        )
                    });
            }
            (!v.verified).then(|| v.reason())
        });
        CellRecord {
            task: id.task.clone(),
            prover: id.prover.clone(),
            attempt: id.attempt,
            status: r.map(|r| r.status),
            outcome,
            reason,
            model: r.and_then(|r| {
                r.metadata
                    .get("model_reported")
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
                    .or_else(|| r.prover.as_ref().and_then(|p| p.model.clone()))
            }),
            cost_usd: r.and_then(|r| r.cost_usd),
            cost_source: r
                .and_then(|r| r.cost.as_ref())
                .and_then(|c| serde_json::to_value(c.source).ok())
                .and_then(|v| v.as_str().map(str::to_string)),
            input_tokens: usage.input_tokens,
            cached_input_tokens: usage.cached_input_tokens,
            output_tokens: usage.output_tokens,
            turns: usage.turns,
            tool_calls: usage.tool_calls,
            generation_s: r.map_or(0.0, |r| r.durations.generation_s),
            verification_s: r.map_or(0.0, |r| r.durations.verification_s),
            total_s: r.map_or(0.0, |r| r.durations.total_s),
            holes: r
                .and_then(|r| r.verification.as_ref())
                .map(|v| {
                    v.definition_holes
                        .iter()
                        .map(|h| HoleRecord {
                            name: h.name.clone(),
                            check: h.check,
                            body: h.body.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            dir: id.rel_dir().to_string_lossy().into_owned(),
            run_id: r.map(|r| r.run_id.clone()),
            config_hash: r.and_then(Store::stamp_of).map(|s| s.config_hash),
        }
    }
}

/// pass@k of one task with `n` attempts of which `c` solved: the probability that at least one
/// of `k` attempts drawn without replacement solves, `1 - C(n-c, k) / C(n, k)` (the unbiased
/// estimator of Chen et al., 2021). `None` when `n < k`.
pub fn pass_at_k(n: u32, c: u32, k: u32) -> Option<f64> {
    if k == 0 || n < k {
        return None;
    }
    if n - c < k {
        return Some(1.0);
    }
    let mut fail = 1.0;
    for i in (n - c + 1)..=n {
        fail *= 1.0 - k as f64 / i as f64;
    }
    Some(1.0 - fail)
}

/// Per-prover figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProverSummary {
    pub prover: String,
    /// Tasks with at least one attempt that reached an end.
    pub tasks_attempted: usize,
    /// Tasks with at least one solved attempt.
    pub tasks_solved: usize,
    /// Cells per outcome.
    pub outcomes: BTreeMap<Outcome, usize>,
    /// Mean over attempted tasks of (solved attempts / attempts).
    pub pass_at_1: Option<f64>,
    /// pass@N with N = the run's attempts (over tasks with all N attempts done).
    pub pass_at_n: Option<f64>,
    pub n: u32,
    /// Sum of the known costs.
    pub total_cost_usd: f64,
    /// Cells whose cost is unknown (unpriced model, no report).
    pub unpriced_cells: usize,
    pub median_cost_usd: Option<f64>,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
    /// Median wall time of an attempted cell.
    pub median_time_s: Option<f64>,
}

/// Summaries of `records` for `provers` (in that order) with `attempts` per task.
pub fn summarize(records: &[CellRecord], provers: &[String], attempts: u32) -> Vec<ProverSummary> {
    provers
        .iter()
        .map(|p| {
            let mine: Vec<&CellRecord> = records.iter().filter(|r| &r.prover == p).collect();
            let mut outcomes: BTreeMap<Outcome, usize> = BTreeMap::new();
            for r in &mine {
                *outcomes.entry(r.outcome).or_default() += 1;
            }
            // per task: (attempts that ended, solved)
            let mut per_task: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
            for r in &mine {
                let e = per_task.entry(r.task.as_str()).or_default();
                if r.outcome.attempted() {
                    e.0 += 1;
                    if r.outcome == Outcome::Solved {
                        e.1 += 1;
                    }
                }
            }
            let attempted: Vec<(u32, u32)> =
                per_task.values().copied().filter(|(n, _)| *n > 0).collect();
            let mean =
                |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
            let pass_at_1 = mean(
                attempted
                    .iter()
                    .map(|(n, c)| *c as f64 / *n as f64)
                    .collect(),
            );
            let pass_at_n = mean(
                attempted
                    .iter()
                    .filter_map(|(n, c)| pass_at_k(*n, *c, attempts))
                    .collect(),
            );
            let ended: Vec<&&CellRecord> = mine.iter().filter(|r| r.outcome.attempted()).collect();
            let costs: Vec<f64> = ended.iter().filter_map(|r| r.cost_usd).collect();
            let times: Vec<f64> = ended.iter().map(|r| r.total_s).collect();
            ProverSummary {
                prover: p.clone(),
                tasks_attempted: attempted.len(),
                tasks_solved: attempted.iter().filter(|(_, c)| *c > 0).count(),
                outcomes,
                pass_at_1,
                pass_at_n,
                n: attempts,
                total_cost_usd: costs.iter().sum(),
                unpriced_cells: ended.iter().filter(|r| r.cost_usd.is_none()).count(),
                median_cost_usd: crate::util::median(&costs),
                input_tokens: mine.iter().map(|r| r.input_tokens).sum(),
                cached_input_tokens: mine.iter().map(|r| r.cached_input_tokens).sum(),
                output_tokens: mine.iter().map(|r| r.output_tokens).sum(),
                median_time_s: crate::util::median(&times),
            }
        })
        .collect()
}

/// Per task and prover: (solved attempts, attempts that ended, the best outcome).
pub fn grid(records: &[CellRecord]) -> BTreeMap<(String, String), (u32, u32, Outcome)> {
    let mut g: BTreeMap<(String, String), (u32, u32, Outcome)> = BTreeMap::new();
    for r in records {
        let e = g
            .entry((r.task.clone(), r.prover.clone()))
            .or_insert((0, 0, Outcome::NotRun));
        if r.outcome.attempted() {
            e.1 += 1;
        }
        if r.outcome == Outcome::Solved {
            e.0 += 1;
        }
        if r.outcome < e.2 {
            e.2 = r.outcome;
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_at_k_is_the_unbiased_estimator() {
        assert_eq!(pass_at_k(3, 0, 1), Some(0.0));
        assert_eq!(pass_at_k(3, 3, 3), Some(1.0));
        assert!((pass_at_k(3, 1, 1).expect("k=1") - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(pass_at_k(3, 1, 3), Some(1.0));
        // n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10
        assert!((pass_at_k(5, 2, 2).expect("k=2") - 0.7).abs() < 1e-12);
        assert_eq!(pass_at_k(2, 1, 3), None);
    }

    fn rec(
        task: &str,
        prover: &str,
        attempt: u32,
        outcome: Outcome,
        cost: Option<f64>,
    ) -> CellRecord {
        CellRecord {
            task: task.into(),
            prover: prover.into(),
            attempt,
            status: None,
            outcome,
            reason: None,
            model: None,
            cost_usd: cost,
            cost_source: None,
            input_tokens: 10,
            cached_input_tokens: 1,
            output_tokens: 2,
            turns: None,
            tool_calls: None,
            generation_s: 1.0,
            verification_s: 1.0,
            total_s: attempt as f64,
            holes: vec![],
            dir: String::new(),
            run_id: None,
            config_hash: None,
        }
    }

    #[test]
    fn summaries_count_tasks_attempts_and_costs() {
        let r = vec![
            rec("a", "p", 1, Outcome::Solved, Some(1.0)),
            rec("a", "p", 2, Outcome::Unverified, Some(2.0)),
            rec("a", "p", 3, Outcome::Unverified, None),
            rec("b", "p", 1, Outcome::HoleUnchecked, Some(3.0)),
            rec("b", "p", 2, Outcome::HoleWrong, Some(1.0)),
            rec("b", "p", 3, Outcome::Cancelled, None),
        ];
        let s = &summarize(&r, &["p".into()], 3)[0];
        assert_eq!(s.tasks_attempted, 2);
        assert_eq!(s.tasks_solved, 1);
        assert!((s.pass_at_1.expect("p1") - (1.0 / 3.0 + 0.0) / 2.0).abs() < 1e-12);
        // a: n=3 c=1 → 1; b: n=2 (one cancelled) → not counted
        assert_eq!(s.pass_at_n, Some(1.0));
        assert_eq!(s.total_cost_usd, 7.0);
        assert_eq!(s.unpriced_cells, 1);
        assert_eq!(s.median_cost_usd, Some(1.5));
        assert_eq!(s.outcomes[&Outcome::HoleWrong], 1);
        assert_eq!(s.input_tokens, 60);
        let g = grid(&r);
        assert_eq!(
            g[&("a".to_string(), "p".to_string())],
            (1, 3, Outcome::Solved)
        );
        assert_eq!(
            g[&("b".to_string(), "p".to_string())],
            (0, 2, Outcome::HoleUnchecked)
        );
    }
}
