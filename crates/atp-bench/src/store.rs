//! The run store: one directory per cell, `OUT/<task>/<prover>/<attempt>/{task,wd,logs}` (the
//! prove lifecycle's layout), its `logs/result.json` stamped with the cell's configuration hash,
//! and the benchmark's own files at the top of `OUT`.
//!
//! Invariants: every result.json is written atomically (temporary file + rename), so a killed
//! run leaves either the old file, the new one, or none; a cell counts as done only when its
//! result is terminal **and** carries the hash of the configuration being run — a result without
//! a hash (a run killed between the prove and the stamp) or with another hash is re-run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atp_prover::{ProofResult, ProverInfo, RunLayout, Status};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The key under `result.json`'s `metadata` holding the benchmark's stamp.
pub const STAMP_KEY: &str = "bench";
/// The normalised transcript a cell keeps next to its result.
pub const TRANSCRIPT_FILE: &str = "transcript.json";

/// One cell: task × prover × attempt (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CellId {
    pub task: String,
    pub prover: String,
    pub attempt: u32,
}

impl CellId {
    /// `task/prover/attempt`, relative to `OUT`.
    pub fn rel_dir(&self) -> PathBuf {
        PathBuf::from(&self.task)
            .join(&self.prover)
            .join(self.attempt.to_string())
    }
}

impl std::fmt::Display for CellId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} · {} · #{}", self.task, self.prover, self.attempt)
    }
}

/// The cell's stamp in `result.json` (`metadata.bench`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub config_hash: String,
    pub task: String,
    pub prover: String,
    pub attempt: u32,
}

