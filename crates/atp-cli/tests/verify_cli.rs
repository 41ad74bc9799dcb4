//! `atp verify` end to end: the real binary, Docker, and the stand-in `lake` of atp-test:latest.
//!
//! Engine-dependent cases skip loudly without an engine/test image (fail with
//! ATP_REQUIRE_DOCKER=1); input errors need no engine.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The stand-in test image (`ATP_TEST_IMAGE`, default `atp-test:latest`).
fn test_image() -> String {
    atp_test_support::test_image()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

fn atp(args: &[&str], out: &Path) -> (i32, String, serde_json::Value) {
    let o = Command::new(env!("CARGO_BIN_EXE_atp"))
        .arg("verify")
        .args(args)
        .args(["--image", &test_image(), "--timeout", "120", "--output"])
        .arg(out)
        .output()
        .expect("atp runs");
    let result: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("logs/result.json"))
            .expect("result.json is always written"),
    )
    .expect("result.json is JSON");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        result,
    )
}

fn engine_ready(test: &str) -> bool {
    let ok = Command::new(env!("CARGO_BIN_EXE_atp"))
        .args(["doctor", "--json", "--image", &test_image()])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var("ATP_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
            panic!(
                "{test}: ATP_REQUIRE_DOCKER=1 but `atp doctor --image {}` fails",
                test_image()
            );
        }
        {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "\n!!! SKIPPED {test}: needs a Docker engine and {} (cargo xtask test-image)\n",
                test_image()
            );
        }
    }
    ok
}

#[test]
fn bad_input_writes_result_json_with_the_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (code, out, r) = atp(
        &[fixture("missing_lakefile").to_str().expect("utf8")],
        &tmp.path().join("a"),
    );
    assert_eq!(code, 2, "{out}");
    assert_eq!(r["status"], "error");
    assert_eq!(r["error"]["kind"], "missing_lakefile");
    assert!(out.contains("error: ") && out.contains("lakefile"), "{out}");
    let txt = tmp.path().join("notes.txt");
    std::fs::write(&txt, "x").expect("w");
    let (code, _, r) = atp(&[txt.to_str().expect("utf8")], &tmp.path().join("b"));
    assert_eq!(code, 2);
    assert_eq!(r["error"]["kind"], "not_lean_file");
}

#[test]
fn verdicts_exit_codes_and_named_reasons() {
    if !engine_ready("verdicts_exit_codes_and_named_reasons") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let orig = fixture("original");
    let cases: &[(&str, i32, &str, Option<&str>)] = &[
        ("clean", 0, "verified", None),
        ("sorry_theorem", 1, "unverified", Some("sorry")),
        ("sorry_example", 1, "unverified", Some("sorry")),
        ("user_axiom", 1, "unverified", Some("axiom")),
        ("native_decide", 1, "unverified", Some("native_decide")),
        (
            "changed_statement",
            1,
            "unverified",
            Some("statement_changed"),
        ),
        (
            "deleted_theorem",
            1,
            "unverified",
            Some("statement_missing"),
        ),
        ("exit", 1, "unverified", Some("exit")),
        ("broken_proof", 1, "unverified", Some("compile_error")),
        ("mismatched_toolchain", 2, "error", None),
        ("empty", 2, "error", None),
    ];
    for (name, want_code, want_status, reason) in cases {
        let out = tmp.path().join(name);
        let (code, text, r) = atp(
            &[
                fixture(name).to_str().expect("utf8"),
                "--original",
                orig.to_str().expect("utf8"),
                "--json",
            ],
            &out,
        );
        assert_eq!(code, *want_code, "{name}: {text}");
        assert_eq!(r["status"], *want_status, "{name}");
        let printed: serde_json::Value = serde_json::from_str(
            text.lines()
                .take_while(|l| !l.starts_with("error:"))
                .collect::<Vec<_>>()
                .join("\n")
                .as_str(),
        )
        .expect("--json prints the result");
        assert_eq!(printed["status"], r["status"]);
        if let Some(kind) = reason {
            let kinds: Vec<&str> = r["verification"]["violations"]
                .as_array()
                .expect("violations")
                .iter()
                .filter_map(|v| v["kind"].as_str())
                .collect();
            assert!(kinds.contains(kind), "{name}: {kinds:?}");
        }
        if *want_status != "error" {
            assert!(
                out.join("wd/Fixture.lean").is_file(),
                "{name}: candidate saved"
            );
            assert!(out.join("logs/compile.log").is_file());
        }
    }
    assert!(tmp
        .path()
        .join("mismatched_toolchain/logs/result.json")
        .is_file());
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("mismatched_toolchain/logs/result.json"))
            .expect("r"),
    )
    .expect("json");
    assert_eq!(r["error"]["kind"], "toolchain_mismatch");
}

#[test]
fn human_summary_lists_files_and_violations() {
    if !engine_ready("human_summary_lists_files_and_violations") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let (code, text, _) = atp(
        &[
            fixture("changed_statement")
                .join("Fixture.lean")
                .to_str()
                .expect("utf8"),
            "--original",
            fixture("original")
                .join("Fixture.lean")
                .to_str()
                .expect("utf8"),
            "--workers",
            "1",
        ],
        &tmp.path().join("h"),
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.starts_with("UNVERIFIED"), "{text}");
    assert!(text.contains("Fixture.lean  yes"), "{text}");
    assert!(
        text.contains("Fixture.lean:14  statement_changed [Fixture.two_mul']"),
        "{text}"
    );
}
