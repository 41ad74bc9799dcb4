//! Codex CLI (`codex exec --json …`).
//!
//! Credentials: the login file `$CODEX_HOME/auth.json` (default `~/.codex/auth.json`, written
//! by `codex login`), copied alone (0600) into the run's private directory and mounted
//! read-only; the launch script copies it into the sandbox's `$CODEX_HOME` (0600), because
//! Codex rewrites it when it refreshes a token and keeps its sessions there. Else
//! `OPENAI_API_KEY` in the agent's environment.
//!
//! Base URL: Codex's built-in provider ignores `OPENAI_BASE_URL`, so an override (`--api-base`
//! or `OPENAI_BASE_URL`, which must include `/v1`) defines a custom model provider `atp` on
//! the Responses wire API; so does an API key without a login file (the public endpoint then).
//!
//! Stream (one JSON object per line): `thread.started`, `turn.started`, `item.started` /
//! `item.completed` (`command_execution`, `mcp_tool_call`, `agent_message`, …), `error`,
//! `turn.completed{usage{input_tokens (cached included), cached_input_tokens, output_tokens,
//! reasoning_output_tokens}}` or `turn.failed`. No cost: priced from the table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atp_backend::layout::shell_quote as sq;
use atp_prover::{AuthKind, AuthStatus, EnvSource, ProgressEvent, Usage};
use serde_json::{json, Value};

use crate::assets::{Assets, LEAN_LSP};
use crate::harness::{
    home_dir, CredentialError, Credentials, Harness, Parsed, StreamParser, CREDENTIALS_MOUNT,
    PROMPT_FILE,
};

/// The API key variable.
pub const API_KEY_ENV: &str = "OPENAI_API_KEY";
/// The base URL variable (read by atp's launch script, not by Codex's built-in provider).
pub const BASE_URL_ENV: &str = "OPENAI_BASE_URL";
/// Where Codex keeps its login on the host (default `~/.codex`).
pub const HOME_ENV: &str = "CODEX_HOME";
/// The login file's name.
pub const AUTH_FILE: &str = "auth.json";
pub const DEFAULT_MODEL: &str = "gpt-5.5";
pub const DEFAULT_EFFORT: &str = "high";
/// The public endpoint used with an API key and no override.
pub const PUBLIC_BASE_URL: &str = "https://api.openai.com/v1";

/// The Codex harness.
#[derive(Debug, Clone)]
pub struct Codex {
    pub model: String,
    pub effort: String,
    pub assets: Assets,
    /// Overrides `OPENAI_BASE_URL` (must include `/v1`).
    pub api_base: Option<String>,
}

impl Default for Codex {
    fn default() -> Self {
        Codex {
            model: DEFAULT_MODEL.into(),
            effort: DEFAULT_EFFORT.into(),
            assets: Assets::default(),
            api_base: None,
        }
    }
}

/// The host's Codex login file, when it exists.
pub fn auth_file(env: &EnvSource) -> Option<PathBuf> {
    let dir = match env.get(HOME_ENV) {
        Some(d) => PathBuf::from(d),
        None => home_dir(env)?.join(".codex"),
    };
    let f = dir.join(AUTH_FILE);
    f.is_file().then_some(f)
}

/// What the login file holds: a ChatGPT login (tokens) or an API key, with expiry and refresh.
fn login_status(path: &Path) -> AuthStatus {
    let source = format!("file {}", path.display());
    let remedy = "run `codex login` again (or set OPENAI_API_KEY)";
    let v: Value = match std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        Some(v) => v,
        None => {
            return AuthStatus {
                remedy: Some(format!(
                    "{}: not a Codex login file — {remedy}",
                    path.display()
                )),
                ..AuthStatus::missing(AuthKind::Oauth, remedy)
            }
        }
    };
    let tokens = v.get("tokens").filter(|t| t.is_object());
    match tokens {
        Some(t) => {
            let access = t.get("access_token").and_then(Value::as_str).unwrap_or("");
            let refreshable = t
                .get("refresh_token")
                .and_then(Value::as_str)
                .is_some_and(|r| !r.is_empty());
            AuthStatus::present(
                AuthKind::Oauth,
                source,
                atp_prover::jwt_expiry(access),
                refreshable,
                remedy,
            )
        }
        None if v
            .get("OPENAI_API_KEY")
            .and_then(Value::as_str)
            .is_some_and(|k| !k.is_empty()) =>
        {
            AuthStatus::present(AuthKind::ApiKey, source, None, false, remedy)
        }
        None => AuthStatus::missing(
            AuthKind::Oauth,
            format!(
                "{} holds neither a login nor an API key — {remedy}",
                path.display()
            ),
        ),
    }
}

