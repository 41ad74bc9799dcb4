//! Integration tests of the `sample` prover (one binary): the Chat Completions client against
//! atp-model-fake, and pass@k through the prove lifecycle on the Docker engine.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod chat;
mod passk;
