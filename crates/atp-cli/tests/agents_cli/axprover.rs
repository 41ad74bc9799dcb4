//! ax-prover through `atp prove` with the real ax-prover 0.2.0 CLI.
//!
//! ax-prover asks Lean before its first model call: `prove` opens a `lean_interact` server,
//! which clones the Lean REPL from GitHub and builds it with the real Lean toolchain. Neither
//! exists here (no Lean, no network), so this test checks what can be checked with the real
//! CLI: atp's launch loop runs it once per file with a `sorry`, ax-prover accepts atp's
//! `axprover.yaml` (it gets past config loading into the REPL set-up), its log is collected
//! into `OUT/logs/axprover/`, the key stays out of `OUT/`, and the failure is the error
//! `agent_failed` naming ax-prover's last line — never a verdict. The model conversation is
//! covered by the recorded LLM-layer transcripts (`fixtures/transcripts/axprover/`).

use atp_model_fake::{policy, ModelFake};

use super::common::{prove, ready, Invocation};

const KEY: &str = "sk-ant-axprover-key-never-printed";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axprover_runs_the_real_cli_per_file_and_reports_its_failure_as_an_error() {
    if !ready("axprover_runs_the_real_cli_per_file_and_reports_its_failure_as_an_error").await {
        return;
    }
    let fake = ModelFake::start(policy::solve("simp", "Done."))
        .await
        .expect("fake");
    let r = prove(
        &Invocation::new("axprover")
            .api_base(fake.url())
            .secret("ANTHROPIC_API_KEY", KEY)
            .args(&["--max-iterations", "2"]),
    )
    .await;
    assert_eq!(r.out.status.code(), Some(2), "{}", r.text());
    assert_eq!(r.result["status"], "error", "{}", r.result);
    assert_eq!(r.result["error"]["kind"], "agent_failed", "{}", r.result);
    assert!(r.result["verification"].is_null());
    // The loop found the one file with a sorry and ran ax-prover on it.
    let stdout = r.stdout_txt();
    assert!(
        stdout.contains(r#"{"type":"atp.file","file":"Fixture.lean"}"#),
        "{stdout}"
    );
    assert_eq!(r.result["metadata"]["files"], 1, "{}", r.result["metadata"]);
    assert_eq!(r.result["metadata"]["failed_files"], 1);
    // ax-prover read atp's config and stopped in lean_interact's REPL set-up.
    let log = std::fs::read_to_string(r.out_dir().join("logs/axprover/ax_prover.Fixture_lean.log"))
        .expect("ax-prover's log is collected");
    assert!(log.contains("lean_interact"), "{log}");
    assert!(!log.contains("ValidationError"), "{log}");
    assert!(!r.out_dir().join("wd/.atp/ax").exists());
    // No model call was made, so no usage is invented.
    assert!(fake.requests().is_empty());
    assert_eq!(
        r.result["usage"]["input_tokens"], 0,
        "{}",
        r.result["usage"]
    );
}
