//! SIGINT, SIGTERM and SIGHUP become cancellation.
//!
//! The first signal cancels the [`CancellationToken`] every long-running command watches: the
//! command stops its work, tears down its sandboxes, writes what it has (result.json with status
//! `cancelled`) and exits with 128 + the signal's number. A second signal makes `main` drop the
//! command's future at once — each sandbox's teardown guard still removes it before the process
//! exits.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The signal handling of one process.
#[derive(Debug, Clone)]
pub struct Signals {
    cancel: CancellationToken,
    first: Arc<AtomicI32>,
    again: Arc<Notify>,
}

impl Signals {
    /// Install the handlers (inside the runtime).
    pub fn install() -> std::io::Result<Signals> {
        let s = Signals {
            cancel: CancellationToken::new(),
            first: Arc::new(AtomicI32::new(0)),
            again: Arc::new(Notify::new()),
        };
        for (kind, number) in [
            (SignalKind::interrupt(), 2),
            (SignalKind::terminate(), 15),
            (SignalKind::hangup(), 1),
        ] {
            let mut stream = signal(kind)?;
            let s2 = s.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    s2.received(number);
                }
            });
        }
        Ok(s)
    }

    fn received(&self, number: i32) {
        if self
            .first
            .compare_exchange(0, number, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            eprintln!(
                "\natp: {} received — stopping, removing sandboxes and writing results (send it again to exit at once)",
                name(number)
            );
            self.cancel.cancel();
        } else {
            eprintln!("\natp: second signal — exiting now (sandboxes are still removed)");
            self.again.notify_one();
        }
    }

    /// The token commands watch.
    pub fn token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Resolves on the second signal.
    pub async fn second(&self) {
        self.again.notified().await
    }

    /// 128 + the first signal's number, when one arrived.
    pub fn exit_code(&self) -> Option<u8> {
        match self.first.load(Ordering::SeqCst) {
            0 => None,
            n => Some((128 + n) as u8),
        }
    }
}

fn name(n: i32) -> &'static str {
    match n {
        2 => "SIGINT",
        15 => "SIGTERM",
        1 => "SIGHUP",
        _ => "signal",
    }
}
