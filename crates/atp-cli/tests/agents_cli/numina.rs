//! Numina through `atp prove`: the real Claude Code CLI in rounds, the END_REASON protocol,
//! session resets, the statement guard and the helper ledger.

use atp_model_fake::{policy, ModelFake, Script, Turn};

use super::common::{prove, ready, Invocation, Run};

const KEY: &str = "sk-ant-numina-test-key-never-printed";

fn assets(dir: &std::path::Path) -> std::path::PathBuf {
    let a = dir.join("numina-assets");
    std::fs::create_dir_all(a.join("skills/numina-probe")).expect("mk");
    std::fs::create_dir_all(a.join("prompts")).expect("mk");
    std::fs::write(a.join("skills/numina-probe/SKILL.md"), "# probe skill\n").expect("w");
    std::fs::write(
        a.join("prompts/main_entry.md"),
        "You are the Numina Lean agent (test assets).\n",
    )
    .expect("w");
    a
}

fn numina(fake: &ModelFake, assets: &std::path::Path, extra: &[&str]) -> Invocation<'static> {
    Invocation::new("numina")
        .api_base(fake.url())
        .secret("ANTHROPIC_API_KEY", KEY)
        .env("CLAUDE_CODE_MAX_RETRIES", "1")
        .args(&["--numina-assets", assets.to_str().expect("utf8")])
        .args(extra)
}

