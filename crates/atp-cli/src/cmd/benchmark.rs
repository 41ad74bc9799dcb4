//! `atp benchmark DATASET_DIR`: run provers over a dataset — every cell (task × prover ×
//! attempt) through the prove lifecycle under global and per-prover bounds, resumable, with live
//! progress, and the reports at the end (see atp-bench).
//!
//! Exit status: 0 when every cell ran (whatever it solved), 2 when an error stopped the run
//! before its cells, 128+N when interrupted by signal N (finished cells are kept; `--resume`
//! runs the rest).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use atp_bench::bench::{BenchEvent, BenchOptions, BenchProver, Mode};
use atp_bench::report::ReportData;
use atp_bench::{CellId, Outcome, RunState, Store};
use atp_prover::{EnvSource, ProgressEvent};
use atp_verify::VerifyOptions;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Deserialize;

use crate::backend::{self, BackendKind};
use crate::cmd::prove::NetworkArg;
use crate::cmd::{print_json, Global};
use crate::prover::{self, ProverArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The dataset directory (`atp download NAME DIR`, or any directory of .lean files / lake
    /// projects).
    #[arg(value_name = "DATASET_DIR")]
    pub dataset: PathBuf,
    /// Output directory (default: ./atp-bench/<dataset>).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// A prover (repeatable; see `atp provers`). Replaces the config's provers.
    #[arg(long = "prover", short = 'p', value_name = "NAME")]
    pub provers: Vec<String>,
    /// A benchmark config (TOML: provers with their settings, tasks, bounds; flags win).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Only tasks whose name matches GLOB (repeatable).
    #[arg(long = "tasks", short = 't', value_name = "GLOB")]
    pub tasks: Vec<String>,
    /// Cells running at once: a number, or `auto` (Docker: from this machine's cores and
    /// memory; Modal needs a number — each running sandbox is billed).
    #[arg(long, short = 'w', value_name = "N|auto")]
    pub workers: Option<String>,
    /// Cells of one prover running at once (default: no bound beyond --workers).
    #[arg(long, value_name = "N")]
    pub per_prover: Option<usize>,
    /// Attempts per task and prover (pass@1 and pass@N are reported).
    #[arg(long, value_name = "N")]
    pub attempts: Option<u32>,
    /// Where sandboxes run.
    #[arg(long, value_enum, env = "ATP_BACKEND", hide_env_values = true)]
    pub backend: Option<BackendKind>,
    /// Sandbox image (default: open-atp:latest).
    #[arg(long, value_name = "NAME", env = "ATP_IMAGE", hide_env_values = true)]
    pub image: Option<String>,
    /// Network of the provers' sandboxes (verification sandboxes never have one).
    #[arg(long, value_enum)]
    pub network: Option<NetworkArg>,
    /// Generation budget of one cell, in minutes.
    #[arg(long, value_name = "MIN")]
    pub timeout: Option<f64>,
    /// Verification budget of one cell, in minutes.
    #[arg(long, value_name = "MIN")]
    pub verify_timeout: Option<f64>,
    /// Continue the run in --output: skip every cell already done under the same configuration.
    #[arg(long, conflicts_with = "fresh")]
    pub resume: bool,
    /// Remove the run in --output and start over.
    #[arg(long)]
    pub fresh: bool,
    /// With --resume, run error and timeout cells again.
    #[arg(long)]
    pub retry_errors: bool,
    /// An answer key for the definition holes (TOML `[answers] name = "Lean term"`), replacing
    /// the dataset's.
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,
    /// Model for every -p prover (default: each prover's).
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Reasoning effort for every -p prover.
    #[arg(long, value_name = "EFFORT")]
    pub effort: Option<String>,
    /// The model API's base URL for every -p agent prover.
    #[arg(long, value_name = "URL")]
    pub api_base: Option<String>,
    #[command(flatten)]
    pub run: crate::cmd::run_args::RunArgs,
}

/// `--config bench.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub tasks: Vec<String>,
    pub workers: Option<toml::Value>,
    pub per_prover: Option<usize>,
    pub attempts: Option<u32>,
    pub backend: Option<String>,
    pub image: Option<String>,
    pub network: Option<String>,
    /// Minutes.
    pub timeout: Option<f64>,
    pub verify_timeout: Option<f64>,
    pub answers: Option<PathBuf>,
    #[serde(default, rename = "prover")]
    pub provers: Vec<ProverSpec>,
}

