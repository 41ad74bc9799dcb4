//! Engine tests: the verifier through Docker with the stand-in `lake` of `atp-test:latest`.
//!
//! Skipped loudly without an engine or the test image; failures when `ATP_REQUIRE_DOCKER=1`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use atp_backend::{
    ComputeBackend, ComputeSession, GcEntry, GcFilter, Health, ImageInfo, NetworkMode, RunId,
    SessionOptions,
};
use atp_docker::{DockerBackend, DockerConfig};
use atp_lean::LeanProject;
use atp_verify::{Verification, Verifier, VerifyError, VerifyOptions, ViolationKind};

const TEST_IMAGE: &str = "atp-test:latest";

fn required() -> bool {
    std::env::var("ATP_REQUIRE_DOCKER").is_ok_and(|v| v == "1")
}

/// Counts sessions opened through it (to prove the gate runs before any sandbox exists).
#[derive(Debug)]
struct Counting {
    inner: DockerBackend,
    sessions: AtomicUsize,
}

#[async_trait]
impl ComputeBackend for Counting {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn container_home(&self) -> &str {
        self.inner.container_home()
    }
    fn image(&self) -> &str {
        self.inner.image()
    }
    async fn health(&self) -> atp_backend::Result<Health> {
        self.inner.health().await
    }
    async fn image_info(&self) -> atp_backend::Result<ImageInfo> {
        self.inner.image_info().await
    }
    async fn session(
        &self,
        workdir: &Path,
        opts: SessionOptions,
    ) -> atp_backend::Result<Box<dyn ComputeSession>> {
        self.sessions.fetch_add(1, Ordering::SeqCst);
        self.inner.session(workdir, opts).await
    }
    async fn gc(&self, filter: GcFilter) -> atp_backend::Result<Vec<GcEntry>> {
        self.inner.gc(filter).await
    }
}

async fn backend(test: &str) -> Option<Arc<Counting>> {
    let b = DockerBackend::new(DockerConfig {
        network: NetworkMode::None,
        ..DockerConfig::for_image(TEST_IMAGE)
    });
    let problem = match b.health().await {
        Err(e) => Some(e.to_string()),
        Ok(_) => b.image_info().await.err().map(|e| e.to_string()),
    };
    match problem {
        None => Some(Arc::new(Counting {
            inner: b,
            sessions: AtomicUsize::new(0),
        })),
        Some(p) if required() => panic!("{test}: ATP_REQUIRE_DOCKER=1 but: {p}"),
        Some(p) => {
            {
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr(), "\n!!! SKIPPED {test}: needs a Docker engine and {TEST_IMAGE} (cargo xtask test-image): {p}\n!!! (set ATP_REQUIRE_DOCKER=1 to make this a failure)\n");
            }
            None
        }
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

/// A private copy of a fixture (the sandbox links `.lake` into its workdir).
fn copy_fixture(name: &str, into: &Path) -> LeanProject {
    let dest = into.join(name);
    std::fs::create_dir_all(&dest).expect("mkdir");
    for e in std::fs::read_dir(fixture(name)).expect("fixture") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), dest.join(e.file_name())).expect("copy");
    }
    LeanProject::open(dest).expect("fixture opens")
}

async fn leftovers(b: &Counting, run: &RunId) -> usize {
    b.gc(GcFilter {
        run_id: Some(run.clone()),
        older_than: None,
        dry_run: true,
    })
    .await
    .expect("gc list")
    .len()
}

async fn verify_fixture(
    b: &Arc<Counting>,
    name: &str,
    timeout: Duration,
) -> (Result<Verification, VerifyError>, RunId) {
    let tmp = tempfile::tempdir().expect("tmp");
    let cand = copy_fixture(name, tmp.path());
    let orig = LeanProject::open(fixture("original")).expect("original");
    let run = RunId::new();
    let v = Verifier::new(b.clone() as Arc<dyn ComputeBackend>).with_options(VerifyOptions {
        timeout,
        run_id: Some(run.clone()),
        workers: Some(2),
        ..Default::default()
    });
    let out = v.verify(&cand, Some(&orig)).await;
    assert_eq!(
        leftovers(b, &run).await,
        0,
        "{name}: a container of run {run} was left behind"
    );
    (out, run)
}

