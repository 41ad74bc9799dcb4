//! `atp prove`: hand a Lean project with `sorry`s to a prover in a sandbox, verify what comes
//! back in a fresh sandbox, and write everything under the output directory.
//!
//! Exit status: 0 verified, 1 unverified or timeout, 2 error, 128+N when interrupted by
//! signal N (result.json then says `cancelled`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use atp_backend::{BackendError, NetworkMode};
use atp_prover::{
    prove, EnvSource, ProgressEvent, ProofResult, ProofTask, ProveError, ProveOptions, Status,
};
use atp_verify::VerifyOptions;
use indicatif::{ProgressBar, ProgressStyle};

use crate::backend::{self, BackendArgs, BackendKind};
use crate::cmd::{exit_for, print_json, Global};
use crate::prover::{self, ProverArgs};

/// Network of the prover's sandbox.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum NetworkArg {
    /// The engine's default network (agents reach their model API).
    #[default]
    Default,
    /// No network (the `tactics` prover needs none).
    None,
    /// The host's network: reach a model gateway on the host's loopback.
    Host,
}

impl From<NetworkArg> for NetworkMode {
    fn from(n: NetworkArg) -> Self {
        match n {
            NetworkArg::Default => NetworkMode::Default,
            NetworkArg::None => NetworkMode::None,
            NetworkArg::Host => NetworkMode::Host,
        }
    }
}

/// The flags of `atp prove`; recorded (inputs made absolute, no secrets) in result.json's
/// `provenance.invocation` so that `atp rerun` can repeat the run.
#[derive(Debug, Clone, clap::Args, serde::Serialize, serde::Deserialize)]
pub struct Args {
    /// A lake project directory, or one or more bare .lean files (staged into atp's skeleton).
    #[arg(required = true, value_name = "PROJECT_DIR|FILE.lean")]
    pub inputs: Vec<PathBuf>,
    /// Output directory (default: ./atp-runs/<task>-<prover>-<run id>).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub prover: ProverArgs,
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Network of the prover's sandbox (verification sandboxes never have one).
    #[arg(long, value_enum, default_value_t = NetworkArg::Default)]
    pub network: NetworkArg,
    /// Generation budget in minutes.
    #[arg(long, value_name = "MIN", default_value_t = 30.0)]
    pub timeout: f64,
    /// Verification budget in minutes.
    #[arg(long, value_name = "MIN", default_value_t = 10.0)]
    pub verify_timeout: f64,
    /// Files the verifier compiles in parallel (default: the sandbox's CPU count).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Extra instructions for the prover (appended under "# Additional instructions").
    #[arg(long, value_name = "TEXT", conflicts_with = "prompt_file")]
    pub prompt: Option<String>,
    /// Extra instructions read from a file.
    #[arg(long, value_name = "FILE")]
    pub prompt_file: Option<PathBuf>,
    #[command(flatten)]
    #[serde(flatten)]
    pub run: crate::cmd::run_args::RunArgs,
}

fn minutes(m: f64, flag: &str) -> anyhow::Result<Duration> {
    if !(m.is_finite() && m > 0.0) {
        anyhow::bail!("{flag} {m}: must be a positive number of minutes");
    }
    Ok(Duration::from_secs_f64(m * 60.0))
}

