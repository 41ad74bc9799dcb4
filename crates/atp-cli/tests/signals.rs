//! Real signals to the real binary: `atp verify` on a proof that never finishes (the stand-in
//! `lake` hangs on `fixtures/hang`), then SIGINT or SIGTERM through `kill` — on Docker and on
//! the fake Modal — must exit 130 / 143, leave no sandbox of the run, and write result.json with
//! status `cancelled`. `atp build-image` interrupted mid-step leaves no build container and no
//! tag.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use atp_backend::RunId;
use atp_test_support::{count_managed, fixture, raw_docker, test_image};
use bollard::query_parameters::{ListContainersOptionsBuilder, TopOptions};

use crate::common::{engine, fake, ATP};

/// Poll `cond` every 200 ms for up to `secs`; whether it became true.
async fn eventually<F, Fut>(secs: u64, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// Whether the container `id` runs a process whose command line contains `needle`.
async fn runs(id: &str, needle: &str) -> bool {
    match raw_docker()
        .top_processes(
            id,
            Some(TopOptions {
                ps_args: "-ef".into(),
            }),
        )
        .await
    {
        Ok(top) => top
            .processes
            .unwrap_or_default()
            .iter()
            .any(|p| p.iter().any(|c| c.contains(needle))),
        Err(_) => false,
    }
}

/// Ids of the containers labelled with `label=value`.
async fn containers_with(label: &str, value: &str) -> Vec<String> {
    let filters = std::collections::HashMap::from([("label", vec![format!("{label}={value}")])]);
    raw_docker()
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("list containers")
        .into_iter()
        // the verifier's self-test canaries (run once per image id) are not the work under test
        .filter(|c| {
            c.labels
                .as_ref()
                .is_none_or(|l| !l.contains_key(atp_backend::layout::LABEL_PURPOSE))
        })
        .filter_map(|c| c.id)
        .collect()
}

/// The first of `ids` whose processes include `needle`.
async fn running(ids: Vec<String>, needle: &str) -> Option<String> {
    for id in ids {
        if runs(&id, needle).await {
            return Some(id);
        }
    }
    None
}

fn kill(pid: u32, signal: &str) {
    let st = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(st.success(), "kill -{signal} {pid}");
}

fn result_json(out: &Path) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(out.join("logs/result.json"))
            .expect("result.json is written on a signal"),
    )
    .expect("result.json is JSON")
}

