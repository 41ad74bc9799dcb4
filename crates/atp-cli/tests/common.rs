//! What the CLI tests share: the binary, the engine gate (atp-test-support's), the fake Modal.

use std::process::Output;

use atp_docker::DockerBackend;
use atp_modal_fake::{FakeModal, FakeOptions};

/// The `atp` binary under test.
pub const ATP: &str = env!("CARGO_BIN_EXE_atp");

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The network-less test backend, or `None` after a loud skip (a failure under
/// `ATP_REQUIRE_DOCKER=1`).
pub async fn engine(test: &str) -> Option<DockerBackend> {
    atp_test_support::docker(test).await
}

/// [`engine`] for a synchronous test.
pub fn engine_ready(test: &str) -> bool {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(engine(test))
        .is_some()
}

/// A fake Modal whose sandboxes run the test image, or `None` after a loud skip.
pub async fn fake(test: &str) -> Option<FakeModal> {
    let opts = FakeOptions {
        docker_image: atp_test_support::test_image(),
        ..FakeOptions::default()
    };
    match FakeModal::start(opts).await {
        Ok(f) => Some(f),
        Err(e) => {
            atp_test_support::skip(test, &format!("the fake Modal cannot run: {e}"));
            None
        }
    }
}
