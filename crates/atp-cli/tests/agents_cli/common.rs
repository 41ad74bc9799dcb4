//! Shared pieces of the agent end-to-end tests: run the real `atp prove` with one prover
//! against the scripted model fake, and check what every run must hold (no container left,
//! no secret in the output directory or atp's output).

use std::path::{Path, PathBuf};
use std::process::Output;

use atp_model_fake::{Answered, ModelFake, Recorded};
use atp_test_support::{agents_image, count_managed, fixture, skip};

/// Every variable a prover reads credentials or base URLs from; removed from each run so the
/// machine's own never leak in.
pub const CREDENTIAL_VARS: &[&str] = &[
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
    "XDG_DATA_HOME",
    "KIMI_CODE_HOME",
    "KIMI_BASE_URL",
    "KIMI_CODE_BASE_URL",
    "KIMI_CODE_OAUTH_HOST",
    "GEMINI_API_KEY",
    "LEAN_LEANDEX_API_KEY",
];

pub fn run_id() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("agent-{n:x}")
}

/// One `atp prove` invocation.
pub struct Invocation<'a> {
    pub prover: &'a str,
    /// `--api-base` (none: the fake is not used, e.g. a missing credential).
    pub api_base: Option<String>,
    pub env: Vec<(String, String)>,
    pub extra: Vec<String>,
    /// Secrets that must not appear in atp's output or under `OUT/`.
    pub secrets: Vec<String>,
    /// Files to create under the run's HOME before it starts (`rel`, contents).
    pub home_files: Vec<(String, String)>,
}

impl<'a> Invocation<'a> {
    pub fn new(prover: &'a str) -> Self {
        Invocation {
            prover,
            api_base: None,
            env: Vec::new(),
            extra: Vec::new(),
            secrets: Vec::new(),
            home_files: Vec::new(),
        }
    }

    pub fn api_base(mut self, url: String) -> Self {
        self.api_base = Some(url);
        self
    }

