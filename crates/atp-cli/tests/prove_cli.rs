//! `atp prove` end to end with the `tactics` prover: the real binary, the real Docker engine and
//! the stand-in `lake` of the test image (which "closes" a goal with a tactic named by a
//! `-- STANDIN_CLOSES` marker). Also the commands around it: `atp provers`, `atp auth-status`,
//! `atp examples`.

use std::path::Path;
use std::process::{Command, Output};

use atp_test_support::{count_managed, fixture, skip, test_image};

/// Credential variables a developer's shell may hold; every test runs without them.
const CREDENTIAL_VARS: &[&str] = &[
    "CLAUDE_CODE_OAUTH_TOKEN",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "CODEX_HOME",
    "DEEPSEEK_API_KEY",
    "DEEPSEEK_BASE_URL",
    "XAI_API_KEY",
    "XAI_BASE_URL",
    "MISTRAL_API_KEY",
    "MISTRAL_BASE_URL",
    "GOOGLE_API_KEY",
    "GOOGLE_GENERATIVE_AI_API_KEY",
    "OPENROUTER_API_KEY",
    "XDG_DATA_HOME",
    "KIMI_CODE_HOME",
    "KIMI_BASE_URL",
    "KIMI_CODE_BASE_URL",
    "KIMI_CODE_OAUTH_HOST",
    "ARISTOTLE_API_KEY",
    "ARISTOTLE_WEB_URL",
];

fn atp(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_atp"));
    c.args(args).current_dir(cwd);
    for v in CREDENTIAL_VARS {
        c.env_remove(v);
    }
    // No login file of the machine's user is seen: HOME is the test's directory.
    c.env("HOME", cwd);
    // No stored `aristotle login` key from the developer's home.
    c.env("XDG_CONFIG_HOME", cwd.join(".no-config"));
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("atp runs")
}

fn engine_ready(test: &str) -> bool {
    let tmp = tempfile::tempdir().expect("tmp");
    let o = atp(
        &["doctor", "--json", "--image", &test_image()],
        &[],
        tmp.path(),
    );
    if !o.status.success() {
        skip(test, &format!("needs a Docker engine and {}", test_image()));
    }
    o.status.success()
}

fn result(out: &Path) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(out.join("logs/result.json")).expect("result.json is written"),
    )
    .expect("result.json is JSON")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

async fn leftovers(run: &str) -> usize {
    count_managed(Some(run)).await
}

fn prove_tactics(input: &Path, out: &Path, run: &str) -> Output {
    let tmp = tempfile::tempdir().expect("tmp");
    atp(
        &[
            "prove",
            input.to_str().expect("utf8"),
            "--prover",
            "tactics",
            "--image",
            &test_image(),
            "--network",
            "none",
            "--run-id",
            run,
            "--json",
            "--output",
            out.to_str().expect("utf8"),
        ],
        &[],
        tmp.path(),
    )
}

#[tokio::test]
async fn tactics_proves_the_closable_task_and_the_verifier_agrees() {
    if !engine_ready("tactics_proves_the_closable_task_and_the_verifier_agrees") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let run = format!("t-{}", uuid_like());
    let o = prove_tactics(&fixture("tactics_closable"), &out, &run);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = result(&out);
    let printed: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("--json prints the result");
    assert_eq!(printed, r);
    assert_eq!(r["status"], "verified");
    assert_eq!(r["prover"]["name"], "tactics");
    assert_eq!(r["cost"]["source"], "free");
    assert_eq!(r["verification"]["verified"], true);
    assert_eq!(r["metadata"]["closed"], 3);
    let proof = r["completed_files"]["Fixture.lean"]
        .as_str()
        .expect("changed file");
    assert!(proof.contains("focus (omega; done)"), "{proof}");
    assert!(!proof.contains("sorry"), "{proof}");
    // The pristine task and the candidate are both kept; the task is untouched.
    let task = std::fs::read_to_string(out.join("task/Fixture.lean")).expect("task copy");
    assert!(task.contains("sorry"));
    // atp's own trace: JSON lines carrying the run id, the phases and the sandbox id.
    let trace = std::fs::read_to_string(out.join("logs/atp.jsonl")).expect("trace");
    let events: Vec<serde_json::Value> = trace
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(
        events.iter().all(|e| e["span"]["run_id"] == run.as_str()),
        "{trace}"
    );
    assert!(events
        .iter()
        .any(|e| e["fields"]["phase"] == "verification"));
    assert!(
        events.iter().any(|e| e["fields"]["sandbox"].is_string()),
        "{trace}"
    );
    assert_eq!(leftovers(&run).await, 0, "the run left containers");
}

