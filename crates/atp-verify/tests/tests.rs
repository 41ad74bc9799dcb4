//! atp-verify's integration tests, one binary (modules below). Engine tests run the verifier
//! through Docker and the test image's stand-in `lake` and stand-in checker (`ATP_TEST_IMAGE`,
//! default `atp-test:latest`, built by `cargo xtask test-image`); they skip loudly without an
//! engine and fail under `ATP_REQUIRE_DOCKER=1`.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;
mod conformance;
mod corpus_source;
mod engine;
mod holes;
mod modal_fake;
mod script_failures;
mod selftest;
mod soundness;
