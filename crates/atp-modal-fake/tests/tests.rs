//! atp-modal-fake's integration tests, one binary: atp's Modal client and backend, and Modal's
//! own Python SDK, against the fake.

mod backend;
mod client;
mod common;
mod python_sdk;
