//! `cargo xtask bench-prove`: atp's own overhead per prove, with an instant scripted model (the
//! model fake on loopback answering at once) and the real Claude Code CLI on the agents test
//! image. Each phase is timed from the lifecycle's progress events; medians over N runs.
//!
//! Phases: staging (copy + stage), provision (the agent's container), agent start → first model
//! request, generation (the whole agent run, for reference), agent exit → verification start
//! (pull, close, read back), verification (its own container), result.json written.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use atp_agents::claude_code::ClaudeCode;
use atp_agents::AgentProver;
use atp_backend::{ComputeBackend, NetworkMode};
use atp_docker::{DockerBackend, DockerConfig};
use atp_model_fake::{policy, ModelFake};
use atp_prover::{prove, EnvSource, ProgressEvent, ProofTask, ProveOptions, Status};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The agents test image (`cargo xtask agents-image`).
    #[arg(long, default_value = "atp-agents-test:latest")]
    pub image: String,
    /// Runs to take medians over.
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
}

pub fn run(args: Args) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench(args))
}

#[derive(Debug, Default, Clone)]
struct Times {
    staging: f64,
    provision: f64,
    first_request: f64,
    generation: f64,
    after_agent: f64,
    verification: f64,
    write: f64,
    total: f64,
}

async fn bench(args: Args) -> Result<()> {
    let backend: Arc<dyn ComputeBackend> = Arc::new(DockerBackend::new(DockerConfig {
        network: NetworkMode::Host,
        ..DockerConfig::for_image(args.image.clone())
    }));
    backend
        .image_info()
        .await
        .with_context(|| format!("image {} (run `cargo xtask agents-image`)", args.image))?;
    let root = crate::test_image::workspace_root()?;
    let task = ProofTask::new(atp_lean::LeanProject::open(root.join("fixtures/original"))?);
    println!(
        "bench-prove: {} runs of `claude` on fixtures/original, image {}, instant scripted model",
        args.runs, args.image
    );
    let mut all = Vec::new();
    for i in 0..args.runs {
        let fake = Arc::new(ModelFake::start(policy::solve("simp", "Done.")).await?);
        let env = EnvSource::fixed(
            [
                ("ANTHROPIC_API_KEY".to_string(), "bench-key".to_string()),
                ("CLAUDE_CODE_MAX_RETRIES".to_string(), "1".to_string()),
            ]
            .into(),
        );
        let prover = AgentProver::with_env(
            ClaudeCode {
                api_base: Some(fake.url()),
                ..ClaudeCode::default()
            },
            env,
        );
        let marks: Arc<Mutex<Vec<(String, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
        let m2 = Arc::clone(&marks);
        let opts = ProveOptions {
            network: NetworkMode::Host,
            progress: Arc::new(move |e| {
                if let ProgressEvent::Phase(p) = e {
                    if let Ok(mut m) = m2.lock() {
                        m.push((p, Instant::now()));
                    }
                }
            }),
            ..ProveOptions::default()
        };
        // The first model request, seen from the fake's side (polled every 2 ms).
        let first = Arc::new(Mutex::new(None::<Instant>));
        let watcher = {
            let first = Arc::clone(&first);
            let f = Arc::clone(&fake);
            tokio::spawn(async move {
                loop {
                    if f.requests().iter().any(|q| !q.tools.is_empty()) {
                        if let Ok(mut g) = first.lock() {
                            *g = Some(Instant::now());
                        }
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        };
        let out = tempfile::tempdir()?;
        let started = Instant::now();
        let r = prove(&task, &prover, Arc::clone(&backend), out.path(), opts).await?;
        let end = Instant::now();
        watcher.abort();
        anyhow::ensure!(
            r.status == Status::Verified,
            "run {i}: {} ({:?})",
            r.status,
            r.error
        );
        let m = marks.lock().map(|m| m.clone()).unwrap_or_default();
        let at = |name: &str| m.iter().find(|(p, _)| p == name).map(|(_, t)| *t);
        let (Some(st), Some(pr), Some(ge), Some(co), Some(ve)) = (
            at("staging"),
            at("provision"),
            at("generation"),
            at("collecting"),
            at("verification"),
        ) else {
            anyhow::bail!("run {i}: missing phase events {m:?}");
        };
        let first = first.lock().ok().and_then(|g| *g).unwrap_or(co);
        let secs = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64();
        let t = Times {
            staging: secs(st, pr),
            provision: secs(pr, ge),
            first_request: secs(ge, first),
            generation: secs(ge, co),
            after_agent: secs(co, ve),
            verification: r.durations.verification_s,
            write: (secs(ve, end) - r.durations.verification_s).max(0.0),
            total: secs(started, end),
        };
        println!(
            "  run {:>2}: total {:.2}s  provision {:.2}s  first request {:.2}s  verification {:.2}s",
            i + 1,
            t.total,
            t.provision,
            t.first_request,
            t.verification
        );
        all.push(t);
        drop(fake);
    }
    let med = |f: fn(&Times) -> f64| {
        let mut v: Vec<f64> = all.iter().map(f).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    println!("\nmedians over {} runs (seconds):", all.len());
    println!("| phase | median |");
    println!("|---|---|");
    for (name, f) in [
        (
            "staging (copy task, stage harness)",
            (|t: &Times| t.staging) as fn(&Times) -> f64,
        ),
        ("provision (agent container)", |t| t.provision),
        ("agent start → first model request", |t| t.first_request),
        ("generation (whole agent run)", |t| t.generation),
        ("agent exit → verification start", |t| t.after_agent),
        ("verification (own container)", |t| t.verification),
        ("result.json written", |t| t.write),
        ("total", |t| t.total),
    ] {
        println!("| {name} | {:.3} |", med(f));
    }
    Ok(())
}
