//! atp's Modal backend: Modal Sandboxes driven over Modal's own gRPC protocol.
//!
//! - [`config`]: credentials and endpoint resolved like Modal's SDKs (`~/.modal.toml`, env).
//! - [`ModalClient`]: the control plane (apps, secrets, images, sandboxes) with Modal's
//!   headers, lazy auth JWT and retries with one idempotency key per logical call.
//! - [`RouterClient`]: the task command router (exec with streamed stdin/stdout/stderr).
//! - [`ModalBackend`]: the `atp_backend` contract; files move as tar.gz streamed through exec
//!   stdin/stdout ([`unpack`] holds the packer and the safe unpacker).
//! - [`proto`]: atp's own subset of Modal's protocol, client and server stubs (the server side
//!   serves the fake Modal in `atp-modal-fake`).

mod backend;
pub mod client;
pub mod config;
mod error;
pub mod router;
pub mod unpack;

pub use backend::{ModalBackend, ModalConfig, ModalSession, PIN_ENV};
pub use client::{LayerSpec, ModalClient, RetryPolicy, SandboxSpec};
pub use config::{CredentialSource, ModalCredentials, Secret};
pub use error::ModalError;
pub use router::RouterClient;

/// atp's subset of Modal's protocol (generated at build time by protox + tonic-prost-build).
#[allow(missing_docs, clippy::all, missing_debug_implementations)]
pub mod proto {
    /// `modal.client`: the control plane.
    pub mod client {
        tonic::include_proto!("modal.client");
    }
    /// `modal.task_command_router`: exec in a running task.
    pub mod router {
        tonic::include_proto!("modal.task_command_router");
    }
}
