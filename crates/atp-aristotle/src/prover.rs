//! [`AristotleProver`]: the `aristotle` prover — one hosted run per task, judged by atp's verifier.
//!
//! Flow: archive `OUT/wd` → `POST /project` → its newest task → poll `GET /task/{id}` every
//! [`AristotleConfig::poll_interval`] until the status is terminal, the budget runs out, or the
//! run is cancelled → on timeout, cancellation or a failed poll **cancel the remote task**
//! (`POST /task/{id}/cancel`, recorded in `metadata.remote_cancel`) → page the events into
//! `logs/events.json` and `logs/transcript.txt` → download `/result` to
//! `logs/aristotle_result.tar.gz` → unpack it safely and map it over `OUT/wd`.
//!
//! Files: `logs/stdout.txt` (one line per step), `logs/project.json`, `logs/task.json`,
//! `logs/events.json`, `logs/transcript.txt`, `logs/summary.md` (Aristotle's summary),
//! `logs/aristotle_result.tar.gz` (the archive as received).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use atp_prover::{
    compose_prompt, AuthStatus, EnvSource, GenOutcome, GenerateContext, Generation, Preparation,
    PrepareContext, ProgressEvent, ProveError, Prover, ProverInfo, ProverKind, RunLayout,
};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::api::{AgentTask, ApiError, CancelOutcome, Client, ClientOptions};
use crate::endpoint::{self, Found};
use crate::{apply, transcript, unpack, upload};

/// How long the remote cancel may take once the run stops.
const CANCEL_BUDGET: Duration = Duration::from_secs(20);
/// How long collecting the result may take after a timeout (the lifecycle allows 60 s).
const COLLECT_AFTER_TIMEOUT: Duration = Duration::from_secs(35);
/// Pages of events read at most (100 events each).
const MAX_EVENT_PAGES: usize = 1000;

/// Knobs of the `aristotle` prover.
#[derive(Debug, Clone)]
pub struct AristotleConfig {
    /// The origin (`--api-base`); else `ARISTOTLE_WEB_URL`; else Harmonic's.
    pub api_base: Option<String>,
    /// Time between two status polls.
    pub poll_interval: Duration,
    /// Polls that may fail in a row (each already retried by the client) before giving up.
    pub max_poll_failures: u32,
    /// Largest result archive accepted (as downloaded).
    pub max_result_bytes: u64,
    /// Bounds on what the unpacked result may hold (bytes of files, entries).
    pub unpack_limits: unpack::UnpackLimits,
    pub client: ClientOptions,
}

impl Default for AristotleConfig {
    fn default() -> Self {
        AristotleConfig {
            api_base: None,
            poll_interval: Duration::from_secs(15),
            max_poll_failures: 5,
            max_result_bytes: 1 << 30,
            unpack_limits: unpack::DEFAULT_LIMITS,
            client: ClientOptions::default(),
        }
    }
}

/// Harmonic's Aristotle, over its HTTP API.
#[derive(Debug, Clone)]
pub struct AristotleProver {
    pub config: AristotleConfig,
    env: EnvSource,
}

impl AristotleProver {
    /// A prover reading its endpoint and key from `env`.
    pub fn new(config: AristotleConfig, env: EnvSource) -> Self {
        AristotleProver { config, env }
    }

    /// The origin in use, or the one line saying why it is unusable.
    pub fn origin(&self) -> Result<String, String> {
        endpoint::resolve_origin(self.config.api_base.as_deref(), &self.env)
    }

    /// Check the configuration (the endpoint, the poll interval).
    pub fn validate(&self) -> Result<(), String> {
        self.origin()?;
        if self.config.poll_interval.is_zero() {
            return Err("--poll-interval must be positive".into());
        }
        Ok(())
    }
}

#[async_trait]
impl Prover for AristotleProver {
    fn info(&self) -> ProverInfo {
        let mut config = BTreeMap::new();
        config.insert(
            "endpoint".into(),
            json!(self.origin().unwrap_or_else(|_| "invalid".into())),
        );
        config.insert(
            "poll_interval_s".into(),
            json!(self.config.poll_interval.as_secs_f64()),
        );
        config.insert("agent_questions_setting".into(), json!(1));
        ProverInfo {
            name: "aristotle".into(),
            kind: ProverKind::Hosted,
            model: None,
            effort: None,
            config,
        }
    }

    fn auth(&self) -> AuthStatus {
        let origin = self.origin();
        endpoint::auth_status(origin.as_deref().map_err(String::as_str), &self.env)
    }

