//! Project automation: `cargo xtask <task>`.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "atp project automation")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.task {}
}
