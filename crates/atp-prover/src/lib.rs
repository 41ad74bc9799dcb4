//! The prover contract and the prove lifecycle of atp.
//!
//! - [`Prover`]: what every prover implements (describe itself, report its credential, stage
//!   files, generate a candidate in `OUT/wd`).
//! - [`prove`]: the lifecycle — compatibility gate and credential check before anything
//!   exists, copy, stage, one sandbox session for the generation, safe read-back, verification
//!   in a fresh network-less sandbox, `OUT/logs/result.json` always.
//! - [`ProofTask`], [`ProofResult`], [`RunLayout`]: a task, a run's record and its directory.
//! - [`Usage`], [`Cost`], [`PriceTable`]: tokens and what they cost.
//! - [`AuthStatus`]: credential status (present / expiring / expired, with the remedy).
//! - [`run_logged`]: run one command with its output logged as it arrives.
//! - [`retry`]: backoff and `Retry-After` for provers calling HTTP APIs from the host.
//!
//! Architecture invariant: atp-prover knows no concrete prover and no concrete engine; it sees
//! sandboxes only through `atp_backend` and verdicts only through `atp_verify`.

mod auth;
pub mod authfail;
mod layout;
mod lifecycle;
mod prices;
mod prompt;
mod prover;
mod result;
pub mod retry;
mod run;
mod task;
pub mod transcript;
mod usage;
pub mod workdir;

pub use auth::{
    jwt_expiry, now_unix, AuthKind, AuthState, AuthStatus, EnvSource, EXPIRING_WINDOW_S,
};
pub use layout::{write_atomic, RunLayout};
pub use lifecycle::{prove, ProveError, ProveOptions, DEFAULT_GENERATION_TIMEOUT, STOP_GRACE};
pub use prices::{ModelPrice, PriceError, PriceTable};
pub use prompt::{compose_prompt, PROVER_PROMPT};
pub use prover::{
    no_progress, CollectContext, GenOutcome, GenerateContext, Generation, Preparation,
    PrepareContext, ProgressEvent, ProgressSink, Prover, ProverInfo, ProverKind, SandboxRequest,
};
pub use result::{
    secs, Durations, ErrorInfo, ImageRecord, ProofResult, Provenance, ProverRecord, Status,
    RESULT_SCHEMA,
};
pub use run::{run_logged, RunEnd, RunReport};
pub use task::ProofTask;
pub use transcript::{EntryKind, Transcript, TranscriptEntry};
pub use usage::{Cost, CostSource, Usage};

/// Collapse a multi-line message into one line (atp_backend's one rule).
pub use atp_backend::one_line;
