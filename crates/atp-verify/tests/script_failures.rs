//! Issue 10(c): when a verification script itself fails (a tool missing from the image, the
//! wrapper unable to run it), the result is an error carrying the script's stderr line — never
//! a per-file verdict.

use std::sync::Arc;

use atp_backend::{ComputeBackend, RunId};
use atp_verify::{Verifier, VerifyOptions};

use crate::common::{backend_on, one, project};
use crate::selftest::Derived;

/// Verify a trivial candidate on `test`'s image plus `run`, with and without the self-test:
/// an error of `kinds.0` (self-test off) / `kinds.1` (on) whose one line contains `want`.
async fn refused_image(test: &str, run: &str, want: &str, kinds: (&str, &str)) {
    if atp_test_support::docker(test).await.is_none() {
        return;
    }
    let img = Derived::build(run).await;
    let Some(b) = backend_on(test, &img.tag).await else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let cand = project(tmp.path(), &one("theorem t : 1 = 1 := rfl\n"));
    for self_test in [false, true] {
        let run_id = RunId::new();
        let e = Verifier::new(b.clone() as Arc<dyn ComputeBackend>)
            .with_options(VerifyOptions {
                run_id: Some(run_id.clone()),
                self_test,
                ..Default::default()
            })
            .verify(&cand, None)
            .await
            .expect_err("a broken image or script is an error, not a verdict");
        let want_kind = if self_test { kinds.1 } else { kinds.0 };
        assert_eq!(e.kind(), want_kind, "{e}");
        assert!(e.to_string().contains(want), "{e}");
        assert_eq!(e.to_string().lines().count(), 1, "one line: {e}");
        atp_test_support::assert_no_leak(&run_id).await;
    }
}

/// A script that fails before any file block: `verifier_script` (the self-test's canaries
/// fail the same way, so with it on the image fails its self-test).
async fn broken(test: &str, run: &str, want: &str) {
    refused_image(test, run, want, ("verifier_script", "self_test_failed")).await;
}

/// A tool the scripts need that is missing: the image contract (checked once per image id,
/// before any script runs) refuses the image in one line naming the tool, with or without the
/// self-test — no script runs, so no verdict can be drawn from one.
async fn missing(test: &str, run: &str, tool: &str) {
    let want = format!("`{tool}` not found");
    refused_image(test, run, &want, ("image_contract", "image_contract")).await;
}

#[tokio::test]
async fn an_image_without_mktemp_is_refused_by_its_contract() {
    missing(
        "an_image_without_mktemp_is_refused_by_its_contract",
        "rm /usr/bin/mktemp",
        "mktemp",
    )
    .await;
}

#[tokio::test]
async fn an_image_without_base64_is_refused_by_its_contract() {
    missing(
        "an_image_without_base64_is_refused_by_its_contract",
        "rm /usr/bin/base64",
        "base64",
    )
    .await;
}

#[tokio::test]
async fn a_tool_that_fails_inside_the_script_is_an_error_with_its_stderr() {
    // `mkdir` present (the contract holds) but failing for the script's source tree, as on a
    // full disk: the script stops before any file block, and that is an error with its stderr
    broken(
        "a_tool_that_fails_inside_the_script_is_an_error_with_its_stderr",
        r#"m=$(command -v mkdir) && mv "$m" "$m.real" && printf '#!/bin/bash\ncase "$*" in *"/src"*) echo "mkdir: cannot create directory: No space left on device" >&2; exit 1;; esac\nexec %s.real "$@"\n' "$m" > "$m" && chmod +x "$m""#,
        "mkdir: cannot create directory: No space left on device",
    )
    .await;
}
