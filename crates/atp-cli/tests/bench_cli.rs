//! `atp datasets`, `atp download`, `atp benchmark` and `atp report` end to end: the real binary,
//! a dataset in a local git repository (a `file://` remote built by the test — no other host is
//! reachable), the real Docker engine with the stand-in `lake`, the `tactics` prover and the real
//! Claude Code CLI driven by the scripted model fake on 127.0.0.1.
//!
//! The dataset has six tasks: two the stand-in lets `tactics` close (`-- STANDIN_CLOSES`), two
//! without markers (one the scripted model gives up on), and two PutnamBench-style definition
//! holes with their answers in the comment after `:= sorry` — one the model fills with the
//! official answer, one with a trivialising value.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use atp_model_fake::{ModelFake, Script, Turn};
use atp_test_support::{agents_image, count_managed, skip, test_image, CreationRecorder};

const KEY: &str = "sk-ant-bench-key-never-printed";

/// What the scripted model does in the sandbox: skip files marked FAKE_MODEL_GIVES_UP, fill a
/// `_solution` hole with the value of FAKE_MODEL_FILLS, replace every other `sorry` with `simp`.
const SOLVE: &str = r#"for f in $(find . -name .lake -prune -o -type f -name '*.lean' -print); do grep -q FAKE_MODEL_GIVES_UP "$f" && continue; v=$(sed -n 's/.*FAKE_MODEL_FILLS \([0-9]*\).*/\1/p' "$f" | head -n 1); if [ -n "$v" ]; then sed -i "s/\(_solution : .*\) := sorry/\1 := $v/" "$f"; fi; sed -i 's/\<sorry\>/simp/g' "$f"; done"#;
const GIVE_UP: &str = "echo 'no idea'";

const TASKS: &[(&str, &str)] = &[
    (
        "t1_simp.lean",
        "import Mathlib\n\ntheorem t1 (n : ℕ) : n + 0 = n := by\n  -- STANDIN_CLOSES simp\n  sorry\n",
    ),
    (
        "t2_omega.lean",
        "import Mathlib\n\ntheorem t2 (n : ℕ) : 2 * n = n + n := by\n  -- STANDIN_CLOSES omega\n  sorry\n",
    ),
    (
        "t3_hard.lean",
        "import Mathlib\n\ntheorem t3 (a b : ℕ) : a + b = b + a := by\n  sorry\n",
    ),
    (
        "t4_hard.lean",
        "import Mathlib\n\n-- FAKE_MODEL_GIVES_UP\ntheorem t4 (a b c : ℕ) : a * (b + c) = a * b + a * c := by\n  sorry\n",
    ),
    (
        "hole_right.lean",
        "import Mathlib\n\nabbrev hole_right_solution : ℕ := sorry\n-- 2\n\n/-- What is 1 + 1? -/\ntheorem hole_right : hole_right_solution = 1 + 1 := by\n  sorry\n-- FAKE_MODEL_FILLS 2\n",
    ),
    (
        "hole_trivial.lean",
        "import Mathlib\n\nabbrev hole_trivial_solution : ℕ := sorry\n-- 3\n\n/-- The answer bounds itself. -/\ntheorem hole_trivial : hole_trivial_solution ≤ 3 := by\n  sorry\n-- FAKE_MODEL_FILLS 0\n",
    ),
];