fn kinds(v: &Verification) -> Vec<(ViolationKind, bool)> {
    v.report
        .violations
        .iter()
        .map(|x| (x.kind, x.from_lean))
        .collect()
}

#[tokio::test]
async fn fixtures_get_the_right_verdict_and_reason() {
    let Some(b) = backend("fixtures_get_the_right_verdict_and_reason").await else {
        return;
    };
    let t = Duration::from_secs(120);

    let (v, _) = verify_fixture(&b, "clean", t).await;
    let v = v.expect("clean verifies");
    assert!(v.report.verified, "clean: {:?}", v.report.violations);
    let f = &v.report.per_file["Fixture.lean"];
    assert!(f.compiled && !f.sorry);
    assert_eq!(
        f.axioms["example #1"],
        vec!["propext", "Classical.choice", "Quot.sound"],
        "example axioms come from the probe"
    );
    assert_eq!(
        f.axioms["Fixture.two_mul'"],
        vec!["propext", "Classical.choice", "Quot.sound"]
    );

    let (v, _) = verify_fixture(&b, "sorry_theorem", t).await;
    let v = v.expect("runs");
    assert!(!v.report.verified && !v.report.sorry_free);
    assert!(kinds(&v).contains(&(ViolationKind::Sorry, false)));
    let lean_sorry = v
        .report
        .violations
        .iter()
        .find(|x| x.kind == ViolationKind::Sorry && x.from_lean)
        .expect("Lean's sorry warning");
    assert_eq!(lean_sorry.line, Some(14));
    assert!(v
        .report
        .violations
        .iter()
        .any(|x| x.kind == ViolationKind::NonStandardAxiom
            && x.decl.as_deref() == Some("Fixture.two_mul'")
            && x.message.contains("sorryAx")));

    let (v, _) = verify_fixture(&b, "sorry_example", t).await;
    let v = v.expect("runs");
    assert!(!v.report.verified);
    assert!(
        v.report
            .violations
            .iter()
            .any(|x| x.kind == ViolationKind::NonStandardAxiom
                && x.decl.as_deref() == Some("example #1")
                && x.message.contains("sorryAx")),
        "{:?}",
        v.report.violations
    );
    assert!(v
        .report
        .violations
        .iter()
        .any(|x| x.kind == ViolationKind::Sorry && x.from_lean && x.line == Some(17)));

    let (v, _) = verify_fixture(&b, "user_axiom", t).await;
    let v = v.expect("runs");
    assert!(!v.report.verified);
    assert!(v.report.violations.iter().any(
        |x| x.kind == ViolationKind::Axiom && x.decl.as_deref() == Some("Fixture.two_mul_aux")
    ));
    assert_eq!(v.report.non_standard_axioms, vec!["Fixture.two_mul_aux"]);
    assert!(v
        .report
        .violations
        .iter()
        .any(|x| x.kind == ViolationKind::NonStandardAxiom
            && x.decl.as_deref() == Some("Fixture.two_mul'")));

    let (v, _) = verify_fixture(&b, "native_decide", t).await;
    let v = v.expect("runs");
    assert!(!v.report.verified);
    assert!(kinds(&v).contains(&(ViolationKind::NativeDecide, false)));
    assert!(v
        .report
        .non_standard_axioms
        .contains(&"Lean.ofReduceBool".to_string()));

    let (v, _) = verify_fixture(&b, "changed_statement", t).await;
    let v = v.expect("runs");
    assert!(!v.report.verified && !v.report.statements_intact);
    let c = &v.report.violations[0];
    assert_eq!(
        (c.kind, c.decl.as_deref()),
        (ViolationKind::StatementChanged, Some("Fixture.two_mul'"))
    );

    let (v, _) = verify_fixture(&b, "deleted_theorem", t).await;
    let v = v.expect("runs");
    assert!(!v.report.verified && v.report.compiles);
    let c = &v.report.violations[0];
    assert_eq!(
        (c.kind, c.decl.as_deref()),
        (ViolationKind::StatementMissing, Some("Fixture.two_mul'"))
    );

    let (v, _) = verify_fixture(&b, "exit", t).await;
    let v = v.expect("runs");
    assert!(!v.report.verified);
    assert!(kinds(&v).contains(&(ViolationKind::Exit, false)));
    assert!(
        kinds(&v).contains(&(ViolationKind::ProbeMissing, true)),
        "the probe never ran after #exit"
    );

    let (v, _) = verify_fixture(&b, "broken_proof", t).await;
    let v = v.expect("runs");
    assert!(!v.report.verified && !v.report.compiles);
    assert_eq!(kinds(&v), vec![(ViolationKind::CompileError, true)]);
    assert_eq!(v.report.per_file["Fixture.lean"].exit_code, Some(1));
}

