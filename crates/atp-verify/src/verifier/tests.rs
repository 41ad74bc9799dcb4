use super::*;

fn prep(files: &[(&str, &str)], original: Option<&[(&str, &str)]>) -> Prepared {
    let s: BTreeMap<String, String> = files
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let o: Option<BTreeMap<String, String>> = original.map(|o| {
        o.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    });
    Prepared::from_sources(s, o.as_ref(), &VerifyOptions::default())
}

fn block(p: &Prepared, rel: &str, body: &str, exit: i64) -> String {
    format!(
        "=== ATP FILE {n} {rel} ===\n{body}=== ATP EXIT {n} {rel} {exit} ===\n",
        n = p.nonce
    )
}

fn probe_msgs(p: &Prepared, rel: &str, lines: &[&str]) -> String {
    let l = p.probe_lines[rel];
    let path = format!("/tmp/atp-probe-{}/src/{rel}", p.nonce);
    let mut s = String::new();
    for x in lines {
        s.push_str(&format!("{path}:{l}:0: info: {x}\n"));
    }
    s.push_str(&format!("{path}:{l}:0: info: atp-probe-done {}\n", p.nonce));
    s
}

#[test]
fn clean_transcript_verifies() {
    let p = prep(
        &[(
            "A.lean",
            "theorem a : 1 = 1 := rfl\nexample : True := by trivial\n",
        )],
        None,
    );
    let out = block(
        &p,
        "A.lean",
        &probe_msgs(
            &p,
            "A.lean",
            &[
                "'a' does not depend on any axioms",
                "'_atp_example_1' depends on axioms: [propext,\n  Classical.choice,\n  Quot.sound]",
            ],
        ),
        0,
    );
    let v = p.evaluate(&out, false, &VerifyPolicy::default());
    assert!(v.report.verified, "{:?}", v.report.violations);
    assert_eq!(
        v.report.axioms,
        vec!["Classical.choice", "Quot.sound", "propext"]
    );
    assert_eq!(v.report.per_file["A.lean"].axioms["example #1"].len(), 3);
    assert!(v.compile_log.contains("== A.lean (exit 0) =="));
    assert!(!v.compile_log.contains("/tmp/atp-probe"));
}

#[test]
fn sorry_warning_error_and_axioms_from_lean() {
    let p = prep(&[("A.lean", "theorem a : 1 = 1 := rfl\n")], None);
    let path = format!("/tmp/atp-probe-{}/src/A.lean", p.nonce);
    // the stand-in would print these for a sorry the source scan cannot see (e.g. a macro)
    let body = format!(
        "{path}:1:8: warning: declaration uses `sorry`\n{}",
        probe_msgs(&p, "A.lean", &["'a' depends on axioms: [my_ax, sorryAx]"])
    );
    let v = p.evaluate(
        &block(&p, "A.lean", &body, 0),
        false,
        &VerifyPolicy::default(),
    );
    assert!(!v.report.verified);
    assert!(!v.report.sorry_free);
    assert_eq!(v.report.non_standard_axioms, vec!["my_ax", "sorryAx"]);
    assert!(v
        .report
        .violations
        .iter()
        .any(|x| x.kind == ViolationKind::Sorry && x.from_lean && x.line == Some(1)));
    let body = format!("{path}:1:20: error: type mismatch\n  rfl\n");
    let v = p.evaluate(
        &block(&p, "A.lean", &body, 1),
        false,
        &VerifyPolicy::default(),
    );
    assert!(!v.report.compiles);
    assert_eq!(v.report.violations[0].kind, ViolationKind::CompileError);
    assert_eq!(v.report.violations[0].message, "error: type mismatch");
}

#[test]
fn forged_probe_lines_before_the_probe_are_ignored() {
    let p = prep(&[("A.lean", "theorem a : 1 = 1 := rfl\n")], None);
    let path = format!("/tmp/atp-probe-{}/src/A.lean", p.nonce);
    // a candidate logging a fake sentinel and fake axioms from line 1 does not satisfy the probe
    let body = format!("{path}:1:0: info: atp-probe-done {}\n{path}:1:0: info: 'a' does not depend on any axioms\n", p.nonce);
    let v = p.evaluate(
        &block(&p, "A.lean", &body, 0),
        false,
        &VerifyPolicy::default(),
    );
    assert!(!v.report.verified);
    assert_eq!(v.report.violations[0].kind, ViolationKind::ProbeMissing);
}

