use std::time::Duration;

use atp_modal::{ModalBackend, ModalConfig, ModalCredentials};
use atp_modal_fake::{FakeModal, FakeOptions};

/// Start a fake whose sandboxes run the test image (unless `opts` names another image), or
/// skip loudly (`None`) when the Docker engine or the image is missing (a failure under
/// `ATP_REQUIRE_DOCKER=1`).
pub async fn fake(mut opts: FakeOptions) -> Option<FakeModal> {
    if opts.docker_image == FakeOptions::default().docker_image {
        opts.docker_image = atp_test_support::test_image();
    }
    match FakeModal::start(opts).await {
        Ok(f) => Some(f),
        Err(e) => {
            atp_test_support::skip(
                "atp-modal-fake test",
                &format!("the fake Modal cannot run: {e}"),
            );
            None
        }
    }
}

/// A fake without sandboxes (no engine needed): for control-plane client tests.
pub async fn control_plane(opts: FakeOptions) -> FakeModal {
    FakeModal::start_without_engine(opts)
        .await
        .expect("the control plane starts without an engine")
}

pub fn creds(f: &FakeModal) -> ModalCredentials {
    ModalCredentials::new(f.url(), "ak-test-id", "as-test-secret")
}

pub fn config() -> ModalConfig {
    ModalConfig {
        image: "open-atp".into(),
        app: "atp-test".into(),
        warm_command: None,
        liveness_interval: Duration::from_millis(300),
        backstop_margin: Duration::from_secs(2),
        provision_deadline: Duration::from_secs(20),
        transfer_timeout: Duration::from_secs(60),
        pin_cache: None,
        ..ModalConfig::default()
    }
}

pub fn backend(f: &FakeModal) -> ModalBackend {
    ModalBackend::new(config(), creds(f)).expect("backend")
}

/// A backend on the fake and a session over a fresh temp workdir (kept alive by the caller).
pub async fn open(
    f: &FakeModal,
) -> (
    ModalBackend,
    tempfile::TempDir,
    Box<dyn atp_backend::ComputeSession>,
) {
    use atp_backend::ComputeBackend as _;
    let backend = backend(f);
    let wd = tempfile::tempdir().expect("tmp");
    let s = backend
        .session(wd.path(), atp_backend::SessionOptions::default())
        .await
        .expect("session");
    (backend, wd, s)
}

/// Containers of this fake still present in the engine.
pub async fn live_containers(f: &FakeModal) -> usize {
    atp_test_support::count_managed(Some(f.run_id())).await
}
