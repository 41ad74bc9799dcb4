//! Mistral Vibe (`vibe -p … --agent … --output streaming`), as `vibe` (a Magistral agent) and
//! `leanstral` (Mistral's Lean model with Vibe's Lean system prompt).
//!
//! Staging: `VIBE_HOME` is the workdir's `.vibe/`: `config.toml` (tools approved, telemetry,
//! update checks, experiments and connectors off, the lean-lsp MCP server) and the agent
//! `.vibe/agents/<agent>.toml` (system prompt, model, provider with its `api_base` —
//! overridable by `--api-base` or `MISTRAL_BASE_URL` —, shell timeouts). Credential:
//! `MISTRAL_API_KEY` in the agent's environment only (the provider names the variable).
//!
//! Stream (`--output streaming`, Vibe 3.0.3): one JSON object per entry, `{id, sessionId,
//! turnId, type: "message" | "effect", role, content: [{type: "text", text}], detail{toolName},
//! state{status}}`. Usage: Vibe writes `export.json` (`usage{input_tokens (cached included),
//! cached_input_tokens, output_tokens}`, `cost_usd`, `outcome`, `steps`) into `--output-dir`,
//! which atp points at `.atp/vibe-out/`; older layouts kept token counts in the session
//! journal (`payload.result.result.usage`) or `meta.json` (`stats`), read as fallbacks. Vibe's
//! `cost_usd` only multiplies the prices written into its own model config, so atp prices the
//! tokens from its table instead. The session logs are moved to `OUT/logs/vibe-session/`.

use std::collections::BTreeMap;
use std::path::Path;

use atp_backend::layout::shell_quote as sq;
use atp_prover::{AuthKind, AuthStatus, EnvSource, ProgressEvent, Usage};
use serde_json::{json, Value};

use crate::assets::{Assets, LEAN_LSP};
use crate::harness::{
    Collected, CredentialError, Credentials, Harness, Parsed, StreamParser, PROMPT_FILE,
};
use crate::safe_fs;

pub const API_KEY_ENV: &str = "MISTRAL_API_KEY";
pub const BASE_URL_ENV: &str = "MISTRAL_BASE_URL";
pub const PUBLIC_BASE_URL: &str = "https://api.mistral.ai/v1";
/// Where Vibe writes `export.json` and a copy of its journal (relative to the workdir).
pub const OUTPUT_DIR: &str = ".atp/vibe-out";
/// Vibe's home inside the workdir.
pub const VIBE_HOME: &str = ".vibe";

/// Which agent profile atp stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// A general model (Magistral by default) with Vibe's CLI prompt.
    General,
    /// Leanstral with Vibe's Lean system prompt (as Vibe's built-in `lean` agent).
    Lean,
}

/// The Vibe harness.
#[derive(Debug, Clone)]
pub struct Vibe {
    /// The prover name (`vibe`, `leanstral`).
    pub name: String,
    pub profile: Profile,
    pub model: String,
    /// Vibe's `thinking` level (`off`, `low`, `medium`, `high`).
    pub effort: String,
    pub assets: Assets,
    /// The provider's base URL (with `/v1`).
    pub api_base: Option<String>,
    pub max_turns: Option<u32>,
    pub max_price: Option<f64>,
}

impl Vibe {
    /// `vibe`: Magistral Medium, thinking off (as open-atp's stand-in agent).
    pub fn general() -> Self {
        Vibe {
            name: "vibe".into(),
            profile: Profile::General,
            model: "magistral-medium-latest".into(),
            effort: "off".into(),
            assets: Assets::default(),
            api_base: None,
            max_turns: None,
            max_price: None,
        }
    }

    /// `leanstral`: Mistral's Lean model `labs-leanstral-1-5`, thinking high.
    pub fn leanstral() -> Self {
        Vibe {
            name: "leanstral".into(),
            profile: Profile::Lean,
            model: "labs-leanstral-1-5".into(),
            effort: "high".into(),
            ..Self::general()
        }
    }

