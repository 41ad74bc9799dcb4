//! The [`Prover`] contract: what every prover (agent, tactic search, hosted, sampler) gives the
//! lifecycle, and what the lifecycle gives it.
//!
//! **API Boundary.** A prover stages its files, generates a candidate in `OUT/wd` (inside a
//! sandbox session when it asks for one), and reports usage. It never decides the verdict: the
//! lifecycle verifies `OUT/wd` in a fresh sandbox afterwards.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use atp_backend::{ComputeSession, Mount};
use atp_verify::Verifier;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::auth::AuthStatus;
use crate::layout::RunLayout;
use crate::prices::PriceTable;
use crate::result::ProverRecord;
use crate::task::ProofTask;
use crate::usage::Usage;

/// What kind of prover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProverKind {
    /// A coding-agent CLI inside the sandbox.
    Agent,
    /// A tactic search inside the sandbox (no model, no credential).
    Tactics,
    /// A hosted service (generation happens remotely; no sandbox).
    Hosted,
    /// Whole-proof sampling from a model API on the host.
    Sampling,
}

impl ProverKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProverKind::Agent => "agent",
            ProverKind::Tactics => "tactics",
            ProverKind::Hosted => "hosted",
            ProverKind::Sampling => "sampling",
        }
    }
}

/// A prover's description: `atp provers` and result.json show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProverInfo {
    pub name: String,
    pub kind: ProverKind,
    pub model: Option<String>,
    pub effort: Option<String>,
    /// Every knob that shapes the output (no secrets).
    pub config: BTreeMap<String, serde_json::Value>,
}

impl ProverInfo {
    pub fn record(&self) -> ProverRecord {
        ProverRecord {
            name: self.name.clone(),
            kind: self.kind.as_str().into(),
            model: self.model.clone(),
            effort: self.effort.clone(),
            config: self.config.clone(),
        }
    }
}

/// What the prover needs from its sandbox, decided in [`Prover::prepare`].
#[derive(Debug, Default)]
pub struct SandboxRequest {
    /// Extra mounts (e.g. a per-run directory holding one copied credential file).
    pub mounts: Vec<Mount>,
    /// Environment for every command of the session (never credential values: those go into
    /// each exec's environment).
    pub env: BTreeMap<String, String>,
}

/// The outcome of [`Prover::prepare`].
#[derive(Debug, Default)]
pub struct Preparation {
    /// `None`: the prover runs on the host (no sandbox is created).
    pub sandbox: Option<SandboxRequest>,
    /// A private directory that must outlive the session (copied credentials); removed when
    /// the run ends. Never under `OUT/`.
    pub private: Option<tempfile::TempDir>,
}

/// What the lifecycle hands to [`Prover::prepare`].
#[derive(Debug)]
pub struct PrepareContext<'a> {
    pub task: &'a ProofTask,
    /// `OUT/wd`: the copy of the task the prover works on.
    pub wd: &'a Path,
    pub layout: &'a RunLayout,
    /// atp's prompt with the user's additional instructions, ready to stage.
    pub prompt: &'a str,
    /// The sandbox user's home directory on the chosen backend.
    pub container_home: &'a str,
}

/// A live event of a generation, for progress displays.
#[derive(Debug, Clone, PartialEq)]
pub enum ProgressEvent {
    /// The run entered a phase (`provision`, `generation`, `verification`, …).
    Phase(String),
    /// The agent started a model turn.
    Turn,
    /// The agent called a tool.
    ToolCall(String),
    /// Usage so far (replaces the previous figure).
    Usage(Usage),
    /// Cost so far in USD.
    Cost(f64),
    /// A note worth showing (a warning such as "lean-lsp MCP server failed to start").
    Note(String),
}

/// Where progress events go.
pub type ProgressSink = Arc<dyn Fn(ProgressEvent) + Send + Sync>;

/// A sink that drops everything.
pub fn no_progress() -> ProgressSink {
    Arc::new(|_| {})
}