#[tokio::test]
async fn tactics_reports_unverified_when_it_cannot_close_a_goal() {
    if !engine_ready("tactics_reports_unverified_when_it_cannot_close_a_goal") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let run = format!("t-{}", uuid_like());
    let o = prove_tactics(&fixture("original"), &out, &run);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = result(&out);
    assert_eq!(r["status"], "unverified");
    assert_eq!(r["metadata"]["closed"], 0);
    let kinds: Vec<&str> = r["verification"]["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .filter_map(|v| v["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"sorry"), "{kinds:?}");
    assert_eq!(leftovers(&run).await, 0);
}

#[tokio::test]
async fn a_bare_lean_file_is_staged_into_the_skeleton() {
    if !engine_ready("a_bare_lean_file_is_staged_into_the_skeleton") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let run = format!("t-{}", uuid_like());
    let o = prove_tactics(
        &fixture("tactics_closable").join("Fixture.lean"),
        &out,
        &run,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = result(&out);
    assert_eq!(r["task"], "Fixture");
    assert!(out.join("task/lakefile.toml").is_file());
    assert!(out.join("wd/lean-toolchain").is_file());
    assert_eq!(leftovers(&run).await, 0);
}

#[tokio::test]
async fn a_missing_credential_is_one_line_before_anything_exists() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let run = format!("t-{}", uuid_like());
    let o = atp(
        &[
            "prove",
            fixture("original").to_str().expect("utf8"),
            "--prover",
            "claude",
            "--image",
            &test_image(),
            "--run-id",
            &run,
            "--output",
            out.to_str().expect("utf8"),
        ],
        &[],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: claude: no credential found — set CLAUDE_CODE_OAUTH_TOKEN"),
        "{err}"
    );
    assert!(
        !out.exists(),
        "no output directory before the credential check"
    );
    assert_eq!(leftovers(&run).await, 0);
}

#[test]
fn unknown_provers_and_missing_inputs_are_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let o = atp(
        &["prove", "/nonexistent/task", "--prover", "tactics"],
        &[],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        "error: no such file or directory: /nonexistent/task"
    );
    let o = atp(
        &[
            "prove",
            fixture("original").to_str().expect("utf8"),
            "--prover",
            "nope",
        ],
        &[],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("unknown prover `nope` — known provers: claude, codex, opencode, deepseek, grok, vibe, leanstral, axprover, kimi, numina, tactics, aristotle, sample"),
        "{}",
        text(&o)
    );
}

#[test]
fn provers_are_listed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let o = atp(&["provers"], &[], tmp.path());
    assert!(o.status.success());
    insta::assert_snapshot!(String::from_utf8_lossy(&o.stdout));
    let o = atp(&["provers", "--json"], &[], tmp.path());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    insta::assert_json_snapshot!(v);
}

