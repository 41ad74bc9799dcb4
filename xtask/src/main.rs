//! Project automation: `cargo xtask <task>`.
//!
//! Each task lives in its own module; this file only parses arguments and dispatches.

use clap::{Parser, Subcommand};

mod bench_docker;
mod build_docker_image;
mod test_image;

#[derive(Parser)]
#[command(name = "xtask", about = "atp project automation")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    // One variant per task, each delegating to a module (e.g. `TestImage(test_image::Args)`).
    /// Build the local test image `atp-test:latest` from the host (no registry needed).
    TestImage(test_image::Args),
    /// Benchmark the Docker backend on the test image (open/exec/close, raw exec, streaming, 32×10).
    BenchDocker(bench_docker::Args),
    /// Build the default sandbox image (images/open-atp.toml) with Docker; needs internet.
    BuildDockerImage(build_docker_image::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.task {
        Task::TestImage(args) => test_image::run(args),
        Task::BenchDocker(args) => bench_docker::run(args),
        Task::BuildDockerImage(args) => build_docker_image::run(args),
    }
}