    fn agent_name(&self) -> &'static str {
        match self.profile {
            Profile::General => "atp-lean",
            Profile::Lean => "atp-leanstral",
        }
    }

    /// The base URL: the override, else `MISTRAL_BASE_URL`, else Mistral's.
    pub fn resolve_api_base(&mut self, env: &EnvSource) {
        if self.api_base.is_none() {
            self.api_base = env.get(BASE_URL_ENV);
        }
    }

    /// `.vibe/config.toml`.
    pub fn config_toml(&self) -> String {
        format!(
            "# Mistral Vibe configuration for one atp run (rendered by atp; edits are overwritten)\n\
             bypass_tool_permissions = true\n\
             enable_telemetry = false\n\
             enable_update_checks = false\n\
             enable_auto_update = false\n\
             enable_notifications = false\n\
             enable_connectors = false\n\
             include_commit_signature = false\n\
             installed_agents = [\"lean\"]\n\
             \n\
             [session_logging]\n\
             enabled = true\n\
             generate_titles = false\n\
             \n\
             [experiments]\n\
             enable = false\n\
             \n\
             {}",
            LEAN_LSP.vibe_toml()
        )
    }

    /// `.vibe/agents/<agent>.toml`.
    pub fn agent_toml(&self) -> String {
        let base = self.api_base.as_deref().unwrap_or(PUBLIC_BASE_URL);
        let (prompt, temperature) = match self.profile {
            Profile::General => ("cli", 0.2),
            Profile::Lean => ("lean", 1.0),
        };
        let mut s = format!(
            "# atp's Vibe agent (rendered by atp; edits are overwritten)\n\
             display_name = \"atp {name}\"\n\
             description = \"Completes the sorries of a Lean project for atp\"\n\
             safety = \"yolo\"\n\
             bypass_tool_permissions = true\n\
             system_prompt_id = \"{prompt}\"\n\
             active_model = \"atp-model\"\n\
             \n\
             [[providers]]\n\
             name = \"atp-mistral\"\n\
             api_base = {base:?}\n\
             api_key_env_var = \"{API_KEY_ENV}\"\n\
             backend = \"mistral\"\n\
             \n\
             [[models]]\n\
             name = {model:?}\n\
             provider = \"atp-mistral\"\n\
             alias = \"atp-model\"\n\
             temperature = {temperature:.1}\n\
             thinking = {effort:?}\n",
            name = self.name,
            model = self.model,
            effort = self.effort,
        );
        s.push_str("\n[tools.bash]\ndefault_timeout = 1200\nmax_timeout_seconds = 1200\n");
        s
    }
}

impl Harness for Vibe {
    fn prover_name(&self) -> &str {
        &self.name
    }

