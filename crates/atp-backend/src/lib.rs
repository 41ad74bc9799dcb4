//! The sandbox contract of atp.
//!
//! A [`ComputeBackend`] opens [`ComputeSession`]s: an isolated sandbox with a host working
//! directory attached at [`layout::WORKDIR`]. A session runs commands ([`ComputeSession::exec`])
//! that stream their stdout line by line through a [`CommandHandle`], moves the working directory
//! in and out ([`ComputeSession::sync_in`] / [`ComputeSession::sync_out`]) and is torn down by
//! [`ComputeSession::close`] — or, when it is dropped without being closed, by a
//! [`TeardownGuard`] that blocks until the sandbox is gone.
//!
//! Architecture invariant: this crate knows nothing about Lean, Docker or Modal. It fixes the
//! layout every sandbox shares, the command wrapping (GNU `timeout` under `bash -lc`), the one
//! policy for session and exec inputs ([`SessionOptions::validate`], [`ExecOptions::timing`]),
//! the image contract ([`contract`]), the result and error types, and the machinery every
//! backend reuses (line splitting, timeouts, teardown).

pub mod contract;
mod create;
mod error;
mod guard;
mod handle;
pub mod layout;
mod options;
mod run_id;
pub mod serde_secs;
mod session;
mod split;

pub use create::create_owned;
pub use error::{one_line, BackendError, Result};
pub use guard::TeardownGuard;
pub use handle::{CommandHandle, ExecDriver, OutputSink};
pub use options::{
    ExecOptions, ExecTiming, Mount, NetworkMode, Requirements, Resources, SessionOptions,
    ValidSession,
};
pub use run_id::RunId;
pub use session::{
    CommandResult, ComputeBackend, ComputeSession, GcEntry, GcFilter, Health, ImageInfo,
};
pub use split::LineSplitter;
