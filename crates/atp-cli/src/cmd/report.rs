//! `atp report OUT`: re-render a benchmark's reports (results.jsonl, results.csv, report.md,
//! report.html) from its stored results, without running anything.

use std::path::PathBuf;
use std::process::ExitCode;

use atp_bench::report::{pct, render, usd, ReportData};
use atp_bench::Store;
use serde_json::json;

use crate::cmd::{print_json, Global};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A benchmark's output directory (it holds run.toml).
    #[arg(value_name = "OUT")]
    pub out: PathBuf,
}

pub async fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let store = Store::new(&args.out);
    if !store.run_toml().is_file() {
        anyhow::bail!(
            "{}: no run.toml — not an atp benchmark output (run `atp benchmark DATASET_DIR --output {}` first)",
            args.out.display(),
            args.out.display()
        );
    }
    let rendered = render(&store)?;
    let data = ReportData::load(&store)?;
    if global.json {
        print_json(&json!({
            "out": args.out,
            "state": data.info.state,
            "provers": data.summaries,
            "reports": rendered.files,
        }))?;
    } else {
        print!("{}", summary_table(&data));
        for f in &rendered.files {
            println!("  {}", f.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The per-prover summary printed by `atp benchmark` and `atp report`.
pub fn summary_table(d: &ReportData) -> String {
    let n = d.plan.attempts;
    let row = |p: &atp_bench::ProverSummary| {
        [
            p.prover.clone(),
            format!("{}/{}", p.tasks_solved, p.tasks_attempted),
            pct(p.pass_at_1),
            pct(p.pass_at_n),
            usd(p.total_cost_usd),
        ]
    };
    if n > 1 {
        let rows: Vec<[String; 5]> = d.summaries.iter().map(row).collect();
        let pass_n = format!("pass@{n}");
        crate::cmd::table(
            &["prover", "solved", "pass@1", pass_n.as_str(), "cost"],
            &rows,
        )
    } else {
        // One attempt: pass@N is pass@1, so it is not printed twice.
        let rows: Vec<[String; 4]> = d
            .summaries
            .iter()
            .map(|p| {
                let [a, b, c, _, e] = row(p);
                [a, b, c, e]
            })
            .collect();
        crate::cmd::table(&["prover", "solved", "pass@1", "cost"], &rows)
    }
}
