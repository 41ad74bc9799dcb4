//! `cargo xtask fake-modal`: run the fake Modal (control plane + command router on loopback,
//! sandboxes as local Docker containers) until Ctrl-C.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use atp_modal_fake::{FakeModal, FakeOptions};

/// Arguments of `cargo xtask fake-modal`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Control-plane listen address (the router gets a random port on the same IP).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,
    /// Local Docker image every sandbox runs.
    #[arg(long, default_value = "atp-test:latest")]
    pub image: String,
    /// Exec output chunk size in bytes (odd sizes exercise line reassembly).
    #[arg(long, default_value_t = 4093)]
    pub chunk: usize,
    /// Auth token lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub token_ttl: u64,
}

pub fn run(args: Args) -> Result<()> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let opts = FakeOptions {
            addr: args.addr,
            docker_image: args.image,
            chunk_size: args.chunk,
            token_ttl: Duration::from_secs(args.token_ttl),
            ..FakeOptions::default()
        };
        let fake = FakeModal::start(opts).await?;
        println!("fake Modal listening; use:");
        println!("  MODAL_SERVER_URL={}", fake.url());
        println!("  MODAL_TOKEN_ID=ak-fake MODAL_TOKEN_SECRET=as-fake MODAL_SANDBOX_V2=0");
        println!(
            "named image seeded: open-atp:latest; containers labelled atp.run-id={}",
            fake.run_id()
        );
        println!("Ctrl-C stops it and removes its containers.");
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        // What was left before the shutdown sweep: attributes any leftover to a sandbox the
        // client never ended (running) or to the fake itself (stray containers).
        eprintln!("{}", fake.audit().await.summary());
        fake.shutdown().await;
        Ok(())
    })
}
