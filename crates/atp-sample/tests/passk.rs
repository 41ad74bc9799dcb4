//! pass@k through the whole prove lifecycle: the scripted model serves k answers (cheats and
//! honest proofs), every candidate is verified in ONE sandbox of the real Docker engine on the
//! test image (stand-in `lake`), the best is verified again by the lifecycle, and result.json
//! holds what a paper reports. Engine tests: skipped loudly without an engine, failures under
//! `ATP_REQUIRE_DOCKER=1`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use atp_backend::RunId;
use atp_lean::LeanProject;
use atp_model_fake::{policy, ModelFake, Script, Turn};
use atp_prover::retry::Backoff;
use atp_prover::{prove, EnvSource, ProofResult, ProofTask, ProveOptions, Status};
use atp_sample::{SampleConfig, SampleProver, SpliceMode};
use atp_test_support::{count_managed, docker, fixture};
use atp_verify::VerifyOptions;
use serde_json::Value;

pub const HONEST: &str = "import Mathlib\n\n/-! A small task: two theorems and an example, to be proved. -/\n\nnamespace Fixture\n\ntheorem add_zero' (n : ℕ) : n + 0 = n := by\n  simp\n\ntheorem two_mul' (n : ℕ) : 2 * n = n + n := by\n  omega\n\nexample : (2 : ℕ) + 2 = 4 := by\n  norm_num\n\nend Fixture\n";

fn weakened() -> String {
    HONEST.replace(
        "(n : ℕ) : n + 0 = n := by\n  simp",
        "(n : ℕ) : True := by\n  trivial",
    )
}
fn with_sorry() -> String {
    HONEST.replace("  omega", "  sorry")
}
fn native() -> String {
    HONEST.replace("  norm_num", "  native_decide")
}
fn with_axiom() -> String {
    HONEST.replace(
        "theorem two_mul' (n : ℕ) : 2 * n = n + n := by\n  omega",
        "axiom cheat (n : ℕ) : 2 * n = n + n\n\ntheorem two_mul' (n : ℕ) : 2 * n = n + n := cheat n",
    )
}

/// An answer as a prover model writes it: a plan, then the code.
fn answer(code: &str) -> String {
    format!(
        "Plan: close each goal with a decision procedure.\n\n{}\n",
        policy::lean_block(code)
    )
}

pub struct Ran {
    pub result: ProofResult,
    pub fake: Arc<ModelFake>,
    pub out: tempfile::TempDir,
}

