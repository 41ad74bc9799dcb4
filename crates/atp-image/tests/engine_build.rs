#![allow(clippy::unwrap_used)]
//! Builds small specs on the local test image through the Engine API, offline, and checks what
//! the image holds. Needs a Docker engine and the test image (`cargo xtask test-image`); skips
//! loudly without them, fails instead when `ATP_REQUIRE_DOCKER=1` (atp-test-support's gate).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use atp_docker::build::{BuildError, BuildEvent, BuildRequest, ContextFile};
use atp_image::{ImagePins, ImageSpec, PinSource, Skeleton, Step};
use atp_test_support::{count_managed, raw_docker, test_image};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, LogsOptions, RemoveContainerOptions, RemoveImageOptions,
    WaitContainerOptions,
};
use bollard::Docker;
use futures::{FutureExt, StreamExt};
use std::panic::AssertUnwindSafe;

fn random_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", nanos & 0xffff_ffff_ffff, std::process::id())
}

fn skeleton() -> Skeleton {
    Skeleton::from_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/lean"))
        .expect("repo skeleton")
}

fn small_spec() -> ImageSpec {
    ImageSpec::new("<engine test>", test_image(), skeleton())
        .step(Step::Env(BTreeMap::from([
            ("GREETING".into(), "hello from the spec".into()),
            (
                "PATH".into(),
                "/opt/tool/bin:/usr/local/bin:/usr/bin:/bin".into(),
            ),
        ])))
        .step(Step::Run(atp_image::Commands::Many(vec![
            "mkdir -p /opt/tool/bin".into(),
            "echo \"$GREETING\" > /opt/tool/greeting".into(),
            "printf '#!/bin/sh\\necho tool-ran\\n' > /opt/tool/bin/atp-tool".into(),
            "chmod +x /opt/tool/bin/atp-tool".into(),
        ])))
        .step(Step::Workdir("/workspace".into()))
        .step(Step::CopySkeleton("/workspace".into()))
        .step(Step::Run(
            "cat lean-toolchain > /opt/tool/seen-toolchain".into(),
        ))
        .label("org.example.purpose", "atp-image engine test")
}

fn context(spec: &ImageSpec) -> Vec<ContextFile> {
    spec.build_context()
        .into_iter()
        .map(|(name, bytes)| ContextFile::new(name, bytes))
        .collect()
}

