//! OpenCode (`opencode run --format json …`), for any provider OpenCode knows: DeepSeek, xAI
//! (Grok), Anthropic, OpenAI, Google, Mistral, OpenRouter.
//!
//! Staging: `opencode.json` in the workdir — the provider's model options (reasoning effort),
//! its `baseURL` when overridden (`--api-base`, or the provider's usual base-URL variable),
//! and the lean-lsp MCP server. No secret is ever written there.
//!
//! Credentials, per [`AuthMode`]: the provider's API key variable (OpenCode reads it from the
//! environment), or the provider's entry of OpenCode's login file
//! (`$XDG_DATA_HOME/opencode/auth.json`, default `~/.local/share/opencode/auth.json`) copied
//! alone (0600) into the run's private directory, mounted read-only, and copied by the launch
//! script into a sandbox-local `XDG_DATA_HOME` (OpenCode rewrites it when it refreshes a
//! token). Each mode falls back to the other when its credential is missing.
//!
//! Stream (one JSON object per line): `step_start`, `text`, `tool_use{part.tool,
//! part.state{status, input, error}}`, `step_finish{part.reason, part.tokens{input, output,
//! reasoning, cache{read, write}}, part.cost}`, `error{error{name, data{message,
//! statusCode}}}`. Usage and cost are summed over `step_finish` (OpenCode's own title request
//! is not in the stream).

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

/// One provider as OpenCode names it: its API key variable and its usual base-URL variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provider {
    pub id: &'static str,
    pub key_env: &'static str,
    pub base_url_env: Option<&'static str>,
}

/// The providers atp knows the variables of (OpenCode knows more; for those pass the key
/// through a login).
pub const PROVIDERS: &[Provider] = &[
    Provider {
        id: "deepseek",
        key_env: "DEEPSEEK_API_KEY",
        base_url_env: Some("DEEPSEEK_BASE_URL"),
    },
    Provider {
        id: "xai",
        key_env: "XAI_API_KEY",
        base_url_env: Some("XAI_BASE_URL"),
    },
    Provider {
        id: "anthropic",
        key_env: "ANTHROPIC_API_KEY",
        base_url_env: Some("ANTHROPIC_BASE_URL"),
    },
    Provider {
        id: "openai",
        key_env: "OPENAI_API_KEY",
        base_url_env: Some("OPENAI_BASE_URL"),
    },
    Provider {
        id: "google",
        key_env: "GOOGLE_GENERATIVE_AI_API_KEY",
        base_url_env: None,
    },
    Provider {
        id: "mistral",
        key_env: "MISTRAL_API_KEY",
        base_url_env: None,
    },
    Provider {
        id: "openrouter",
        key_env: "OPENROUTER_API_KEY",
        base_url_env: None,
    },
];

/// The provider `id`, when atp knows its variables.
pub fn provider(id: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.id == id)
}

/// The provider of a bare model name (`claude*` → anthropic, `deepseek*` → deepseek,
/// `gemini*` → google, `grok*` → xai, `mistral*`/`magistral*`/`devstral*` → mistral, else
/// openai).
pub fn infer_provider(model: &str) -> &'static str {
    let m = model.to_ascii_lowercase();
    if m.starts_with("claude") {
        "anthropic"
    } else if m.starts_with("deepseek") {
        "deepseek"
    } else if m.starts_with("gemini") {
        "google"
    } else if m.starts_with("grok") {
        "xai"
    } else if ["mistral", "magistral", "devstral", "codestral"]
        .iter()
        .any(|p| m.starts_with(p))
    {
        "mistral"
    } else {
        "openai"
    }
}

/// Which credential an OpenCode prover prefers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// The provider's API key variable (else the login file).
    ApiKey,
    /// The provider's entry of OpenCode's login file (else the key variable).
    Login,
}

/// The login file's name inside the run's private directory and OpenCode's data directory.
pub const AUTH_FILE: &str = "opencode/auth.json";
pub const DEFAULT_PROVIDER: &str = "deepseek";
pub const DEFAULT_MODEL: &str = "deepseek-v4-pro";
pub const DEFAULT_EFFORT: &str = "high";