    /// A secret credential variable.
    pub fn secret(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self.secrets.push(v.into());
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn args(mut self, a: &[&str]) -> Self {
        self.extra.extend(a.iter().map(|s| s.to_string()));
        self
    }

    /// A file under the run's HOME holding a secret.
    pub fn home_file(mut self, rel: &str, contents: &str, secret: &str) -> Self {
        self.home_files.push((rel.into(), contents.into()));
        self.secrets.push(secret.into());
        self
    }

    /// The command, for a run in `dir` (OUT = `dir/out`, HOME = `dir/home`).
    pub fn command(&self, dir: &Path, run: &str) -> tokio::process::Command {
        let out = dir.join("out");
        let home = dir.join("home");
        std::fs::create_dir_all(&home).expect("home");
        for (rel, text) in &self.home_files {
            let p = home.join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mk");
            std::fs::write(&p, text).expect("home file");
        }
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_atp"));
        c.args([
            "prove",
            fixture("original").to_str().expect("utf8"),
            "--prover",
            self.prover,
            "--image",
            &agents_image(),
            "--network",
            "host",
            "--run-id",
            run,
            "--output",
            out.to_str().expect("utf8"),
            "--json",
        ]);
        if let Some(b) = &self.api_base {
            c.args(["--api-base", b]);
        }
        c.args(&self.extra);
        for v in CREDENTIAL_VARS {
            c.env_remove(v);
        }
        c.env("HOME", &home);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.current_dir(dir);
        c
    }
}

/// Whether the engine and the agents image are there (else a loud skip).
pub async fn ready(test: &str) -> bool {
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_atp"))
        .args(["doctor", "--json", "--image", &agents_image()])
        .output()
        .await
        .expect("atp runs");
    if !o.status.success() {
        skip(
            test,
            &format!(
                "needs a Docker engine and {} (cargo xtask agents-image)",
                agents_image()
            ),
        );
    }
    o.status.success()
}

pub struct Run {
    pub out: Output,
    pub result: serde_json::Value,
    pub dir: tempfile::TempDir,
    pub run: String,
}

impl Run {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
            + &String::from_utf8_lossy(&self.out.stderr)
    }
    pub fn out_dir(&self) -> PathBuf {
        self.dir.path().join("out")
    }
    pub fn stdout_txt(&self) -> String {
        std::fs::read_to_string(self.out_dir().join("logs/stdout.txt")).expect("stdout.txt")
    }
    pub fn violations(&self) -> Vec<(String, String)> {
        self.result["verification"]["violations"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| {
                (
                    v["kind"].as_str().unwrap_or("").to_string(),
                    v["decl"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
    pub fn usage(&self) -> (u64, u64, u64) {
        let u = &self.result["usage"];
        (
            u["input_tokens"].as_u64().unwrap_or(0),
            u["cached_input_tokens"].as_u64().unwrap_or(0),
            u["output_tokens"].as_u64().unwrap_or(0),
        )
    }
    pub fn cost(&self) -> Option<f64> {
        self.result["cost_usd"].as_f64()
    }
}

/// Run `inv` to completion and check the invariants of every run.
pub async fn prove(inv: &Invocation<'_>) -> Run {
    let dir = tempfile::tempdir().expect("tmp");
    let run = run_id();
    let out = inv
        .command(dir.path(), &run)
        .output()
        .await
        .expect("atp runs");
    let result = match std::fs::read_to_string(dir.path().join("out/logs/result.json")) {
        Ok(t) => serde_json::from_str(&t).expect("json"),
        Err(_) => serde_json::Value::Null,
    };
    let r = Run {
        out,
        result,
        dir,
        run,
    };
    assert_eq!(count_managed(Some(&r.run)).await, 0, "containers left");
    assert_no_secrets(&r, &inv.secrets);
    r
}

/// No secret in atp's output or anywhere under `OUT/`.
pub fn assert_no_secrets(r: &Run, secrets: &[String]) {
    for s in secrets {
        assert!(!r.text().contains(s.as_str()), "atp printed a secret");
        for f in walk(&r.out_dir()) {
            let bytes = std::fs::read(&f).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(s.as_str()),
                "{} holds a secret",
                f.display()
            );
        }
    }
}

pub fn walk(d: &Path) -> Vec<PathBuf> {
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

/// The fake's usage minus its side replies (requests a CLI makes on the side and leaves out
/// of its own accounting, e.g. OpenCode's title): (input incl. cache, cache read, output).
pub fn fake_usage_without_side(fake: &ModelFake) -> (u64, u64, u64) {
    let u = fake.usage_reported();
    let side = fake
        .requests()
        .iter()
        .filter(|q| q.answered == Answered::SideReply)
        .count() as u64;
    let s = atp_model_fake::Usage::SIDE;
    (
        u.input_tokens + u.cache_read_tokens + u.cache_creation_tokens
            - side * (s.input_tokens + s.cache_read_tokens + s.cache_creation_tokens),
        u.cache_read_tokens - side * s.cache_read_tokens,
        u.output_tokens - side * s.output_tokens,
    )
}

/// The fake's whole usage: (input incl. cache, cache read, output).
pub fn fake_usage(fake: &ModelFake) -> (u64, u64, u64) {
    let u = fake.usage_reported();
    (
        u.input_tokens + u.cache_read_tokens + u.cache_creation_tokens,
        u.cache_read_tokens,
        u.output_tokens,
    )
}

/// The first model request whose body contains `needle` (tool results travel in bodies).
pub fn request_with(fake: &ModelFake, needle: &str) -> Option<Recorded> {
    fake.requests()
        .into_iter()
        .find(|q| q.body.to_string().contains(needle))
}

/// The shell command a script runs to show the credential copies' modes and that the mount is
/// read-only: `MODE PATH` lines, then `READONLY` or `WRITABLE`.
pub fn credential_probe(paths: &[&str]) -> String {
    format!(
        "stat -c 'mode=%a %n' {} ; (touch /run/atp-credentials/probe 2>/dev/null && echo MOUNT-WRITABLE || echo MOUNT-READONLY)",
        paths.join(" ")
    )
}

/// The price of `model` in atp's built-in table, for `usage` = (input incl. cache, cached,
/// output).
pub fn priced(model: &str, usage: (u64, u64, u64)) -> f64 {
    let table = atp_prover::PriceTable::builtin();
    table
        .cost(
            model,
            &atp_prover::Usage {
                input_tokens: usage.0,
                cached_input_tokens: usage.1,
                output_tokens: usage.2,
                ..Default::default()
            },
        )
        .expect("a priced model")
}
