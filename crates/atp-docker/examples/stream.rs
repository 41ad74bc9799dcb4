//! Open a Docker session over a directory, stream one command's output, close.
//!
//! ```sh
//! cargo run -p atp-docker --example stream -- [--image IMAGE] [WORKDIR] [COMMAND]
//! # e.g.
//! cargo run -p atp-docker --example stream -- --image atp-test:latest . 'for i in 1 2 3; do echo $i; sleep 1; done'
//! ```
//!
//! Depends only on `atp-backend` and `atp-docker`.

use std::path::PathBuf;
use std::time::Duration;

use atp_backend::{ComputeBackend, ExecOptions, NetworkMode, SessionOptions};
use atp_docker::{DockerBackend, DockerConfig};

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), atp_backend::BackendError> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut image = "atp-test:latest".to_string();
    if args.first().map(String::as_str) == Some("--image") && args.len() >= 2 {
        image = args.remove(1);
        args.remove(0);
    }
    let workdir = PathBuf::from(args.first().cloned().unwrap_or_else(|| ".".into()));
    let command = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "for i in 1 2 3; do echo line $i; sleep 1; done; echo done >&2".into());

    let backend = DockerBackend::new(DockerConfig {
        network: NetworkMode::None,
        ..DockerConfig::for_image(image)
    });
    let session = backend.session(&workdir, SessionOptions::default()).await?;
    eprintln!("session {} (run {})", &session.id()[..12], session.run_id());

    let mut handle = session
        .exec(&command, ExecOptions::with_timeout(Duration::from_secs(60)))
        .await?;
    while let Some(line) = handle.next_line().await {
        println!("| {line}");
    }
    let result = handle.wait().await;
    session.close().await?;
    let result = result?;
    eprint!("{}", result.stderr);
    eprintln!(
        "exit {} after {:.2}s",
        result.exit_code,
        result.duration.as_secs_f64()
    );
    Ok(())
}