pub async fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let run_id = args.run.run_id();
    let generation_timeout = minutes(args.timeout, "--timeout")?;
    let verify_timeout = minutes(args.verify_timeout, "--verify-timeout")?;
    let prices = args.run.prices()?;
    let user_prompt = match &args.prompt_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("--prompt-file {}: cannot read", f.display()))?,
        ),
        None => args.prompt.clone(),
    };
    let prover = prover::make(&args.prover, EnvSource::process())?;
    // Bare files are staged into a temporary skeleton; the lifecycle copies the task to OUT.
    let staging = tempfile::Builder::new().prefix("atp-task-").tempdir()?;
    let mut task = ProofTask::from_inputs(&args.inputs, &staging.path().join("task"))?;
    task.user_prompt = user_prompt;
    let out_dir = args.output.clone().unwrap_or_else(|| {
        PathBuf::from("atp-runs").join(format!(
            "{}-{}-{}",
            sanitize(&task.name),
            prover.info().name,
            run_id.short()
        ))
    });

    let mut spec = args.backend.spec();
    spec.network = args.network.into();
    if spec.kind == BackendKind::Modal && args.network == NetworkArg::Host {
        tracing::warn!("--network host on Modal means an open network (Modal has no host network)");
    }
    // Credentials first: no point building or pulling anything for a run that cannot start.
    if let Some(problem) = prover.auth().problem(&prover.info().name) {
        anyhow::bail!(problem);
    }
    let backend = backend::make(&spec)?;
    ensure_image(&*backend, &spec, args.run.no_build, global).await?;

    let status = StatusLine::new(global.json);
    let invocation = invocation(&args, &task);
    let opts = ProveOptions {
        run_id: run_id.clone(),
        generation_timeout,
        verify: VerifyOptions {
            timeout: verify_timeout,
            workers: args.workers,
            ..VerifyOptions::default()
        },
        network: spec.network,
        prices,
        cancel: global.cancel.clone(),
        progress: status.sink(),
        invocation: Some(invocation),
        ..ProveOptions::default()
    };
    let _trace = crate::trace::to_file(&out_dir.join("logs").join("atp.jsonl"));
    let outcome = prove(&task, prover.as_ref(), backend, &out_dir, opts).await;
    status.finish();
    let result = match outcome {
        Ok(r) => r,
        Err(e) => return Err(prove_error(e)),
    };
    if global.json {
        print_json(&result)?;
    } else {
        print!("{}", render(&result, &out_dir));
    }
    if let (Status::Error, Some(e)) = (result.status, &result.error) {
        eprintln!("error: {}", e.message);
    }
    Ok(exit_for(result.status))
}

/// What `atp rerun` needs to repeat this run: the flags, with the task's user prompt inlined
/// (a prompt file may change) and the inputs made absolute. Credentials are not flags.
fn invocation(args: &Args, task: &ProofTask) -> serde_json::Value {
    let mut a = args.clone();
    a.inputs = a
        .inputs
        .iter()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
        .collect();
    a.prompt = task.user_prompt.clone();
    a.prompt_file = None;
    a.output = None;
    a.run.run_id = None;
    a.run.prices = a.run.prices.map(|p| std::path::absolute(&p).unwrap_or(p));
    serde_json::json!({ "command": "prove", "args": a })
}

