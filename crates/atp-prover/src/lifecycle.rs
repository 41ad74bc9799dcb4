//! The prove lifecycle: gate → copy → stage → generate (in the prover's sandbox) → read back
//! safely → verify (in a fresh, network-less sandbox) → result.json.
//!
//! Invariants:
//! - The compatibility gate and the credential check run before any directory or sandbox
//!   exists; they (and an unusable output directory) are the only [`ProveError`]s. From the
//!   moment `OUT/` exists, every outcome — error, timeout, cancellation — is a [`ProofResult`]
//!   written to `OUT/logs/result.json`.
//! - The verdict comes from the verifier run in its own sandbox over the candidate read back
//!   from `OUT/wd` after the prover's sandbox is gone; never from the prover's sandbox, which
//!   the agent controlled.
//! - Nothing in `OUT/wd` is read before links and special files are moved aside.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use atp_backend::{
    BackendError, ComputeBackend, ComputeSession, NetworkMode, Resources, RunId, SessionOptions,
};
use atp_image::ImagePins;
use atp_lean::{LeanProject, ProjectError};
use atp_verify::{Verifier, VerifyOptions, Violation, ViolationKind};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::auth::AuthState;
use crate::layout::RunLayout;
use crate::prices::PriceTable;
use crate::prompt::compose_prompt;
use crate::prover::{
    no_progress, CollectContext, GenOutcome, GenerateContext, Generation, PrepareContext,
    ProgressEvent, ProgressSink, Prover,
};
use crate::result::{secs, ErrorInfo, ImageRecord, ProofResult, Status};
use crate::task::ProofTask;
use crate::usage::Cost;
use crate::workdir;

/// Default budget of a generation.
pub const DEFAULT_GENERATION_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long a prover may take to stop after its budget elapsed or the run was cancelled before
/// the lifecycle abandons it (dropping it kills its commands).
pub const STOP_GRACE: Duration = Duration::from_secs(60);

/// Errors that stop a run before anything exists.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    /// A credential is missing or expired (the line names the remedy).
    #[error("{0}")]
    Credentials(String),
    /// The task is not a usable project, or not compatible with the image.
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// The engine or the image cannot be used.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The output directory cannot be created or written.
    #[error("{path}: {message} — choose a writable --output")]
    Output { path: String, message: String },
    /// Bad configuration of a prover or of the run.
    #[error("{0}")]
    InvalidInput(String),
}

impl ProveError {
    /// Short machine-readable name.
    pub fn kind(&self) -> &'static str {
        match self {
            ProveError::Credentials(_) => "credentials",
            ProveError::Project(e) => e.kind(),
            ProveError::Backend(e) => e.kind(),
            ProveError::Output { .. } => "output",
            ProveError::InvalidInput(_) => "invalid_input",
        }
    }
}

/// How to run one prove.
#[derive(Clone)]
pub struct ProveOptions {
    pub run_id: RunId,
    /// The generation's budget.
    pub generation_timeout: Duration,
    /// The verifier's options (its budget, policy, workers).
    pub verify: VerifyOptions,
    /// Network of the prover's sandbox (verification sandboxes never have one).
    pub network: NetworkMode,
    pub resources: Resources,
    /// Extra labels on every sandbox of the run: the prover's and the verifier's.
    pub labels: BTreeMap<String, String>,
    pub prices: PriceTable,
    pub cancel: CancellationToken,
    pub progress: ProgressSink,
    /// The caller's description of the run (e.g. the CLI's arguments, no secrets), recorded in
    /// `provenance.invocation` for reruns.
    pub invocation: Option<serde_json::Value>,
}

impl std::fmt::Debug for ProveOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProveOptions")
            .field("run_id", &self.run_id)
            .field("generation_timeout", &self.generation_timeout)
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

impl Default for ProveOptions {
    fn default() -> Self {
        ProveOptions {
            run_id: RunId::new(),
            generation_timeout: DEFAULT_GENERATION_TIMEOUT,
            verify: VerifyOptions::default(),
            network: NetworkMode::Default,
            resources: Resources::default(),
            labels: BTreeMap::new(),
            prices: PriceTable::builtin(),
            cancel: CancellationToken::new(),
            progress: no_progress(),
            invocation: None,
        }
    }
}

