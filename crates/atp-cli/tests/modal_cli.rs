//! `atp` with `--backend modal` end to end: the real binary against the in-process fake Modal
//! (whose sandboxes are local containers of the test image with the stand-in `lake`).

use std::path::Path;

use atp_modal_fake::{FakeModal, FakeOptions};
use atp_test_support::fixture;

use crate::common::fake;

async fn atp(fake: &FakeModal, home: &Path, args: &[&str]) -> (i32, String, String) {
    let o = tokio::process::Command::new(crate::common::ATP)
        .args(args)
        .env("MODAL_SERVER_URL", fake.url())
        .env("MODAL_TOKEN_ID", "ak-cli-test")
        .env("MODAL_TOKEN_SECRET", "as-cli-test-secret")
        .env("HOME", home)
        .env("ATP_MODAL_APP", "atp-cli-test")
        .env_remove("MODAL_PROFILE")
        .env_remove("MODAL_CONFIG_PATH")
        .output()
        .await
        .expect("atp runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_verify_and_gc_run_on_modal() {
    let Some(fake) = fake(module_path!()).await else {
        return;
    };
    let home = tempfile::tempdir().expect("tmp");
    let (code, out, err) = atp(
        &fake,
        home.path(),
        &["--json", "doctor", "--backend", "modal"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["backend"], "modal");
    let creds = v["engine"]["details"]["credentials"]
        .as_str()
        .expect("credential source");
    assert!(creds.contains("MODAL_TOKEN_ID"), "{creds}");
    assert!(!out.contains("as-cli-test-secret") && !err.contains("as-cli-test-secret"));
    assert_eq!(v["image_check"]["status"], "ok");
    assert!(
        v["image_check"]["labels"]["atp.lean-toolchain"].is_string(),
        "{out}"
    );

    let tmp = tempfile::tempdir().expect("tmp");
    for (name, want) in [("clean", 0), ("sorry_theorem", 1)] {
        let outdir = tmp.path().join(name);
        let (code, out, err) = atp(
            &fake,
            home.path(),
            &[
                "verify",
                fixture(name).to_str().expect("utf8"),
                "--original",
                fixture("original").to_str().expect("utf8"),
                "--backend",
                "modal",
                "--timeout",
                "120",
                "--output",
                outdir.to_str().expect("utf8"),
            ],
        )
        .await;
        assert_eq!(code, want, "{name}: {out}{err}");
        assert!(outdir.join("logs/result.json").exists());
    }
    assert!(
        fake.sandboxes().len() >= 3,
        "probe + one sandbox per verify"
    );
    assert!(
        fake.sandboxes().iter().all(|s| s.terminated),
        "every sandbox terminated"
    );
    assert!(fake.sandboxes().iter().all(|s| s.network_blocked));

    let (code, out, err) = atp(&fake, home.path(), &["--json", "gc", "--backend", "modal"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["count"], 0, "nothing left to collect: {out}");

    let (code, _, err) = atp(
        &fake,
        home.path(),
        &["doctor", "--backend", "modal", "--image", "not-published"],
    )
    .await;
    assert_eq!(code, 1);
    let _ = err;
    fake.shutdown().await;
}

#[tokio::test]
async fn missing_modal_credentials_is_one_line_naming_modal_setup() {
    let home = tempfile::tempdir().expect("tmp");
    let o = tokio::process::Command::new(crate::common::ATP)
        .args(["doctor", "--backend", "modal"])
        .env("HOME", home.path())
        .env_remove("MODAL_TOKEN_ID")
        .env_remove("MODAL_TOKEN_SECRET")
        .env_remove("MODAL_CONFIG_PATH")
        .env_remove("MODAL_PROFILE")
        .output()
        .await
        .expect("atp runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("modal setup"),
        "{err}"
    );
    // `atp verify` keeps the error's kind in result.json.
    let out = home.path().join("v");
    let o = tokio::process::Command::new(crate::common::ATP)
        .args(["verify", "--backend", "modal", "--output"])
        .arg(&out)
        .arg(fixture("clean"))
        .env("HOME", home.path())
        .env_remove("MODAL_TOKEN_ID")
        .env_remove("MODAL_TOKEN_SECRET")
        .env_remove("MODAL_CONFIG_PATH")
        .env_remove("MODAL_PROFILE")
        .output()
        .await
        .expect("atp runs");
    assert_eq!(o.status.code(), Some(2));
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("logs/result.json")).expect("result.json"),
    )
    .expect("json");
    assert_eq!(r["status"], "error");
    assert_eq!(r["error"]["kind"], "credentials", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_modal_image_publishes_the_spec_and_the_backend_reads_its_pins() {
    let Some(fake) = fake(module_path!()).await else {
        return;
    };
    let home = tempfile::tempdir().expect("tmp");
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/open-atp.toml");
    let spec = spec.to_str().expect("utf8");
    let (code, out, err) = atp(
        &fake,
        home.path(),
        &[
            "--json",
            "build-modal-image",
            "--name",
            "cli-built",
            "--app",
            "cli-app",
            "--spec",
            spec,
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("stdout is only JSON");
    assert_eq!(v["tag"], "cli-built:latest");
    let id = v["image_id"].as_str().expect("image id").to_string();
    assert!(v["layers"].as_u64().expect("layers") >= 2);
    assert!(
        err.contains("Step 1/"),
        "build logs stream to stderr with --json: {err}"
    );
    assert_eq!(fake.builds(&id), 1);
    let (code, out, err) = atp(
        &fake,
        home.path(),
        &[
            "--json",
            "doctor",
            "--backend",
            "modal",
            "--image",
            "cli-built",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let d: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(d["image_check"]["id"], id.as_str());
    let pins = &v["pins"];
    assert_eq!(
        d["image_check"]["labels"]["atp.spec-hash"], pins["ATP_SPEC_HASH"],
        "the published image carries the spec's hash"
    );
    assert_eq!(
        d["image_check"]["labels"]["atp.lean-toolchain"],
        pins["ATP_LEAN_TOOLCHAIN"]
    );
    let (code, out, err) = atp(
        &fake,
        home.path(),
        &[
            "build-modal-image",
            "--name",
            "cli-built",
            "--app",
            "cli-app",
            "--spec",
            spec,
            "--force",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(fake.builds(&id), 2, "--force rebuilt the layers");
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prove_with_tactics_runs_on_modal_and_verifies_in_a_second_sandbox() {
    let Some(fake) = fake(module_path!()).await else {
        return;
    };
    let home = tempfile::tempdir().expect("tmp");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let (code, stdout, err) = atp(
        &fake,
        home.path(),
        &[
            "prove",
            fixture("tactics_closable").to_str().expect("utf8"),
            "--prover",
            "tactics",
            "--backend",
            "modal",
            "--network",
            "none",
            "--json",
            "--output",
            out.to_str().expect("utf8"),
        ],
    )
    .await;
    assert_eq!(code, 0, "{stdout}{err}");
    let r: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(r["status"], "verified");
    assert_eq!(r["image"]["backend"], "modal");
    // The candidate came back from the remote sandbox over the pull.
    let wd = std::fs::read_to_string(out.join("wd/Fixture.lean")).expect("pulled");
    assert!(wd.contains("focus (omega; done)"), "{wd}");
    let boxes: Vec<_> = fake
        .sandboxes()
        .into_iter()
        .filter(|s| s.tags.get("atp.run-id").map(String::as_str) == r["run_id"].as_str())
        // the verifier's self-test canaries (once per image id) are not this run's work
        .filter(|s| !s.tags.contains_key(atp_backend::layout::LABEL_PURPOSE))
        .collect();
    assert_eq!(
        boxes.len(),
        3,
        "the prover's sandbox and the verifier's two (build, check): {boxes:?}"
    );
    assert!(boxes.iter().all(|s| s.terminated && s.network_blocked));
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_proves_on_modal_and_the_verifier_runs_without_network() {
    use atp_model_fake::{policy, ModelFake};
    let opts = FakeOptions {
        docker_image: atp_test_support::agents_image(),
        // "The internet" of this test is the host's loopback, where the model fake listens.
        open_network_is_host: true,
        ..FakeOptions::default()
    };
    let fake = match FakeModal::start(opts).await {
        Ok(f) => f,
        Err(e) => {
            atp_test_support::skip(
                "claude_code_proves_on_modal_and_the_verifier_runs_without_network",
                &format!(
                    "needs the engine and {}: {e}",
                    atp_test_support::agents_image()
                ),
            );
            return;
        }
    };
    let model = ModelFake::start(policy::solve("simp", "Done."))
        .await
        .expect("model fake");
    let home = tempfile::tempdir().expect("tmp");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let o = tokio::process::Command::new(crate::common::ATP)
        .args([
            "prove",
            fixture("original").to_str().expect("utf8"),
            "--prover",
            "claude",
            "--backend",
            "modal",
            "--api-base",
            &model.url(),
            "--json",
            "--output",
            out.to_str().expect("utf8"),
        ])
        .env("MODAL_SERVER_URL", fake.url())
        .env("MODAL_TOKEN_ID", "ak-cli-test")
        .env("MODAL_TOKEN_SECRET", "as-cli-test-secret")
        .env("HOME", home.path())
        .env("ATP_MODAL_APP", "atp-cli-test")
        .env("ANTHROPIC_API_KEY", "sk-ant-modal-test")
        .env("CLAUDE_CODE_MAX_RETRIES", "1")
        .env_remove("CLAUDE_CODE_OAUTH_TOKEN")
        .env_remove("MODAL_PROFILE")
        .env_remove("MODAL_CONFIG_PATH")
        .output()
        .await
        .expect("atp runs");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(r["status"], "verified");
    assert_eq!(r["image"]["backend"], "modal");
    assert!(model
        .requests()
        .iter()
        .any(|q| q.tools.iter().any(|t| t == "Bash")));
    let boxes: Vec<_> = fake
        .sandboxes()
        .into_iter()
        .filter(|s| s.tags.get("atp.run-id").map(String::as_str) == r["run_id"].as_str())
        // the verifier's self-test canaries (once per image id) are not this run's work
        .filter(|s| !s.tags.contains_key(atp_backend::layout::LABEL_PURPOSE))
        .collect();
    // the agent's sandbox and the verifier's two (build, check)
    assert_eq!(boxes.len(), 3, "{boxes:?}");
    assert!(boxes.iter().all(|s| s.terminated), "{boxes:?}");
    assert_eq!(
        boxes.iter().filter(|s| s.network_blocked).count(),
        2,
        "the verifier's sandboxes have no network, the agent's has: {boxes:?}"
    );
    // The credential travelled in the exec, never in the sandbox's definition.
    assert!(boxes
        .iter()
        .all(|s| !s.env.values().any(|v| v.contains("sk-ant-modal-test"))));
    fake.shutdown().await;
}
