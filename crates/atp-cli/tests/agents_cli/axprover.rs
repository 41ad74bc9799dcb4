//! ax-prover through `atp prove` with the real ax-prover 0.2.0 CLI, end to end.
//!
//! ax-prover asks Lean through `lean_interact` (the file's declarations and their `sorry`s)
//! and `lake build` (each proposal). The agents test image has no Lean: its `lean_interact`
//! cache holds the STAND-IN Lean REPL (`images/agents/overlay/usr/local/lib/atp-standin/lean-repl`,
//! seeded by `cargo xtask agents-image`), which judges Lean text with the stand-in `lake`, so
//! the whole real loop runs: REPL set-up, one proposer / reviewer / summary round per theorem
//! with a `sorry` (ax-prover proves them one after the other), the build of each proposal,
//! and ax-prover writing approved proofs back. Usage comes from atp's staged LangChain hook.

use atp_model_fake::{policy, ModelFake, Script, Turn, Usage};
use serde_json::json;

use super::common::{fake_usage, prove, ready, Invocation};

const KEY: &str = "sk-ant-axprover-key-never-printed";

/// The fixture's theorems with a `sorry`, in file order (`example` is `_example` to the REPL),
/// with their statements.
const TARGETS: &[&str] = &[
    "theorem add_zero' (n : ℕ) : n + 0 = n := by",
    "theorem two_mul' (n : ℕ) : 2 * n = n + n := by",
    "example : (2 : ℕ) + 2 = 4 := by",
];

/// One `sample` turn answering ax-prover's calls in order: per target, the proposer
/// (`ProverResult`: `statement` + `proof`), the reviewer (`ReviewDecision`, approving) and the
/// run summary. Every ax-prover conversation is fresh (turn 0), so the sample counter walks it.
fn script(statements: &[&str], proof: &str, usage: Usage) -> Script {
    let mut texts = Vec::new();
    for s in statements {
        texts.push(
            json!({"imports": [], "opens": [], "updated_theorem": format!("{s}\n  {proof}\n")})
                .to_string(),
        );
        texts.push(
            json!({"check_1": true, "check_2": true, "check_3": true, "approved": true})
                .to_string(),
        );
        texts.push("Proved in one iteration.".to_string());
    }
    Script::new(vec![Turn::sample(texts).with_usage(usage)])
}

fn prices(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("prices.toml");
    std::fs::write(
        &p,
        "[models.\"claude-opus-4-8\"]\ninput = 5.0\ncached_input = 0.5\noutput = 25.0\n",
    )
    .expect("prices");
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axprover_proves_every_theorem_through_the_standin_repl_with_the_fakes_usage() {
    if !ready("axprover_proves_every_theorem_through_the_standin_repl_with_the_fakes_usage").await {
        return;
    }
    let fake = ModelFake::start(script(
        TARGETS,
        "simp",
        Usage::new(1200, 80).with_cache(3000, 500),
    ))
    .await
    .expect("fake");
    let tmp = tempfile::tempdir().expect("tmp");
    let prices = prices(tmp.path());
    let r = prove(
        &Invocation::new("axprover")
            .api_base(fake.url())
            .secret("ANTHROPIC_API_KEY", KEY)
            .args(&["--prices", prices.to_str().expect("utf8")]),
    )
    .await;
    assert_eq!(r.out.status.code(), Some(0), "{}", r.text());
    assert_eq!(r.result["status"], "verified", "{}", r.result);
    // Three theorems, each: proposer, reviewer, summary.
    let requests = fake.requests();
    assert_eq!(requests.len(), 9, "{requests:?}");
    assert_eq!(
        r.result["metadata"]["ax_items"], 3,
        "{}",
        r.result["metadata"]
    );
    assert_eq!(r.result["metadata"]["ax_proven"], 3);
    let (input, cached, output) = fake_usage(&fake);
    assert_eq!(r.usage(), (input, cached, output), "{}", r.result["usage"]);
    assert_eq!((input, cached, output), (9 * 4700, 9 * 3000, 9 * 80));
    assert_eq!(r.result["cost"]["source"], "priced", "{}", r.result["cost"]);
    let want = ((input - cached) as f64 * 5.0 + cached as f64 * 0.5 + output as f64 * 25.0) / 1e6;
    assert!(
        (r.cost().expect("cost") - want).abs() < 1e-12,
        "{}",
        r.result
    );
    // ax-prover's outputs and the usage log are collected out of the workdir.
    let logs = r.out_dir().join("logs/axprover");
    assert!(logs.join("ax_output.Fixture_lean.json").is_file());
    assert!(logs.join("usage.jsonl").is_file());
    assert!(!r.out_dir().join("wd/.atp/ax").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axprover_weakening_a_statement_is_unverified_and_named() {
    if !ready("axprover_weakening_a_statement_is_unverified_and_named").await {
        return;
    }
    // The first theorem's statement weakened to `True`; the reviewer (scripted) approves it.
    let statements = [
        "theorem add_zero' (n : ℕ) : True := by",
        TARGETS[1],
        TARGETS[2],
    ];
    let fake = ModelFake::start(script(&statements, "trivial", Usage::new(100, 10)))
        .await
        .expect("fake");
    let r = prove(
        &Invocation::new("axprover")
            .api_base(fake.url())
            .secret("ANTHROPIC_API_KEY", KEY),
    )
    .await;
    assert_eq!(r.out.status.code(), Some(1), "{}", r.text());
    assert_eq!(r.result["status"], "unverified", "{}", r.result);
    assert!(
        r.violations()
            .iter()
            .any(|(k, d)| k == "statement_changed" && d.contains("add_zero'")),
        "{:?}",
        r.violations()
    );
    assert_eq!(r.usage(), fake_usage(&fake));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axprover_model_failure_is_an_error_not_a_verdict() {
    if !ready("axprover_model_failure_is_an_error_not_a_verdict").await {
        return;
    }
    // Every model call refused: ax-prover fails each theorem; atp reports the failure.
    let fake = ModelFake::start(policy::reject_auth()).await.expect("fake");
    let r = prove(
        &Invocation::new("axprover")
            .api_base(fake.url())
            .secret("ANTHROPIC_API_KEY", KEY)
            .args(&["--max-iterations", "2"]),
    )
    .await;
    assert_ne!(r.out.status.code(), Some(0), "{}", r.text());
    assert_ne!(r.result["status"], "verified", "{}", r.result);
    assert_eq!(r.result["metadata"]["files"], 1, "{}", r.result["metadata"]);
    assert_eq!(r.result["metadata"]["failed_files"], 1);
    // ax-prover got past the REPL set-up to the model.
    assert!(!fake.requests().is_empty());
    let log = std::fs::read_to_string(r.out_dir().join("logs/axprover/ax_prover.Fixture_lean.log"))
        .expect("ax-prover's log is collected");
    assert!(!log.contains("Failed to clone"), "{log}");
}