/// Check a base URL can be written into Codex's TOML config overrides.
pub fn check_base_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("http://") || url.starts_with("https://"))
        || url.contains(['"', '\\', '\'', '\n', ' '])
    {
        return Err(format!(
            "--api-base {url}: not an http(s) URL — pass e.g. https://gateway.example/v1"
        ));
    }
    Ok(())
}

impl Harness for Codex {
    fn prover_name(&self) -> &str {
        "codex"
    }

    fn harness_name(&self) -> &'static str {
        "codex"
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn effort(&self) -> Option<&str> {
        Some(&self.effort)
    }

    fn config(&self) -> BTreeMap<String, Value> {
        let mut c = crate::harness::base_config(
            self.harness_name(),
            &self.model,
            Harness::effort(self),
            self.api_base.is_some(),
        );
        c.insert("skills".into(), json!(self.assets.skill_names()));
        c
    }

    fn auth(&self, env: &EnvSource) -> AuthStatus {
        if let Some(f) = auth_file(env) {
            let s = login_status(&f);
            if s.present || env.get(API_KEY_ENV).is_none() {
                return s;
            }
        }
        if env.get(API_KEY_ENV).is_some() {
            return AuthStatus::present(
                AuthKind::ApiKey,
                format!("env {API_KEY_ENV}"),
                None,
                false,
                "",
            );
        }
        AuthStatus::missing(
            AuthKind::Oauth,
            "run `codex login` (writes ~/.codex/auth.json) or set OPENAI_API_KEY, in the environment or in .env",
        )
    }

    fn credentials(
        &self,
        env: &EnvSource,
        private: &Path,
        _home: &str,
    ) -> Result<Credentials, CredentialError> {
        let mut c = Credentials::default();
        match auth_file(env) {
            Some(f) if login_status(&f).present => {
                c.copy_file(&f, private, AUTH_FILE)?;
                c.source = Some(format!("file {}", f.display()));
            }
            _ => match env.get(API_KEY_ENV) {
                Some(key) => {
                    c.exec_env.insert(API_KEY_ENV.into(), key);
                    c.source = Some(format!("env {API_KEY_ENV}"));
                }
                None => {
                    return Err(CredentialError(
                        "codex: no credential — run `codex login` or set OPENAI_API_KEY".into(),
                    ))
                }
            },
        }
        if let Some(base) = self.api_base.clone().or_else(|| env.get(BASE_URL_ENV)) {
            check_base_url(&base).map_err(CredentialError)?;
            c.exec_env.insert(BASE_URL_ENV.into(), base);
        }
        Ok(c)
    }

    fn skills_dir(&self) -> Option<&'static str> {
        Some(".agents/skills")
    }

    fn stage(&self, wd: &Path) -> std::io::Result<()> {
        self.assets
            .stage(wd, self.skills_dir(), None)
            .map_err(std::io::Error::other)
    }

    fn launch_script(&self) -> String {
        let mcp = LEAN_LSP.codex_overrides();
        let mut args = vec![
            "--json".to_string(),
            "--skip-git-repo-check".into(),
            "--sandbox danger-full-access".into(),
            format!("--model {}", sq(&self.model)),
        ];
        for o in mcp {
            args.push(format!("-c {}", sq(&o)));
        }
        args.push(format!(
            "-c {}",
            sq(&format!("model_reasoning_effort=\"{}\"", self.effort))
        ));
        format!(
            r#"#!/bin/bash
# atp launch script for Codex (rendered by atp; edits are overwritten)
set -u
PROMPT="$(cat {PROMPT_FILE})"
export CODEX_HOME="$HOME/.codex"
mkdir -p "$CODEX_HOME" && chmod 700 "$CODEX_HOME"
login=
if [ -f {CREDENTIALS_MOUNT}/{AUTH_FILE} ]; then
  # Codex rewrites its login (token refresh): a private 0600 copy, never the mounted file.
  cp {CREDENTIALS_MOUNT}/{AUTH_FILE} "$CODEX_HOME/{AUTH_FILE}" && chmod 600 "$CODEX_HOME/{AUTH_FILE}"
  login=1
fi
# The built-in provider ignores OPENAI_BASE_URL: a base URL (or an API key) gets provider atp.
set --
if [ -n "${{{BASE_URL_ENV}:-}}" ] || [ -z "$login" ]; then
  set -- -c 'model_provider="atp"' -c 'model_providers.atp.name="atp"' \
    -c "model_providers.atp.base_url=\"${{{BASE_URL_ENV}:-{PUBLIC_BASE_URL}}}\"" \
    -c 'model_providers.atp.wire_api="responses"'
  if [ -n "$login" ]; then
    set -- "$@" -c 'model_providers.atp.requires_openai_auth=true'
  else
    set -- "$@" -c 'model_providers.atp.env_key="{API_KEY_ENV}"'
  fi
fi
exec codex exec {} \
  "$@" "$PROMPT" < /dev/null
"#,
            args.join(" \\\n  ")
        )
    }

    fn static_env(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    fn parser(&self) -> Box<dyn StreamParser> {
        Box::new(CodexParser::default())
    }
}

