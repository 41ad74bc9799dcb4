//! atp's Modal backend: Modal Sandboxes driven over Modal's own gRPC protocol.
//!
//! The API: [`ModalBackend`] (the `atp_backend` contract; files move as tar.gz streamed
//! through exec stdin/stdout and unpacked by `atp_archive`), [`ModalConfig`], [`ModalSession`],
//! the credentials ([`config`]: `~/.modal.toml` and the environment, like Modal's SDKs),
//! [`ModalError`], and [`build_and_publish`] for image builds from `atp_image`'s layers.
//!
//! The wire layer — the raw control-plane client (`ModalClient`: Modal's headers, lazy auth
//! JWT, retries with one idempotency key per logical call), the command-router client, and
//! `proto` (atp's subset of Modal's protocol, client and server stubs) — is public only with the
//! `protocol` feature, for the fake Modal in `atp-modal-fake` and the protocol tests. It is not
//! part of the stable surface.

mod backend;
#[cfg(feature = "protocol")]
pub mod client;
#[cfg(not(feature = "protocol"))]
#[allow(dead_code)]
mod client;
pub mod config;
mod error;
mod image;
#[cfg(feature = "protocol")]
pub mod router;
#[cfg(not(feature = "protocol"))]
#[allow(dead_code)]
mod router;
mod session;
mod transfer;

pub use backend::ModalBackend;
pub use backend::ModalConfig;
#[cfg(feature = "protocol")]
pub use client::{ModalClient, RetryPolicy, SandboxSpec};
pub use config::{CredentialSource, ModalCredentials, Secret};
pub use error::ModalError;
pub use image::{build_and_publish, PublishedImage};
#[cfg(feature = "protocol")]
pub use router::RouterClient;
pub use session::ModalSession;

/// atp's subset of Modal's protocol (generated at build time by protox + tonic-prost-build).
macro_rules! proto_module {
    ($vis:vis) => {
        #[allow(missing_docs, clippy::all, missing_debug_implementations, dead_code, unreachable_pub)]
        $vis mod proto {
            /// `modal.client`: the control plane.
            pub mod client {
                tonic::include_proto!("modal.client");
            }
            /// `modal.task_command_router`: exec in a running task.
            pub mod router {
                tonic::include_proto!("modal.task_command_router");
            }
        }
    };
}
#[cfg(feature = "protocol")]
proto_module!(pub);
#[cfg(not(feature = "protocol"))]
proto_module!(pub(crate));
