use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{BackendError, CommandHandle, ExecOptions, Result, RunId, SessionOptions};

/// The outcome of one command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandResult {
    /// Exit status; 128+N when a signal N ended the command; -1 when unknown.
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
    #[serde(rename = "duration_s", with = "crate::serde_secs")]
    pub duration: Duration,
}

impl CommandResult {
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

/// What a backend's engine says about itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub backend: String,
    /// Where the engine was reached (socket path, URL); never contains credentials.
    pub endpoint: String,
    /// Engine version, when the engine reports one.
    pub version: Option<String>,
    /// Negotiated API version, when meaningful.
    pub api_version: Option<String>,
    /// Backend-specific facts (e.g. which credential source is in use — never its value).
    pub details: BTreeMap<String, String>,
}

/// A sandbox image as the backend sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageInfo {
    pub name: String,
    /// Engine id of the image.
    pub id: String,
    /// The image's labels (pins are read from these by the image crate).
    pub labels: BTreeMap<String, String>,
    pub size_bytes: Option<u64>,
    /// Registry digests (`repo@sha256:…`) of the image, when the engine knows them (a pulled
    /// image); empty for images built or imported locally.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repo_digests: Vec<String>,
}

/// Which managed sandboxes `gc` considers.
#[derive(Debug, Clone, Default)]
pub struct GcFilter {
    /// Only sandboxes of this run.
    pub run_id: Option<RunId>,
    /// Only sandboxes created at least this long ago.
    pub older_than: Option<Duration>,
    /// List without removing.
    pub dry_run: bool,
}

/// One managed sandbox found by `gc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GcEntry {
    pub id: String,
    pub name: Option<String>,
    pub run_id: Option<String>,
    /// Creation time, seconds since the Unix epoch, when known.
    pub created_unix: Option<i64>,
    pub state: Option<String>,
    /// Whether it was removed by this call.
    pub removed: bool,
}

/// A live sandbox with a host working directory attached at [`crate::layout::WORKDIR`].
///
/// Invariants: `close` is idempotent and tears the sandbox down; a session dropped without
/// `close` is still torn down (see [`crate::TeardownGuard`]); after `close`, `exec` fails with
/// [`BackendError::Closed`].
#[async_trait]
pub trait ComputeSession: Send + Sync + fmt::Debug {
    /// Engine id of the sandbox (container id, sandbox id).
    fn id(&self) -> &str;
    /// The run this sandbox is labelled with.
    fn run_id(&self) -> &RunId;
    /// The host working directory.
    fn workdir(&self) -> &Path;
    /// Start a command under `bash -lc` in the workdir (see [`crate::layout::exec_argv`]).
    async fn exec(&self, command: &str, opts: ExecOptions) -> Result<CommandHandle>;
    /// Push the host workdir into the sandbox (a no-op for bind mounts).
    async fn sync_in(&self) -> Result<()>;
    /// Pull the sandbox workdir (without `.lake`) back over the host workdir (no-op for binds).
    async fn sync_out(&self) -> Result<()>;
    /// Tear the sandbox down. Idempotent.
    ///
    /// On an engine whose workdir is a copy (Modal), `close` first pulls the workdir back like
    /// [`ComputeSession::sync_out`] when a command ran since the last pull, so nothing a command
    /// wrote is lost; the sandbox is torn down even when that pull fails, and the pull's error
    /// is returned. Call `sync_out` yourself to handle a failed pull before closing. On a bind
    /// mount (Docker) there is nothing to pull.
    async fn close(&self) -> Result<()>;

    /// Run a command to completion.
    async fn exec_wait(&self, command: &str, opts: ExecOptions) -> Result<CommandResult> {
        self.exec(command, opts).await?.wait().await
    }
}

/// An engine that creates sandboxes from one configured image.
#[async_trait]
pub trait ComputeBackend: Send + Sync + fmt::Debug {
    /// `docker`, `modal`, …
    fn name(&self) -> &str;
    /// The home directory of the sandbox user (where agent credentials are mounted).
    fn container_home(&self) -> &str;
    /// The configured image name.
    fn image(&self) -> &str;
    /// Reach the engine; [`BackendError::EngineUnavailable`] or [`BackendError::Credentials`]
    /// when it cannot be used.
    async fn health(&self) -> Result<Health>;
    /// The configured image; [`BackendError::ImageUnavailable`] when it does not exist.
    async fn image_info(&self) -> Result<ImageInfo>;
    /// Open a session over `workdir`. Fails before creating anything when the engine or the
    /// image is missing; a failed provision leaves nothing behind.
    async fn session(
        &self,
        workdir: &Path,
        opts: SessionOptions,
    ) -> Result<Box<dyn ComputeSession>>;
    /// Find (and unless `dry_run`, remove) sandboxes labelled `atp.managed=true`.
    async fn gc(&self, filter: GcFilter) -> Result<Vec<GcEntry>>;

    /// One command in a fresh session, closed afterwards whatever happens.
    async fn run(
        &self,
        workdir: &Path,
        command: &str,
        session: SessionOptions,
        exec: ExecOptions,
    ) -> Result<CommandResult> {
        let s = self.session(workdir, session).await?;
        let out = s.exec_wait(command, exec).await;
        let sync = match &out {
            Ok(_) => s.sync_out().await,
            Err(_) => Ok(()),
        };
        let closed = s.close().await;
        let r = out?;
        sync?;
        closed?;
        Ok(r)
    }
}

impl From<std::io::Error> for BackendError {
    fn from(e: std::io::Error) -> Self {
        BackendError::engine("host", "i/o", e)
    }
}
