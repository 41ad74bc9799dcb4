//! What a caller asks of a session and of one exec, and the one policy that checks it.
//!
//! Invariant: every engine runs [`SessionOptions::validate`] before it creates anything and
//! [`ExecOptions::validate`] / [`ExecOptions::timing`] for every exec, so the rules below hold
//! the same on every backend: the workdir is an existing directory (canonicalised); a mount's
//! host path exists (canonicalised) and its target is an absolute container path other than the
//! workdir; environment names are shell identifiers; the caller's labels never replace
//! `atp.run-id` / `atp.managed`; the network is [`NetworkMode::effective`]; a command's budget is its own, else
//! the session's, else [`crate::layout::DEFAULT_COMMAND_TIMEOUT`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::layout::{
    DEFAULT_COMMAND_TIMEOUT, DEFAULT_KILL_GRACE, LABEL_MANAGED, LABEL_RUN_ID, WORKDIR,
};
use crate::{BackendError, Result, RunId};

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

/// What a session's commands need from the image beyond what atp's own wrapping needs (see
/// [`crate::contract`]). The engine checks them once per image id before handing out the first
/// session, and fails with [`BackendError::ImageContract`] naming what is missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirements {
    /// Commands `bash` must find (`command -v`), e.g. `mktemp`, `lake`.
    pub commands: BTreeSet<String>,
    /// Absolute paths that must exist in the image, e.g. `/workspace/lakefile.toml`.
    pub paths: BTreeSet<String>,
}

impl Requirements {
    /// Requirements on commands only.
    pub fn commands<I, S>(commands: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Requirements {
            commands: commands.into_iter().map(Into::into).collect(),
            paths: BTreeSet::new(),
        }
    }

    /// These requirements plus `paths`.
    pub fn with_paths<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.paths.extend(paths.into_iter().map(Into::into));
        self
    }

    /// The union of `self` and `other`.
    pub fn union(&self, other: &Requirements) -> Requirements {
        Requirements {
            commands: self.commands.union(&other.commands).cloned().collect(),
            paths: self.paths.union(&other.paths).cloned().collect(),
        }
    }

    /// Whether nothing is required.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty() && self.paths.is_empty()
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
    /// Extra labels; `atp.run-id` and `atp.managed` are always added and cannot be set here.
    pub labels: BTreeMap<String, String>,
    pub resources: Resources,
    pub network: NetworkMode,
    /// The run this session belongs to; a fresh id when `None`.
    pub run_id: Option<RunId>,
    /// What the session's commands need from the image (checked once per image id).
    pub requires: Requirements,
}

/// [`SessionOptions`] after [`SessionOptions::validate`]: paths canonical, run id chosen.
#[derive(Debug, Clone)]
pub struct ValidSession {
    /// The workdir, canonical.
    pub workdir: PathBuf,
    /// The mounts, host paths canonical.
    pub mounts: Vec<Mount>,
    /// The run id every sandbox of the session is labelled with.
    pub run_id: RunId,
    /// The caller's labels plus `atp.run-id` and `atp.managed=true`.
    pub labels: BTreeMap<String, String>,
    /// [`NetworkMode::effective`] of the engine's and the session's network.
    pub network: NetworkMode,
}

