//! atp's proof verifier (the project model it reads is `atp-lean`'s).
//!
//! - [`check`]: source-level checks — statements against the original task, red flags.
//! - [`parse`]: parsers for what Lean and Lake print.
//! - [`Verifier`]: compiles every file in a sandbox of any [`atp_backend::ComputeBackend`] with
//!   an axiom probe, and combines everything into a [`VerificationReport`].

pub mod check;
pub mod corpus;
pub mod holes;
pub mod parse;
mod probe;
mod report;
mod verifier;

pub use check::VerifyPolicy;
pub use holes::{DefinitionHole, HoleCheck};
pub use report::{FileReport, VerificationReport, Violation, ViolationKind};
pub use verifier::{
    Verification, Verifier, VerifyError, VerifyOptions, DEFAULT_TIMEOUT, VERIFY_BACKSTOP_MARGIN,
};