#[test]
fn auth_status_names_sources_never_values() {
    let tmp = tempfile::tempdir().expect("tmp");
    let o = atp(
        &["auth-status", "--json"],
        &[("ANTHROPIC_API_KEY", "sk-ant-secret-value")],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("secret-value"));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    insta::assert_json_snapshot!(v);
    // One prover with nothing configured: a negative answer with the remedy.
    let o = atp(&["auth-status", "claude"], &[], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    insta::assert_snapshot!(String::from_utf8_lossy(&o.stdout));
}

#[test]
fn a_dotenv_in_a_parent_directory_is_read_without_overriding() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(
        tmp.path().join(".env"),
        "ANTHROPIC_API_KEY=from-dotenv\nCLAUDE_CODE_OAUTH_TOKEN='also-from-dotenv'\n",
    )
    .expect("w");
    let sub = tmp.path().join("a/b");
    std::fs::create_dir_all(&sub).expect("mk");
    let o = atp(&["auth-status", "claude", "--json"], &[], &sub);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v[0]["source"], "env CLAUDE_CODE_OAUTH_TOKEN");
    assert!(!text(&o).contains("from-dotenv"));
}

#[test]
fn examples_are_written_as_files_and_as_a_project() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("ex");
    let o = atp(
        &["examples", dir.to_str().expect("utf8"), "--json"],
        &[],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    insta::assert_json_snapshot!(v["files"]);
    let mul = std::fs::read_to_string(dir.join("MulReorder.lean")).expect("file");
    assert!(mul.contains("example (a b c : ℝ) : c * b * a = b * (a * c)"));
    assert!(dir.join("project/lakefile.toml").is_file());
    let again = atp(&["examples", dir.to_str().expect("utf8")], &[], tmp.path());
    assert_eq!(again.status.code(), Some(2));
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", nanos, std::process::id())
}

