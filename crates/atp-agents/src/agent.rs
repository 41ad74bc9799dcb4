//! [`AgentProver`]: any [`Harness`] as a [`Prover`] — stage, launch, stream, parse.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use atp_backend::ExecOptions;
use atp_prover::{
    run_logged, AuthStatus, CollectContext, EnvSource, GenOutcome, GenerateContext, Generation,
    Preparation, PrepareContext, ProveError, Prover, ProverInfo, ProverKind, RunEnd,
    SandboxRequest, Usage,
};
use serde_json::json;

use crate::harness::{Harness, StreamParser, ATP_DIR, LAUNCH_FILE, PROMPT_FILE};

/// Grace between SIGTERM and SIGKILL when an agent outlives its budget.
const AGENT_KILL_GRACE: Duration = Duration::from_secs(10);

/// An agent CLI run inside the prover's sandbox.
#[derive(Debug)]
pub struct AgentProver<H: Harness> {
    harness: H,
    env: EnvSource,
    /// Extra, non-secret environment for the agent's command (`--env K=V`).
    extra_env: BTreeMap<String, String>,
}

impl<H: Harness> AgentProver<H> {
    /// `harness` reading its credentials from the process environment.
    pub fn new(harness: H) -> Self {
        Self::with_env(harness, EnvSource::process())
    }

    /// `harness` reading its credentials from `env`.
    pub fn with_env(harness: H, env: EnvSource) -> Self {
        AgentProver {
            harness,
            env,
            extra_env: BTreeMap::new(),
        }
    }

    /// Add non-secret environment variables for the agent.
    pub fn with_extra_env(mut self, env: BTreeMap<String, String>) -> Self {
        self.extra_env = env;
        self
    }

    pub fn harness(&self) -> &H {
        &self.harness
    }
}

/// A fresh private directory (0700, outside `OUT/`) for per-run copies of credential files.
pub(crate) fn private_dir() -> Result<tempfile::TempDir, ProveError> {
    let private = tempfile::Builder::new()
        .prefix("atp-cred-")
        .tempdir()
        .map_err(|e| ProveError::Output {
            path: std::env::temp_dir().display().to_string(),
            message: format!("cannot create a private directory: {e}"),
        })?;
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).map_err(
        |e| ProveError::Output {
            path: private.path().display().to_string(),
            message: e.to_string(),
        },
    )?;
    Ok(private)
}

/// The command that starts a staged agent.
pub fn launch_command() -> String {
    format!("bash {LAUNCH_FILE}")
}

#[async_trait]
impl<H: Harness> Prover for AgentProver<H> {
    fn info(&self) -> ProverInfo {
        ProverInfo {
            name: self.harness.prover_name().to_string(),
            kind: ProverKind::Agent,
            model: Some(self.harness.model().to_string()),
            effort: self.harness.effort().map(str::to_string),
            config: self.harness.config(),
        }
    }

    fn auth(&self) -> AuthStatus {
        self.harness.auth(&self.env)
    }

    async fn prepare(&self, cx: &PrepareContext<'_>) -> Result<Preparation, ProveError> {
        let io = |what: &str, e: std::io::Error| ProveError::Output {
            path: cx.wd.display().to_string(),
            message: format!("cannot stage {what}: {e}"),
        };
        let atp = cx.wd.join(ATP_DIR);
        std::fs::create_dir_all(&atp).map_err(|e| io(ATP_DIR, e))?;
        std::fs::write(cx.wd.join(PROMPT_FILE), cx.prompt).map_err(|e| io(PROMPT_FILE, e))?;
        std::fs::write(cx.wd.join(LAUNCH_FILE), self.harness.launch_script())
            .map_err(|e| io(LAUNCH_FILE, e))?;
        self.harness
            .stage(cx.wd)
            .map_err(|e| io(self.harness.harness_name(), e))?;
        let private = private_dir()?;
        let creds = self
            .harness
            .credentials(&self.env, private.path(), cx.container_home)
            .map_err(|e| ProveError::Credentials(e.0))?;
        Ok(Preparation {
            sandbox: Some(SandboxRequest {
                mounts: creds.mounts,
                env: BTreeMap::new(),
            }),
            private: Some(private),
        })
    }

