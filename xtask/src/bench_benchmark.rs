//! `cargo xtask bench-benchmark`: `atp benchmark`'s own costs at scale (not a test: the numbers
//! depend on the machine).
//!
//! (a) N cells (default 200) at once against the fake Modal, which runs in a child process (so
//!     this process's RSS is atp's side only): host peak RSS, the scheduler's overhead per cell
//!     (a cell's wall time from its start to its stamped result, minus the lifecycle's own total),
//!     and the sandboxes left afterwards (the fake's containers, counted on the engine).
//! (b) The same on the Docker backend at the largest concurrency given (`--docker-cells`).
//!
//! Each cell is one real prove: the prover's sandbox, an instant scripted "model" (one exec that
//! writes the scripted answer — no model round trip, so the run measures atp), read-back, and
//! verification in a fresh sandbox with the stand-in `lake`. Sandboxes are containers of the
//! local test image (busybox + GNU tools, a few MB each): cheap enough for 200 at once here.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use async_trait::async_trait;
use atp_backend::{ComputeBackend, ExecOptions, GcFilter, NetworkMode, RunId};
use atp_bench::bench::{BenchEvent, BenchOptions, BenchProver, Mode};
use atp_docker::{DockerBackend, DockerConfig};
use atp_modal::{ModalBackend, ModalConfig, ModalCredentials};
use atp_prover::{
    AuthStatus, GenOutcome, GenerateContext, Generation, Preparation, PrepareContext, PriceTable,
    ProveError, Prover, ProverInfo, ProverKind, SandboxRequest, Usage,
};
use atp_verify::VerifyOptions;
use bollard::query_parameters::ListContainersOptionsBuilder;
use tokio_util::sync::CancellationToken;

/// Arguments of `cargo xtask bench-benchmark`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cells run at once against the fake Modal.
    #[arg(long, default_value_t = 200)]
    pub cells: usize,
    /// Cells run at once on the Docker backend (0 skips it).
    #[arg(long, default_value_t = 64)]
    pub docker_cells: usize,
    /// Local image every sandbox runs (`cargo xtask test-image`).
    #[arg(long, default_value = "atp-test:latest")]
    pub image: String,
    /// Skip the fake-Modal run.
    #[arg(long)]
    pub skip_modal: bool,
}

pub fn run(args: Args) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench(args))
}

/// The instant scripted prover: one exec in its sandbox writes the scripted answer.
#[derive(Debug)]
struct Scripted;

#[async_trait]
impl Prover for Scripted {
    fn info(&self) -> ProverInfo {
        ProverInfo {
            name: "scripted".into(),
            kind: ProverKind::Agent,
            model: Some("scripted-instant".into()),
            effort: None,
            config: BTreeMap::new(),
        }
    }

    fn auth(&self) -> AuthStatus {
        AuthStatus::not_required()
    }

    async fn prepare(&self, _cx: &PrepareContext<'_>) -> Result<Preparation, ProveError> {
        Ok(Preparation {
            sandbox: Some(SandboxRequest::default()),
            private: None,
        })
    }

    async fn generate(&self, cx: GenerateContext<'_>) -> Generation {
        let Some(s) = cx.session else {
            return Generation::failed("internal", "no session");
        };
        let cmd = "for f in *.lean; do sed -i 's/\\<sorry\\>/trivial/g' \"$f\"; done";
        match s
            .exec_wait(cmd, ExecOptions::with_timeout(cx.remaining()))
            .await
        {
            Ok(r) if r.success() => {
                let mut g = Generation::new(GenOutcome::Finished);
                g.usage = Usage {
                    input_tokens: 1000,
                    cached_input_tokens: 0,
                    output_tokens: 100,
                    turns: Some(1),
                    tool_calls: Some(1),
                    stop_reason: Some("end_turn".into()),
                };
                g.reported_cost = Some(0.001);
                g
            }
            Ok(r) => Generation::failed("agent_exit", format!("exit {}", r.exit_code)),
            Err(e) => Generation::failed(e.kind(), e),
        }
    }
}

