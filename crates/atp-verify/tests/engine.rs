//! The verifier through Docker on the fixtures: verdicts and reasons, the gate, timeouts,
//! verification in a caller's session.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atp_backend::{ComputeBackend, NetworkMode, RunId, SessionOptions};
use atp_lean::LeanProject;
use atp_verify::{Verification, Verifier, VerifyError, VerifyOptions, ViolationKind};

use crate::common::{backend, copy_fixture, kinds, Counting};

async fn verify_fixture(
    b: &Arc<Counting>,
    name: &str,
    timeout: Duration,
) -> Result<Verification, VerifyError> {
    let tmp = tempfile::tempdir().expect("tmp");
    let cand = copy_fixture(name, tmp.path());
    let orig = LeanProject::open(atp_test_support::fixture("original")).expect("original");
    let run = RunId::new();
    let v = Verifier::new(b.clone() as Arc<dyn ComputeBackend>).with_options(VerifyOptions {
        timeout,
        run_id: Some(run.clone()),
        workers: Some(2),
        ..Default::default()
    });
    let out = v.verify(&cand, Some(&orig)).await;
    atp_test_support::assert_no_leak(&run).await;
    out
}

#[tokio::test]
async fn fixtures_get_the_right_verdict_and_reason() {
    let Some(b) = backend("fixtures_get_the_right_verdict_and_reason").await else {
        return;
    };
    let t = Duration::from_secs(120);

    let v = verify_fixture(&b, "clean", t)
        .await
        .expect("clean verifies");
    assert!(v.report.verified, "clean: {:?}", v.report.violations);
    let f = &v.report.per_file["Fixture.lean"];
    assert!(f.compiled && !f.sorry);
    assert_eq!(
        f.axioms["example #1"],
        vec!["Classical.choice", "Quot.sound", "propext"],
        "example axioms come from the checker"
    );
    assert_eq!(
        f.axioms["Fixture.two_mul'"],
        vec!["Classical.choice", "Quot.sound", "propext"]
    );
    assert!(v
        .compile_log
        .contains("== checker (Lean 4.28.0-standin) =="));

    let v = verify_fixture(&b, "sorry_theorem", t).await.expect("runs");
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

    let v = verify_fixture(&b, "sorry_example", t).await.expect("runs");
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

    let v = verify_fixture(&b, "user_axiom", t).await.expect("runs");
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

    let v = verify_fixture(&b, "native_decide", t).await.expect("runs");
    assert!(!v.report.verified);
    assert!(kinds(&v).contains(&(ViolationKind::NativeDecide, false)));
    assert!(v
        .report
        .non_standard_axioms
        .contains(&"Lean.ofReduceBool".to_string()));

    let v = verify_fixture(&b, "changed_statement", t)
        .await
        .expect("runs");
    assert!(!v.report.verified && !v.report.statements_intact);
    let c = &v.report.violations[0];
    assert_eq!(
        (c.kind, c.decl.as_deref()),
        (ViolationKind::StatementChanged, Some("Fixture.two_mul'"))
    );
    assert!(
        v.report
            .violations
            .iter()
            .any(|x| x.kind == ViolationKind::StatementChanged && x.from_lean),
        "the checker compares the statement too: {:?}",
        v.report.violations
    );

    let v = verify_fixture(&b, "deleted_theorem", t)
        .await
        .expect("runs");
    assert!(!v.report.verified && v.report.compiles);
    let c = &v.report.violations[0];
    assert_eq!(
        (c.kind, c.decl.as_deref()),
        (ViolationKind::StatementMissing, Some("Fixture.two_mul'"))
    );
    assert!(kinds(&v).contains(&(ViolationKind::StatementMissing, true)));

    let v = verify_fixture(&b, "exit", t).await.expect("runs");
    assert!(!v.report.verified);
    assert!(kinds(&v).contains(&(ViolationKind::Exit, false)));
    assert!(
        v.report
            .violations
            .iter()
            .any(|x| x.kind == ViolationKind::StatementMissing
                && x.from_lean
                && x.decl.as_deref() == Some("example #1")),
        "the example after #exit never reached the .olean: {:?}",
        v.report.violations
    );

    let v = verify_fixture(&b, "broken_proof", t).await.expect("runs");
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
        let e = verify_fixture(&b, name, Duration::from_secs(60))
            .await
            .expect_err("incompatible");
        assert_eq!(e.kind(), kind, "{e}");
    }
    assert_eq!(
        b.sessions(),
        0,
        "no sandbox may be created for an incompatible project"
    );
    let e = verify_fixture(&b, "empty", Duration::from_secs(60))
        .await
        .expect_err("empty");
    assert_eq!(e.kind(), "invalid_input");
    assert_eq!(b.sessions(), 0);
}

#[tokio::test]
async fn hanging_compile_times_out_and_leaves_nothing() {
    let Some(b) = backend("hanging_compile_times_out_and_leaves_nothing").await else {
        return;
    };
    // the self-test (its own budget) is not part of what is timed here
    let _ = crate::selftest::passing_self_test(&b).await;
    let started = Instant::now();
    let v = verify_fixture(&b, "hang", Duration::from_secs(4))
        .await
        .expect("a timeout is a verdict");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert!(v.report.timed_out && !v.report.verified);
    assert!(kinds(&v).contains(&(ViolationKind::Timeout, false)));
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
    let v = Verifier::new(b.clone() as Arc<dyn ComputeBackend>).with_options(VerifyOptions {
        run_id: Some(run.clone()),
        ..Default::default()
    });
    let out = v.verify_in_session(s.as_ref(), &cand, None).await;
    assert_eq!(
        snapshot(cand.root()),
        before,
        "the candidate's files are untouched (the compile runs on copies)"
    );
    // the caller's session stays usable
    let echo = s
        .exec_wait("echo alive", Default::default())
        .await
        .expect("still alive");
    s.close().await.expect("close");
    assert_eq!(echo.stdout.trim(), "alive");
    assert!(out.expect("verifies").report.verified);
    atp_test_support::assert_no_leak(&run).await;
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
    atp_test_support::assert_no_leak(&run).await;
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
