//! `atp provers`: every prover atp knows, its kind, default model and credential.

use std::process::ExitCode;

use crate::cmd::{print_json, Global};
use crate::prover::REGISTRY;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    if global.json {
        print_json(&REGISTRY)?;
    } else {
        print!("{}", render());
    }
    Ok(ExitCode::SUCCESS)
}

/// The table.
pub fn render() -> String {
    let rows: Vec<[String; 4]> = REGISTRY
        .iter()
        .map(|e| {
            [
                e.name.to_string(),
                e.kind.as_str().to_string(),
                e.default_model.unwrap_or("-").to_string(),
                e.credential.to_string(),
            ]
        })
        .collect();
    crate::cmd::table(&["prover", "kind", "default model", "credential"], &rows)
}
