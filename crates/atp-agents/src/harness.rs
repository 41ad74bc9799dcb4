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
    /// Move the CLI's own logs from the workdir into `logs` after the run.
    /// The CLI's stream (`logs/stdout.txt`) as a conversation, when the harness can read it.
    fn transcript(&self, _stdout: &str) -> Option<atp_prover::Transcript> {
        None
    }

    fn collect_logs(&self, _wd: &Path, _logs: &Path) -> std::io::Result<Vec<PathBuf>> {
        Ok(Vec::new())
    }
}
