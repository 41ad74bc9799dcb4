//! `run`: a benchmark from a dataset directory to the reports.
//!
//! 1. Gate, before anything is written: prover labels, every prover's credential, the dataset's
//!    Lean pins (from its `.atp-dataset.toml`) against the image's.
//! 2. The output directory: a new one, `--resume` (keep every cell done under the same
//!    configuration) or `--fresh` (start over).
//! 3. Tasks (staged with the image's pins), the plan (`plan.json`), each cell's configuration
//!    hash, the cells still to run; `run.toml` (state `running`).
//! 4. The scheduler runs the cells (global and per-prover bounds, task-major, a wall-clock
//!    ceiling per cell); each cell is one `atp_prover::prove` whose result is stamped with the
//!    hash. The first Ctrl-C stops starting cells and cancels the running ones (their sandboxes
//!    are torn down, their results say `cancelled`).
//! 5. `run.toml` (state `complete`/`interrupted`, end time) and the reports, rendered from the
//!    store exactly as `atp report` does.
//!
//! Invariant: atp-bench knows no concrete prover or engine — it is handed `Arc<dyn Prover>`s and
//! an `Arc<dyn ComputeBackend>`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use atp_backend::{ComputeBackend, NetworkMode, Resources, RunId};
use atp_image::ImagePins;
use atp_prover::{
    prove, PriceTable, ProgressEvent, ProofResult, ProveOptions, Prover, ProverInfo, Status,
};
use atp_verify::VerifyOptions;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::aggregate::{summarize, CellRecord, Outcome, ProverSummary};
use crate::answers::AnswerKey;
use crate::dataset::DatasetRecord;
use crate::error::BenchError;
use crate::provenance::{
    DatasetInfo, ImageInfo, ProverEntry, RunInfo, RunState, Sampling, RUN_SCHEMA,
};
use crate::schedule::{run_bounded, Ended, Job, Limits};
use crate::store::{config_hash, CellId, Plan, Store, TRANSCRIPT_FILE};
use crate::tasks::{discover, BenchTask};

/// A prover of the run and the label its cells are stored under.
#[derive(Debug, Clone)]
pub struct BenchProver {
    pub label: String,
    pub prover: Arc<dyn Prover>,
}

/// What to do with an output directory that already holds a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Refuse (the user must say `--resume` or `--fresh`).
    New,
    /// Keep every cell done under the same configuration; run the rest.
    Resume,
    /// Remove the previous run and start over.
    Fresh,
}

/// The options of a run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub dataset_dir: PathBuf,
    pub out: PathBuf,
    /// `--tasks` globs.
    pub tasks: Vec<String>,
    pub attempts: u32,
    pub workers: usize,
    pub per_prover: usize,
    pub generation_timeout: Duration,
    /// The verifier's options (budget, policy, workers); the answers are set per task.
    pub verify: VerifyOptions,
    pub network: NetworkMode,
    pub resources: Resources,
    pub mode: Mode,
    pub retry_errors: bool,
    /// An answer key replacing the dataset's.
    pub answers: Option<PathBuf>,
    pub run_id: RunId,
    pub prices: PriceTable,
    /// Added to generation + verification budgets (and their grace periods) for a cell's
    /// wall-clock ceiling.
    pub ceiling_margin: Duration,
    /// The command line, for the record.
    pub command: Vec<String>,
}

impl BenchOptions {
    /// A cell's wall-clock ceiling.
    pub fn cell_ceiling(&self) -> Duration {
        self.generation_timeout
            + atp_prover::STOP_GRACE
            + self.verify.timeout
            + atp_verify::VERIFY_BACKSTOP_MARGIN
            + self.ceiling_margin
    }
}

/// Live events of a run, for progress displays.
#[derive(Debug, Clone)]
pub enum BenchEvent {
    /// The plan: cells in total, already done (skipped), to run.
    Planned {
        total: usize,
        done: usize,
        to_run: usize,
    },
    Started {
        cell: CellId,
    },
    /// A lifecycle event of a running cell (phase, turn, tool call, usage, cost, note).
    Progress {
        cell: CellId,
        event: ProgressEvent,
    },
    Finished {
        cell: CellId,
        record: Box<CellRecord>,
        /// Wall time from the cell's start to its stamped result.
        wall_s: f64,
    },
    /// Cancelled: cells that were never started.
    Interrupted {
        not_started: usize,
    },
}

/// Where events go.
pub type EventSink = Arc<dyn Fn(BenchEvent) + Send + Sync>;

