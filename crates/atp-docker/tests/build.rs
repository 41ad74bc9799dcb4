//! The classic-builder image build through `DockerBackend::build_image` on the real engine
//! (FROM the test image, offline).

use std::collections::BTreeMap;

use atp_docker::build::{BuildError, BuildEvent, BuildRequest, ContextFile};
use atp_docker::{DockerBackend, DockerConfig};
use atp_test_support::{raw_docker, test_image};
use bollard::query_parameters::RemoveImageOptions;
use bollard::Docker;

fn random_tag() -> String {
    format!(
        "atp-test-build-{}:latest",
        &uuid_like()[..12].to_ascii_lowercase()
    )
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:032x}", nanos ^ (u128::from(std::process::id()) << 64))
        .chars()
        .rev()
        .collect()
}

async fn remove(docker: &Docker, image: &str) {
    let _ = docker
        .remove_image(
            image,
            Some(RemoveImageOptions {
                force: true,
                ..Default::default()
            }),
            None,
        )
        .await;
}

#[tokio::test]
async fn builds_with_context_labels_offline_and_streams_steps() {
    let Some(b) = atp_test_support::docker(module_path!()).await else {
        return;
    };
    let docker = raw_docker();
    let base = test_image();
    let tag = random_tag();
    let dockerfile = format!(
        "FROM {base}\nCOPY [\"hello.txt\", \"/opt/\"]\nRUN cat /opt/hello.txt && echo built-offline\n"
    );
    let mut events = Vec::new();
    let built = b
        .build_image(
            BuildRequest {
                dockerfile,
                context: vec![ContextFile::new("hello.txt", "hello from context\n")],
                tag: tag.clone(),
                labels: BTreeMap::from([("atp.test-extra".into(), "yes".into())]),
                no_cache: true,
                network_mode: Some("none".into()),
            },
            |e| events.push(e.clone()),
        )
        .await;
    let inspect = docker.inspect_image(&tag).await;
    remove(&docker, &tag).await;
    let built = built.expect("build succeeds");
    // The build API's labels become one more (LABEL) step of the classic builder.
    assert_eq!(built.steps, 4);
    assert!(built.id.starts_with("sha256:"), "{}", built.id);
    let steps: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            BuildEvent::Step {
                index,
                total,
                instruction,
            } => Some((*index, *total, instruction.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(steps.len(), 4, "{events:?}");
    assert_eq!(steps[2].0, 3);
    assert!(steps[2].2.starts_with("RUN cat"), "{steps:?}");
    assert!(events.contains(&BuildEvent::Output("hello from context".into())));
    assert!(events.contains(&BuildEvent::Output("built-offline".into())));
    let labels = inspect
        .expect("image exists after build")
        .config
        .and_then(|c| c.labels)
        .unwrap_or_default();
    assert_eq!(
        labels.get("atp.test-extra").map(String::as_str),
        Some("yes")
    );
}

#[tokio::test]
async fn failing_step_is_named_with_its_output() {
    let Some(b) = atp_test_support::docker(module_path!()).await else {
        return;
    };
    let docker = raw_docker();
    let base = test_image();
    let tag = random_tag();
    let dockerfile = format!(
        "FROM {base}\nENV A=1\nRUN echo first-line && echo the-reason >&2 && exit 3\nRUN echo never\n"
    );
    let result = b
        .build_image(
            BuildRequest {
                dockerfile,
                tag: tag.clone(),
                no_cache: true,
                network_mode: Some("none".into()),
                ..Default::default()
            },
            |_| {},
        )
        .await;
    let err = result.expect_err("the RUN step fails");
    if let BuildError::StepFailed {
        last_image: Some(id),
        ..
    } = &err
    {
        remove(&docker, id).await;
    }
    remove(&docker, &tag).await;
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "{msg}");
    match err {
        BuildError::StepFailed {
            step,
            message,
            last_lines,
            ..
        } => {
            assert!(step.starts_with("Step 3/4 : RUN echo first-line"), "{step}");
            assert!(message.contains("non-zero code: 3"), "{message}");
            assert!(
                last_lines.iter().any(|l| l == "first-line"),
                "{last_lines:?}"
            );
            assert!(
                last_lines.iter().any(|l| l == "the-reason"),
                "{last_lines:?}"
            );
        }
        other => panic!("expected StepFailed, got {other:?}"),
    }
    assert!(
        docker.inspect_image(&tag).await.is_err(),
        "a failed build must not be tagged"
    );
}

#[tokio::test]
async fn network_none_really_has_no_network() {
    let Some(b) = atp_test_support::docker(module_path!()).await else {
        return;
    };
    let docker = raw_docker();
    let base = test_image();
    let tag = random_tag();
    // With networking disabled the RUN container has only a loopback interface.
    let dockerfile =
        format!("FROM {base}\nRUN ls /sys/class/net && test \"$(ls /sys/class/net)\" = lo\n");
    let result = b
        .build_image(
            BuildRequest {
                dockerfile,
                tag: tag.clone(),
                network_mode: Some("none".into()),
                ..Default::default()
            },
            |_| {},
        )
        .await;
    remove(&docker, &tag).await;
    result.expect("only lo inside a network=none build");
}

#[tokio::test]
async fn unreachable_engine_is_reported_as_such() {
    // Nothing listens on 127.0.0.1:1.
    let b = DockerBackend::new(DockerConfig {
        host: Some("tcp://127.0.0.1:1".into()),
        ..DockerConfig::for_image("unused")
    });
    let err = b
        .build_image(
            BuildRequest {
                dockerfile: "FROM scratch\n".into(),
                tag: "atp-test-build-unreachable".into(),
                ..Default::default()
            },
            |_| {},
        )
        .await
        .expect_err("no engine there");
    assert!(matches!(err, BuildError::EngineUnavailable(_)), "{err:?}");
}
