//! The verifier over the Modal backend, against the in-process fake Modal (sandboxes are local
//! containers of atp-test:latest with the stand-in `lake`). Skips loudly without an engine.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use atp_lean::LeanProject;
use atp_modal::{ModalBackend, ModalConfig, ModalCredentials};
use atp_modal_fake::{FakeModal, FakeOptions};
use atp_verify::{Verifier, VerifyOptions, ViolationKind};

fn fixture_copy(name: &str, into: &Path) -> LeanProject {
    let src: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name);
    let dest = into.join(name);
    std::fs::create_dir_all(&dest).expect("mkdir");
    for e in std::fs::read_dir(src).expect("fixture") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), dest.join(e.file_name())).expect("copy");
    }
    LeanProject::open(dest).expect("opens")
}

#[tokio::test]
async fn verifies_through_modal_sandboxes() {
    let fake = match FakeModal::start(FakeOptions::default()).await {
        Ok(f) => f,
        Err(e) => {
            if std::env::var("ATP_REQUIRE_DOCKER").as_deref() == Ok("1") {
                panic!("ATP_REQUIRE_DOCKER=1 but the fake Modal cannot run: {e}");
            }
            {
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr(), "\n!!! SKIPPED verifies_through_modal_sandboxes: no Docker engine / test image: {e}\n");
            }
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
    let original =
        LeanProject::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/original"))
            .expect("original");

    let clean = fixture_copy("clean", tmp.path());
    let v = verifier
        .verify(&clean, Some(&original))
        .await
        .expect("verdict");
    assert!(v.report.verified, "{:?}", v.report.violations);
    assert_eq!(
        v.report.per_file["Fixture.lean"].axioms["example #1"].len(),
        3
    );

    let bad = fixture_copy("sorry_example", tmp.path());
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
    // two verifications (the backend may also open one to read the image pins)
    assert!(sandboxes.len() >= 2, "{}", sandboxes.len());
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
