//! `atp gc`: find and remove sandboxes atp left behind (label `atp.managed=true`).

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atp_backend::{GcEntry, GcFilter, RunId};
use serde::Serialize;

use crate::backend::{self, BackendArgs};
use crate::cmd::{print_json, Global};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// List what would be removed without removing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Only sandboxes created at least MIN minutes ago.
    #[arg(long, value_name = "MIN")]
    pub older_than: Option<u64>,
    /// Only sandboxes of this run.
    #[arg(long, value_name = "ID")]
    pub run_id: Option<RunId>,
    #[command(flatten)]
    pub backend: BackendArgs,
}

#[derive(Debug, Serialize)]
struct Report {
    backend: String,
    dry_run: bool,
    count: usize,
    sandboxes: Vec<GcEntry>,
}

pub async fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let b = backend::make(&args.backend.spec())?;
    let entries = b
        .gc(GcFilter {
            run_id: args.run_id,
            older_than: args.older_than.map(|m| Duration::from_secs(m * 60)),
            dry_run: args.dry_run,
        })
        .await?;
    let report = Report {
        backend: b.name().to_string(),
        dry_run: args.dry_run,
        count: entries.len(),
        sandboxes: entries,
    };
    if global.json {
        print_json(&report)?;
    } else {
        print!("{}", render(&report, unix_now()));
    }
    Ok(ExitCode::SUCCESS)
}

fn render(r: &Report, now: i64) -> String {
    let mut out = String::new();
    let verb = if r.dry_run { "would remove" } else { "removed" };
    for e in &r.sandboxes {
        let age = e
            .created_unix
            .map(|c| format!("{} min old", (now - c).max(0) / 60))
            .unwrap_or_else(|| "age unknown".into());
        out.push_str(&format!(
            "{verb} {} ({}, run {}, {}, {age})\n",
            e.name.as_deref().unwrap_or("?"),
            &e.id[..e.id.len().min(12)],
            e.run_id.as_deref().unwrap_or("?"),
            e.state.as_deref().unwrap_or("?"),
        ));
    }
    let noun = if r.count == 1 { "sandbox" } else { "sandboxes" };
    out.push_str(&match (r.dry_run, r.count) {
        (_, 0) => format!("no managed {} sandboxes found\n", r.backend),
        (true, n) => format!("{n} {noun} found (dry run, nothing removed)\n"),
        (false, n) => format!("{n} {noun} removed\n"),
    });
    out
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(removed: bool) -> GcEntry {
        GcEntry {
            id: "0123456789abcdef".into(),
            name: Some("atp-abc-1".into()),
            run_id: Some("r1".into()),
            created_unix: Some(1_000),
            state: Some("running".into()),
            removed,
        }
    }

    #[test]
    fn renders_dry_runs_and_removals() {
        let dry = Report {
            backend: "docker".into(),
            dry_run: true,
            count: 1,
            sandboxes: vec![entry(false)],
        };
        insta::assert_snapshot!(render(&dry, 1_000 + 125 * 60), @r"
        would remove atp-abc-1 (0123456789ab, run r1, running, 125 min old)
        1 sandbox found (dry run, nothing removed)
        ");
        let real = Report {
            backend: "docker".into(),
            dry_run: false,
            count: 2,
            sandboxes: vec![entry(true), entry(true)],
        };
        insta::assert_snapshot!(render(&real, 1_000), @r"
        removed atp-abc-1 (0123456789ab, run r1, running, 0 min old)
        removed atp-abc-1 (0123456789ab, run r1, running, 0 min old)
        2 sandboxes removed
        ");
        let none = Report {
            backend: "docker".into(),
            dry_run: false,
            count: 0,
            sandboxes: vec![],
        };
        insta::assert_snapshot!(render(&none, 0), @"no managed docker sandboxes found");
    }
}
