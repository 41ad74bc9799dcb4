//! Issue 10(c): when a verification script itself fails (a tool missing from the image, the
//! wrapper unable to run it), the result is an error carrying the script's stderr line — never
//! a per-file verdict.

use std::sync::Arc;

use atp_backend::{ComputeBackend, RunId};
use atp_verify::{Verifier, VerifyOptions};

use crate::common::{backend_on, one, project};
use crate::selftest::Derived;

async fn broken(test: &str, run: &str, want: &str) {
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
        let r = Verifier::new(b.clone() as Arc<dyn ComputeBackend>)
            .with_options(VerifyOptions {
                run_id: Some(run_id.clone()),
                self_test,
                ..Default::default()
            })
            .verify(&cand, None)
            .await;
        let e = r.expect_err("a failed script is an error, not a verdict");
        let want_kind = if self_test {
            "self_test_failed"
        } else {
            "verifier_script"
        };
        assert_eq!(e.kind(), want_kind, "{e}");
        assert!(e.to_string().contains(want), "{e}");
        assert_eq!(e.to_string().lines().count(), 1, "one line: {e}");
        atp_test_support::assert_no_leak(&run_id).await;
    }
}

#[tokio::test]
async fn an_image_without_mktemp_is_an_error_with_the_scripts_stderr() {
    broken(
        "an_image_without_mktemp_is_an_error_with_the_scripts_stderr",
        "rm /usr/bin/mktemp",
        "lacks `mktemp`",
    )
    .await;
}

#[tokio::test]
async fn an_image_without_base64_is_an_error_not_a_verdict() {
    broken(
        "an_image_without_base64_is_an_error_not_a_verdict",
        "rm /usr/bin/base64",
        "lacks `base64`",
    )
    .await;
}
