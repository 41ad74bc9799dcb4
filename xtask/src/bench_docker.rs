//! `cargo xtask bench-docker`: the Docker backend's costs on `atp-test:latest`, in one run.
//!
//! (a) session open + `echo hi` + close vs `docker run --rm --network none IMAGE true` (CLI);
//! (b) one exec in a live session vs the same exec through raw bollard create+start+inspect;
//! (c) streaming 200,000 stdout lines; (d) 32 concurrent sessions × 10 execs with this process's
//! peak RSS. Medians over `--iterations`; not a test (numbers depend on the machine).

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use atp_backend::layout::{exec_argv, DEFAULT_KILL_GRACE};
use atp_backend::{ComputeBackend, ExecOptions, NetworkMode, RunId, SessionOptions};
use atp_docker::{DockerBackend, DockerConfig};
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::query_parameters::ListContainersOptionsBuilder;
use futures::StreamExt;

/// Arguments of `cargo xtask bench-docker`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Iterations per measurement (medians are reported).
    #[arg(long, default_value_t = 15)]
    pub iterations: usize,
    /// Image to benchmark on (built by `cargo xtask test-image`).
    #[arg(long, default_value = "atp-test:latest")]
    pub image: String,
    /// Lines streamed in (c).
    #[arg(long, default_value_t = 200_000)]
    pub lines: u64,
    /// Concurrent sessions in (d).
    #[arg(long, default_value_t = 32)]
    pub sessions: usize,
    /// Execs per session in (d).
    #[arg(long, default_value_t = 10)]
    pub execs: usize,
}

const BUDGET: Duration = Duration::from_secs(120);

pub fn run(args: Args) -> Result<()> {
    if args.iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(bench(args))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "meets target"
    } else {
        "MISSES target"
    }
}

fn opts(run: &RunId) -> SessionOptions {
    SessionOptions {
        run_id: Some(run.clone()),
        network: NetworkMode::None,
        ..Default::default()
    }
}

fn exec_opts() -> ExecOptions {
    ExecOptions::with_timeout(BUDGET)
}

/// Peak resident set size of this process in KiB (`VmHWM`).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Reset the peak-RSS watermark (Linux ≥ 4.0); returns whether it worked.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

