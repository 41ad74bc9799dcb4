//! Kimi Code (`kimi -p … --output-format stream-json`), the npm package `@moonshot-ai/kimi-code`
//! (a Node ≥ 22.19 program; the agents test image carries 2.1.0). Its model API is OpenAI Chat
//! Completions with Kimi extensions (`thinking: {type, effort}`, `prompt_cache_key`) at
//! `<base>/chat/completions`, base `https://api.kimi.com/coding/v1` unless `KIMI_CODE_BASE_URL`
//! overrides it. `-p` runs in the CLI's "auto" permission mode (every tool call approved).
//!
//! Credentials: the OAuth login `kimi login` writes to `$KIMI_CODE_HOME` (default
//! `~/.kimi-code`): `credentials/<name>.json` (`access_token`, `refresh_token`, `expires_at` in
//! seconds), plus `config.toml` (the `managed:kimi-code` provider and the `kimi-code/*` model
//! aliases) and `device_id`. The CLI scopes the token file to the endpoint: `kimi-code.json` for
//! the default API and auth host, `kimi-code-env-<16 hex>.json` (a SHA-256 of the auth host and
//! base URL) for a login made with `KIMI_CODE_BASE_URL` / `KIMI_CODE_OAUTH_HOST` set — so a token
//! is never sent to another endpoint. atp computes the same name ([`token_name`]), copies that one
//! file, `config.toml` and `device_id` alone (0600) into the run's private directory, mounted
//! read-only; the launch script *copies* them into the sandbox-local `KIMI_CODE_HOME` (the CLI
//! rewrites them; never mounted there, never in the workdir) and deletes the copies when the CLI
//! exits. `--api-base` (or `KIMI_CODE_BASE_URL`) and `KIMI_CODE_OAUTH_HOST` are passed through.
//! Telemetry and auto-update are switched off (`KIMI_DISABLE_TELEMETRY`,
//! `KIMI_CODE_NO_AUTO_UPDATE`).
//!
//! Usage: the newest session's `agents/main/wire.jsonl`: top-level `usage.record` lines
//! (`usage{inputOther, inputCacheRead, inputCacheCreation, output}`; in = all three inputs,
//! cached = `inputCacheRead`) and the `finishReason` of `context.append_loop_event` lines whose
//! `event.type` is `step.end`; the launch script copies the sessions into `.atp/kimi-sessions/`,
//! which atp moves to `OUT/logs/kimi-session/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atp_backend::layout::shell_quote as sq;
use atp_prover::{AuthKind, AuthStatus, EnvSource, ProgressEvent, Usage};
use serde_json::{json, Value};

use crate::assets::{Assets, LEAN_LSP};
use crate::harness::{
    home_dir, Collected, CredentialError, Credentials, Harness, Parsed, StreamParser,
    CREDENTIALS_MOUNT, PROMPT_FILE,
};
use crate::safe_fs;

pub const HOME_ENV: &str = "KIMI_CODE_HOME";
/// The CLI's override of its model API base URL.
pub const BASE_URL_ENV: &str = "KIMI_CODE_BASE_URL";
/// The CLI's override of its OAuth host (token refresh).
pub const OAUTH_HOST_ENV: &str = "KIMI_CODE_OAUTH_HOST";
/// The provider `kimi login` writes into config.toml.
pub const MANAGED_PROVIDER: &str = "managed:kimi-code";
/// The CLI's defaults for both.
pub const DEFAULT_BASE_URL: &str = "https://api.kimi.com/coding/v1";
pub const DEFAULT_OAUTH_HOST: &str = "https://auth.kimi.com";
pub const DEFAULT_MODEL: &str = "kimi-code/k3";
pub const DEFAULT_EFFORT: &str = "high";
/// Staged configuration copied into the CLI's home by the launch script.
pub const STAGED_HOME: &str = ".atp/kimi-home";
/// Where the launch script leaves the CLI's sessions for atp.
pub const SESSIONS_OUT: &str = ".atp/kimi-sessions";
/// The login files copied (relative to the CLI's home).
pub const LOGIN_FILES: &[&str] = &["config.toml", "device_id"];