/// The OpenCode harness.
#[derive(Debug, Clone)]
pub struct OpenCode {
    /// The prover name users type (`opencode`, `deepseek`, `grok`).
    pub name: String,
    pub provider: String,
    pub model: String,
    pub effort: String,
    pub auth_mode: AuthMode,
    pub assets: Assets,
    /// The provider's base URL (`baseURL` in `opencode.json`).
    pub api_base: Option<String>,
}

impl Default for OpenCode {
    fn default() -> Self {
        OpenCode {
            name: "opencode".into(),
            provider: DEFAULT_PROVIDER.into(),
            model: DEFAULT_MODEL.into(),
            effort: DEFAULT_EFFORT.into(),
            auth_mode: AuthMode::ApiKey,
            assets: Assets::default(),
            api_base: None,
        }
    }
}

impl OpenCode {
    /// Set the model from what a user typed: `provider/model`, or a bare model whose provider
    /// is kept when `keep_provider`, else inferred.
    pub fn set_model(&mut self, typed: &str, keep_provider: bool) {
        match typed.split_once('/') {
            Some((p, m)) if !p.is_empty() && !m.is_empty() => {
                self.provider = p.to_string();
                self.model = m.to_string();
            }
            _ => {
                if !keep_provider {
                    self.provider = infer_provider(typed).to_string();
                }
                self.model = typed.to_string();
            }
        }
    }

    /// The base URL: the explicit override, else the provider's usual variable.
    pub fn resolve_api_base(&mut self, env: &EnvSource) {
        if self.api_base.is_none() {
            self.api_base = provider(&self.provider)
                .and_then(|p| p.base_url_env)
                .and_then(|k| env.get(k));
        }
    }

    fn key_env(&self) -> Option<&'static str> {
        provider(&self.provider).map(|p| p.key_env)
    }

    /// The contents of `opencode.json`.
    pub fn config_json(&self) -> Value {
        let model_options = if self.provider == "anthropic" {
            json!({"thinking": {"type": "adaptive"}, "output_config": {"effort": self.effort}})
        } else {
            json!({"reasoningEffort": self.effort})
        };
        let mut prov = json!({"models": {self.model.clone(): {"options": model_options}}});
        if let Some(base) = &self.api_base {
            prov["options"] = json!({"baseURL": base});
        }
        json!({
            "$schema": "https://opencode.ai/config.json",
            "autoupdate": false,
            "share": "disabled",
            "provider": {self.provider.clone(): prov},
            "mcp": LEAN_LSP.opencode_json(),
        })
    }
}

/// OpenCode's login file on the host.
pub fn login_file(env: &EnvSource) -> Option<PathBuf> {
    let data = match env.get("XDG_DATA_HOME") {
        Some(d) => PathBuf::from(d),
        None => home_dir(env)?.join(".local/share"),
    };
    let f = data.join("opencode/auth.json");
    f.is_file().then_some(f)
}

/// The provider's entry of the login file.
fn login_entry(env: &EnvSource, provider: &str) -> Option<(PathBuf, Value)> {
    let f = login_file(env)?;
    let v: Value = serde_json::from_slice(&std::fs::read(&f).ok()?).ok()?;
    let e = v.get(provider)?.clone();
    e.is_object().then_some((f, e))
}

fn entry_status(path: &Path, provider: &str, e: &Value) -> AuthStatus {
    let source = format!("file {} [{provider}]", path.display());
    let remedy = format!("run `opencode auth login` for {provider} again");
    match e.get("type").and_then(Value::as_str) {
        Some("api") => AuthStatus::present(AuthKind::ApiKey, source, None, false, remedy),
        _ => {
            let expires = e.get("expires").and_then(Value::as_i64).map(|ms| ms / 1000);
            let refreshable = e
                .get("refresh")
                .and_then(Value::as_str)
                .is_some_and(|r| !r.is_empty());
            AuthStatus::present(AuthKind::Oauth, source, expires, refreshable, remedy)
        }
    }
}

impl Harness for OpenCode {
    fn prover_name(&self) -> &str {
        &self.name
    }