fn rss_kib(field: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// What is left after a run.
#[derive(Debug, Default)]
struct Left {
    /// Sandboxes the backend still lists for the run (what `atp gc` would find).
    listed: Option<usize>,
    /// Containers the engine lists and can inspect.
    containers: usize,
    /// Entries the engine lists but cannot inspect ("No such object"): dockerd's own stale
    /// bookkeeping after a removal that raced under load; no process, nothing to remove.
    ghosts: Vec<String>,
}

/// Containers carrying `label`, split into real ones and the engine's ghost entries.
async fn containers(label: &str) -> Result<(usize, Vec<String>)> {
    let docker = bollard::Docker::connect_with_defaults()?;
    let filters: HashMap<&str, Vec<String>> = HashMap::from([("label", vec![label.to_string()])]);
    let list = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await?;
    let (mut live, mut ghosts) = (0, Vec::new());
    for c in list {
        let id = c.id.unwrap_or_default();
        match docker
            .inspect_container(
                &id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
        {
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => ghosts.push(format!(
                "{} ({})",
                &id[..12.min(id.len())],
                c.status.unwrap_or_default()
            )),
            _ => live += 1,
        }
    }
    Ok((live, ghosts))
}

/// The backend's own list of the run's sandboxes (a dry-run `gc`).
async fn listed(backend: &dyn ComputeBackend, run: &RunId) -> Option<usize> {
    backend
        .gc(GcFilter {
            run_id: Some(run.clone()),
            older_than: None,
            dry_run: true,
        })
        .await
        .ok()
        .map(|v| v.len())
}

/// The fake Modal in a child process (`cargo xtask fake-modal`): (child, URL, its run id).
fn start_fake(image: &str) -> Result<(Child, String, String)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "fake-modal",
            "--addr",
            "127.0.0.1:0",
            "--image",
            image,
            "--chunk",
            "65536",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the fake Modal")?;
    let out = child.stdout.take().context("fake stdout")?;
    let mut lines = BufReader::new(out).lines();
    let (mut url, mut run) = (None, None);
    for line in lines.by_ref() {
        let line = line?;
        if let Some(u) = line.trim().strip_prefix("MODAL_SERVER_URL=") {
            url = Some(u.to_string());
        }
        if let Some(r) = line.split("atp.run-id=").nth(1) {
            run = Some(r.trim().to_string());
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    match (url, run) {
        (Some(u), Some(r)) => Ok((child, u, r)),
        _ => bail!("the fake Modal did not print its URL"),
    }
}

fn stop_fake(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

struct Measured {
    run_id: RunId,
    wall: Duration,
    peak_rss_kib: u64,
    overheads: Vec<f64>,
    outcomes: BTreeMap<String, usize>,
}

async fn measure(backend: Arc<dyn ComputeBackend>, cells: usize, label: &str) -> Result<Measured> {
    let data = tempfile::tempdir()?;
    for i in 0..cells {
        std::fs::write(
            data.path().join(format!("T{i:04}.lean")),
            format!("theorem t{i} : True := by\n  sorry\n"),
        )?;
    }
    let out = tempfile::tempdir()?;
    let run_id = RunId::new();
    let overheads = Arc::new(Mutex::new(Vec::new()));
    let outcomes = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    let max_rss = Arc::new(Mutex::new(0u64));
    let sink = {
        let (o, c, m) = (
            Arc::clone(&overheads),
            Arc::clone(&outcomes),
            Arc::clone(&max_rss),
        );
        Arc::new(move |e: BenchEvent| {
            if let BenchEvent::Finished { record, wall_s, .. } = e {
                if let Ok(mut o) = o.lock() {
                    o.push((wall_s - record.total_s).max(0.0));
                }
                if let Ok(mut c) = c.lock() {
                    *c.entry(record.outcome.to_string()).or_default() += 1;
                }
            }
            if let (Some(now), Ok(mut m)) = (rss_kib("VmRSS:"), m.lock()) {
                *m = (*m).max(now);
            }
        })
    };
    let opts = BenchOptions {
        dataset_dir: data.path().to_path_buf(),
        out: out.path().join("out"),
        tasks: vec![],
        attempts: 1,
        workers: cells,
        per_prover: cells,
        generation_timeout: Duration::from_secs(300),
        verify: VerifyOptions {
            timeout: Duration::from_secs(300),
            workers: Some(1),
            ..VerifyOptions::default()
        },
        network: NetworkMode::None,
        resources: Default::default(),
        mode: Mode::New,
        retry_errors: false,
        answers: None,
        run_id: run_id.clone(),
        prices: PriceTable::builtin(),
        ceiling_margin: Duration::from_secs(600),
        command: vec![format!("xtask bench-benchmark ({label})")],
    };
    let started = Instant::now();
    let summary = atp_bench::run(
        opts,
        vec![BenchProver {
            label: "scripted".into(),
            prover: Arc::new(Scripted),
        }],
        backend,
        CancellationToken::new(),
        sink,
    )
    .await?;
    let wall = started.elapsed();
    anyhow::ensure!(summary.ran == cells, "{} of {cells} cells ran", summary.ran);
    let overheads = overheads.lock().map(|o| o.clone()).unwrap_or_default();
    let outcomes = outcomes.lock().map(|o| o.clone()).unwrap_or_default();
    let peak = rss_kib("VmHWM:")
        .unwrap_or(0)
        .max(max_rss.lock().map(|m| *m).unwrap_or(0));
    Ok(Measured {
        run_id,
        wall,
        peak_rss_kib: peak,
        overheads,
        outcomes,
    })
}

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        return 0.0;
    }
    s[((s.len() - 1) as f64 * q).round() as usize]
}

fn report(label: &str, cells: usize, m: &Measured, left: &Left) {
    println!("\n{label}: {cells} cells at once");
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| wall time | {:.1} s ({:.2} cells/s) |",
        m.wall.as_secs_f64(),
        cells as f64 / m.wall.as_secs_f64()
    );
    println!(
        "| host peak RSS (this process) | {:.1} MiB |",
        m.peak_rss_kib as f64 / 1024.0
    );
    println!(
        "| scheduler overhead per cell (wall − lifecycle total): median / p95 / max | {:.1} / {:.1} / {:.1} ms |",
        quantile(&m.overheads, 0.5) * 1000.0,
        quantile(&m.overheads, 0.95) * 1000.0,
        quantile(&m.overheads, 1.0) * 1000.0
    );
    println!("| outcomes | {:?} |", m.outcomes);
    let listed = left
        .listed
        .map_or("unknown (listing failed)".to_string(), |n| n.to_string());
    println!("| sandboxes left, as the backend lists them | {listed} |");
    println!("| containers left on the engine | {} |", left.containers);
    if !left.ghosts.is_empty() {
        println!(
            "| engine ghost entries (listed, but `inspect` says no such object) | {} |",
            left.ghosts.join(", ")
        );
    }
}

async fn bench(args: Args) -> Result<()> {
    if !args.skip_modal && args.cells > 0 {
        let (mut child, url, fake_run) = start_fake(&args.image)?;
        let creds = ModalCredentials::new(url, "ak-bench", "as-bench");
        let cfg = ModalConfig {
            warm_command: None,
            network: NetworkMode::None,
            pin_cache: None,
            ..ModalConfig::default()
        };
        let backend: Arc<dyn ComputeBackend> = Arc::new(ModalBackend::new(cfg, creds)?);
        let result = measure(backend.clone(), args.cells, "fake Modal").await;
        let mut left = Left::default();
        if let Ok(m) = &result {
            left.listed = listed(backend.as_ref(), &m.run_id).await;
        }
        let (live, ghosts) = containers(&format!("atp.run-id={fake_run}"))
            .await
            .unwrap_or((usize::MAX, Vec::new()));
        (left.containers, left.ghosts) = (live, ghosts);
        // The fake prints its audit (sandboxes never ended, stray containers) as it stops.
        stop_fake(&mut child);
        let m = result?;
        report(
            "fake Modal (sandboxes = local containers of the test image)",
            args.cells,
            &m,
            &left,
        );
    }
    if args.docker_cells > 0 {
        let backend: Arc<dyn ComputeBackend> = Arc::new(DockerBackend::new(DockerConfig {
            network: NetworkMode::None,
            ..DockerConfig::for_image(args.image.clone())
        }));
        backend
            .image_info()
            .await
            .with_context(|| format!("image {} (run `cargo xtask test-image`)", args.image))?;
        let m = measure(backend.clone(), args.docker_cells, "docker").await?;
        let (containers, ghosts) = containers(&format!("atp.run-id={}", m.run_id)).await?;
        let left = Left {
            listed: listed(backend.as_ref(), &m.run_id).await,
            containers,
            ghosts,
        };
        report("Docker backend", args.docker_cells, &m, &left);
    }
    Ok(())
}