fn prove_error(e: ProveError) -> anyhow::Error {
    anyhow::Error::msg(e.to_string())
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The image must exist before the run; on Docker a missing default image is built from atp's
/// built-in spec first (unless `--no-build`).
pub(crate) async fn ensure_image(
    backend: &dyn atp_backend::ComputeBackend,
    spec: &backend::BackendSpec,
    no_build: bool,
    global: &Global,
) -> anyhow::Result<()> {
    match backend.image_info().await {
        Ok(_) => Ok(()),
        Err(BackendError::ImageUnavailable { .. })
            if spec.kind == BackendKind::Docker && !no_build =>
        {
            eprintln!(
                "atp: image {} not found — building it from atp's built-in spec (about 12 GB, needs internet; --no-build to skip)",
                spec.image
            );
            tokio::select! {
                r = crate::cmd::build_image::build_builtin(&spec.image, global.json) => r,
                _ = global.cancel.cancelled() => anyhow::bail!("interrupted while building {}", spec.image),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The live status line on stderr (a terminal only): phase, elapsed, turns, tools, tokens, cost.
struct StatusLine {
    bar: Option<ProgressBar>,
    state: Arc<Mutex<LiveState>>,
}

#[derive(Debug, Default)]
struct LiveState {
    phase: String,
    turns: u64,
    tools: u64,
    tokens: u64,
    cost: Option<f64>,
}

impl StatusLine {
    fn new(json: bool) -> Self {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_msg}")
            {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        StatusLine {
            bar,
            state: Arc::new(Mutex::new(LiveState::default())),
        }
    }

    fn sink(&self) -> atp_prover::ProgressSink {
        let state = Arc::clone(&self.state);
        let bar = self.bar.clone();
        Arc::new(move |e: ProgressEvent| {
            let Ok(mut s) = state.lock() else { return };
            match e {
                ProgressEvent::Phase(p) => s.phase = p,
                ProgressEvent::Turn => s.turns += 1,
                ProgressEvent::ToolCall(_) => s.tools += 1,
                ProgressEvent::Usage(u) => {
                    s.tokens = u.input_tokens + u.output_tokens;
                    if let Some(t) = u.turns {
                        s.turns = t;
                    }
                }
                ProgressEvent::Cost(c) => s.cost = Some(c),
                ProgressEvent::Note(n) => match &bar {
                    Some(b) => b.println(format!("note: {n}")),
                    None => eprintln!("note: {n}"),
                },
            }
            if let Some(b) = &bar {
                b.set_message(format!(
                    "{} · turns {} · tools {} · {} tokens{}",
                    s.phase,
                    s.turns,
                    s.tools,
                    s.tokens,
                    s.cost.map(|c| format!(" · ${c:.2}")).unwrap_or_default()
                ));
            }
        })
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// The human summary of a prove.
pub fn render(r: &ProofResult, out_dir: &Path) -> String {
    let mut s = String::new();
    let prover = r.prover.as_ref().map(|p| p.name.as_str()).unwrap_or("?");
    let model = r
        .prover
        .as_ref()
        .and_then(|p| p.model.as_deref())
        .map(|m| format!(" ({m})"))
        .unwrap_or_default();
    s.push_str(&format!(
        "{} — {}, {prover}{model}\n",
        r.status.as_str().to_uppercase(),
        r.task.as_deref().unwrap_or("task")
    ));
    if let Some(u) = r
        .usage
        .as_ref()
        .filter(|u| u.input_tokens + u.output_tokens > 0)
    {
        let cost = match (&r.cost, r.cost_usd) {
            (_, Some(c)) => format!("${c:.4}"),
            (Some(c), None) => c.note.clone().unwrap_or_else(|| "unpriced".into()),
            (None, None) => "-".into(),
        };
        s.push_str(&format!(
            "  tokens: {} in ({} cached), {} out · turns {} · cost {}\n",
            u.input_tokens,
            u.cached_input_tokens,
            u.output_tokens,
            u.turns.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
            cost
        ));
    }
    let d = &r.durations;
    s.push_str(&format!(
        "  time: {:.1}s (provision {:.1}s, generation {:.1}s, verification {:.1}s)\n",
        d.total_s, d.provision_s, d.generation_s, d.verification_s
    ));
    if !r.completed_files.is_empty() {
        let files: Vec<&str> = r.completed_files.keys().map(String::as_str).collect();
        s.push_str(&format!("  changed: {}\n", files.join(", ")));
    }
    if let Some(v) = &r.verification {
        for x in v.violations.iter().take(20) {
            let decl = x
                .decl
                .as_deref()
                .map(|d| format!(" [{d}]"))
                .unwrap_or_default();
            let loc = if x.file.is_empty() {
                "-".to_string()
            } else {
                x.location()
            };
            s.push_str(&format!("  {loc}  {}{decl}: {}\n", x.kind, x.message));
        }
        if v.violations.len() > 20 {
            s.push_str(&format!(
                "  … {} more in result.json\n",
                v.violations.len() - 20
            ));
        }
    }
    if let Some(e) = &r.error {
        s.push_str(&format!("  error: {}: {}\n", e.kind, e.message));
    }
    s.push_str(&format!(
        "output: {} (logs/result.json, logs/stdout.txt)\n",
        out_dir.display()
    ));
    s
}