    fn harness_name(&self) -> &'static str {
        "vibe"
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
        c.insert("agent".into(), json!(self.agent_name()));
        c.insert("max_turns".into(), json!(self.max_turns));
        c.insert("max_price".into(), json!(self.max_price));
        c.insert("skills".into(), json!(self.assets.skill_names()));
        c
    }

    fn auth(&self, env: &EnvSource) -> AuthStatus {
        match env.get(API_KEY_ENV) {
            Some(_) => AuthStatus::present(
                AuthKind::ApiKey,
                format!("env {API_KEY_ENV}"),
                None,
                false,
                "",
            ),
            None => AuthStatus::missing(
                AuthKind::ApiKey,
                "set MISTRAL_API_KEY (console.mistral.ai → API keys), in the environment or in .env",
            ),
        }
    }

    fn credentials(
        &self,
        env: &EnvSource,
        _private: &Path,
        _home: &str,
    ) -> Result<Credentials, CredentialError> {
        let mut c = Credentials::default();
        let key = env.get(API_KEY_ENV).ok_or_else(|| {
            CredentialError(format!("{}: no credential — set {API_KEY_ENV}", self.name))
        })?;
        c.exec_env.insert(API_KEY_ENV.into(), key);
        c.source = Some(format!("env {API_KEY_ENV}"));
        Ok(c)
    }

    fn skills_dir(&self) -> Option<&'static str> {
        Some(".vibe/skills")
    }

    fn stage(&self, wd: &Path) -> std::io::Result<()> {
        let home = wd.join(VIBE_HOME);
        std::fs::create_dir_all(home.join("agents"))?;
        std::fs::write(home.join("config.toml"), self.config_toml())?;
        std::fs::write(
            home.join("agents")
                .join(format!("{}.toml", self.agent_name())),
            self.agent_toml(),
        )?;
        self.assets
            .stage(wd, self.skills_dir(), None)
            .map_err(std::io::Error::other)
    }

    fn launch_script(&self) -> String {
        let mut args = vec![
            format!("--prompt-file {PROMPT_FILE}"),
            format!("--agent {}", self.agent_name()),
            "--output streaming".into(),
            format!("--output-dir \"$PWD/{OUTPUT_DIR}\""),
            "--workdir \"$PWD\"".into(),
            "--trust".into(),
        ];
        if let Some(n) = self.max_turns {
            args.push(format!("--max-turns {n}"));
        }
        if let Some(p) = self.max_price {
            args.push(format!("--max-price {}", sq(&p.to_string())));
        }
        format!(
            "#!/bin/bash\n\
             # atp launch script for Mistral Vibe (rendered by atp; edits are overwritten)\n\
             set -u\n\
             export VIBE_HOME=\"$PWD/{VIBE_HOME}\"\n\
             exec vibe {} < /dev/null\n",
            args.join(" \\\n  ")
        )
    }

    fn static_env(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    fn parser(&self) -> Box<dyn StreamParser> {
        Box::new(VibeParser::default())
    }

    fn collect(&self, wd: &Path, logs: &Path) -> std::io::Result<Collected> {
        let mut c = Collected::default();
        if let Some(export) = safe_fs::read_text(wd, Path::new(OUTPUT_DIR).join("export.json"))
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        {
            c.usage = export.get("usage").map(|u| Usage {
                input_tokens: num(u, "input_tokens"),
                cached_input_tokens: num(u, "cached_input_tokens"),
                output_tokens: num(u, "output_tokens"),
                turns: export.get("steps").and_then(Value::as_u64),
                tool_calls: None,
                stop_reason: export
                    .get("stop_reason")
                    .and_then(Value::as_str)
                    .or_else(|| export.get("outcome").and_then(Value::as_str))
                    .map(str::to_string),
            });
            for k in [
                "outcome",
                "stop_reason",
                "error",
                "session_id",
                "vibe_version",
                "cost_usd",
            ] {
                if let Some(v) = export.get(k).filter(|v| !v.is_null()) {
                    let key = if k == "cost_usd" { "vibe_cost_usd" } else { k };
                    c.metadata.insert(key.to_string(), v.clone());
                }
            }
        }
        if c.usage.is_none() {
            c.usage = journal_usage(wd).or_else(|| meta_usage(wd));
        }
        c.logs.extend(safe_fs::move_tree(
            wd,
            Path::new(VIBE_HOME).join("logs"),
            &logs.join("vibe-session"),
        )?);
        c.logs.extend(safe_fs::move_tree(
            wd,
            OUTPUT_DIR,
            &logs.join("vibe-export"),
        )?);
        Ok(c)
    }
}

fn num(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

/// Σ `payload.result.result.usage` of the `action_result` records of every session journal
/// (Vibe 3.0.3 without `--output-dir`).
fn journal_usage(wd: &Path) -> Option<Usage> {
    let root = Path::new(VIBE_HOME).join("logs/session/unified");
    let mut total = Usage::default();
    let mut seen = false;
    for f in safe_fs::files_under(wd, &root) {
        if !(f.extension().is_some_and(|e| e == "jsonl")
            && f.components().any(|c| c.as_os_str() == "journal"))
        {
            continue;
        }
        let Some(text) = safe_fs::read_text(wd, root.join(&f)) else {
            continue;
        };
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if v.get("type").and_then(Value::as_str) != Some("action_result") {
                continue;
            }
            if let Some(u) = v.pointer("/payload/result/result/usage") {
                total.input_tokens += num(u, "input_tokens");
                total.cached_input_tokens += num(u, "cached_input_tokens");
                total.output_tokens += num(u, "output_tokens");
                seen = true;
            }
        }
    }
    seen.then_some(total)
}