    async fn prepare(&self, cx: &PrepareContext<'_>) -> Result<Preparation, ProveError> {
        self.validate().map_err(ProveError::InvalidInput)?;
        upload::preflight(cx.wd).map_err(|e| ProveError::InvalidInput(e.to_string()))?;
        Ok(Preparation {
            sandbox: None,
            private: None,
        })
    }

    async fn generate(&self, cx: GenerateContext<'_>) -> Generation {
        let origin = match self.origin() {
            Ok(o) => o,
            Err(e) => return Generation::failed("invalid_input", e),
        };
        let key =
            match endpoint::find_key(&origin, &self.env) {
                Found::Key { key, .. } => key,
                Found::Malformed(line) => return Generation::failed("credentials", line),
                Found::Missing => return Generation::failed(
                    "credentials",
                    "aristotle: no API key found — run `aristotle login` or set ARISTOTLE_API_KEY",
                ),
            };
        let client = match Client::new(&origin, key, self.config.client.clone()) {
            Ok(c) => c,
            Err(e) => return Generation::failed(e.kind(), e),
        };
        let prompt = compose_prompt(cx.task.user_prompt.as_deref());
        let mut job = Job {
            client,
            config: &self.config,
            layout: cx.layout,
            wd: cx.wd,
            deadline: cx.deadline,
            cancel: &cx.cancel,
            progress: &cx.progress,
            meta: BTreeMap::new(),
        };
        job.meta.insert("endpoint".into(), json!(origin));
        let mut gen = job.run(&prompt).await;
        job.meta.insert(
            "transient_errors".into(),
            json!(job.client.transient_failures()),
        );
        gen.metadata.append(&mut job.meta);
        gen
    }
}

/// How polling ended.
enum PollEnd {
    Terminal(AgentTask),
    TimedOut(AgentTask),
    Cancelled(AgentTask),
    Failed(AgentTask, ApiError),
}

struct Job<'a> {
    client: Client,
    config: &'a AristotleConfig,
    layout: &'a RunLayout,
    wd: &'a Path,
    deadline: Instant,
    cancel: &'a tokio_util::sync::CancellationToken,
    progress: &'a atp_prover::ProgressSink,
    meta: BTreeMap<String, Value>,
}

fn write_json(path: &Path, v: &Value) {
    if let Ok(text) = serde_json::to_string_pretty(v) {
        let _ = std::fs::write(path, text + "\n");
    }
}