/// The Kimi Code harness.
#[derive(Debug, Clone)]
pub struct Kimi {
    pub model: String,
    pub effort: String,
    pub assets: Assets,
    pub api_base: Option<String>,
}

impl Default for Kimi {
    fn default() -> Self {
        Kimi {
            model: DEFAULT_MODEL.into(),
            effort: DEFAULT_EFFORT.into(),
            assets: Assets::default(),
            api_base: None,
        }
    }
}

/// The host's Kimi Code home.
pub fn kimi_home(env: &EnvSource) -> Option<PathBuf> {
    match env.get(HOME_ENV) {
        Some(d) => Some(PathBuf::from(d)),
        None => Some(home_dir(env)?.join(".kimi-code")),
    }
}

/// The token file (without `.json`) Kimi Code 2.1 reads under `credentials/` for a login against
/// `base_url` and `oauth_host` (`None`: not overridden): `kimi-code` for its defaults, else
/// `kimi-code-env-` + the first 16 hex digits of SHA-256 of `{"oauthHost":…,"baseUrl":…}`
/// (trailing slashes dropped), as the CLI computes it.
pub fn token_name(base_url: Option<&str>, oauth_host: Option<&str>) -> String {
    let host = oauth_host
        .unwrap_or(DEFAULT_OAUTH_HOST)
        .trim()
        .trim_end_matches('/');
    let base = base_url.unwrap_or(DEFAULT_BASE_URL).trim_end_matches('/');
    if host == DEFAULT_OAUTH_HOST && base == DEFAULT_BASE_URL {
        return "kimi-code".into();
    }
    use sha2::Digest;
    // In this key order (the CLI's `JSON.stringify({oauthHost, baseUrl})`).
    let key = format!(
        r#"{{"oauthHost":{},"baseUrl":{}}}"#,
        Value::from(host),
        Value::from(base)
    );
    let digest = hex::encode(sha2::Sha256::digest(key.as_bytes()));
    format!("kimi-code-env-{}", &digest[..16])
}

impl Kimi {
    /// The base URL and OAuth host the CLI will use (overrides only).
    fn endpoint(&self, env: &EnvSource) -> (Option<String>, Option<String>) {
        let base = self.api_base.clone().or_else(|| env.get(BASE_URL_ENV));
        (base, env.get(OAUTH_HOST_ENV))
    }

    /// The token file of this run's endpoint, relative to the Kimi home.
    fn token_file(&self, env: &EnvSource) -> String {
        let (base, host) = self.endpoint(env);
        format!(
            "credentials/{}.json",
            token_name(base.as_deref(), host.as_deref())
        )
    }

    /// `config.toml` (the login's, or none) with the managed Kimi Code provider's `base_url` set
    /// to `base`; the provider (OAuth login) and this run's `kimi-code/<model>` alias are added
    /// when absent. Everything else is kept.
    fn point_config_at(&self, config: Option<&str>, base: &str) -> Result<String, String> {
        let mut doc: toml::Table = match config {
            Some(t) => toml::from_str(t).map_err(|e| e.message().to_string())?,
            None => toml::Table::new(),
        };
        let table = |v: &mut toml::Value| -> Result<(), String> {
            if v.is_table() {
                Ok(())
            } else {
                Err("`providers` and `models` must be tables".into())
            }
        };
        let providers = doc
            .entry("providers")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table(providers)?;
        let providers = providers.as_table_mut().ok_or("providers")?;
        let managed = providers.entry(MANAGED_PROVIDER).or_insert_with(|| {
            toml::Value::Table(toml::toml! {
                type = "kimi"
                api_key = ""
                [oauth]
                storage = "file"
                key = "oauth/kimi-code"
            })
        });
        table(managed)?;
        managed
            .as_table_mut()
            .ok_or("provider")?
            .insert("base_url".into(), toml::Value::String(base.to_string()));
        if let Some(id) = self.model.strip_prefix("kimi-code/") {
            let models = doc
                .entry("models")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table(models)?;
            let models = models.as_table_mut().ok_or("models")?;
            if !models.contains_key(&self.model) {
                let mut alias = toml::Table::new();
                alias.insert("provider".into(), MANAGED_PROVIDER.into());
                alias.insert("model".into(), id.into());
                alias.insert("max_context_size".into(), toml::Value::Integer(262_144));
                models.insert(self.model.clone(), toml::Value::Table(alias));
            }
        }
        toml::to_string(&doc).map_err(|e| e.to_string())
    }