impl Ran {
    pub fn samples(&self) -> Vec<Value> {
        self.result.metadata["samples"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
    /// The answer sample `i` got in round `r`.
    pub fn answer_of(&self, i: u64, r: u64) -> String {
        std::fs::read_to_string(
            self.out
                .path()
                .join(format!("out/logs/samples/{i:03}/r{r}/answer.md")),
        )
        .expect("answer.md")
    }
}

pub fn base_config(fake: &ModelFake) -> SampleConfig {
    let mut c = SampleConfig {
        api_base: Some(format!("{}/v1", fake.url())),
        model: Some("prover-7b".into()),
        samples: 5,
        concurrency: 5,
        batch_workers: 2,
        ..SampleConfig::default()
    };
    c.client.backoff = Backoff {
        first: Duration::from_millis(200),
        cap: Duration::from_millis(400),
        max_attempts: 5,
    };
    c.client.request_timeout = Duration::from_secs(30);
    c
}

/// Prove `fixtures/original` with `sample` over the scripted model; `None` when skipped.
pub async fn run(
    test: &str,
    script: Script,
    configure: impl FnOnce(&mut SampleConfig),
) -> Option<Ran> {
    let fake = Arc::new(ModelFake::start(script).await.expect("fake"));
    run_with(test, fake, configure).await
}

/// As [`run`], over a fake the caller keeps driving.
pub async fn run_with(
    test: &str,
    fake: Arc<ModelFake>,
    configure: impl FnOnce(&mut SampleConfig),
) -> Option<Ran> {
    let backend = docker(test).await?;
    let mut cfg = base_config(&fake);
    configure(&mut cfg);
    let prover = SampleProver::new(cfg, EnvSource::fixed(BTreeMap::new()));
    let task = ProofTask::new(LeanProject::open(fixture("original")).expect("task"));
    let out = tempfile::tempdir().expect("tmp");
    let run_id = RunId::new();
    let opts = ProveOptions {
        run_id: run_id.clone(),
        generation_timeout: Duration::from_secs(120),
        verify: VerifyOptions {
            timeout: Duration::from_secs(60),
            ..VerifyOptions::default()
        },
        network: atp_backend::NetworkMode::None,
        ..ProveOptions::default()
    };
    let result = prove(
        &task,
        &prover,
        Arc::new(backend),
        &out.path().join("out"),
        opts,
    )
    .await
    .expect("the run starts");
    assert_eq!(
        count_managed(Some(run_id.as_str())).await,
        0,
        "sandboxes of the run leaked"
    );
    Some(Ran { result, fake, out })
}

fn verdicts(r: &Ran) -> Vec<String> {
    r.samples()
        .iter()
        .map(|s| s["verdict"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// The violation kinds the verifier found in sample `s`'s last round.
fn kinds(s: &Value) -> Vec<String> {
    s["rounds"]
        .as_array()
        .and_then(|r| r.last())
        .and_then(|r| r["violations"].as_array())
        .map(|v| {
            v.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn mixed() -> Script {
    policy::sample([
        answer(&weakened()),
        answer(&with_sorry()),
        answer(&native()),
        answer(&with_axiom()),
        answer(HONEST),
    ])
}

async fn check_mixed(r: &Ran) {
    let res = &r.result;
    assert_eq!(res.status, Status::Verified, "{:?}", res.error);
    let m = &res.metadata;
    assert_eq!(m["pass_at_k"], true);
    assert_eq!(m["k"], 5);
    assert_eq!(m["verified_count"], 1, "{:?}", verdicts(r));
    assert_eq!(
        m["verification"]["build_sandboxes"], 1,
        "one build sandbox for every candidate"
    );
    assert_eq!(m["verification"]["candidates_verified"], 5);
    let best = m["best_sample"].as_u64().expect("best");
    assert_eq!(m["verified_samples"], serde_json::json!([best]));
    assert_eq!(
        r.answer_of(best, 0),
        answer(HONEST),
        "exactly the honest answer verified"
    );
    for s in r.samples() {
        let i = s["index"].as_u64().expect("index");
        let a = r.answer_of(i, 0);
        let k = kinds(&s);
        let expect = if a == answer(HONEST) {
            assert_eq!(s["verdict"], "verified");
            continue;
        } else if a == answer(&weakened()) {
            "statement_changed"
        } else if a == answer(&with_sorry()) {
            "sorry"
        } else if a == answer(&native()) {
            "native_decide"
        } else if a == answer(&with_axiom()) {
            "axiom"
        } else {
            panic!("sample {i} got an unknown answer: {a}")
        };
        assert_eq!(s["verdict"], "unverified", "sample {i}");
        assert!(
            k.iter().any(|x| x == expect),
            "sample {i}: {expect} not in {k:?}"
        );
        assert!(s["reason"].as_str().is_some_and(|x| !x.is_empty()));
        assert!(
            s["output_tokens"].as_u64().unwrap_or(0) > 0,
            "per-sample tokens"
        );
        assert!(
            s["generation_s"].as_f64().is_some()
                && s["verification_s"].as_f64().unwrap_or(0.0) > 0.0
        );
    }
    // pass@j estimates over all 5 judged samples: 1 of 5 verified.
    assert_eq!(m["all_samples_judged"], true);
    assert!((m["pass_at"]["1"].as_f64().expect("pass@1") - 0.2).abs() < 1e-9);
    assert_eq!(m["pass_at"]["5"], 1.0);
    // What a paper needs to report.
    let s = &m["sampling"];
    assert_eq!(s["model"], "prover-7b");
    assert_eq!(s["k"], 5);
    assert_eq!(s["temperature"], 1.0);
    assert_eq!(s["template"], "builtin:whole");
    assert_eq!(s["template_sha256"].as_str().map(str::len), Some(64));
    // The candidate in OUT/wd is the honest one, and the lifecycle verified it again.
    assert_eq!(res.completed_files["Fixture.lean"], HONEST);
    assert_eq!(res.verification.as_ref().map(|v| v.verified), Some(true));
    // Tokens: the sum over every request; unpriced model (no table entry) says so.
    let u = res.usage.as_ref().expect("usage");
    assert_eq!(u.input_tokens, r.fake.usage_reported().input_tokens);
    assert_eq!(u.output_tokens, r.fake.usage_reported().output_tokens);
    assert_eq!(
        res.cost.as_ref().map(|c| c.source),
        Some(atp_prover::CostSource::Unpriced)
    );
}

#[tokio::test]
async fn pass_at_k_verifies_exactly_the_honest_sample_among_cheats() {
    let Some(r) = run(
        "pass_at_k_verifies_exactly_the_honest_sample_among_cheats",
        mixed(),
        |_| {},
    )
    .await
    else {
        return;
    };
    check_mixed(&r).await;
    // Five parallel requests of one choice each, none with tools, no key sent.
    let reqs = r.fake.requests();
    assert_eq!(reqs.len(), 5);
    assert!(reqs
        .iter()
        .all(|q| q.n == 1 && q.tools.is_empty() && !q.stream && q.auth.is_empty()));
    let prompt = reqs[0].user_prompt.clone().unwrap_or_default();
    assert!(
        prompt.contains("theorem add_zero' (n : ℕ) : n + 0 = n := by\n  sorry"),
        "{prompt}"
    );
    assert!(prompt.contains("```lean code block"), "{prompt}");
}

#[tokio::test]
async fn streamed_answers_with_n_choices_per_request_give_the_same_verdicts() {
    let Some(r) = run(
        "streamed_answers_with_n_choices_per_request_give_the_same_verdicts",
        mixed(),
        |c| {
            c.client.stream = true;
            c.per_request = 5;
            c.seed = Some(42);
        },
    )
    .await
    else {
        return;
    };
    check_mixed(&r).await;
    let reqs = r.fake.requests();
    assert_eq!(reqs.len(), 1, "one request with n = 5");
    assert!(reqs[0].stream && reqs[0].n == 5);
    assert_eq!(reqs[0].body["seed"], 42);
    assert_eq!(r.result.metadata["sampling"]["seed"], 42);
}

#[tokio::test]
async fn all_cheating_is_pass_at_k_false_and_unverified() {
    let script = policy::sample([
        answer(&weakened()),
        answer(&with_sorry()),
        answer(&native()),
        answer(&with_axiom()),
    ]);
    let Some(r) = run(
        "all_cheating_is_pass_at_k_false_and_unverified",
        script,
        |c| c.samples = 4,
    )
    .await
    else {
        return;
    };
    assert_eq!(r.result.status, Status::Unverified);
    assert_eq!(r.result.metadata["pass_at_k"], false);
    assert_eq!(r.result.metadata["verified_count"], 0);
    assert_eq!(verdicts(&r), vec!["unverified"; 4]);
    assert_eq!(r.result.metadata["pass_at"]["4"], 0.0);
    // The last candidate is the one in OUT/wd (and the lifecycle refused it too).
    assert_eq!(r.result.metadata["best_sample"], 3);
}

#[tokio::test]
async fn a_truncated_answer_is_a_failed_sample_with_a_reason() {
    let script = Script::new(vec![Turn::truncated()]).repeating_last();
    let Some(r) = run(
        "a_truncated_answer_is_a_failed_sample_with_a_reason",
        script,
        |c| c.samples = 2,
    )
    .await
    else {
        return;
    };
    assert_eq!(verdicts(&r), vec!["no_code", "no_code"]);
    for s in r.samples() {
        let reason = s["reason"].as_str().unwrap_or("");
        assert!(
            reason.contains("cut at the output limit (finish_reason length)"),
            "{reason}"
        );
        assert_eq!(
            s["rounds"][0]["finish_reasons"],
            serde_json::json!(["length"])
        );
    }
    assert_eq!(
        r.result.metadata["verification"],
        serde_json::json!({"build_sandboxes": 0, "candidates_verified": 0}),
        "nothing to verify, no sandbox"
    );
    assert_eq!(r.result.metadata["best_sample"], Value::Null);
    // OUT/wd stays the task: the lifecycle's verdict is unverified (sorry), not an error.
    assert_eq!(r.result.status, Status::Unverified);
}

#[tokio::test]
async fn stop_on_first_stops_at_the_first_verified_sample() {
    // A slow model (streamed, 0.4 s between events: seconds per answer), so that the first
    // candidate is verified while later answers are still being generated.
    let mut script = policy::sample([answer(HONEST)]);
    script.event_delay_ms = 400;
    let Some(r) = run(
        "stop_on_first_stops_at_the_first_verified_sample",
        script,
        |c| {
            c.samples = 6;
            c.client.stream = true;
            c.concurrency = 1;
            c.batch_workers = 1;
            c.stop_on_first = true;
        },
    )
    .await
    else {
        return;
    };
    assert_eq!(r.result.status, Status::Verified);
    let m = &r.result.metadata;
    assert_eq!(m["verified_count"], 1, "{:?}", verdicts(&r));
    assert_eq!(m["stopped_early"], true);
    assert!(
        m.get("pass_at").is_none(),
        "no estimates from an early stop"
    );
    assert!(
        r.fake.requests().len() < 6,
        "sampling stopped: {} requests",
        r.fake.requests().len()
    );
    assert!(verdicts(&r).iter().any(|v| v == "skipped"));
}

#[tokio::test]
async fn self_correction_feeds_the_findings_back() {
    // Round 0 (no assistant turn yet) cheats with a sorry; the correction (one assistant turn
    // in the conversation) is honest.
    let script = Script::new(vec![
        Turn::sample([answer(&with_sorry())]),
        Turn::sample([answer(HONEST)]),
    ])
    .repeating_last();
    let Some(r) = run("self_correction_feeds_the_findings_back", script, |c| {
        c.samples = 1;
        c.rounds = 2;
    })
    .await
    else {
        return;
    };
    assert_eq!(r.result.status, Status::Verified);
    let s = &r.samples()[0];
    assert_eq!(s["verdict"], "verified");
    let rounds = s["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 2, "verified in round 1: no round 2");
    assert_eq!(rounds[0]["verdict"], "unverified");
    assert_eq!(rounds[1]["verdict"], "verified");
    let reqs = r.fake.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].turn_index, Some(1));
    let msgs = reqs[1].body["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[1]["role"], "assistant");
    let feedback = msgs[2]["content"].as_str().unwrap_or("");
    assert!(feedback.contains("sorry"), "{feedback}");
    assert!(feedback.contains("Fixture.lean"), "{feedback}");
}

#[tokio::test]
async fn theorem_splicing_asks_per_theorem_and_assembles_the_candidate() {
    // One answer per declaration, each only the declaration (helpers allowed).
    let script = Script::new(vec![Turn::sample([
        answer("theorem add_zero' (n : ℕ) : n + 0 = n := by\n  simp"),
        answer("theorem two_mul' (n : ℕ) : 2 * n = n + n := by\n  omega"),
        answer("example : (2 : ℕ) + 2 = 4 := by\n  norm_num"),
    ])])
    .repeating_last();
    let Some(r) = run(
        "theorem_splicing_asks_per_theorem_and_assembles_the_candidate",
        script,
        |c| {
            c.samples = 1;
            c.concurrency = 1;
            c.splice = SpliceMode::Theorem;
        },
    )
    .await
    else {
        return;
    };
    assert_eq!(
        r.result.status,
        Status::Verified,
        "{:?}",
        r.result.metadata["samples"]
    );
    assert_eq!(
        r.fake.requests().len(),
        3,
        "one request per declaration with a sorry"
    );
    assert_eq!(r.result.metadata["units"].as_array().map(Vec::len), Some(3));
    assert_eq!(r.result.metadata["sampling"]["template"], "builtin:theorem");
}

#[tokio::test]
async fn a_rate_limit_then_a_server_error_from_the_model_are_retried() {
    let test = "a_rate_limit_then_a_server_error_from_the_model_are_retried";
    if docker(test).await.is_none() {
        return;
    }
    // The fake answers by turn, so the script is switched as requests arrive: 429 (retry-after
    // 1 s), then 500, then the honest answer.
    let fake = Arc::new(
        ModelFake::start(Script::new(vec![Turn::rate_limited(1)]).repeating_last())
            .await
            .expect("fake"),
    );
    let switch = async {
        let wait_for = |n: usize| {
            let fake = Arc::clone(&fake);
            async move {
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                while fake.requests().len() < n {
                    if std::time::Instant::now() > deadline {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        };
        wait_for(1).await;
        fake.set_script(Script::new(vec![Turn::error(500)]).repeating_last());
        wait_for(2).await;
        fake.set_script(policy::sample([answer(HONEST)]));
    };
    let (ran, ()) = tokio::join!(run_with(test, Arc::clone(&fake), |c| c.samples = 1), switch);
    let Some(r) = ran else {
        return;
    };
    assert_eq!(
        r.result.status,
        Status::Verified,
        "{:?}",
        r.result.metadata["samples"]
    );
    let answered: Vec<String> = r
        .fake
        .requests()
        .iter()
        .map(|q| format!("{:?}", q.answered))
        .collect();
    assert_eq!(r.fake.requests().len(), 3, "{answered:?}");
    assert!(
        answered[0].contains("429") && answered[1].contains("500"),
        "{answered:?}"
    );
}
