//! Claude Code (`claude -p … --output-format stream-json`).
//!
//! Credentials: `CLAUDE_CODE_OAUTH_TOKEN` (a subscription token from `claude setup-token`) or
//! else `ANTHROPIC_API_KEY` (API billing); `ANTHROPIC_BASE_URL` (or `--api-base`) is forwarded
//! for gateways. Values travel only in the agent command's environment.
//!
//! Stream (one JSON object per line): `system`/`init` (session, model, MCP servers),
//! `assistant` messages (text, `tool_use`), `user` messages (`tool_result`), and a final
//! `result` with `total_cost_usd`, `usage`, `modelUsage` (per model, forked subagents
//! included), `num_turns`, `stop_reason`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use atp_prover::{AuthKind, AuthStatus, EnvSource, ProgressEvent, Usage};
use serde_json::{json, Value};

use crate::assets::{Assets, LEAN_LSP};
use crate::harness::{CredentialError, Credentials, Harness, Parsed, StreamParser};
use atp_backend::layout::shell_quote as sq;

/// The subscription token variable.
pub const OAUTH_ENV: &str = "CLAUDE_CODE_OAUTH_TOKEN";
/// The API key variable.
pub const API_KEY_ENV: &str = "ANTHROPIC_API_KEY";
/// The base URL variable (gateways, tests).
pub const BASE_URL_ENV: &str = "ANTHROPIC_BASE_URL";
/// Claude Code's own tuning variables, passed through from the host when set (not secrets).
pub const TUNING_ENV: &[&str] = &[
    "CLAUDE_CODE_MAX_RETRIES",
    "API_TIMEOUT_MS",
    "CLAUDE_CODE_MAX_OUTPUT_TOKENS",
    "MAX_THINKING_TOKENS",
];
/// Set to a session id to resume that conversation instead of starting one.
pub const RESUME_ENV: &str = "ATP_CLAUDE_RESUME";
/// Default model.
pub const DEFAULT_MODEL: &str = "claude-opus-4-8";
/// Default effort.
pub const DEFAULT_EFFORT: &str = "high";

/// The Claude Code harness.
#[derive(Debug, Clone)]
pub struct ClaudeCode {
    pub model: String,
    pub effort: String,
    pub assets: Assets,
    /// Overrides `ANTHROPIC_BASE_URL`.
    pub api_base: Option<String>,
    /// Extra `--max-turns`, when set.
    pub max_turns: Option<u32>,
}

impl Default for ClaudeCode {
    fn default() -> Self {
        ClaudeCode {
            model: DEFAULT_MODEL.into(),
            effort: DEFAULT_EFFORT.into(),
            assets: Assets::default(),
            api_base: None,
            max_turns: None,
        }
    }
}

impl Harness for ClaudeCode {
    fn prover_name(&self) -> &str {
        "claude"
    }

