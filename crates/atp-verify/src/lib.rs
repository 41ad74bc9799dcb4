//! The Lean project model and atp's proof verifier.
pub mod check;
pub mod lexer;
pub mod parse;
pub mod project;
pub mod report;
pub mod source;
