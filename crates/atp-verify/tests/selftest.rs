//! The self-test: canaries through the full path on an image, cached per image id; an image
//! whose checker is missing or does not answer fails it, and no verdict is drawn on it.

use std::collections::BTreeMap;
use std::sync::Arc;

use atp_backend::{ComputeBackend, RunId};
use atp_verify::{selftest, SelfTestReport, Verifier, VerifyOptions};

use crate::common::{backend, backend_on, one, project, Counting};

/// Run (or reuse) the self-test of the backend's image; panics when it does not pass.
pub async fn passing_self_test(b: &Arc<Counting>) -> SelfTestReport {
    let run = RunId::new();
    let v = Verifier::new(b.clone() as Arc<dyn ComputeBackend>).with_options(VerifyOptions {
        run_id: Some(run.clone()),
        ..Default::default()
    });
    let r = v.self_test().await.expect("self-test runs");
    atp_test_support::assert_no_leak(&run).await;
    assert!(r.passed, "{}", selftest::render_table(&r));
    r
}

/// An image derived from the test image by one `RUN`: an `atp-test-variant-*` image keyed by
/// the line's hash and the test image's id (cached like every variant; the test image itself
/// is never changed).
pub struct Derived {
    pub tag: String,
}

impl Derived {
    pub async fn build(run: &str) -> Self {
        use sha2::Digest as _;
        let h = hex::encode(sha2::Sha256::digest(run.as_bytes()));
        let name = format!("selftest-{}", &h[..12]);
        let tag = atp_test_support::variant_image("atp-verify derived image", &name, &[run])
            .await
            .expect("the engine and test image were checked by the caller");
        Derived { tag }
    }
}

#[tokio::test]
async fn the_test_image_passes_and_the_outcome_is_cached() {
    let Some(b) = backend("the_test_image_passes_and_the_outcome_is_cached").await else {
        return;
    };
    let r = passing_self_test(&b).await;
    let names: Vec<&str> = r.canaries.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "honest",
            "axiom",
            "sorry",
            "weakened_statement",
            "native_decide",
            "environment_forgery"
        ]
    );
    assert!(r.canaries.iter().all(|c| c.passed), "{r:?}");
    let table = selftest::render_table(&r);
    assert!(table.contains("self-test passed"), "{table}");
    // cached: a verification now opens only its own two sandboxes
    let info = b.image_info().await.expect("info");
    let safe: String = info
        .id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let file = selftest::cache_dir()
        .expect("cache dir")
        .join(format!("{safe}.json"));
    assert!(file.exists(), "{}", file.display());
    let before = b.sessions();
    let tmp = tempfile::tempdir().expect("tmp");
    let cand = project(tmp.path(), &one("theorem t : 1 = 1 := rfl\n"));
    let run = RunId::new();
    let v = Verifier::new(b.clone() as Arc<dyn ComputeBackend>)
        .with_options(VerifyOptions {
            run_id: Some(run.clone()),
            ..Default::default()
        })
        .verify(&cand, None)
        .await
        .expect("verdict");
    assert!(v.report.verified, "{:?}", v.report.violations);
    assert_eq!(b.sessions() - before, 2, "the self-test was not run again");
    atp_test_support::assert_no_leak(&run).await;
}

async fn failing_image(test: &str, run: &str, want: &str) {
    if atp_test_support::docker(test).await.is_none() {
        return;
    }
    let img = Derived::build(run).await;
    let Some(b) = backend_on(test, &img.tag).await else {
        return;
    };
    let run_id = RunId::new();
    let v = Verifier::new(b.clone() as Arc<dyn ComputeBackend>).with_options(VerifyOptions {
        run_id: Some(run_id.clone()),
        ..Default::default()
    });
    let r = v.self_test().await.expect("the self-test itself runs");
    assert!(!r.passed);
    let failed = r.failure().expect("a failed canary");
    assert_eq!(failed.name, "honest", "{r:?}");
    assert!(failed.detail.contains(want), "{}", failed.detail);
    // no verdict on this image: every verification is an error naming the canary
    let tmp = tempfile::tempdir().expect("tmp");
    let cand = project(tmp.path(), &one("theorem t : 1 = 1 := rfl\n"));
    let e = v.verify(&cand, None).await.expect_err("no verdict");
    assert_eq!(e.kind(), "self_test_failed");
    assert!(e.to_string().contains("`honest`"), "{e}");
    assert!(e.to_string().contains("atp doctor --self-test"), "{e}");
    atp_test_support::assert_no_leak(&run_id).await;
    let _ = BTreeMap::<String, String>::new();
}

