//! `atp download NAME DIR`: fetch a dataset (a sparse, shallow git clone of its folder at the
//! pinned commit, or `--rev`), recorded in `DIR/.atp-dataset.toml`; `examples` writes atp's
//! bundled examples.

use std::path::PathBuf;
use std::process::ExitCode;

use atp_bench::dataset::{self, Download};
use serde_json::json;

use crate::cmd::{print_json, Global};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The dataset (see `atp datasets`).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Where to put it (must be new or empty).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// A commit, tag or branch instead of the pinned commit.
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
    /// Clone this repository instead of the registry's (a mirror or a local `file://` copy).
    #[arg(long, value_name = "URL")]
    pub repo: Option<String>,
}

pub async fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let spec = dataset::find(&args.name)?;
    if spec.repo == "bundled" {
        if args.rev.is_some() || args.repo.is_some() {
            anyhow::bail!("dataset examples is bundled with atp: --rev and --repo do not apply");
        }
        if args.dir.exists() && std::fs::read_dir(&args.dir)?.next().is_some() {
            anyhow::bail!(
                "{}: exists and is not empty — pass a new directory",
                args.dir.display()
            );
        }
        std::fs::create_dir_all(&args.dir)?;
        for (name, text) in crate::cmd::examples::EXAMPLES {
            std::fs::write(args.dir.join(name), text)?;
        }
        let record = dataset::examples_record(env!("CARGO_PKG_VERSION"));
        record.write(&args.dir)?;
        let n = crate::cmd::examples::EXAMPLES.len();
        if global.json {
            print_json(
                &json!({"record": record, "dir": args.dir, "tasks": n, "answers": 0, "reused": false}),
            )?;
        } else {
            println!("wrote {n} examples to {}", args.dir.display());
            println!("try: atp benchmark {} -p tactics", args.dir.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let req = Download {
        dataset: spec,
        dir: args.dir.clone(),
        rev: args.rev.clone(),
        repo: args.repo.clone(),
    };
    let done = tokio::select! {
        r = dataset::download(&req) => r?,
        _ = global.cancel.cancelled() => anyhow::bail!("interrupted during the download of {}", spec.name),
    };
    if global.json {
        print_json(&done)?;
    } else {
        let r = &done.record;
        println!(
            "{} {} @ {} into {}: {} tasks{}",
            if done.reused {
                "already there:"
            } else {
                "downloaded"
            },
            r.name,
            r.commit,
            done.dir.display(),
            done.tasks,
            if done.answers > 0 {
                format!(
                    ", {} answers in {}",
                    done.answers,
                    atp_bench::answers::ANSWERS_FILE
                )
            } else {
                String::new()
            }
        );
        println!(
            "  needs {} (Mathlib {}); recorded in {}",
            r.lean_toolchain,
            r.mathlib_rev.as_deref().unwrap_or("-"),
            done.dir.join(dataset::RECORD_FILE).display()
        );
        println!("try: atp benchmark {} -p tactics", done.dir.display());
    }
    Ok(ExitCode::SUCCESS)
}
