//! The [`Harness`] contract: what one agent CLI needs to run inside atp's sandbox.
//!
//! **API Boundary.** A harness declares its credential, stages its files into the workdir,
//! renders its launch script and parses its stream. It never opens a session, never talks HTTP
//! and never judges the result: [`crate::AgentProver`] runs it and the lifecycle verifies.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use atp_backend::Mount;
use atp_prover::{AuthStatus, EnvSource, ProgressEvent, Usage};

/// Where atp stages its own files inside the workdir (hidden: never part of the project).
pub const ATP_DIR: &str = ".atp";
/// The prompt, staged as a file (the launch script reads it; no quoting games).
pub const PROMPT_FILE: &str = ".atp/prompt.txt";
/// The rendered launch script.
pub const LAUNCH_FILE: &str = ".atp/launch.sh";

/// The credentials of one run: environment for the agent's command (secret values — never
/// logged, never written into the workdir) and mounts of per-run copies of credential files.
#[derive(Default)]
pub struct Credentials {
    pub exec_env: BTreeMap<String, String>,
    pub mounts: Vec<Mount>,
    /// Which source was used, for the record (e.g. `env ANTHROPIC_API_KEY`) — never a value.
    pub source: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("exec_env_names", &self.exec_env.keys().collect::<Vec<_>>())
            .field("mounts", &self.mounts)
            .field("source", &self.source)
            .finish()
    }
}

/// A credential problem found when the run is about to start.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CredentialError(pub String);

/// What a stream parser learned from a whole transcript.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub usage: Usage,
    /// Cost the CLI reported itself.
    pub reported_cost: Option<f64>,
    /// The model the CLI reported.
    pub model: Option<String>,
    /// The agent's final text.
    pub result_text: Option<String>,
    /// Whether the CLI printed its final result event (a killed CLI does not).
    pub finished: bool,
    /// Whether the CLI's final event says it failed.
    pub is_error: bool,
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// A parser of one CLI's stdout, fed line by line as it arrives.
///
/// Invariant: never panics on any input — a malformed, truncated or hostile line is skipped.
pub trait StreamParser: Send {
    /// One stdout line; returns the live events it implies.
    fn line(&mut self, line: &str) -> Vec<ProgressEvent>;
    /// Everything learned so far (callable at any time, e.g. after a kill).
    fn finish(&mut self) -> Parsed;
}

/// The knobs every harness records in `Harness::config` — its name, model, reasoning effort and
/// whether the model API's base URL was overridden (never the URL: it may carry a token); each
/// harness adds its own.
pub(crate) fn base_config(
    harness: &str,
    model: &str,
    effort: Option<&str>,
    api_base_overridden: bool,
) -> BTreeMap<String, serde_json::Value> {
    BTreeMap::from([
        ("harness".to_string(), serde_json::json!(harness)),
        ("model".to_string(), serde_json::json!(model)),
        ("effort".to_string(), serde_json::json!(effort)),
        (
            "api_base_overridden".to_string(),
            serde_json::json!(api_base_overridden),
        ),
    ])
}

