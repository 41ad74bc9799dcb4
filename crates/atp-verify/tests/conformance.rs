//! Conformance on the exploit corpus through Docker and the stand-in `lake` (the same run as
//! `cargo xtask conformance`, as a test). Needs ATP_EXPLOIT_CORPUS (skipped with a message when
//! unset) and the engine + atp-test:latest (skipped loudly; a failure with ATP_REQUIRE_DOCKER=1).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use atp_backend::{ComputeBackend, GcFilter, NetworkMode, RunId};
use atp_docker::{DockerBackend, DockerConfig};
use atp_verify::corpus;

use atp_lean::LeanProject;
use atp_verify::{Verifier, VerifyOptions};

fn materialize(dir: &Path, files: &BTreeMap<String, String>) -> LeanProject {
    std::fs::create_dir_all(dir).expect("mkdir");
    for (name, text) in atp_image::Skeleton::builtin().files() {
        std::fs::write(dir.join(name), text).expect("skeleton");
    }
    for (rel, text) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    LeanProject::open(dir).expect("project")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exploit_corpus_through_the_stand_in() {
    let Ok(dir) = std::env::var("ATP_EXPLOIT_CORPUS") else {
        {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "\n!!! SKIPPED exploit_corpus_through_the_stand_in: set ATP_EXPLOIT_CORPUS to the exploit corpus directory\n");
        }
        return;
    };
    let mut path = PathBuf::from(&dir);
    if path.is_relative() && !path.exists() {
        path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(&dir);
    }
    let b = DockerBackend::new(DockerConfig {
        network: NetworkMode::None,
        ..DockerConfig::for_image("atp-test:latest")
    });
    if let Err(e) = b.image_info().await {
        if std::env::var("ATP_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
            panic!("ATP_REQUIRE_DOCKER=1 but: {e}");
        }
        {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "\n!!! SKIPPED exploit_corpus_through_the_stand_in: needs a Docker engine and atp-test:latest: {e}\n");
        }
        return;
    }
    let backend: Arc<dyn ComputeBackend> = Arc::new(b);
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
            let cand = materialize(&dir.join("candidate"), &case.candidate);
            let orig = materialize(&dir.join("original"), &case.original);
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
    for t in tasks {
        let (case, v) = t.await.expect("task");
        if case.is_valid() {
            assert!(
                v.report.verified,
                "{}: honest solution refused: {}",
                case.id(),
                v.report.reason()
            );
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
    // Only a kernel-level rejection (needs real Lean) and the honest Transitive proof pass.
    assert_eq!(
        not_refused,
        vec!["KernelRejection/NonPositive", "Transitive/Level2_UsesBoth"]
    );
    let left = backend
        .gc(GcFilter {
            run_id: Some(run),
            older_than: None,
            dry_run: true,
        })
        .await
        .expect("gc");
    assert!(left.is_empty(), "containers left behind: {left:?}");
}