/// Σ `total_cost_usd` of Claude Code's `result` events (one per round).
fn claude_costs(r: &Run) -> (usize, f64) {
    let events: Vec<serde_json::Value> = r
        .stdout_txt()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "result")
        .collect();
    let sum = events
        .iter()
        .filter_map(|v| v["total_cost_usd"].as_f64())
        .sum();
    (events.len(), sum)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_limit_complete_is_three_rounds_one_reset_and_the_summed_cost() {
    if !ready("limit_limit_complete_is_three_rounds_one_reset_and_the_summed_cost").await {
        return;
    }
    let ledger = concat!(
        r#"{"backend":"openai","model":"gpt-5.4","input_tokens":1000000,"output_tokens":1000000}"#,
        "\n",
        r#"{"backend":"gemini","model":"gemini-unknown-x","input_tokens":10,"output_tokens":5}"#
    );
    // Round 1 (fresh): the shell turn, then the 1st sample (LIMIT). Round 2 resumes the
    // conversation (turn 2 = the last turn again): LIMIT, the second in a row → reset. Round 3
    // (fresh): the shell turn again, then COMPLETE.
    let fake = ModelFake::start(
        Script::new(vec![
            Turn::shell(format!(
                "{} && mkdir -p .claude && (grep -q gpt-5.4 .claude/helper_usage.jsonl 2>/dev/null || printf '%s\\n' '{}' >> .claude/helper_usage.jsonl)",
                policy::replace_sorry("simp").shell_command().expect("shell"),
                ledger.replace('\'', "")
            )),
            Turn::sample([
                "Out of room.\nEND_REASON:LIMIT",
                "Still out of room.\nEND_REASON:LIMIT",
                "All proved.\nEND_REASON:COMPLETE",
            ]),
        ])
        .repeating_last(),
    )
    .await
    .expect("fake");
    let dir = tempfile::tempdir().expect("tmp");
    let r = prove(&numina(&fake, &assets(dir.path()), &[])).await;
    assert_eq!(r.out.status.code(), Some(0), "{}", r.text());
    let m = &r.result["metadata"];
    assert_eq!(r.result["status"], "verified", "{}", r.result);
    assert_eq!(m["rounds"], 3, "{m}");
    assert_eq!(m["session_resets"], 1, "{m}");
    assert_eq!(m["end_reason"], "COMPLETE");
    let history = m["round_history"].as_array().expect("history");
    let reasons: Vec<&str> = history
        .iter()
        .map(|h| h["end_reason"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(reasons, ["LIMIT", "LIMIT", "COMPLETE"]);
    let resumed: Vec<bool> = history
        .iter()
        .map(|h| h["resumed"].as_bool().unwrap_or(false))
        .collect();
    assert_eq!(resumed, [false, true, false]);
    // Cost: Claude Code's cost of every round plus the helper ledger (gpt-5.4 at 1M/1M).
    let (results, agent) = claude_costs(&r);
    assert_eq!(results, 3);
    assert!((m["agent_cost_usd"].as_f64().expect("agent cost") - agent).abs() < 1e-9);
    assert!((m["helper_cost_usd"].as_f64().expect("helper") - 17.5).abs() < 1e-9);
    assert_eq!(
        m["helper_unpriced_models"],
        serde_json::json!(["gemini-unknown-x"])
    );
    assert_eq!(r.result["cost"]["source"], "reported");
    assert!((r.cost().expect("cost") - (agent + 17.5)).abs() < 1e-9);
    // Numina's prompt and skill were staged.
    let first = fake
        .requests()
        .into_iter()
        .find(|q| !q.tools.is_empty())
        .expect("a turn with tools");
    let prompt = first.user_prompt.unwrap_or_default();
    assert!(
        prompt.contains("Numina Lean agent (test assets)"),
        "{prompt}"
    );
    assert!(prompt.contains("END_REASON:COMPLETE"), "{prompt}");
    assert!(r
        .out_dir()
        .join("wd/.claude/skills/numina-probe/SKILL.md")
        .is_file());
}

/// Round 1 weakens `add_zero'` and proves everything, then LIMIT; round 2 (resumed) proves
/// what is left and is COMPLETE.
fn weakening_script() -> Script {
    Script::new(vec![
        policy::weaken_statement("n + 0 = n", "True").expect("turn"),
        policy::replace_sorry("simp"),
        Turn::text("Done for now.\nEND_REASON:LIMIT"),
        policy::replace_sorry("simp"),
        Turn::text("All proved.\nEND_REASON:COMPLETE"),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weakened_statement_is_restored_with_warn() {
    if !ready("a_weakened_statement_is_restored_with_warn").await {
        return;
    }
    let fake = ModelFake::start(weakening_script()).await.expect("fake");
    let dir = tempfile::tempdir().expect("tmp");
    let r = prove(&numina(
        &fake,
        &assets(dir.path()),
        &["--on-statement-change", "warn"],
    ))
    .await;
    assert_eq!(r.out.status.code(), Some(0), "{}", r.text());
    assert_eq!(r.result["status"], "verified", "{}", r.result);
    let m = &r.result["metadata"];
    assert_eq!(m["rounds"], 2, "{m}");
    assert_eq!(m["statement_changed"], true);
    let changes = m["round_history"][0]["statement_changes"].to_string();
    assert!(changes.contains("add_zero'"), "{changes}");
    let text = &r.result["completed_files"]["Fixture.lean"];
    assert!(
        text.as_str().is_some_and(|t| t.contains("n + 0 = n")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weakened_statement_stops_the_rounds_with_error() {
    if !ready("a_weakened_statement_stops_the_rounds_with_error").await {
        return;
    }
    let fake = ModelFake::start(weakening_script()).await.expect("fake");
    let dir = tempfile::tempdir().expect("tmp");
    let r = prove(&numina(&fake, &assets(dir.path()), &[])).await;
    assert_eq!(r.out.status.code(), Some(1), "{}", r.text());
    assert_eq!(r.result["status"], "unverified");
    let m = &r.result["metadata"];
    assert_eq!(m["rounds"], 1, "{m}");
    assert_eq!(m["end_reason"], "STATEMENT_CHANGED");
    assert!(
        r.violations()
            .iter()
            .any(|(k, d)| k == "statement_changed" && d.contains("add_zero'")),
        "{:?}",
        r.violations()
    );
}