    /// The remedy for a missing login for this run's endpoint.
    fn login_remedy(&self, env: &EnvSource) -> String {
        match self.endpoint(env) {
            (None, None) => {
                "run `kimi login` (writes ~/.kimi-code/credentials/) or set KIMI_CODE_HOME".into()
            }
            (base, host) => {
                let mut cmd = String::new();
                if let Some(b) = base {
                    cmd.push_str(&format!("{BASE_URL_ENV}={} ", sq(&b)));
                }
                if let Some(h) = host {
                    cmd.push_str(&format!("{OAUTH_HOST_ENV}={} ", sq(&h)));
                }
                format!("run `{cmd}kimi login` (Kimi Code keeps one login per endpoint)")
            }
        }
    }
}

impl Harness for Kimi {
    fn prover_name(&self) -> &str {
        "kimi"
    }

    fn harness_name(&self) -> &'static str {
        "kimi"
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
        let remedy = self.login_remedy(env);
        let Some(home) = kimi_home(env) else {
            return AuthStatus::missing(AuthKind::Oauth, &remedy);
        };
        let rel = self.token_file(env);
        let Some(bytes) = safe_fs::read(&home, &rel, safe_fs::MAX_FILE_BYTES) else {
            return AuthStatus::missing(AuthKind::Oauth, &remedy);
        };
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if v.get("access_token")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            // A logged-out (revoked) token file keeps its name with an empty token.
            return AuthStatus::missing(AuthKind::Oauth, &remedy);
        }
        let expires = v
            .get("expires_at")
            .and_then(|x| x.as_i64().or_else(|| x.as_f64().map(|f| f as i64)))
            .filter(|&t| t > 0);
        let refreshable = v
            .get("refresh_token")
            .and_then(Value::as_str)
            .is_some_and(|r| !r.is_empty());
        AuthStatus::present(
            AuthKind::Oauth,
            format!("file {}", home.join(&rel).display()),
            expires,
            refreshable,
            &remedy,
        )
    }

    fn credentials(
        &self,
        env: &EnvSource,
        private: &Path,
        _home: &str,
    ) -> Result<Credentials, CredentialError> {
        let mut c = Credentials::default();
        let home = kimi_home(env).ok_or_else(|| {
            CredentialError(format!("kimi: no credential — {}", self.login_remedy(env)))
        })?;
        let rel = self.token_file(env);
        if safe_fs::read(&home, &rel, safe_fs::MAX_FILE_BYTES).is_none() {
            return Err(CredentialError(format!(
                "kimi: no login in {} — {}",
                home.join(&rel).display(),
                self.login_remedy(env)
            )));
        }
        c.copy_file(&home.join(&rel), private, &format!("kimi/{rel}"))?;
        let (base, host) = self.endpoint(env);
        let config = safe_fs::read(&home, "config.toml", safe_fs::MAX_FILE_BYTES);
        match (&base, config) {
            // The CLI sends its model requests to the provider's `base_url` of config.toml
            // (`KIMI_CODE_BASE_URL` only picks the login): the copy points it at the override.
            (Some(b), config) => {
                let text = config.map(|c| String::from_utf8_lossy(&c).into_owned());
                let patched = self.point_config_at(text.as_deref(), b).map_err(|e| {
                    CredentialError(format!(
                        "kimi: {}: {e} — fix it or run `kimi login` again",
                        home.join("config.toml").display()
                    ))
                })?;
                c.add_file(private, "kimi/config.toml", patched.as_bytes())?;
            }
            (None, Some(bytes)) => c.add_file(private, "kimi/config.toml", &bytes)?,
            (None, None) => {}
        }
        for name in LOGIN_FILES.iter().filter(|n| **n != "config.toml") {
            let f = home.join(name);
            if safe_fs::read(&home, name, safe_fs::MAX_FILE_BYTES).is_some() {
                c.copy_file(&f, private, &format!("kimi/{name}"))?;
            }
        }
        c.source = Some(format!("file {}", home.join(&rel).display()));
        if let Some(base) = base {
            c.exec_env.insert(BASE_URL_ENV.into(), base);
        }
        if let Some(host) = host {
            c.exec_env.insert(OAUTH_HOST_ENV.into(), host);
        }
        Ok(c)
    }

    fn skills_dir(&self) -> Option<&'static str> {
        Some(".atp/kimi-home/skills")
    }

    fn stage(&self, wd: &Path) -> std::io::Result<()> {
        let home = wd.join(STAGED_HOME);
        std::fs::create_dir_all(&home)?;
        let mcp =
            serde_json::to_string_pretty(&LEAN_LSP.kimi_json()).map_err(std::io::Error::other)?;
        std::fs::write(home.join("mcp.json"), mcp + "\n")?;
        self.assets
            .stage(wd, self.skills_dir(), None)
            .map_err(std::io::Error::other)
    }

    fn launch_script(&self) -> String {
        format!(
            r#"#!/bin/bash
# atp launch script for Kimi Code (rendered by atp; edits are overwritten)
set -u
PROMPT="$(cat {PROMPT_FILE})"
export KIMI_CODE_HOME="$HOME/.kimi-code"
export KIMI_DISABLE_CRON=1 KIMI_CODE_NO_AUTO_UPDATE=1 KIMI_DISABLE_TELEMETRY=1
export KIMI_MODEL_THINKING_EFFORT={effort}
mkdir -p "$KIMI_CODE_HOME" && chmod 700 "$KIMI_CODE_HOME"
cleanup() {{
  # The CLI's sessions for atp; the copied login never stays behind.
  rm -rf "{SESSIONS_OUT}"
  if [ -d "$KIMI_CODE_HOME/sessions" ]; then
    mkdir -p "{SESSIONS_OUT}" && cp -R "$KIMI_CODE_HOME/sessions/." "{SESSIONS_OUT}/"
  fi
  rm -rf "$KIMI_CODE_HOME/credentials" "$KIMI_CODE_HOME/config.toml" "$KIMI_CODE_HOME/device_id"
}}
trap cleanup EXIT
trap 'exit 143' TERM INT
# The login is copied (Kimi Code rewrites it), 0600, from the read-only mount.
if [ -d {CREDENTIALS_MOUNT}/kimi ]; then
  cp -R {CREDENTIALS_MOUNT}/kimi/. "$KIMI_CODE_HOME/"
  chmod 700 "$KIMI_CODE_HOME/credentials" 2>/dev/null
  find "$KIMI_CODE_HOME/credentials" "$KIMI_CODE_HOME/config.toml" "$KIMI_CODE_HOME/device_id" -type f -exec chmod 600 {{}} + 2>/dev/null
fi
cp -R {STAGED_HOME}/. "$KIMI_CODE_HOME/"
kimi -p "$PROMPT" --model {model} --output-format stream-json < /dev/null
"#,
            effort = sq(&self.effort),
            model = sq(&self.model),
        )
    }

    fn static_env(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    fn parser(&self) -> Box<dyn StreamParser> {
        Box::new(KimiParser::default())
    }

    fn collect(&self, wd: &Path, logs: &Path) -> std::io::Result<Collected> {
        let mut c = Collected::default();
        // The newest main-agent wire log.
        let wires: Vec<PathBuf> = safe_fs::files_under(wd, SESSIONS_OUT)
            .into_iter()
            .filter(|f| f.ends_with("agents/main/wire.jsonl"))
            .collect();
        let newest = wires.iter().max_by_key(|f| {
            let p = Path::new(SESSIONS_OUT).join(f);
            let parent = p.parent().map(Path::to_path_buf).unwrap_or_default();
            safe_fs::list(wd, &parent)
                .into_iter()
                .find(|e| e.name == "wire.jsonl")
                .and_then(|e| e.modified)
        });
        if let Some(f) = newest {
            if let Some(text) = safe_fs::read_text(wd, Path::new(SESSIONS_OUT).join(f)) {
                c.usage = Some(wire_usage(&text));
            }
        }
        c.logs.extend(safe_fs::move_tree(
            wd,
            SESSIONS_OUT,
            &logs.join("kimi-session"),
        )?);
        Ok(c)
    }
}

