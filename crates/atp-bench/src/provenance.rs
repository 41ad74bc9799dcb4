//! `OUT/run.toml`: the provenance of a benchmark run — atp's version, the image and its pins,
//! the dataset and its commit, each prover's full configuration, the sampling parameters, the
//! host, the start and end time. Every report header shows it.
//!
//! Invariant: it holds no credential value (prover configurations are the provers' own
//! descriptions, which never carry secrets).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::BenchError;

/// The schema tag of run.toml.
pub const RUN_SCHEMA: &str = "atp.benchmark/1";

/// Where the run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Complete,
    /// Stopped by Ctrl-C/SIGTERM before every cell ran (`--resume` continues it).
    Interrupted,
}

/// The dataset of the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// The registry name, or the directory's name for a directory without a record.
    pub name: String,
    pub dir: String,
    pub repo: Option<String>,
    pub commit: Option<String>,
    pub lean_toolchain: Option<String>,
    pub mathlib_rev: Option<String>,
    pub tasks: usize,
    /// `--tasks` globs.
    #[serde(default)]
    pub filters: Vec<String>,
    /// The answer key used, and how many answers it has.
    pub answers: Option<String>,
    #[serde(default)]
    pub answer_count: usize,
}

/// The image of the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    pub backend: String,
    pub name: String,
    pub id: String,
    pub lean_toolchain: String,
    pub mathlib_rev: String,
    pub spec_hash: Option<String>,
}

/// One prover of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProverEntry {
    /// The label its cells are stored under.
    pub label: String,
    pub name: String,
    pub kind: String,
    pub model: Option<String>,
    pub effort: Option<String>,
    /// Every knob (no secrets), as the prover describes itself: its JSON text (TOML has no
    /// null, and the configuration is kept exactly).
    #[serde(default)]
    pub config: String,
}

/// How cells were sampled and scheduled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    pub attempts: u32,
    pub workers: usize,
    pub per_prover: usize,
    pub generation_timeout_s: f64,
    pub verify_timeout_s: f64,
    /// The wall-clock ceiling of one cell.
    pub cell_ceiling_s: f64,
    pub network: String,
}

/// run.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub schema: String,
    pub atp_version: String,
    pub run_id: String,
    pub host: String,
    pub started: String,
    pub ended: Option<String>,
    pub state: RunState,
    /// The command line, as typed.
    #[serde(default)]
    pub command: Vec<String>,
    pub dataset: DatasetInfo,
    pub image: ImageInfo,
    pub sampling: Sampling,
    #[serde(rename = "prover", default)]
    pub provers: Vec<ProverEntry>,
    /// Cells of the plan, cells skipped as already done, cells run.
    #[serde(default)]
    pub cells: BTreeMap<String, usize>,
}

impl RunInfo {
    pub fn read(path: &Path) -> Result<RunInfo, BenchError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            BenchError::bad_file(path, format!("cannot read the run's provenance: {e}"))
        })?;
        let r: RunInfo = toml::from_str(&text)
            .map_err(|e| BenchError::bad_file(path, format!("not an atp run.toml: {e}")))?;
        if r.schema != RUN_SCHEMA {
            return Err(BenchError::bad_file(
                path,
                format!("schema {:?} is not {RUN_SCHEMA:?}", r.schema),
            ));
        }
        Ok(r)
    }

    pub fn write(&self, path: &Path) -> Result<(), BenchError> {
        let text = format!(
            "# provenance of an atp benchmark run (atp report re-renders the reports from this directory)\n{}",
            toml::to_string(self).map_err(|e| BenchError::output(path, e))?
        );
        crate::util::write_atomic(path, text.as_bytes()).map_err(|e| BenchError::output(path, e))
    }

    /// One-line provenance for report headers.
    pub fn header_lines(&self) -> Vec<String> {
        let short = |s: &str| s.chars().take(19).collect::<String>();
        let mut v = vec![
            format!(
                "atp {} · run {} · host {} · started {} · ended {} ({})",
                self.atp_version,
                self.run_id,
                self.host,
                self.started,
                self.ended.as_deref().unwrap_or("-"),
                match self.state {
                    RunState::Running => "running",
                    RunState::Complete => "complete",
                    RunState::Interrupted => "interrupted",
                }
            ),
            format!(
                "image {} on {} ({}) · Lean {} · Mathlib {}{}",
                self.image.name,
                self.image.backend,
                short(&self.image.id),
                self.image.lean_toolchain,
                self.image.mathlib_rev,
                self.image
                    .spec_hash
                    .as_deref()
                    .map(|h| format!(" · spec {}", &h[..h.len().min(12)]))
                    .unwrap_or_default()
            ),
            format!(
                "dataset {} ({} tasks{}) · {} @ {} · Lean {} · Mathlib {}{}",
                self.dataset.name,
                self.dataset.tasks,
                if self.dataset.filters.is_empty() {
                    String::new()
                } else {
                    format!(", --tasks {}", self.dataset.filters.join(" "))
                },
                self.dataset.repo.as_deref().unwrap_or("local directory"),
                self.dataset.commit.as_deref().unwrap_or("-"),
                self.dataset.lean_toolchain.as_deref().unwrap_or("-"),
                self.dataset.mathlib_rev.as_deref().unwrap_or("-"),
                match &self.dataset.answers {
                    Some(a) => format!(" · answer key {a} ({} answers)", self.dataset.answer_count),
                    None => String::new(),
                }
            ),
            format!(
                "sampling: {} attempt(s) per task and prover · workers {} · per prover {} · generation timeout {} s · verification timeout {} s · cell ceiling {} s · network {}",
                self.sampling.attempts,
                self.sampling.workers,
                self.sampling.per_prover,
                self.sampling.generation_timeout_s,
                self.sampling.verify_timeout_s,
                self.sampling.cell_ceiling_s,
                self.sampling.network
            ),
        ];
        for p in &self.provers {
            v.push(format!(
                "prover {}: {} ({}){}{} · config {}",
                p.label,
                p.name,
                p.kind,
                p.model
                    .as_deref()
                    .map(|m| format!(" · model {m}"))
                    .unwrap_or_default(),
                p.effort
                    .as_deref()
                    .map(|e| format!(" · effort {e}"))
                    .unwrap_or_default(),
                p.config
            ));
        }
        v
    }
}
