//! Kimi Code through `atp prove`: the real Kimi Code CLI (npm `@moonshot-ai/kimi-code`, on the
//! image's Node) against the fake's Chat Completions API, logged in with an OAuth token file as
//! `kimi login` writes it.

use atp_agents::kimi::{token_name, BASE_URL_ENV, OAUTH_HOST_ENV};
use atp_model_fake::{policy, ModelFake, Script, Turn, Usage};

use super::common::{credential_probe, fake_usage, prove, ready, request_with, Invocation};

const ACCESS: &str = "kimi-access-token-never-printed";
const REFRESH: &str = "kimi-refresh-token-never-printed";

/// `kimi` against `fake`: `--api-base` is the fake, the OAuth host too (a refused token is
/// refreshed there, never on the internet), and the Kimi home holds the login for that endpoint
/// (token file, config.toml, device_id) as `KIMI_CODE_BASE_URL=… KIMI_CODE_OAUTH_HOST=… kimi
/// login` leaves it.
fn kimi(fake: &ModelFake) -> Invocation<'static> {
    let base = format!("{}/coding/v1", fake.url());
    let host = fake.url();
    let token = token_name(Some(&base), Some(&host));
    let login = format!(
        r#"{{"access_token":"{ACCESS}","refresh_token":"{REFRESH}","expires_at":4102444800,"scope":"","token_type":"Bearer","expires_in":900}}"#
    );
    Invocation::new("kimi")
        .api_base(base)
        .env(OAUTH_HOST_ENV, &host)
        .home_file(
            &format!(".kimi-code/credentials/{token}.json"),
            &login,
            ACCESS,
        )
        .home_file(".kimi-code/config.toml", CONFIG, REFRESH)
        .home_file(".kimi-code/device_id", "atp-test-device", REFRESH)
}

/// What `kimi login` writes (trimmed): the managed provider and the `kimi-code/k3` alias.
const CONFIG: &str = r#"default_model = "kimi-code/k3"

[providers."managed:kimi-code"]
type = "kimi"
base_url = "https://api.kimi.com/coding/v1"
api_key = ""

[providers."managed:kimi-code".oauth]
storage = "file"
key = "oauth/kimi-code"