fn atp(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_atp"));
    c.args(args).current_dir(cwd);
    for v in [
        "CLAUDE_CODE_OAUTH_TOKEN",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "ATP_BACKEND",
        "ATP_IMAGE",
    ] {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("atp runs")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .args([
            "-c",
            "user.name=atp-test",
            "-c",
            "user.email=test@atp.invalid",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A PutnamBench-shaped repository: `lean4/src/*.lean`, `lean4/lean-toolchain` with the image's
/// toolchain, a README outside the folder. Two commits; returns (file:// URL, first, second).
fn dataset_repo(root: &Path, tasks: &[(&str, &str)]) -> (String, String, String) {
    let repo = root.join("PutnamBench");
    std::fs::create_dir_all(repo.join("lean4/src")).expect("mkdir");
    git(&repo, &["init", "-q"]);
    // What GitHub allows: partial clones and fetching a commit by id.
    git(&repo, &["config", "uploadpack.allowFilter", "true"]);
    git(&repo, &["config", "uploadpack.allowAnySHA1InWant", "true"]);
    let pins = atp_image::LeanPins::builtin();
    std::fs::write(
        repo.join("lean4/lean-toolchain"),
        format!("{}\n", pins.lean_toolchain),
    )
    .expect("w");
    std::fs::write(
        repo.join("lean4/lakefile.toml"),
        format!("name = \"putnam\"\n\n[[require]]\nname = \"mathlib\"\ngit = \"https://github.com/leanprover-community/mathlib4\"\nrev = \"{}\"\n", pins.mathlib_rev),
    )
    .expect("w");
    std::fs::write(repo.join("README.md"), "outside the dataset folder\n").expect("w");
    for (name, body) in tasks {
        std::fs::write(repo.join("lean4/src").join(name), body).expect("w");
    }
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "six tasks"]);
    let first = git(&repo, &["rev-parse", "HEAD"]);
    std::fs::write(
        repo.join("lean4/src/later.lean"),
        "theorem later : True := by\n  sorry\n",
    )
    .expect("w");
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "a later task"]);
    let second = git(&repo, &["rev-parse", "HEAD"]);
    (format!("file://{}", repo.display()), first, second)
}

/// `atp download putnam DATA --repo URL --rev REV [extra…]`, run in `cwd`.
fn download_rev(data: &Path, url: &str, rev: &str, extra: &[&str], cwd: &Path) -> Output {
    let mut args = vec![
        "download",
        "putnam",
        data.to_str().expect("utf8"),
        "--repo",
        url,
        "--rev",
        rev,
    ];
    args.extend_from_slice(extra);
    atp(&args, &[], cwd)
}

/// Download the six-task dataset (at its first commit) into `root/data`.
fn download(root: &Path) -> PathBuf {
    let (url, first, _) = dataset_repo(root, TASKS);
    let data = root.join("data");
    let o = download_rev(&data, &url, &first, &[], root);
    assert!(o.status.success(), "{}", text(&o));
    data
}

async fn engine_ready(test: &str, image: &str) -> bool {
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_atp"))
        .args(["doctor", "--json", "--image", image])
        .output()
        .await
        .expect("atp runs");
    if !o.status.success() {
        skip(test, &format!("needs a Docker engine and {image}"));
    }
    o.status.success()
}

fn run_id(tag: &str) -> String {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("bench-{tag}-{n:x}")
}

fn records(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("results.jsonl"))
        .expect("results.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn outcome(recs: &[serde_json::Value], task: &str, prover: &str, attempt: u64) -> String {
    recs.iter()
        .find(|r| r["task"] == task && r["prover"] == prover && r["attempt"] == attempt)
        .and_then(|r| r["outcome"].as_str())
        .unwrap_or("missing")
        .to_string()
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => out.extend(walk(&p)),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out
}

#[test]
fn datasets_are_listed_with_their_pins() {
    let tmp = tempfile::tempdir().expect("tmp");
    let o = atp(&["datasets"], &[], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    insta::assert_snapshot!(String::from_utf8_lossy(&o.stdout));
    let o = atp(&["datasets", "--json"], &[], tmp.path());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let names: Vec<&str> = v
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["examples", "putnam", "fate-h", "fate-m", "fate-x", "minif2f"]
    );
}