/// Interrupt a prove mid-generation with `signal` and check what is left.
async fn interrupted(test: &str, signal: &str, want_code: i32) {
    if !engine_ready(test) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let run = format!("t-{}", uuid_like());
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_atp"))
        .args([
            "prove",
            fixture("hang_task").to_str().expect("utf8"),
            "--prover",
            "tactics",
            "--image",
            &test_image(),
            "--network",
            "none",
            "--run-id",
            &run,
            "--output",
            out.to_str().expect("utf8"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("atp starts");
    // Wait until the generation is running: a container exists and the first compile started.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let started = std::fs::read_to_string(out.join("logs/stdout.txt"))
            .map(|s| s.contains("## tactics"))
            .unwrap_or(false);
        if started && leftovers(&run).await > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let pid = child.id().expect("pid").to_string();
    let sent = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let waited = tokio::time::timeout(std::time::Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("atp exits after the signal")
        .expect("wait");
    let err = String::from_utf8_lossy(&waited.stderr);
    assert_eq!(waited.status.code(), Some(want_code), "{err}");
    let r = result(&out);
    assert_eq!(r["status"], "cancelled", "{r}");
    assert_eq!(r["error"]["kind"], "cancelled");
    assert_eq!(leftovers(&run).await, 0, "containers left after {signal}");
    // The pristine task is kept and the working copy was not left half-edited.
    assert!(out.join("task/Fixture.lean").is_file());
}

#[tokio::test]
async fn sigint_mid_generation_cancels_cleans_up_and_writes_the_result() {
    interrupted(
        "sigint_mid_generation_cancels_cleans_up_and_writes_the_result",
        "-INT",
        130,
    )
    .await;
}

#[tokio::test]
async fn sigterm_mid_generation_cancels_cleans_up_and_writes_the_result() {
    interrupted(
        "sigterm_mid_generation_cancels_cleans_up_and_writes_the_result",
        "-TERM",
        143,
    )
    .await;
}

/// Tag `tag` as the test image plus one label (a distinct image id per `n`).
fn derived_image(tag: &str, n: u32) -> bool {
    use std::io::Write as _;
    let mut child = match Command::new("docker")
        .args(["build", "-q", "-t", tag, "-"])
        .env("DOCKER_BUILDKIT", "0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(_) => return false,
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = writeln!(stdin, "FROM {}\nLABEL atp.rerun-test={n}", test_image());
    }
    child.wait().map(|s| s.success()).unwrap_or(false)
}

#[tokio::test]
async fn rerun_repeats_the_recorded_run_and_refuses_a_changed_image() {
    let test = "rerun_repeats_the_recorded_run_and_refuses_a_changed_image";
    if !engine_ready(test) {
        return;
    }
    let tag = format!("atp-rerun-test:{}", uuid_like());
    if !derived_image(&tag, 1) {
        skip(test, "needs the docker CLI to derive a test image");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let first = tmp.path().join("first");
    let o = atp(
        &[
            "prove",
            fixture("tactics_closable").to_str().expect("utf8"),
            "--prover",
            "tactics",
            "--tactic",
            "omega",
            "--tactic",
            "simp",
            "--tactic",
            "decide",
            "--image",
            &tag,
            "--network",
            "none",
            "--prompt",
            "unused by tactics, recorded anyway",
            "--output",
            first.to_str().expect("utf8"),
        ],
        &[],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let second = tmp.path().join("second");
    let o = atp(
        &[
            "rerun",
            first.to_str().expect("utf8"),
            "--output",
            second.to_str().expect("utf8"),
        ],
        &[],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let (a, b) = (result(&first), result(&second));
    for key in ["prover", "image", "status", "completed_files"] {
        assert_eq!(
            a[key], b[key],
            "{key} differs between the run and its rerun"
        );
    }
    assert_eq!(a["provenance"]["task_hash"], b["provenance"]["task_hash"]);
    assert_eq!(
        a["provenance"]["agent_version"],
        b["provenance"]["agent_version"]
    );
    assert!(a["provenance"]["agent_version"]
        .as_str()
        .is_some_and(|v| v.contains("stand-in")));
    let (mut ia, mut ib) = (
        a["provenance"]["invocation"].clone(),
        b["provenance"]["invocation"].clone(),
    );
    assert_eq!(ia["args"]["prompt"], "unused by tactics, recorded anyway");
    ia["args"]["inputs"] = serde_json::Value::Null;
    ib["args"]["inputs"] = serde_json::Value::Null;
    ib["args"]["no_build"] = ia["args"]["no_build"].clone();
    assert_eq!(ia, ib, "the rerun used the recorded configuration");
    assert_ne!(a["run_id"], b["run_id"]);

    // The image under the same name changes: the rerun is refused, naming the difference.
    assert!(derived_image(&tag, 2));
    let o = atp(
        &[
            "rerun",
            first.to_str().expect("utf8"),
            "--output",
            tmp.path().join("third").to_str().expect("utf8"),
        ],
        &[],
        tmp.path(),
    );
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is not the one the run used: it was"), "{err}");
    assert!(!tmp.path().join("third").exists());
}

#[test]
fn bad_input_names_what_the_user_typed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let o = atp(
        &[
            "verify",
            "/nonexistent",
            "--output",
            out.to_str().expect("utf8"),
        ],
        &[],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        "error: no such file or directory: /nonexistent"
    );
    assert_eq!(result(&out)["error"]["kind"], "not_found");
    // A broken project file is named at the user's path, not at the copy under OUT/wd.
    if !engine_ready("bad_input_names_what_the_user_typed") {
        return;
    }
    let task = tmp.path().join("task");
    atp_lean::walk::copy_project(&fixture("original"), &task).expect("copy");
    std::fs::write(task.join("lean-toolchain"), "two words\n").expect("w");
    let out2 = tmp.path().join("out2");
    let o = atp(
        &[
            "verify",
            task.to_str().expect("utf8"),
            "--image",
            &test_image(),
            "--output",
            out2.to_str().expect("utf8"),
        ],
        &[],
        tmp.path(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{}", task.join("lean-toolchain").display())),
        "{err}"
    );
    assert!(!err.contains("/wd/"), "{err}");
}

#[test]
fn a_missing_image_with_no_build_is_one_line_with_the_remedy() {
    let tmp = tempfile::tempdir().expect("tmp");
    let o = atp(
        &[
            "prove",
            fixture("original").to_str().expect("utf8"),
            "--prover",
            "tactics",
            "--image",
            "atp-no-such-image:latest",
            "--no-build",
        ],
        &[],
        tmp.path(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("atp-no-such-image:latest"), "{err}");
    assert!(!tmp.path().join("atp-runs").exists());
}
