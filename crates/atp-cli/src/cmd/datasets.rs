//! `atp datasets`: the datasets atp can download, with the commit they are pinned to and the
//! Lean toolchain they need.

use std::process::ExitCode;

use atp_bench::DATASETS;

use crate::cmd::{print_json, Global};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    if global.json {
        print_json(&DATASETS)?;
    } else {
        print!("{}", render());
    }
    Ok(ExitCode::SUCCESS)
}

/// The table.
pub fn render() -> String {
    let rows: Vec<[String; 5]> = DATASETS
        .iter()
        .map(|d| {
            let source = if d.repo == "bundled" {
                "bundled with atp".to_string()
            } else {
                format!(
                    "{}{} @ {}",
                    d.repo.trim_start_matches("https://github.com/"),
                    if d.subdir.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", d.subdir)
                    },
                    &d.commit[..d.commit.len().min(12)]
                )
            };
            let lean = if d.lean_toolchain.is_empty() {
                "atp's skeleton".to_string()
            } else {
                d.lean_toolchain
                    .trim_start_matches("leanprover/lean4:")
                    .to_string()
            };
            [
                d.name.to_string(),
                d.tasks.to_string(),
                lean,
                source,
                d.description.to_string(),
            ]
        })
        .collect();
    let mut s = crate::cmd::table(
        &["dataset", "tasks", "lean", "source", "description"],
        &rows,
    );
    s.push_str("download one with: atp download NAME DIR [--rev REV]\n");
    s
}
