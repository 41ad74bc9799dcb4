//! Batch verification: every candidate of a task compiled in ONE network-less build sandbox, at
//! most `workers` at a time — not one build sandbox per sample.
//!
//! Invariants: the build sandbox is opened on first use (a run whose samples all fail to parse
//! creates none) under the run's id, without network, and is closed by [`VerifyPool::close`]
//! (dropping the pool tears it down too: the backend's guard). Candidates are checked and
//! compiled from their host copies (`Verifier::verify_in_session`), each in its own `/tmp`
//! directory inside the sandbox, so concurrent candidates do not see each other — except
//! through the image project's `.lake/build`, where a task whose files import each other
//! writes `.olean`s: such tasks are verified one candidate at a time ([`needs_serial`]).
//!
//! The verifier's trust model is kept whole: the kernel replay and statement comparison of
//! each candidate (the image's checker, over the original task) run in a FRESH check sandbox
//! the verifier opens per candidate (`verify_in_session`), never in the shared build sandbox —
//! a candidate whose compile tampered with the build sandbox cannot make another one pass. So
//! a batch of k costs 1 + k sandboxes instead of 2k.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use atp_backend::{BackendError, ComputeSession, NetworkMode, SessionOptions};
use atp_lean::LeanProject;
use atp_verify::{Verification, Verifier, VerifyError};
use tokio::sync::{OnceCell, Semaphore};

/// A shared verification sandbox with bounded workers.
pub struct VerifyPool<'a> {
    verifier: &'a Verifier,
    original: &'a LeanProject,
    permits: Semaphore,
    workers: usize,
    lifetime: Duration,
    session: OnceCell<Box<dyn ComputeSession>>,
    open_error: Mutex<Option<String>>,
    empty: tempfile::TempDir,
    verifications: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for VerifyPool<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyPool")
            .field("workers", &self.workers)
            .field("opened", &self.session.initialized())
            .finish_non_exhaustive()
    }
}

/// Whether candidates of the task must be verified one at a time (its files import each other).
pub fn needs_serial(sources: &BTreeMap<String, String>) -> bool {
    let modules: Vec<String> = sources
        .keys()
        .map(|k| atp_verify::check::module_name(k))
        .collect();
    sources.values().any(|src| {
        atp_lean::source::parse(src)
            .imports
            .iter()
            .any(|m| modules.contains(m))
    })
}

impl<'a> VerifyPool<'a> {
    /// A pool verifying against `original` with `verifier`'s backend and options; the sandbox
    /// lives at most `lifetime` (it must outlast the generation).
    pub fn new(
        verifier: &'a Verifier,
        original: &'a LeanProject,
        workers: usize,
        lifetime: Duration,
    ) -> std::io::Result<Self> {
        let workers = workers.max(1);
        Ok(VerifyPool {
            verifier,
            original,
            permits: Semaphore::new(workers),
            workers,
            lifetime,
            session: OnceCell::new(),
            open_error: Mutex::new(None),
            empty: tempfile::Builder::new()
                .prefix("atp-sample-verify-")
                .tempdir()?,
            verifications: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Whether the build sandbox was created.
    pub fn opened(&self) -> bool {
        self.session.initialized()
    }

    /// Candidates handed to the verifier so far (each one's check runs in a fresh sandbox of
    /// its own, unless the verifier refused the candidate before opening it).
    pub fn verifications(&self) -> usize {
        self.verifications.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn session(&self) -> Result<&dyn ComputeSession, VerifyError> {
        if let Some(e) = self.open_error.lock().ok().and_then(|g| g.clone()) {
            return Err(VerifyError::Backend(BackendError::Provision {
                backend: self.verifier.backend().name().to_string(),
                detail: e,
            }));
        }
        let opened = self
            .session
            .get_or_try_init(|| async {
                self.verifier
                    .backend()
                    .session(
                        self.empty.path(),
                        SessionOptions {
                            network: NetworkMode::None,
                            run_id: self.verifier.options().run_id.clone(),
                            timeout: Some(self.lifetime),
                            ..Default::default()
                        },
                    )
                    .await
            })
            .await;
        match opened {
            Ok(s) => {
                tracing::info!(
                    sandbox = s.id(),
                    workers = self.workers,
                    "batch verification sandbox ready"
                );
                Ok(s.as_ref())
            }
            Err(e) => {
                if let Ok(mut g) = self.open_error.lock() {
                    *g = Some(e.to_string());
                }
                Err(VerifyError::Backend(e))
            }
        }
    }

    /// Verify one candidate (waits for a free worker).
    pub async fn verify(&self, candidate: &LeanProject) -> Result<Verification, VerifyError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| VerifyError::InvalidInput("the verification pool is closed".into()))?;
        let session = self.session().await?;
        self.verifications
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.verifier
            .verify_in_session(session, candidate, Some(self.original))
            .await
    }

    /// Close the sandbox, if one was opened.
    pub async fn close(self) -> Result<(), BackendError> {
        match self.session.into_inner() {
            Some(s) => s.close().await,
            None => Ok(()),
        }
    }
}

/// Verify `candidates` in one sandbox with `workers` at a time; with `stop_on_first`, the
/// candidates not yet started when one verifies are skipped (`None`). Results are in the
/// candidates' order. The sandbox is closed before returning.
pub async fn verify_all(
    verifier: &Verifier,
    original: &LeanProject,
    candidates: &[LeanProject],
    workers: usize,
    stop_on_first: bool,
    lifetime: Duration,
) -> Result<Vec<Option<Result<Verification, VerifyError>>>, VerifyError> {
    use futures::StreamExt;
    let pool = VerifyPool::new(verifier, original, workers, lifetime).map_err(|e| {
        VerifyError::InvalidInput(format!("cannot create a temporary directory: {e}"))
    })?;
    let found = std::sync::atomic::AtomicBool::new(false);
    let results: Vec<(usize, Option<Result<Verification, VerifyError>>)> =
        futures::stream::iter(candidates.iter().enumerate())
            .map(|(i, c)| {
                let pool = &pool;
                let found = &found;
                async move {
                    if stop_on_first && found.load(std::sync::atomic::Ordering::SeqCst) {
                        return (i, None);
                    }
                    let r = pool.verify(c).await;
                    if r.as_ref().is_ok_and(|v| v.report.verified) {
                        found.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    (i, Some(r))
                }
            })
            .buffer_unordered(pool.workers())
            .collect()
            .await;
    let closed = pool.close().await;
    let mut out: Vec<Option<Result<Verification, VerifyError>>> =
        (0..candidates.len()).map(|_| None).collect();
    for (i, r) in results {
        out[i] = r;
    }
    closed?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_whose_files_import_each_other_are_verified_serially() {
        let one: BTreeMap<String, String> = [(
            "A.lean".into(),
            "import Mathlib\ntheorem a : True := trivial\n".into(),
        )]
        .into();
        assert!(!needs_serial(&one));
        let two: BTreeMap<String, String> = [
            ("A/B.lean".into(), "theorem b : True := trivial\n".into()),
            (
                "C.lean".into(),
                "import A.B\ntheorem c : True := b\n".into(),
            ),
        ]
        .into();
        assert!(needs_serial(&two));
    }
}