    fn harness_name(&self) -> &'static str {
        "claude_code"
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
        c.insert(
            "skills".into(),
            json!(self
                .assets
                .skills
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()),
        );
        c.insert("plugins".into(), json!(self.assets.plugin_names()));
        c.insert("max_turns".into(), json!(self.max_turns));
        c
    }

    fn auth(&self, env: &EnvSource) -> AuthStatus {
        if let Some(token) = env.get(OAUTH_ENV) {
            return AuthStatus::present(
                AuthKind::Oauth,
                format!("env {OAUTH_ENV}"),
                atp_prover::jwt_expiry(&token),
                false,
                "run `claude setup-token` and export CLAUDE_CODE_OAUTH_TOKEN again",
            );
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
            "set CLAUDE_CODE_OAUTH_TOKEN (run `claude setup-token`) or ANTHROPIC_API_KEY, in the environment or in .env",
        )
    }

    fn credentials(
        &self,
        env: &EnvSource,
        _private: &Path,
        _home: &str,
    ) -> Result<Credentials, CredentialError> {
        let mut c = Credentials::default();
        if let Some(token) = env.get(OAUTH_ENV) {
            c.exec_env.insert(OAUTH_ENV.into(), token);
            c.source = Some(format!("env {OAUTH_ENV}"));
        } else if let Some(key) = env.get(API_KEY_ENV) {
            c.exec_env.insert(API_KEY_ENV.into(), key);
            c.source = Some(format!("env {API_KEY_ENV}"));
        } else {
            return Err(CredentialError(format!(
                "claude: no credential — set {OAUTH_ENV} (run `claude setup-token`) or {API_KEY_ENV}"
            )));
        }
        if let Some(base) = self.api_base.clone().or_else(|| env.get(BASE_URL_ENV)) {
            c.exec_env.insert(BASE_URL_ENV.into(), base);
        }
        for k in TUNING_ENV {
            if let Some(v) = env.get(k) {
                c.exec_env.insert(k.to_string(), v);
            }
        }
        Ok(c)
    }

    fn skills_dir(&self) -> Option<&'static str> {
        Some(".claude/skills")
    }

    fn stage(&self, wd: &Path) -> std::io::Result<()> {
        let mcp =
            serde_json::to_string_pretty(&LEAN_LSP.claude_json()).map_err(std::io::Error::other)?;
        std::fs::write(wd.join(".mcp.json"), mcp + "\n")?;
        self.assets
            .stage(wd, self.skills_dir(), Some(".plugins"))
            .map_err(std::io::Error::other)
    }

    fn launch_script(&self) -> String {
        let mut args = vec![
            "-p \"$PROMPT\"".to_string(),
            "--output-format stream-json".into(),
            "--verbose".into(),
            "--permission-mode bypassPermissions".into(),
            "--mcp-config .mcp.json".into(),
            "--strict-mcp-config".into(),
            format!("--model {}", sq(&self.model)),
            format!("--effort {}", sq(&self.effort)),
        ];
        if let Some(n) = self.max_turns {
            args.push(format!("--max-turns {n}"));
        }
        for p in self.assets.plugin_names() {
            args.push(format!("--plugin-dir {}", sq(&format!(".plugins/{p}"))));
        }
        format!(
            "#!/bin/bash\n\
             # atp launch script for Claude Code (rendered by atp; edits are overwritten)\n\
             set -u\n\
             PROMPT=\"$(cat {})\"\n\
             # {RESUME_ENV}: continue that conversation (Numina's rounds).\n\
             exec claude {} ${{{RESUME_ENV}:+--resume \"${RESUME_ENV}\"}} < /dev/null\n",
            crate::harness::PROMPT_FILE,
            args.join(" \\\n  ")
        )
    }

    fn static_env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        // Claude Code refuses bypassPermissions as root unless it is told it is sandboxed.
        env.insert("IS_SANDBOX".into(), "1".into());
        // No telemetry, error reporting or update checks from inside the sandbox.
        env.insert(
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(),
            "1".into(),
        );
        env.insert("DISABLE_AUTOUPDATER".into(), "1".into());
        if !self.assets.plugins.is_empty() {
            env.insert("CLAUDE_CODE_FORK_SUBAGENT".into(), "1".into());
        }
        env
    }

    fn transcript(&self, stdout: &str) -> Option<atp_prover::Transcript> {
        Some(transcript(stdout))
    }

    fn parser(&self) -> Box<dyn StreamParser> {
        Box::new(ClaudeParser::default())
    }

    fn version_command(&self) -> Option<String> {
        Some("claude --version".into())
    }
}

/// Parser of Claude Code's `stream-json` output.
#[derive(Debug, Default)]
pub struct ClaudeParser {
    session_id: Option<String>,
    model: Option<String>,
    mcp: BTreeMap<String, String>,
    messages: BTreeSet<String>,
    running: Usage,
    tool_calls: u64,
    tool_errors: u64,
    last_text: Option<String>,
    result: Option<Value>,
}

