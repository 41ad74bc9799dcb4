//! `cargo xtask bench-verify`: verify 16 files with 1, 2 and 4 workers on the stand-in `lake`
//! (each compile sleeps a fixed delay) and report wall times and the ratio to sequential.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use atp_backend::{ComputeBackend, NetworkMode};
use atp_docker::{DockerBackend, DockerConfig};

use atp_lean::LeanProject;
use atp_verify::{Verifier, VerifyOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image holding the stand-in `lake`.
    #[arg(long, default_value = "atp-test:latest")]
    pub image: String,
    /// Number of files.
    #[arg(long, default_value_t = 16)]
    pub files: usize,
    /// Per-file compile delay of the stand-in, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub delay_ms: u64,
}

pub fn run(args: Args) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(bench(args))
}

async fn bench(args: Args) -> Result<()> {
    let backend: Arc<dyn ComputeBackend> = Arc::new(DockerBackend::new(DockerConfig {
        network: NetworkMode::None,
        ..DockerConfig::for_image(args.image.clone())
    }));
    backend
        .image_info()
        .await
        .with_context(|| format!("image {} (run `cargo xtask test-image`)", args.image))?;
    let tmp = tempfile::tempdir()?;
    for (name, text) in atp_image::Skeleton::builtin().files() {
        std::fs::write(tmp.path().join(name), text)?;
    }
    std::fs::create_dir_all(tmp.path().join("Bench"))?;
    for i in 0..args.files {
        std::fs::write(
            tmp.path().join(format!("Bench/F{i:02}.lean")),
            format!("theorem t{i} (n : Nat) : n + {i} = {i} + n := by\n  omega\n"),
        )?;
    }
    let project = LeanProject::open(tmp.path())?;
    println!(
        "bench-verify: {} files, stand-in delay {} ms per file, image {}",
        args.files, args.delay_ms, args.image
    );
    println!(
        "{:>7}  {:>10}  {:>12}  {:>14}",
        "workers", "wall (s)", "compile (s)", "vs sequential"
    );
    let mut base: Option<f64> = None;
    for workers in [1usize, 2, 4] {
        let v = Verifier::new(backend.clone()).with_options(VerifyOptions {
            workers: Some(workers),
            timeout: Duration::from_secs(300),
            env: BTreeMap::from([(
                "ATP_STANDIN_DELAY_MS".to_string(),
                args.delay_ms.to_string(),
            )]),
            ..Default::default()
        });
        let t = Instant::now();
        let out = v.verify(&project, None).await?;
        let wall = t.elapsed().as_secs_f64();
        if !out.report.verified {
            bail!(
                "the benchmark project did not verify: {}",
                out.report.reason()
            );
        }
        let compile = out.report.duration.as_secs_f64();
        let b = *base.get_or_insert(compile);
        println!(
            "{workers:>7}  {wall:>10.2}  {compile:>12.2}  {:>13.2}x",
            b / compile
        );
    }
    println!(
        "(compile = the verification exec inside the sandbox; wall adds sandbox create/teardown)"
    );
    Ok(())
}