    async fn generate(&self, cx: GenerateContext<'_>) -> Generation {
        let Some(session) = cx.session else {
            return Generation::failed("internal", "an agent prover needs a sandbox session");
        };
        let creds = match cx.private {
            Some(private) => self
                .harness
                .credentials(&self.env, private, cx.container_home),
            None => return Generation::failed("internal", "no private directory for credentials"),
        };
        let creds = match creds {
            Ok(c) => c,
            Err(e) => return Generation::failed("credentials", e.0),
        };
        let version = match self.harness.version_command() {
            Some(cmd) => tool_version(session, &cmd).await,
            None => None,
        };
        let mut env = self.harness.static_env();
        env.extend(self.extra_env.clone());
        env.extend(creds.exec_env);
        let parser: Arc<Mutex<Box<dyn StreamParser>>> = Arc::new(Mutex::new(self.harness.parser()));
        let progress = Arc::clone(&cx.progress);
        let p2 = Arc::clone(&parser);
        let report = run_logged(
            session,
            &launch_command(),
            ExecOptions {
                env,
                timeout: Some(cx.remaining().max(Duration::from_secs(1))),
                kill_grace: Some(AGENT_KILL_GRACE),
                stdin: None,
            },
            &cx.layout.stdout(),
            &cx.layout.stderr(),
            &cx.cancel,
            move |line| {
                let events = match p2.lock() {
                    Ok(mut p) => p.line(line),
                    Err(poisoned) => poisoned.into_inner().line(line),
                };
                for e in events {
                    progress(e);
                }
            },
        )
        .await;
        let parsed = match parser.lock() {
            Ok(mut p) => p.finish(),
            Err(poisoned) => poisoned.into_inner().finish(),
        };
        let outcome = match &report.end {
            RunEnd::Exited(0) => GenOutcome::Finished,
            RunEnd::Exited(code) if parsed.finished => {
                tracing::warn!(code, "the agent exited non-zero after its result");
                GenOutcome::Finished
            }
            RunEnd::Exited(code) => GenOutcome::Failed {
                error: "agent_failed".into(),
                message: format!(
                    "{} exited with status {code} without a result{}",
                    self.harness.harness_name(),
                    last_line(&report.stderr)
                        .map(|l| format!(": {l}"))
                        .unwrap_or_default()
                ),
            },
            RunEnd::TimedOut => GenOutcome::TimedOut,
            RunEnd::Cancelled => GenOutcome::Cancelled,
            RunEnd::Failed(kind, msg) => GenOutcome::Failed {
                error: kind.clone(),
                message: msg.clone(),
            },
        };
        let mut g = Generation::new(outcome);
        g.usage = parsed.usage;
        if report.end == RunEnd::TimedOut {
            g.usage.stop_reason = Some("timeout".into());
        }
        g.reported_cost = parsed.reported_cost;
        g.model = parsed.model;
        g.metadata = parsed.metadata;
        g.metadata
            .insert("harness".into(), json!(self.harness.harness_name()));
        if let Some(v) = version {
            g.metadata.insert("agent_version".into(), json!(v));
        }
        if let Some(src) = creds.source {
            g.metadata.insert("credential_source".into(), json!(src));
        }
        if let RunEnd::Exited(code) = report.end {
            g.metadata.insert("agent_exit_code".into(), json!(code));
        }
        g.metadata
            .insert("agent_stdout_lines".into(), json!(report.lines));
        if let Some(t) = parsed.result_text {
            g.metadata
                .insert("result_text".into(), json!(clip(&t, 2000)));
        }
        g
    }

    fn transcript(&self, stdout: &str) -> Option<atp_prover::Transcript> {
        self.harness.transcript(stdout)
    }

    fn collect(&self, cx: &CollectContext<'_>, gen: &mut Generation) {
        match self.harness.collect(cx.wd, &cx.layout.logs()) {
            Ok(c) => merge_collected(gen, c),
            Err(e) => tracing::warn!("collecting the agent's logs: {e}"),
        }
    }
}

/// Fold what a harness read from its CLI's files into the generation.
pub(crate) fn merge_collected(gen: &mut Generation, c: crate::harness::Collected) {
    if let Some(u) = c.usage {
        let keep = gen.usage.clone();
        gen.usage = Usage {
            turns: u.turns.or(keep.turns),
            tool_calls: u.tool_calls.or(keep.tool_calls),
            stop_reason: keep.stop_reason.or(u.stop_reason),
            ..u
        };
    }
    if c.reported_cost.is_some() {
        gen.reported_cost = c.reported_cost;
    }
    gen.usage_unknown |= c.usage_unknown;
    gen.metadata.extend(c.metadata);
    gen.logs.extend(c.logs);
}

/// The first line a version command prints in the sandbox (`None` when it fails).
pub async fn tool_version(
    session: &dyn atp_backend::ComputeSession,
    command: &str,
) -> Option<String> {
    let r = session
        .exec_wait(command, ExecOptions::with_timeout(Duration::from_secs(60)))
        .await
        .ok()?;
    if !r.success() {
        tracing::warn!(command, code = r.exit_code, "version command failed");
        return None;
    }
    r.stdout
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| clip(l, 200))
}

fn last_line(s: &str) -> Option<String> {
    s.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| clip(l, 200))
}

fn clip(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