/// Claude Code's `stream-json` output as a conversation: `system` init, `assistant` text and
/// `tool_use` blocks, `user` `tool_result` blocks, the final `result`. Lines that are not JSON
/// (or not these events) are skipped.
pub fn transcript(stdout: &str) -> atp_prover::Transcript {
    use atp_prover::EntryKind;
    let mut t = atp_prover::Transcript::new("claude-code stream-json");
    let text_of = |v: &Value| -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    };
    for line in stdout.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line.trim()) else {
            continue;
        };
        let blocks = |v: &Value| -> Vec<Value> {
            v.get("message")
                .and_then(|m| m.get("content"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        match v.get("type").and_then(Value::as_str) {
            Some("system") if v.get("subtype").and_then(Value::as_str) == Some("init") => {
                let model = v.get("model").and_then(Value::as_str).unwrap_or("?");
                let servers: Vec<String> = v
                    .get("mcp_servers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|s| {
                        format!(
                            "{} ({})",
                            s.get("name").and_then(Value::as_str).unwrap_or("?"),
                            s.get("status").and_then(Value::as_str).unwrap_or("?")
                        )
                    })
                    .collect();
                let mut text = format!("session started · model {model}");
                if !servers.is_empty() {
                    text.push_str(&format!(" · MCP: {}", servers.join(", ")));
                }
                t.push(EntryKind::System, text, None, false);
            }
            Some("assistant") => {
                for b in blocks(&v) {
                    match b.get("type").and_then(Value::as_str) {
                        Some("text") => {
                            let text = b.get("text").and_then(Value::as_str).unwrap_or("");
                            if !text.trim().is_empty() {
                                t.push(EntryKind::Assistant, text, None, false);
                            }
                        }
                        Some("tool_use") => {
                            let name = b.get("name").and_then(Value::as_str).unwrap_or("?");
                            let input = b.get("input").cloned().unwrap_or(Value::Null);
                            let text = match input.get("command").and_then(Value::as_str) {
                                Some(cmd) if name == "Bash" => cmd.to_string(),
                                _ => input.to_string(),
                            };
                            t.push(EntryKind::ToolCall, text, Some(name.to_string()), false);
                        }
                        _ => {}
                    }
                }
            }
            Some("user") => {
                for b in blocks(&v) {
                    if b.get("type").and_then(Value::as_str) == Some("tool_result") {
                        let is_error = b.get("is_error").and_then(Value::as_bool) == Some(true);
                        let text = text_of(b.get("content").unwrap_or(&Value::Null));
                        t.push(EntryKind::ToolResult, text, None, is_error);
                    }
                }
            }
            Some("result") => {
                let sub = v.get("subtype").and_then(Value::as_str).unwrap_or("?");
                let mut text = format!("result: {sub}");
                if let Some(n) = v.get("num_turns").and_then(Value::as_u64) {
                    text.push_str(&format!(" · {n} turns"));
                }
                if let Some(c) = v.get("total_cost_usd").and_then(Value::as_f64) {
                    text.push_str(&format!(" · ${c:.4} reported"));
                }
                if let Some(r) = v.get("result").and_then(Value::as_str) {
                    if !r.trim().is_empty() {
                        text.push_str(&format!("\n{r}"));
                    }
                }
                let is_error = v.get("is_error").and_then(Value::as_bool) == Some(true);
                t.push(EntryKind::Final, text, None, is_error);
            }
            _ => {}
        }
    }
    t
}

