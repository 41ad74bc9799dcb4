//! `atp` — run automated theorem provers on Lean projects in isolated sandboxes.
//!
//! This file only parses the global flags and dispatches to one module per subcommand
//! (`cmd/<name>.rs`). Every subcommand prints text by default and JSON with `--json`; a failure
//! is one `error: …` line on stderr.

use std::process::ExitCode;

use clap::Parser;

mod backend;
mod cmd;
mod dotenv;
mod prover;
mod signals;
mod trace;

#[derive(Debug, Parser)]
#[command(
    name = "atp",
    version,
    about = "Run automated theorem provers on Lean projects in isolated sandboxes"
)]
struct Cli {
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,

    /// Log verbosity on stderr: error, warn, info, debug, trace (or a tracing filter).
    #[arg(
        long,
        global = true,
        value_name = "LEVEL",
        default_value = "warn",
        env = "ATP_LOG",
        hide_env_values = true
    )]
    log_level: String,

    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> ExitCode {
    // `.env` of the working directory or a parent, before any thread exists; the environment
    // wins over it.
    let dotenv_problem = dotenv::load().err();
    let cli = Cli::parse();
    if let Err(e) = init_tracing(&cli.log_level) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    if let Some(p) = dotenv_problem {
        eprintln!("error: {p}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        let signals = match signals::Signals::install() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot install signal handlers: {e}");
                return ExitCode::from(2);
            }
        };
        let global = cmd::Global {
            json: cli.json,
            cancel: signals.token(),
        };
        let outcome = tokio::select! {
            r = cmd::run(cli.command, &global) => Some(r),
            // Dropping the command's future runs every sandbox's teardown guard.
            _ = signals.second() => None,
        };
        match outcome {
            Some(Ok(code)) => match signals.exit_code() {
                Some(sig) => ExitCode::from(sig),
                None => code,
            },
            Some(Err(e)) => {
                eprintln!("error: {}", atp_backend::one_line(&format!("{e:#}")));
                ExitCode::from(signals.exit_code().unwrap_or(2))
            }
            None => ExitCode::from(signals.exit_code().unwrap_or(130)),
        }
    })
}

fn init_tracing(level: &str) -> Result<(), String> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = tracing_subscriber::EnvFilter::try_new(level).map_err(|e| {
        format!("--log-level {level:?} is not a level or filter ({e}) — use e.g. info")
    })?;
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    // A run's own trace (OUT/logs/atp.jsonl): atp's events at info and above, whatever
    // --log-level says.
    let run_trace = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(trace::TraceWriter)
        .with_filter(tracing_subscriber::EnvFilter::new(
            "info,bollard=warn,hyper=warn,h2=warn,tonic=warn,reqwest=warn",
        ));
    tracing_subscriber::registry()
        .with(stderr)
        .with(run_trace)
        .try_init()
        .map_err(|e| format!("cannot install logging: {e}"))
}
