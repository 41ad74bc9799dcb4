//! atp's proof verifier (the project model it reads is `atp-lean`'s).
//!
//! - [`check`]: source-level checks — statements against the original task, red flags (a fast
//!   first pass with named reasons).
//! - [`Verifier`]: compiles the candidate in a build sandbox of any
//!   [`atp_backend::ComputeBackend`], the original in a fresh check sandbox, runs the image's
//!   checker (`atp-check`) over both, and combines everything into a [`VerificationReport`];
//!   `verified` needs the checker's agreement.
//! - [`selftest`]: the canaries every image must pass before its first verdict.
//! - [`parse`]: parsers for what Lean and Lake print; [`corpus`]: exploit corpora.

pub mod check;
pub mod corpus;
pub mod holes;
pub mod parse;
mod protocol;
mod report;
mod script;
pub mod selftest;
mod staging;
mod verifier;

pub use check::VerifyPolicy;
pub use holes::{DefinitionHole, HoleCheck};
pub use report::{FileReport, VerificationReport, Violation, ViolationKind};
pub use script::SCRIPT_TOOLS;
pub use selftest::SelfTestReport;
pub use verifier::{
    Verification, Verifier, VerifyError, VerifyOptions, DEFAULT_TIMEOUT, VERIFY_BACKSTOP_MARGIN,
};