/// The benchmark's output directory.
#[derive(Debug, Clone)]
pub struct Store {
    pub root: PathBuf,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Store { root: root.into() }
    }

    pub fn cell_dir(&self, id: &CellId) -> PathBuf {
        self.root.join(id.rel_dir())
    }

    pub fn layout(&self, id: &CellId) -> RunLayout {
        RunLayout::new(self.cell_dir(id))
    }

    pub fn run_toml(&self) -> PathBuf {
        self.root.join("run.toml")
    }

    pub fn plan_json(&self) -> PathBuf {
        self.root.join("plan.json")
    }

    /// The cell's result, if a readable one exists.
    pub fn read(&self, id: &CellId) -> Option<ProofResult> {
        self.layout(id).read_result().ok()
    }

    /// The stamp of a stored result.
    pub fn stamp_of(result: &ProofResult) -> Option<Stamp> {
        result
            .metadata
            .get(STAMP_KEY)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// Whether the stored result of `id` is done under configuration `hash`: terminal and
    /// stamped with `hash` (and, with `retry_errors`, not an error or a timeout).
    pub fn is_done(&self, id: &CellId, hash: &str, retry_errors: bool) -> bool {
        let Some(r) = self.read(id) else {
            return false;
        };
        if !r.status.is_terminal() {
            return false;
        }
        if retry_errors && matches!(r.status, Status::Error | Status::Timeout) {
            return false;
        }
        Self::stamp_of(&r).is_some_and(|s| s.config_hash == hash)
    }

    /// Remove a cell's old result before it runs again (so a run killed mid-cell never leaves a
    /// stale result that looks current).
    pub fn clear_result(&self, id: &CellId) -> std::io::Result<()> {
        match std::fs::remove_file(self.layout(id).result_json()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Stamp `result` with the cell's hash and write it (atomically).
    pub fn write_stamped(
        &self,
        id: &CellId,
        result: &mut ProofResult,
        hash: &str,
    ) -> std::io::Result<()> {
        let stamp = Stamp {
            config_hash: hash.to_string(),
            task: id.task.clone(),
            prover: id.prover.clone(),
            attempt: id.attempt,
        };
        result.metadata.insert(
            STAMP_KEY.into(),
            serde_json::to_value(stamp).map_err(std::io::Error::other)?,
        );
        self.layout(id).write_result(result)
    }

    /// The cell's normalised transcript, if one was written.
    pub fn transcript(&self, id: &CellId) -> Option<atp_prover::Transcript> {
        let p = self.layout(id).logs().join(TRANSCRIPT_FILE);
        let text = std::fs::read_to_string(p).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The last `max_lines` lines (at most `max_bytes`) of the cell's raw stdout.
    pub fn stdout_tail(&self, id: &CellId, max_lines: usize, max_bytes: usize) -> Option<String> {
        let text = std::fs::read_to_string(self.layout(id).stdout()).ok()?;
        if text.is_empty() {
            return None;
        }
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(max_lines);
        let mut out = lines[start..].join("\n");
        if out.len() > max_bytes {
            let mut cut = out.len() - max_bytes;
            while !out.is_char_boundary(cut) {
                cut += 1;
            }
            out = format!("… {}", &out[cut..]);
        }
        Some(out)
    }
}

/// The configuration hash of a cell: sha256 over the prover's full description (name, kind,
/// model, effort, every knob), the prover's label, the image id, the dataset commit, the task's
/// content hash and the answers its holes are checked against.
pub fn config_hash(
    label: &str,
    prover: &ProverInfo,
    image_id: &str,
    dataset_commit: Option<&str>,
    task_hash: &str,
    answers: &BTreeMap<String, String>,
) -> String {
    let v = json!({
        "schema": "atp.cell/1",
        "label": label,
        "prover": prover,
        "image_id": image_id,
        "dataset_commit": dataset_commit,
        "task_hash": task_hash,
        "answers": answers,
    });
    crate::util::sha256_hex(v.to_string().as_bytes())
}

/// The cells of a plan, in task-major order (task, then prover, then attempt).
pub fn cells(tasks: &[String], provers: &[String], attempts: u32) -> Vec<CellId> {
    let mut out = Vec::with_capacity(tasks.len() * provers.len() * attempts as usize);
    for t in tasks {
        for p in provers {
            for a in 1..=attempts {
                out.push(CellId {
                    task: t.clone(),
                    prover: p.clone(),
                    attempt: a,
                });
            }
        }
    }
    out
}

/// `OUT/plan.json`: which cells the run is made of (what `atp report` renders).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub schema: String,
    pub tasks: Vec<String>,
    pub provers: Vec<String>,
    pub attempts: u32,
}

impl Plan {
    pub const SCHEMA: &'static str = "atp.plan/1";

    pub fn cells(&self) -> Vec<CellId> {
        cells(&self.tasks, &self.provers, self.attempts)
    }

    pub fn read(path: &Path) -> std::io::Result<Plan> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        crate::util::write_atomic(path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atp_prover::ProverKind;

    fn info() -> ProverInfo {
        ProverInfo {
            name: "tactics".into(),
            kind: ProverKind::Tactics,
            model: None,
            effort: None,
            config: BTreeMap::new(),
        }
    }

    #[test]
    fn the_hash_follows_the_configuration() {
        let none = BTreeMap::new();
        let h = config_hash("t", &info(), "sha256:1", Some("abc"), "th", &none);
        assert_eq!(
            h,
            config_hash("t", &info(), "sha256:1", Some("abc"), "th", &none)
        );
        assert_ne!(
            h,
            config_hash("t", &info(), "sha256:2", Some("abc"), "th", &none)
        );
        assert_ne!(
            h,
            config_hash("t", &info(), "sha256:1", Some("abd"), "th", &none)
        );
        assert_ne!(
            h,
            config_hash("t", &info(), "sha256:1", Some("abc"), "tx", &none)
        );
        let mut other = info();
        other.model = Some("m".into());
        assert_ne!(
            h,
            config_hash("t", &other, "sha256:1", Some("abc"), "th", &none)
        );
        let answers = BTreeMap::from([("x".to_string(), "2".to_string())]);
        assert_ne!(
            h,
            config_hash("t", &info(), "sha256:1", Some("abc"), "th", &answers)
        );
    }

    #[test]
    fn only_terminal_results_with_the_same_hash_are_done() {
        let d = tempfile::tempdir().expect("tmp");
        let s = Store::new(d.path());
        let id = CellId {
            task: "A".into(),
            prover: "p".into(),
            attempt: 1,
        };
        assert!(!s.is_done(&id, "h", false));
        let mut r = ProofResult::new(Status::Unverified, "run", &s.cell_dir(&id));
        s.layout(&id).write_result(&r).expect("write");
        assert!(!s.is_done(&id, "h", false), "no stamp: not done");
        s.write_stamped(&id, &mut r, "h").expect("stamp");
        assert!(s.is_done(&id, "h", false));
        assert!(!s.is_done(&id, "other", false));
        let mut c = ProofResult::new(Status::Cancelled, "run", &s.cell_dir(&id));
        s.write_stamped(&id, &mut c, "h").expect("stamp");
        assert!(!s.is_done(&id, "h", false), "cancelled is not terminal");
        let mut e = ProofResult::new(Status::Error, "run", &s.cell_dir(&id));
        s.write_stamped(&id, &mut e, "h").expect("stamp");
        assert!(s.is_done(&id, "h", false));
        assert!(!s.is_done(&id, "h", true), "--retry-errors reruns errors");
        s.clear_result(&id).expect("clear");
        assert!(s.read(&id).is_none());
        s.clear_result(&id).expect("clearing twice is fine");
    }

    #[test]
    fn cells_are_task_major() {
        let c = cells(&["a".into(), "b".into()], &["x".into(), "y".into()], 2);
        let names: Vec<String> = c
            .iter()
            .map(|c| format!("{}{}{}", c.task, c.prover, c.attempt))
            .collect();
        assert_eq!(
            names,
            ["ax1", "ax2", "ay1", "ay2", "bx1", "bx2", "by1", "by2"]
        );
    }
}
