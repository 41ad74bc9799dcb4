//! OpenCode through `atp prove` (`deepseek`, `grok`): the real OpenCode CLI against the fake's
//! Chat Completions API.

use atp_model_fake::{policy, ModelFake, Script, Turn, Usage};

use super::common::{
    credential_probe, fake_usage_without_side, prove, ready, request_with, Invocation,
};

const KEY: &str = "sk-deepseek-test-key-never-printed";
const LOGIN_KEY: &str = "xai-login-file-secret";

/// Σ `part.cost` of the `step_finish` events OpenCode printed.
fn step_costs(stdout: &str) -> f64 {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "step_finish")
        .filter_map(|v| v["part"]["cost"].as_f64())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deepseek_proves_the_task_with_opencodes_tokens_and_cost() {
    if !ready("deepseek_proves_the_task_with_opencodes_tokens_and_cost").await {
        return;
    }
    let fake = ModelFake::start(Script::new(vec![
        policy::replace_sorry("simp").with_usage(Usage::new(1200, 80).with_cache(3000, 500)),
        Turn::text("Every sorry is replaced.").with_usage(Usage::new(1500, 40).with_cache(4000, 0)),
    ]))
    .await
    .expect("fake");
    let r = prove(
        &Invocation::new("deepseek")
            .api_base(format!("{}/v1", fake.url()))
            .secret("DEEPSEEK_API_KEY", KEY),
    )
    .await;
    assert_eq!(r.out.status.code(), Some(0), "{}", r.text());
    assert_eq!(r.result["status"], "verified", "{}", r.result);
    assert_eq!(r.usage(), fake_usage_without_side(&fake));
    assert_eq!(r.result["cost"]["source"], "reported");
    let reported = step_costs(&r.stdout_txt());
    assert!(reported > 0.0);
    assert!((r.cost().expect("cost") - reported).abs() < 1e-12);
    let main = fake
        .requests()
        .into_iter()
        .find(|q| !q.tools.is_empty())
        .expect("a turn with tools");
    assert_eq!(main.model.as_deref(), Some("deepseek-v4-pro"));
    assert!(main.path.ends_with("/v1/chat/completions"), "{}", main.path);
    // The lean-lsp MCP server's tools were offered next to OpenCode's own.
    assert!(
        main.tools.iter().any(|t| t.starts_with("lean-lsp_")),
        "{:?}",
        main.tools
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grok_login_entry_is_a_0600_copy_on_a_read_only_mount_and_never_in_out() {
    if !ready("grok_login_entry_is_a_0600_copy_on_a_read_only_mount_and_never_in_out").await {
        return;
    }
    let fake = ModelFake::start(Script::new(vec![
        Turn::shell(credential_probe(&[
            "/run/atp-credentials/opencode/auth.json",
            "\"$HOME/.opencode-data/opencode/auth.json\"",
        ])),
        policy::replace_sorry("simp"),
        Turn::text("Done."),
    ]))
    .await
    .expect("fake");
    let login = format!(
        r#"{{"xai":{{"type":"api","key":"{LOGIN_KEY}"}},"anthropic":{{"type":"api","key":"other-provider-secret"}}}}"#
    );
    let r = prove(
        &Invocation::new("grok")
            .api_base(format!("{}/v1", fake.url()))
            .home_file(".local/share/opencode/auth.json", &login, LOGIN_KEY),
    )
    .await;
    assert_eq!(r.out.status.code(), Some(0), "{}", r.text());
    assert_eq!(r.result["status"], "verified", "{}", r.result);
    for needle in [
        "mode=600 /run/atp-credentials/opencode/auth.json",
        "mode=600 /root/.opencode-data/opencode/auth.json",
        "MOUNT-READONLY",
    ] {
        assert!(request_with(&fake, needle).is_some(), "{needle} not seen");
    }
    let main = fake
        .requests()
        .into_iter()
        .find(|q| !q.tools.is_empty())
        .expect("a turn with tools");
    assert_eq!(main.model.as_deref(), Some("grok-4.5"));
    assert!(!main.auth.is_empty(), "the login's key was sent");
    super::common::assert_no_secrets(&r, &["other-provider-secret".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deepseek_weakening_a_statement_is_unverified_and_named() {
    if !ready("deepseek_weakening_a_statement_is_unverified_and_named").await {
        return;
    }
    let fake = ModelFake::start(Script::new(vec![
        policy::weaken_statement("n + 0 = n", "True").expect("turn"),
        policy::replace_sorry("trivial"),
        Turn::text("Done."),
    ]))
    .await
    .expect("fake");
    let r = prove(
        &Invocation::new("deepseek")
            .api_base(format!("{}/v1", fake.url()))
            .secret("DEEPSEEK_API_KEY", KEY),
    )
    .await;
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
