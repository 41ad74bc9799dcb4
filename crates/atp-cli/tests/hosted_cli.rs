//! `atp prove` end to end with the provers that run on the host, through the real binary: the
//! `aristotle` prover against a wiremock Aristotle on 127.0.0.1, the `sample` prover against
//! atp-model-fake; every candidate verified on the real Docker engine with the test image's
//! stand-in `lake`. Engine tests: skipped loudly without an engine.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use atp_model_fake::{policy, ModelFake};
use atp_test_support::{count_managed, fixture, skip, test_image};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Credential and endpoint variables a developer's shell may hold; every test runs without.
const CLEARED: &[&str] = &[
    "CLAUDE_CODE_OAUTH_TOKEN",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "OPENAI_API_KEY",
    "ARISTOTLE_API_KEY",
    "ARISTOTLE_WEB_URL",
];

const KEY: &str = "aristotle-test-key-42";

async fn atp(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Output {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_atp"));
    c.args(args).current_dir(cwd);
    for v in CLEARED {
        c.env_remove(v);
    }
    // No stored `aristotle login` key from the developer's home.
    c.env("XDG_CONFIG_HOME", cwd.join(".config"));
    for (k, v) in env {
        c.env(k, v);
    }
    tokio::time::timeout(Duration::from_secs(300), c.output())
        .await
        .expect("atp finishes")
        .expect("atp runs")
}

async fn engine_ready(test: &str) -> bool {
    let tmp = tempfile::tempdir().expect("tmp");
    let o = atp(
        &["doctor", "--json", "--image", &test_image()],
        &[],
        tmp.path(),
    )
    .await;
    if !o.status.success() {
        skip(test, &format!("needs a Docker engine and {}", test_image()));
    }
    o.status.success()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

fn result(out: &Path) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(out.join("logs/result.json")).expect("result.json"),
    )
    .expect("json")
}

fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("h-{nanos:x}")
}

/// Every file under `dir` as text.
fn all_text(dir: &Path) -> String {
    let mut s = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                s.push_str(&String::from_utf8_lossy(&b));
            }
        }
    }
    s
}

const HONEST: &str = "import Mathlib\n\n/-! A small task: two theorems and an example, to be proved. -/\n\nnamespace Fixture\n\ntheorem add_zero' (n : ℕ) : n + 0 = n := by\n  simp\n\ntheorem two_mul' (n : ℕ) : 2 * n = n + n := by\n  omega\n\nexample : (2 : ℕ) + 2 = 4 := by\n  norm_num\n\nend Fixture\n";

fn targz(files: &[(&str, &str)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut t = tar::Builder::new(gz);
    for (p, body) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        t.append_data(&mut h, p, body.as_bytes()).expect("append");
    }
    t.into_inner().expect("tar").finish().expect("gz")
}

fn task(status: &str) -> serde_json::Value {
    json!({"project_id": "p-9", "agent_task_id": "t-9", "status": status, "percent_complete": null, "output_summary": null})
}

