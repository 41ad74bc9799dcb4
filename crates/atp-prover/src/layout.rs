//! The output directory of a run, and writing its files.
//!
//! ```text
//! OUT/task/               the task as given (pristine; the statement check's original)
//! OUT/wd/                 the prover's working copy — the candidate
//! OUT/logs/stdout.txt     the prover's stdout, line by line as it arrived
//! OUT/logs/stderr.txt     its stderr
//! OUT/logs/compile.log    the verifier's per-file compiler output
//! OUT/logs/verify.stdout.txt, verify.stderr.txt   the verification script's raw streams
//! OUT/logs/atp.jsonl      atp's own trace of the run (tracing events, JSON lines)
//! OUT/logs/result.json    the [`ProofResult`]
//! ```
//!
//! Invariant: result.json is replaced atomically (temporary file + rename), so a killed run
//! never leaves a half-written one.

use std::path::{Path, PathBuf};

use atp_verify::Verification;

use crate::result::ProofResult;

/// Paths of an output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLayout {
    pub root: PathBuf,
}

impl RunLayout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunLayout { root: root.into() }
    }
    pub fn task(&self) -> PathBuf {
        self.root.join("task")
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
    pub fn stdout(&self) -> PathBuf {
        self.logs().join("stdout.txt")
    }
    pub fn stderr(&self) -> PathBuf {
        self.logs().join("stderr.txt")
    }
    pub fn compile_log(&self) -> PathBuf {
        self.logs().join("compile.log")
    }
    pub fn trace(&self) -> PathBuf {
        self.logs().join("atp.jsonl")
    }

    /// Create `logs/` (and the root).
    pub fn create(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(self.logs())
    }

    /// Write the verifier's raw material next to the result.
    pub fn write_verification(&self, v: &Verification) -> std::io::Result<()> {
        self.create()?;
        std::fs::write(self.compile_log(), &v.compile_log)?;
        std::fs::write(self.logs().join("verify.stdout.txt"), &v.stdout)?;
        std::fs::write(self.logs().join("verify.stderr.txt"), &v.stderr)?;
        Ok(())
    }

    /// Write result.json atomically.
    pub fn write_result(&self, result: &ProofResult) -> std::io::Result<()> {
        self.create()?;
        let json = serde_json::to_string_pretty(result).map_err(std::io::Error::other)?;
        write_atomic(&self.result_json(), json.as_bytes())
    }

    /// Read a result.json back.
    pub fn read_result(&self) -> std::io::Result<ProofResult> {
        let text = std::fs::read_to_string(self.result_json())?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }
}

/// Write `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