#[tokio::test]
async fn gate_rejects_before_any_sandbox_and_bad_projects_error() {
    let Some(b) = backend("gate_rejects_before_any_sandbox_and_bad_projects_error").await else {
        return;
    };
    for (name, kind) in [
        ("mismatched_toolchain", "toolchain_mismatch"),
        ("mismatched_mathlib", "mathlib_rev_mismatch"),
    ] {
        let (r, _) = verify_fixture(&b, name, Duration::from_secs(60)).await;
        let e = r.expect_err("incompatible");
        assert_eq!(e.kind(), kind, "{e}");
    }
    assert_eq!(
        b.sessions.load(Ordering::SeqCst),
        0,
        "no sandbox may be created for an incompatible project"
    );
    let (r, _) = verify_fixture(&b, "empty", Duration::from_secs(60)).await;
    assert_eq!(r.expect_err("empty").kind(), "invalid_input");
    assert_eq!(b.sessions.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn hanging_compile_times_out_and_leaves_nothing() {
    let Some(b) = backend("hanging_compile_times_out_and_leaves_nothing").await else {
        return;
    };
    let started = Instant::now();
    let (r, _) = verify_fixture(&b, "hang", Duration::from_secs(4)).await;
    let v = r.expect("a timeout is a verdict");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert!(v.report.timed_out && !v.report.verified);
    assert!(v
        .report
        .violations
        .iter()
        .any(|x| x.kind == ViolationKind::Timeout));
}

#[tokio::test]
async fn verify_in_a_live_session() {
    let Some(b) = backend("verify_in_a_live_session").await else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let cand = copy_fixture("clean", tmp.path());
    let run = RunId::new();
    let s = b
        .session(
            cand.root(),
            SessionOptions {
                run_id: Some(run.clone()),
                network: NetworkMode::None,
                ..Default::default()
            },
        )
        .await
        .expect("session");
    let before = snapshot(cand.root());
    let v = Verifier::new(b.clone() as Arc<dyn ComputeBackend>);
    let out = v.verify_in_session(s.as_ref(), &cand, None).await;
    assert_eq!(
        snapshot(cand.root()),
        before,
        "the candidate's files are untouched (the probe runs on copies)"
    );
    // the caller's session stays usable
    let echo = s
        .exec_wait("echo alive", Default::default())
        .await
        .expect("still alive");
    s.close().await.expect("close");
    assert_eq!(echo.stdout.trim(), "alive");
    assert!(out.expect("verifies").report.verified);
    assert_eq!(leftovers(&b, &run).await, 0);
}

#[tokio::test]
async fn old_toolchain_sorry_quotes_are_recognised() {
    let Some(b) = backend("old_toolchain_sorry_quotes_are_recognised").await else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let cand = copy_fixture("sorry_theorem", tmp.path());
    let run = RunId::new();
    let v = Verifier::new(b.clone() as Arc<dyn ComputeBackend>)
        .with_options(VerifyOptions {
            run_id: Some(run.clone()),
            env: BTreeMap::from([("ATP_STANDIN_SORRY_STYLE".to_string(), "quote".to_string())]),
            ..Default::default()
        })
        .verify(&cand, None)
        .await
        .expect("verdict");
    assert!(
        v.compile_log.contains("declaration uses 'sorry'"),
        "{}",
        v.compile_log
    );
    assert!(v
        .report
        .violations
        .iter()
        .any(|x| x.kind == ViolationKind::Sorry && x.from_lean && x.line == Some(14)));
    assert_eq!(leftovers(&b, &run).await, 0);
}

/// Every regular file of a directory (not following `.lake`) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).expect("dir") {
        let e = e.expect("entry");
        if e.file_name() == ".lake" {
            continue;
        }
        if e.file_type().expect("type").is_file() {
            out.insert(
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            );
        }
    }
    out
}
