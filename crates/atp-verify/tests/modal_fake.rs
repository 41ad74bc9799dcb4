//! The verifier over the Modal backend, against the in-process fake Modal (sandboxes are local
//! containers of atp-test:latest with the stand-in `lake`). Skips loudly without an engine.

use std::sync::Arc;
use std::time::Duration;

use atp_lean::LeanProject;
use atp_modal::{ModalBackend, ModalConfig, ModalCredentials};
use atp_modal_fake::{FakeModal, FakeOptions};
use atp_verify::{Verifier, VerifyOptions, ViolationKind};

#[tokio::test]
async fn verifies_through_modal_sandboxes() {
    let fake = match FakeModal::start(FakeOptions {
        docker_image: atp_test_support::test_image(),
        ..FakeOptions::default()
    })
    .await
    {
        Ok(f) => f,
        Err(e) => {
            atp_test_support::skip(
                "verifies_through_modal_sandboxes",
                &format!("no Docker engine / test image for the fake Modal: {e}"),
            );
            return;
        }
    };
    let backend = ModalBackend::new(
        ModalConfig {
            image: "open-atp".into(),
            app: "atp-verify-test".into(),
            warm_command: None,
            ..ModalConfig::default()
        },
        ModalCredentials::new(fake.url(), "ak-test-id", "as-test-secret"),
    )
    .expect("backend");
    let verifier = Verifier::new(Arc::new(backend)).with_options(VerifyOptions {
        timeout: Duration::from_secs(120),
        ..Default::default()
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let original = LeanProject::open(atp_test_support::fixture("original")).expect("original");

    let clean = crate::common::copy_fixture("clean", tmp.path());
    let v = verifier
        .verify(&clean, Some(&original))
        .await
        .expect("verdict");
    assert!(v.report.verified, "{:?}", v.report.violations);
    assert_eq!(
        v.report.per_file["Fixture.lean"].axioms["example #1"].len(),
        3
    );

    let bad = crate::common::copy_fixture("sorry_example", tmp.path());
    let v = verifier
        .verify(&bad, Some(&original))
        .await
        .expect("verdict");
    assert!(!v.report.verified);
    assert!(v
        .report
        .violations
        .iter()
        .any(|x| x.kind == ViolationKind::Sorry && x.from_lean));

    let sandboxes = fake.sandboxes();
    // two verifications of two sandboxes each, and the self-test's canaries
    assert!(sandboxes.len() >= 4, "{}", sandboxes.len());
    assert!(
        sandboxes.iter().all(|s| s.terminated),
        "every Modal sandbox was terminated"
    );
    assert!(
        sandboxes.iter().all(|s| s.network_blocked),
        "verification runs without network"
    );
    fake.shutdown().await;
}
