//! `atp-model-fake --addr 127.0.0.1:0 --script FILE.json [--record FILE.jsonl]`: run the
//! scripted model fake until SIGINT/SIGTERM. The first stdout line is its URL; each request
//! is summarised on stderr (and appended to `--record` as one JSON line); the usage totals are
//! printed on stderr at exit.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use atp_model_fake::{ModelFake, Script};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "atp-model-fake",
    about = "A scripted fake of LLM provider APIs on loopback"
)]
struct Args {
    /// Loopback address to listen on (port 0 = a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Script: {"turns": [...]} or a bare array of turns.
    #[arg(long)]
    script: PathBuf,
    /// Append every recorded request as a JSON line to this file.
    #[arg(long)]
    record: Option<PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let text = std::fs::read_to_string(&args.script).map_err(|e| {
        format!(
            "cannot read the script {}: {e}; pass --script FILE.json",
            args.script.display()
        )
    })?;
    let script = Script::from_json(&text).map_err(|e| format!("{}: {e}", args.script.display()))?;
    let mut record = match &args.record {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("cannot open the record file {}: {e}", p.display()))?,
        ),
        None => None,
    };
    let fake = ModelFake::start_on(args.addr, script)
        .await
        .map_err(|e| format!("cannot start on {}: {e}", args.addr))?;
    println!("{}", fake.url());
    let _ = std::io::stdout().flush();

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    let mut seen = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = tick.tick() => {}
        }
        follow(&fake, &mut seen, record.as_mut());
    }
    follow(&fake, &mut seen, record.as_mut());
    let usage = fake.usage_reported();
    eprintln!(
        "atp-model-fake: {} requests; usage reported: input {} output {} cache_read {} cache_creation {} ({} responses)",
        seen,
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_tokens,
        usage.cache_creation_tokens,
        usage.responses
    );
    fake.shutdown().await;
    Ok(())
}

fn follow(fake: &ModelFake, seen: &mut usize, mut record: Option<&mut std::fs::File>) {
    for r in fake.requests_from(*seen) {
        *seen += 1;
        eprintln!(
            "atp-model-fake: #{} {} {} model={} stream={} turn={} tools={} -> {:?}",
            r.seq,
            r.method,
            r.path,
            r.model.as_deref().unwrap_or("-"),
            r.stream,
            r.turn_index.map_or("-".to_string(), |t| t.to_string()),
            r.tools.len(),
            r.answered
        );
        if let Some(f) = record.as_deref_mut() {
            if let Ok(line) = serde_json::to_string(&r) {
                let _ = writeln!(f, "{line}");
            }
        }
    }
}