/// Σ `usage.record` of a wire log, with the last `step.end` finish reason.
pub fn wire_usage(text: &str) -> Usage {
    let mut u = Usage::default();
    let mut steps = 0u64;
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line.trim()) else {
            continue;
        };
        let ev = v.get("event").unwrap_or(&v);
        match ev.get("type").and_then(Value::as_str) {
            Some("usage.record") => {
                let p = ev.get("payload").or_else(|| ev.get("usage")).unwrap_or(ev);
                let n = |k: &str| p.get(k).and_then(Value::as_u64).unwrap_or(0);
                u.input_tokens += n("inputOther") + n("inputCacheRead") + n("inputCacheCreation");
                u.cached_input_tokens += n("inputCacheRead");
                u.output_tokens += n("output");
            }
            Some("step.end") => {
                steps += 1;
                let p = ev.get("payload").unwrap_or(ev);
                if let Some(r) = p.get("finishReason").and_then(Value::as_str) {
                    u.stop_reason = Some(r.to_string());
                }
            }
            _ => {}
        }
    }
    u.turns = Some(steps);
    u
}

/// Parser of `kimi --output-format stream-json` (Kimi Code 2.1): one message per line —
/// `{role: "assistant", content?, tool_calls?[{id, function{name, arguments}}]}`,
/// `{role: "tool", tool_call_id, content}` and `{role: "meta", type, …}` (`system.version`,
/// `turn.step.retrying` with `error_message`/`status_code`, `session.resume_hint` with
/// `session_id`, printed once the turn completed: the run's result). A failed run prints
/// `error: …` on stderr only (and exits 1).
#[derive(Debug, Default)]
pub struct KimiParser {
    turns: u64,
    tool_calls: u64,
    last_text: Option<String>,
    version: Option<String>,
    session_id: Option<String>,
    retries: u64,
    last_retry_error: Option<String>,
    finished: bool,
}