/// Prove `task` with `prover` on `backend`, writing everything under `output`.
///
/// Returns `Err` only when the run cannot start (credentials, compatibility, engine/image,
/// output directory); otherwise the result, which is also in `output/logs/result.json`.
pub async fn prove(
    task: &ProofTask,
    prover: &dyn Prover,
    backend: Arc<dyn ComputeBackend>,
    output: &Path,
    opts: ProveOptions,
) -> Result<ProofResult, ProveError> {
    let started = Instant::now();
    let info = prover.info();
    let span =
        tracing::info_span!("prove", run_id = %opts.run_id, task = %task.name, prover = %info.name);
    async move {
        // 1. Gate: before any directory or sandbox exists.
        let image = backend.image_info().await?;
        let pins = ImagePins::from_labels(&image.labels).unwrap_or_else(ImagePins::builtin);
        task.project.check_compatible(&pins.lean())?;
        let auth = prover.auth();
        if let Some(problem) = auth.problem(&info.name) {
            return Err(ProveError::Credentials(problem));
        }
        if auth.state == AuthState::Expiring {
            let msg = format!(
                "{}: the credential from {} expires soon — {}",
                info.name,
                auth.source.as_deref().unwrap_or("its source"),
                auth.remedy.as_deref().unwrap_or("renew it")
            );
            tracing::warn!("{msg}");
            (opts.progress)(ProgressEvent::Note(msg));
        }

        // 2. The output directory: the pristine task, the working copy, the logs.
        let layout = RunLayout::new(output);
        prepare_output(&layout, task)?;
        let original = LeanProject::open(layout.task())?;
        let snapshot = workdir::lean_texts(&layout.task()).map_err(|e| ProveError::Output {
            path: layout.task().display().to_string(),
            message: format!("cannot read the copied task: {e}"),
        })?;

        let mut result = ProofResult::new(Status::Error, opts.run_id.to_string(), output);
        result.task = Some(task.name.clone());
        result.prover = Some(info.record());
        result.image = Some(ImageRecord {
            backend: backend.name().to_string(),
            name: image.name.clone(),
            id: (!image.id.is_empty()).then(|| image.id.clone()),
            pins: Some(pins),
        });
        result.provenance.task_hash = task.content_hash().ok();
        result.provenance.invocation = opts.invocation.clone();
        let cx = Phases {
            task,
            original: &original,
            prover,
            backend: &backend,
            layout: &layout,
            opts: &opts,
            snapshot: &snapshot,
        };
        cx.run(&mut result).await;
        result.durations.total_s = secs(started.elapsed());
        if let Err(e) = layout.write_result(&result) {
            return Err(ProveError::Output {
                path: layout.result_json().display().to_string(),
                message: format!("cannot write result.json: {e}"),
            });
        }
        Ok(result)
    }
    .instrument(span)
    .await
}

fn prepare_output(layout: &RunLayout, task: &ProofTask) -> Result<(), ProveError> {
    let err = |p: &Path, e: std::io::Error| ProveError::Output {
        path: p.display().to_string(),
        message: e.to_string(),
    };
    for d in [layout.wd(), layout.task(), layout.root.join("quarantine")] {
        if std::fs::symlink_metadata(&d).is_ok() {
            std::fs::remove_dir_all(&d).map_err(|e| err(&d, e))?;
        }
    }
    layout.create().map_err(|e| err(&layout.logs(), e))?;
    for f in ["stdout.txt", "stderr.txt"] {
        let p = layout.logs().join(f);
        std::fs::write(&p, "").map_err(|e| err(&p, e))?;
    }
    let root = task.project.root();
    atp_lean::walk::copy_project(root, &layout.task()).map_err(|e| err(root, e))?;
    atp_lean::walk::copy_project(root, &layout.wd()).map_err(|e| err(root, e))?;
    Ok(())
}

struct Phases<'a> {
    task: &'a ProofTask,
    original: &'a LeanProject,
    prover: &'a dyn Prover,
    backend: &'a Arc<dyn ComputeBackend>,
    layout: &'a RunLayout,
    opts: &'a ProveOptions,
    snapshot: &'a BTreeMap<String, String>,
}

