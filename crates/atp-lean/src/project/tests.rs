use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

#[test]
fn opens_fixture_and_reads_pins() {
    let p = LeanProject::open(fixture("clean")).expect("clean opens");
    assert_eq!(p.lean_toolchain().expect("tc"), "leanprover/lean4:v4.28.0");
    assert_eq!(p.mathlib_rev().expect("rev").as_deref(), Some("v4.28.0"));
    assert_eq!(p.lean_files().expect("files"), vec!["Fixture.lean"]);
    assert!(p.files_with_sorry().expect("sorry").is_empty());
    p.check_compatible(&LeanPins::builtin())
        .expect("compatible");
}

#[test]
fn sorry_files_are_found_by_token() {
    for (name, want) in [
        ("sorry_theorem", true),
        ("sorry_example", true),
        ("clean", false),
        ("original", true),
    ] {
        let p = LeanProject::open(fixture(name)).expect("opens");
        assert_eq!(
            !p.files_with_sorry().expect("scan").is_empty(),
            want,
            "{name}"
        );
    }
}

#[test]
fn compatibility_gate_names_the_mismatch() {
    let e = LeanProject::open(fixture("mismatched_toolchain"))
        .expect("opens")
        .check_compatible(&LeanPins::builtin())
        .expect_err("toolchain differs");
    assert_eq!(e.kind(), "toolchain_mismatch");
    assert!(e.to_string().contains("v4.27.0"), "{e}");
    let e = LeanProject::open(fixture("mismatched_mathlib"))
        .expect("opens")
        .check_compatible(&LeanPins::builtin())
        .expect_err("mathlib differs");
    assert_eq!(e.kind(), "mathlib_rev_mismatch");
}

#[test]
fn missing_lakefile_and_empty_project() {
    let e = LeanProject::open(fixture("missing_lakefile")).expect_err("no lakefile");
    assert_eq!(e.kind(), "missing_lakefile");
    assert_eq!(e.to_string().lines().count(), 1);
    let p = LeanProject::open(fixture("empty")).expect("empty opens");
    assert!(p.lean_files().expect("files").is_empty());
}

#[test]
fn manifest_rev_fallbacks_and_lakefile_lean() {
    let d = tempfile::tempdir().expect("tmp");
    std::fs::write(
        d.path().join("lean-toolchain"),
        "leanprover/lean4:v4.28.0\n",
    )
    .expect("w");
    std::fs::write(d.path().join("lakefile.lean"), "import Lake\nopen Lake DSL\npackage p\nrequire mathlib from git \"https://x\" @ \"v4.26.0\"\n").expect("w");
    let p = LeanProject::open(d.path()).expect("opens");
    assert_eq!(p.mathlib_rev().expect("rev").as_deref(), Some("v4.26.0"));
    std::fs::write(
        d.path().join("lake-manifest.json"),
        r#"{"version": 7, "packages": [{"name": "mathlib", "rev": "abc123"}]}"#,
    )
    .expect("w");
    assert_eq!(p.mathlib_rev().expect("rev").as_deref(), Some("abc123"));
    // .lake is never part of the sources
    std::fs::create_dir_all(d.path().join(".lake/packages/x")).expect("mk");
    std::fs::write(
        d.path().join(".lake/packages/x/X.lean"),
        "theorem x : True := sorry",
    )
    .expect("w");
    std::fs::create_dir_all(d.path().join("Sub")).expect("mk");
    std::fs::write(d.path().join("Sub/Y.lean"), "theorem y : True := trivial").expect("w");
    assert_eq!(p.lean_files().expect("files"), vec!["Sub/Y.lean"]);
}

#[test]
fn stage_files_builds_a_project_and_rejects_non_lean() {
    let d = tempfile::tempdir().expect("tmp");
    let src = d.path().join("A.lean");
    std::fs::write(&src, "theorem a : True := trivial").expect("w");
    let p = stage_files(std::slice::from_ref(&src), &d.path().join("staged")).expect("staged");
    assert_eq!(p.lean_files().expect("files"), vec!["A.lean"]);
    assert_eq!(
        p.lean_toolchain().expect("tc"),
        LeanPins::builtin().lean_toolchain
    );
    let txt = d.path().join("notes.txt");
    std::fs::write(&txt, "x").expect("w");
    let e = stage_files(&[txt], &d.path().join("s2")).expect_err("txt rejected");
    assert_eq!(e.kind(), "not_lean_file");
}

#[test]
fn builtin_pins_are_the_skeleton_directorys() {
    let skeleton = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/lean");
    let dir = atp_image::Skeleton::from_dir(&skeleton).expect("skeleton");
    assert_eq!(LeanPins::builtin(), dir.pins().expect("pins"));
}
