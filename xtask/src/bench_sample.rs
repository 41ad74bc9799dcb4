//! `cargo xtask bench-sample`: what batch verification buys the `sample` prover — k candidates
//! of one task verified in ONE sandbox with 1, 2 and 4 workers, against k separate
//! verifications (one fresh sandbox each, as a naive pass@k loop would do), on the stand-in
//! `lake` with a fixed per-file compile delay. Wall times include creating and removing the
//! sandboxes. A separate verification opens two sandboxes (build and check); a batch opens one
//! build sandbox for all candidates and, per candidate, the fresh check sandbox the verifier's
//! trust model requires — so the batch saves k − 1 sandbox starts and the per-candidate set-up,
//! not the checks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use atp_backend::{ComputeBackend, NetworkMode};
use atp_docker::{DockerBackend, DockerConfig};
use atp_lean::LeanProject;
use atp_verify::{Verifier, VerifyOptions};
use futures::StreamExt;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image holding the stand-in `lake`.
    #[arg(long, default_value = "atp-test:latest")]
    pub image: String,
    /// k: candidates of the task.
    #[arg(long, default_value_t = 32)]
    pub k: usize,
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

const TASK: &str = "import Mathlib\n\ntheorem t (n : ℕ) : n + 0 = n := by\n  sorry\n";

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
    let write_project = |dir: &std::path::Path, text: &str| -> Result<()> {
        std::fs::create_dir_all(dir)?;
        for (name, t) in atp_image::Skeleton::builtin().files() {
            std::fs::write(dir.join(name), t)?;
        }
        std::fs::write(dir.join("Task.lean"), text)?;
        Ok(())
    };
    write_project(&tmp.path().join("task"), TASK)?;
    let original = LeanProject::open(tmp.path().join("task"))?;
    let mut candidates = Vec::new();
    for i in 0..args.k {
        // Distinct candidates (different proofs), all honest.
        let proof = if i % 2 == 0 { "simp" } else { "omega" };
        let dir = tmp.path().join(format!("c{i:03}"));
        write_project(&dir, &TASK.replace("sorry", proof))?;
        candidates.push(LeanProject::open(&dir)?);
    }
    let verifier = Verifier::new(backend.clone()).with_options(VerifyOptions {
        workers: Some(1),
        timeout: Duration::from_secs(600),
        env: BTreeMap::from([(
            "ATP_STANDIN_DELAY_MS".to_string(),
            args.delay_ms.to_string(),
        )]),
        ..Default::default()
    });
    println!(
        "bench-sample: k = {} candidates of one task, stand-in delay {} ms per file, image {}",
        args.k, args.delay_ms, args.image
    );

    // k separate verifications: a fresh sandbox per candidate, one after the other.
    let t = Instant::now();
    for c in &candidates {
        let v = verifier.verify(c, Some(&original)).await?;
        if !v.report.verified {
            bail!(
                "a benchmark candidate did not verify: {}",
                v.report.reason()
            );
        }
    }
    let separate = t.elapsed().as_secs_f64();
    // The same with 4 sandboxes at a time, for a fairer baseline.
    let t = Instant::now();
    let results: Vec<_> = futures::stream::iter(candidates.iter())
        .map(|c| verifier.verify(c, Some(&original)))
        .buffer_unordered(4)
        .collect()
        .await;
    for r in results {
        if !r?.report.verified {
            bail!("a benchmark candidate did not verify");
        }
    }
    let separate4 = t.elapsed().as_secs_f64();

    println!("{:<44}  {:>9}  {:>12}", "mode", "wall (s)", "vs separate");
    println!(
        "{:<44}  {separate:>9.2}  {:>11.2}x",
        format!("{} separate sandboxes, sequential", args.k),
        1.0
    );
    println!(
        "{:<44}  {separate4:>9.2}  {:>11.2}x",
        format!("{} separate sandboxes, 4 at a time", args.k),
        separate / separate4
    );
    for workers in [1usize, 2, 4] {
        let t = Instant::now();
        let out = atp_sample::batch::verify_all(
            &verifier,
            &original,
            &candidates,
            workers,
            false,
            Duration::from_secs(3600),
        )
        .await?;
        let wall = t.elapsed().as_secs_f64();
        for r in out {
            match r {
                Some(Ok(v)) if v.report.verified => {}
                Some(Ok(v)) => bail!(
                    "a benchmark candidate did not verify: {}",
                    v.report.reason()
                ),
                Some(Err(e)) => return Err(e.into()),
                None => bail!("a candidate was skipped"),
            }
        }
        println!(
            "{:<44}  {wall:>9.2}  {:>11.2}x",
            format!("one sandbox, {workers} worker(s)"),
            separate / wall
        );
    }
    println!("(wall = everything, sandbox creation and removal included; ratio = separate sequential / mode)");
    println!(
        "(sandboxes: separate = 2 per candidate (build + check) = {}; one sandbox = 1 build + 1 check per candidate = {})",
        2 * args.k,
        1 + args.k
    );
    Ok(())
}