/// What a run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchSummary {
    pub out: PathBuf,
    pub run_id: String,
    pub state: RunState,
    /// Cells of the plan.
    pub total: usize,
    /// Cells already done under the same configuration (not run again).
    pub skipped: usize,
    /// Cells run by this invocation.
    pub ran: usize,
    /// Cells not started because the run was interrupted.
    pub not_started: usize,
    pub provers: Vec<ProverSummary>,
    pub reports: Vec<PathBuf>,
}

fn check_label(label: &str) -> Result<(), BenchError> {
    let ok = !label.is_empty()
        && label.len() <= 64
        && label != "."
        && label != ".."
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(BenchError::Invalid(format!(
            "prover label `{label}`: use 1-64 letters, digits, `-`, `_` or `.` (it names the cells' directories)"
        )))
    }
}

struct Ctx {
    store: Store,
    tasks: Vec<BenchTask>,
    provers: Vec<BenchProver>,
    infos: Vec<ProverInfo>,
    backend: Arc<dyn ComputeBackend>,
    opts: BenchOptions,
    /// per task: the answers of its holes
    answers: Vec<BTreeMap<String, String>>,
    cancel: CancellationToken,
    events: EventSink,
}

#[derive(Debug, Clone)]
struct Planned {
    id: CellId,
    task: usize,
    prover: usize,
    hash: String,
}