/// `stats` of the newest session `meta.json` (older Vibe releases).
fn meta_usage(wd: &Path) -> Option<Usage> {
    let root = Path::new(VIBE_HOME).join("logs/session");
    let mut metas: Vec<_> = safe_fs::files_under(wd, &root)
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "meta.json"))
        .collect();
    metas.sort();
    for f in metas.iter().rev() {
        let Some(v) = safe_fs::read_text(wd, root.join(f))
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        else {
            continue;
        };
        if let Some(s) = v.get("stats") {
            return Some(Usage {
                input_tokens: num(s, "session_prompt_tokens"),
                output_tokens: num(s, "session_completion_tokens"),
                ..Default::default()
            });
        }
    }
    None
}

/// Parser of `vibe --output streaming` (Vibe 3.0.3).
#[derive(Debug, Default)]
pub struct VibeParser {
    session_id: Option<String>,
    assistant_messages: std::collections::BTreeSet<String>,
    effects: std::collections::BTreeSet<String>,
    tool_errors: u64,
    last_text: Option<String>,
}

impl StreamParser for VibeParser {
    fn line(&mut self, line: &str) -> Vec<ProgressEvent> {
        let Ok(v) = serde_json::from_str::<Value>(line.trim()) else {
            return Vec::new();
        };
        if self.session_id.is_none() {
            self.session_id = v
                .get("sessionId")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        let id = v
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut events = Vec::new();
        match (
            v.get("type").and_then(Value::as_str),
            v.get("role").and_then(Value::as_str),
        ) {
            (Some("message"), Some("assistant")) => {
                if self.assistant_messages.insert(id) {
                    events.push(ProgressEvent::Turn);
                }
                let text: Vec<&str> = v
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                    .filter_map(|b| b.get("text").and_then(Value::as_str))
                    .collect();
                if !text.is_empty() {
                    self.last_text = Some(text.join(""));
                }
            }
            (Some("effect"), _) => {
                let tool = v
                    .pointer("/detail/toolName")
                    .or_else(|| v.get("title"))
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string();
                if self.effects.insert(id) {
                    events.push(ProgressEvent::ToolCall(tool));
                }
                let status = v.pointer("/state/status").and_then(Value::as_str);
                if matches!(status, Some("failed") | Some("error")) {
                    self.tool_errors += 1;
                }
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
        Parsed {
            usage: Usage {
                turns: Some(self.assistant_messages.len() as u64),
                tool_calls: Some(self.effects.len() as u64),
                ..Default::default()
            },
            result_text: self.last_text.clone(),
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
    fn the_real_cli_transcript_of_a_solve() {
        let (ev, p) = parse_all(&mut VibeParser::default(), &transcript("vibe/solve.jsonl"));
        assert_eq!(p.usage.tool_calls, Some(1));
        assert_eq!(
            p.result_text.as_deref(),
            Some("Replaced the sorry with rfl; the proof is complete.")
        );
        assert!(ev.contains(&ProgressEvent::ToolCall("file_system.bash".into())));
        insta::assert_json_snapshot!(summary(&ev, &p));
    }

    #[test]
    fn the_real_cli_rejected_key_is_on_stderr() {
        let (_, p) = parse_all(
            &mut VibeParser::default(),
            &transcript("vibe/auth_401.jsonl"),
        );
        assert_eq!(p.usage.turns, Some(0));
        assert!(
            atp_prover::authfail::rejected_in(&transcript("vibe/auth_401.stderr.txt")).is_some()
        );
    }

    #[test]
    fn staging_snapshots() {
        let mut v = Vibe::general();
        v.max_turns = Some(40);
        insta::assert_snapshot!("vibe_launch", v.launch_script());
        insta::assert_snapshot!("vibe_config", v.config_toml());
        insta::assert_snapshot!("vibe_agent", v.agent_toml());
        let mut l = Vibe::leanstral();
        l.api_base = Some("http://127.0.0.1:9/v1".into());
        insta::assert_snapshot!("leanstral_agent", l.agent_toml());
        // Both files are TOML.
        for t in [v.config_toml(), v.agent_toml(), l.agent_toml()] {
            toml::from_str::<toml::Value>(&t).expect("valid TOML");
        }
    }

    #[test]
    fn the_real_cli_export_of_a_solve() {
        let d = tempfile::tempdir().expect("tmp");
        let wd = d.path().join("wd");
        std::fs::create_dir_all(wd.join(OUTPUT_DIR)).expect("mk");
        std::fs::write(
            wd.join(OUTPUT_DIR).join("export.json"),
            transcript("vibe/solve.export.json"),
        )
        .expect("w");
        let c = Vibe::general()
            .collect(&wd, &d.path().join("logs"))
            .expect("collect");
        let u = c.usage.expect("usage");
        // 1200+1500 uncached, 3000+4000 read, 500 written (counted as input by Mistral).
        assert_eq!(
            (u.input_tokens, u.cached_input_tokens, u.output_tokens),
            (10200, 7000, 120)
        );
        assert_eq!(u.turns, Some(2));
        assert_eq!(c.metadata["outcome"], json!("finished"));
        assert_eq!(c.metadata["vibe_version"], json!("3.0.3"));
    }

    #[test]
    fn usage_comes_from_the_export_then_the_journal_and_logs_move() {
        let d = tempfile::tempdir().expect("tmp");
        let wd = d.path().join("wd");
        let logs = d.path().join("logs");
        let j = wd.join(".vibe/logs/session/unified/s1/journal");
        std::fs::create_dir_all(&j).expect("mk");
        std::fs::write(
            j.join("0000000000000001.jsonl"),
            concat!(
                r#"{"type":"action_result","payload":{"result":{"result":{"usage":{"input_tokens":4700,"cached_input_tokens":3000,"output_tokens":80}}}}}"#,
                "\n",
                r#"{"type":"core_input","payload":{"input":{"command":{"result":{"usage":{"input_tokens":4700}}}}}}"#,
                "\n",
                r#"{"type":"action_result","payload":{"result":{"result":{"usage":{"input_tokens":5500,"cached_input_tokens":4000,"output_tokens":40}}}}}"#,
                "\n"
            ),
        )
        .expect("w");
        let v = Vibe::general();
        let c = v.collect(&wd, &logs).expect("collect");
        let u = c.usage.expect("journal usage");
        assert_eq!(
            (u.input_tokens, u.cached_input_tokens, u.output_tokens),
            (10200, 7000, 120)
        );
        assert!(!wd.join(".vibe/logs").exists());
        assert!(logs
            .join("vibe-session/session/unified/s1/journal/0000000000000001.jsonl")
            .is_file());
        std::fs::create_dir_all(wd.join(OUTPUT_DIR)).expect("mk");
        std::fs::write(
            wd.join(OUTPUT_DIR).join("export.json"),
            r#"{"outcome":"finished","stop_reason":null,"usage":{"input_tokens":10,"output_tokens":2,"cached_input_tokens":4},"cost_usd":0.5,"steps":2}"#,
        )
        .expect("w");
        let c = v.collect(&wd, &logs).expect("collect");
        let u = c.usage.expect("export usage");
        assert_eq!(
            (u.input_tokens, u.cached_input_tokens, u.output_tokens),
            (10, 4, 2)
        );
        assert_eq!(u.stop_reason.as_deref(), Some("finished"));
        assert_eq!(c.reported_cost, None, "Vibe's cost is not atp's");
        assert_eq!(c.metadata["vibe_cost_usd"], json!(0.5));
    }
}
