use std::time::Duration;

use crate::CommandResult;

/// Result alias for backend operations.
pub type Result<T, E = BackendError> = std::result::Result<T, E>;

/// Everything that can go wrong between atp and a sandbox.
///
/// Invariant: every message is one line saying what is wrong, where, and the remedy. Messages
/// never contain credential values (backends must not put them in `detail`).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The engine (Docker daemon, Modal control plane) cannot be reached.
    #[error("{backend} engine not reachable at {endpoint}: {detail} — {remedy}")]
    EngineUnavailable {
        backend: String,
        endpoint: String,
        detail: String,
        remedy: String,
    },
    /// The sandbox image does not exist where the backend looks for it.
    #[error("image {image} not found on {backend} — run `{remedy}`")]
    ImageUnavailable {
        backend: String,
        image: String,
        remedy: String,
    },
    /// The backend refused the credentials or none are configured.
    #[error("{backend} credentials: {detail} — {remedy}")]
    Credentials {
        backend: String,
        detail: String,
        remedy: String,
    },
    /// The image lacks what atp's commands need (see [`crate::contract`]); nothing is left behind.
    #[error(
        "image {image} on {backend} does not meet atp's sandbox contract: {missing} — {remedy}"
    )]
    ImageContract {
        backend: String,
        image: String,
        /// Everything missing, comma-separated.
        missing: String,
        remedy: String,
    },
    /// The sandbox could not be created or prepared (nothing is left behind).
    #[error("could not provision a {backend} sandbox: {detail}")]
    Provision { backend: String, detail: String },
    /// The sandbox died under a running session.
    #[error("sandbox {id} is gone: {detail}")]
    SandboxDead { id: String, detail: String },
    /// Moving the working directory in or out failed.
    #[error("transfer {direction} sandbox {id} failed: {detail}")]
    Transfer {
        id: String,
        direction: &'static str,
        detail: String,
    },
    /// The command exceeded its own budget and was killed; `partial` holds what it printed.
    #[error("command exceeded its {}s budget and was killed (partial output kept)", budget.as_secs_f64())]
    CommandTimeout {
        budget: Duration,
        partial: Box<CommandResult>,
    },
    /// The engine stopped answering: no result arrived `after` the budget plus grace and margin.
    #[error("sandbox {id} stopped answering: no exit status {}s after the exec started (infrastructure stall)", after.as_secs_f64())]
    ExecTimeout {
        id: String,
        after: Duration,
        partial: Option<Box<CommandResult>>,
    },
    /// The exec was cancelled through [`crate::CommandHandle::cancel`].
    #[error("command cancelled")]
    Cancelled { partial: Box<CommandResult> },
    /// The session was already closed.
    #[error("session {id} is closed — open a new session")]
    Closed { id: String },
    /// Bad input from the caller (a path that does not exist, a malformed option).
    #[error("{0}")]
    InvalidInput(String),
    /// Any other engine error, with the operation that failed.
    #[error("{backend} {operation} failed: {detail}")]
    Engine {
        backend: String,
        operation: String,
        detail: String,
    },
}

impl BackendError {
    /// The partial result carried by timeout and cancellation errors.
    pub fn partial(&self) -> Option<&CommandResult> {
        match self {
            BackendError::CommandTimeout { partial, .. } | BackendError::Cancelled { partial } => {
                Some(partial)
            }
            BackendError::ExecTimeout { partial, .. } => partial.as_deref(),
            _ => None,
        }
    }

    /// A short machine-readable name of the variant (used in JSON output).
    pub fn kind(&self) -> &'static str {
        match self {
            BackendError::EngineUnavailable { .. } => "engine_unavailable",
            BackendError::ImageUnavailable { .. } => "image_unavailable",
            BackendError::Credentials { .. } => "credentials",
            BackendError::ImageContract { .. } => "image_contract",
            BackendError::Provision { .. } => "provision",
            BackendError::SandboxDead { .. } => "sandbox_dead",
            BackendError::Transfer { .. } => "transfer",
            BackendError::CommandTimeout { .. } => "command_timeout",
            BackendError::ExecTimeout { .. } => "exec_timeout",
            BackendError::Cancelled { .. } => "cancelled",
            BackendError::Closed { .. } => "closed",
            BackendError::InvalidInput(_) => "invalid_input",
            BackendError::Engine { .. } => "engine",
        }
    }

    /// Shorthand for [`BackendError::Engine`].
    pub fn engine(
        backend: impl Into<String>,
        operation: impl Into<String>,
        detail: impl std::fmt::Display,
    ) -> Self {
        BackendError::Engine {
            backend: backend.into(),
            operation: operation.into(),
            detail: one_line(&detail.to_string()),
        }
    }
}

/// Collapse a multi-line message into one line (runs of whitespace, newlines included, become
/// one space). The one rule every atp error message goes through.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
