//! `atp prove` end to end with the agent provers: the real binary, each real agent CLI inside
//! the agents test image (`cargo xtask agents-image`), driven by the scripted model fake on the
//! host's 127.0.0.1 (the agent sandbox uses host networking; nothing else is reachable), and
//! the verification in a second, network-less sandbox with the stand-in `lake`.
//!
//! One test binary: Claude Code here, the other harnesses in `agents_cli/`.

mod axprover;
mod codex;
mod common;
mod kimi;
mod missing;
mod numina;
mod opencode;
mod rejected;
mod vibe;

use std::time::{Duration, Instant};

use atp_model_fake::{policy, ModelFake, Script, Turn, Usage};
use atp_test_support::count_managed;

use common::{ready, run_id, Invocation, Run};

const KEY: &str = "sk-ant-test-key-never-printed";

fn claude(fake: &ModelFake) -> Invocation<'static> {
    Invocation::new("claude")
        .api_base(fake.url())
        .secret("ANTHROPIC_API_KEY", KEY)
        .env("CLAUDE_CODE_MAX_RETRIES", "1")
}

async fn prove(fake: &ModelFake, extra: &[&str]) -> Run {
    common::prove(&claude(fake).args(extra)).await
}

fn last_result_event(stdout: &str) -> serde_json::Value {
    stdout
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "result")
        .expect("the CLI's result event is in stdout.txt")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_proves_the_task_and_usage_matches_the_model_api() {
    if !ready("claude_code_proves_the_task_and_usage_matches_the_model_api").await {
        return;
    }
    let fake = ModelFake::start(Script::new(vec![
        policy::replace_sorry("simp").with_usage(Usage::new(1200, 80).with_cache(3000, 500)),
        Turn::text("Every sorry is replaced; the file compiles.")
            .with_usage(Usage::new(1500, 40).with_cache(4000, 0)),
    ]))
    .await
    .expect("fake");
    let r = prove(&fake, &["--prompt", "Prefer simp over omega."]).await;
    assert_eq!(r.out.status.code(), Some(0), "{}", r.text());
    let res = &r.result;
    assert_eq!(res["status"], "verified", "{res}");
    assert!(res["completed_files"]["Fixture.lean"]
        .as_str()
        .is_some_and(|t| !t.contains("sorry")));
    // Tokens: what the fake reported over every request (side requests included).
    let u = fake.usage_reported();
    assert_eq!(
        res["usage"]["input_tokens"],
        u.input_tokens + u.cache_read_tokens + u.cache_creation_tokens
    );
    assert_eq!(res["usage"]["cached_input_tokens"], u.cache_read_tokens);
    assert_eq!(res["usage"]["output_tokens"], u.output_tokens);
    // Cost: what the CLI reported in its own result event.
    let stdout = r.stdout_txt();
    let ev = last_result_event(&stdout);
    assert_eq!(res["cost"]["source"], "reported");
    let reported = ev["total_cost_usd"].as_f64().expect("cost");
    assert!((res["cost_usd"].as_f64().expect("cost") - reported).abs() < 1e-9);
    assert!(stdout
        .lines()
        .next()
        .is_some_and(|l| l.contains("\"subtype\":\"init\"")));
    // The prompt the model saw: atp's rules and the user's instructions.
    let main = fake
        .requests()
        .into_iter()
        .find(|q| q.tools.iter().any(|t| t == "Bash"))
        .expect("a model turn with tools");
    let prompt = main.user_prompt.unwrap_or_default();
    assert!(prompt.contains("Never change, weaken, rename"), "{prompt}");
    assert!(
        prompt.contains("# Additional instructions\n\nPrefer simp over omega."),
        "{prompt}"
    );
    assert_eq!(main.model.as_deref(), Some("claude-opus-4-8"));
    assert_eq!(
        res["metadata"]["credential_source"],
        "env ANTHROPIC_API_KEY"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weakened_statement_is_unverified_and_named() {
    if !ready("a_weakened_statement_is_unverified_and_named").await {
        return;
    }
    let fake = ModelFake::start(Script::new(vec![
        policy::weaken_statement("n + 0 = n", "True").expect("turn"),
        policy::replace_sorry("trivial"),
        Turn::text("Done."),
    ]))
    .await
    .expect("fake");
    let r = prove(&fake, &[]).await;
    assert_eq!(r.out.status.code(), Some(1), "{}", r.text());
    assert_eq!(r.result["status"], "unverified");
    let v = r.violations();
    assert!(
        v.iter()
            .any(|(k, d)| k == "statement_changed" && d.contains("add_zero'")),
        "{v:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inserted_axiom_is_unverified() {
    if !ready("an_inserted_axiom_is_unverified").await {
        return;
    }
    let fake = ModelFake::start(Script::new(vec![
        policy::append("Fixture.lean", "axiom cheat : False").expect("turn"),
        policy::replace_sorry("cheat.elim"),
        Turn::text("Done."),
    ]))
    .await
    .expect("fake");
    let r = prove(&fake, &[]).await;
    assert_eq!(r.out.status.code(), Some(1), "{}", r.text());
    assert_eq!(r.result["status"], "unverified");
    assert!(
        r.violations().iter().any(|(k, _)| k == "axiom"),
        "{:?}",
        r.violations()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_never_answers_times_out_within_the_budget() {
    if !ready("a_model_that_never_answers_times_out_within_the_budget").await {
        return;
    }
    let fake = ModelFake::start(policy::never_answer())
        .await
        .expect("fake");
    let started = Instant::now();
    // A 24 s budget.
    let r = prove(&fake, &["--timeout", "0.4"]).await;
    let took = started.elapsed();
    assert_eq!(r.out.status.code(), Some(1), "{}", r.text());
    assert_eq!(r.result["status"], "timeout", "{}", r.result);
    assert_eq!(r.result["usage"]["stop_reason"], "timeout");
    assert!(took < Duration::from_secs(24 + 60), "took {took:?}");
    // The partial transcript is kept.
    assert!(
        r.stdout_txt().contains("\"subtype\":\"init\""),
        "{}",
        r.stdout_txt()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_key_is_an_error_not_unverified() {
    if !ready("a_rejected_key_is_an_error_not_unverified").await {
        return;
    }
    let fake = ModelFake::start(policy::reject_auth()).await.expect("fake");
    let r = prove(&fake, &[]).await;
    assert_eq!(r.out.status.code(), Some(2), "{}", r.text());
    assert_eq!(r.result["status"], "error");
    assert_eq!(
        r.result["error"]["kind"], "credentials_rejected",
        "{}",
        r.result
    );
    assert!(r.result["verification"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_mid_generation_cancels_and_leaves_nothing() {
    if !ready("ctrl_c_mid_generation_cancels_and_leaves_nothing").await {
        return;
    }
    let fake = ModelFake::start(policy::never_answer())
        .await
        .expect("fake");
    let dir = tempfile::tempdir().expect("tmp");
    let out_dir = dir.path().join("out");
    let run = run_id();
    let child = claude(&fake)
        .command(dir.path(), &run)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("atp starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !fake.requests().iter().any(|q| !q.tools.is_empty()) {
        assert!(
            Instant::now() < deadline,
            "the agent never called the model"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = child.id().expect("pid").to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill")
        .success());
    let o = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("exits after SIGINT")
        .expect("wait");
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("logs/result.json")).expect("result.json"),
    )
    .expect("json");
    assert_eq!(r["status"], "cancelled");
    assert!(std::fs::read_to_string(out_dir.join("logs/stdout.txt"))
        .expect("transcript")
        .contains("\"subtype\":\"init\""));
    assert_eq!(
        count_managed(Some(&run)).await,
        0,
        "containers left after SIGINT"
    );
}