#[test]
fn download_is_a_sparse_clone_at_the_pinned_commit_recorded_in_the_directory() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (url, first, second) = dataset_repo(tmp.path(), TASKS);
    let data = tmp.path().join("data");
    let o = download_rev(&data, &url, &first, &["--json"], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["tasks"], 6);
    assert_eq!(v["answers"], 2);
    assert_eq!(v["reused"], false);
    // The folder's files only, at the first commit.
    let mut files: Vec<String> = std::fs::read_dir(&data)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut want: Vec<String> = TASKS.iter().map(|t| t.0.to_string()).collect();
    want.extend([".atp-dataset.toml".to_string(), "answers.toml".to_string()]);
    want.sort();
    assert_eq!(files, want);
    let record = std::fs::read_to_string(data.join(".atp-dataset.toml")).expect("record");
    let r: toml::Table = toml::from_str(&record).expect("toml");
    assert_eq!(r["name"].as_str(), Some("putnam"));
    assert_eq!(r["commit"].as_str(), Some(first.as_str()));
    assert_eq!(r["repo"].as_str(), Some(url.as_str()));
    assert_eq!(r["subdir"].as_str(), Some("lean4/src"));
    assert_eq!(
        r["lean_toolchain"].as_str(),
        Some(atp_image::LeanPins::builtin().lean_toolchain.as_str())
    );
    let answers = std::fs::read_to_string(data.join("answers.toml")).expect("answers");
    assert!(answers.contains("hole_right_solution = \"2\""), "{answers}");
    assert!(
        answers.contains("hole_trivial_solution = \"3\""),
        "{answers}"
    );
    // Again at the same revision: reused, nothing fetched.
    let o = download_rev(&data, &url, &first, &["--json"], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["reused"], true);
    // Another revision into the same directory: one line naming the remedy.
    let o = download_rev(&data, &url, &second, &[], tmp.path());
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("already holds dataset putnam") && err.contains("pass a new directory"),
        "{err}"
    );
    // The newer commit has the seventh task; a bad revision is one line too.
    let newer = tmp.path().join("newer");
    let o = download_rev(&newer, &url, &second, &["--json"], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(newer.join("later.lean").is_file());
    let o = download_rev(
        &tmp.path().join("bad"),
        &url,
        "0000000000000000000000000000000000000000",
        &[],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("git fetch") && err.contains("--rev"), "{err}");
    assert!(
        !tmp.path().join("bad").exists(),
        "nothing is written when the clone fails"
    );
    let o = atp(&["download", "nope", "x"], &[], tmp.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("unknown dataset `nope` — known datasets: examples, putnam"));
}