impl StreamParser for KimiParser {
    fn line(&mut self, line: &str) -> Vec<ProgressEvent> {
        let Ok(v) = serde_json::from_str::<Value>(line.trim()) else {
            return Vec::new();
        };
        let mut events = Vec::new();
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        match v.get("role").and_then(Value::as_str) {
            Some("assistant") => {
                self.turns += 1;
                events.push(ProgressEvent::Turn);
                if let Some(t) = text("content").filter(|t| !t.is_empty()) {
                    self.last_text = Some(t);
                }
                for call in v
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    self.tool_calls += 1;
                    let name = call
                        .pointer("/function/name")
                        .and_then(Value::as_str)
                        .unwrap_or("?");
                    events.push(ProgressEvent::ToolCall(name.to_string()));
                }
            }
            Some("meta") => match v.get("type").and_then(Value::as_str) {
                Some("system.version") => self.version = text("version"),
                // Printed once the prompt's turn completed (not after a failure).
                Some("session.resume_hint") => {
                    self.session_id = text("session_id");
                    self.finished = true;
                }
                Some("turn.step.retrying") => {
                    self.retries += 1;
                    self.last_retry_error = text("error_message");
                }
                _ => {}
            },
            _ => {}
        }
        events
    }

    fn finish(&mut self) -> Parsed {
        let mut meta = BTreeMap::new();
        if let Some(v) = &self.version {
            meta.insert("kimi_version".to_string(), json!(v));
        }
        if let Some(s) = &self.session_id {
            meta.insert("session_id".to_string(), json!(s));
        }
        if self.retries > 0 {
            meta.insert("retries".to_string(), json!(self.retries));
        }
        if let Some(e) = &self.last_retry_error {
            meta.insert("last_retry_error".to_string(), json!(e));
        }
        Parsed {
            usage: Usage {
                turns: Some(self.turns),
                tool_calls: Some(self.tool_calls),
                ..Default::default()
            },
            result_text: self.last_text.clone(),
            finished: self.finished,
            metadata: meta,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{parse_all, summary, transcript};

    #[test]
    fn recorded_stream_of_the_real_cli() {
        let (ev, p) = parse_all(&mut KimiParser::default(), &transcript("kimi/solve.jsonl"));
        assert_eq!(p.usage.tool_calls, Some(1));
        assert!(ev.contains(&ProgressEvent::ToolCall("Bash".into())));
        assert_eq!(
            p.result_text.as_deref(),
            Some("Replaced the sorry with rfl; the proof is complete.")
        );
        assert_eq!(p.metadata["kimi_version"], "2.1.0");
        assert!(p.finished && !p.is_error);
        insta::assert_json_snapshot!(summary(&ev, &p));
    }

    #[test]
    fn recorded_refused_token_prints_no_message() {
        // The failure is on stderr only (`error: failed to run prompt: …`, exit 1).
        let (ev, p) = parse_all(
            &mut KimiParser::default(),
            &transcript("kimi/auth_401.jsonl"),
        );
        assert!(ev.is_empty());
        assert!(!p.finished);
        assert_eq!(p.usage.turns, Some(0));
        assert!(p.result_text.is_none());
    }

    #[test]
    fn recorded_wire_log_usage() {
        // The fake's `solve` script: (1200 + 500 written) + 3000 read, then 1500 + 4000 read;
        // Chat Completions has no cache-write count, so the write is in `inputOther`.
        let u = wire_usage(&transcript("kimi/solve.wire.jsonl"));
        assert_eq!(u.input_tokens, 1700 + 3000 + 1500 + 4000);
        assert_eq!(u.cached_input_tokens, 7000);
        assert_eq!(u.output_tokens, 120);
        assert_eq!(u.stop_reason.as_deref(), Some("end_turn"));
        assert_eq!(u.turns, Some(2));
        let refused = wire_usage(&transcript("kimi/auth_401.wire.jsonl"));
        assert_eq!(refused.input_tokens + refused.output_tokens, 0);
    }

    #[test]
    fn token_names_follow_the_clis_endpoint_scoping() {
        assert_eq!(token_name(None, None), "kimi-code");
        assert_eq!(
            token_name(Some("https://api.kimi.com/coding/v1/"), None),
            "kimi-code"
        );
        // Values from `printf '{"oauthHost":"%s","baseUrl":"%s"}' HOST BASE | sha256sum`, the
        // names the real CLI read in the recordings.
        assert_eq!(
            token_name(
                Some("http://127.0.0.1:8080/coding/v1"),
                Some("http://127.0.0.1:8080/")
            ),
            "kimi-code-env-5efbb6ba7feb42cd"
        );
        assert_eq!(
            token_name(Some("https://gw.example/v1"), None),
            "kimi-code-env-98db9516e1c8b3e2"
        );
    }

    #[test]
    fn launch_script_snapshot() {
        insta::assert_snapshot!(Kimi::default().launch_script());
    }

    fn login_home(d: &Path, token: &str) -> PathBuf {
        let home = d.join("kimi-home");
        std::fs::create_dir_all(home.join("credentials")).expect("mk");
        std::fs::create_dir_all(home.join("sessions/x")).expect("mk");
        std::fs::write(
            home.join(format!("credentials/{token}.json")),
            r#"{"access_token":"acc-secret","refresh_token":"r","expires_at":4102444800}"#,
        )
        .expect("w");
        std::fs::write(home.join("credentials/other.json"), "{}").expect("w");
        std::fs::write(home.join("device_id"), "dev").expect("w");
        std::fs::write(home.join("sessions/x/history"), "private").expect("w");
        home
    }

    #[test]
    fn the_login_is_copied_alone_0600_and_the_sessions_are_collected() {
        let d = tempfile::tempdir().expect("tmp");
        let home = login_home(d.path(), "kimi-code");
        let env = EnvSource::fixed([(HOME_ENV.to_string(), home.display().to_string())].into());
        let h = Kimi::default();
        let s = h.auth(&env);
        assert_eq!(s.expires_at, Some(4_102_444_800));
        assert!(s.refreshable && !s.state.blocks());
        let private = d.path().join("private");
        std::fs::create_dir(&private).expect("mk");
        let c = h.credentials(&env, &private, "/root").expect("creds");
        assert_eq!(c.mounts.len(), 1);
        assert!(c.mounts[0].read_only);
        assert!(c.exec_env.is_empty());
        let mut copied = safe_fs::files_under(&private, "");
        copied.sort();
        assert_eq!(
            copied,
            vec![
                PathBuf::from("kimi/credentials/kimi-code.json"),
                PathBuf::from("kimi/device_id")
            ]
        );
        use std::os::unix::fs::PermissionsExt;
        for f in &copied {
            let mode = std::fs::metadata(private.join(f))
                .expect("md")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{}", f.display());
        }
        // collect: the wire log's usage, the sessions moved to the logs.
        let wd = d.path().join("wd");
        let w = wd.join(SESSIONS_OUT).join("p1/s1/agents/main");
        std::fs::create_dir_all(&w).expect("mk");
        std::fs::write(w.join("wire.jsonl"), transcript("kimi/solve.wire.jsonl")).expect("w");
        let logs = d.path().join("logs");
        let got = h.collect(&wd, &logs).expect("collect");
        assert_eq!(got.usage.expect("usage").output_tokens, 120);
        assert!(!wd.join(SESSIONS_OUT).exists());
        assert!(logs
            .join("kimi-session/p1/s1/agents/main/wire.jsonl")
            .is_file());
        let none = EnvSource::fixed([("HOME".to_string(), "/nonexistent".to_string())].into());
        assert!(h.auth(&none).state.blocks());
        assert!(h.credentials(&none, &private, "/root").is_err());
    }

    #[test]
    fn an_overridden_endpoint_needs_its_own_login_and_points_the_config_at_it() {
        let d = tempfile::tempdir().expect("tmp");
        let base = "https://gw.example/v1";
        // Only the default endpoint's login: refused with the login command for the gateway.
        let home = login_home(d.path(), "kimi-code");
        let env = EnvSource::fixed([(HOME_ENV.to_string(), home.display().to_string())].into());
        let h = Kimi {
            api_base: Some(base.into()),
            ..Kimi::default()
        };
        let s = h.auth(&env);
        assert!(s.state.blocks());
        let remedy = s.remedy.clone().unwrap_or_default();
        assert!(
            remedy.contains("KIMI_CODE_BASE_URL=") && remedy.contains("gw.example/v1"),
            "{remedy}"
        );
        let private = d.path().join("private");
        std::fs::create_dir(&private).expect("mk");
        assert!(h.credentials(&env, &private, "/root").is_err());
        // With the gateway's login and the login's config.toml.
        let token = token_name(Some(base), None);
        std::fs::rename(
            home.join("credentials/kimi-code.json"),
            home.join(format!("credentials/{token}.json")),
        )
        .expect("mv");
        std::fs::write(
            home.join("config.toml"),
            "default_model = \"kimi-code/k3\"\n[providers.\"managed:kimi-code\"]\ntype = \"kimi\"\nbase_url = \"https://api.kimi.com/coding/v1\"\napi_key = \"\"\n[providers.\"managed:kimi-code\".oauth]\nstorage = \"file\"\nkey = \"oauth/kimi-code\"\n[providers.other]\ntype = \"openai\"\nbase_url = \"https://other.example\"\n",
        )
        .expect("w");
        assert!(!h.auth(&env).state.blocks());
        let c = h.credentials(&env, &private, "/root").expect("creds");
        assert_eq!(c.exec_env.get(BASE_URL_ENV).map(String::as_str), Some(base));
        let config: toml::Table = toml::from_str(
            &std::fs::read_to_string(private.join("kimi/config.toml")).expect("config"),
        )
        .expect("toml");
        let p = &config["providers"];
        assert_eq!(p[MANAGED_PROVIDER]["base_url"].as_str(), Some(base));
        assert_eq!(
            p[MANAGED_PROVIDER]["oauth"]["key"].as_str(),
            Some("oauth/kimi-code")
        );
        assert_eq!(
            p["other"]["base_url"].as_str(),
            Some("https://other.example")
        );
        assert_eq!(
            config["models"]["kimi-code/k3"]["model"].as_str(),
            Some("k3")
        );
        assert_eq!(config["default_model"].as_str(), Some("kimi-code/k3"));
        assert!(private
            .join(format!("kimi/credentials/{token}.json"))
            .is_file());
        assert!(!private.join("kimi/credentials/other.json").exists());
    }
}