    fn harness_name(&self) -> &'static str {
        "opencode"
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
        c.insert("provider".into(), json!(self.provider));
        c.insert(
            "auth".into(),
            json!(match self.auth_mode {
                AuthMode::ApiKey => "api_key",
                AuthMode::Login => "login",
            }),
        );
        c.insert("skills".into(), json!(self.assets.skill_names()));
        c
    }

    fn auth(&self, env: &EnvSource) -> AuthStatus {
        let key = self.key_env().and_then(|k| env.get(k).map(|_| k));
        let login = login_entry(env, &self.provider);
        let from_key =
            |k: &str| AuthStatus::present(AuthKind::ApiKey, format!("env {k}"), None, false, "");
        match (self.auth_mode, key, login) {
            (AuthMode::ApiKey, Some(k), _) => from_key(k),
            (AuthMode::Login, _, Some((f, e))) => entry_status(&f, &self.provider, &e),
            (_, _, Some((f, e))) => entry_status(&f, &self.provider, &e),
            (_, Some(k), None) => from_key(k),
            (_, None, None) => {
                let key_hint = match self.key_env() {
                    Some(k) => format!("set {k} or "),
                    None => String::new(),
                };
                AuthStatus::missing(
                    match self.auth_mode {
                        AuthMode::ApiKey => AuthKind::ApiKey,
                        AuthMode::Login => AuthKind::Oauth,
                    },
                    format!(
                        "{key_hint}run `opencode auth login` for {} (writes ~/.local/share/opencode/auth.json)",
                        self.provider
                    ),
                )
            }
        }
    }

    fn credentials(
        &self,
        env: &EnvSource,
        private: &Path,
        _home: &str,
    ) -> Result<Credentials, CredentialError> {
        let mut c = Credentials::default();
        let key = self.key_env().and_then(|k| env.get(k).map(|v| (k, v)));
        let login = login_entry(env, &self.provider);
        let use_login = match (self.auth_mode, &key, &login) {
            (AuthMode::ApiKey, Some(_), _) => false,
            (_, _, Some(_)) => true,
            (_, Some(_), None) => false,
            (_, None, None) => {
                return Err(CredentialError(format!(
                    "{}: no credential for {} — {}",
                    self.name,
                    self.provider,
                    self.auth(env).remedy.unwrap_or_default()
                )))
            }
        };
        if use_login {
            if let Some((f, e)) = login {
                // Only this provider's entry: the file may hold logins to other providers.
                let alone = json!({ self.provider.clone(): e });
                let bytes = serde_json::to_vec_pretty(&alone)
                    .map_err(|e| CredentialError(format!("{}: {e}", f.display())))?;
                c.add_file(private, AUTH_FILE, &bytes)?;
                c.source = Some(format!("file {} [{}]", f.display(), self.provider));
            }
        } else if let Some((k, v)) = key {
            c.exec_env.insert(k.to_string(), v);
            c.source = Some(format!("env {k}"));
        }
        Ok(c)
    }

    fn skills_dir(&self) -> Option<&'static str> {
        Some(".opencode/skills")
    }

    fn stage(&self, wd: &Path) -> std::io::Result<()> {
        let text =
            serde_json::to_string_pretty(&self.config_json()).map_err(std::io::Error::other)?;
        std::fs::write(wd.join("opencode.json"), text + "\n")?;
        self.assets
            .stage(wd, self.skills_dir(), None)
            .map_err(std::io::Error::other)
    }

    fn launch_script(&self) -> String {
        let model = format!("{}/{}", self.provider, self.model);
        format!(
            r#"#!/bin/bash
# atp launch script for OpenCode (rendered by atp; edits are overwritten)
set -u
PROMPT="$(cat {PROMPT_FILE})"
# OpenCode's data (sessions, a login) stays in the sandbox, outside the workdir.
export XDG_DATA_HOME="$HOME/.opencode-data"
mkdir -p "$XDG_DATA_HOME/opencode" && chmod 700 "$XDG_DATA_HOME" "$XDG_DATA_HOME/opencode"
if [ -f {CREDENTIALS_MOUNT}/{AUTH_FILE} ]; then
  # OpenCode rewrites its login (token refresh): a private 0600 copy, never the mounted file.
  cp {CREDENTIALS_MOUNT}/{AUTH_FILE} "$XDG_DATA_HOME/{AUTH_FILE}" && chmod 600 "$XDG_DATA_HOME/{AUTH_FILE}"
fi
exec opencode run --dir "$PWD" --format json --auto --title atp \
  --model {} \
  "$PROMPT" < /dev/null
"#,
            sq(&model)
        )
    }

    fn static_env(&self) -> BTreeMap<String, String> {
        [
            "OPENCODE_DISABLE_AUTOUPDATE",
            "OPENCODE_DISABLE_MODELS_FETCH",
            "OPENCODE_DISABLE_LSP_DOWNLOAD",
            "OPENCODE_DISABLE_DEFAULT_PLUGINS",
            "OPENCODE_DISABLE_SHARE",
            "OPENCODE_DISABLE_CLAUDE_CODE",
        ]
        .iter()
        .map(|k| (k.to_string(), "1".to_string()))
        .collect()
    }

    fn parser(&self) -> Box<dyn StreamParser> {
        Box::new(OpenCodeParser::default())
    }
}

