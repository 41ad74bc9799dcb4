//! `cargo xtask bench-modal`: the Modal backend's transfer path against the in-process fake
//! Modal (sandboxes = local containers): push + exec + pull of a 10 MB workdir, bytes/s and
//! round trips per phase, and open-atp's approach (tar to a temp file, copy it in one piece,
//! untar) for comparison.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use atp_backend::{ComputeBackend, ExecOptions, SessionOptions};
use atp_modal::{ModalBackend, ModalConfig, ModalCredentials};
use atp_modal_fake::{FakeModal, FakeOptions};

/// Arguments of `cargo xtask bench-modal`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Workdir size in MB.
    #[arg(long, default_value_t = 10)]
    pub mb: usize,
}

/// Deterministic incompressible-ish bytes (xorshift), so gzip cannot shrink the payload away.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn router_calls(fake: &FakeModal) -> usize {
    [
        "TaskExecStart",
        "TaskExecStdinWrite",
        "TaskExecStdioRead",
        "TaskExecWait",
    ]
    .iter()
    .map(|m| fake.calls(m))
    .sum()
}

fn rate(bytes: usize, d: Duration) -> String {
    format!("{:.1} MB/s", bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9))
}

pub fn run(args: Args) -> Result<()> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(bench(args))
}

async fn bench(args: Args) -> Result<()> {
    // 64 KiB output messages (the fake's default of 4093 bytes exists to test reassembly).
    let fake = FakeModal::start(FakeOptions {
        chunk_size: 64 * 1024,
        ..FakeOptions::default()
    })
    .await?;
    let result = measure(&fake, args.mb).await;
    fake.shutdown().await;
    result
}

async fn measure(fake: &FakeModal, mb: usize) -> Result<()> {
    let wd = tempfile::tempdir()?;
    let total = mb * 1_000_000;
    let files = 100;
    for i in 0..files {
        let dir = wd.path().join(format!("d{}", i % 10));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join(format!("f{i}.bin")),
            noise(total / files, i as u64 + 7),
        )?;
    }
    let creds = ModalCredentials::new(fake.url(), "ak-bench", "as-bench");
    let cfg = ModalConfig {
        warm_command: None,
        ..ModalConfig::default()
    };
    let backend = ModalBackend::new(cfg, creds)?;
    let t = Instant::now();
    let s = backend
        .session(wd.path(), SessionOptions::default())
        .await?;
    let open = t.elapsed();
    println!("workdir: {files} files, {total} bytes; session open (create + push): {open:?}");

    let rc = router_calls(fake);
    let t = Instant::now();
    s.sync_in().await?;
    let push = t.elapsed();
    println!(
        "push  (streamed tar.gz via exec stdin): {push:?}, {}, {} router round trips",
        rate(total, push),
        router_calls(fake) - rc
    );

    let rc = router_calls(fake);
    let t = Instant::now();
    let r = s
        .exec_wait(
            "find . -type f | wc -l; for f in d0/*.bin; do cat $f > $f.copy; done",
            ExecOptions::default(),
        )
        .await?;
    let exec = t.elapsed();
    println!(
        "exec  (count + duplicate d0/*): {exec:?}, exit {}, stdout {:?}, {} router round trips",
        r.exit_code,
        r.stdout.trim(),
        router_calls(fake) - rc
    );

    let rc = router_calls(fake);
    let t = Instant::now();
    s.sync_out().await?;
    let pull = t.elapsed();
    let pulled: u64 = walk_size(wd.path());
    println!(
        "pull  (streamed tar.gz via exec stdout, safe unpack): {pull:?}, {} of {pulled} bytes, {} router round trips",
        rate(pulled as usize, pull),
        router_calls(fake) - rc
    );

    // open-atp's approach: tar.gz to a temp file, copy it whole, untar in a second exec.
    let rc = router_calls(fake);
    let t = Instant::now();
    let tmp = tempfile::NamedTempFile::new()?;
    let file = std::fs::File::create(tmp.path())?;
    atp_archive::pack(wd.path(), None, true, file)?;
    let bytes = bytes::Bytes::from(std::fs::read(tmp.path())?);
    let copy = s
        .exec_wait(
            "cat > /tmp/atp-bench.tgz",
            ExecOptions {
                stdin: Some(bytes),
                ..Default::default()
            },
        )
        .await?;
    let untar = s
        .exec_wait(
            "tar -xzf /tmp/atp-bench.tgz -C /workspace/wd && rm /tmp/atp-bench.tgz",
            ExecOptions::default(),
        )
        .await?;
    let old = t.elapsed();
    anyhow::ensure!(
        copy.exit_code == 0 && untar.exit_code == 0,
        "temp-file push failed"
    );
    println!(
        "push  (open-atp: temp file + copy + untar): {old:?}, {}, {} router round trips",
        rate(pulled as usize, old),
        router_calls(fake) - rc
    );
    s.close().await?;
    Ok(())
}

fn walk_size(p: &std::path::Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => n += walk_size(&e.path()),
                Ok(t) if t.is_file() => n += e.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    n
}