/// A fake Aristotle whose task reports `statuses` in turn (the last repeated).
async fn aristotle(statuses: &[&str], has_files: bool) -> MockServer {
    let s = MockServer::start().await;
    let ok = |v: serde_json::Value| ResponseTemplate::new(200).set_body_json(v);
    Mock::given(method("GET"))
        .and(path("/api/v3/version"))
        .respond_with(ok(
            json!({"lean_toolchain_version": "leanprover/lean4:v4.28.0"}),
        ))
        .mount(&s)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v3/project"))
        .respond_with(ok(json!({"project_id": "p-9", "has_files": false})))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v3/project/p-9/tasks"))
        .respond_with(ok(json!({"agent_tasks": [task("QUEUED")]})))
        .mount(&s)
        .await;
    let replies: Vec<ResponseTemplate> = statuses.iter().map(|st| ok(task(st))).collect();
    Mock::given(method("GET"))
        .and(path("/api/v3/task/t-9"))
        .respond_with(Steps(replies, std::sync::atomic::AtomicUsize::new(0)))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v3/project/p-9"))
        .respond_with(ok(json!({"project_id": "p-9", "has_files": has_files})))
        .mount(&s)
        .await;
    Mock::given(method("GET")).and(path("/api/v3/task/t-9/events"))
        .respond_with(ok(json!({"events": [{"event_type": 7, "created_at": "2026-07-01T10:00:00", "content": "", "explanation": "omega closes it"}], "pagination_key": null})))
        .mount(&s).await;
    Mock::given(method("GET"))
        .and(path("/api/v3/project/p-9/result"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(targz(&[
            ("wd_aristotle/Fixture.lean", HONEST),
            ("wd_aristotle/ARISTOTLE_SUMMARY.md", "Proved all three.\n"),
        ])))
        .mount(&s)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v3/task/t-9/cancel"))
        .respond_with(ok(task("CANCELED")))
        .mount(&s)
        .await;
    s
}

struct Steps(Vec<ResponseTemplate>, std::sync::atomic::AtomicUsize);

impl wiremock::Respond for Steps {
    fn respond(&self, _r: &wiremock::Request) -> ResponseTemplate {
        let i = self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0[i.min(self.0.len() - 1)].clone()
    }
}

async fn prove_aristotle(server: &MockServer, extra: &[&str], out: &Path, run: &str) -> Output {
    let tmp = tempfile::tempdir().expect("tmp");
    let uri = server.uri();
    let (task, image) = (fixture("original"), test_image());
    let mut args = vec![
        "prove",
        task.to_str().expect("utf8"),
        "--prover",
        "aristotle",
        "--poll-interval",
        "0.1",
        "--image",
        &image,
        "--network",
        "none",
        "--run-id",
        run,
        "--json",
        "--output",
        out.to_str().expect("utf8"),
    ];
    args.extend_from_slice(extra);
    atp(
        &args,
        &[("ARISTOTLE_WEB_URL", &uri), ("ARISTOTLE_API_KEY", KEY)],
        tmp.path(),
    )
    .await
}

#[tokio::test]
async fn aristotle_proves_through_atp_prove_and_the_verifier_agrees() {
    if !engine_ready("aristotle_proves_through_atp_prove_and_the_verifier_agrees").await {
        return;
    }
    let server = aristotle(&["IN_PROGRESS", "COMPLETE"], true).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let run = run_id();
    let o = prove_aristotle(&server, &[], &out, &run).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = result(&out);
    assert_eq!(r["status"], "verified");
    assert_eq!(r["prover"]["name"], "aristotle");
    assert_eq!(r["prover"]["kind"], "hosted");
    assert_eq!(r["metadata"]["task_status"], "COMPLETE");
    assert_eq!(r["metadata"]["project_id"], "p-9");
    assert_eq!(r["completed_files"]["Fixture.lean"], HONEST);
    assert_eq!(r["durations"]["provision_s"], 0.0, "no prover sandbox");
    for f in [
        "events.json",
        "transcript.txt",
        "summary.md",
        "aristotle_result.tar.gz",
        "result.json",
        "stdout.txt",
    ] {
        assert!(out.join("logs").join(f).is_file(), "logs/{f}");
    }
    assert!(
        !all_text(&out).contains(KEY),
        "the key leaked into the output directory"
    );
    assert!(!text(&o).contains(KEY));
    assert_eq!(count_managed(Some(&run)).await, 0);
}

#[tokio::test]
async fn aristotle_on_timeout_cancels_the_remote_task_and_says_so() {
    if !engine_ready("aristotle_on_timeout_cancels_the_remote_task_and_says_so").await {
        return;
    }
    let server = aristotle(&["IN_PROGRESS"], false).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let run = run_id();
    let o = prove_aristotle(&server, &["--timeout", "0.05"], &out, &run).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = result(&out);
    assert_eq!(r["status"], "timeout", "{r}");
    assert_eq!(
        r["metadata"]["remote_cancel"],
        json!({"attempted": true, "landed": true, "status": "CANCELED"})
    );
    let cancels = server
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|q| q.url.path() == "/api/v3/task/t-9/cancel")
        .count();
    assert_eq!(cancels, 1);
    assert_eq!(count_managed(Some(&run)).await, 0);
}

#[tokio::test]
async fn aristotle_on_ctrl_c_cancels_the_remote_task_and_says_so() {
    if !engine_ready("aristotle_on_ctrl_c_cancels_the_remote_task_and_says_so").await {
        return;
    }
    let server = aristotle(&["IN_PROGRESS"], false).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let run = run_id();
    let (task, image, uri) = (fixture("original"), test_image(), server.uri());
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_atp"));
    c.args([
        "prove",
        task.to_str().expect("utf8"),
        "--prover",
        "aristotle",
        "--poll-interval",
        "0.1",
        "--image",
        &image,
        "--network",
        "none",
        "--run-id",
        &run,
        "--output",
        out.to_str().expect("utf8"),
    ])
    .current_dir(tmp.path())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped());
    for v in CLEARED {
        c.env_remove(v);
    }
    c.env("XDG_CONFIG_HOME", tmp.path().join(".config"))
        .env("ARISTOTLE_WEB_URL", &uri)
        .env("ARISTOTLE_API_KEY", KEY);
    let child = c.spawn().expect("atp starts");
    // Wait until the remote task is being polled.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let polled = server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|q| q.url.path() == "/api/v3/task/t-9")
            .count();
        if polled >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the task was never polled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = child.id().expect("pid").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let o = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("atp exits after Ctrl-C")
        .expect("wait");
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    let r = result(&out);
    assert_eq!(r["status"], "cancelled", "{r}");
    assert_eq!(
        r["metadata"]["remote_cancel"],
        json!({"attempted": true, "landed": true, "status": "CANCELED"}),
        "{r}"
    );
    let cancels = server
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|q| q.url.path() == "/api/v3/task/t-9/cancel")
        .count();
    assert_eq!(cancels, 1);
    assert!(!all_text(&out).contains(KEY));
    assert_eq!(count_managed(Some(&run)).await, 0);
}