impl SessionOptions {
    /// Check these options for a session over `workdir` on an engine whose own network setting
    /// is `engine_network`. One policy for every engine (see the module docs); the error is one
    /// [`BackendError::InvalidInput`] line naming the bad input and the remedy.
    pub fn validate(&self, workdir: &Path, engine_network: NetworkMode) -> Result<ValidSession> {
        let workdir = workdir.canonicalize().map_err(|e| {
            BackendError::InvalidInput(format!(
                "workdir {} is not accessible ({e}) — pass an existing directory",
                workdir.display()
            ))
        })?;
        if !workdir.is_dir() {
            return Err(BackendError::InvalidInput(format!(
                "workdir {} is not a directory — pass an existing directory",
                workdir.display()
            )));
        }
        let mut mounts = Vec::with_capacity(self.mounts.len());
        let mut targets = BTreeSet::new();
        for m in &self.mounts {
            let host = m.host.canonicalize().map_err(|e| {
                BackendError::InvalidInput(format!(
                    "mount source {} is not accessible ({e}) — create it or drop the mount",
                    m.host.display()
                ))
            })?;
            let target = m.container.trim_end_matches('/');
            if !m.container.starts_with('/') || target.is_empty() {
                return Err(BackendError::InvalidInput(format!(
                    "mount target {:?} must be an absolute container path other than / — e.g. /root/.config/x",
                    m.container
                )));
            }
            if target.split('/').any(|c| c == "..") {
                return Err(BackendError::InvalidInput(format!(
                    "mount target {:?} contains `..` — give the path without it",
                    m.container
                )));
            }
            if target == WORKDIR || WORKDIR.starts_with(&format!("{target}/")) {
                return Err(BackendError::InvalidInput(format!(
                    "mount target {:?} would hide the workdir {WORKDIR} — mount it elsewhere",
                    m.container
                )));
            }
            if !targets.insert(target.to_string()) {
                return Err(BackendError::InvalidInput(format!(
                    "mount target {:?} is given twice — keep one mount per target",
                    m.container
                )));
            }
            mounts.push(Mount {
                host,
                container: target.to_string(),
                read_only: m.read_only,
            });
        }
        validate_env(&self.env)?;
        for key in self.labels.keys() {
            if key == LABEL_RUN_ID || key == LABEL_MANAGED {
                return Err(BackendError::InvalidInput(format!(
                    "label {key} is set by atp itself — set `run_id` instead or drop the label"
                )));
            }
            if key.is_empty() {
                return Err(BackendError::InvalidInput(
                    "a label has an empty name — give every label a name".into(),
                ));
            }
        }
        for p in &self.requires.paths {
            if !p.starts_with('/') {
                return Err(BackendError::InvalidInput(format!(
                    "required path {p:?} must be absolute"
                )));
            }
        }
        let run_id = self.run_id.clone().unwrap_or_default();
        let mut labels = self.labels.clone();
        labels.insert(LABEL_RUN_ID.into(), run_id.to_string());
        labels.insert(LABEL_MANAGED.into(), "true".into());
        Ok(ValidSession {
            workdir,
            mounts,
            run_id,
            labels,
            network: NetworkMode::effective(engine_network, self.network),
        })
    }
}

/// Environment names must be shell identifiers: they are exported by a shell on some engines
/// and passed as `NAME=value` on others.
fn validate_env(env: &BTreeMap<String, String>) -> Result<()> {
    for k in env.keys() {
        let ok = !k.is_empty()
            && !k.starts_with(|c: char| c.is_ascii_digit())
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            return Err(BackendError::InvalidInput(format!(
                "environment variable name {k:?} is not a shell identifier — use letters, digits and _"
            )));
        }
    }
    Ok(())
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

/// The timing of one exec, computed by [`ExecOptions::timing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecTiming {
    /// The command's own budget (given to GNU `timeout`).
    pub budget: Duration,
    /// SIGTERM → SIGKILL grace once the budget elapsed.
    pub grace: Duration,
    /// Client-side deadline: budget + grace + the engine's margin; past it the engine is stalled.
    pub backstop: Duration,
}

impl ExecOptions {
    /// Options with a budget.
    pub fn with_timeout(timeout: Duration) -> Self {
        ExecOptions {
            timeout: Some(timeout),
            ..Default::default()
        }
    }

    /// Check the exec's inputs (environment names are shell identifiers).
    pub fn validate(&self) -> Result<()> {
        validate_env(&self.env)
    }