async fn bench(args: Args) -> Result<()> {
    let backend = DockerBackend::new(DockerConfig {
        network: NetworkMode::None,
        ..DockerConfig::for_image(args.image.clone())
    });
    let health = backend.health().await?;
    backend.image_info().await?;
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "bench-docker: image {}, engine {} (API {}), {} iterations, {profile} build",
        args.image,
        health.version.as_deref().unwrap_or("?"),
        health.api_version.as_deref().unwrap_or("?"),
        args.iterations
    );
    let run = RunId::new();
    let wd = tempfile::tempdir()?;
    let n = args.iterations;

    // (a) open + exec + close vs `docker run --rm`.
    let mut ours = Vec::new();
    for i in 0..n + 1 {
        let t = Instant::now();
        let s = backend.session(wd.path(), opts(&run)).await?;
        let r = s.exec_wait("echo hi", exec_opts()).await?;
        s.close().await?;
        let took = t.elapsed();
        if r.stdout != "hi\n" {
            bail!("(a) unexpected output {:?}", r.stdout);
        }
        if i > 0 {
            ours.push(took);
        }
    }
    let mut cli = Vec::new();
    for i in 0..n + 1 {
        let t = Instant::now();
        let st = Command::new("docker")
            .args(["run", "--rm", "--network", "none", "--label"])
            .arg(format!("atp.run-id={run}"))
            .arg(&args.image)
            .arg("true")
            .stdout(Stdio::null())
            .status()
            .context("running docker run")?;
        let took = t.elapsed();
        if !st.success() {
            bail!("docker run failed");
        }
        if i > 0 {
            cli.push(took);
        }
    }
    let (a_ours, a_cli) = (median(ours), median(cli));
    let a_ratio = ratio(a_ours, a_cli);
    println!(
        "(a) open+exec+close    {:>10}   docker run --rm true {:>10}   ratio {a_ratio:.2}  (target ≤ 1.0: {})",
        ms(a_ours),
        ms(a_cli),
        verdict(a_ratio <= 1.0)
    );

    // (b) one exec in a live session vs raw create_exec + start + inspect.
    let s = backend.session(wd.path(), opts(&run)).await?;
    let docker = bollard::Docker::connect_with_defaults()?
        .negotiate_version()
        .await?;
    let argv = exec_argv("bench", "echo hi", BUDGET, DEFAULT_KILL_GRACE);
    let bare = vec!["echo".to_string(), "hi".to_string()];
    let mut ours = Vec::new();
    let mut raw_same = Vec::new();
    let mut raw_bare = Vec::new();
    for i in 0..n + 1 {
        let t = Instant::now();
        let r = s.exec_wait("echo hi", exec_opts()).await?;
        let took = t.elapsed();
        if r.stdout != "hi\n" {
            bail!("(b) unexpected output {:?}", r.stdout);
        }
        let t = Instant::now();
        let code = raw_exec(&docker, s.id(), argv.clone()).await?;
        let took_raw = t.elapsed();
        let t = Instant::now();
        let code_bare = raw_exec(&docker, s.id(), bare.clone()).await?;
        let took_bare = t.elapsed();
        if code != 0 || code_bare != 0 {
            bail!("(b) raw exec failed");
        }
        if i > 0 {
            ours.push(took);
            raw_same.push(took_raw);
            raw_bare.push(took_bare);
        }
    }
    let (b_ours, b_raw, b_bare) = (median(ours), median(raw_same), median(raw_bare));
    let b_ratio = ratio(b_ours, b_raw);
    println!(
        "(b) exec in session    {:>10}   raw API, same argv   {:>10}   ratio {b_ratio:.2}  (target ≤ 1.1: {})",
        ms(b_ours),
        ms(b_raw),
        verdict(b_ratio <= 1.1)
    );
    println!(
        "                                    raw API, bare `echo hi` {:>7}   ratio {:.2}  (cost of the timeout + bash -lc wrapping)",
        ms(b_bare),
        ratio(b_ours, b_bare)
    );

    // (c) streaming.
    let t = Instant::now();
    let mut h = s
        .exec(&format!("seq 1 {}", args.lines), exec_opts())
        .await?;
    let mut count = 0u64;
    let mut first = None;
    while let Some(_line) = h.next_line().await {
        if first.is_none() {
            first = Some(t.elapsed());
        }
        count += 1;
    }
    let r = h.wait().await?;
    let took = t.elapsed();
    if count != args.lines || r.exit_code != 0 {
        bail!("(c) streamed {count} lines, exit {}", r.exit_code);
    }
    println!(
        "(c) stream {} lines {:>10}   {:.0} lines/s, first line after {}",
        args.lines,
        ms(took),
        count as f64 / took.as_secs_f64(),
        ms(first.unwrap_or_default())
    );
    s.close().await?;

    // (d) concurrency and memory.
    let reset = reset_peak_rss();
    let before = peak_rss_kib();
    let t = Instant::now();
    let backend = Arc::new(backend);
    let mut tasks = Vec::new();
    for _ in 0..args.sessions {
        let b = Arc::clone(&backend);
        let run = run.clone();
        let path = wd.path().to_path_buf();
        let execs = args.execs;
        tasks.push(tokio::spawn(async move {
            let s = b.session(&path, opts(&run)).await?;
            let mut times = Vec::with_capacity(execs);
            for _ in 0..execs {
                let t = Instant::now();
                let r = s.exec_wait("echo hi", exec_opts()).await;
                times.push(t.elapsed());
                if let Err(e) = r {
                    let _ = s.close().await;
                    return Err(anyhow::Error::from(e));
                }
            }
            s.close().await?;
            Ok::<_, anyhow::Error>(times)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let wall = t.elapsed();
    let peak = peak_rss_kib();
    let per_exec = median(all);
    let peak_mib = peak.map(|k| k as f64 / 1024.0);
    println!(
        "(d) {}×{} concurrent  wall {:>10}   per-exec median {}   peak RSS {}{}  (target < 64 MiB: {})",
        args.sessions,
        args.execs,
        ms(wall),
        ms(per_exec),
        peak_mib
            .map(|m| format!("{m:.1} MiB"))
            .unwrap_or_else(|| "?".into()),
        if reset {
            format!(
                " (watermark reset before (d), {:.1} MiB at reset)",
                before.unwrap_or(0) as f64 / 1024.0
            )
        } else {
            " (whole process)".into()
        },
        verdict(peak_mib.is_some_and(|m| m < 64.0))
    );

    let left = leftover(&run).await?;
    if left != 0 {
        bail!("{left} containers of run {run} left behind");
    }
    drop(wd);
    Ok(())
}

/// create_exec + start (attached, drained) + inspect, nothing else: the raw Engine API cost.
async fn raw_exec(docker: &bollard::Docker, container: &str, cmd: Vec<String>) -> Result<i64> {
    let exec = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(cmd),
                ..Default::default()
            },
        )
        .await?;
    if let StartExecResults::Attached { mut output, .. } = docker.start_exec(&exec.id, None).await?
    {
        while let Some(chunk) = output.next().await {
            chunk?;
        }
    }
    let inspect = docker.inspect_exec(&exec.id).await?;
    Ok(inspect.exit_code.unwrap_or(-1))
}

async fn leftover(run: &RunId) -> Result<usize> {
    let docker = bollard::Docker::connect_with_defaults()?;
    let filters: HashMap<&str, Vec<String>> =
        HashMap::from([("label", vec![format!("atp.run-id={run}")])]);
    Ok(docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await?
        .len())
}