#[tokio::test]
async fn aristotle_without_a_key_is_one_line_before_anything_exists() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let o = atp(
        &[
            "prove",
            fixture("original").to_str().expect("utf8"),
            "--prover",
            "aristotle",
            "--output",
            out.to_str().expect("utf8"),
        ],
        &[],
        tmp.path(),
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: aristotle: no credential found — run `aristotle login`"),
        "{err}"
    );
    assert!(!out.exists());
    // A stored `aristotle login` key is enough.
    let cfg = tmp.path().join(".config/aristotle");
    std::fs::create_dir_all(&cfg).expect("mk");
    std::fs::write(
        cfg.join("credentials.json"),
        format!("{{\"api_key\": \"{KEY}\"}}"),
    )
    .expect("w");
    let o = atp(&["auth-status", "aristotle", "--json"], &[], tmp.path()).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(
        v[0]["source"]
            .as_str()
            .unwrap_or("")
            .ends_with(".config/aristotle/credentials.json"),
        "{v}"
    );
    assert!(!text(&o).contains(KEY));
}

fn answer(code: &str) -> String {
    format!("Here is the proof.\n\n{}\n", policy::lean_block(code))
}

#[tokio::test]
async fn sample_finds_the_honest_candidate_through_atp_prove() {
    if !engine_ready("sample_finds_the_honest_candidate_through_atp_prove").await {
        return;
    }
    let weakened = HONEST.replace(
        "(n : ℕ) : n + 0 = n := by\n  simp",
        "(n : ℕ) : True := by\n  trivial",
    );
    let sorry = HONEST.replace("  omega", "  sorry");
    let fake = ModelFake::start(policy::sample([
        answer(&weakened),
        answer(&sorry),
        answer(HONEST),
    ]))
    .await
    .expect("fake");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let run = run_id();
    let base = format!("{}/v1", fake.url());
    let o = atp(
        &[
            "prove",
            fixture("original").to_str().expect("utf8"),
            "--prover",
            "sample",
            "--api-base",
            &base,
            "--model",
            "prover-7b",
            "-k",
            "3",
            "--stream",
            "--batch-workers",
            "2",
            "--seed",
            "7",
            "--image",
            &test_image(),
            "--network",
            "none",
            "--run-id",
            &run,
            "--json",
            "--output",
            out.to_str().expect("utf8"),
        ],
        &[],
        tmp.path(),
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = result(&out);
    assert_eq!(r["status"], "verified");
    assert_eq!(r["prover"]["kind"], "sampling");
    assert_eq!(r["prover"]["model"], "prover-7b");
    let m = &r["metadata"];
    assert_eq!(m["pass_at_k"], true);
    assert_eq!(m["verified_count"], 1);
    assert_eq!(m["k"], 3);
    assert_eq!(m["verification"]["build_sandboxes"], 1);
    assert_eq!(m["verification"]["candidates_verified"], 3);
    assert_eq!(m["sampling"]["seed"], 7);
    assert_eq!(m["sampling"]["stream"], true);
    let verdicts: Vec<&str> = m["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .filter_map(|s| s["verdict"].as_str())
        .collect();
    let mut sorted = verdicts.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec!["unverified", "unverified", "verified"],
        "{verdicts:?}"
    );
    assert_eq!(r["completed_files"]["Fixture.lean"], HONEST);
    assert_eq!(fake.requests().len(), 3);
    assert_eq!(count_managed(Some(&run)).await, 0);
}

#[tokio::test]
async fn sample_without_a_model_is_one_line_before_anything_exists() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let o = atp(
        &[
            "prove",
            fixture("original").to_str().expect("utf8"),
            "--prover",
            "sample",
            "--api-base",
            "http://127.0.0.1:9/v1",
            "--output",
            out.to_str().expect("utf8"),
        ],
        &[],
        tmp.path(),
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: sample: --model is required"),
        "{err}"
    );
    assert!(!out.exists());
}