/// One agent CLI.
pub trait Harness: Send + Sync + fmt::Debug + 'static {
    /// The prover name users type (`claude`).
    fn prover_name(&self) -> &str;
    /// The harness's name (`claude_code`).
    fn harness_name(&self) -> &'static str;
    fn model(&self) -> &str;
    fn effort(&self) -> Option<&str>;
    /// Every knob (no secrets), for result.json.
    fn config(&self) -> BTreeMap<String, serde_json::Value>;

    /// The credential this harness would use, read from `env` (and files it knows).
    fn auth(&self, env: &EnvSource) -> AuthStatus;
    /// The credentials for one run. `private` is a fresh 0700 directory outside `OUT/` that
    /// outlives the session (for copies of credential files); `home` the sandbox user's home.
    fn credentials(
        &self,
        env: &EnvSource,
        private: &Path,
        home: &str,
    ) -> Result<Credentials, CredentialError>;

    /// Where skills go, relative to the workdir (`None`: the CLI has no skills).
    fn skills_dir(&self) -> Option<&'static str>;
    /// Stage config files (MCP servers, agent definitions, plugins) into `wd`.
    fn stage(&self, wd: &Path) -> std::io::Result<()>;
    /// The launch script (bash, run from the workdir; the prompt is in [`PROMPT_FILE`]).
    fn launch_script(&self) -> String;
    /// Non-secret environment of the agent's command (e.g. `IS_SANDBOX=1`).
    fn static_env(&self) -> BTreeMap<String, String>;
    fn parser(&self) -> Box<dyn StreamParser>;
    /// A command printing the CLI's version, run once per session and recorded in the result.
    fn version_command(&self) -> Option<String> {
        None
    }
    /// The CLI's stream (`logs/stdout.txt`) as a conversation, when the harness can read it.
    fn transcript(&self, _stdout: &str) -> Option<atp_prover::Transcript> {
        None
    }
    /// After the sandbox is gone: move the CLI's own logs from `wd` into `logs` and read what
    /// they tell (usage and cost some CLIs write only to files). `wd` is untrusted: read it
    /// only through [`crate::safe_fs`].
    fn collect(&self, _wd: &Path, _logs: &Path) -> std::io::Result<Collected> {
        Ok(Collected::default())
    }
}

/// What a harness read from the files its CLI left (see [`Harness::collect`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Collected {
    /// Token counts that replace the stream's (turns, tool calls and the stop reason are kept
    /// from the stream when these have none).
    pub usage: Option<Usage>,
    /// A cost the CLI wrote down.
    pub reported_cost: Option<f64>,
    /// The CLI reports no token usage at all (its cost must not be priced from zeros).
    pub usage_unknown: bool,
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// Files written into `OUT/logs`.
    pub logs: Vec<PathBuf>,
}

/// Where the per-run copies of credential files are mounted (read-only) in the sandbox; launch
/// scripts copy what their CLI must be able to rewrite into its home from there.
pub const CREDENTIALS_MOUNT: &str = "/run/atp-credentials";

impl Credentials {
    /// Write `bytes` as `private/rel` (0600, parent directories 0700) and mount `private`
    /// read-only at [`CREDENTIALS_MOUNT`]. `private` is outside `OUT/` (see
    /// `atp_prover::Preparation::private`), so the copy never reaches the run's output.
    pub fn add_file(
        &mut self,
        private: &Path,
        rel: &str,
        bytes: &[u8],
    ) -> Result<(), CredentialError> {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let err = |e: std::io::Error| {
            CredentialError(format!(
                "cannot copy a credential file into {}: {e}",
                private.display()
            ))
        };
        let dest = private.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(err)?;
            let mut p = parent;
            while p.starts_with(private) {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
                match p.parent() {
                    Some(up) if up != p => p = up,
                    _ => break,
                }
            }
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&dest)
            .map_err(err)?;
        f.write_all(bytes).map_err(err)?;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
        if !self.mounts.iter().any(|m| m.container == CREDENTIALS_MOUNT) {
            self.mounts
                .push(Mount::read_only(private.to_path_buf(), CREDENTIALS_MOUNT));
        }
        Ok(())
    }

    /// Copy the credential file `src` alone as `private/rel` (see [`Credentials::add_file`]).
    pub fn copy_file(
        &mut self,
        src: &Path,
        private: &Path,
        rel: &str,
    ) -> Result<(), CredentialError> {
        let bytes = std::fs::read(src).map_err(|e| {
            CredentialError(format!(
                "{}: cannot read the credential file: {e}",
                src.display()
            ))
        })?;
        self.add_file(private, rel, &bytes)
    }
}

/// The host user's home directory as `env` sees it.
pub fn home_dir(env: &EnvSource) -> Option<PathBuf> {
    env.get("HOME").map(PathBuf::from)
}
