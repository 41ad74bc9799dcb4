//! [`ProofResult`]: what `logs/result.json` holds for every run, prove or verify.
//!
//! Invariant: a result never holds a credential value — only names of credential sources,
//! verdicts, Lean output, paths and counts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atp_image::ImagePins;
use atp_verify::{Verification, VerificationReport};
use serde::{Deserialize, Serialize};

use crate::usage::{Cost, Usage};

/// The schema tag of result.json.
pub const RESULT_SCHEMA: &str = "atp.result/1";

/// Final status of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The verifier accepted the candidate.
    Verified,
    /// The verifier refused the candidate (see `verification.violations`).
    Unverified,
    /// The generation or the verification ran out of time.
    Timeout,
    /// Something prevented a verdict (see `error`).
    Error,
    /// The run was interrupted (Ctrl-C, SIGTERM, SIGHUP) before it finished.
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Verified => "verified",
            Status::Unverified => "unverified",
            Status::Timeout => "timeout",
            Status::Error => "error",
            Status::Cancelled => "cancelled",
        }
    }

    /// Whether the run reached an end on its own (a cancelled run did not).
    pub fn is_terminal(self) -> bool {
        !matches!(self, Status::Cancelled)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error recorded in result.json: a machine-readable kind and one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub kind: String,
    pub message: String,
}

impl ErrorInfo {
    pub fn new(kind: impl Into<String>, message: impl std::fmt::Display) -> Self {
        ErrorInfo {
            kind: kind.into(),
            message: crate::one_line(&message.to_string()),
        }
    }
}

/// Time spent in each phase, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Durations {
    /// Creating and preparing the prover's sandbox.
    pub provision_s: f64,
    /// The prover's generation (agent run, hosted job, sampling).
    pub generation_s: f64,
    /// The verification in its own sandbox.
    pub verification_s: f64,
    /// Wall time of the whole run.
    pub total_s: f64,
}

/// Which prover ran, with every knob that shapes its output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProverRecord {
    pub name: String,
    /// `agent`, `tactics`, `hosted`, `sampling`.
    pub kind: String,
    pub model: Option<String>,
    pub effort: Option<String>,
    /// The prover's full configuration (no secrets).
    #[serde(default)]
    pub config: BTreeMap<String, serde_json::Value>,
}

/// The image a run used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub backend: String,
    pub name: String,
    /// The engine's id of the image, when known.
    pub id: Option<String>,
    pub pins: Option<ImagePins>,
}

/// What ran, for whoever reruns or publishes the result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// atp's version.
    pub atp_version: String,
    /// The git commit atp was built from (`-dirty` with local changes), when built from a
    /// checkout.
    pub atp_commit: Option<String>,
    /// `linux`, `macos`, …
    pub host_os: String,
    /// `x86_64`, `aarch64`, …
    pub host_arch: String,
    /// sha256 of the task's sources, lakefile, toolchain and manifest.
    pub task_hash: Option<String>,
    /// The prover's own program as the sandbox reports it (e.g. `claude --version`).
    pub agent_version: Option<String>,
    /// The command line that produced the run (no secrets), for `atp rerun`.
    pub invocation: Option<serde_json::Value>,
}

impl Provenance {
    /// This build of atp on this host.
    pub fn here() -> Self {
        Provenance {
            atp_version: env!("CARGO_PKG_VERSION").into(),
            atp_commit: option_env!("ATP_GIT_COMMIT").map(str::to_string),
            host_os: std::env::consts::OS.into(),
            host_arch: std::env::consts::ARCH.into(),
            ..Default::default()
        }
    }
}

/// The outcome of proving (or only verifying) a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProofResult {
    pub schema: String,
    pub status: Status,
    pub run_id: String,
    /// The task's name (directory or file stem).
    pub task: Option<String>,
    /// The prover that produced the candidate (`None` for `atp verify`).
    pub prover: Option<ProverRecord>,
    pub usage: Option<Usage>,
    /// Cost in USD and where the figure came from.
    pub cost: Option<Cost>,
    /// `cost.usd`, repeated for tables.
    pub cost_usd: Option<f64>,
    pub durations: Durations,
    pub verification: Option<VerificationReport>,
    pub image: Option<ImageRecord>,
    pub output_dir: PathBuf,
    /// Project-relative path → text of each `.lean` file the prover changed or added.
    pub completed_files: BTreeMap<String, String>,
    /// Prover-specific facts (session id, MCP status, rounds, …).
    pub metadata: BTreeMap<String, serde_json::Value>,
    pub error: Option<ErrorInfo>,
    pub atp_version: String,
    /// What ran (atp's build, the host, the task's hash, the prover's program, the invocation).
    #[serde(default)]
    pub provenance: Provenance,
}

impl ProofResult {
    /// An empty result of `status` for run `run_id` under `output_dir`.
    pub fn new(status: Status, run_id: impl Into<String>, output_dir: &Path) -> Self {
        ProofResult {
            schema: RESULT_SCHEMA.into(),
            status,
            run_id: run_id.into(),
            task: None,
            prover: None,
            usage: None,
            cost: None,
            cost_usd: None,
            durations: Durations::default(),
            verification: None,
            image: None,
            output_dir: output_dir.to_path_buf(),
            completed_files: BTreeMap::new(),
            metadata: BTreeMap::new(),
            error: None,
            atp_version: env!("CARGO_PKG_VERSION").into(),
            provenance: Provenance::here(),
        }
    }

    /// The status a verification alone implies.
    pub fn status_of(report: &VerificationReport) -> Status {
        if report.verified {
            Status::Verified
        } else if report.timed_out {
            Status::Timeout
        } else {
            Status::Unverified
        }
    }

    /// A result from a verification.
    pub fn from_verification(v: &Verification, run_id: &str, output_dir: &Path) -> Self {
        let mut r = ProofResult::new(Self::status_of(&v.report), run_id, output_dir);
        r.verification = Some(v.report.clone());
        r.durations.verification_s = secs(v.report.duration);
        r.durations.total_s = r.durations.verification_s;
        r
    }

    /// A result for an error that prevented a verdict.
    pub fn from_error(
        kind: &str,
        message: impl std::fmt::Display,
        run_id: &str,
        output_dir: &Path,
    ) -> Self {
        let mut r = ProofResult::new(Status::Error, run_id, output_dir);
        r.error = Some(ErrorInfo::new(kind, message));
        r
    }

    /// Set the cost and its table copy together.
    pub fn set_cost(&mut self, cost: Option<Cost>) {
        self.cost_usd = cost.as_ref().and_then(|c| c.usd);
        self.cost = cost;
    }
}

/// Seconds with millisecond precision (atp_backend's one seconds format).
pub use atp_backend::serde_secs::secs;
