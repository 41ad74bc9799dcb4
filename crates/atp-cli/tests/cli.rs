//! The `atp` binary as a user runs it: help text, JSON and text output, exit codes.
//!
//! Tests that need the engine skip loudly without one and fail when `ATP_REQUIRE_DOCKER=1`.

use std::process::{Command, Output};

use atp_backend::{ComputeBackend, NetworkMode, RunId, SessionOptions};
use atp_test_support::test_image;

use crate::common::{engine, stderr, stdout};

/// An image name for tests that contact no engine (any name would do).
const ANY_IMAGE: &str = "atp-test:latest";

/// Run `atp` with a clean environment for the variables it reads.
fn atp(args: &[&str], docker_host: Option<&str>) -> Output {
    let mut cmd = Command::new(crate::common::ATP);
    cmd.args(args)
        .env_remove("ATP_LOG")
        .env_remove("ATP_BACKEND")
        .env_remove("ATP_IMAGE")
        .env("NO_COLOR", "1");
    if let Some(h) = docker_host {
        cmd.env("DOCKER_HOST", h);
    }
    cmd.output().expect("atp runs")
}

#[test]
fn help_texts() {
    // The top-level list grows with every subcommand: check our entries, snapshot our pages.
    let top = stdout(&atp(&["--help"], None));
    assert!(top.contains("  doctor ") && top.contains("  gc "), "{top}");
    assert!(
        top.contains("--json") && top.contains("--log-level"),
        "{top}"
    );
    for args in [vec!["gc", "--help"], vec!["doctor", "--help"]] {
        let o = atp(&args, None);
        assert!(o.status.success());
        insta::assert_snapshot!(format!("help_{}", args.join("_")), stdout(&o));
    }
}

#[test]
fn doctor_on_a_dead_engine_fails_with_a_json_report() {
    let o = atp(
        &["doctor", "--json", "--image", ANY_IMAGE],
        Some("unix:///nonexistent.sock"),
    );
    assert_eq!(o.status.code(), Some(1));
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn doctor_on_a_dead_engine_says_how_to_start_it() {
    let o = atp(&["doctor"], Some("unix:///nonexistent.sock"));
    assert_eq!(o.status.code(), Some(1));
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn gc_on_a_dead_engine_is_one_error_line() {
    let o = atp(&["gc", "--dry-run"], Some("unix:///nonexistent.sock"));
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn bad_flags_are_usage_errors() {
    let o = atp(&["gc", "--run-id", "not a run id"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("invalid run id"));
    let o = atp(&["--log-level", "a=b=c", "gc"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("error: --log-level"));
}

#[tokio::test]
async fn gc_dry_run_json_for_an_unused_run_id_is_empty() {
    if engine("gc_dry_run_json_for_an_unused_run_id_is_empty")
        .await
        .is_none()
    {
        return;
    }
    let run = RunId::new();
    let o = atp(
        &["gc", "--dry-run", "--json", "--run-id", run.as_str()],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    insta::assert_snapshot!(stdout(&o));
    let o = atp(&["gc", "--dry-run", "--run-id", run.as_str()], None);
    assert_eq!(stdout(&o), "no managed docker sandboxes found\n");
}

#[tokio::test]
async fn doctor_reports_the_test_image_and_its_labels() {
    if engine("doctor_reports_the_test_image_and_its_labels")
        .await
        .is_none()
    {
        return;
    }
    let image = test_image();
    let o = atp(&["doctor", "--json", "--image", &image], None);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["ok"], true);
    assert_eq!(v["engine"]["status"], "ok");
    assert!(v["engine"]["version"].is_string());
    assert!(v["engine"]["api_version"].is_string());
    assert_eq!(v["image_check"]["labels"]["atp.test-image"], "true");
    let text = stdout(&atp(&["doctor", "--image", &image], None));
    assert!(text.contains("label     atp.test-image=true"), "{text}");
    assert!(text.ends_with("all checks passed\n"), "{text}");

    let o = atp(
        &["doctor", "--json", "--image", "atp-test:no-such-tag"],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["ok"], false);
    assert_eq!(v["image_check"]["kind"], "image_unavailable");
    assert!(v["image_check"]["error"]
        .as_str()
        .is_some_and(|e| e.contains("cargo xtask test-image")));
}

#[tokio::test]
async fn gc_removes_a_leaked_sandbox_of_one_run() {
    let Some(b) = engine("gc_removes_a_leaked_sandbox_of_one_run").await else {
        return;
    };
    let run = RunId::new();
    let wd = tempfile::tempdir().expect("tempdir");
    let s = b
        .session(
            wd.path(),
            SessionOptions {
                run_id: Some(run.clone()),
                network: NetworkMode::None,
                ..Default::default()
            },
        )
        .await
        .expect("session");
    let id = s.id().to_string();
    // An atp process that died without cleaning up.
    std::mem::forget(s);

    let o = atp(
        &[
            "gc",
            "--json",
            "--older-than",
            "60",
            "--run-id",
            run.as_str(),
        ],
        None,
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["count"], 0, "a fresh sandbox is not an hour old");

    let o = atp(&["gc", "--json", "--run-id", run.as_str()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["count"], 1);
    assert_eq!(v["sandboxes"][0]["id"], id.as_str());
    assert_eq!(v["sandboxes"][0]["removed"], true);
    assert_eq!(v["sandboxes"][0]["run_id"], run.as_str());

    let left = b
        .gc(atp_backend::GcFilter {
            run_id: Some(run.clone()),
            dry_run: true,
            ..Default::default()
        })
        .await
        .expect("list");
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn doctor_self_test_prints_the_canary_table() {
    let image = atp_test_support::test_image();
    if engine("doctor_self_test_prints_the_canary_table")
        .await
        .is_none()
    {
        return;
    }
    let o = atp(&["doctor", "--self-test", "--image", &image], None);
    let text = stdout(&o);
    assert!(o.status.success(), "{text}{}", stderr(&o));
    for canary in [
        "honest",
        "axiom",
        "sorry",
        "weakened_statement",
        "native_decide",
        "environment_forgery",
    ] {
        assert!(
            text.lines()
                .any(|l| l.contains(canary) && l.contains(" ok ")),
            "{canary}: {text}"
        );
    }
    assert!(text.contains("self-test passed"), "{text}");
    let o = atp(
        &["doctor", "--json", "--self-test", "--image", &image],
        None,
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["self_test"]["status"], "ran");
    assert_eq!(v["self_test"]["passed"], true);
    assert_eq!(v["self_test"]["canaries"].as_array().map(Vec::len), Some(6));
}