#[tokio::test]
async fn an_image_without_the_checker_gets_no_verdict() {
    // the image contract names the missing checker before any canary or candidate runs
    let test = "an_image_without_the_checker_gets_no_verdict";
    if atp_test_support::docker(test).await.is_none() {
        return;
    }
    let img = Derived::build("rm /usr/local/bin/atp-check").await;
    let Some(b) = backend_on(test, &img.tag).await else {
        return;
    };
    let run_id = RunId::new();
    let v = Verifier::new(b.clone() as Arc<dyn ComputeBackend>).with_options(VerifyOptions {
        run_id: Some(run_id.clone()),
        ..Default::default()
    });
    let e = v
        .self_test()
        .await
        .expect_err("no self-test without a checker");
    assert_eq!(e.kind(), "image_contract", "{e}");
    assert!(e.to_string().contains("`atp-check` not found"), "{e}");
    let tmp = tempfile::tempdir().expect("tmp");
    let cand = project(tmp.path(), &one("theorem t : 1 = 1 := rfl\n"));
    let e = v.verify(&cand, None).await.expect_err("no verdict");
    assert_eq!(e.kind(), "image_contract", "{e}");
    atp_test_support::assert_no_leak(&run_id).await;
}

#[tokio::test]
async fn an_image_whose_checker_does_not_answer_fails_its_self_test() {
    failing_image(
        "an_image_whose_checker_does_not_answer_fails_its_self_test",
        "printf '#!/bin/bash\\necho checking...\\n' > /usr/local/bin/atp-check",
        "not a protocol message",
    )
    .await;
}

#[tokio::test]
async fn an_image_whose_checker_accepts_everything_fails_its_self_test() {
    // a "checker" that replays nothing and reports no obligation: protocol-clean lies
    if atp_test_support::docker("an_image_whose_checker_accepts_everything_fails_its_self_test")
        .await
        .is_none()
    {
        return;
    }
    let script = "#!/bin/bash\n\
        echo '{\"t\":\"hello\",\"protocol\":1,\"lean\":\"liar\"}'\n\
        n=0; for a in \"$@\"; do if [ \"$prev\" = --cand ]; then n=$((n+1)); echo \"{\\\"t\\\":\\\"module\\\",\\\"module\\\":\\\"$a\\\",\\\"constants\\\":0}\"; fi; prev=$a; done\n\
        echo \"{\\\"t\\\":\\\"done\\\",\\\"modules\\\":$n,\\\"obligations\\\":0}\"\n";
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(script);
    let img = Derived::build(&format!(
        "printf '%s' {b64} | base64 -d > /usr/local/bin/atp-check"
    ))
    .await;
    let Some(b) = backend_on(
        "an_image_whose_checker_accepts_everything_fails_its_self_test",
        &img.tag,
    )
    .await
    else {
        return;
    };
    let run = RunId::new();
    let r = Verifier::new(b.clone() as Arc<dyn ComputeBackend>)
        .with_options(VerifyOptions {
            run_id: Some(run.clone()),
            ..Default::default()
        })
        .self_test()
        .await
        .expect("runs");
    assert!(
        !r.passed,
        "a checker that sees nothing must not pass:\n{}",
        selftest::render_table(&r)
    );
    // the canaries it lets through are the ones only Lean and the checker can refuse
    let failed: Vec<&str> = r
        .canaries
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.as_str())
        .collect();
    assert!(
        failed.contains(&"axiom") && failed.contains(&"environment_forgery"),
        "{failed:?}"
    );
    atp_test_support::assert_no_leak(&run).await;
}
