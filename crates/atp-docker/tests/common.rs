//! The rig of the engine tests, over `atp-test-support`: options, sessions, the skip macro.

use std::time::Duration;

use atp_backend::{
    ComputeBackend, ComputeSession, ExecOptions, NetworkMode, RunId, SessionOptions,
};
use atp_docker::DockerBackend;

/// Exec options with a budget of `secs` and a one-second grace.
pub fn quick(secs: u64) -> ExecOptions {
    ExecOptions {
        timeout: Some(Duration::from_secs(secs)),
        kill_grace: Some(Duration::from_secs(1)),
        ..Default::default()
    }
}

/// Session options for a test: its own run id, no network.
pub fn opts(run: &RunId) -> SessionOptions {
    SessionOptions {
        run_id: Some(run.clone()),
        network: NetworkMode::None,
        ..Default::default()
    }
}

/// A fresh temp dir as a workdir.
pub fn workdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// A session on `b` under a fresh run id over a fresh temp workdir (kept alive by the caller).
pub async fn open(b: &DockerBackend) -> (RunId, tempfile::TempDir, Box<dyn ComputeSession>) {
    let run = RunId::new();
    let wd = workdir();
    let s = b.session(wd.path(), opts(&run)).await.expect("session");
    (run, wd, s)
}

/// The network-less test backend, or return from the test after a loud skip.
#[macro_export]
macro_rules! engine_or_skip {
    ($name:expr) => {
        match atp_test_support::docker($name).await {
            Some(b) => b,
            None => return,
        }
    };
}
