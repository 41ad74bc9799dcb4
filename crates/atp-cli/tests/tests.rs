//! atp-cli's integration tests, one binary: the real `atp` binary as a user runs it.

mod agents_cli;
mod bench_cli;
mod cli;
mod common;
mod hosted_cli;
mod image;
mod modal_cli;
mod prove_cli;
mod signals;
mod verify_cli;