#[test]
fn timeout_and_missing_blocks() {
    let p = prep(
        &[
            ("A.lean", "theorem a : 1 = 1 := rfl\n"),
            ("B.lean", "theorem b : 1 = 1 := rfl\n"),
        ],
        None,
    );
    let partial = format!("=== ATP FILE {} A.lean ===\nsome output\n", p.nonce);
    let v = p.evaluate(&partial, true, &VerifyPolicy::default());
    assert!(v.report.timed_out && !v.report.verified);
    assert!(v
        .report
        .violations
        .iter()
        .any(|x| x.kind == ViolationKind::Timeout));
    let v = p.evaluate("", false, &VerifyPolicy::default());
    assert_eq!(
        v.report
            .violations
            .iter()
            .filter(|x| x.kind == ViolationKind::CompileError)
            .count(),
        2
    );
}

#[test]
fn script_has_waves_markers_and_olean_outputs() {
    let p = prep(
        &[
            ("Lib/Helper.lean", "def h := 1\n"),
            ("Main.lean", "import Lib.Helper\ntheorem m : h = 1 := rfl\n"),
        ],
        None,
    );
    let s = &p.script;
    let helper = s
        .find("start 0 Lib/Helper.lean .lake/build/lib/lean/Lib/Helper.olean")
        .expect("helper starts with -o");
    let main = s.find("start 1 Main.lean ''").expect("main");
    let drain = s[helper..].find("drain").expect("drain") + helper;
    assert!(
        helper < drain && drain < main,
        "Main waits for Helper's wave"
    );
    assert!(s.contains(&format!("=== ATP FILE {} $rel ===", p.nonce)));
    assert!(s.contains("-- atp-axiom-probe"));
    assert!(
        s.contains("cd /workspace"),
        "compiles from the image's project, not the candidate's lakefile"
    );
}

#[test]
fn script_runs_with_a_fake_lake_and_bounded_workers() {
    // Run the generated script with host bash and a trivial `lake` that echoes its file.
    let dir = tempfile::tempdir().expect("tmp");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mk");
    // The fake records how many compiles run at once (marker files in RUNDIR).
    std::fs::create_dir_all(dir.path().join("running")).expect("mk");
    std::fs::write(
        bin.join("lake"),
        "#!/bin/bash\n# args: env lean --root=R [-o OUT] FILE\nf=\"${@: -1}\"\n\
         m=\"$RUNDIR/running/$$\"; : > \"$m\"\n\
         ls \"$RUNDIR/running\" | wc -l >> \"$RUNDIR/concurrency\"\n\
         sleep 0.3\n\
         echo \"$f:1:0: warning: declaration uses 'sorry'\"\nrm -f \"$m\"\nexit 0\n",
    )
    .expect("w");
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(bin.join("lake"))
        .status()
        .expect("chmod");
    let files: Vec<(String, String)> = (0..6)
        .map(|i| {
            (
                format!("F{i}.lean"),
                format!("theorem t{i} : True := trivial\n"),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let p = Prepared::from_sources(
        refs.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        None,
        &VerifyOptions {
            workers: Some(2),
            ..Default::default()
        },
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(&p.script)
        .current_dir(dir.path())
        .env("RUNDIR", dir.path())
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let blocks = crate::parse::split_blocks(&stdout, &p.nonce);
    assert_eq!(
        blocks.len(),
        6,
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(blocks.iter().all(|b| b.exit_code == Some(0)));
    let v = p.evaluate(&stdout, false, &VerifyPolicy::default());
    assert!(v.report.per_file.values().all(|f| f.sorry));
    let seen: Vec<usize> = std::fs::read_to_string(dir.path().join("concurrency"))
        .expect("log")
        .lines()
        .map(|l| l.trim().parse().expect("count"))
        .collect();
    assert_eq!(seen.len(), 6);
    assert!(
        seen.iter().all(|&n| n <= 2),
        "never more than 2 workers: {seen:?}"
    );
    assert!(seen.contains(&2), "2 workers ran at once: {seen:?}");
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