[models."kimi-code/k3"]
provider = "managed:kimi-code"
model = "k3"
max_context_size = 262144
capabilities = ["thinking"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kimi_proves_the_task_with_the_fakes_tokens_priced() {
    if !ready("kimi_proves_the_task_with_the_fakes_tokens_priced").await {
        return;
    }
    let fake = ModelFake::start(Script::new(vec![
        policy::replace_sorry("simp").with_usage(Usage::new(1200, 80).with_cache(3000, 500)),
        Turn::text("Every sorry is replaced.").with_usage(Usage::new(1500, 40).with_cache(4000, 0)),
    ]))
    .await
    .expect("fake");
    // Kimi Code reports no cost and atp has no list price for a subscription model: the
    // user's price file prices it.
    let prices = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(
        prices.path(),
        "[models.\"kimi-code/k3\"]\ninput = 0.6\ncached_input = 0.15\noutput = 2.5\n",
    )
    .expect("prices");
    let r = prove(&kimi(&fake).args(&[
        "--prices",
        prices.path().to_str().expect("utf8"),
        "--effort",
        "low",
    ]))
    .await;
    assert_eq!(r.out.status.code(), Some(0), "{}", r.text());
    assert_eq!(r.result["status"], "verified", "{}", r.result);
    assert_eq!(r.usage(), fake_usage(&fake));
    assert_eq!(r.usage(), (1200 + 500 + 3000 + 1500 + 4000, 7000, 120));
    assert_eq!(r.result["cost"]["source"], "priced", "{}", r.result["cost"]);
    let (input, cached, output) = r.usage();
    let want = ((input - cached) as f64 * 0.6 + cached as f64 * 0.15 + output as f64 * 2.5) / 1e6;
    assert!((r.cost().expect("cost") - want).abs() < 1e-12);
    assert!(r.result["metadata"]["credential_source"]
        .as_str()
        .is_some_and(|s| s.starts_with("file ") && s.contains("kimi-code-env-")));
    let main = fake
        .requests()
        .into_iter()
        .find(|q| !q.tools.is_empty())
        .expect("a model turn with tools");
    assert_eq!(main.model.as_deref(), Some("k3"));
    assert!(
        main.path.ends_with("/coding/v1/chat/completions"),
        "{}",
        main.path
    );
    // The OAuth token is the bearer; the effort reached the request.
    assert_eq!(main.body["thinking"]["effort"], "low", "{}", main.body);
    assert!(main
        .user_prompt
        .unwrap_or_default()
        .contains("Never change, weaken, rename"));
    // The CLI's session log is kept, the login is not.
    let sessions = r.out_dir().join("logs/kimi-session");
    assert!(
        super::common::walk(&sessions)
            .iter()
            .any(|f| f.ends_with("agents/main/wire.jsonl")),
        "no wire.jsonl under {}",
        sessions.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kimi_login_files_are_0600_copies_on_a_read_only_mount_and_never_in_out() {
    if !ready("kimi_login_files_are_0600_copies_on_a_read_only_mount_and_never_in_out").await {
        return;
    }
    let fake = ModelFake::start(Script::new(vec![
        Turn::shell(credential_probe(&[
            "/run/atp-credentials/kimi/credentials/*.json",
            "/run/atp-credentials/kimi/config.toml",
            "\"$KIMI_CODE_HOME\"/credentials/*.json",
            "\"$KIMI_CODE_HOME\"/config.toml",
            "\"$KIMI_CODE_HOME\"/device_id",
        ])),
        policy::replace_sorry("simp"),
        Turn::text("Done."),
    ]))
    .await
    .expect("fake");
    let inv = kimi(&fake);
    let r = prove(&inv).await;
    assert_eq!(r.out.status.code(), Some(0), "{}", r.text());
    assert_eq!(r.result["status"], "verified");
    let probe = request_with(&fake, "MOUNT-").expect("the probe's output reached the model");
    // The tool result (the command itself names both outcomes).
    let seen: String = probe.body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "tool")
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert!(seen.contains("MOUNT-READONLY"), "{seen}");
    assert!(!seen.contains("MOUNT-WRITABLE"), "{seen}");
    let modes: Vec<&str> = seen.split("mode=").skip(1).collect();
    assert_eq!(modes.len(), 5, "{seen}");
    for m in modes {
        assert!(m.starts_with("600 "), "{m}");
    }
    assert!(seen.contains("/root/.kimi-code/credentials/kimi-code-env-"));
    // No copy of the login in the output directory (the secrets check of `prove` reads every
    // file; the names too).
    for f in super::common::walk(&r.out_dir()) {
        let name = f.to_string_lossy();
        assert!(
            !name.contains("/credentials/") && !name.ends_with("config.toml"),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kimi_weakening_a_statement_is_unverified_and_named() {
    if !ready("kimi_weakening_a_statement_is_unverified_and_named").await {
        return;
    }
    let fake = ModelFake::start(Script::new(vec![
        policy::weaken_statement("n + 0 = n", "True").expect("turn"),
        policy::replace_sorry("trivial"),
        Turn::text("Done."),
    ]))
    .await
    .expect("fake");
    let r = prove(&kimi(&fake)).await;
    assert_eq!(r.out.status.code(), Some(1), "{}", r.text());
    assert_eq!(r.result["status"], "unverified");
    assert!(
        r.violations()
            .iter()
            .any(|(k, d)| k == "statement_changed" && d.contains("add_zero'")),
        "{:?}",
        r.violations()
    );
    // Without a price for the subscription model, the cost is null, never a guess.
    assert_eq!(
        r.result["cost"]["source"], "unpriced",
        "{}",
        r.result["cost"]
    );
    assert!(r.cost().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kimi_without_a_login_for_the_endpoint_names_the_login_command() {
    if !ready("kimi_without_a_login_for_the_endpoint_names_the_login_command").await {
        return;
    }
    // A login for Kimi's default endpoint is not used for another one (the CLI scopes tokens
    // by endpoint): one line naming the login for the gateway, before any container.
    let inv = Invocation::new("kimi")
        .api_base("http://127.0.0.1:9/coding/v1".into())
        .home_file(
            ".kimi-code/credentials/kimi-code.json",
            &format!(r#"{{"access_token":"{ACCESS}","expires_at":4102444800}}"#),
            ACCESS,
        );
    let r = prove(&inv).await;
    assert_eq!(r.out.status.code(), Some(2), "{}", r.text());
    let err = String::from_utf8_lossy(&r.out.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(BASE_URL_ENV)
            && err.contains("http://127.0.0.1:9/coding/v1")
            && err.contains("kimi login"),
        "{err}"
    );
    assert!(!r.out_dir().exists());
}
