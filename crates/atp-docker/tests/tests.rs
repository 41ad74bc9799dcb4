//! atp-docker's integration tests, one binary (modules per subject).

mod agents_image;
mod build;
#[macro_use]
mod common;
mod contract;
mod engine;
