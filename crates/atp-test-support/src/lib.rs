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

/// Containers labelled `atp.managed=true` and `atp.run-id=RUN` **created** since `since_unix`
/// (seconds since the epoch) until now, counted from the engine's event log — so containers
/// already removed are counted too.
pub async fn count_created(run: &str, since_unix: i64) -> usize {
    created(run, since_unix).await.len()
}

/// The labels (and `name`, `image`) of every container of run `run` created since
/// `since_unix`, from the engine's event log (removed containers included).
pub async fn created(run: &str, since_unix: i64) -> Vec<HashMap<String, String>> {
    use futures::StreamExt;
    let docker = bollard::Docker::connect_with_defaults().expect("engine client");
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64 + 1)
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
        .since(&since_unix.to_string())
        .until(&until.to_string())
        .filters(&filters)
        .build();
    // An engine error (e.g. a slow engine under load) is retried, never read as "no events".
    let mut events = Vec::new();
    for attempt in 1..=3 {
        let got: Vec<_> = docker.events(Some(opts.clone())).collect().await;
        match got.into_iter().collect::<Result<Vec<_>, _>>() {
            Ok(e) => {
                events = e;
                break;
            }
            Err(e) if attempt < 3 => {
                eprintln!("engine events of run {run}: {e} (retrying)");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => panic!("engine events of run {run}: {e}"),
        }
    }
    events
        .into_iter()
        .map(|e| {
            e.actor
                .and_then(|a| a.attributes)
                .unwrap_or_default()
                .into_iter()
                .collect()
        })
        .collect()
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
