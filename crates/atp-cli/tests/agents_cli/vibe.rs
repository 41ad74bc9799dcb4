//! Mistral Vibe through `atp prove` (`vibe`, `leanstral`): the real Vibe CLI against the fake's
//! Chat Completions API with Mistral's habits.

use atp_model_fake::{policy, ModelFake, Script, Turn, Usage};

use super::common::{fake_usage_without_side, prove, ready, Invocation};

const KEY: &str = "mistral-test-key-never-printed";

fn script() -> Script {
    Script::new(vec![
        policy::replace_sorry("simp").with_usage(Usage::new(1200, 80).with_cache(3000, 500)),
        Turn::text("Every sorry is replaced.").with_usage(Usage::new(1500, 40).with_cache(4000, 0)),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vibe_proves_the_task_with_vibes_tokens_priced_from_the_table() {
    if !ready("vibe_proves_the_task_with_vibes_tokens_priced_from_the_table").await {
        return;
    }
    let fake = ModelFake::start(script()).await.expect("fake");
    let dir = tempfile::tempdir().expect("tmp");
    let prices = dir.path().join("prices.toml");
    std::fs::write(
        &prices,
        "[models.\"magistral-medium-latest\"]\ninput = 2.0\ncached_input = 0.5\noutput = 5.0\n",
    )
    .expect("prices");
    let r = prove(
        &Invocation::new("vibe")
            .api_base(format!("{}/v1", fake.url()))
            .secret("MISTRAL_API_KEY", KEY)
            .args(&["--prices", prices.to_str().expect("utf8")]),
    )
    .await;
    assert_eq!(r.out.status.code(), Some(0), "{}", r.text());
    assert_eq!(r.result["status"], "verified", "{}", r.result);
    let (input, cached, output) = fake_usage_without_side(&fake);
    assert_eq!(r.usage(), (input, cached, output));
    assert_eq!(r.result["cost"]["source"], "priced", "{}", r.result["cost"]);
    let want = ((input - cached) as f64 * 2.0 + cached as f64 * 0.5 + output as f64 * 5.0) / 1e6;
    assert!((r.cost().expect("cost") - want).abs() < 1e-12);
    // Vibe's session logs are collected out of the workdir.
    assert!(r.out_dir().join("logs/vibe-export/export.json").is_file());
    assert!(!r.out_dir().join("wd/.vibe/logs").exists());
    let main = fake
        .requests()
        .into_iter()
        .find(|q| !q.tools.is_empty())
        .expect("a turn with tools");
    assert_eq!(main.model.as_deref(), Some("magistral-medium-latest"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leanstral_proves_the_task_at_no_cost() {
    if !ready("leanstral_proves_the_task_at_no_cost").await {
        return;
    }
    let fake = ModelFake::start(script()).await.expect("fake");
    let r = prove(
        &Invocation::new("leanstral")
            .api_base(format!("{}/v1", fake.url()))
            .secret("MISTRAL_API_KEY", KEY),
    )
    .await;
    assert_eq!(r.out.status.code(), Some(0), "{}", r.text());
    assert_eq!(r.result["status"], "verified", "{}", r.result);
    assert_eq!(r.usage(), fake_usage_without_side(&fake));
    assert_eq!(r.cost(), Some(0.0));
    let main = fake
        .requests()
        .into_iter()
        .find(|q| !q.tools.is_empty())
        .expect("a turn with tools");
    assert_eq!(main.model.as_deref(), Some("labs-leanstral-1-5"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vibe_weakening_a_statement_is_unverified_and_named() {
    if !ready("vibe_weakening_a_statement_is_unverified_and_named").await {
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
        &Invocation::new("vibe")
            .api_base(format!("{}/v1", fake.url()))
            .secret("MISTRAL_API_KEY", KEY),
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