impl Job<'_> {
    /// One line of `logs/stdout.txt` (appended and flushed as it happens).
    fn log(&self, line: &str) {
        tracing::info!("aristotle: {line}");
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.layout.stdout())
        {
            let _ = writeln!(f, "{line}");
        }
    }

    fn note(&self, line: String) {
        self.log(&line);
        (self.progress)(ProgressEvent::Note(format!("aristotle: {line}")));
    }

    fn fail(&self, e: &ApiError) -> Generation {
        self.log(&format!("error: {e}"));
        Generation::failed(e.kind(), e)
    }

    /// `fut` unless the run is cancelled first.
    async fn or_cancel<T>(&self, fut: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::select! {
            r = fut => Some(r),
            _ = self.cancel.cancelled() => None,
        }
    }

    async fn run(&mut self, prompt: &str) -> Generation {
        let archive = match upload::build(self.wd) {
            Ok(a) => a,
            Err(e) => return Generation::failed("aristotle_upload", e),
        };
        self.meta.insert(
            "upload".into(),
            json!({"files": archive.files, "bytes": archive.bytes.len()}),
        );
        self.log(&format!(
            "uploading {} files ({} bytes) to {}",
            archive.files.len(),
            archive.bytes.len(),
            self.client.origin()
        ));
        self.check_toolchain().await;

        let Some(created) = self
            .or_cancel(self.client.create_project(
                prompt,
                archive.bytes,
                "wd.tar.gz",
                1,
                self.deadline,
            ))
            .await
        else {
            self.log("cancelled before the project was created");
            return Generation::new(GenOutcome::Cancelled);
        };
        let project = match created {
            Ok(p) => p,
            Err(e) => return self.fail(&e),
        };
        self.meta.insert("project_id".into(), json!(project.id));
        write_json(&self.layout.logs().join("project.json"), &project.raw);
        self.note(format!("project {} created", project.id));

        let task = match self
            .or_cancel(self.client.latest_task(&project.id, self.deadline))
            .await
        {
            None => {
                self.log("cancelled before the task was found");
                self.meta.insert("remote_cancel".into(), json!({"attempted": false, "landed": false, "reason": "the task id was not known yet"}));
                return Generation::new(GenOutcome::Cancelled);
            }
            Some(Err(e)) => return self.fail(&e),
            Some(Ok(None)) => {
                let msg = format!(
                    "Aristotle returned no task to wait on (project {})",
                    project.id
                );
                self.log(&msg);
                return Generation::failed("aristotle_no_task", msg);
            }
            Some(Ok(Some(t))) => t,
        };
        self.meta.insert("task_id".into(), json!(task.id));
        let task_id = task.id.clone();

        let end = self.poll(task).await;
        let (last, outcome, error) = match end {
            PollEnd::Terminal(t) => (t, GenOutcome::Finished, None),
            PollEnd::TimedOut(t) => (t, GenOutcome::TimedOut, None),
            PollEnd::Cancelled(t) => (t, GenOutcome::Cancelled, None),
            PollEnd::Failed(t, e) => (t, GenOutcome::Finished, Some(e)),
        };
        self.record_task(&last);
        self.meta
            .insert("timed_out".into(), json!(outcome == GenOutcome::TimedOut));
        if !last.status.is_terminal() {
            self.cancel_remote(&task_id).await;
        }
        if outcome == GenOutcome::Cancelled {
            return Generation::new(GenOutcome::Cancelled);
        }
        if let Some(e) = error {
            return self.fail(&e);
        }
        let collect_deadline = if outcome == GenOutcome::TimedOut {
            Instant::now() + COLLECT_AFTER_TIMEOUT
        } else {
            self.deadline.max(Instant::now() + COLLECT_AFTER_TIMEOUT)
        };
        match self.collect(&project.id, &task_id, collect_deadline).await {
            Ok(true) => Generation::new(outcome),
            Ok(false) if outcome == GenOutcome::TimedOut => Generation::new(outcome),
            Ok(false) => {
                let msg = format!(
                    "Aristotle produced no output files (task {})",
                    last.status.as_str()
                );
                self.log(&msg);
                self.meta.insert("error".into(), json!(msg));
                Generation::failed("aristotle_no_output", msg)
            }
            Err((kind, msg)) => {
                self.log(&format!("error: {msg}"));
                if outcome == GenOutcome::TimedOut {
                    self.meta.insert("error".into(), json!(msg));
                    Generation::new(outcome)
                } else {
                    Generation::failed(&kind, msg)
                }
            }
        }
    }

    /// `GET /version`, only to warn when the service expects another toolchain.
    async fn check_toolchain(&mut self) {
        let ours = std::fs::read_to_string(self.wd.join("lean-toolchain"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let short = self.deadline.min(Instant::now() + Duration::from_secs(15));
        match self.or_cancel(self.client.lean_toolchain(short)).await {
            Some(Ok(Some(theirs))) => {
                self.meta
                    .insert("service_lean_toolchain".into(), json!(theirs));
                if !ours.is_empty() && theirs.trim() != ours {
                    self.note(format!(
                        "the service expects {theirs}, the task pins {ours}"
                    ));
                }
            }
            Some(Err(e)) => self.log(&format!("warning: {e}")),
            _ => {}
        }
    }

    fn record_task(&mut self, t: &AgentTask) {
        self.meta
            .insert("task_status".into(), json!(t.status.as_str()));
        self.meta
            .insert("percent_complete".into(), json!(t.percent_complete));
        self.meta
            .insert("output_summary".into(), json!(t.output_summary));
        write_json(&self.layout.logs().join("task.json"), &t.raw);
    }

    async fn poll(&mut self, task: AgentTask) -> PollEnd {
        let mut last = task;
        let mut failures = 0u32;
        let mut polls = 0u64;
        self.note(format!("task {} {}", last.id, last.status.as_str()));
        let end = loop {
            if last.status.is_terminal() {
                break PollEnd::Terminal(last);
            }
            let wake = (Instant::now() + self.config.poll_interval).min(self.deadline);
            if self
                .or_cancel(tokio::time::sleep_until(wake))
                .await
                .is_none()
            {
                break PollEnd::Cancelled(last);
            }
            if Instant::now() >= self.deadline {
                break PollEnd::TimedOut(last);
            }
            let Some(r) = self
                .or_cancel(self.client.task(&last.id, self.deadline))
                .await
            else {
                break PollEnd::Cancelled(last);
            };
            polls += 1;
            match r {
                Ok(t) => {
                    failures = 0;
                    if t.status != last.status {
                        self.note(format!("task {} {}", t.id, t.status.as_str()));
                    }
                    last = t;
                }
                Err(ApiError::Deadline { .. }) => break PollEnd::TimedOut(last),
                Err(e) if e.is_transient() => {
                    failures += 1;
                    self.log(&format!(
                        "poll failed ({failures}/{}): {e}",
                        self.config.max_poll_failures
                    ));
                    if failures >= self.config.max_poll_failures {
                        break PollEnd::Failed(last, e);
                    }
                }
                Err(e) => break PollEnd::Failed(last, e),
            }
        };
        self.meta.insert("polls".into(), json!(polls));
        end
    }

    /// Cancel the remote task (never interrupted by the run's own cancellation: that is what
    /// this is for) and record whether it landed.
    async fn cancel_remote(&mut self, task_id: &str) {
        self.log(&format!("cancelling the remote task {task_id}"));
        let r = self
            .client
            .cancel(task_id, Instant::now() + CANCEL_BUDGET)
            .await;
        let record = match &r {
            Ok(CancelOutcome::Landed(s)) => {
                json!({"attempted": true, "landed": true, "status": s.as_str()})
            }
            Ok(CancelOutcome::AlreadyFinished(s)) => {
                json!({"attempted": true, "landed": false, "status": s.as_str(), "reason": "the task had already ended"})
            }
            Err(e) => json!({"attempted": true, "landed": false, "error": e.to_string()}),
        };
        let landed = matches!(r, Ok(CancelOutcome::Landed(_)));
        self.note(if landed {
            format!("remote task {task_id} cancelled")
        } else {
            format!(
                "the remote task {task_id} may still be running (cancel did not land: {}) — cancel it with `aristotle cancel`",
                record.get("error").or(record.get("status")).and_then(Value::as_str).unwrap_or("?")
            )
        });
        self.meta.insert("remote_cancel".into(), record);
    }

    /// Project, events and result. `Ok(true)`: files were mapped over `wd`; `Ok(false)`: the
    /// project has none.
    async fn collect(
        &mut self,
        project_id: &str,
        task_id: &str,
        deadline: Instant,
    ) -> Result<bool, (String, String)> {
        let err = |e: ApiError| (e.kind().to_string(), e.to_string());
        let project = self
            .client
            .project(project_id, deadline)
            .await
            .map_err(err)?;
        write_json(&self.layout.logs().join("project.json"), &project.raw);
        self.save_events(task_id, deadline).await;
        if !project.has_files {
            return Ok(false);
        }
        let archive = self.layout.logs().join("aristotle_result.tar.gz");
        let size = self
            .client
            .download_result(project_id, &archive, self.config.max_result_bytes, deadline)
            .await
            .map_err(err)?;
        self.log(&format!("downloaded the result ({size} bytes)"));
        let staging = tempfile::Builder::new()
            .prefix(".aristotle-result-")
            .tempdir_in(&self.layout.root)
            .map_err(|e| {
                (
                    "io".to_string(),
                    format!("{}: {e}", self.layout.root.display()),
                )
            })?;
        if let Err(e) = unpack::unpack_result(&archive, staging.path(), self.config.unpack_limits) {
            let msg = format!("Aristotle's result archive was refused: {e}");
            self.meta
                .insert("archive_refused".into(), json!(e.to_string()));
            return Err(("aristotle_unsafe_archive".into(), msg));
        }
        let applied = apply::apply(staging.path(), self.wd, &self.layout.logs()).map_err(|e| {
            (
                "io".to_string(),
                format!("applying the result over the workdir: {e}"),
            )
        })?;
        self.log(&format!("result files: {}", applied.written.join(", ")));
        self.meta
            .insert("result_files".into(), json!(applied.written));
        if !applied.ignored.is_empty() {
            let ignored: BTreeMap<&str, &str> = applied
                .ignored
                .iter()
                .map(|(p, w)| (p.as_str(), w.as_str()))
                .collect();
            self.meta
                .insert("ignored_result_files".into(), json!(ignored));
        }
        if applied.summary {
            self.meta.insert("summary".into(), json!("logs/summary.md"));
        }
        Ok(true)
    }

    /// Page the events oldest first into `events.json` and `transcript.txt` (best effort: an
    /// error is recorded and what was read is kept).
    async fn save_events(&mut self, task_id: &str, deadline: Instant) {
        let mut events = Vec::new();
        let mut key: Option<String> = None;
        for _ in 0..MAX_EVENT_PAGES {
            match self
                .client
                .events_page(task_id, key.as_deref(), deadline)
                .await
            {
                Ok((page, next)) => {
                    events.extend(page);
                    match next {
                        Some(k) if Some(&k) != key.as_ref() => key = Some(k),
                        _ => break,
                    }
                }
                Err(e) => {
                    self.log(&format!("warning: {e}"));
                    self.meta
                        .insert("events_error".into(), json!(e.to_string()));
                    break;
                }
            }
        }
        self.meta.insert("events".into(), json!(events.len()));
        write_json(
            &self.layout.logs().join("events.json"),
            &Value::Array(events.clone()),
        );
        let _ = std::fs::write(
            self.layout.logs().join("transcript.txt"),
            transcript::transcript(&events),
        );
    }
}