async fn remove_image(docker: &Docker, image: &str) {
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

/// Run `script` in a fresh offline container of `image`; (exit code, combined output).
async fn run_in(docker: &Docker, image: &str, script: &str) -> (i64, String, String) {
    let run_id = format!("img-test-{}", random_suffix());
    let name = format!("atp-test-build-ctr-{}", random_suffix());
    let labels = HashMap::from([
        ("atp.run-id".to_string(), run_id.clone()),
        ("atp.managed".to_string(), "true".to_string()),
    ]);
    docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.clone()),
                ..Default::default()
            }),
            ContainerCreateBody {
                image: Some(image.to_string()),
                cmd: Some(vec!["sh".into(), "-c".into(), script.into()]),
                labels: Some(labels),
                host_config: Some(HostConfig {
                    network_mode: Some("none".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .expect("create container");
    docker
        .start_container(
            &name,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .expect("start");
    let mut code = -1;
    let mut wait = docker.wait_container(&name, None::<WaitContainerOptions>);
    while let Some(r) = wait.next().await {
        match r {
            Ok(r) => code = r.status_code,
            Err(bollard::errors::Error::DockerContainerWaitError { code: c, .. }) => code = c,
            Err(e) => panic!("wait: {e}"),
        }
    }
    let mut out = String::new();
    let mut logs = docker.logs(
        &name,
        Some(LogsOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        }),
    );
    while let Some(chunk) = logs.next().await {
        out.push_str(&chunk.expect("logs").to_string());
    }
    docker
        .remove_container(
            &name,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await
        .expect("remove container");
    (code, out, run_id)
}

#[tokio::test]
async fn spec_built_offline_holds_env_files_workdir_and_labels() {
    let Some(b) = atp_test_support::docker(module_path!()).await else {
        return;
    };
    let docker = raw_docker();
    let spec = small_spec();
    let tag = format!("atp-test-build-{}:latest", random_suffix());
    let mut steps = 0;
    let built = b
        .build_image(
            BuildRequest {
                dockerfile: spec.to_dockerfile().expect("render"),
                context: context(&spec),
                tag: tag.clone(),
                no_cache: true,
                network_mode: Some("none".into()),
                ..Default::default()
            },
            |e| {
                if matches!(e, BuildEvent::Step { .. }) {
                    steps += 1
                }
            },
        )
        .await;
    let checks = async {
        let built = built.expect("spec builds");
        // FROM + 5 steps + pin ENV + LABEL.
        assert_eq!(built.steps, 8);
        assert_eq!(steps, 8);

        let image = docker.inspect_image(&tag).await.expect("inspect");
        let config = image.config.expect("config");
        assert_eq!(config.working_dir.as_deref(), Some("/workspace"));
        let labels: BTreeMap<String, String> =
            config.labels.unwrap_or_default().into_iter().collect();
        for (k, v) in spec.image_labels().expect("labels") {
            assert_eq!(labels.get(&k), Some(&v), "label {k}");
        }
        let pins = ImagePins::from_labels(&labels).expect("atp labels present");
        assert_eq!(pins.source, PinSource::Labels);
        assert_eq!(pins.lean_toolchain, spec.pins().unwrap().lean_toolchain);
        assert_eq!(pins.spec_hash, Some(spec.spec_hash().unwrap()));
        let env = config.env.unwrap_or_default();
        assert!(
            env.contains(&"GREETING=hello from the spec".to_string()),
            "{env:?}"
        );
        assert!(
            env.contains(&format!("ATP_SPEC_HASH={}", spec.spec_hash().unwrap())),
            "{env:?}"
        );

        let toolchain = String::from_utf8(spec.skeleton.files()["lean-toolchain"].clone()).unwrap();
        let lakefile = String::from_utf8(spec.skeleton.files()["lakefile.toml"].clone()).unwrap();
        let (code, out, run_id) = run_in(
            &docker,
            &tag,
            "pwd; echo \"$GREETING\"; cat /opt/tool/greeting; atp-tool; \
             echo \"$ATP_LEAN_TOOLCHAIN|$ATP_MATHLIB_REV\"; cat /opt/tool/seen-toolchain; \
             echo ---; cat /workspace/lakefile.toml",
        )
        .await;
        assert_eq!(code, 0, "{out}");
        let pins = spec.pins().unwrap();
        let expected = format!(
            "/workspace\nhello from the spec\nhello from the spec\ntool-ran\n{}|{}\n{toolchain}---\n{lakefile}",
            pins.lean_toolchain, pins.mathlib_rev
        );
        assert_eq!(out, expected);
        assert_eq!(count_managed(Some(&run_id)).await, 0);
    };
    let outcome = AssertUnwindSafe(checks).catch_unwind().await;
    remove_image(&docker, &tag).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test]
async fn modal_layers_build_to_the_same_files_and_pins() {
    let Some(b) = atp_test_support::docker(module_path!()).await else {
        return;
    };
    let docker = raw_docker();
    let spec = small_spec();
    // Modal's layers, chained into one Dockerfile with NO build context: proves the skeleton is
    // written by commands and the env is literal.
    let layers = spec.to_modal_layers().expect("modal layers");
    let mut dockerfile = format!("FROM {}\n", layers[0].base.as_deref().expect("base"));
    for layer in &layers {
        for command in &layer.dockerfile_commands {
            dockerfile.push_str(command);
            dockerfile.push('\n');
        }
    }
    let tag = format!("atp-test-build-{}:latest", random_suffix());
    let built = b
        .build_image(
            BuildRequest {
                dockerfile,
                context: Vec::new(),
                tag: tag.clone(),
                no_cache: true,
                network_mode: Some("none".into()),
                ..Default::default()
            },
            |_| {},
        )
        .await;
    let check = async {
        built.expect("modal layers build");
        let (code, out, _) = run_in(
            &docker,
            &tag,
            "pwd; cat /workspace/lean-toolchain /workspace/lakefile.toml; \
             echo \"$ATP_LEAN_TOOLCHAIN|$ATP_MATHLIB_REV|$ATP_SPEC_HASH\"; atp-tool",
        )
        .await;
        assert_eq!(code, 0, "{out}");
        let files = spec.skeleton.files();
        let pins = spec.pins().unwrap();
        let expected = format!(
            "/workspace\n{}{}{}|{}|{}\ntool-ran\n",
            String::from_utf8_lossy(&files["lean-toolchain"]),
            String::from_utf8_lossy(&files["lakefile.toml"]),
            pins.lean_toolchain,
            pins.mathlib_rev,
            spec.spec_hash().unwrap()
        );
        assert_eq!(out, expected);
    };
    let outcome = AssertUnwindSafe(check).catch_unwind().await;
    remove_image(&docker, &tag).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test]
async fn failing_run_step_is_named() {
    let Some(b) = atp_test_support::docker(module_path!()).await else {
        return;
    };
    let docker = raw_docker();
    let spec = small_spec().step(Step::Run(atp_image::Commands::Many(vec![
        "echo about-to-fail".into(),
        "ls /no/such/dir".into(),
    ])));
    let tag = format!("atp-test-build-{}:latest", random_suffix());
    let result = b
        .build_image(
            BuildRequest {
                dockerfile: spec.to_dockerfile().expect("render"),
                context: context(&spec),
                tag: tag.clone(),
                no_cache: true,
                network_mode: Some("none".into()),
                ..Default::default()
            },
            |_| {},
        )
        .await;
    let err = result.expect_err("the last RUN fails");
    if let BuildError::StepFailed {
        last_image: Some(id),
        ..
    } = &err
    {
        remove_image(&docker, id).await;
    }
    remove_image(&docker, &tag).await;
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "{msg}");
    assert!(
        msg.contains("Step 7/9 : RUN echo about-to-fail"),
        "error must name the step: {msg}"
    );
    assert!(msg.contains("non-zero code"), "{msg}");
    match err {
        BuildError::StepFailed { last_lines, .. } => {
            assert!(
                last_lines.iter().any(|l| l == "about-to-fail"),
                "{last_lines:?}"
            );
            assert!(
                last_lines.iter().any(|l| l.contains("/no/such/dir")),
                "{last_lines:?}"
            );
        }
        other => panic!("expected StepFailed, got {other:?}"),
    }
}

/// Quotes, backslashes, `$` and spaces survive both renderings literally.
#[tokio::test]
async fn odd_values_stay_literal_in_both_renderings() {
    let Some(b) = atp_test_support::docker(module_path!()).await else {
        return;
    };
    let docker = raw_docker();
    let mut files: Vec<(String, Vec<u8>)> = skeleton()
        .files()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    files.push((
        "read me.txt".into(),
        b"it's \"quoted\" $HOME \\n\n".to_vec(),
    ));
    let skeleton = Skeleton::from_files("<odd>", files).expect("skeleton");
    let odd = r#"a "quoted" \back\slash value"#;
    let spec = ImageSpec::new("<odd>", test_image(), skeleton)
        .step(Step::Env(BTreeMap::from([("ODD".into(), odd.into())])))
        .step(Step::CopySkeleton("/work space".into()))
        .label("org.example.dollar", "$HOME and ${PATH}");

    let modal = spec.to_modal_layers().expect("modal");
    let mut modal_dockerfile = format!("FROM {}\n", test_image());
    for command in modal.iter().flat_map(|l| &l.dockerfile_commands) {
        modal_dockerfile.push_str(command);
        modal_dockerfile.push('\n');
    }
    let tag_docker = format!("atp-test-build-{}-d:latest", random_suffix());
    let tag_modal = format!("atp-test-build-{}-m:latest", random_suffix());
    let docker_built = b
        .build_image(
            BuildRequest {
                dockerfile: spec.to_dockerfile().expect("render"),
                context: context(&spec),
                tag: tag_docker.clone(),
                network_mode: Some("none".into()),
                ..Default::default()
            },
            |_| {},
        )
        .await;
    let modal_built = b
        .build_image(
            BuildRequest {
                dockerfile: modal_dockerfile,
                tag: tag_modal.clone(),
                network_mode: Some("none".into()),
                ..Default::default()
            },
            |_| {},
        )
        .await;
    let check = async {
        docker_built.expect("dockerfile builds");
        modal_built.expect("modal layers build");
        let script = "printf '%s|' \"$ODD\"; cat '/work space/read me.txt'";
        let expected = format!("{odd}|it's \"quoted\" $HOME \\n\n");
        for tag in [&tag_docker, &tag_modal] {
            let (code, out, _) = run_in(&docker, tag, script).await;
            assert_eq!(code, 0, "{tag}: {out}");
            assert_eq!(out, expected, "{tag}");
        }
        let labels = docker
            .inspect_image(&tag_docker)
            .await
            .expect("inspect")
            .config
            .and_then(|c| c.labels)
            .unwrap_or_default();
        assert_eq!(
            labels.get("org.example.dollar").map(String::as_str),
            Some("$HOME and ${PATH}")
        );
    };
    let outcome = AssertUnwindSafe(check).catch_unwind().await;
    remove_image(&docker, &tag_docker).await;
    remove_image(&docker, &tag_modal).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