/// Run a benchmark (see the module docs).
pub async fn run(
    opts: BenchOptions,
    provers: Vec<BenchProver>,
    backend: Arc<dyn ComputeBackend>,
    cancel: CancellationToken,
    events: EventSink,
) -> Result<BenchSummary, BenchError> {
    // 1. Gate.
    if provers.is_empty() {
        return Err(BenchError::Invalid(
            "no prover given — pass -p NAME (see `atp provers`)".into(),
        ));
    }
    if opts.attempts == 0 || opts.workers == 0 || opts.per_prover == 0 {
        return Err(BenchError::Invalid(
            "--attempts, --workers and --per-prover must be at least 1".into(),
        ));
    }
    let mut seen = BTreeSet::new();
    for p in &provers {
        check_label(&p.label)?;
        if !seen.insert(p.label.clone()) {
            return Err(BenchError::Invalid(format!(
                "prover label `{}` is used twice — give each configuration its own `name` in the config",
                p.label
            )));
        }
        if let Some(problem) = p.prover.auth().problem(&p.prover.info().name) {
            return Err(BenchError::Invalid(problem));
        }
    }
    let record = DatasetRecord::read(&opts.dataset_dir)?;
    let answer_key = match (&opts.answers, &record) {
        (Some(path), _) => Some((path.display().to_string(), AnswerKey::load(path)?)),
        (None, Some(r)) => r.answer_key(&opts.dataset_dir)?.map(|k| {
            (
                opts.dataset_dir
                    .join(r.answers.as_deref().unwrap_or(""))
                    .display()
                    .to_string(),
                k,
            )
        }),
        (None, None) => None,
    };
    let image = backend.image_info().await?;
    let pins = ImagePins::from_labels(&image.labels).unwrap_or_else(ImagePins::builtin);
    let dataset_name = record.as_ref().map(|r| r.name.clone()).unwrap_or_else(|| {
        opts.dataset_dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "tasks".into())
    });
    if let Some(r) = &record {
        let mathlib_differs = r
            .mathlib_rev
            .as_ref()
            .is_some_and(|m| *m != pins.mathlib_rev);
        if r.lean_toolchain != pins.lean_toolchain || mathlib_differs {
            let needs_mathlib = r
                .mathlib_rev
                .clone()
                .unwrap_or_else(|| pins.mathlib_rev.clone());
            return Err(BenchError::Toolchain(Box::new(
                crate::error::ToolchainMismatch {
                    dataset: r.name.clone(),
                    suggested_tag: suggested_tag(backend.image(), &r.lean_toolchain),
                    needs_toolchain: r.lean_toolchain.clone(),
                    needs_mathlib,
                    image: backend.image().to_string(),
                    has_toolchain: pins.lean_toolchain.clone(),
                    has_mathlib: pins.mathlib_rev.clone(),
                },
            )));
        }
    }

    // 2. The output directory.
    let store = Store::new(&opts.out);
    let previous = if store.run_toml().is_file() {
        match opts.mode {
            Mode::New => {
                return Err(BenchError::ExistingRun {
                    out: opts.out.clone(),
                })
            }
            Mode::Fresh => {
                std::fs::remove_dir_all(&opts.out).map_err(|e| BenchError::output(&opts.out, e))?;
                None
            }
            Mode::Resume => RunInfo::read(&store.run_toml()).ok(),
        }
    } else {
        let non_empty = std::fs::read_dir(&opts.out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        if non_empty {
            return Err(BenchError::Output {
                path: opts.out.clone(),
                message: "exists, is not empty and holds no atp benchmark (no run.toml)".into(),
            });
        }
        None
    };
    std::fs::create_dir_all(&opts.out).map_err(|e| BenchError::output(&opts.out, e))?;

    // 3. Tasks, plan, hashes.
    let staging = tempfile::Builder::new()
        .prefix("atp-bench-tasks-")
        .tempdir()
        .map_err(|e| BenchError::output(std::env::temp_dir(), e))?;
    let (tasks, _skipped) = discover(&opts.dataset_dir, &opts.tasks, staging.path(), &pins.lean())?;
    let infos: Vec<ProverInfo> = provers.iter().map(|p| p.prover.info()).collect();
    let labels: Vec<String> = provers.iter().map(|p| p.label.clone()).collect();
    let plan = Plan {
        schema: Plan::SCHEMA.into(),
        tasks: tasks.iter().map(|t| t.name.clone()).collect(),
        provers: labels.clone(),
        attempts: opts.attempts,
    };
    plan.write(&store.plan_json())
        .map_err(|e| BenchError::output(store.plan_json(), e))?;
    let empty_key = AnswerKey::default();
    let key = answer_key.as_ref().map_or(&empty_key, |(_, k)| k);
    let mut task_answers = Vec::with_capacity(tasks.len());
    let mut task_hashes = Vec::with_capacity(tasks.len());
    for t in &tasks {
        let sources = t
            .task
            .project
            .sources()
            .map_err(|e| BenchError::bad_file(t.task.project.root(), e))?;
        task_answers.push(key.for_sources(&sources));
        task_hashes.push(
            t.task
                .content_hash()
                .map_err(|e| BenchError::bad_file(t.task.project.root(), e))?,
        );
    }
    let commit = record.as_ref().map(|r| r.commit.as_str());
    let mut planned = Vec::new();
    let mut done = 0usize;
    for id in plan.cells() {
        let ti = plan.tasks.iter().position(|t| *t == id.task).unwrap_or(0);
        let pi = plan
            .provers
            .iter()
            .position(|p| *p == id.prover)
            .unwrap_or(0);
        let hash = config_hash(
            &id.prover,
            &infos[pi],
            &image.id,
            commit,
            &task_hashes[ti],
            &task_answers[ti],
        );
        if opts.mode == Mode::Resume && store.is_done(&id, &hash, opts.retry_errors) {
            done += 1;
            continue;
        }
        planned.push(Planned {
            id,
            task: ti,
            prover: pi,
            hash,
        });
    }
    let total = plan.cells().len();
    events(BenchEvent::Planned {
        total,
        done,
        to_run: planned.len(),
    });
    let started = previous
        .as_ref()
        .map(|p| p.started.clone())
        .unwrap_or_else(|| crate::util::rfc3339(SystemTime::now()));
    let mut info = RunInfo {
        schema: RUN_SCHEMA.into(),
        atp_version: env!("CARGO_PKG_VERSION").into(),
        run_id: opts.run_id.to_string(),
        host: crate::util::hostname(),
        started,
        ended: None,
        state: RunState::Running,
        command: opts.command.clone(),
        dataset: DatasetInfo {
            name: dataset_name,
            dir: opts.dataset_dir.display().to_string(),
            repo: record.as_ref().map(|r| r.repo.clone()),
            commit: record.as_ref().map(|r| r.commit.clone()),
            lean_toolchain: Some(
                record
                    .as_ref()
                    .map(|r| r.lean_toolchain.clone())
                    .unwrap_or_else(|| pins.lean_toolchain.clone()),
            ),
            mathlib_rev: record
                .as_ref()
                .and_then(|r| r.mathlib_rev.clone())
                .or_else(|| Some(pins.mathlib_rev.clone())),
            tasks: tasks.len(),
            filters: opts.tasks.clone(),
            answers: answer_key.as_ref().map(|(p, _)| p.clone()),
            answer_count: answer_key.as_ref().map_or(0, |(_, k)| k.answers.len()),
        },
        image: ImageInfo {
            backend: backend.name().to_string(),
            name: image.name.clone(),
            id: image.id.clone(),
            lean_toolchain: pins.lean_toolchain.clone(),
            mathlib_rev: pins.mathlib_rev.clone(),
            spec_hash: pins.spec_hash.clone(),
        },
        sampling: Sampling {
            attempts: opts.attempts,
            workers: opts.workers,
            per_prover: opts.per_prover,
            generation_timeout_s: opts.generation_timeout.as_secs_f64(),
            verify_timeout_s: opts.verify.timeout.as_secs_f64(),
            cell_ceiling_s: opts.cell_ceiling().as_secs_f64(),
            network: format!("{:?}", opts.network).to_lowercase(),
        },
        provers: provers
            .iter()
            .zip(&infos)
            .map(|(p, i)| ProverEntry {
                label: p.label.clone(),
                name: i.name.clone(),
                kind: i.kind.as_str().into(),
                model: i.model.clone(),
                effort: i.effort.clone(),
                config: serde_json::to_string(&i.config).unwrap_or_default(),
            })
            .collect(),
        cells: BTreeMap::from([
            ("total".to_string(), total),
            ("done_before".to_string(), done),
            ("to_run".to_string(), planned.len()),
        ]),
    };
    info.write(&store.run_toml())?;

    // 4. The cells.
    let ctx = Arc::new(Ctx {
        store: store.clone(),
        tasks,
        provers,
        infos,
        backend,
        opts: opts.clone(),
        answers: task_answers,
        cancel: cancel.clone(),
        events: Arc::clone(&events),
    });
    let jobs: Vec<Job<Planned>> = planned
        .into_iter()
        .map(|p| Job {
            group: p.prover,
            item: p,
        })
        .collect();
    let to_run = jobs.len();
    let mut ran = 0usize;
    let mut any_cancelled = false;
    let runner = {
        let ctx = Arc::clone(&ctx);
        move |p: Planned| {
            let ctx = Arc::clone(&ctx);
            async move { run_cell(ctx, p).await }
        }
    };
    let not_started = run_bounded(
        jobs,
        ctx.provers.len(),
        Limits {
            workers: opts.workers,
            per_group: opts.per_prover,
        },
        &cancel,
        runner,
        |ended| {
            ran += 1;
            match ended {
                Ended::Done(outcome) => {
                    any_cancelled |= outcome == Outcome::Cancelled;
                }
                Ended::Panicked(p, msg) => {
                    // Keep the record: an error result for the cell.
                    let dir = ctx.store.cell_dir(&p.id);
                    let mut r =
                        ProofResult::from_error("internal", &msg, ctx.opts.run_id.as_str(), &dir);
                    r.task = Some(p.id.task.clone());
                    r.prover = Some(ctx.infos[p.prover].record());
                    if let Err(e) = ctx.store.write_stamped(&p.id, &mut r, &p.hash) {
                        tracing::error!("cannot write the result of {}: {e}", p.id);
                    }
                    (ctx.events)(BenchEvent::Finished {
                        cell: p.id.clone(),
                        record: Box::new(CellRecord::of(&p.id, Some(&r))),
                        wall_s: 0.0,
                    });
                }
            }
        },
    )
    .await;
    if !not_started.is_empty() {
        events(BenchEvent::Interrupted {
            not_started: not_started.len(),
        });
    }
    if cancel.is_cancelled() {
        // Every cell has returned, so nothing of this run id is still in use: sweep what a
        // teardown could not reach (e.g. a container the engine created as a request was cut).
        match ctx
            .backend
            .gc(atp_backend::GcFilter {
                run_id: Some(opts.run_id.clone()),
                ..Default::default()
            })
            .await
        {
            Ok(left) if !left.is_empty() => {
                tracing::warn!(
                    count = left.len(),
                    "removed sandboxes left by cancelled cells"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::error!("sweeping the run's sandboxes after Ctrl-C: {e}"),
        }
    }

    // 5. Provenance and reports.
    let state = if cancel.is_cancelled() && (!not_started.is_empty() || any_cancelled) {
        RunState::Interrupted
    } else {
        RunState::Complete
    };
    info.state = state;
    info.ended = Some(crate::util::rfc3339(SystemTime::now()));
    info.cells.insert("ran".into(), ran);
    info.cells.insert("not_started".into(), not_started.len());
    info.write(&store.run_toml())?;
    let rendered = crate::report::render(&store)?;
    debug_assert!(ran <= to_run);
    Ok(BenchSummary {
        out: opts.out.clone(),
        run_id: opts.run_id.to_string(),
        state,
        total,
        skipped: done,
        ran,
        not_started: not_started.len(),
        provers: summarize(&rendered.records, &labels, opts.attempts),
        reports: rendered.files,
    })
}

/// The tag `atp build-image --lean-toolchain T` gives by default (the image's repository with the
/// toolchain's version), for the remedy of a pin mismatch.
pub fn suggested_tag(image: &str, toolchain: &str) -> String {
    let repo = match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => image,
    };
    let version = toolchain.rsplit_once(':').map_or(toolchain, |(_, v)| v);
    format!("{repo}:{version}")
}

/// Run one cell to its stamped result; returns its outcome.
async fn run_cell(ctx: Arc<Ctx>, p: Planned) -> Outcome {
    let started = Instant::now();
    let id = p.id.clone();
    let task = &ctx.tasks[p.task];
    let prover = &ctx.provers[p.prover];
    let dir = ctx.store.cell_dir(&id);
    (ctx.events)(BenchEvent::Started { cell: id.clone() });
    if let Err(e) = ctx.store.clear_result(&id) {
        tracing::warn!("cannot remove the old result of {id}: {e}");
    }
    let sink = {
        let events = Arc::clone(&ctx.events);
        let cell = id.clone();
        Arc::new(move |event: ProgressEvent| {
            events(BenchEvent::Progress {
                cell: cell.clone(),
                event,
            })
        })
    };
    let labels = BTreeMap::from([
        ("atp.bench.task".to_string(), id.task.clone()),
        ("atp.bench.prover".to_string(), id.prover.clone()),
        ("atp.bench.attempt".to_string(), id.attempt.to_string()),
    ]);
    let opts = ProveOptions {
        run_id: ctx.opts.run_id.clone(),
        generation_timeout: ctx.opts.generation_timeout,
        verify: VerifyOptions {
            answers: ctx.answers[p.task].clone(),
            ..ctx.opts.verify.clone()
        },
        network: ctx.opts.network,
        resources: ctx.opts.resources.clone(),
        labels,
        prices: ctx.opts.prices.clone(),
        cancel: ctx.cancel.child_token(),
        progress: sink,
        // a benchmark cell is repeated by `atp benchmark --retry-errors`/`--fresh`, not `atp rerun`
        invocation: None,
    };
    let ceiling = ctx.opts.cell_ceiling();
    let outcome = tokio::time::timeout(
        ceiling,
        prove(
            &task.task,
            prover.prover.as_ref(),
            Arc::clone(&ctx.backend),
            &dir,
            opts,
        ),
    )
    .await;
    let mut result = match outcome {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let mut r = ProofResult::from_error(e.kind(), &e, ctx.opts.run_id.as_str(), &dir);
            r.task = Some(task.task.name.clone());
            r.prover = Some(ctx.infos[p.prover].record());
            r
        }
        Err(_) => {
            // The prove future was dropped: its sandboxes' teardown guards removed them.
            let mut r = ProofResult::from_error(
                "ceiling_exceeded",
                format!(
                    "the cell ran past its wall-clock ceiling of {} s and was stopped (its sandboxes were removed)",
                    ceiling.as_secs()
                ),
                ctx.opts.run_id.as_str(),
                &dir,
            );
            r.task = Some(task.task.name.clone());
            r.prover = Some(ctx.infos[p.prover].record());
            if ctx.cancel.is_cancelled() {
                r.status = Status::Cancelled;
            }
            r
        }
    };
    if let Err(e) = ctx.store.write_stamped(&id, &mut result, &p.hash) {
        tracing::error!("cannot write the result of {id}: {e}");
    }
    let stdout = std::fs::read_to_string(ctx.store.layout(&id).stdout()).unwrap_or_default();
    if let Some(t) = prover.prover.transcript(&stdout) {
        if let Ok(text) = serde_json::to_string(&t) {
            let path = ctx.store.layout(&id).logs().join(TRANSCRIPT_FILE);
            if let Err(e) = crate::util::write_atomic(&path, text.as_bytes()) {
                tracing::warn!("cannot write the transcript of {id}: {e}");
            }
        }
    }
    let record = CellRecord::of(&id, Some(&result));
    let outcome = record.outcome;
    (ctx.events)(BenchEvent::Finished {
        cell: id,
        record: Box::new(record),
        wall_s: started.elapsed().as_secs_f64(),
    });
    outcome
}
