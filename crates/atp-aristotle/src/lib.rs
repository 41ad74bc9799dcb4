//! `aristotle`: Harmonic's hosted prover, driven over its HTTP API (v3) from the host.
//!
//! - [`endpoint`]: the origin (`--api-base`, `ARISTOTLE_WEB_URL`) and the key
//!   (`ARISTOTLE_API_KEY`, else the file `aristotle login` writes), as Harmonic's client finds
//!   them.
//! - [`api`]: the endpoints atp uses and the transport policy (throttle, retries, wall clocks).
//! - [`upload`]: the project archive and the client's preflight.
//! - [`unpack`], [`apply`]: the untrusted result archive, unpacked safely and mapped over
//!   `OUT/wd`.
//! - [`transcript`]: events as `logs/events.json` and `logs/transcript.txt`.
//! - [`AristotleProver`]: the [`atp_prover::Prover`].
//!
//! Architecture invariants: the prover never judges its output (the lifecycle verifies `OUT/wd`
//! in a fresh sandbox); a run that stops before its task ends cancels the remote task and says
//! in result.json whether the cancel landed; the key is sent only as `X-API-Key` and never
//! written anywhere.

pub mod api;
pub mod apply;
pub mod endpoint;
mod prover;
pub mod transcript;
pub mod unpack;
pub mod upload;

pub use api::{ApiError, Client, ClientOptions, TaskStatus};
pub use prover::{AristotleConfig, AristotleProver};
