//! atp's model of Lean 4 sources and lake projects, with no sandbox and no verifier.
//!
//! - [`lexer`]: a token scanner following Lean's lexical rules (comments, string/char
//!   literals, identifiers, `«…»` names) — `sorry` counts only as a whole token.
//! - [`source`]: a file as top-level commands with each declaration's kind, name, modifiers,
//!   signature and scope.
//! - [`LeanProject`] / [`stage_files`]: lake projects on the host, their pins and sources.
//!
//! Architecture invariant: pure — no engine, no network, no process; it depends only on
//! `atp-image` (for the pins and the built-in skeleton).

pub mod keywords;
pub mod lexer;
mod project;
pub mod source;
pub mod walk;

pub use project::{stage_files, LeanProject, ProjectError};
