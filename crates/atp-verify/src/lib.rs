//! The Lean project model and atp's proof verifier.
//!
//! - [`LeanProject`] / [`ProofTask`] / [`stage_files`]: lake projects on the host, their pins
//!   and sources.
//! - [`check`]: source-level checks — statements against the original task, red flags.
//! - [`parse`]: parsers for what Lean and Lake print.
//! - [`Verifier`]: compiles every file in a sandbox of any [`atp_backend::ComputeBackend`] with
//!   an axiom probe, and combines everything into a [`VerificationReport`].
//! - [`result`]: [`ProofResult`] and the output directory layout.

pub mod check;
pub mod corpus;
pub mod lexer;
pub mod parse;
pub mod probe;
pub mod project;
pub mod report;
pub mod result;
pub mod source;
pub mod verifier;

pub use check::VerifyPolicy;
pub use project::{stage_files, LeanProject, Pins, ProjectError, ProofTask};
pub use report::{FileReport, VerificationReport, Violation, ViolationKind};
pub use result::{write_result, ProofResult, RunLayout, Status};
pub use verifier::{Verification, Verifier, VerifyError, VerifyOptions, DEFAULT_TIMEOUT};
