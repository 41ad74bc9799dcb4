//! Kimi Code (`kimi -p … --output-format stream-json`).
//!
//! **Not run here:** Kimi Code's CLI is distributed from Moonshot's own site, not from npm or
//! PyPI (the PyPI `kimi-cli`/`kimi-code` packages are the archived legacy CLI), so the agents
//! test image cannot carry it. This harness follows the reference's description of the CLI;
//! its parser and usage reader are tested on HAND-WRITTEN transcripts in that documented
//! format (`fixtures/transcripts/kimi/`), not on recordings.
//!
//! Credentials: Kimi Code's login (`$KIMI_CODE_HOME`, default `~/.kimi-code`: `credentials/`
//! (required), `config.toml`, `device_id`) is copied alone into the run's private directory
//! (0600) and mounted read-only; the launch script *copies* it into the sandbox-local
//! `KIMI_CODE_HOME` (the CLI rewrites it; never mounted there, never in the workdir) and deletes
//! the copies when the CLI exits. `--api-base` (or `KIMI_BASE_URL`) is passed as
//! `KIMI_BASE_URL`.
//!
//! Usage: the newest session's `agents/main/wire.jsonl`: `usage.record` events (`inputOther +
//! inputCacheRead + inputCacheCreation` in, `inputCacheRead` cached, `output` out) and the
//! `finishReason` of `step.end`; the launch script copies the sessions into
//! `.atp/kimi-sessions/`, which atp moves to `OUT/logs/kimi-session/`.

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
pub const BASE_URL_ENV: &str = "KIMI_BASE_URL";
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