fn u(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

impl StreamParser for ClaudeParser {
    fn line(&mut self, line: &str) -> Vec<ProgressEvent> {
        let Ok(v) = serde_json::from_str::<Value>(line.trim()) else {
            return Vec::new();
        };
        let mut events = Vec::new();
        match v.get("type").and_then(Value::as_str) {
            Some("system") if v.get("subtype").and_then(Value::as_str) == Some("init") => {
                self.session_id = v
                    .get("session_id")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                self.model = v.get("model").and_then(Value::as_str).map(str::to_string);
                for s in v
                    .get("mcp_servers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let name = s
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_string();
                    let status = s
                        .get("status")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_string();
                    if name == LEAN_LSP.name && status != "connected" {
                        events.push(ProgressEvent::Note(format!(
                            "the {name} MCP server did not start ({status}); the agent works without Lean's language server"
                        )));
                    }
                    self.mcp.insert(name, status);
                }
            }
            Some("assistant") => {
                let msg = v.get("message").unwrap_or(&Value::Null);
                let id = msg.get("id").and_then(Value::as_str).map(str::to_string);
                let new_message = match &id {
                    Some(id) => self.messages.insert(id.clone()),
                    None => true,
                };
                if new_message {
                    events.push(ProgressEvent::Turn);
                    if let Some(usage) = msg.get("usage") {
                        let cached = u(usage, "cache_read_input_tokens");
                        self.running.input_tokens += u(usage, "input_tokens")
                            + u(usage, "cache_creation_input_tokens")
                            + cached;
                        self.running.cached_input_tokens += cached;
                        self.running.output_tokens += u(usage, "output_tokens");
                        events.push(ProgressEvent::Usage(self.current_usage()));
                    }
                }
                for block in msg
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    match block.get("type").and_then(Value::as_str) {
                        Some("tool_use") => {
                            self.tool_calls += 1;
                            let name = block.get("name").and_then(Value::as_str).unwrap_or("?");
                            events.push(ProgressEvent::ToolCall(name.to_string()));
                        }
                        Some("text") => {
                            if let Some(t) = block.get("text").and_then(Value::as_str) {
                                self.last_text = Some(t.to_string());
                            }
                        }
                        _ => {}
                    }
                }
            }
            Some("user") => {
                let msg = v.get("message").unwrap_or(&Value::Null);
                for block in msg
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if block.get("type").and_then(Value::as_str) == Some("tool_result")
                        && block.get("is_error").and_then(Value::as_bool) == Some(true)
                    {
                        self.tool_errors += 1;
                    }
                }
            }
            Some("result") => {
                if let Some(c) = v.get("total_cost_usd").and_then(Value::as_f64) {
                    events.push(ProgressEvent::Cost(c));
                }
                self.result = Some(v);
                events.push(ProgressEvent::Usage(self.final_usage()));
            }
            _ => {}
        }
        events
    }

    fn finish(&mut self) -> Parsed {
        let mut p = Parsed {
            usage: self.final_usage(),
            model: self.model.clone(),
            result_text: self.last_text.clone(),
            ..Default::default()
        };
        let mut meta = BTreeMap::new();
        if let Some(s) = &self.session_id {
            meta.insert("session_id".to_string(), json!(s));
        }
        if !self.mcp.is_empty() {
            meta.insert("mcp_servers".to_string(), json!(self.mcp));
        }
        meta.insert("tool_errors".to_string(), json!(self.tool_errors));
        if let Some(r) = &self.result {
            p.finished = true;
            p.is_error = r.get("is_error").and_then(Value::as_bool).unwrap_or(false);
            p.reported_cost =
                model_usage_cost(r).or_else(|| r.get("total_cost_usd").and_then(Value::as_f64));
            if let Some(t) = r.get("result").and_then(Value::as_str) {
                p.result_text = Some(t.to_string());
            }
            for k in ["subtype", "terminal_reason"] {
                if let Some(x) = r.get(k) {
                    meta.insert(k.to_string(), x.clone());
                }
            }
            if let Some(mu) = r.get("modelUsage").and_then(Value::as_object) {
                let models: Vec<&String> = mu.keys().collect();
                meta.insert("models_used".to_string(), json!(models));
            }
        }
        p.metadata = meta;
        p
    }
}

impl ClaudeParser {
    fn current_usage(&self) -> Usage {
        Usage {
            turns: Some(self.messages.len() as u64),
            tool_calls: Some(self.tool_calls),
            ..self.running.clone()
        }
    }

    /// The final usage: `modelUsage` summed over models when present (it covers forked
    /// subagents and side calls), else the `result`'s `usage`, else the running tally of the
    /// assistant messages seen (a killed run).
    fn final_usage(&self) -> Usage {
        let mut usage = self.current_usage();
        let Some(r) = &self.result else {
            usage.stop_reason = None;
            return usage;
        };
        if let Some(mu) = r.get("modelUsage").and_then(Value::as_object) {
            let (mut i, mut c, mut o) = (0, 0, 0);
            for m in mu.values() {
                let cached = u(m, "cacheReadInputTokens");
                i += u(m, "inputTokens") + u(m, "cacheCreationInputTokens") + cached;
                c += cached;
                o += u(m, "outputTokens");
            }
            usage.input_tokens = i;
            usage.cached_input_tokens = c;
            usage.output_tokens = o;
        } else if let Some(ru) = r.get("usage") {
            let cached = u(ru, "cache_read_input_tokens");
            usage.input_tokens =
                u(ru, "input_tokens") + u(ru, "cache_creation_input_tokens") + cached;
            usage.cached_input_tokens = cached;
            usage.output_tokens = u(ru, "output_tokens");
        }
        if let Some(n) = r.get("num_turns").and_then(Value::as_u64) {
            usage.turns = Some(n);
        }
        usage.stop_reason = r
            .get("stop_reason")
            .and_then(Value::as_str)
            .or_else(|| r.get("subtype").and_then(Value::as_str))
            .map(str::to_string);
        usage
    }
}