    /// Budget (this exec's, else `session_default`, else the layout's default), grace, and the
    /// backstop `margin` past both.
    pub fn timing(&self, session_default: Option<Duration>, margin: Duration) -> ExecTiming {
        let budget = self
            .timeout
            .or(session_default)
            .unwrap_or(DEFAULT_COMMAND_TIMEOUT);
        let grace = self.kill_grace.unwrap_or(DEFAULT_KILL_GRACE);
        ExecTiming {
            budget,
            grace,
            backstop: budget + grace + margin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> SessionOptions {
        SessionOptions::default()
    }

    fn refused(o: &SessionOptions, wd: &Path) -> String {
        let e = o.validate(wd, NetworkMode::Default).expect_err("refused");
        assert_eq!(e.kind(), "invalid_input", "{e}");
        let msg = e.to_string();
        assert!(!msg.contains('\n'), "{msg}");
        msg
    }

    #[test]
    fn workdir_and_mount_sources_must_exist_and_are_canonicalised() {
        let wd = tempfile::tempdir().expect("tmp");
        let msg = refused(&opts(), &wd.path().join("missing"));
        assert!(
            msg.contains("workdir") && msg.contains("existing directory"),
            "{msg}"
        );
        std::fs::write(wd.path().join("f"), "x").expect("w");
        assert!(refused(&opts(), &wd.path().join("f")).contains("not a directory"));

        let mut o = opts();
        o.mounts = vec![Mount::read_only(wd.path().join("nope"), "/data")];
        assert!(refused(&o, wd.path()).contains("mount source"));

        std::fs::create_dir(wd.path().join("d")).expect("mk");
        o.mounts = vec![Mount::read_only(wd.path().join("d/../d"), "/data/")];
        let v = o.validate(wd.path(), NetworkMode::Default).expect("valid");
        assert_eq!(v.workdir, wd.path().canonicalize().expect("c"));
        assert_eq!(
            v.mounts[0].host,
            wd.path().join("d").canonicalize().expect("c")
        );
        assert_eq!(v.mounts[0].container, "/data");
    }

    #[test]
    fn mount_targets_are_absolute_unique_and_never_hide_the_workdir() {
        let wd = tempfile::tempdir().expect("tmp");
        let src = wd.path().to_path_buf();
        for (target, want) in [
            ("data", "absolute"),
            ("/", "absolute"),
            ("/a/../etc", "`..`"),
            ("/workspace/wd", "hide the workdir"),
            ("/workspace", "hide the workdir"),
        ] {
            let mut o = opts();
            o.mounts = vec![Mount::read_only(&src, target)];
            let msg = refused(&o, wd.path());
            assert!(msg.contains(want), "{target}: {msg}");
        }
        let mut o = opts();
        o.mounts = vec![Mount::read_only(&src, "/x"), Mount::writable(&src, "/x/")];
        assert!(refused(&o, wd.path()).contains("twice"));
        o.mounts = vec![Mount::read_only(&src, "/workspace/wd2")];
        assert!(o.validate(wd.path(), NetworkMode::Default).is_ok());
    }

    #[test]
    fn env_names_are_shell_identifiers_for_sessions_and_execs() {
        let wd = tempfile::tempdir().expect("tmp");
        for bad in ["", "1A", "A-B", "A=B", "A B", "Ä"] {
            let mut o = opts();
            o.env = BTreeMap::from([(bad.to_string(), "v".to_string())]);
            assert!(
                refused(&o, wd.path()).contains("shell identifier"),
                "{bad:?}"
            );
            let e = ExecOptions {
                env: o.env.clone(),
                ..Default::default()
            };
            assert_eq!(e.validate().expect_err("bad").kind(), "invalid_input");
        }
        let mut o = opts();
        o.env = BTreeMap::from([("_A1".to_string(), "any 'value' $x".to_string())]);
        assert!(o.validate(wd.path(), NetworkMode::Default).is_ok());
    }

    #[test]
    fn reserved_labels_are_refused_and_always_added() {
        let wd = tempfile::tempdir().expect("tmp");
        let mut o = opts();
        o.labels = BTreeMap::from([(LABEL_RUN_ID.to_string(), "x".to_string())]);
        assert!(refused(&o, wd.path()).contains("set by atp"));
        let run = RunId::new();
        o.labels = BTreeMap::from([("team".to_string(), "a".to_string())]);
        o.run_id = Some(run.clone());
        let v = o.validate(wd.path(), NetworkMode::Default).expect("valid");
        assert_eq!(v.labels[LABEL_RUN_ID], run.as_str());
        assert_eq!(v.labels[LABEL_MANAGED], "true");
        assert_eq!(v.labels["team"], "a");
        assert_eq!(v.run_id, run);
    }

    #[test]
    fn validate_applies_the_effective_network() {
        let wd = tempfile::tempdir().expect("tmp");
        let v = opts()
            .validate(wd.path(), NetworkMode::None)
            .expect("valid");
        assert_eq!(v.network, NetworkMode::None);
        let mut o = opts();
        o.network = NetworkMode::Host;
        let v = o.validate(wd.path(), NetworkMode::Default).expect("valid");
        assert_eq!(v.network, NetworkMode::Host);
    }

    #[test]
    fn exec_timing_prefers_the_exec_then_the_session_then_the_default() {
        let margin = Duration::from_secs(60);
        let e = ExecOptions::default();
        let t = e.timing(None, margin);
        assert_eq!(t.budget, DEFAULT_COMMAND_TIMEOUT);
        assert_eq!(t.grace, DEFAULT_KILL_GRACE);
        assert_eq!(
            t.backstop,
            DEFAULT_COMMAND_TIMEOUT + DEFAULT_KILL_GRACE + margin
        );
        let t = e.timing(Some(Duration::from_secs(7)), margin);
        assert_eq!(t.budget, Duration::from_secs(7));
        let e = ExecOptions {
            timeout: Some(Duration::from_secs(3)),
            kill_grace: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        let t = e.timing(Some(Duration::from_secs(7)), Duration::from_secs(2));
        assert_eq!(
            (t.budget, t.grace, t.backstop),
            (
                Duration::from_secs(3),
                Duration::from_secs(1),
                Duration::from_secs(6)
            )
        );
    }

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
