//! Shared rig of the engine tests: the test backend, skipping rules and the leak counter.
//!
//! A test calls [`backend`]; without a reachable engine it gets `None` and returns after a loud
//! message — unless `ATP_REQUIRE_DOCKER=1`, in which case it fails.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;

use atp_backend::layout::{LABEL_MANAGED, LABEL_RUN_ID};
use atp_backend::{ComputeBackend, NetworkMode, RunId, SessionOptions};
use atp_docker::{DockerBackend, DockerConfig};
use bollard::query_parameters::ListContainersOptionsBuilder;

/// The image built by `cargo xtask test-image`.
pub const TEST_IMAGE: &str = "atp-test:latest";

fn required() -> bool {
    std::env::var("ATP_REQUIRE_DOCKER").is_ok_and(|v| v == "1")
}

/// A backend on the test image with networking disabled, or `None` (after a loud message) when
/// no engine or no test image is available and `ATP_REQUIRE_DOCKER` is not `1`.
pub async fn backend(test: &str) -> Option<DockerBackend> {
    let b = DockerBackend::new(DockerConfig {
        network: NetworkMode::None,
        ..DockerConfig::for_image(TEST_IMAGE)
    });
    let problem = match b.health().await {
        Err(e) => Some(e.to_string()),
        Ok(_) => match b.image_info().await {
            Err(e) => Some(e.to_string()),
            Ok(_) => None,
        },
    };
    match problem {
        None => Some(b),
        Some(p) if required() => panic!("{test}: ATP_REQUIRE_DOCKER=1 but: {p}"),
        Some(p) => {
            // Straight to the stderr handle: the test harness captures `eprintln!` of passing
            // tests, and a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!! SKIPPED {test}: needs a Docker engine and {TEST_IMAGE}: {p}\n!!! \
                 (set ATP_REQUIRE_DOCKER=1 to make this a failure)\n"
            );
            None
        }
    }
}

/// Session options for a test: its own run id, no network.
pub fn opts(run: &RunId) -> SessionOptions {
    SessionOptions {
        run_id: Some(run.clone()),
        network: NetworkMode::None,
        ..Default::default()
    }
}

/// A session on `b` under a fresh run id over a fresh temp workdir (kept alive by the caller).
pub async fn open(
    b: &DockerBackend,
) -> (
    RunId,
    tempfile::TempDir,
    Box<dyn atp_backend::ComputeSession>,
) {
    let run = RunId::new();
    let wd = workdir();
    let s = b.session(wd.path(), opts(&run)).await.expect("session");
    (run, wd, s)
}

/// How many containers (any state) carry `atp.managed=true` and this run id, counted with a raw
/// engine query independent of the backend's own `gc`.
pub async fn count(b: &DockerBackend, run: &RunId) -> usize {
    let docker = b.client().await.expect("engine client");
    let filters: HashMap<&str, Vec<String>> = HashMap::from([(
        "label",
        vec![
            format!("{LABEL_MANAGED}=true"),
            format!("{LABEL_RUN_ID}={run}"),
        ],
    )]);
    docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("list containers")
        .len()
}

/// Assert the run left no container behind.
pub async fn assert_no_leak(b: &DockerBackend, run: &RunId) {
    assert_eq!(count(b, run).await, 0, "containers of run {run} leaked");
}

/// Skip the test (returning early) when no engine is available.
#[macro_export]
macro_rules! engine_or_skip {
    ($name:expr) => {
        match common::backend($name).await {
            Some(b) => b,
            None => return,
        }
    };
}

/// A fresh temp dir as a workdir.
pub fn workdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// The backend as a trait object (what callers normally hold).
pub fn dyn_backend(b: &DockerBackend) -> &dyn ComputeBackend {
    b
}
