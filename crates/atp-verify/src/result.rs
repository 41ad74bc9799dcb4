//! [`ProofResult`] and the run layout on disk.
//!
//! Layout of an output directory:
//! - `wd/` — the candidate project (without `.lake`);
//! - `logs/stdout.txt`, `logs/stderr.txt` — the verification script's raw streams;
//! - `logs/compile.log` — each file's compiler output under a `== rel (exit N) ==` header;
//! - `logs/result.json` — the [`ProofResult`].
//!
//! Invariant: [`write_result`] always writes `result.json`, also for errors (with the error's
//! kind and one-line message), and never writes secrets (only paths, verdicts and Lean output).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::report::VerificationReport;
use crate::verifier::{Verification, VerifyError};

/// Final status of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Verified,
    Unverified,
    Timeout,
    Error,
}

/// An error recorded in result.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub kind: String,
    pub message: String,
}

/// The outcome of proving (or only verifying) a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProofResult {
    pub status: Status,
    /// The prover that produced the candidate (`None` for `atp verify`).
    pub prover: Option<String>,
    pub verification: Option<VerificationReport>,
    pub output_dir: PathBuf,
    /// Project-relative path → text of each `.lean` file of the candidate.
    pub completed_files: BTreeMap<String, String>,
    pub cost_usd: Option<f64>,
    #[serde(rename = "duration_s")]
    pub duration_s: f64,
    pub metadata: BTreeMap<String, String>,
    pub error: Option<ErrorInfo>,
}

impl ProofResult {
    /// A result from a verification.
    pub fn from_verification(v: &Verification, output_dir: &Path) -> Self {
        let status = if v.report.verified {
            Status::Verified
        } else if v.report.timed_out {
            Status::Timeout
        } else {
            Status::Unverified
        };
        ProofResult {
            status,
            prover: None,
            verification: Some(v.report.clone()),
            output_dir: output_dir.to_path_buf(),
            completed_files: BTreeMap::new(),
            cost_usd: None,
            duration_s: secs(v.report.duration),
            metadata: BTreeMap::new(),
            error: None,
        }
    }

    /// A result for an error that prevented a verdict.
    pub fn from_error(e: &VerifyError, output_dir: &Path, duration: Duration) -> Self {
        ProofResult {
            status: Status::Error,
            prover: None,
            verification: None,
            output_dir: output_dir.to_path_buf(),
            completed_files: BTreeMap::new(),
            cost_usd: None,
            duration_s: secs(duration),
            metadata: BTreeMap::new(),
            error: Some(ErrorInfo {
                kind: e.kind().to_string(),
                message: e
                    .to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            }),
        }
    }
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// Paths of an output directory.
#[derive(Debug, Clone)]
pub struct RunLayout {
    pub root: PathBuf,
}

impl RunLayout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunLayout { root: root.into() }
    }
    pub fn wd(&self) -> PathBuf {
        self.root.join("wd")
    }
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn result_json(&self) -> PathBuf {
        self.logs().join("result.json")
    }

    /// Copy the candidate project into `wd/` (without `.lake` and `.git`), replacing what was
    /// there; returns the `.lean` files' texts.
    pub fn save_candidate(&self, project_root: &Path) -> std::io::Result<BTreeMap<String, String>> {
        let wd = self.wd();
        if wd.exists() {
            std::fs::remove_dir_all(&wd)?;
        }
        std::fs::create_dir_all(&wd)?;
        let mut files = BTreeMap::new();
        copy_tree(project_root, project_root, &wd, &mut files)?;
        Ok(files)
    }
}

fn copy_tree(
    root: &Path,
    dir: &Path,
    dest_root: &Path,
    files: &mut BTreeMap<String, String>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == ".lake" || name == ".git" {
            continue;
        }
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        let ft = entry.file_type()?;
        if ft.is_dir() {
            std::fs::create_dir_all(dest_root.join(&rel))?;
            copy_tree(root, &path, dest_root, files)?;
        } else if ft.is_file() {
            std::fs::copy(&path, dest_root.join(&rel))?;
            if name.ends_with(".lean") {
                if let Ok(t) = std::fs::read_to_string(&path) {
                    files.insert(rel.to_string_lossy().replace('\\', "/"), t);
                }
            }
        }
    }
    Ok(())
}

/// Write logs and result.json for a finished (or failed) verification. Returns the result.
///
/// `candidate_root` is copied to `wd/` unless it already is `wd/`; its `.lean` files become
/// `completed_files`. result.json is written even when the other files cannot be.
pub fn write_result(
    layout: &RunLayout,
    candidate_root: Option<&Path>,
    outcome: &Result<Verification, VerifyError>,
    duration: Duration,
) -> std::io::Result<ProofResult> {
    std::fs::create_dir_all(layout.logs())?;
    let mut first_err: Option<std::io::Error> = None;
    let mut keep = |r: std::io::Result<()>| {
        if let Err(e) = r {
            first_err.get_or_insert(e);
        }
    };
    let mut completed = BTreeMap::new();
    if let Some(root) = candidate_root {
        let same = match (root.canonicalize(), layout.wd().canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if same {
            if let Ok(p) = crate::LeanProject::open(root) {
                completed = p.sources().unwrap_or_default();
            }
        } else {
            match layout.save_candidate(root) {
                Ok(f) => completed = f,
                Err(e) => keep(Err(e)),
            }
        }
    }
    let mut result = match outcome {
        Ok(v) => {
            keep(std::fs::write(layout.logs().join("stdout.txt"), &v.stdout));
            keep(std::fs::write(layout.logs().join("stderr.txt"), &v.stderr));
            keep(std::fs::write(
                layout.logs().join("compile.log"),
                &v.compile_log,
            ));
            ProofResult::from_verification(v, &layout.root)
        }
        Err(e) => {
            for f in ["stdout.txt", "stderr.txt", "compile.log"] {
                let p = layout.logs().join(f);
                if !p.exists() {
                    keep(std::fs::write(p, ""));
                }
            }
            ProofResult::from_error(e, &layout.root, duration)
        }
    };
    result.completed_files = completed;
    let json = serde_json::to_string_pretty(&result).map_err(std::io::Error::other)?;
    std::fs::write(layout.result_json(), json)?;
    match first_err {
        Some(e) => Err(e),
        None => Ok(result),
    }
}
