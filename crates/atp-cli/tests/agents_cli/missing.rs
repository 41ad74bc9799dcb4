//! Every agent prover refuses to start without its credential: one line with the remedy,
//! before any directory or container exists.

use super::common::{prove, ready, Invocation};
use atp_test_support::count_managed;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_credential_is_one_line_with_the_remedy_before_anything_exists() {
    if !ready("a_missing_credential_is_one_line_with_the_remedy_before_anything_exists").await {
        return;
    }
    // (prover, what the remedy must name)
    let cases = [
        ("codex", "codex login"),
        ("opencode", "DEEPSEEK_API_KEY"),
        ("deepseek", "DEEPSEEK_API_KEY"),
        ("grok", "opencode auth login"),
        ("vibe", "MISTRAL_API_KEY"),
        ("leanstral", "MISTRAL_API_KEY"),
        ("axprover", "ANTHROPIC_API_KEY"),
        ("kimi", "kimi login"),
        ("numina", "CLAUDE_CODE_OAUTH_TOKEN"),
    ];
    for (prover, remedy) in cases {
        let r = prove(&Invocation::new(prover)).await;
        assert_eq!(r.out.status.code(), Some(2), "{prover}: {}", r.text());
        let err = String::from_utf8_lossy(&r.out.stderr).into_owned();
        assert_eq!(err.lines().count(), 1, "{prover}: {err}");
        assert!(
            err.starts_with(&format!("error: {prover}: no credential found — ")),
            "{prover}: {err}"
        );
        assert!(err.contains(remedy), "{prover}: {err}");
        assert!(
            !r.out_dir().exists(),
            "{prover}: an output directory exists"
        );
        assert!(r.result.is_null());
        assert_eq!(count_managed(Some(&r.run)).await, 0);
    }
}