/// Wait for the child to exit (bounded); its exit code and stderr.
async fn finish(child: tokio::process::Child) -> (i32, String) {
    let o = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("atp exits after the signal")
        .expect("wait");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_and_sigterm_mid_verification_on_docker_leave_nothing_and_record_cancelled() {
    let test = "sigint_and_sigterm_mid_verification_on_docker";
    if engine(test).await.is_none() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    for (signal, want) in [("INT", 130), ("TERM", 143)] {
        let run = RunId::new();
        let out = tmp.path().join(signal);
        let child = tokio::process::Command::new(ATP)
            .arg("verify")
            .arg(fixture("hang"))
            .args(["--image", &test_image(), "--timeout", "600", "--run-id"])
            .arg(run.as_str())
            .arg("--output")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("atp starts");
        let pid = child.id().expect("pid");
        // Mid-verification: the run's container exists and the stand-in compiler is running.
        let started = eventually(60, || async {
            running(containers_with("atp.run-id", run.as_str()).await, "lake")
                .await
                .is_some()
        })
        .await;
        assert!(started, "SIG{signal}: the compile never started");
        kill(pid, signal);
        let (code, stderr) = finish(child).await;
        assert_eq!(code, want, "SIG{signal}: {stderr}");
        assert!(
            stderr.contains(&format!("SIG{signal} received")),
            "{stderr}"
        );
        assert_eq!(
            count_managed(Some(run.as_str())).await,
            0,
            "SIG{signal}: a container of the run was left"
        );
        let r = result_json(&out);
        assert_eq!(r["status"], "cancelled", "SIG{signal}: {r}");
        assert_eq!(r["error"]["kind"], "cancelled");
        assert_eq!(r["run_id"], run.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigint_exits_at_once_and_still_removes_the_sandbox() {
    let test = "a_second_sigint_exits_at_once_and_still_removes_the_sandbox";
    if engine(test).await.is_none() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let run = RunId::new();
    let child = tokio::process::Command::new(ATP)
        .arg("verify")
        .arg(fixture("hang"))
        .args([
            "--image",
            &test_image(),
            "--run-id",
            run.as_str(),
            "--output",
        ])
        .arg(tmp.path().join("o"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("atp starts");
    let pid = child.id().expect("pid");
    // Any sandbox of the run (the image's self-test runs first on a new image id): a compile
    // under way in one of them.
    let started = eventually(120, || async {
        for id in containers_with("atp.run-id", run.as_str()).await {
            if runs(&id, "lake").await {
                return true;
            }
        }
        false
    })
    .await;
    assert!(started, "the compile never started");
    kill(pid, "INT");
    kill(pid, "INT");
    let (code, stderr) = finish(child).await;
    assert_eq!(code, 130, "{stderr}");
    assert_eq!(count_managed(Some(run.as_str())).await, 0, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_and_sigterm_mid_verification_on_modal_terminate_the_sandbox() {
    let Some(fake) = fake("sigint_and_sigterm_mid_verification_on_modal").await else {
        return;
    };
    let home = tempfile::tempdir().expect("tmp");
    for (signal, want) in [("INT", 130), ("TERM", 143)] {
        let run = RunId::new();
        let out = home.path().join(signal);
        let child = tokio::process::Command::new(ATP)
            .arg("verify")
            .arg(fixture("hang"))
            .args(["--backend", "modal", "--timeout", "600", "--run-id"])
            .arg(run.as_str())
            .arg("--output")
            .arg(&out)
            .env("MODAL_SERVER_URL", fake.url())
            .env("MODAL_TOKEN_ID", "ak-signal-test")
            .env("MODAL_TOKEN_SECRET", "as-signal-test-secret")
            .env("HOME", home.path())
            .env("ATP_MODAL_APP", "atp-signal-test")
            .env_remove("MODAL_PROFILE")
            .env_remove("MODAL_CONFIG_PATH")
            .env_remove("ATP_BACKEND")
            .env_remove("ATP_IMAGE")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("atp starts");
        let pid = child.id().expect("pid");
        let ours = |fake: &atp_modal_fake::FakeModal| {
            fake.sandboxes()
                .into_iter()
                .filter(|s| s.tags.get("atp.run-id").map(String::as_str) == Some(run.as_str()))
                .filter(|s| !s.tags.contains_key(atp_backend::layout::LABEL_PURPOSE))
                .collect::<Vec<_>>()
        };
        let mut container = None;
        for _ in 0..120 {
            let ids = ours(&fake)
                .into_iter()
                .filter_map(|s| s.container)
                .collect();
            container = running(ids, "lake").await;
            if container.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        let container = container
            .unwrap_or_else(|| panic!("SIG{signal}: the compile never started on the fake"));
        kill(pid, signal);
        let (code, stderr) = finish(child).await;
        assert_eq!(code, want, "SIG{signal}: {stderr}");
        let sandboxes = ours(&fake);
        // the verifier's two: the candidate's build and the original's check
        assert_eq!(sandboxes.len(), 2, "{sandboxes:?}");
        assert!(
            sandboxes.iter().all(|s| s.terminated),
            "SIG{signal}: the Modal sandbox was not terminated"
        );
        let gone = eventually(20, || async {
            raw_docker()
                .inspect_container(&container, None)
                .await
                .is_err()
        })
        .await;
        assert!(
            gone,
            "SIG{signal}: the fake's container {container} is still there"
        );
        let r = result_json(&out);
        assert_eq!(r["status"], "cancelled", "SIG{signal}: {r}");
    }
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_build_image_cancels_the_build_and_leaves_no_container() {
    let test = "sigint_during_build_image_cancels_the_build";
    if engine(test).await.is_none() {
        return;
    }
    let nonce = RunId::new().short();
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir(dir.path().join("lean")).expect("mkdir");
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/lean");
    for f in ["lean-toolchain", "lakefile.toml"] {
        std::fs::copy(images.join(f), dir.path().join("lean").join(f)).expect("copy");
    }
    std::fs::write(
        dir.path().join("spec.toml"),
        format!(
            "base = \"{}\"\n[[step]]\nrun = \"echo build-{nonce} && sleep 600\"\n[[step]]\ncopy_skeleton = \"/workspace\"\n",
            test_image()
        ),
    )
    .expect("spec");
    let tag = format!("atp-test-build-cancel-{nonce}:latest");
    let child = tokio::process::Command::new(ATP)
        .args([
            "build-image",
            "--network",
            "none",
            "--no-cache",
            "--tag",
            &tag,
            "--spec",
        ])
        .arg(dir.path().join("spec.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("atp starts");
    let pid = child.id().expect("pid");
    let needle = format!("build-{nonce}");
    let step_containers = || async {
        let all = raw_docker()
            .list_containers(Some(ListContainersOptionsBuilder::new().all(true).build()))
            .await
            .expect("list");
        all.into_iter()
            .filter(|c| {
                c.command
                    .as_deref()
                    .is_some_and(|cmd| cmd.contains(&needle))
            })
            .filter_map(|c| c.id)
            .collect::<Vec<_>>()
    };
    let running = eventually(60, || async { !step_containers().await.is_empty() }).await;
    assert!(running, "the build step never started");
    kill(pid, "INT");
    let (code, stderr) = finish(child).await;
    assert_eq!(code, 130, "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let cleaned = eventually(60, || async { step_containers().await.is_empty() }).await;
    assert!(
        cleaned,
        "the build step's container outlived the cancelled build"
    );
    assert!(
        raw_docker().inspect_image(&tag).await.is_err(),
        "a cancelled build must not be tagged"
    );
}