/// One `[[prover]]` of the config.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProverSpec {
    /// The label of its cells (default: the prover's name).
    pub name: Option<String>,
    /// The prover (see `atp provers`).
    pub prover: String,
    pub model: Option<String>,
    pub effort: Option<String>,
    pub api_base: Option<String>,
    #[serde(default)]
    pub skills: Vec<PathBuf>,
    #[serde(default)]
    pub plugins: Vec<PathBuf>,
    #[serde(default)]
    pub tactics: Vec<String>,
    pub attempt_timeout: Option<u64>,
}

impl Config {
    /// Read a config; relative paths in it are relative to the file.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--config {}: cannot read", path.display()))?;
        let mut c: Config = toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "--config {}: {} — see `atp benchmark --help` for the keys",
                path.display(),
                atp_prover::one_line(&e.to_string())
            )
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rel = |p: &PathBuf| {
            if p.is_absolute() {
                p.clone()
            } else {
                base.join(p)
            }
        };
        c.answers = c.answers.as_ref().map(rel);
        for p in &mut c.provers {
            p.skills = p.skills.iter().map(rel).collect();
            p.plugins = p.plugins.iter().map(rel).collect();
        }
        Ok(c)
    }
}

fn minutes(m: f64, flag: &str) -> anyhow::Result<Duration> {
    if !(m.is_finite() && m > 0.0) {
        anyhow::bail!("{flag} {m}: must be a positive number of minutes");
    }
    Ok(Duration::from_secs_f64(m * 60.0))
}

/// Memory one Docker sandbox is assumed to need (Lean + Mathlib) for `--workers auto`.
const AUTO_MIB_PER_CELL: u64 = 4096;

/// `--workers auto` on Docker: the smaller of the cores and the memory in 4 GiB slices.
pub fn auto_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(AUTO_MIB_PER_CELL, |kb| kb / 1024);
    cores.min((mem_mib / AUTO_MIB_PER_CELL) as usize).max(1)
}

fn workers_of(v: &str, kind: BackendKind) -> anyhow::Result<usize> {
    if v == "auto" {
        if kind == BackendKind::Modal {
            anyhow::bail!(
                "--workers auto sizes Docker runs from this machine; on Modal the bound is yours — pass -w N (each running sandbox is billed)"
            );
        }
        return Ok(auto_workers());
    }
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => anyhow::bail!("--workers {v}: expected a positive number or `auto`"),
    }
}

fn network_of(s: &str) -> anyhow::Result<NetworkArg> {
    match s {
        "default" => Ok(NetworkArg::Default),
        "none" => Ok(NetworkArg::None),
        "host" => Ok(NetworkArg::Host),
        other => anyhow::bail!("network {other:?}: expected default, none or host"),
    }
}

fn backend_of(s: &str) -> anyhow::Result<BackendKind> {
    match s {
        "docker" => Ok(BackendKind::Docker),
        "modal" => Ok(BackendKind::Modal),
        other => anyhow::bail!("backend {other:?}: expected docker or modal"),
    }
}

fn build_provers(args: &Args, config: &Config) -> anyhow::Result<Vec<BenchProver>> {
    let specs: Vec<ProverSpec> = if !args.provers.is_empty() {
        args.provers
            .iter()
            .map(|p| ProverSpec {
                prover: p.clone(),
                model: args.model.clone(),
                effort: args.effort.clone(),
                api_base: args.api_base.clone(),
                ..ProverSpec::default()
            })
            .collect()
    } else {
        config.provers.clone()
    };
    if specs.is_empty() {
        anyhow::bail!(
            "no prover given — pass -p NAME (repeatable; see `atp provers`) or [[prover]] tables in --config"
        );
    }
    specs
        .into_iter()
        .map(|s| {
            // `..default()` keeps this compiling as provers add flags to ProverArgs.
            #[allow(clippy::needless_update)]
            let pa = ProverArgs {
                prover: s.prover.clone(),
                model: s.model,
                effort: s.effort,
                api_base: s.api_base,
                skills: s.skills,
                plugins: s.plugins,
                tactics: s.tactics,
                attempt_timeout: s.attempt_timeout.unwrap_or(300),
                ..ProverArgs::default()
            };
            let p = prover::make(&pa, EnvSource::process())?;
            Ok(BenchProver {
                label: s.name.unwrap_or(s.prover),
                prover: Arc::from(p),
            })
        })
        .collect()
}

