//! Sandbox creation that a caller cannot abandon half-way.

use std::future::Future;

use futures::future::BoxFuture;

use crate::{BackendError, Result};

/// Run the creation of a sandbox so that dropping the caller's future cannot leak the sandbox.
///
/// A creation request that is in flight when its caller stops waiting (a cancelled future, a
/// wall-clock ceiling, a `select!` that picked another branch) may still complete on the engine
/// or the remote service; the caller would then never learn the id and nothing would remove it.
/// Here `create` runs as its own task: when it succeeds after the caller is gone, `reap` receives
/// what it made and tears it down.
///
/// Invariant: `create` runs to completion once started (unless the runtime itself shuts down),
/// and exactly one of "the caller receives the value" or "`reap` receives the value" happens.
/// The caller must arm its own teardown before its next `.await`.
pub async fn create_owned<T, C, R>(backend: &str, create: C, reap: R) -> Result<T>
where
    T: Send + 'static,
    C: Future<Output = Result<T>> + Send + 'static,
    R: FnOnce(T) -> BoxFuture<'static, ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let label = backend.to_string();
    tokio::spawn(async move {
        let out = create.await;
        if let Err(Ok(made)) = tx.send(out) {
            tracing::warn!(backend = %label, "a sandbox was created after its caller gave up; removing it");
            reap(made).await;
        }
    });
    rx.await.map_err(|_| BackendError::Provision {
        backend: backend.to_string(),
        detail: "the sandbox creation task ended without an answer (it panicked)".into(),
    })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    fn counter_reap(n: &Arc<AtomicU32>) -> impl FnOnce(u32) -> BoxFuture<'static, ()> {
        let n = Arc::clone(n);
        move |v| {
            Box::pin(async move {
                n.fetch_add(v, Ordering::SeqCst);
            })
        }
    }

    #[tokio::test]
    async fn a_waiting_caller_gets_the_value_and_nothing_is_reaped() {
        let reaped = Arc::new(AtomicU32::new(0));
        let v = create_owned("t", async { Ok(7u32) }, counter_reap(&reaped)).await;
        assert_eq!(v.ok(), Some(7));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(reaped.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_creation_finishing_after_its_caller_gave_up_is_reaped() {
        let reaped = Arc::new(AtomicU32::new(0));
        let slow = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(5u32)
        };
        let gave_up = tokio::time::timeout(
            Duration::from_millis(10),
            create_owned("t", slow, counter_reap(&reaped)),
        )
        .await;
        assert!(gave_up.is_err(), "the caller stopped waiting");
        assert_eq!(reaped.load(Ordering::SeqCst), 0, "not yet created");
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(reaped.load(Ordering::SeqCst), 5, "reaped once created");
    }

    #[tokio::test]
    async fn a_failed_creation_is_returned_and_nothing_is_reaped() {
        let reaped = Arc::new(AtomicU32::new(0));
        let r = create_owned(
            "t",
            async {
                Err::<u32, _>(BackendError::Provision {
                    backend: "t".into(),
                    detail: "no".into(),
                })
            },
            counter_reap(&reaped),
        )
        .await;
        assert!(r.is_err());
        assert_eq!(reaped.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_panicking_creation_is_an_error_not_a_hang() {
        let reaped = Arc::new(AtomicU32::new(0));
        let r = create_owned(
            "t",
            async { panic!("creation blew up") },
            counter_reap(&reaped),
        )
        .await;
        let e = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("panicked"), "{e}");
    }
}