/// The credential files of the login (`credentials/*`, regular files only).
fn credential_files(home: &Path) -> Vec<PathBuf> {
    safe_fs::list(home, "credentials")
        .into_iter()
        .filter(|e| e.is_file)
        .map(|e| home.join("credentials").join(e.name))
        .collect()
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
        let mut c = BTreeMap::new();
        c.insert("harness".into(), json!(self.harness_name()));
        c.insert("model".into(), json!(self.model));
        c.insert("effort".into(), json!(self.effort));
        c.insert("skills".into(), json!(self.assets.skill_names()));
        c.insert("api_base_overridden".into(), json!(self.api_base.is_some()));
        c
    }

    fn auth(&self, env: &EnvSource) -> AuthStatus {
        let remedy = "run `kimi login` (writes ~/.kimi-code/credentials/) or set KIMI_CODE_HOME";
        let Some(home) = kimi_home(env) else {
            return AuthStatus::missing(AuthKind::Oauth, remedy);
        };
        let files = credential_files(&home);
        if files.is_empty() {
            return AuthStatus::missing(AuthKind::Oauth, remedy);
        }
        // The main login's expiry (`expires_at`, seconds) and refresh token.
        let main = files
            .iter()
            .find(|f| f.file_name().is_some_and(|n| n == "kimi-code.json"))
            .unwrap_or(&files[0]);
        let v: Value = std::fs::read(main)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        let expires = v
            .get("expires_at")
            .and_then(|x| x.as_i64().or_else(|| x.as_f64().map(|f| f as i64)));
        let refreshable = v
            .get("refresh_token")
            .and_then(Value::as_str)
            .is_some_and(|r| !r.is_empty());
        AuthStatus::present(
            AuthKind::Oauth,
            format!("file {}", home.join("credentials").display()),
            expires,
            refreshable,
            "run `kimi login` again",
        )
    }

    fn credentials(
        &self,
        env: &EnvSource,
        private: &Path,
        _home: &str,
    ) -> Result<Credentials, CredentialError> {
        let mut c = Credentials::default();
        let home = kimi_home(env)
            .ok_or_else(|| CredentialError("kimi: no credential — run `kimi login`".into()))?;
        let files = credential_files(&home);
        if files.is_empty() {
            return Err(CredentialError(format!(
                "kimi: no credential in {} — run `kimi login`",
                home.join("credentials").display()
            )));
        }
        for f in &files {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            c.copy_file(f, private, &format!("kimi/credentials/{name}"))?;
        }
        for name in LOGIN_FILES {
            let f = home.join(name);
            if safe_fs::read(&home, name, safe_fs::MAX_FILE_BYTES).is_some() {
                c.copy_file(&f, private, &format!("kimi/{name}"))?;
            }
        }
        c.source = Some(format!("file {}", home.join("credentials").display()));
        if let Some(base) = self.api_base.clone().or_else(|| env.get(BASE_URL_ENV)) {
            c.exec_env.insert(BASE_URL_ENV.into(), base);
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
export KIMI_DISABLE_CRON=1 KIMI_CODE_NO_AUTO_UPDATE=1
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

/// Parser of `kimi --output-format stream-json`: one message per line, `{role, content,
/// tool_calls[{id, function{name, arguments}}], tool_call_id}`.
#[derive(Debug, Default)]
pub struct KimiParser {
    turns: u64,
    tool_calls: u64,
    last_text: Option<String>,
    error: Option<String>,
}

impl StreamParser for KimiParser {
    fn line(&mut self, line: &str) -> Vec<ProgressEvent> {
        let Ok(v) = serde_json::from_str::<Value>(line.trim()) else {
            return Vec::new();
        };
        let mut events = Vec::new();
        match v.get("role").and_then(Value::as_str) {
            Some("assistant") => {
                self.turns += 1;
                events.push(ProgressEvent::Turn);
                let text = match v.get("content") {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Array(parts)) => {
                        let t: Vec<&str> = parts
                            .iter()
                            .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                            .filter_map(|p| p.get("text").and_then(Value::as_str))
                            .collect();
                        (!t.is_empty()).then(|| t.join(""))
                    }
                    _ => None,
                };
                if let Some(t) = text.filter(|t| !t.is_empty()) {
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
            _ => {
                if v.get("type").and_then(Value::as_str) == Some("error") {
                    self.error = v.get("message").and_then(Value::as_str).map(str::to_string);
                }
            }
        }
        events
    }

    fn finish(&mut self) -> Parsed {
        let mut meta = BTreeMap::new();
        if let Some(e) = &self.error {
            meta.insert("last_error".to_string(), json!(e));
        }
        Parsed {
            usage: Usage {
                turns: Some(self.turns),
                tool_calls: Some(self.tool_calls),
                ..Default::default()
            },
            result_text: self.last_text.clone(),
            is_error: self.error.is_some(),
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
    fn hand_written_stream_in_the_documented_format() {
        let (ev, p) = parse_all(
            &mut KimiParser::default(),
            &transcript("kimi/solve.hand-written.jsonl"),
        );
        assert_eq!(p.usage.tool_calls, Some(1));
        assert!(ev.contains(&ProgressEvent::ToolCall("Shell".into())));
        insta::assert_json_snapshot!(summary(&ev, &p));
    }

    #[test]
    fn hand_written_wire_log_usage() {
        let u = wire_usage(&transcript("kimi/wire.hand-written.jsonl"));
        assert_eq!(u.input_tokens, 1200 + 3000 + 500 + 1500 + 4000);
        assert_eq!(u.cached_input_tokens, 7000);
        assert_eq!(u.output_tokens, 120);
        assert_eq!(u.stop_reason.as_deref(), Some("stop"));
    }

    #[test]
    fn launch_script_snapshot() {
        insta::assert_snapshot!(Kimi::default().launch_script());
    }

    #[test]
    fn the_login_is_copied_alone_0600_and_the_sessions_are_collected() {
        let d = tempfile::tempdir().expect("tmp");
        let home = d.path().join("kimi-home");
        std::fs::create_dir_all(home.join("credentials")).expect("mk");
        std::fs::create_dir_all(home.join("sessions/x")).expect("mk");
        std::fs::write(
            home.join("credentials/kimi-code.json"),
            r#"{"access_token":"acc-secret","refresh_token":"r","expires_at":4102444800}"#,
        )
        .expect("w");
        std::fs::write(home.join("device_id"), "dev").expect("w");
        std::fs::write(home.join("sessions/x/history"), "private").expect("w");
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
        std::fs::write(
            w.join("wire.jsonl"),
            transcript("kimi/wire.hand-written.jsonl"),
        )
        .expect("w");
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
}