/// The command line to resume with: the same arguments, `--fresh` dropped, `--resume` added.
fn resume_command() -> String {
    let mut argv: Vec<String> = std::env::args().collect();
    if let Some(first) = argv.first_mut() {
        *first = "atp".into();
    }
    argv.retain(|a| a != "--fresh" && a != "--resume");
    argv.push("--resume".into());
    argv.iter()
        .map(|a| atp_backend::layout::shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

pub async fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let kind = match (&args.backend, &config.backend) {
        (Some(k), _) => *k,
        (None, Some(s)) => backend_of(s)?,
        (None, None) => BackendKind::Docker,
    };
    let workers_text = args
        .workers
        .clone()
        .or_else(|| {
            config.workers.as_ref().map(|v| match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        })
        .unwrap_or_else(|| "auto".into());
    let workers = workers_of(&workers_text, kind)?;
    let per_prover = args.per_prover.or(config.per_prover).unwrap_or(workers);
    let attempts = args.attempts.or(config.attempts).unwrap_or(1);
    let network = match (&args.network, &config.network) {
        (Some(n), _) => *n,
        (None, Some(s)) => network_of(s)?,
        (None, None) => NetworkArg::Default,
    };
    let generation_timeout = minutes(args.timeout.or(config.timeout).unwrap_or(30.0), "--timeout")?;
    let verify_timeout = minutes(
        args.verify_timeout
            .or(config.verify_timeout)
            .unwrap_or(10.0),
        "--verify-timeout",
    )?;
    let prices = args.run.prices()?;
    let tasks = if args.tasks.is_empty() {
        config.tasks.clone()
    } else {
        args.tasks.clone()
    };
    let provers = build_provers(&args, &config)?;
    let image = args
        .image
        .clone()
        .or(config.image.clone())
        .unwrap_or_else(|| kind.default_image().to_string());
    let spec = backend::BackendSpec {
        kind,
        image,
        network: network.into(),
    };
    for p in &provers {
        if let Some(problem) = p.prover.auth().problem(&p.prover.info().name) {
            anyhow::bail!(problem);
        }
    }
    let backend = backend::make(&spec)?;
    crate::cmd::prove::ensure_image(&*backend, &spec, args.run.no_build, global).await?;
    let dataset_name = args
        .dataset
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "dataset".into());
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("atp-bench").join(dataset_name));
    let mode = if args.resume {
        Mode::Resume
    } else if args.fresh {
        Mode::Fresh
    } else {
        Mode::New
    };
    let opts = BenchOptions {
        dataset_dir: args.dataset.clone(),
        out: out.clone(),
        tasks,
        attempts,
        workers,
        per_prover,
        generation_timeout,
        verify: VerifyOptions {
            timeout: verify_timeout,
            ..VerifyOptions::default()
        },
        network: network.into(),
        resources: Default::default(),
        mode,
        retry_errors: args.retry_errors,
        answers: args.answers.clone().or(config.answers.clone()),
        run_id: args.run.run_id(),
        prices,
        ceiling_margin: match kind {
            BackendKind::Docker => Duration::from_secs(60),
            BackendKind::Modal => Duration::from_secs(600),
        },
        command: std::env::args().collect(),
    };
    // atp's own trace goes to OUT/atp.jsonl once the run has claimed OUT (on the plan event).
    let progress = Progress::new(global.json, out.join("atp.jsonl"));
    let summary = atp_bench::run(
        opts,
        provers,
        backend,
        global.cancel.clone(),
        progress.sink(),
    )
    .await;
    progress.finish();
    let summary = summary?;
    if global.json {
        print_json(&summary)?;
    } else {
        let data = ReportData::load(&Store::new(&summary.out))?;
        println!(
            "{} cells: {} ran, {} already done{}",
            summary.total,
            summary.ran,
            summary.skipped,
            if summary.not_started > 0 {
                format!(", {} not started", summary.not_started)
            } else {
                String::new()
            }
        );
        print!("{}", crate::cmd::report::summary_table(&data));
        println!("reports: {}", summary.out.join("report.html").display());
        println!(
            "         {} (also results.jsonl, results.csv, run.toml)",
            summary.out.join("report.md").display()
        );
    }
    if summary.state == RunState::Interrupted {
        eprintln!(
            "atp: interrupted — finished cells are kept; resume with:\n  {}",
            resume_command()
        );
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

/// Live progress on stderr: an overall bar (done/total, solved, failed, cost, ETA) and a line
/// per running cell (task, prover, phase, elapsed) on a terminal; one line per finished cell
/// otherwise; nothing with --json.
struct Progress {
    state: Arc<Mutex<State>>,
}

struct State {
    trace_path: PathBuf,
    trace: Option<crate::trace::TraceGuard>,
    multi: Option<MultiProgress>,
    overall: Option<ProgressBar>,
    running: BTreeMap<CellId, ProgressBar>,
    plain: bool,
    total: u64,
    done: u64,
    solved: u64,
    failed: u64,
    cost: f64,
}

impl Progress {
    fn new(json: bool, trace_path: PathBuf) -> Self {
        let tty = !json && std::io::stderr().is_terminal();
        let multi = tty.then(MultiProgress::new);
        Progress {
            state: Arc::new(Mutex::new(State {
                trace_path,
                trace: None,
                multi,
                overall: None,
                running: BTreeMap::new(),
                plain: !json && !tty,
                total: 0,
                done: 0,
                solved: 0,
                failed: 0,
                cost: 0.0,
            })),
        }
    }

    fn sink(&self) -> atp_bench::EventSink {
        let state = Arc::clone(&self.state);
        Arc::new(move |e: BenchEvent| {
            let Ok(mut s) = state.lock() else { return };
            s.event(e);
        })
    }

    fn finish(&self) {
        if let Ok(mut s) = self.state.lock() {
            for (_, b) in std::mem::take(&mut s.running) {
                b.finish_and_clear();
            }
            if let Some(b) = s.overall.take() {
                b.finish_and_clear();
            }
            s.trace = None;
        }
    }
}

impl State {
    fn message(&self) -> String {
        format!(
            "solved {} · failed {} · ${:.2}",
            self.solved, self.failed, self.cost
        )
    }

    fn event(&mut self, e: BenchEvent) {
        match e {
            BenchEvent::Planned {
                total,
                done,
                to_run,
            } => {
                self.trace = Some(crate::trace::to_file(&self.trace_path));
                self.total = to_run as u64;
                if let Some(m) = &self.multi {
                    let bar = m.add(ProgressBar::new(to_run as u64));
                    if let Ok(style) = ProgressStyle::with_template(
                        "[{elapsed_precise}] {bar:30} {pos}/{len} cells · {msg} · ETA {eta}",
                    ) {
                        bar.set_style(style);
                    }
                    bar.set_message(self.message());
                    bar.enable_steady_tick(Duration::from_millis(250));
                    self.overall = Some(bar);
                }
                if self.plain || self.multi.is_some() {
                    let line = format!("atp: {total} cells, {done} already done, {to_run} to run");
                    match &self.multi {
                        Some(m) => {
                            let _ = m.println(line);
                        }
                        None => eprintln!("{line}"),
                    }
                }
            }
            BenchEvent::Started { cell } => {
                if let Some(m) = &self.multi {
                    let bar = m.add(ProgressBar::new_spinner());
                    if let Ok(style) =
                        ProgressStyle::with_template("  {spinner} {prefix} [{elapsed}] {msg}")
                    {
                        bar.set_style(style);
                    }
                    bar.set_prefix(cell.to_string());
                    bar.set_message("starting");
                    bar.enable_steady_tick(Duration::from_millis(200));
                    self.running.insert(cell, bar);
                }
            }
            BenchEvent::Progress { cell, event } => {
                if let (Some(bar), ProgressEvent::Phase(p)) = (self.running.get(&cell), &event) {
                    bar.set_message(p.clone());
                }
                if let ProgressEvent::Note(n) = event {
                    let line = format!("note ({cell}): {n}");
                    match &self.multi {
                        Some(m) => {
                            let _ = m.println(line);
                        }
                        None if self.plain => eprintln!("{line}"),
                        None => {}
                    }
                }
            }
            BenchEvent::Finished {
                cell,
                record,
                wall_s,
            } => {
                self.done += 1;
                match record.outcome {
                    Outcome::Solved => self.solved += 1,
                    Outcome::Cancelled | Outcome::NotRun => {}
                    _ => self.failed += 1,
                }
                self.cost += record.cost_usd.unwrap_or(0.0);
                if let Some(bar) = self.running.remove(&cell) {
                    bar.finish_and_clear();
                }
                let msg = self.message();
                if let Some(b) = &self.overall {
                    b.inc(1);
                    b.set_message(msg);
                }
                if self.plain {
                    eprintln!(
                        "[{}/{}] {cell}: {} ({wall_s:.1} s){}",
                        self.done,
                        self.total,
                        record.outcome,
                        record
                            .reason
                            .as_deref()
                            .map(|r| format!(" — {}", r.chars().take(120).collect::<String>()))
                            .unwrap_or_default()
                    );
                }
            }
            BenchEvent::Interrupted { not_started } => {
                let line = format!("atp: stopping — {not_started} cells not started");
                match &self.multi {
                    Some(m) => {
                        let _ = m.println(line);
                    }
                    None if self.plain => eprintln!("{line}"),
                    None => {}
                }
            }
        }
    }
}
