//! The reports of a run, rendered from the store alone (what `atp report OUT` does and what a
//! benchmark does when it ends): `results.jsonl` (one line per cell), `results.csv`,
//! `report.md` (per prover, the task × prover table, the provenance) and `report.html`
//! (see [`crate::html`]).
//!
//! Invariant: every figure is computed from the cells' stored `result.json` files and
//! `run.toml`; nothing is carried over from the process that ran them.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::aggregate::{grid, summarize, CellRecord, Outcome, ProverSummary};
use crate::error::BenchError;
use crate::provenance::RunInfo;
use crate::store::{Plan, Store};

/// What a render wrote.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub files: Vec<PathBuf>,
    pub records: Vec<CellRecord>,
}

/// Everything a report needs, read from the store.
#[derive(Debug, Clone)]
pub struct ReportData {
    pub info: RunInfo,
    pub plan: Plan,
    pub records: Vec<CellRecord>,
    pub summaries: Vec<ProverSummary>,
}

impl ReportData {
    /// Read the store of `OUT`.
    pub fn load(store: &Store) -> Result<ReportData, BenchError> {
        let info = RunInfo::read(&store.run_toml())?;
        let plan = Plan::read(&store.plan_json()).map_err(|e| {
            BenchError::bad_file(store.plan_json(), format!("cannot read the plan: {e}"))
        })?;
        let records: Vec<CellRecord> = plan
            .cells()
            .iter()
            .map(|id| CellRecord::of(id, store.read(id).as_ref()))
            .collect();
        let summaries = summarize(&records, &plan.provers, plan.attempts);
        Ok(ReportData {
            info,
            plan,
            records,
            summaries,
        })
    }
}

/// Render every report of `store` (atomically each).
pub fn render(store: &Store) -> Result<Rendered, BenchError> {
    let data = ReportData::load(store)?;
    let mut files = Vec::new();
    let mut write = |name: &str, text: String| -> Result<(), BenchError> {
        let p = store.root.join(name);
        crate::util::write_atomic(&p, text.as_bytes()).map_err(|e| BenchError::output(&p, e))?;
        files.push(p);
        Ok(())
    };
    write("results.jsonl", jsonl(&data.records))?;
    write("results.csv", csv(&data.records))?;
    write("report.md", markdown(&data))?;
    write("report.html", crate::html::html(&data, store))?;
    Ok(Rendered {
        files,
        records: data.records,
    })
}

/// One JSON line per cell.
pub fn jsonl(records: &[CellRecord]) -> String {
    let mut s = String::new();
    for r in records {
        if let Ok(line) = serde_json::to_string(r) {
            s.push_str(&line);
            s.push('\n');
        }
    }
    s
}

/// The columns of results.csv.
pub const CSV_COLUMNS: &[&str] = &[
    "task",
    "prover",
    "attempt",
    "status",
    "outcome",
    "reason",
    "model",
    "cost_usd",
    "cost_source",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "turns",
    "tool_calls",
    "generation_s",
    "verification_s",
    "total_s",
    "holes",
    "dir",
];

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// results.csv (RFC 4180 quoting).
pub fn csv(records: &[CellRecord]) -> String {
    let mut s = CSV_COLUMNS.join(",");
    s.push('\n');
    let opt = |v: Option<String>| v.unwrap_or_default();
    for r in records {
        let holes = r
            .holes
            .iter()
            .map(|h| format!("{}={}", h.name, h.check.as_str()))
            .collect::<Vec<_>>()
            .join(";");
        let row = [
            r.task.clone(),
            r.prover.clone(),
            r.attempt.to_string(),
            opt(r.status.map(|s| s.as_str().to_string())),
            r.outcome.as_str().to_string(),
            opt(r.reason.clone()),
            opt(r.model.clone()),
            opt(r.cost_usd.map(|c| format!("{c:.6}"))),
            opt(r.cost_source.clone()),
            r.input_tokens.to_string(),
            r.cached_input_tokens.to_string(),
            r.output_tokens.to_string(),
            opt(r.turns.map(|t| t.to_string())),
            opt(r.tool_calls.map(|t| t.to_string())),
            format!("{:.3}", r.generation_s),
            format!("{:.3}", r.verification_s),
            format!("{:.3}", r.total_s),
            holes,
            r.dir.clone(),
        ];
        s.push_str(
            &row.iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        s.push('\n');
    }
    s
}

/// `0.333` → `33.3%`.
pub fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1}%", v * 100.0))
        .unwrap_or_else(|| "-".into())
}

/// A cost in USD.
pub fn usd(v: f64) -> String {
    format!("${v:.4}")
}

