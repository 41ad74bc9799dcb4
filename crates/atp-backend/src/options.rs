use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::RunId;

/// A host path made visible inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub host: PathBuf,
    pub container: String,
    /// Read-only unless a caller explicitly needs to write (credential dirs stay read-only).
    pub read_only: bool,
}

impl Mount {
    /// A read-only mount.
    pub fn read_only(host: impl Into<PathBuf>, container: impl Into<String>) -> Self {
        Mount {
            host: host.into(),
            container: container.into(),
            read_only: true,
        }
    }

    /// A writable mount.
    pub fn writable(host: impl Into<PathBuf>, container: impl Into<String>) -> Self {
        Mount {
            host: host.into(),
            container: container.into(),
            read_only: false,
        }
    }
}

/// Compute resources requested for a sandbox; `None` leaves the engine's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// CPUs (a floor on Modal, a limit on Docker).
    pub cpus: Option<f64>,
    /// Memory in MiB.
    pub memory_mib: Option<u64>,
}

/// Network access of a sandbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// The engine's default network (agents must reach their model APIs).
    #[default]
    Default,
    /// No network at all (tests, verification).
    None,
    /// The host's network stack (Docker `--network host`): the sandbox reaches services on the
    /// host's loopback, such as a local model gateway or a test fake. Engines without such a
    /// thing treat it as [`NetworkMode::Default`].
    Host,
}

impl NetworkMode {
    /// The network a session gets when the backend is configured with `backend` and the
    /// session asks for `session`: `None` on either side wins; otherwise the session's explicit
    /// choice, else the backend's.
    pub fn effective(backend: NetworkMode, session: NetworkMode) -> NetworkMode {
        match (backend, session) {
            (NetworkMode::None, _) | (_, NetworkMode::None) => NetworkMode::None,
            (b, NetworkMode::Default) => b,
            (_, s) => s,
        }
    }
}

/// How to open a session.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Environment for every command of the session.
    pub env: BTreeMap<String, String>,
    /// Extra mounts besides the workdir.
    pub mounts: Vec<Mount>,
    /// Default budget of each command (overridden per exec) and the sandbox lifetime on engines
    /// that need one.
    pub timeout: Option<Duration>,
    /// Extra labels; `atp.run-id` and `atp.managed` are always added.
    pub labels: BTreeMap<String, String>,
    pub resources: Resources,
    pub network: NetworkMode,
    /// The run this session belongs to; a fresh id when `None`.
    pub run_id: Option<RunId>,
}

/// How to run one command.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Environment added to the session's.
    pub env: BTreeMap<String, String>,
    /// The command's budget; the session's timeout, else 30 minutes, when `None`.
    pub timeout: Option<Duration>,
    /// Grace between SIGTERM and SIGKILL when the budget elapses (default 30 s).
    pub kill_grace: Option<Duration>,
    /// Bytes fed to stdin, then EOF. `None`: stdin is closed (agent CLIs hang on an open stdin).
    pub stdin: Option<Bytes>,
}

impl ExecOptions {
    /// Options with a budget.
    pub fn with_timeout(timeout: Duration) -> Self {
        ExecOptions {
            timeout: Some(timeout),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_network_on_either_side_wins_then_the_session_chooses() {
        use NetworkMode::*;
        assert_eq!(NetworkMode::effective(None, Host), None);
        assert_eq!(NetworkMode::effective(Host, None), None);
        assert_eq!(NetworkMode::effective(Default, Host), Host);
        assert_eq!(NetworkMode::effective(Host, Default), Host);
        assert_eq!(NetworkMode::effective(Default, Default), Default);
    }
}
