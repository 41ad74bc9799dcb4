//! Project automation: `cargo xtask <task>`.
//!
//! Each task lives in its own module; this file only parses arguments and dispatches.

use clap::{Parser, Subcommand};

mod agents_image;
mod agents_layer;
mod bench_benchmark;
mod bench_docker;
mod bench_modal;
mod bench_prove;
mod bench_sample;
mod bench_verify;
mod build_docker_image;
mod build_modal_image;
mod conformance;
mod fake_modal;
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
    /// Build the agents test image `atp-agents-test:latest` (test image + real agent CLIs), cached.
    AgentsImage(agents_image::Args),
    /// Benchmark the Docker backend on the test image (open/exec/close, raw exec, streaming, 32×10).
    BenchDocker(bench_docker::Args),
    /// Build the default sandbox image (images/open-atp.toml) with Docker; needs internet.
    BuildDockerImage(build_docker_image::Args),
    /// Run the fake Modal (loopback control plane + router, sandboxes as local containers).
    FakeModal(fake_modal::Args),
    /// Build the default sandbox image on Modal layer by layer and publish it under a name.
    BuildModalImage(build_modal_image::Args),
    /// Benchmark the Modal backend's push/exec/pull against the in-process fake Modal.
    BenchModal(bench_modal::Args),
    /// Verify every exploit-corpus candidate against its original through the stand-in (needs ATP_EXPLOIT_CORPUS).
    Conformance(conformance::Args),
    /// Benchmark the verifier: 16 files with 1, 2 and 4 workers on the stand-in.
    BenchVerify(bench_verify::Args),
    /// Benchmark atp's own overhead per prove (instant scripted model, real Claude Code CLI).
    BenchProve(bench_prove::Args),
    /// Benchmark batch verification of pass@k: k candidates in one sandbox with 1, 2, 4 workers vs k sandboxes.
    BenchSample(bench_sample::Args),
    /// Benchmark `atp benchmark` at scale: 200 cells at once on the fake Modal, then on Docker.
    BenchBenchmark(bench_benchmark::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.task {
        Task::TestImage(args) => test_image::run(args),
        Task::AgentsImage(args) => agents_image::run(args),
        Task::BenchDocker(args) => bench_docker::run(args),
        Task::BuildDockerImage(args) => build_docker_image::run(args),
        Task::FakeModal(args) => fake_modal::run(args),
        Task::BuildModalImage(args) => build_modal_image::run(args),
        Task::BenchModal(args) => bench_modal::run(args),
        Task::Conformance(args) => conformance::run(args),
        Task::BenchVerify(args) => bench_verify::run(args),
        Task::BenchProve(args) => bench_prove::run(args),
        Task::BenchSample(args) => bench_sample::run(args),
        Task::BenchBenchmark(args) => bench_benchmark::run(args),
    }
}
