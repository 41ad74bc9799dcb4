//! Integration tests of the `aristotle` prover against wiremock on 127.0.0.1 (one binary).
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod archive;
mod common;
mod flow;