impl Phases<'_> {
    fn phase(&self, name: &str) {
        tracing::info!(phase = name, "phase");
        (self.opts.progress)(ProgressEvent::Phase(name.to_string()));
    }

    fn cancelled(&self) -> bool {
        self.opts.cancel.is_cancelled()
    }

    async fn run(&self, result: &mut ProofResult) {
        let wd = self.layout.wd();
        let home = self.backend.container_home().to_string();
        let prompt = compose_prompt(self.task.user_prompt.as_deref());

        // 3. Stage the harness files.
        self.phase("staging");
        let prep = match self
            .prover
            .prepare(&PrepareContext {
                task: self.task,
                wd: &wd,
                layout: self.layout,
                prompt: &prompt,
                container_home: &home,
            })
            .await
        {
            Ok(p) => p,
            Err(e) => {
                result.error = Some(ErrorInfo::new(e.kind(), &e));
                return;
            }
        };

        // 4. The prover's sandbox, if it needs one.
        let provision_started = Instant::now();
        let mut session: Option<Box<dyn ComputeSession>> = None;
        if let Some(req) = prep.sandbox {
            self.phase("provision");
            let so = SessionOptions {
                env: req.env,
                mounts: req.mounts,
                timeout: Some(self.opts.generation_timeout + STOP_GRACE),
                labels: self.opts.labels.clone(),
                resources: self.opts.resources.clone(),
                network: self.opts.network,
                run_id: Some(self.opts.run_id.clone()),
                requires: Default::default(),
            };
            let creating = self.backend.session(&wd, so);
            tokio::pin!(creating);
            let opened = tokio::select! {
                s = &mut creating => Some(s),
                _ = self.opts.cancel.cancelled() => {
                    // A creation in flight is let finish so the sandbox it makes is owned (and
                    // removed) here: dropping the request could leave a created container no
                    // guard knows about.
                    if let Ok(s) = creating.await {
                        if let Err(e) = s.close().await {
                            tracing::warn!("closing the sandbox created during cancellation: {e}");
                        }
                    }
                    None
                }
            };
            match opened {
                None => {
                    result.status = Status::Cancelled;
                    result.error = Some(ErrorInfo::new(
                        "cancelled",
                        "cancelled while the sandbox was being created",
                    ));
                    return;
                }
                Some(Err(e)) => {
                    result.error = Some(ErrorInfo::new(e.kind(), &e));
                    return;
                }
                Some(Ok(s)) => {
                    tracing::info!(sandbox = s.id(), "prover sandbox ready");
                    session = Some(s);
                }
            }
        }
        result.durations.provision_s = secs(provision_started.elapsed());

        // 5. Generation.
        self.phase("generation");
        let mut verify_labels = self.opts.verify.labels.clone();
        verify_labels.extend(self.opts.labels.clone());
        let verifier = Verifier::new(Arc::clone(self.backend)).with_options(VerifyOptions {
            run_id: Some(self.opts.run_id.clone()),
            labels: verify_labels,
            ..self.opts.verify.clone()
        });
        let gen_started = Instant::now();
        let budget = self.opts.generation_timeout;
        let gen_cx = GenerateContext {
            task: self.task,
            layout: self.layout,
            wd: &wd,
            session: session.as_deref(),
            container_home: &home,
            budget,
            deadline: gen_started + budget,
            cancel: self.opts.cancel.clone(),
            progress: Arc::clone(&self.opts.progress),
            prices: &self.opts.prices,
            verifier: &verifier,
            private: prep.private.as_ref().map(|d| d.path()),
        };
        let gen = {
            let fut = self.prover.generate(gen_cx);
            tokio::pin!(fut);
            let backstop = tokio::time::sleep(budget + STOP_GRACE);
            tokio::pin!(backstop);
            let mut cancel_deadline: Option<Instant> = None;
            loop {
                let grace_over = async {
                    match cancel_deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    g = &mut fut => break g,
                    _ = &mut backstop => {
                        tracing::warn!("the prover did not stop within its budget plus {}s; abandoned", STOP_GRACE.as_secs());
                        break Generation::new(GenOutcome::TimedOut);
                    }
                    _ = self.opts.cancel.cancelled(), if cancel_deadline.is_none() => {
                        cancel_deadline = Some(Instant::now() + STOP_GRACE);
                    }
                    _ = grace_over => break Generation::new(GenOutcome::Cancelled),
                }
            }
        };
        result.durations.generation_s = secs(gen_started.elapsed());
        self.phase("collecting");
        let mut gen = gen;

        // 6. The prover's sandbox goes away before anything in the workdir is read.
        let had_session = session.is_some();
        if let Some(s) = session.take() {
            if !self.cancelled() {
                if let Err(e) = s.sync_out().await {
                    result.error = Some(ErrorInfo::new(e.kind(), &e));
                }
            }
            if let Err(e) = s.close().await {
                tracing::error!("closing the prover's sandbox: {e}");
                if result.error.is_none() {
                    result.error = Some(ErrorInfo::new(e.kind(), &e));
                }
            }
        }
        drop(prep.private);
        if had_session {
            self.prover.collect(
                &CollectContext {
                    wd: &wd,
                    layout: self.layout,
                },
                &mut gen,
            );
        }
        self.record_generation(result, &gen);
        if self.cancelled() || gen.outcome == GenOutcome::Cancelled {
            result.status = Status::Cancelled;
            result.error = Some(ErrorInfo::new(
                "cancelled",
                "the run was cancelled before a verdict",
            ));
            self.read_back(result);
            return;
        }
        if result.error.is_some() {
            // The workdir could not be brought back: no verdict on a partial copy.
            self.read_back(result);
            return;
        }

        // 7. Read the candidate back, links and special files moved aside.
        let unsafe_files = self.read_back(result);
        if result.completed_files.is_empty() {
            if let Some(line) = crate::authfail::rejected_in_logs(self.layout) {
                result.status = Status::Error;
                result.error = Some(ErrorInfo::new(
                    "credentials_rejected",
                    format!(
                        "{}: credentials rejected by the model API ({line}) — check the key or log in again (`atp auth-status`)",
                        self.prover.info().name
                    ),
                ));
                return;
            }
            if let GenOutcome::Failed { error, message } = &gen.outcome {
                result.status = Status::Error;
                result.error = Some(ErrorInfo::new(error.clone(), message));
                return;
            }
        }

        // 8. Verification in a fresh, network-less sandbox against the pristine task.
        self.phase("verification");
        let verify_started = Instant::now();
        let candidate = match LeanProject::open(self.layout.wd()) {
            Ok(c) => c,
            Err(e) => {
                let mut report = atp_verify::VerificationReport {
                    violations: vec![Violation::source(
                        ViolationKind::CompileError,
                        "",
                        None,
                        None,
                        format!("the candidate is not a usable lake project: {e}"),
                    )],
                    ..Default::default()
                };
                report.violations.extend(unsafe_files);
                report.finalize();
                result.status = Status::Unverified;
                result.verification = Some(report);
                return;
            }
        };
        let verified = tokio::select! {
            v = verifier.verify(&candidate, Some(self.original)) => Some(v),
            _ = self.opts.cancel.cancelled() => None,
        };
        result.durations.verification_s = secs(verify_started.elapsed());
        match verified {
            None => {
                result.status = Status::Cancelled;
                result.error = Some(ErrorInfo::new(
                    "cancelled",
                    "the run was cancelled during verification",
                ));
            }
            Some(Err(e)) => {
                result.status = Status::Error;
                result.error = Some(ErrorInfo::new(e.kind(), &e));
            }
            Some(Ok(mut v)) => {
                v.report.violations.extend(unsafe_files);
                v.report.finalize();
                if let Err(e) = self.layout.write_verification(&v) {
                    tracing::warn!("cannot write the verifier's logs: {e}");
                }
                result.status = ProofResult::status_of(&v.report);
                if gen.outcome == GenOutcome::TimedOut && result.status != Status::Verified {
                    result.status = Status::Timeout;
                    result.error = Some(ErrorInfo::new(
                        "generation_timeout",
                        format!("the prover ran out of its {}s budget", budget.as_secs()),
                    ));
                }
                result.verification = Some(v.report);
            }
        }
    }

    /// Move unsafe entries aside and fill `completed_files`; returns the violations.
    fn read_back(&self, result: &mut ProofResult) -> Vec<Violation> {
        let wd = self.layout.wd();
        let unsafe_files =
            match workdir::quarantine_unsafe(&wd, &self.layout.root.join("quarantine")) {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!("scanning the workdir: {e}");
                    if result.error.is_none() {
                        result.status = Status::Error;
                        result.error = Some(ErrorInfo::new(
                            "io",
                            format!("{}: cannot scan the workdir: {e}", wd.display()),
                        ));
                    }
                    return Vec::new();
                }
            };
        if let Ok(after) = workdir::lean_texts(&wd) {
            result.completed_files = workdir::changed_files(self.snapshot, &after);
        }
        unsafe_files
    }

    fn record_generation(&self, result: &mut ProofResult, gen: &Generation) {
        let info = self.prover.info();
        let model = gen.model.clone().or(info.model.clone());
        let cost = if gen.free {
            Cost::free()
        } else if gen.usage_unknown && gen.reported_cost.is_none() {
            Cost {
                usd: None,
                source: crate::usage::CostSource::Unpriced,
                note: Some("the prover reports no token usage, so its cost is unknown".into()),
            }
        } else {
            Cost::resolve(
                gen.reported_cost,
                model.as_deref(),
                &gen.usage,
                &self.opts.prices,
            )
        };
        result.set_cost(Some(cost));
        result.usage = Some(gen.usage.clone());
        for (k, v) in &gen.metadata {
            result.metadata.insert(k.clone(), v.clone());
        }
        if let Some(m) = &gen.model {
            result
                .metadata
                .insert("model_reported".into(), m.clone().into());
        }
        if let Some(v) = gen.metadata.get("agent_version").and_then(|v| v.as_str()) {
            result.provenance.agent_version = Some(v.to_string());
        }
        result.metadata.insert(
            "generation_outcome".into(),
            serde_json::to_value(&gen.outcome).unwrap_or_default(),
        );
    }
}