/// Parser of `opencode run --format json`.
#[derive(Debug, Default)]
pub struct OpenCodeParser {
    session_id: Option<String>,
    usage: Usage,
    cost: f64,
    costs_seen: bool,
    steps: u64,
    tool_calls: u64,
    tool_errors: u64,
    last_text: Option<String>,
    last_reason: Option<String>,
    error: Option<String>,
}

fn n(v: &Value, p: &str) -> u64 {
    v.pointer(p).and_then(Value::as_u64).unwrap_or(0)
}

impl StreamParser for OpenCodeParser {
    fn line(&mut self, line: &str) -> Vec<ProgressEvent> {
        let Ok(v) = serde_json::from_str::<Value>(line.trim()) else {
            return Vec::new();
        };
        if self.session_id.is_none() {
            self.session_id = v
                .get("sessionID")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        let part = v.get("part").unwrap_or(&Value::Null);
        let mut events = Vec::new();
        match v.get("type").and_then(Value::as_str) {
            Some("step_start") => {
                self.steps += 1;
                events.push(ProgressEvent::Turn);
            }
            Some("text") => {
                if let Some(t) = part.get("text").and_then(Value::as_str) {
                    self.last_text = Some(t.to_string());
                }
            }
            Some("tool_use") => {
                self.tool_calls += 1;
                let tool = part.get("tool").and_then(Value::as_str).unwrap_or("?");
                events.push(ProgressEvent::ToolCall(tool.to_string()));
                if part.pointer("/state/status").and_then(Value::as_str) == Some("error") {
                    self.tool_errors += 1;
                }
            }
            Some("step_finish") => {
                let cached = n(part, "/tokens/cache/read");
                self.usage.input_tokens +=
                    n(part, "/tokens/input") + n(part, "/tokens/cache/write") + cached;
                self.usage.cached_input_tokens += cached;
                self.usage.output_tokens +=
                    n(part, "/tokens/output") + n(part, "/tokens/reasoning");
                if let Some(c) = part.get("cost").and_then(Value::as_f64) {
                    self.cost += c;
                    self.costs_seen = true;
                    events.push(ProgressEvent::Cost(self.cost));
                }
                self.last_reason = part
                    .get("reason")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                events.push(ProgressEvent::Usage(self.current()));
            }
            Some("error") => {
                let e = v.get("error").unwrap_or(&Value::Null);
                let name = e.get("name").and_then(Value::as_str).unwrap_or("error");
                let msg = e
                    .pointer("/data/message")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                self.error = Some(format!("{name}: {msg}"));
            }
            _ => {}
        }
        events
    }

    fn finish(&mut self) -> Parsed {
        let mut meta = BTreeMap::new();
        if let Some(s) = &self.session_id {
            meta.insert("session_id".to_string(), json!(s));
        }
        meta.insert("tool_errors".to_string(), json!(self.tool_errors));
        if let Some(e) = &self.error {
            meta.insert("last_error".to_string(), json!(e));
        }
        Parsed {
            usage: self.current(),
            reported_cost: self.costs_seen.then_some(self.cost),
            model: None,
            result_text: self.last_text.clone(),
            // OpenCode prints no final event: the last step ending on its own is the end.
            finished: self
                .last_reason
                .as_deref()
                .is_some_and(|r| r != "tool-calls"),
            is_error: self.error.is_some(),
            metadata: meta,
        }
    }
}

impl OpenCodeParser {
    fn current(&self) -> Usage {
        Usage {
            turns: Some(self.steps),
            tool_calls: Some(self.tool_calls),
            stop_reason: self.last_reason.clone(),
            ..self.usage.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{parse_all, summary, transcript};

    #[test]
    fn the_real_cli_transcript_of_a_solve() {
        // OpenCode 1.18.33 against atp-model-fake (Anthropic dialect): per step 1200/80 with
        // 3000 read + 500 written, then 1500/40 with 4000 read.
        let (ev, p) = parse_all(
            &mut OpenCodeParser::default(),
            &transcript("opencode/solve.jsonl"),
        );
        assert!(p.finished && !p.is_error);
        assert_eq!(p.usage.input_tokens, 1200 + 500 + 3000 + 1500 + 4000);
        assert_eq!(p.usage.cached_input_tokens, 7000);
        assert_eq!(p.usage.output_tokens, 120);
        assert!((p.reported_cost.expect("cost") - (0.012625 + 0.0105)).abs() < 1e-12);
        assert!(ev.contains(&ProgressEvent::ToolCall("bash".into())));
        insta::assert_json_snapshot!(summary(&ev, &p));
    }

    #[test]
    fn the_real_cli_transcript_of_a_rejected_key() {
        let text = transcript("opencode/auth_401.jsonl");
        let (_, p) = parse_all(&mut OpenCodeParser::default(), &text);
        assert!(!p.finished && p.is_error);
        assert!(atp_prover::authfail::rejected_in(&text).is_some());
        insta::assert_json_snapshot!(summary(&[], &p));
    }

    #[test]
    fn staging_snapshots() {
        let mut h = OpenCode {
            api_base: Some("http://127.0.0.1:9/v1".into()),
            ..Default::default()
        };
        insta::assert_snapshot!(h.launch_script());
        insta::assert_json_snapshot!("opencode_json_deepseek", h.config_json());
        h.set_model("anthropic/claude-opus-4-8", false);
        h.api_base = None;
        insta::assert_json_snapshot!("opencode_json_anthropic", h.config_json());
        h.set_model("grok-4.5", false);
        assert_eq!((h.provider.as_str(), h.model.as_str()), ("xai", "grok-4.5"));
    }

    #[test]
    fn the_login_entry_of_the_provider_is_copied_alone() {
        let d = tempfile::tempdir().expect("tmp");
        let home = d.path().join("home");
        std::fs::create_dir_all(home.join(".local/share/opencode")).expect("mk");
        std::fs::write(
            home.join(".local/share/opencode/auth.json"),
            r#"{"xai":{"type":"oauth","access":"acc-secret","refresh":"ref","expires":4102444800000},
               "anthropic":{"type":"api","key":"other-secret"}}"#,
        )
        .expect("w");
        let env = EnvSource::fixed([("HOME".to_string(), home.display().to_string())].into());
        let h = OpenCode {
            name: "grok".into(),
            provider: "xai".into(),
            model: "grok-4.5".into(),
            auth_mode: AuthMode::Login,
            ..Default::default()
        };
        let s = h.auth(&env);
        assert_eq!(s.kind, AuthKind::Oauth);
        assert_eq!(s.expires_at, Some(4_102_444_800));
        assert!(s.refreshable);
        let private = d.path().join("private");
        std::fs::create_dir(&private).expect("mk");
        let c = h.credentials(&env, &private, "/root").expect("creds");
        assert!(c.exec_env.is_empty());
        let copied = std::fs::read_to_string(private.join(AUTH_FILE)).expect("copied");
        assert!(copied.contains("acc-secret") && !copied.contains("other-secret"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(private.join(AUTH_FILE))
            .expect("md")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Without the login, the key variable is the fallback; without either, the remedy.
        let key = EnvSource::fixed([("XAI_API_KEY".to_string(), "k".to_string())].into());
        assert_eq!(h.auth(&key).source.as_deref(), Some("env XAI_API_KEY"));
        let none = EnvSource::fixed(Default::default());
        let s = h.auth(&none);
        assert!(s.state.blocks());
        assert!(s.remedy.unwrap_or_default().contains("XAI_API_KEY"));
    }
}
