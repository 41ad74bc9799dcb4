//! `atp auth-status [PROVER]`: which credential each prover would use, and its state.

use std::process::ExitCode;

use atp_prover::{AuthStatus, EnvSource};
use serde::Serialize;

use crate::cmd::{print_json, Global};
use crate::prover::{self, REGISTRY};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One prover (default: all).
    #[arg(value_name = "PROVER")]
    pub prover: Option<String>,
}

#[derive(Debug, Serialize)]
struct Row {
    prover: String,
    #[serde(flatten)]
    status: AuthStatus,
}

pub async fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let names: Vec<&str> = match &args.prover {
        Some(p) => {
            if prover::entry(p).is_none() {
                anyhow::bail!(
                    "unknown prover `{p}` — known provers: {} (see `atp provers`)",
                    prover::known()
                );
            }
            vec![p.as_str()]
        }
        None => REGISTRY.iter().map(|e| e.name).collect(),
    };
    let mut rows = Vec::new();
    for n in names {
        rows.push(Row {
            prover: n.to_string(),
            status: prover::auth_status(n, EnvSource::process())?,
        });
    }
    if global.json {
        print_json(&rows)?;
    } else {
        print!("{}", render(&rows, atp_prover::now_unix()));
    }
    // A blocked credential of the one prover asked about is a negative answer.
    let blocked = args.prover.is_some() && rows.iter().any(|r| r.status.state.blocks());
    Ok(if blocked {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn render(rows: &[Row], now: i64) -> String {
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let s = &r.status;
            let expires = match s.expires_at {
                Some(t) if t > now => format!("in {}", human(t - now)),
                Some(_) => "expired".into(),
                None => "-".into(),
            };
            [
                r.prover.clone(),
                format!("{:?}", s.kind)
                    .to_lowercase()
                    .replace("apikey", "api_key"),
                s.source.clone().unwrap_or_else(|| "-".into()),
                s.state.as_str().to_string(),
                expires,
                s.remedy.clone().unwrap_or_default(),
            ]
        })
        .collect();
    crate::cmd::table(
        &[
            "prover",
            "auth",
            "credential",
            "status",
            "expires",
            "remedy",
        ],
        &table,
    )
}

fn human(secs: i64) -> String {
    match secs {
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}
