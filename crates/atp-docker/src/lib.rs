//! Docker backend (in progress).

pub mod build;
