//! The REAL agent CLIs against the fake (`real-clis/run.sh`), not run in CI: they are large
//! downloads (see `real-clis/README.md`). Run with
//! `cargo test -p atp-model-fake --test tests real_clis -- --ignored --nocapture`;
//! `ATP_REAL_CLIS=claude_code,codex` picks CLIs (default: every one that is installed).

use std::path::{Path, PathBuf};
use std::process::Command;

use atp_model_fake::{Answered, Recorded};

const CLIS: &[&str] = &["claude_code", "codex", "opencode", "vibe", "axprover"];
const LEAN: &str = "theorem t : 1 + 1 = 2 := by\n  sorry\n";

fn run_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("real-clis/run.sh")
}

/// Whether the CLI's executable is where run.sh looks for it.
fn installed(cli: &str) -> bool {
    let npm = std::env::var("ATP_AGENTS_NPM").unwrap_or_else(|_| "/tmp/agents-npm".into());
    let nm = Path::new(&npm).join("node_modules");
    let path = match cli {
        "claude_code" => nm.join("@anthropic-ai/claude-code-linux-x64/claude"),
        "codex" => nm.join("@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"),
        "opencode" => nm.join("opencode-linux-x64/bin/opencode"),
        "vibe" => std::env::var("ATP_VIBE")
            .unwrap_or_else(|_| "/tmp/vibe-venv/bin/vibe".into())
            .into(),
        _ => std::env::var("ATP_AX_PYTHON")
            .unwrap_or_else(|_| "/tmp/ax-venv/bin/python".into())
            .into(),
    };
    path.exists()
}

struct Run {
    exit: i32,
    stdout: String,
    stderr: String,
    lean: String,
    requests: Vec<Recorded>,
}

fn run(cli: &str, scenario: &str, dir: &Path) -> Run {
    let out = dir.join(format!("{cli}-{scenario}"));
    let status = Command::new("bash")
        .arg(run_sh())
        .args([cli, scenario])
        .arg(&out)
        .env("ATP_MODEL_FAKE", env!("CARGO_BIN_EXE_atp-model-fake"))
        .status()
        .expect("run.sh");
    assert!(status.success(), "run.sh {cli} {scenario} failed");
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap_or_default();
    Run {
        exit: read("exit_code").trim().parse().expect("exit code"),
        stdout: read("stdout.jsonl"),
        stderr: read("stderr.txt"),
        lean: read("proj/Main.lean"),
        requests: read("requests.jsonl")
            .lines()
            .map(|l| serde_json::from_str(l).expect("recorded request"))
            .collect(),
    }
}

#[test]
#[ignore = "needs the real agent CLIs (real-clis/README.md)"]
fn real_clis_solve_and_report_auth_failures() {
    let wanted: Vec<String> = std::env::var("ATP_REAL_CLIS")
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_else(|_| CLIS.iter().map(|s| s.to_string()).collect());
    let dir = tempfile::tempdir().expect("tmp");
    let mut ran = 0;
    for cli in &wanted {
        if !installed(cli) {
            eprintln!("!!! SKIPPED real CLI {cli}: not installed (see real-clis/README.md)");
            continue;
        }
        ran += 1;
        let solve = run(cli, "solve", dir.path());
        assert_eq!(
            solve.exit, 0,
            "{cli} solve: {}\n{}",
            solve.stdout, solve.stderr
        );
        let answered: Vec<&Answered> = solve.requests.iter().map(|r| &r.answered).collect();
        assert!(
            answered.iter().any(|a| matches!(a, Answered::Text { .. })),
            "{cli}: {answered:?}"
        );
        assert!(
            !answered
                .iter()
                .any(|a| matches!(a, Answered::Failure { .. })),
            "{cli}: {answered:?}"
        );
        if cli == "axprover" {
            // Its LLM layer only: both providers' proposals parsed.
            assert_eq!(solve.stdout.matches("\"call\": \"proposer\"").count(), 2);
            assert!(solve.stdout.contains("by\\n  rfl"), "{}", solve.stdout);
        } else {
            assert!(
                answered
                    .iter()
                    .any(|a| matches!(a, Answered::ToolCall { .. })),
                "{cli}: {answered:?}"
            );
            assert_eq!(
                solve.lean,
                LEAN.replace("sorry", "rfl"),
                "{cli} edited the file"
            );
        }

        let auth = run(cli, "auth_401", dir.path());
        assert_ne!(auth.exit, 0, "{cli} must fail on a refused key");
        assert_eq!(auth.lean, LEAN, "{cli} changed nothing");
        assert!(auth
            .requests
            .iter()
            .filter(|r| r.turn_index.is_some())
            .all(|r| r.answered == Answered::Error { status: 401 }));
        let transcript = format!("{}\n{}", auth.stdout, auth.stderr).to_lowercase();
        assert!(
            [
                "invalid api key",
                "invalid x-api-key",
                "401 unauthorized",
                "authentication_failed",
                "incorrect api key"
            ]
            .iter()
            .any(|p| transcript.contains(p)),
            "{cli}: no auth failure in its output:\n{transcript}"
        );
    }
    assert!(ran > 0, "no real CLI installed; nothing was checked");
}
