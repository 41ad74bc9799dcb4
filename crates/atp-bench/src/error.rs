//! [`BenchError`]: what stops a benchmark (or a download) before or outside its cells. Each
//! message is one line: what is wrong, where, and the remedy, naming a command the user has.

use std::path::PathBuf;

/// A dataset's Lean pins against the image's.
#[derive(Debug)]
pub struct ToolchainMismatch {
    pub dataset: String,
    pub needs_toolchain: String,
    pub needs_mathlib: String,
    pub image: String,
    pub has_toolchain: String,
    pub has_mathlib: String,
    /// The tag `atp build-image --lean-toolchain` gives by default.
    pub suggested_tag: String,
}

/// Errors of atp-bench.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// No dataset of that name in the registry.
    #[error("unknown dataset `{name}` — known datasets: {known} (see `atp datasets`)")]
    UnknownDataset { name: String, known: String },
    /// A git step of a download failed.
    #[error("{repo}: git {step} failed: {message} — check the repository URL (--repo) and the revision (--rev)")]
    Git {
        repo: String,
        step: String,
        message: String,
    },
    /// The download's target directory cannot be used.
    #[error("{path}: {message}")]
    Directory { path: PathBuf, message: String },
    /// A `.atp-dataset.toml`, answer key or bench config cannot be read.
    #[error("{path}: {message}")]
    BadFile { path: PathBuf, message: String },
    /// The task directory holds no task (after filters).
    #[error("{dir}: no tasks found{filters} — pass a directory of .lean files or lake projects (`atp download NAME DIR` fetches a dataset)")]
    NoTasks { dir: PathBuf, filters: String },
    /// The dataset needs other Lean pins than the image has.
    #[error("dataset {} needs {} (Mathlib {}) but image {} has {} (Mathlib {}) — build a matching image: atp build-image --lean-toolchain {} --mathlib-rev {}, then pass --image {}", .0.dataset, .0.needs_toolchain, .0.needs_mathlib, .0.image, .0.has_toolchain, .0.has_mathlib, .0.needs_toolchain, .0.needs_mathlib, .0.suggested_tag)]
    Toolchain(Box<ToolchainMismatch>),
    /// The output directory already holds a run and neither --resume nor --fresh was given.
    #[error("{out}: already holds a benchmark run — pass --resume to continue it (only missing cells run) or --fresh to start over")]
    ExistingRun { out: PathBuf },
    /// The output directory is not usable.
    #[error("{path}: {message} — choose another --output")]
    Output { path: PathBuf, message: String },
    /// Bad options or configuration.
    #[error("{0}")]
    Invalid(String),
    /// The engine or the image cannot be used.
    #[error(transparent)]
    Backend(#[from] atp_backend::BackendError),
}

impl BenchError {
    /// Short machine-readable name.
    pub fn kind(&self) -> &'static str {
        match self {
            BenchError::UnknownDataset { .. } => "unknown_dataset",
            BenchError::Git { .. } => "git",
            BenchError::Directory { .. } => "directory",
            BenchError::BadFile { .. } => "bad_file",
            BenchError::NoTasks { .. } => "no_tasks",
            BenchError::Toolchain(_) => "toolchain_mismatch",
            BenchError::ExistingRun { .. } => "existing_run",
            BenchError::Output { .. } => "output",
            BenchError::Invalid(_) => "invalid_input",
            BenchError::Backend(e) => e.kind(),
        }
    }

    pub(crate) fn output(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        BenchError::Output {
            path: path.into(),
            message: e.to_string(),
        }
    }

    pub(crate) fn bad_file(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        BenchError::BadFile {
            path: path.into(),
            message: atp_prover::one_line(&e.to_string()),
        }
    }
}
