//! Test support shared by atp's integration tests (a dev-dependency only; never shipped).
//!
//! - The **engine gate**: [`docker`] gives a backend on the test image, or `None` after a loud
//!   `!!! SKIPPED` line on stderr when no engine or image is there — unless
//!   `ATP_REQUIRE_DOCKER=1`, when the test fails instead. [`skip`] is the same rule for any
//!   other missing prerequisite.
//! - The **test images**: [`test_image`] (`ATP_TEST_IMAGE`, default `atp-test:latest`, built by
//!   `cargo xtask test-image`) and [`agents_image`] (`ATP_AGENTS_IMAGE`, default
//!   `atp-agents-test:latest`, built by `cargo xtask agents-image`).
//! - [`fixture`]: the repository's `fixtures/` directory; [`count_managed`]: containers of a run
//!   counted by a raw engine query, independent of the backend's own `gc`; [`raw_docker`]: a
//!   bollard client for tests that inspect the engine directly (atp's own API never hands one
//!   out).
//! - [`variant_image`]: a small image built `FROM` the test image with a few extra `RUN` lines
//!   (an image with a busybox `/bin/sh`, without `mktemp`, …), for the image-contract tests;
//!   the test image itself is never changed.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use atp_backend::layout::{LABEL_MANAGED, LABEL_RUN_ID};
use atp_backend::{ComputeBackend, NetworkMode, RunId};
use atp_docker::{DockerBackend, DockerConfig};

/// Whether missing prerequisites must fail tests (`ATP_REQUIRE_DOCKER=1`, set by CI).
pub fn required() -> bool {
    std::env::var("ATP_REQUIRE_DOCKER").is_ok_and(|v| v == "1")
}

/// The stand-in test image.
pub fn test_image() -> String {
    std::env::var("ATP_TEST_IMAGE")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "atp-test:latest".into())
}

/// The agents test image (the test image plus the real agent CLIs).
pub fn agents_image() -> String {
    std::env::var("ATP_AGENTS_IMAGE")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "atp-agents-test:latest".into())
}

/// Report a missing prerequisite: panic under `ATP_REQUIRE_DOCKER=1`, else print a loud skip
/// line straight to stderr (the harness captures `eprintln!` of passing tests).
pub fn skip(test: &str, why: &str) {
    if required() {
        panic!("{test}: ATP_REQUIRE_DOCKER=1 but: {why}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n!!! SKIPPED {test}: {why}\n!!! (set ATP_REQUIRE_DOCKER=1 to make this a failure)\n"
    );
}

/// A Docker backend on `image` with networking disabled, or `None` (after [`skip`]) when the
/// engine or the image is missing.
pub async fn docker_with(test: &str, image: &str, network: NetworkMode) -> Option<DockerBackend> {
    let b = DockerBackend::new(DockerConfig {
        network,
        ..DockerConfig::for_image(image)
    });
    let problem = match b.health().await {
        Err(e) => Some(e.to_string()),
        Ok(_) => b.image_info().await.err().map(|e| e.to_string()),
    };
    match problem {
        None => Some(b),
        Some(p) => {
            skip(test, &format!("needs a Docker engine and {image}: {p}"));
            None
        }
    }
}

/// A network-less Docker backend on [`test_image`], or `None` after [`skip`].
pub async fn docker(test: &str) -> Option<DockerBackend> {
    docker_with(test, &test_image(), NetworkMode::None).await
}

/// A bollard client on the engine tests use (`DOCKER_HOST` or the default socket).
pub fn raw_docker() -> bollard::Docker {
    bollard::Docker::connect_with_defaults().expect("engine client")
}

/// Build (or reuse, the engine caches the steps) `atp-test-variant-NAME:<base id>` from
/// [`test_image`] plus `run` lines, offline. `None` after [`skip`] when the engine or the test
/// image is missing.
pub async fn variant_image(test: &str, name: &str, run: &[&str]) -> Option<String> {
    let b = docker(test).await?;
    let base = b.image_info().await.expect("test image").id;
    let short: String = base
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect();
    let tag = format!("atp-test-variant-{name}:{short}");
    let mut dockerfile = format!(
        "FROM {base}
"
    );
    for line in run {
        dockerfile.push_str(&format!(
            "RUN {line}
"
        ));
    }
    let req = atp_docker::build::BuildRequest {
        dockerfile,
        context: Vec::new(),
        tag: tag.clone(),
        labels: Default::default(),
        no_cache: false,
        network_mode: Some("none".into()),
    };
    b.build_image(req, |_| {})
        .await
        .unwrap_or_else(|e| panic!("{test}: building {tag}: {e}"));
    Some(tag)
}

/// The repository's `fixtures/NAME`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Containers (any state) labelled `atp.managed=true` and `atp.run-id=RUN`, counted with a raw
/// engine query; `None` counts every managed container.
pub async fn count_managed(run: Option<&str>) -> usize {
    let docker = raw_docker();
    let mut labels = vec![format!("{LABEL_MANAGED}=true")];
    if let Some(r) = run {
        labels.push(format!("{LABEL_RUN_ID}={r}"));
    }
    let filters: HashMap<&str, Vec<String>> = HashMap::from([("label", labels)]);
    docker
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("list containers")
        .len()
}

/// Records the labels of every container of one run as the engine creates it, from a live
/// event subscription — not from the engine's event history, which keeps only the last 256
/// events of the whole engine (a long or parallel run overflows it).
#[derive(Debug)]
pub struct CreationRecorder {
    seen: std::sync::Arc<std::sync::Mutex<Vec<HashMap<String, String>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl CreationRecorder {
    /// Start recording the creations of run `run` (from one second before now).
    pub async fn start(run: &str) -> CreationRecorder {
        use futures::StreamExt;
        let docker = bollard::Docker::connect_with_defaults().expect("engine client");
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64 - 1)
            .unwrap_or(0);
        let filters: HashMap<&str, Vec<String>> = HashMap::from([
            ("type", vec!["container".to_string()]),
            ("event", vec!["create".to_string()]),
            (
                "label",
                vec![
                    format!("{LABEL_MANAGED}=true"),
                    format!("{LABEL_RUN_ID}={run}"),
                ],
            ),
        ]);
        let opts = bollard::query_parameters::EventsOptionsBuilder::new()
            .since(&since.to_string())
            .filters(&filters)
            .build();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&seen);
        let mut stream = docker.events(Some(opts));
        // The subscription is open before `start` returns: the first poll sends the request.
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            loop {
                let next = futures::future::poll_fn(|cx| {
                    let p = stream.poll_next_unpin(cx);
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                    p
                })
                .await;
                match next {
                    Some(Ok(e)) => {
                        let labels = e
                            .actor
                            .and_then(|a| a.attributes)
                            .unwrap_or_default()
                            .into_iter()
                            .collect();
                        sink.lock().unwrap_or_else(|e| e.into_inner()).push(labels);
                    }
                    Some(Err(e)) => panic!("engine event stream: {e}"),
                    None => break,
                }
            }
        });
        let _ = ready_rx.await;
        CreationRecorder { seen, task }
    }

    /// Stop and return the labels of every creation seen (after a short drain).
    pub async fn stop(self) -> Vec<HashMap<String, String>> {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        self.task.abort();
        let v = self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        v
    }
}

/// Assert that run `run` left no container behind.
pub async fn assert_no_leak(run: &RunId) {
    assert_eq!(
        count_managed(Some(run.as_str())).await,
        0,
        "containers of run {run} leaked"
    );
}

/// The backend as a trait object.
pub fn dyn_backend(b: &DockerBackend) -> &dyn ComputeBackend {
    b
}