/// Σ `costUSD` over `modelUsage`, when present.
fn model_usage_cost(r: &Value) -> Option<f64> {
    let mu = r.get("modelUsage")?.as_object()?;
    let costs: Vec<f64> = mu
        .values()
        .filter_map(|m| m.get("costUSD")?.as_f64())
        .collect();
    (!costs.is_empty()).then(|| costs.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../tests/data/claude_code.sample.jsonl");

    fn parse(text: &str) -> (Vec<ProgressEvent>, Parsed) {
        let mut p = ClaudeParser::default();
        let mut ev = Vec::new();
        for l in text.lines() {
            ev.extend(p.line(l));
        }
        (ev, p.finish())
    }

    #[test]
    fn model_usage_sums_input_cache_creation_and_reads() {
        let (ev, p) = parse(SAMPLE);
        assert!(p.finished && !p.is_error);
        assert_eq!(p.usage.input_tokens, 18432 + 512 + 12000);
        assert_eq!(p.usage.cached_input_tokens, 12000);
        assert_eq!(p.usage.output_tokens, 2096);
        assert_eq!(p.usage.turns, Some(5));
        assert_eq!(p.usage.tool_calls, Some(1));
        assert_eq!(p.usage.stop_reason.as_deref(), Some("end_turn"));
        assert_eq!(p.reported_cost, Some(0.4231));
        assert_eq!(p.model.as_deref(), Some("claude-opus-4-8"));
        assert_eq!(p.metadata["session_id"], json!("3f1c9a2e-sample"));
        assert!(ev.contains(&ProgressEvent::ToolCall(
            "mcp__lean-lsp__lean_diagnostic_messages".into()
        )));
    }

    #[test]
    fn a_killed_run_keeps_the_running_tally_and_garbage_is_skipped() {
        let text = concat!(
            "not json\n",
            "{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":5,\"output_tokens\":3},\"content\":[{\"type\":\"tool_use\",\"name\":\"Bash\",\"input\":{}}]}}\n",
            "{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"usage\":{\"input_tokens\":10,\"output_tokens\":3},\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}}\n",
            "{\"type\":\"assistant\",\"mess",
        );
        let (_, p) = parse(text);
        assert!(!p.finished);
        assert_eq!(p.usage.input_tokens, 15);
        assert_eq!(p.usage.cached_input_tokens, 5);
        assert_eq!(p.usage.output_tokens, 3);
        assert_eq!(p.usage.turns, Some(1));
        assert_eq!(p.reported_cost, None);
    }

    fn transcript(name: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/transcripts/claude_code")
            .join(name);
        std::fs::read_to_string(&p).expect("recorded transcript")
    }

    #[test]
    fn the_real_cli_transcript_of_a_solve() {
        // Recorded from Claude Code 2.1.197 against atp-model-fake (fixtures/transcripts):
        // 1200+1500+100 uncached, 3000+4000 read, 500 written, 80+40+5 out over all models.
        let (ev, p) = parse(&transcript("solve.jsonl"));
        assert!(p.finished && !p.is_error);
        assert_eq!(p.usage.input_tokens, 2800 + 7000 + 500);
        assert_eq!(p.usage.cached_input_tokens, 7000);
        assert_eq!(p.usage.output_tokens, 125);
        assert_eq!(p.usage.turns, Some(2));
        assert_eq!(p.usage.tool_calls, Some(1));
        assert!(p.reported_cost.is_some_and(|c| c > 0.0));
        assert!(ev.contains(&ProgressEvent::ToolCall("Bash".into())));
        assert_eq!(
            p.result_text.as_deref(),
            Some("Replaced the sorry with rfl; the proof is complete.")
        );
    }

    #[test]
    fn the_real_cli_transcript_reads_as_a_conversation() {
        use atp_prover::EntryKind;
        let t = super::transcript(&transcript("solve.jsonl"));
        let kinds: Vec<EntryKind> = t.entries.iter().map(|e| e.kind).collect();
        assert_eq!(kinds.first(), Some(&EntryKind::System), "{kinds:?}");
        assert!(kinds.contains(&EntryKind::ToolCall), "{kinds:?}");
        assert!(kinds.contains(&EntryKind::ToolResult), "{kinds:?}");
        assert_eq!(kinds.last(), Some(&EntryKind::Final), "{kinds:?}");
        let call = t
            .entries
            .iter()
            .find(|e| e.kind == EntryKind::ToolCall)
            .expect("a call");
        assert_eq!(call.tool.as_deref(), Some("Bash"));
        assert!(call.text.contains("sorry"), "{}", call.text);
        assert!(super::transcript("not json\n{\"type\":\"x\"}\n")
            .entries
            .is_empty());
    }

    #[test]
    fn the_real_cli_transcript_of_a_rejected_key() {
        let text = transcript("auth_401.jsonl");
        let (_, p) = parse(&text);
        assert!(p.finished && p.is_error);
        assert!(atp_prover::authfail::rejected_in(&text).is_some());
    }

    /// The reference's sample transcript, read in place when the reference material is beside
    /// the checkout (`ATP_REFERENCE_SAMPLES`, set by `.ci/run`); it is not part of the project.
    #[test]
    fn the_reference_sample_transcript() {
        let Ok(dir) = std::env::var("ATP_REFERENCE_SAMPLES") else {
            eprintln!("(ATP_REFERENCE_SAMPLES unset: the reference sample is not checked here)");
            return;
        };
        let text =
            std::fs::read_to_string(std::path::Path::new(&dir).join("claude_code.stream.jsonl"))
                .expect("ATP_REFERENCE_SAMPLES names a directory with claude_code.stream.jsonl");
        let (_, p) = parse(&text);
        assert!(p.finished);
        assert_eq!(p.usage.input_tokens, 18432 + 512 + 12000);
        assert_eq!(p.usage.cached_input_tokens, 12000);
        assert_eq!(p.usage.output_tokens, 2096);
        assert_eq!(p.reported_cost, Some(0.4231));
    }

    #[test]
    fn a_failed_lean_lsp_server_is_a_note() {
        let (ev, _) = parse(
            r#"{"type":"system","subtype":"init","session_id":"s","model":"m","mcp_servers":[{"name":"lean-lsp","status":"failed"}]}"#,
        );
        assert!(matches!(&ev[0], ProgressEvent::Note(n) if n.contains("lean-lsp")));
    }

    #[test]
    fn launch_script_and_staging() {
        let h = ClaudeCode {
            assets: Assets {
                skills: vec![],
                plugins: vec!["/x/lean4".into()],
            },
            ..Default::default()
        };
        insta::assert_snapshot!(h.launch_script());
        let env = h.static_env();
        assert_eq!(env["IS_SANDBOX"], "1");
        assert_eq!(env["CLAUDE_CODE_FORK_SUBAGENT"], "1");
    }

    #[test]
    fn the_oauth_token_wins_and_values_stay_out_of_debug() {
        let env = EnvSource::fixed(
            [
                (OAUTH_ENV.to_string(), "tok-secret".to_string()),
                (API_KEY_ENV.to_string(), "key-secret".to_string()),
                (BASE_URL_ENV.to_string(), "http://127.0.0.1:9".to_string()),
            ]
            .into(),
        );
        let h = ClaudeCode::default();
        let c = h
            .credentials(&env, Path::new("/tmp"), "/root")
            .expect("creds");
        assert_eq!(
            c.exec_env.get(OAUTH_ENV).map(String::as_str),
            Some("tok-secret")
        );
        assert!(!c.exec_env.contains_key(API_KEY_ENV));
        assert_eq!(c.exec_env[BASE_URL_ENV], "http://127.0.0.1:9");
        assert!(!format!("{c:?}").contains("secret"));
        assert_eq!(
            h.auth(&env).source.as_deref(),
            Some("env CLAUDE_CODE_OAUTH_TOKEN")
        );
        let none = EnvSource::fixed(Default::default());
        assert!(h.auth(&none).state.blocks());
        assert!(h.credentials(&none, Path::new("/tmp"), "/root").is_err());
    }
}
