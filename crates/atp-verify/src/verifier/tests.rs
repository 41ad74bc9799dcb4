use super::*;
use crate::protocol::CheckerReport;
use crate::script::FileFrame;

fn map(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn prep(files: &[(&str, &str)], original: Option<&[(&str, &str)]>) -> Prepared {
    let o = original.map(map);
    Prepared::from_sources(map(files), o.as_ref(), &VerifyPolicy::default(), true)
}

fn frame(exit: i64, out: &str) -> FileFrame {
    FileFrame {
        exit_code: exit,
        output: out.to_string(),
    }
}

/// Runs where every file compiled cleanly and the checker replayed every module with `axioms`.
fn clean_runs(p: &Prepared, axioms: &[(&str, &str, &[&str])]) -> Runs {
    let mut build = Frames {
        complete: true,
        ..Default::default()
    };
    for (i, _) in p.sources.keys().enumerate() {
        build.files.insert(i, frame(0, ""));
        build.oleans.insert(i, b"olean".to_vec());
    }
    let mut c = CheckerReport {
        lean: "4.28.0".into(),
        ..Default::default()
    };
    for rel in p.sources.keys() {
        c.replayed.insert(module_name(rel), 1);
    }
    for (m, d, axs) in axioms {
        c.axioms.insert(
            (m.to_string(), d.to_string()),
            axs.iter().map(|a| a.to_string()).collect(),
        );
    }
    let original = p.original_copies.as_ref().map(|o| Frames {
        files: (0..o.len()).map(|i| (i, frame(0, ""))).collect(),
        complete: true,
        ..Default::default()
    });
    Runs {
        build: Some(build),
        original,
        checker: Some(c),
        ..Default::default()
    }
}

fn eval(p: &Prepared, runs: &Runs) -> Verification {
    p.evaluate(runs, &VerifyPolicy::default())
        .expect("a verdict")
}

#[test]
fn a_clean_run_verifies_and_needs_the_checker() {
    let p = prep(
        &[(
            "A.lean",
            "theorem a : 1 = 1 := rfl\nexample : True := by trivial\n",
        )],
        None,
    );
    let runs = clean_runs(
        &p,
        &[
            ("A", "a", &[]),
            (
                "A",
                "_atp_example_1",
                &["propext", "Classical.choice", "Quot.sound"],
            ),
        ],
    );
    let v = eval(&p, &runs);
    assert!(v.report.verified, "{:?}", v.report.violations);
    assert_eq!(
        v.report.axioms,
        vec!["Classical.choice", "Quot.sound", "propext"]
    );
    assert_eq!(v.report.per_file["A.lean"].axioms["example #1"].len(), 3);
    assert!(v.compile_log.contains("== A.lean (exit 0) =="));
    assert!(v.compile_log.contains("== checker (Lean 4.28.0) =="));
    // without the checker's answer nothing verifies
    let mut no_checker = runs.clone();
    no_checker.checker = None;
    let v = eval(&p, &no_checker);
    assert!(!v.report.verified);
    assert!(v
        .report
        .violations
        .iter()
        .any(|x| x.kind == ViolationKind::NotChecked));
}

#[test]
fn what_lean_and_the_checker_find() {
    let p = prep(&[("A.lean", "theorem a : 1 = 1 := rfl\n")], None);
    // a sorry the source scan cannot see (a macro), reported by Lean and by the axioms
    let mut runs = clean_runs(&p, &[("A", "a", &["my_ax", "sorryAx"])]);
    if let Some(b) = runs.build.as_mut() {
        b.files.insert(
            0,
            frame(
                0,
                "/tmp/atp-build-x/src/A.lean:1:8: warning: declaration uses `sorry`\n",
            ),
        );
    }
    let v = eval(&p, &runs);
    assert!(!v.report.verified && !v.report.sorry_free);
    assert_eq!(v.report.non_standard_axioms, vec!["my_ax", "sorryAx"]);
    assert!(v
        .report
        .violations
        .iter()
        .any(|x| x.kind == ViolationKind::Sorry && x.from_lean && x.line == Some(1)));
    assert!(
        !v.compile_log.contains("/tmp/atp-build"),
        "staging paths are not shown"
    );
    // a compile error
    let mut runs = clean_runs(&p, &[]);
    if let Some(b) = runs.build.as_mut() {
        b.files.insert(
            0,
            frame(
                1,
                "/tmp/atp-build-x/src/A.lean:1:20: error: type mismatch\n  rfl\n",
            ),
        );
        b.oleans.clear();
    }
    runs.checker = None;
    let v = eval(&p, &runs);
    assert!(!v.report.compiles);
    assert_eq!(v.report.violations[0].kind, ViolationKind::CompileError);
    assert_eq!(v.report.violations[0].message, "error: type mismatch");
    // the kernel refused a forged declaration
    let mut runs = clean_runs(&p, &[]);
    if let Some(c) = runs.checker.as_mut() {
        c.replayed.clear();
        c.kernel.insert(
            "A".into(),
            ("a".into(), "(kernel) declaration type mismatch".into()),
        );
    }
    let v = eval(&p, &runs);
    assert!(!v.report.verified);
    assert!(v
        .report
        .violations
        .iter()
        .any(|x| x.kind == ViolationKind::KernelRejected && x.decl.as_deref() == Some("a")));
}

#[test]
fn obligations_and_imports_from_the_checker() {
    let orig = [(
        "A.lean",
        "import Mathlib\ntheorem a : 1 = 1 := sorry\nexample : True := sorry\n",
    )];
    let p = prep(
        &[(
            "A.lean",
            "import Mathlib\ntheorem a : 1 = 1 := rfl\nexample : True := trivial\n",
        )],
        Some(&orig),
    );
    let mut runs = clean_runs(&p, &[("A", "a", &[])]);
    if let Some(c) = runs.checker.as_mut() {
        c.obligations = vec![
            (
                "A".into(),
                "a".into(),
                "theorem".into(),
                ObligationStatus::TypeMismatch,
            ),
            (
                "A".into(),
                "_atp_example_1".into(),
                "example".into(),
                ObligationStatus::Missing,
            ),
            ("A".into(), "h".into(), "def".into(), ObligationStatus::Ok),
        ];
        c.missing_imports = vec![("A".into(), "Mathlib".into())];
    }
    let v = eval(&p, &runs);
    assert!(!v.report.verified && !v.report.statements_intact);
    let kinds: Vec<(ViolationKind, Option<&str>)> = v
        .report
        .violations
        .iter()
        .map(|x| (x.kind, x.decl.as_deref()))
        .collect();
    assert!(
        kinds.contains(&(ViolationKind::StatementChanged, Some("a"))),
        "{kinds:?}"
    );
    assert!(kinds.contains(&(ViolationKind::StatementMissing, Some("example #1"))));
    assert!(kinds.contains(&(ViolationKind::ContextChanged, None)));
    assert_eq!(kinds.len(), 3, "an `ok` obligation adds nothing");
}

#[test]
fn an_original_that_does_not_compile_is_an_error_not_a_verdict() {
    let orig = [("A.lean", "theorem a : 1 = 1 := sorry\n")];
    let p = prep(&[("A.lean", "theorem a : 1 = 1 := rfl\n")], Some(&orig));
    let mut runs = clean_runs(&p, &[("A", "a", &[])]);
    if let Some(o) = runs.original.as_mut() {
        o.files.insert(
            0,
            frame(
                1,
                "/tmp/atp-check/orig/src/A.lean:1:4: error: unknown identifier 'x'\n",
            ),
        );
    }
    let e = p
        .evaluate(&runs, &VerifyPolicy::default())
        .expect_err("error");
    assert_eq!(e.kind(), "original_does_not_compile");
    assert!(
        e.to_string().contains("A.lean:1: unknown identifier"),
        "{e}"
    );
}

#[test]
fn timeout_and_missing_frames() {
    let p = prep(
        &[
            ("A.lean", "theorem a : 1 = 1 := rfl\n"),
            ("B.lean", "theorem b : 1 = 1 := rfl\n"),
        ],
        None,
    );
    let v = eval(&p, &Runs::timed_out());
    assert!(v.report.timed_out && !v.report.verified);
    assert!(v
        .report
        .violations
        .iter()
        .any(|x| x.kind == ViolationKind::Timeout));
    let mut runs = clean_runs(&p, &[]);
    if let Some(b) = runs.build.as_mut() {
        b.files.remove(&1);
    }
    let v = eval(&p, &runs);
    assert_eq!(
        v.report
            .violations
            .iter()
            .filter(|x| x.kind == ViolationKind::CompileError)
            .count(),
        1
    );
}

fn result(exit: i64, stdout: &str, stderr: &str) -> CommandResult {
    CommandResult {
        exit_code: exit,
        stdout: stdout.into(),
        stderr: stderr.into(),
        duration: Duration::ZERO,
    }
}

#[test]
fn a_failed_script_is_an_error_with_its_stderr_never_a_verdict() {
    // wrapper exits 125–127: the sandbox could not run the script (busybox `timeout`, no bash)
    for rc in [125, 126, 127] {
        let e = script_frames(
            "build",
            &result(
                rc,
                "",
                "timeout: unrecognized option '--kill-after=5s'\nBusyBox v1.36 usage",
            ),
            "ATP-BUILD 1",
            1,
            false,
        )
        .expect_err("error");
        assert_eq!(e.kind(), "verifier_script");
        assert!(e.to_string().contains("BusyBox v1.36 usage"), "{e}");
    }
    // non-zero before any frame (no mktemp)
    let e = script_frames(
        "build",
        &result(
            3,
            "",
            "bash: mktemp: command not found\natp: mktemp failed in the sandbox",
        ),
        "ATP-BUILD 1",
        1,
        false,
    )
    .expect_err("error");
    assert!(e.to_string().contains("mktemp failed"), "{e}");
    // exit 0 but nothing framed, with an explanation on stderr
    let e = script_frames(
        "build",
        &result(0, "", "something broke"),
        "ATP-BUILD 1",
        1,
        false,
    )
    .expect_err("error");
    assert!(
        e.to_string().contains("printed nothing") && e.to_string().contains("something broke"),
        "{e}"
    );
    // a missing END
    let e = script_frames(
        "build",
        &result(0, "ATP-BUILD 1\n", ""),
        "ATP-BUILD 1",
        1,
        false,
    )
    .expect_err("error");
    assert!(e.to_string().contains("END"), "{e}");
    // cut short by the budget: not an error
    assert!(script_frames(
        "build",
        &result(124, "ATP-BUILD 1\n", ""),
        "ATP-BUILD 1",
        1,
        true
    )
    .is_ok());
}

#[test]
fn unsafe_file_names_are_rejected() {
    assert!(safe_rel_path("Mathlib/Foo/Bar.lean"));
    assert!(safe_rel_path("Ünïcode/Δ.lean"));
    for bad in [
        "q?.lean",
        "a b.lean",
        "$(x).lean",
        "a\"b.lean",
        "`x`.lean",
        "../x.lean",
        "a/../b.lean",
        "x\\y.lean",
        "it's.lean",
        "-x.lean",
        "/abs.lean",
    ] {
        assert!(!safe_rel_path(bad), "{bad}");
    }
    let d = tempfile::tempdir().expect("tmp");
    std::fs::write(d.path().join("lakefile.toml"), "name = \"x\"").expect("w");
    std::fs::write(d.path().join("lean-toolchain"), "leanprover/lean4:v4.28.0").expect("w");
    std::fs::write(
        d.path().join("$(touch pwned).lean"),
        "theorem a : True := trivial",
    )
    .expect("w");
    let p = atp_lean::LeanProject::open(d.path()).expect("opens");
    let e = Prepared::new(&p, None, &VerifyOptions::default()).expect_err("refused");
    assert_eq!(e.kind(), "invalid_input");
    assert!(e.to_string().contains("rename it"), "{e}");
}

/// A backend whose sandboxes never come up.
#[derive(Debug)]
struct NeverProvisions;

#[async_trait::async_trait]
impl ComputeBackend for NeverProvisions {
    fn name(&self) -> &str {
        "never"
    }
    fn container_home(&self) -> &str {
        "/root"
    }
    fn image(&self) -> &str {
        "never:latest"
    }
    async fn health(&self) -> atp_backend::Result<atp_backend::Health> {
        Ok(Default::default())
    }
    async fn image_info(&self) -> atp_backend::Result<atp_backend::ImageInfo> {
        Ok(Default::default())
    }
    async fn session(
        &self,
        _workdir: &std::path::Path,
        _opts: SessionOptions,
    ) -> atp_backend::Result<Box<dyn ComputeSession>> {
        futures::future::pending().await
    }
    async fn gc(
        &self,
        _f: atp_backend::GcFilter,
    ) -> atp_backend::Result<Vec<atp_backend::GcEntry>> {
        Ok(vec![])
    }
}

#[tokio::test(start_paused = true)]
async fn a_stalled_backend_yields_a_timeout_verdict_not_a_hang() {
    let project = atp_lean::LeanProject::open(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/clean"),
    )
    .expect("fixture");
    let v = Verifier::new(Arc::new(NeverProvisions))
        .with_options(VerifyOptions {
            timeout: Duration::from_secs(5),
            self_test: false,
            ..Default::default()
        })
        .verify(&project, None)
        .await
        .expect("a verdict");
    assert!(v.report.timed_out && !v.report.verified);
    assert!(v
        .report
        .violations
        .iter()
        .any(|x| x.kind == ViolationKind::Timeout));
    assert!(v.report.duration >= Duration::from_secs(5) + VERIFY_BACKSTOP_MARGIN);
}
