//! `atp verify` end to end: the real binary, Docker, and the stand-in `lake` of the test image.
//!
//! Engine-dependent cases skip loudly without an engine/test image (fail with
//! ATP_REQUIRE_DOCKER=1); input errors need no engine.

use std::path::Path;
use std::process::Command;

use atp_test_support::{fixture, test_image};

use crate::common::{engine_ready, ATP};

fn atp(args: &[&str], out: &Path) -> (i32, String, serde_json::Value) {
    let o = Command::new(ATP)
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

/// `atp verify FIXTURE --original original --image IMAGE`, from an async test.
async fn verify_on(
    image: &str,
    fixture_name: &str,
    out: &Path,
) -> (i32, String, serde_json::Value) {
    let o = tokio::process::Command::new(ATP)
        .arg("verify")
        .arg(fixture(fixture_name))
        .arg("--original")
        .arg(fixture("original"))
        .args(["--image", image, "--timeout", "120", "--output"])
        .arg(out)
        .output()
        .await
        .expect("atp runs");
    let r = serde_json::from_str(
        &std::fs::read_to_string(out.join("logs/result.json")).expect("result.json"),
    )
    .expect("json");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        r,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_without_mktemp_is_an_error_naming_it_never_a_verdict() {
    let Some(image) = atp_test_support::variant_image(
        "an_image_without_mktemp_is_an_error_naming_it_never_a_verdict",
        "no-mktemp",
        &["rm /usr/bin/mktemp"],
    )
    .await
    else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let (code, stderr, r) = verify_on(&image, "clean", &tmp.path().join("o")).await;
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(r["status"], "error", "{r}");
    assert_eq!(r["error"]["kind"], "image_contract", "{r}");
    assert!(
        r["verification"].is_null(),
        "no verdict from a broken sandbox: {r}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: image ") && stderr.contains("`mktemp` not found"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busybox_sh_image_verifies_like_the_test_image() {
    let Some(image) = atp_test_support::variant_image(
        "a_busybox_sh_image_verifies_like_the_test_image",
        "busybox-sh",
        &["ln -sf busybox /usr/bin/sh"],
    )
    .await
    else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let (code, stderr, r) = verify_on(&image, "clean", &tmp.path().join("clean")).await;
    assert_eq!(code, 0, "{stderr}{r}");
    assert_eq!(r["status"], "verified");
    let (code, stderr, r) = verify_on(&image, "broken_proof", &tmp.path().join("broken")).await;
    assert_eq!(code, 1, "{stderr}{r}");
    assert_eq!(r["status"], "unverified");

    let timeout = atp_test_support::variant_image(
        "a_busybox_sh_image_verifies_like_the_test_image",
        "busybox-timeout",
        &["ln -sf busybox /usr/bin/timeout"],
    )
    .await
    .expect("engine present");
    let (code, stderr, r) = verify_on(&timeout, "clean", &tmp.path().join("t")).await;
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(r["error"]["kind"], "image_contract", "{r}");
    assert!(stderr.contains("not GNU timeout"), "{stderr}");
}
