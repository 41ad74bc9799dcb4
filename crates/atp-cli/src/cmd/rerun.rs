//! `atp rerun OUT`: repeat a finished `atp prove` from its recorded configuration, on the same
//! image, over the task as it was recorded (`OUT/task`).
//!
//! Refused, with the difference named, when the image the backend would use now is not the
//! one the run used (another image id, another lock), or when the recorded task no longer
//! hashes the same.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use atp_image::ImagePins;
use atp_prover::{ProofResult, ProofTask, RunLayout};

use crate::backend;
use crate::cmd::{prove, Global};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The output directory of the run to repeat.
    #[arg(value_name = "OUT")]
    pub dir: PathBuf,
    /// Where the new run goes (default: ./atp-runs/<task>-<prover>-<new run id>).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: Option<PathBuf>,
}

pub async fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let old = RunLayout::new(&args.dir).read_result().with_context(|| {
        format!(
            "{}: no readable logs/result.json — pass the output directory of an `atp prove` run",
            args.dir.display()
        )
    })?;
    let mut prove_args = recorded_args(&old, &args.dir)?;
    let task_dir = args.dir.join("task");
    let task = ProofTask::from_inputs(std::slice::from_ref(&task_dir), &task_dir)?;
    if let (Some(was), Ok(now)) = (&old.provenance.task_hash, task.content_hash()) {
        if *was != now {
            anyhow::bail!(
                "{}: the recorded task changed since the run (hash {} then, {} now) — rerun from an untouched output directory",
                task_dir.display(),
                short(was),
                short(&now)
            );
        }
    }
    check_image(&old, &prove_args).await?;
    prove_args.inputs = vec![task_dir];
    prove_args.output = args.output;
    prove_args.run.run_id = None;
    prove_args.run.no_build = true;
    prove::run(prove_args, global).await
}

fn recorded_args(old: &ProofResult, dir: &std::path::Path) -> anyhow::Result<prove::Args> {
    let inv = old.provenance.invocation.as_ref().with_context(|| {
        format!(
            "{}: the run records no invocation (made by `atp verify` or an older atp) — only `atp prove` runs can be repeated",
            dir.display()
        )
    })?;
    if inv.get("command").and_then(|c| c.as_str()) != Some("prove") {
        anyhow::bail!("{}: not an `atp prove` run", dir.display());
    }
    serde_json::from_value(inv.get("args").cloned().unwrap_or_default()).with_context(|| {
        format!(
            "{}: the recorded invocation is not one this atp understands",
            dir.display()
        )
    })
}

async fn check_image(old: &ProofResult, args: &prove::Args) -> anyhow::Result<()> {
    let Some(was) = &old.image else {
        anyhow::bail!("the run records no image — it cannot be repeated on the same image");
    };
    let b = backend::make(&args.backend.spec())?;
    let now = b.image_info().await?;
    if let Some(id) = &was.id {
        if *id != now.id {
            anyhow::bail!(
                "image {} is not the one the run used: it was {}, it is now {} — rerun on the recorded image (or start a new `atp prove`)",
                now.name,
                short(id),
                short(&now.id)
            );
        }
    }
    let pins_now = ImagePins::from_labels(&now.labels);
    if let (Some(p_was), Some(p_now)) = (&was.pins, &pins_now) {
        if p_was != p_now {
            anyhow::bail!(
                "image {} carries other pins than the run recorded ({:?} then, {:?} now)",
                now.name,
                p_was,
                p_now
            );
        }
    }
    Ok(())
}

fn short(s: &str) -> String {
    let s = s.strip_prefix("sha256:").unwrap_or(s);
    s.chars().take(12).collect()
}
