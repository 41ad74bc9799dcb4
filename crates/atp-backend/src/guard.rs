use std::fmt;

use futures::future::BoxFuture;

type Teardown = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

/// Tears a sandbox down when its session is dropped without being closed.
///
/// Invariant: dropping an armed guard blocks the dropping thread until the teardown future has
/// completed. The future is built and run on a dedicated thread with its own runtime, so the
/// teardown must not borrow the session's clients: build a fresh connection inside the closure.
/// This holds on panic unwinding, on error paths and when a future owning the session is
/// cancelled.
pub struct TeardownGuard {
    what: String,
    teardown: Option<Teardown>,
}

impl fmt::Debug for TeardownGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TeardownGuard")
            .field("what", &self.what)
            .field("armed", &self.teardown.is_some())
            .finish()
    }
}

impl TeardownGuard {
    /// Arm a guard for the sandbox described by `what` (used in logs).
    pub fn new<F>(what: impl Into<String>, teardown: F) -> Self
    where
        F: FnOnce() -> BoxFuture<'static, ()> + Send + 'static,
    {
        TeardownGuard {
            what: what.into(),
            teardown: Some(Box::new(teardown)),
        }
    }

    /// The sandbox was torn down by a clean close: nothing to do on drop.
    pub fn disarm(&mut self) {
        self.teardown = None;
    }

    /// Whether the guard still owns a teardown.
    pub fn is_armed(&self) -> bool {
        self.teardown.is_some()
    }
}

impl Drop for TeardownGuard {
    fn drop(&mut self) {
        let Some(teardown) = self.teardown.take() else {
            return;
        };
        tracing::warn!(sandbox = %self.what, "session dropped without close(); tearing down");
        let what = self.what.clone();
        let worker = std::thread::Builder::new()
            .name("atp-teardown".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(teardown()),
                    Err(e) => tracing::error!(sandbox = %what, "teardown runtime: {e}"),
                }
            });
        match worker {
            Ok(handle) => {
                if handle.join().is_err() {
                    tracing::error!(sandbox = %self.what, "teardown worker panicked");
                }
            }
            Err(e) => tracing::error!(sandbox = %self.what, "teardown thread: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn drop_blocks_until_teardown_done_even_inside_a_runtime() {
        let done = Arc::new(AtomicBool::new(false));
        let d = Arc::clone(&done);
        let guard = TeardownGuard::new("x", move || {
            Box::pin(async move {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                d.store(true, Ordering::SeqCst);
            })
        });
        drop(guard);
        assert!(done.load(Ordering::SeqCst));
    }

    #[test]
    fn disarmed_guard_does_nothing() {
        let mut guard = TeardownGuard::new("x", || Box::pin(async { panic!("must not run") }));
        guard.disarm();
        drop(guard);
    }

    #[test]
    fn teardown_runs_during_panic_unwinding() {
        let done = Arc::new(AtomicBool::new(false));
        let d = Arc::clone(&done);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _guard = TeardownGuard::new("x", move || {
                Box::pin(async move { d.store(true, Ordering::SeqCst) })
            });
            panic!("boom");
        }));
        assert!(r.is_err());
        assert!(done.load(Ordering::SeqCst));
    }
}
