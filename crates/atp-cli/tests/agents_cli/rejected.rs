//! A refused key through `atp prove` with each real CLI: every model request answered HTTP 401
//! in the dialect's shape; the run is the error `credentials_rejected` (exit 2), never an
//! honest-looking `unverified`, and nothing is verified.

use atp_model_fake::{policy, ModelFake};

use super::common::{prove, ready, Invocation};

async fn rejected(test: &str, inv: impl FnOnce(&ModelFake) -> Invocation<'static>) {
    if !ready(test).await {
        return;
    }
    let fake = ModelFake::start(policy::reject_auth()).await.expect("fake");
    let r = prove(&inv(&fake)).await;
    assert_eq!(r.out.status.code(), Some(2), "{test}: {}", r.text());
    assert_eq!(r.result["status"], "error", "{test}: {}", r.result);
    assert_eq!(
        r.result["error"]["kind"], "credentials_rejected",
        "{test}: {}",
        r.result
    );
    assert!(r.result["verification"].is_null(), "{test}");
    assert!(
        !fake.requests().is_empty(),
        "{test}: the CLI never reached the fake"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_with_a_rejected_key_is_credentials_rejected() {
    rejected("codex_with_a_rejected_key_is_credentials_rejected", |f| {
        Invocation::new("codex")
            .api_base(format!("{}/v1", f.url()))
            .secret("OPENAI_API_KEY", "sk-openai-refused-key")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deepseek_with_a_rejected_key_is_credentials_rejected() {
    rejected(
        "deepseek_with_a_rejected_key_is_credentials_rejected",
        |f| {
            Invocation::new("deepseek")
                .api_base(format!("{}/v1", f.url()))
                .secret("DEEPSEEK_API_KEY", "sk-deepseek-refused-key")
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vibe_with_a_rejected_key_is_credentials_rejected() {
    rejected("vibe_with_a_rejected_key_is_credentials_rejected", |f| {
        Invocation::new("vibe")
            .api_base(format!("{}/v1", f.url()))
            .secret("MISTRAL_API_KEY", "mistral-refused-key")
    })
    .await;
}
