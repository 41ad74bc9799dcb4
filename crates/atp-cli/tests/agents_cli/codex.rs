//! Codex through `atp prove`: the real Codex CLI against the fake's Responses API.

use atp_model_fake::{policy, ModelFake, Script, Turn, Usage};

use super::common::{credential_probe, fake_usage, priced, prove, ready, request_with, Invocation};

const KEY: &str = "sk-openai-test-key-never-printed";
const LOGIN_KEY: &str = "sk-codex-login-file-secret";

fn codex(fake: &ModelFake) -> Invocation<'static> {
    Invocation::new("codex").api_base(format!("{}/v1", fake.url()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_proves_the_task_with_the_fakes_tokens_priced() {
    if !ready("codex_proves_the_task_with_the_fakes_tokens_priced").await {
        return;
    }
    let fake = ModelFake::start(Script::new(vec![
        policy::replace_sorry("simp").with_usage(Usage::new(1200, 80).with_cache(3000, 500)),
        Turn::text("Every sorry is replaced.").with_usage(Usage::new(1500, 40).with_cache(4000, 0)),
    ]))
    .await
    .expect("fake");
    let r = prove(&codex(&fake).secret("OPENAI_API_KEY", KEY)).await;
    assert_eq!(r.out.status.code(), Some(0), "{}", r.text());
    assert_eq!(r.result["status"], "verified", "{}", r.result);
    assert_eq!(r.usage(), fake_usage(&fake));
    // Codex reports no cost: priced from atp's table at the model's rates.
    assert_eq!(r.result["cost"]["source"], "priced", "{}", r.result["cost"]);
    let want = priced("gpt-5.5", r.usage());
    assert!((r.cost().expect("cost") - want).abs() < 1e-9);
    assert_eq!(
        r.result["metadata"]["credential_source"],
        "env OPENAI_API_KEY"
    );
    let main = fake
        .requests()
        .into_iter()
        .find(|q| !q.tools.is_empty())
        .expect("a model turn with tools");
    assert_eq!(main.model.as_deref(), Some("gpt-5.5"));
    assert!(main.path.ends_with("/v1/responses"), "{}", main.path);
    assert!(main
        .user_prompt
        .unwrap_or_default()
        .contains("Never change, weaken, rename"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_login_file_is_a_0600_copy_on_a_read_only_mount_and_never_in_out() {
    if !ready("codex_login_file_is_a_0600_copy_on_a_read_only_mount_and_never_in_out").await {
        return;
    }
    let fake = ModelFake::start(Script::new(vec![
        Turn::shell(credential_probe(&[
            "/run/atp-credentials/auth.json",
            "\"$HOME/.codex/auth.json\"",
        ])),
        policy::replace_sorry("simp"),
        Turn::text("Done."),
    ]))
    .await
    .expect("fake");
    let login = format!(r#"{{"OPENAI_API_KEY":"{LOGIN_KEY}","tokens":null,"last_refresh":null}}"#);
    let r = prove(&codex(&fake).home_file(".codex/auth.json", &login, LOGIN_KEY)).await;
    assert_eq!(r.out.status.code(), Some(0), "{}", r.text());
    assert_eq!(r.result["status"], "verified");
    assert!(r.result["metadata"]["credential_source"]
        .as_str()
        .is_some_and(|s| s.starts_with("file ") && s.ends_with(".codex/auth.json")));
    // What the shell printed reached the model in the next request.
    for needle in [
        "mode=600 /run/atp-credentials/auth.json",
        "mode=600 /root/.codex/auth.json",
        "MOUNT-READONLY",
    ] {
        assert!(request_with(&fake, needle).is_some(), "{needle} not seen");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_weakening_a_statement_is_unverified_and_named() {
    if !ready("codex_weakening_a_statement_is_unverified_and_named").await {
        return;
    }
    let fake = ModelFake::start(Script::new(vec![
        policy::weaken_statement("n + 0 = n", "True").expect("turn"),
        policy::replace_sorry("trivial"),
        Turn::text("Done."),
    ]))
    .await
    .expect("fake");
    let r = prove(&codex(&fake).secret("OPENAI_API_KEY", KEY)).await;
    assert_eq!(r.out.status.code(), Some(1), "{}", r.text());
    assert_eq!(r.result["status"], "unverified");
    assert!(
        r.violations()
            .iter()
            .any(|(k, d)| k == "statement_changed" && d.contains("add_zero'")),
        "{:?}",
        r.violations()
    );
}
