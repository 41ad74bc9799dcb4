//! One module per subcommand; each has an `Args` (clap) and an async `run` returning the exit code.

use std::process::ExitCode;

use clap::Subcommand;

pub mod auth_status;
pub mod benchmark;
pub mod build_image;
pub mod build_modal_image;
pub mod datasets;
pub mod doctor;
pub mod download;
pub mod examples;
pub mod gc;
pub mod image;
pub mod prove;
pub mod provers;
pub mod report;
pub mod rerun;
pub mod run_args;
pub mod verify;

/// Flags every subcommand honours, and the process-wide cancellation.
#[derive(Debug, Clone)]
pub struct Global {
    /// Print JSON instead of text.
    pub json: bool,
    /// Cancelled by the first SIGINT/SIGTERM/SIGHUP: stop, clean up, write what you have.
    pub cancel: tokio_util::sync::CancellationToken,
}

/// The exit code of a run with `status` — one convention for every command: 0 success, 1 the
/// command ran and the answer is negative (unverified, timeout, a failed check), 2 an error
/// prevented an answer (bad input, engine, image), 128+N interrupted by signal N (set by
/// `main`).
pub fn exit_for(status: atp_prover::Status) -> ExitCode {
    use atp_prover::Status;
    match status {
        Status::Verified => ExitCode::SUCCESS,
        Status::Unverified | Status::Timeout => ExitCode::from(1),
        Status::Error => ExitCode::from(2),
        // main replaces it with 128 + the signal's number.
        Status::Cancelled => ExitCode::from(130),
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Prove a Lean project's `sorry`s with a prover in a sandbox, then verify the result.
    Prove(Box<prove::Args>),
    /// Run provers over a dataset: every task × prover × attempt, resumable, with reports.
    Benchmark(Box<benchmark::Args>),
    /// Re-render a benchmark's reports from its stored results.
    Report(report::Args),
    /// List the datasets atp can download (pinned commits, Lean toolchains).
    Datasets(datasets::Args),
    /// Download a dataset (sparse, shallow git clone at its pinned commit) into a directory.
    Download(download::Args),
    /// Repeat a finished `atp prove` from its recorded configuration on the same image.
    Rerun(rerun::Args),
    /// List the provers atp knows.
    Provers(provers::Args),
    /// Show which credential each prover would use and whether it is valid.
    AuthStatus(auth_status::Args),
    /// Write atp's bundled examples (bare .lean files and a lake project).
    Examples(examples::Args),
    /// Check the engine and the sandbox image.
    Doctor(doctor::Args),
    /// Remove sandboxes left behind by atp runs (labelled `atp.managed=true`).
    Gc(gc::Args),
    /// Build the sandbox image from its spec with the local Docker engine.
    BuildImage(build_image::Args),
    /// Build the image spec on Modal layer by layer and publish it under a name.
    BuildModalImage(build_modal_image::Args),
    /// Render the image spec (Dockerfile / Modal layers) or show an image's Lean pins.
    Image(image::Args),
    /// Verify a candidate proof (a lake project or .lean files) in a sandbox.
    Verify(verify::Args),
}

/// Run a subcommand.
pub async fn run(command: Command, global: &Global) -> anyhow::Result<ExitCode> {
    match command {
        Command::Prove(args) => prove::run(*args, global).await,
        Command::Benchmark(args) => benchmark::run(*args, global).await,
        Command::Report(args) => report::run(args, global).await,
        Command::Datasets(args) => datasets::run(args, global).await,
        Command::Download(args) => download::run(args, global).await,
        Command::Provers(args) => provers::run(args, global).await,
        Command::Rerun(args) => rerun::run(args, global).await,
        Command::AuthStatus(args) => auth_status::run(args, global).await,
        Command::Examples(args) => examples::run(args, global).await,
        Command::Doctor(args) => doctor::run(args, global).await,
        Command::Gc(args) => gc::run(args, global).await,
        Command::BuildImage(args) => build_image::run(args, global).await,
        Command::BuildModalImage(args) => build_modal_image::run(args, global).await,
        Command::Image(args) => image::run(args, global).await,
        Command::Verify(args) => verify::run(args, global).await,
    }
}

/// Print `value` as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A plain text table: a header row, then rows, columns padded to the widest cell.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}
