//! Conformance on the exploit corpus through Docker, the stand-in `lake` and the stand-in
//! checker (the same run as `cargo xtask conformance`, as a test). Needs ATP_EXPLOIT_CORPUS
//! (skipped with a message when unset) and the engine + test image.

use std::sync::Arc;
use std::time::Duration;

use atp_backend::{ComputeBackend, RunId};
use atp_verify::corpus;
use atp_verify::{Verifier, VerifyOptions};

use crate::common::{backend, project};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exploit_corpus_through_the_stand_in() {
    let Some(path) = crate::common::corpus_dir() else {
        atp_test_support::skip(
            "exploit_corpus_through_the_stand_in",
            "set ATP_EXPLOIT_CORPUS to the exploit corpus directory",
        );
        return;
    };
    let Some(b) = backend("exploit_corpus_through_the_stand_in").await else {
        return;
    };
    let backend: Arc<dyn ComputeBackend> = b;
    let cases = corpus::load(&path).expect("corpus loads");
    assert!(cases.len() >= 50, "found only {} cases", cases.len());
    let tmp = tempfile::tempdir().expect("tmp");
    let run = RunId::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(4));
    let mut tasks = Vec::new();
    for (i, case) in cases.into_iter().enumerate() {
        let (backend, sem, run) = (backend.clone(), sem.clone(), run.clone());
        let dir = tmp.path().join(format!("c{i}"));
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore");
            let cand = project(&dir.join("candidate"), &case.candidate);
            let orig = project(&dir.join("original"), &case.original);
            let v = Verifier::new(backend)
                .with_options(VerifyOptions {
                    timeout: Duration::from_secs(120),
                    run_id: Some(run),
                    ..Default::default()
                })
                .verify(&cand, Some(&orig))
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", case.id()));
            (case, v)
        }));
    }
    let mut not_refused = Vec::new();
    let mut honest = 0;
    for t in tasks {
        let (case, v) = t.await.expect("task");
        if case.is_valid() {
            assert!(
                v.report.verified,
                "{}: honest solution refused: {}",
                case.id(),
                v.report.reason()
            );
            honest += 1;
        } else if v.report.verified {
            not_refused.push(case.id());
        } else {
            assert!(
                !v.report.violations.is_empty(),
                "{}: refused without a named reason",
                case.id()
            );
        }
    }
    assert_eq!(honest, 6, "every Valid/ solution verifies");
    // Only the honest Transitive proof passes (the stand-in emulates the kernel's positivity
    // check, so KernelRejection/NonPositive is refused too).
    assert_eq!(not_refused, vec!["Transitive/Level2_UsesBoth"]);
    atp_test_support::assert_no_leak(&run).await;
}