/// Parser of `codex exec --json`.
#[derive(Debug, Default)]
pub struct CodexParser {
    thread_id: Option<String>,
    usage: Usage,
    turns_completed: u64,
    tool_calls: u64,
    tool_errors: u64,
    errors: Vec<String>,
    last_text: Option<String>,
    finished: bool,
    failed: bool,
}

/// Whether a finished tool item failed (a non-zero exit, a failed status, an MCP error).
fn failed(item: &Value) -> bool {
    item.get("exit_code")
        .and_then(Value::as_i64)
        .is_some_and(|c| c != 0)
        || item.get("status").and_then(Value::as_str) == Some("failed")
        || item.pointer("/result/isError").and_then(Value::as_bool) == Some(true)
}

fn u(v: &Value, keys: &[&str]) -> u64 {
    keys.iter()
        .find_map(|k| v.get(*k).and_then(Value::as_u64))
        .unwrap_or(0)
}

impl StreamParser for CodexParser {
    fn line(&mut self, line: &str) -> Vec<ProgressEvent> {
        let Ok(v) = serde_json::from_str::<Value>(line.trim()) else {
            return Vec::new();
        };
        let mut events = Vec::new();
        match v.get("type").and_then(Value::as_str) {
            Some("thread.started") => {
                self.thread_id = v
                    .get("thread_id")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            Some("turn.started") => events.push(ProgressEvent::Turn),
            Some("item.started") => {
                let item = v.get("item").unwrap_or(&Value::Null);
                match item.get("type").and_then(Value::as_str) {
                    Some("command_execution") => {
                        self.tool_calls += 1;
                        events.push(ProgressEvent::ToolCall("shell".into()));
                    }
                    Some("mcp_tool_call") => {
                        self.tool_calls += 1;
                        let tool = item.get("tool").and_then(Value::as_str).unwrap_or("?");
                        let server = item.get("server").and_then(Value::as_str);
                        events.push(ProgressEvent::ToolCall(match server {
                            Some(s) => format!("{s}.{tool}"),
                            None => tool.to_string(),
                        }));
                    }
                    Some("file_change") | Some("web_search") => {
                        self.tool_calls += 1;
                        let kind = item.get("type").and_then(Value::as_str).unwrap_or("?");
                        events.push(ProgressEvent::ToolCall(kind.to_string()));
                    }
                    _ => {}
                }
            }
            Some("item.completed") => {
                let item = v.get("item").unwrap_or(&Value::Null);
                match item.get("type").and_then(Value::as_str) {
                    Some("agent_message") => {
                        if let Some(t) = item.get("text").and_then(Value::as_str) {
                            self.last_text = Some(t.to_string());
                        }
                    }
                    Some("command_execution") | Some("mcp_tool_call") if failed(item) => {
                        self.tool_errors += 1;
                    }
                    _ => {}
                }
            }
            Some("turn.completed") => {
                let usage = v.get("usage").unwrap_or(&Value::Null);
                self.usage.input_tokens +=
                    u(usage, &["input_tokens", "inputTokens", "prompt_tokens"]);
                self.usage.cached_input_tokens +=
                    u(usage, &["cached_input_tokens", "cachedInputTokens"]);
                self.usage.output_tokens += u(
                    usage,
                    &["output_tokens", "outputTokens", "completion_tokens"],
                );
                self.turns_completed += 1;
                self.finished = true;
                self.usage.stop_reason = Some(
                    v.get("stop_reason")
                        .or_else(|| v.get("finish_reason"))
                        .and_then(Value::as_str)
                        .unwrap_or("completed")
                        .to_string(),
                );
                events.push(ProgressEvent::Usage(self.current()));
            }
            Some("turn.failed") => {
                self.finished = true;
                self.failed = true;
                if let Some(m) = v.pointer("/error/message").and_then(Value::as_str) {
                    self.errors.push(m.to_string());
                }
                self.usage.stop_reason = Some("failed".into());
            }
            Some("error") => {
                if let Some(m) = v.get("message").and_then(Value::as_str) {
                    if self.errors.len() < 20 {
                        self.errors.push(m.to_string());
                    }
                }
            }
            _ => {}
        }
        events
    }

    fn finish(&mut self) -> Parsed {
        let mut meta = BTreeMap::new();
        if let Some(t) = &self.thread_id {
            meta.insert("thread_id".to_string(), json!(t));
        }
        meta.insert("tool_errors".to_string(), json!(self.tool_errors));
        if let Some(e) = self.errors.last() {
            meta.insert("last_error".to_string(), json!(e));
        }
        Parsed {
            usage: self.current(),
            reported_cost: None,
            model: None,
            result_text: self.last_text.clone(),
            finished: self.finished,
            is_error: self.failed,
            metadata: meta,
        }
    }
}

impl CodexParser {
    fn current(&self) -> Usage {
        Usage {
            turns: Some(self.turns_completed),
            tool_calls: Some(self.tool_calls),
            ..self.usage.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{parse_all, transcript};

    #[test]
    fn the_real_cli_transcript_of_a_solve() {
        // Codex 0.171.0 against atp-model-fake: 1200+1500 uncached, 3000+4000 read, 500 written.
        let (ev, p) = parse_all(
            &mut CodexParser::default(),
            &transcript("codex/solve.jsonl"),
        );
        assert!(p.finished && !p.is_error);
        assert_eq!(p.usage.input_tokens, 2700 + 7000 + 500);
        assert_eq!(p.usage.cached_input_tokens, 7000);
        assert_eq!(p.usage.output_tokens, 120);
        assert!(ev.contains(&ProgressEvent::ToolCall("shell".into())));
        insta::assert_json_snapshot!(crate::testing::summary(&ev, &p));
    }

    #[test]
    fn the_real_cli_transcript_of_a_rejected_key() {
        let text = transcript("codex/auth_401.jsonl");
        let (_, p) = parse_all(&mut CodexParser::default(), &text);
        assert!(p.finished && p.is_error);
        assert_eq!(p.usage.input_tokens, 0);
        assert!(atp_prover::authfail::rejected_in(&text).is_some());
        insta::assert_json_snapshot!(crate::testing::summary(&[], &p));
    }

    #[test]
    fn launch_script_snapshot() {
        insta::assert_snapshot!(Codex::default().launch_script());
    }

    #[test]
    fn a_login_file_is_copied_alone_and_wins_over_the_key() {
        let d = tempfile::tempdir().expect("tmp");
        let home = d.path().join("home");
        std::fs::create_dir_all(home.join(".codex/sessions")).expect("mk");
        std::fs::write(home.join(".codex/sessions/s.jsonl"), "private history").expect("w");
        std::fs::write(
            home.join(".codex/auth.json"),
            r#"{"tokens":{"access_token":"a.b.c","refresh_token":"r"}}"#,
        )
        .expect("w");
        let env = EnvSource::fixed(
            [
                ("HOME".to_string(), home.display().to_string()),
                (API_KEY_ENV.to_string(), "sk-secret".to_string()),
            ]
            .into(),
        );
        let h = Codex::default();
        let s = h.auth(&env);
        assert_eq!(s.kind, AuthKind::Oauth);
        assert!(s.refreshable);
        let private = d.path().join("private");
        std::fs::create_dir(&private).expect("mk");
        let c = h.credentials(&env, &private, "/root").expect("creds");
        assert!(c.exec_env.is_empty(), "{c:?}");
        assert_eq!(c.mounts.len(), 1);
        assert!(c.mounts[0].read_only);
        assert_eq!(c.mounts[0].container, CREDENTIALS_MOUNT);
        let names: Vec<_> = std::fs::read_dir(&private)
            .expect("ls")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(AUTH_FILE)]);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(private.join(AUTH_FILE))
            .expect("md")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn an_api_key_and_a_base_url() {
        let env = EnvSource::fixed(
            [
                ("HOME".to_string(), "/nonexistent".to_string()),
                (API_KEY_ENV.to_string(), "sk-secret".to_string()),
            ]
            .into(),
        );
        let h = Codex {
            api_base: Some("http://127.0.0.1:9/v1".into()),
            ..Default::default()
        };
        let c = h
            .credentials(&env, Path::new("/tmp"), "/root")
            .expect("creds");
        assert_eq!(c.exec_env[API_KEY_ENV], "sk-secret");
        assert_eq!(c.exec_env[BASE_URL_ENV], "http://127.0.0.1:9/v1");
        assert!(c.mounts.is_empty());
        assert!(!format!("{c:?}").contains("sk-secret"));
        let none = EnvSource::fixed([("HOME".to_string(), "/nonexistent".to_string())].into());
        let s = h.auth(&none);
        assert!(s.state.blocks());
        assert!(s.remedy.unwrap_or_default().contains("codex login"));
        let bad = Codex {
            api_base: Some("http://x\" y".into()),
            ..Default::default()
        };
        assert!(bad.credentials(&env, Path::new("/tmp"), "/root").is_err());
    }
}