/// What the lifecycle hands to [`Prover::generate`].
pub struct GenerateContext<'a> {
    pub task: &'a ProofTask,
    pub layout: &'a RunLayout,
    /// `OUT/wd`.
    pub wd: &'a Path,
    /// The prover's sandbox, when [`Preparation::sandbox`] asked for one.
    pub session: Option<&'a dyn ComputeSession>,
    pub container_home: &'a str,
    /// The generation's budget, and the instant it runs out.
    pub budget: Duration,
    pub deadline: Instant,
    /// Cancelled on Ctrl-C/SIGTERM: stop at once and return what you have.
    pub cancel: CancellationToken,
    pub progress: ProgressSink,
    pub prices: &'a PriceTable,
    /// The run's verifier (fresh, network-less sandboxes) — for provers that iterate on compiler
    /// feedback. The final verdict is still the lifecycle's.
    pub verifier: &'a Verifier,
    /// The private directory of [`Preparation::private`], if any.
    pub private: Option<&'a Path>,
}

impl fmt::Debug for GenerateContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerateContext")
            .field("task", &self.task.name)
            .field("wd", &self.wd)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl GenerateContext<'_> {
    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// What the lifecycle hands to [`Prover::collect`]: the run once the prover's sandbox is gone.
#[derive(Debug)]
pub struct CollectContext<'a> {
    /// `OUT/wd`, pulled back and no longer attached to any sandbox (still untrusted: read it
    /// without following links).
    pub wd: &'a Path,
    pub layout: &'a RunLayout,
}

/// How a generation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum GenOutcome {
    /// The prover finished on its own.
    Finished,
    /// The budget ran out; the prover was stopped (its partial work is kept).
    TimedOut,
    /// The run was cancelled.
    Cancelled,
    /// The prover failed; `kind` is machine-readable, `message` one line.
    Failed { error: String, message: String },
}

/// What a generation produced besides the files in `OUT/wd`.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub outcome: GenOutcome,
    pub usage: Usage,
    /// Cost the prover reported itself (e.g. Claude Code's `total_cost_usd`).
    pub reported_cost: Option<f64>,
    /// The model that actually answered, when the prover says (else the configured one).
    pub model: Option<String>,
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// Extra files for `OUT/logs` were written by the prover; listed for the record.
    pub logs: Vec<PathBuf>,
    /// Set when this prover costs nothing per run.
    pub free: bool,
    /// Set when the prover reports no token usage at all: without a reported cost the cost is
    /// then unknown (never priced from zero tokens).
    pub usage_unknown: bool,
}

impl Generation {
    /// An empty generation with `outcome`.
    pub fn new(outcome: GenOutcome) -> Self {
        Generation {
            outcome,
            usage: Usage::default(),
            reported_cost: None,
            model: None,
            metadata: BTreeMap::new(),
            logs: Vec::new(),
            free: false,
            usage_unknown: false,
        }
    }

    /// A failed generation.
    pub fn failed(error: &str, message: impl fmt::Display) -> Self {
        Self::new(GenOutcome::Failed {
            error: error.into(),
            message: crate::one_line(&message.to_string()),
        })
    }
}

/// A prover.
///
/// Invariants: `auth` reads only where credentials live (never prints values); `prepare`
/// writes only inside `OUT/wd` (and the private directory it creates); `generate` never
/// panics on a broken sandbox or a hostile transcript — it returns a [`Generation`] whose
/// outcome says what happened, with everything it learned so far.
#[async_trait]
pub trait Prover: Send + Sync + fmt::Debug {
    fn info(&self) -> ProverInfo;

    /// The credential this prover would use right now.
    fn auth(&self) -> AuthStatus;

    /// Stage harness files into `OUT/wd` and say what sandbox is needed.
    async fn prepare(&self, cx: &PrepareContext<'_>) -> Result<Preparation, crate::ProveError>;

    /// Produce a candidate in `OUT/wd`.
    async fn generate(&self, cx: GenerateContext<'_>) -> Generation;

    /// After the prover's sandbox was pulled and closed (nothing in `OUT/wd` changes any
    /// more) and before the candidate is read: move the prover's own files (session logs) out
    /// of `OUT/wd` into `OUT/logs` and complete `gen` from them (usage a CLI writes to a file).
    /// Called for every generation that had a sandbox, cancelled ones included. Default:
    /// nothing.
    fn collect(&self, _cx: &CollectContext<'_>, _gen: &mut Generation) {}

    /// The run as a readable conversation, read from what the prover printed (`stdout`, the
    /// text of `logs/stdout.txt`). `None` when the prover has no conversation to show or does
    /// not know its stream format (reports then show the raw output).
    fn transcript(&self, stdout: &str) -> Option<crate::transcript::Transcript> {
        let _ = stdout;
        None
    }
}