#[tokio::test]
async fn a_dataset_pinned_to_another_toolchain_is_refused_with_the_image_remedy() {
    if !engine_ready(
        "a_dataset_pinned_to_another_toolchain_is_refused_with_the_image_remedy",
        &test_image(),
    )
    .await
    {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let data = download(tmp.path());
    let record = data.join(".atp-dataset.toml");
    let text0 = std::fs::read_to_string(&record).expect("record");
    let pins = atp_image::LeanPins::builtin();
    std::fs::write(
        &record,
        text0
            .replace(&pins.lean_toolchain, "leanprover/lean4:v4.27.0")
            .replace(
                &format!("mathlib_rev = \"{}\"", pins.mathlib_rev),
                "mathlib_rev = \"v4.27.0\"",
            ),
    )
    .expect("w");
    let out = tmp.path().join("out");
    let o = atp(
        &[
            "benchmark",
            data.to_str().expect("utf8"),
            "-p",
            "tactics",
            "--image",
            &test_image(),
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
        err.contains("dataset putnam needs leanprover/lean4:v4.27.0 (Mathlib v4.27.0)"),
        "{err}"
    );
    assert!(
        err.contains(
            "atp build-image --lean-toolchain leanprover/lean4:v4.27.0 --mathlib-rev v4.27.0"
        ),
        "{err}"
    );
    assert!(!out.exists(), "nothing is written before the gate");
}

fn bench_config(dir: &Path, fake: &ModelFake) -> PathBuf {
    let p = dir.join("bench.toml");
    std::fs::write(
        &p,
        format!(
            "# two provers: the tactic baseline and Claude Code against the scripted model\n[[prover]]\nprover = \"tactics\"\n\n[[prover]]\nname = \"agent\"\nprover = \"claude\"\napi_base = \"{}\"\n",
            fake.url()
        ),
    )
    .expect("w");
    p
}

fn claude_env() -> Vec<(&'static str, &'static str)> {
    vec![("ANTHROPIC_API_KEY", KEY), ("CLAUDE_CODE_MAX_RETRIES", "1")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tactics_and_an_agent_on_a_dataset_with_definition_holes() {
    if !engine_ready(
        "tactics_and_an_agent_on_a_dataset_with_definition_holes",
        &agents_image(),
    )
    .await
    {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let data = download(tmp.path());
    let fake = ModelFake::start(Script::new(vec![Turn::shell(SOLVE), Turn::text("Done.")]))
        .await
        .expect("fake");
    let config = bench_config(tmp.path(), &fake);
    let out = tmp.path().join("out");
    let run = run_id("acc");
    let recorder = atp_test_support::CreationRecorder::start(&run).await;
    let o = atp(
        &[
            "benchmark",
            data.to_str().expect("utf8"),
            "--config",
            config.to_str().expect("utf8"),
            "--image",
            &agents_image(),
            "--network",
            "host",
            "-w",
            "4",
            "--per-prover",
            "2",
            "--timeout",
            "4",
            "--verify-timeout",
            "3",
            "--run-id",
            &run,
            "--output",
            out.to_str().expect("utf8"),
            "--json",
        ],
        &claude_env(),
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).expect("summary json");
    assert_eq!(summary["state"], "complete");
    assert_eq!(summary["total"], 12);
    assert_eq!(summary["ran"], 12);
    let solved = |p: &str| {
        summary["provers"]
            .as_array()
            .expect("provers")
            .iter()
            .find(|s| s["prover"] == p)
            .map(|s| s["tasks_solved"].clone())
            .expect("prover")
    };
    assert_eq!(solved("tactics"), 2, "{summary}");
    assert_eq!(solved("agent"), 4, "{summary}");
    let recs = records(&out);
    assert_eq!(recs.len(), 12);
    for t in ["t1_simp", "t2_omega"] {
        assert_eq!(outcome(&recs, t, "tactics", 1), "solved");
    }
    for t in ["t1_simp", "t2_omega", "t3_hard", "hole_right"] {
        assert_eq!(outcome(&recs, t, "agent", 1), "solved", "{t}");
    }
    assert_eq!(outcome(&recs, "t4_hard", "agent", 1), "unverified");
    // The trivialising answer compiles, but Lean proves it different from the official one.
    assert_eq!(outcome(&recs, "hole_trivial", "agent", 1), "hole_wrong");
    let cell = out.join("hole_trivial/agent/1/logs/result.json");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cell).expect("result")).expect("json");
    assert_eq!(r["status"], "unverified");
    let hole = &r["verification"]["definition_holes"][0];
    assert_eq!(hole["name"], "hole_trivial_solution");
    assert_eq!(hole["body"], "0");
    assert_eq!(hole["answer"], "3");
    assert_eq!(hole["check"], "wrong");
    let right = out.join("hole_right/agent/1/logs/result.json");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(right).expect("result")).expect("json");
    assert_eq!(r["verification"]["definition_holes"][0]["check"], "equal");
    // Every sandbox of the run names its cell: the prover's and the verifier's two.
    let made = recorder.stop().await;
    let mut per_cell: std::collections::BTreeMap<(String, String, String), usize> =
        Default::default();
    for labels in &made {
        let cell = ["atp.bench.task", "atp.bench.prover", "atp.bench.attempt"]
            .map(|k| labels.get(k).cloned().unwrap_or_default());
        assert!(
            cell.iter().all(|v| !v.is_empty()),
            "unlabelled sandbox: {labels:?}"
        );
        let [t, p, a] = cell;
        *per_cell.entry((t, p, a)).or_default() += 1;
    }
    assert_eq!(per_cell.len(), 12, "{per_cell:?}");
    for ((t, p, a), n) in &per_cell {
        // The verifier's build and check sandboxes, plus the agent's own.
        let least = if p == "agent" { 3 } else { 2 };
        assert!(*n >= least, "cell {t}/{p}/{a}: {n} sandboxes");
    }
    assert!(r["metadata"]["bench"]["config_hash"]
        .as_str()
        .is_some_and(|h| h.len() == 64));
    // Reports, provenance, transcripts.
    for f in [
        "report.md",
        "report.html",
        "results.csv",
        "run.toml",
        "plan.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let md = std::fs::read_to_string(out.join("report.md")).expect("md");
    assert!(md.contains("| `agent` | 4 / 6 |"), "{md}");
    assert!(
        md.contains("| hole_trivial | unverified | hole_wrong |"),
        "{md}"
    );
    let run_toml = std::fs::read_to_string(out.join("run.toml")).expect("run.toml");
    for needle in [
        "state = \"complete\"",
        "commit = ",
        "label = \"agent\"",
        "claude-opus-4-8",
        "lean_toolchain",
    ] {
        assert!(run_toml.contains(needle), "{needle}: {run_toml}");
    }
    let transcript = out.join("t3_hard/agent/1/logs/transcript.json");
    let t = std::fs::read_to_string(transcript).expect("transcript");
    assert!(
        t.contains("tool_call") && t.contains("FAKE_MODEL_GIVES_UP"),
        "{t}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).expect("html");
    assert!(html.contains("tool call · Bash"));
    // atp report re-renders the same reports from the store.
    std::fs::remove_file(out.join("report.md")).expect("rm");
    let o = atp(&["report", out.to_str().expect("utf8")], &[], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(out.join("report.md")).expect("md"),
        md
    );
    // Nothing leaked: no sandbox, no key.
    assert_eq!(count_managed(Some(&run)).await, 0, "sandboxes left");
    assert!(!text(&o).contains(KEY));
    for f in walk(&out) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(KEY),
            "{} holds the key",
            f.display()
        );
    }
    // Without --resume or --fresh, the directory is not reused.
    let o = atp(
        &[
            "benchmark",
            data.to_str().expect("utf8"),
            "-p",
            "tactics",
            "--image",
            &agents_image(),
            "--output",
            out.to_str().expect("utf8"),
        ],
        &[],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("pass --resume to continue it"),
        "{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_attempts_give_pass_at_1_and_pass_at_3() {
    if !engine_ready(
        "three_attempts_give_pass_at_1_and_pass_at_3",
        &agents_image(),
    )
    .await
    {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let data = download(tmp.path());
    // The i-th session gets the i-th command: attempt 1 of each task solves, 2 and 3 give up
    // (one prover cell at a time, in task-major order).
    let fake = ModelFake::start(Script::new(vec![
        Turn::shell_sample([SOLVE, GIVE_UP, GIVE_UP]),
        Turn::text("Done."),
    ]))
    .await
    .expect("fake");
    let config = bench_config(tmp.path(), &fake);
    let out = tmp.path().join("out");
    let run = run_id("k");
    let o = atp(
        &[
            "benchmark",
            data.to_str().expect("utf8"),
            "--config",
            config.to_str().expect("utf8"),
            "-t",
            "t1_simp",
            "-t",
            "t3_hard",
            "--attempts",
            "3",
            "-w",
            "2",
            "--per-prover",
            "1",
            "--image",
            &agents_image(),
            "--network",
            "host",
            "--run-id",
            &run,
            "--output",
            out.to_str().expect("utf8"),
            "--json",
        ],
        &claude_env(),
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(summary["total"], 12);
    let agent = summary["provers"]
        .as_array()
        .expect("provers")
        .iter()
        .find(|s| s["prover"] == "agent")
        .expect("agent")
        .clone();
    let tactics = summary["provers"]
        .as_array()
        .expect("provers")
        .iter()
        .find(|s| s["prover"] == "tactics")
        .expect("tactics")
        .clone();
    let recs = records(&out);
    for t in ["t1_simp", "t3_hard"] {
        assert_eq!(outcome(&recs, t, "agent", 1), "solved", "{t}");
        assert_eq!(outcome(&recs, t, "agent", 2), "unverified", "{t}");
        assert_eq!(outcome(&recs, t, "agent", 3), "unverified", "{t}");
    }
    assert!(
        (agent["pass_at_1"].as_f64().expect("p1") - 1.0 / 3.0).abs() < 1e-9,
        "{agent}"
    );
    assert_eq!(agent["pass_at_n"], 1.0, "{agent}");
    assert_eq!(agent["n"], 3);
    // tactics is deterministic: t1 every time, t3 never.
    assert_eq!(tactics["pass_at_1"], 0.5, "{tactics}");
    assert_eq!(tactics["pass_at_n"], 0.5, "{tactics}");
    let md = std::fs::read_to_string(out.join("report.md")).expect("md");
    assert!(md.contains("pass@3"), "{md}");
    assert!(md.contains("| `agent` | 2 / 2 | 33.3% | 100.0% |"), "{md}");
    assert_eq!(count_managed(Some(&run)).await, 0, "sandboxes left");
}

fn benchmark_tactics(data: &Path, out: &Path, run: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_atp"));
    c.args([
        "benchmark",
        data.to_str().expect("utf8"),
        "-p",
        "tactics",
        "--image",
        &test_image(),
        "--network",
        "none",
        "--run-id",
        run,
        "--output",
        out.to_str().expect("utf8"),
    ])
    .args(extra)
    .env_remove("ATP_BACKEND")
    .env_remove("ATP_IMAGE");
    c
}

fn done_cells(out: &Path) -> usize {
    walk(out)
        .into_iter()
        .filter(|p| p.ends_with("logs/result.json"))
        .filter(|p| {
            std::fs::read_to_string(p)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .is_some_and(|v| {
                    v["status"] != "cancelled" && v["metadata"]["bench"]["config_hash"].is_string()
                })
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_resumes_with_only_the_missing_cells() {
    if !engine_ready(
        "a_killed_run_resumes_with_only_the_missing_cells",
        &test_image(),
    )
    .await
    {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let data = download(tmp.path());
    let out = tmp.path().join("out");
    let run = run_id("kill");
    let mut child = benchmark_tactics(&data, &out, &run, &["-w", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("atp starts");
    let deadline = Instant::now() + Duration::from_secs(240);
    while done_cells(&out) < 2 {
        assert!(Instant::now() < deadline, "no cell finished");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the run ended before it was killed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Killed outright: no teardown runs; `atp gc` cleans up what it left.
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let done = done_cells(&out);
    assert!(done < 6, "killed mid-way");
    // The engine may still finish a create the killed process had sent: gc until the run's
    // count stays 0 (what a user does is the same `atp gc --run-id`).
    let mut quiet = 0;
    for _ in 0..20 {
        let gc = atp(&["gc", "--run-id", &run, "--json"], &[], tmp.path());
        assert!(gc.status.success(), "{}", text(&gc));
        tokio::time::sleep(Duration::from_millis(500)).await;
        if count_managed(Some(&run)).await == 0 {
            quiet += 1;
            if quiet == 3 {
                break;
            }
        } else {
            quiet = 0;
        }
    }
    assert_eq!(count_managed(Some(&run)).await, 0, "after atp gc");
    // Resume under a new run id, counting the sandboxes it creates.
    let resumed = run_id("resume");
    let recorder = CreationRecorder::start(&resumed).await;
    let o = benchmark_tactics(&data, &out, &resumed, &["-w", "2", "--resume", "--json"])
        .output()
        .expect("atp runs");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(summary["skipped"], done);
    assert_eq!(summary["ran"], 6 - done);
    // Only the missing cells ran: every cell's result names the run that wrote it (the killed
    // run for the finished ones, the resume for the rest), and the resume created sandboxes
    // for the missing cells only (a tactics cell: its prover's sandbox, plus the verifier's two
    // sandboxes when there is a candidate).
    let mut rerun = 0;
    for r in walk(&out)
        .into_iter()
        .filter(|p| p.ends_with("logs/result.json"))
    {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&r).expect("result")).expect("json");
        if v["run_id"] == resumed.as_str() {
            rerun += 1;
        } else {
            assert_eq!(v["run_id"], run.as_str(), "{}", r.display());
        }
    }
    assert_eq!(rerun, 6 - done);
    let made = recorder.stop().await.len();
    assert!(
        (6 - done..=3 * (6 - done)).contains(&made),
        "{made} sandboxes for {} missing cells",
        6 - done
    );
    assert_eq!(count_managed(Some(&resumed)).await, 0);
    let recs = records(&out);
    assert_eq!(recs.len(), 6);
    assert_eq!(recs.iter().filter(|r| r["outcome"] == "solved").count(), 2);
    // A second resume has nothing left to run.
    let again = run_id("again");
    let recorder = CreationRecorder::start(&again).await;
    let o = benchmark_tactics(&data, &out, &again, &["--resume", "--json"])
        .output()
        .expect("atp runs");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(summary["ran"], 0);
    assert_eq!(recorder.stop().await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_tears_down_and_says_how_to_resume() {
    stopped_by_a_signal("ctrl_c_stops_tears_down_and_says_how_to_resume", "INT", 130).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_tears_down_and_says_how_to_resume() {
    stopped_by_a_signal(
        "sigterm_stops_tears_down_and_says_how_to_resume",
        "TERM",
        143,
    )
    .await;
}

/// A run stopped by `signal` mid-way: exit 128 + N, no sandbox left, the running cell
/// `cancelled`, finished cells and the reports kept, and the resume command printed.
async fn stopped_by_a_signal(test: &str, signal: &str, exit: i32) {
    if !engine_ready(test, &test_image()).await {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    // A task whose compiles hang keeps its cell running until the signal.
    let mut tasks = TASKS.to_vec();
    tasks.insert(
        0,
        (
            "a_hang.lean",
            "import Mathlib\n\n-- STANDIN_HANG\ntheorem h : True := by\n  sorry\n",
        ),
    );
    let (url, first, _) = dataset_repo(tmp.path(), &tasks);
    let data = tmp.path().join("data");
    let o = download_rev(&data, &url, &first, &[], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    let out = tmp.path().join("out");
    let run = run_id(&signal.to_lowercase());
    let child = benchmark_tactics(&data, &out, &run, &["-w", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("atp starts");
    let deadline = Instant::now() + Duration::from_secs(180);
    // Wait for the hanging cell's sandbox and one finished cell.
    while count_managed(Some(&run)).await == 0 || done_cells(&out) < 1 {
        assert!(Instant::now() < deadline, "the run never got going");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .expect("kill")
        .success());
    let started = Instant::now();
    let o = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(o.status.code(), Some(exit), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("resume with:") && err.contains("--resume"),
        "{err}"
    );
    assert_eq!(
        count_managed(Some(&run)).await,
        0,
        "sandboxes left after SIG{signal}"
    );
    let hang: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("a_hang/tactics/1/logs/result.json"))
            .expect("result.json of the running cell"),
    )
    .expect("json");
    assert_eq!(hang["status"], "cancelled");
    let run_toml = std::fs::read_to_string(out.join("run.toml")).expect("run.toml");
    assert!(run_toml.contains("state = \"interrupted\""), "{run_toml}");
    assert!(
        out.join("report.html").is_file(),
        "reports are written for what finished"
    );
}

/// On a terminal, `atp benchmark` draws the overall bar (done/total, solved, failed, cost,
/// ETA) and one line per running cell with its phase. `script(1)` gives the run a
/// pseudo-terminal and records what was drawn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_the_live_display_shows_the_bar_and_each_running_cell() {
    let test = "on_a_terminal_the_live_display_shows_the_bar_and_each_running_cell";
    if !engine_ready(test, &test_image()).await {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let data = download(tmp.path());
    let out = tmp.path().join("out");
    let run = run_id("tty");
    let cmd = benchmark_tactics(&data, &out, &run, &["-w", "2"]);
    let line = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy().replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let o = Command::new("script")
        .args(["-qefc", &line, "/dev/null"])
        .env("TERM", "xterm-256color")
        .env_remove("ATP_BACKEND")
        .env_remove("ATP_IMAGE")
        .current_dir(tmp.path())
        .output()
        .expect("script(1) runs (util-linux)");
    let raw = String::from_utf8_lossy(&o.stdout).into_owned();
    let screen = strip_ansi(&raw);
    // What a failure shows: the end of the recording.
    let tail: String = {
        let v: Vec<char> = screen.chars().collect();
        v[v.len().saturating_sub(4000)..].iter().collect()
    };
    assert_eq!(o.status.code(), Some(0), "a complete run exits 0: {tail}");
    assert!(
        screen.contains("atp: 6 cells, 0 already done, 6 to run"),
        "{tail}"
    );
    assert!(
        screen.contains("cells · solved "),
        "the overall bar: {tail}"
    );
    assert!(
        screen.contains("· failed ") && screen.contains("· $0.00 · ETA "),
        "{tail}"
    );
    assert!(
        screen.contains("6/6 cells · solved 2 · failed 4"),
        "the final count: {tail}"
    );
    // A line per running cell: task · prover · attempt, elapsed, and its phase.
    let cell_lines: Vec<&str> = screen
        .lines()
        .filter(|l| l.contains(" · tactics · #1 ["))
        .collect();
    assert!(!cell_lines.is_empty(), "no running-cell line: {tail}");
    assert!(
        cell_lines
            .iter()
            .any(|l| ["provision", "generation", "verification"]
                .iter()
                .any(|p| l.contains(p))),
        "no phase on a running-cell line: {cell_lines:?}"
    );
    assert_eq!(count_managed(Some(&run)).await, 0, "sandboxes left");
}

/// Text without ANSI escape sequences; carriage returns become line breaks.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    // CSI: parameters, then one final byte in @..~
                    for d in chars.by_ref() {
                        if ('@'..='~').contains(&d) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\r' => out.push('\n'),
            c => out.push(c),
        }
    }
    out
}