/// Seconds.
pub fn secs(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1} s")).unwrap_or_else(|| "-".into())
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The text of a grid cell: `2/3` plus the best outcome when nothing solved.
pub fn grid_text(solved: u32, ended: u32, best: Outcome, attempts: u32) -> String {
    if ended == 0 {
        return best.as_str().to_string();
    }
    if attempts == 1 {
        return best.as_str().to_string();
    }
    if solved > 0 {
        format!("{solved}/{ended} solved")
    } else {
        format!("0/{ended} ({best})")
    }
}

/// report.md.
pub fn markdown(d: &ReportData) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# atp benchmark: {}\n", md_escape(&d.info.dataset.name));
    for l in d.info.header_lines() {
        let _ = writeln!(s, "- {}", md_escape(&l));
    }
    let n = d.plan.attempts;
    let _ = writeln!(s, "\n## Per prover\n");
    let _ = writeln!(
        s,
        "Solved = verified by atp's verifier with every definition hole proved equal to the official answer. `hole unchecked` = verified but a hole's answer is not confirmed; `hole wrong` = a hole proved different from the official answer. Neither counts as solved.\n"
    );
    let mut header = vec![
        "prover".to_string(),
        "solved / attempted".into(),
        "pass@1".into(),
    ];
    if n > 1 {
        header.push(format!("pass@{n}"));
    }
    header.extend(
        [
            "hole unchecked",
            "hole wrong",
            "unverified",
            "timeout",
            "error",
            "not run",
            "total cost",
            "median cost",
            "tokens in (cached) / out",
            "median time",
        ]
        .map(String::from),
    );
    let _ = writeln!(s, "| {} |", header.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(header.len()));
    for p in &d.summaries {
        let o = |k: Outcome| p.outcomes.get(&k).copied().unwrap_or(0).to_string();
        let mut row = vec![
            format!("`{}`", md_escape(&p.prover)),
            format!("{} / {}", p.tasks_solved, p.tasks_attempted),
            pct(p.pass_at_1),
        ];
        if n > 1 {
            row.push(pct(p.pass_at_n));
        }
        let not_run = p.outcomes.get(&Outcome::NotRun).copied().unwrap_or(0)
            + p.outcomes.get(&Outcome::Cancelled).copied().unwrap_or(0);
        row.extend([
            o(Outcome::HoleUnchecked),
            o(Outcome::HoleWrong),
            o(Outcome::Unverified),
            o(Outcome::Timeout),
            o(Outcome::Error),
            not_run.to_string(),
            format!(
                "{}{}",
                usd(p.total_cost_usd),
                if p.unpriced_cells > 0 {
                    format!(" (+{} unpriced)", p.unpriced_cells)
                } else {
                    String::new()
                }
            ),
            p.median_cost_usd.map(usd).unwrap_or_else(|| "-".into()),
            format!(
                "{} ({}) / {}",
                p.input_tokens, p.cached_input_tokens, p.output_tokens
            ),
            secs(p.median_time_s),
        ]);
        let _ = writeln!(s, "| {} |", row.join(" | "));
    }
    let _ = writeln!(s, "\n## Task × prover\n");
    let g = grid(&d.records);
    let _ = writeln!(
        s,
        "| task | {} |",
        d.plan
            .provers
            .iter()
            .map(|p| format!("`{}`", md_escape(p)))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(s, "|---|{}", "---|".repeat(d.plan.provers.len()));
    for t in &d.plan.tasks {
        let cells: Vec<String> = d
            .plan
            .provers
            .iter()
            .map(|p| {
                g.get(&(t.clone(), p.clone()))
                    .map(|(c, e, b)| grid_text(*c, *e, *b, n))
                    .unwrap_or_else(|| "not_run".into())
            })
            .collect();
        let _ = writeln!(s, "| {} | {} |", md_escape(t), cells.join(" | "));
    }
    let failures: Vec<&CellRecord> = d
        .records
        .iter()
        .filter(|r| r.outcome != Outcome::Solved && r.outcome != Outcome::NotRun)
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(s, "\n## Cells not solved\n");
        let _ = writeln!(s, "| task | prover | attempt | outcome | reason |");
        let _ = writeln!(s, "|---|---|---|---|---|");
        for r in failures {
            let reason: String = r
                .reason
                .as_deref()
                .unwrap_or("-")
                .chars()
                .take(160)
                .collect();
            let _ = writeln!(
                s,
                "| {} | `{}` | {} | {} | {} |",
                md_escape(&r.task),
                md_escape(&r.prover),
                r.attempt,
                r.outcome,
                md_escape(&reason)
            );
        }
    }
    s
}
