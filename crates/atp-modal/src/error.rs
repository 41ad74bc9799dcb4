use atp_backend::{one_line, BackendError};

/// Errors of the Modal client.
///
/// Invariant: one line each; never contains credential values.
#[derive(Debug, thiserror::Error)]
pub enum ModalError {
    #[error("no Modal credentials found — run `modal setup` or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET")]
    MissingCredentials,
    #[error("Modal configuration: {detail}")]
    Config { detail: String },
    #[error("cannot connect to Modal at {endpoint}: {detail}")]
    Connect { endpoint: String, detail: String },
    /// A gRPC call failed with a status (after retries, when retryable).
    #[error("Modal {method} failed: {code:?}: {message}")]
    Rpc {
        method: &'static str,
        code: tonic::Code,
        message: String,
    },
    #[error("Modal {method}: {detail}")]
    Protocol {
        method: &'static str,
        detail: String,
    },
    #[error("image build {image_id} failed: {detail}")]
    Build { image_id: String, detail: String },
    #[error("sandbox {id} is gone: {detail}")]
    SandboxDead { id: String, detail: String },
    #[error("Modal call {method} took longer than {secs}s")]
    Deadline { method: &'static str, secs: u64 },
}

impl ModalError {
    pub(crate) fn rpc(method: &'static str, s: &tonic::Status) -> Self {
        ModalError::Rpc {
            method,
            code: s.code(),
            message: one_line(s.message()),
        }
    }

    /// The gRPC code when this is an RPC failure.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            ModalError::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Map to the backend contract's error, naming `op` as the failed operation.
    pub fn into_backend(self, op: &str) -> BackendError {
        match self {
            ModalError::MissingCredentials => BackendError::Credentials {
                backend: "modal".into(),
                detail: "no token in MODAL_TOKEN_ID/MODAL_TOKEN_SECRET or the Modal config file"
                    .into(),
                remedy: "run `modal setup` or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET".into(),
            },
            ModalError::Config { .. } => BackendError::InvalidInput(self.to_string()),
            ModalError::Rpc {
                code: tonic::Code::Unauthenticated | tonic::Code::PermissionDenied,
                ..
            } => BackendError::Credentials {
                backend: "modal".into(),
                detail: self.to_string(),
                remedy: "check the token with `modal token info` or run `modal setup`".into(),
            },
            ModalError::Connect { endpoint, detail } => BackendError::EngineUnavailable {
                backend: "modal".into(),
                endpoint,
                detail,
                remedy: "check MODAL_SERVER_URL and your network".into(),
            },
            ModalError::Rpc {
                code: tonic::Code::Unavailable,
                ..
            } => BackendError::EngineUnavailable {
                backend: "modal".into(),
                endpoint: "the Modal control plane".into(),
                detail: self.to_string(),
                remedy: "check MODAL_SERVER_URL and the network, or https://status.modal.com"
                    .into(),
            },
            ModalError::SandboxDead { id, detail } => BackendError::SandboxDead { id, detail },
            other => BackendError::engine("modal", op, other),
        }
    }
}
