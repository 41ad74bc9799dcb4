//! ax-prover (`ax-prover --config axprover.yaml prove FILE …`), once per file with a `sorry`.
//!
//! Staging: `axprover.yaml` (YAML is a superset of JSON; atp writes JSON): the model as
//! LangChain's `provider:model` with its provider options (effort; `base_url` when
//! overridden), ax-prover's web and Lean-search tools switched off (they would leave the
//! sandbox), bounded retries (ax-prover's default is 10,000 attempts, about 8 hours: atp
//! allows [`MAX_ATTEMPTS`] per call and a per-request timeout), an iteration cap. Credential:
//! exactly the model provider's key variable, in the agent's environment only.
//!
//! The launch script loops over the project's `.lean` files that contain `sorry` (`.lake/`
//! skipped) and runs ax-prover on each, every file within the run's budget; its JSON outputs
//! and logs go to `.atp/ax/`, moved to `OUT/logs/axprover/` afterwards. Usage: the
//! `input_tokens`/`output_tokens` of each output entry when ax-prover writes them (the
//! ax-prover-base fork does). ax-prover 0.2.0 from PyPI writes none, so atp stages a LangChain
//! callback ([`USAGE_HOOK`], a `sitecustomize` on ax-prover's `PYTHONPATH`, enabled by
//! [`USAGE_ENV`]) that appends each model answer's `usage_metadata` — the provider's own counts,
//! as LangChain reports them — to [`USAGE_FILE`]; with neither, the run's usage is recorded as
//! unknown (no cost is guessed).

use std::collections::BTreeMap;
use std::path::Path;

use atp_prover::{AuthKind, AuthStatus, EnvSource, ProgressEvent, Usage};
use serde_json::{json, Value};

use crate::harness::{Collected, CredentialError, Credentials, Harness, Parsed, StreamParser};
use crate::safe_fs;

/// Attempts per LLM call (ax-prover's own default is 10,000).
pub const MAX_ATTEMPTS: u32 = 3;
/// Seconds one model request may take.
pub const REQUEST_TIMEOUT_S: u32 = 600;
/// Where outputs and logs go (relative to the workdir).
pub const OUT_DIR: &str = ".atp/ax";
pub const CONFIG_FILE: &str = "axprover.yaml";
/// The usage log the staged hook writes (in [`OUT_DIR`]), one JSON object per model answer.
pub const USAGE_FILE: &str = "usage.jsonl";
/// The variable that enables the hook (its value: the log's path).
pub const USAGE_ENV: &str = "ATP_AX_USAGE_FILE";
/// Where the hook is staged (relative to the workdir), put first on ax-prover's `PYTHONPATH`.
pub const USAGE_HOOK_DIR: &str = ".atp/ax-usage-hook";
/// The hook: a LangChain configure hook (`register_configure_hook`, the mechanism LangChain's
/// own tracers use) whose handler logs `usage_metadata` on every `on_llm_end`. It changes
/// nothing ax-prover sends or receives, and does nothing unless [`USAGE_ENV`] is set.
pub const USAGE_HOOK: &str = r#"# atp: records the token usage of ax-prover's model calls (rendered by atp; edits are overwritten)
import os as _os

if _os.environ.get("ATP_AX_USAGE_FILE"):
    try:
        import json as _json
        from contextvars import ContextVar as _ContextVar

        from langchain_core.callbacks import BaseCallbackHandler as _Base
        from langchain_core.tracers.context import register_configure_hook as _register

        class AtpUsageRecorder(_Base):
            def on_llm_end(self, response, **kwargs):
                for generations in response.generations:
                    for g in generations:
                        usage = getattr(getattr(g, "message", None), "usage_metadata", None)
                        if usage:
                            with open(_os.environ["ATP_AX_USAGE_FILE"], "a", encoding="utf-8") as f:
                                f.write(_json.dumps(dict(usage)) + "\n")

        _register(_ContextVar("atp_usage_recorder", default=None), True, AtpUsageRecorder, "ATP_AX_USAGE_FILE")
    except ImportError:  # another Python program (no LangChain): nothing to record
        pass
    except Exception as e:  # never break ax-prover: no log means usage unknown
        import sys as _sys

        print(f"atp: usage hook not installed: {e}", file=_sys.stderr, flush=True)
"#;
pub const DEFAULT_MODEL: &str = "anthropic:claude-opus-4-8";
pub const DEFAULT_EFFORT: &str = "high";

/// A LangChain provider prefix and its key and base-URL variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LlmProvider {
    pub prefix: &'static str,
    pub key_env: &'static str,
    pub base_url_env: Option<&'static str>,
}

pub const LLM_PROVIDERS: &[LlmProvider] = &[
    LlmProvider {
        prefix: "anthropic",
        key_env: "ANTHROPIC_API_KEY",
        base_url_env: Some("ANTHROPIC_BASE_URL"),
    },
    LlmProvider {
        prefix: "openai",
        key_env: "OPENAI_API_KEY",
        base_url_env: Some("OPENAI_BASE_URL"),
    },
    LlmProvider {
        prefix: "google_genai",
        key_env: "GOOGLE_API_KEY",
        base_url_env: None,
    },
    LlmProvider {
        prefix: "deepseek",
        key_env: "DEEPSEEK_API_KEY",
        base_url_env: Some("DEEPSEEK_API_BASE"),
    },
];

/// The ax-prover harness.
#[derive(Debug, Clone)]
pub struct AxProver {
    /// `provider:model`, or a bare model (its provider inferred).
    pub model: String,
    pub effort: String,
    pub max_iterations: Option<u32>,
    /// The provider's base URL.
    pub api_base: Option<String>,
}

impl Default for AxProver {
    fn default() -> Self {
        AxProver {
            model: DEFAULT_MODEL.into(),
            effort: DEFAULT_EFFORT.into(),
            max_iterations: None,
            api_base: None,
        }
    }
}

impl AxProver {
    /// The LangChain model string, `provider:model`.
    pub fn qualified_model(&self) -> String {
        if self.model.contains(':') {
            return self.model.clone();
        }
        let m = self.model.to_ascii_lowercase();
        let prefix = if m.starts_with("claude") {
            "anthropic"
        } else if m.starts_with("gemini") {
            "google_genai"
        } else if m.starts_with("deepseek") {
            "deepseek"
        } else {
            "openai"
        };
        format!("{prefix}:{}", self.model)
    }

    fn provider(&self) -> Option<&'static LlmProvider> {
        let q = self.qualified_model();
        let prefix = q.split(':').next().unwrap_or("");
        LLM_PROVIDERS.iter().find(|p| p.prefix == prefix)
    }

    /// `axprover.yaml` (as JSON).
    pub fn config_json(&self) -> Value {
        let q = self.qualified_model();
        let prefix = q.split(':').next().unwrap_or("");
        let mut provider_config = match prefix {
            "anthropic" => json!({
                "temperature": 1.0,
                "max_tokens": 32000,
                "effort": self.effort,
                "thinking": {"type": "adaptive"},
            }),
            "google_genai" => json!({
                "temperature": 1.0,
                "max_tokens": null,
                "include_thoughts": true,
                "thinking_level": self.effort,
            }),
            _ => json!({
                "temperature": null,
                "max_tokens": null,
                "reasoning": {"effort": self.effort},
            }),
        };
        provider_config["timeout"] = json!(REQUEST_TIMEOUT_S);
        provider_config["max_retries"] = json!(1);
        if let Some(base) = &self.api_base {
            provider_config["base_url"] = json!(base);
        }
        let mut prover = json!({
            "prover_llm": "${llm_configs.atp}",
            "proposer_tools": {"search_lean": null, "search_web": null},
        });
        if let Some(n) = self.max_iterations {
            prover["max_iterations"] = json!(n);
        }
        json!({
            "llm_configs": {
                "atp": {
                    "model": q,
                    "provider_config": provider_config,
                    "retry_config": {
                        "stop_after_attempt": MAX_ATTEMPTS,
                        "exponential_jitter_params": {"initial": 1, "max": 30, "exp_base": 2.0, "jitter": 1.0}
                    }
                }
            },
            "prover": prover,
        })
    }
}

impl Harness for AxProver {
    fn prover_name(&self) -> &str {
        "axprover"
    }

    fn harness_name(&self) -> &'static str {
        "axprover"
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
            &self.qualified_model(),
            Harness::effort(self),
            self.api_base.is_some(),
        );
        c.insert("max_iterations".into(), json!(self.max_iterations));
        c.insert("max_attempts".into(), json!(MAX_ATTEMPTS));
        c
    }

    fn auth(&self, env: &EnvSource) -> AuthStatus {
        let Some(p) = self.provider() else {
            return AuthStatus::missing(
                AuthKind::ApiKey,
                format!(
                    "axprover: unknown provider of {} — use anthropic:, openai:, google_genai: or deepseek:",
                    self.qualified_model()
                ),
            );
        };
        match env.get(p.key_env) {
            Some(_) => AuthStatus::present(
                AuthKind::ApiKey,
                format!("env {}", p.key_env),
                None,
                false,
                "",
            ),
            None => AuthStatus::missing(
                AuthKind::ApiKey,
                format!(
                    "set {} (the key of {}), in the environment or in .env",
                    p.key_env,
                    self.qualified_model()
                ),
            ),
        }
    }

    fn credentials(
        &self,
        env: &EnvSource,
        _private: &Path,
        _home: &str,
    ) -> Result<Credentials, CredentialError> {
        let p = self.provider().ok_or_else(|| {
            CredentialError(format!(
                "axprover: unknown provider of {}",
                self.qualified_model()
            ))
        })?;
        let key = env.get(p.key_env).ok_or_else(|| {
            CredentialError(format!("axprover: no credential — set {}", p.key_env))
        })?;
        let mut c = Credentials::default();
        c.exec_env.insert(p.key_env.into(), key);
        c.source = Some(format!("env {}", p.key_env));
        if self.api_base.is_none() {
            if let Some(k) = p.base_url_env {
                if let Some(v) = env.get(k) {
                    c.exec_env.insert(k.into(), v);
                }
            }
        }
        Ok(c)
    }

    fn skills_dir(&self) -> Option<&'static str> {
        None
    }

    fn stage(&self, wd: &Path) -> std::io::Result<()> {
        let text =
            serde_json::to_string_pretty(&self.config_json()).map_err(std::io::Error::other)?;
        std::fs::create_dir_all(wd.join(crate::ATP_DIR))?;
        std::fs::write(wd.join(crate::ATP_DIR).join(CONFIG_FILE), text + "\n")?;
        std::fs::create_dir_all(wd.join(USAGE_HOOK_DIR))?;
        std::fs::write(wd.join(USAGE_HOOK_DIR).join("sitecustomize.py"), USAGE_HOOK)
    }

    fn launch_script(&self) -> String {
        format!(
            r#"#!/bin/bash
# atp launch script for ax-prover (rendered by atp; edits are overwritten)
set -u
export PYTHONUNBUFFERED=1
mkdir -p {OUT_DIR}
status=0
# Every .lean file with a sorry, .lake/ skipped (find + grep -l: busybox has no --include).
while IFS= read -r f; do
  safe="$(printf '%s' "$f" | tr '/.' '__')"
  echo "{{\"type\":\"atp.file\",\"file\":\"$f\"}}"
  PYTHONPATH="$PWD/{USAGE_HOOK_DIR}${{PYTHONPATH:+:$PYTHONPATH}}" {USAGE_ENV}="$PWD/{OUT_DIR}/{USAGE_FILE}" \
  ax-prover --config .atp/{CONFIG_FILE} prove "$f" --folder . --skip-build --overwrite \
    -o "{OUT_DIR}/ax_output.$safe.json" > "{OUT_DIR}/ax_prover.$safe.log" 2>&1
  rc=$?
  tail -n 20 "{OUT_DIR}/ax_prover.$safe.log"
  echo "{{\"type\":\"atp.file_done\",\"file\":\"$f\",\"exit\":$rc}}"
  [ $rc -ne 0 ] && status=$rc
done < <(find . -name .lake -prune -o -type f -name '*.lean' -exec grep -lw sorry {{}} + | sed 's|^\./||' | sort)
exit $status
"#
        )
    }

    fn static_env(&self) -> BTreeMap<String, String> {
        // No LangSmith tracing out of the sandbox.
        [
            ("LANGSMITH_TRACING", "false"),
            ("LANGCHAIN_TRACING_V2", "false"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn parser(&self) -> Box<dyn StreamParser> {
        Box::new(AxParser::default())
    }

    fn collect(&self, wd: &Path, logs: &Path) -> std::io::Result<Collected> {
        let mut c = Collected::default();
        let mut usage = Usage::default();
        let mut with_tokens = false;
        let mut proven = 0u64;
        let mut items = 0u64;
        for e in safe_fs::list(wd, OUT_DIR) {
            if !(e.is_file && e.name.starts_with("ax_output.") && e.name.ends_with(".json")) {
                continue;
            }
            let Some(v) = safe_fs::read_text(wd, Path::new(OUT_DIR).join(&e.name))
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            else {
                continue;
            };
            for (_, item) in v.as_object().into_iter().flatten() {
                items += 1;
                if item.get("success").and_then(Value::as_bool) == Some(true) {
                    proven += 1;
                }
                for (k, field) in [("input_tokens", 0), ("output_tokens", 1)] {
                    if let Some(n) = item.get(k).and_then(Value::as_u64) {
                        with_tokens = true;
                        if field == 0 {
                            usage.input_tokens += n;
                        } else {
                            usage.output_tokens += n;
                        }
                    }
                }
            }
        }
        if !with_tokens {
            // The staged hook's log: one `usage_metadata` per model answer.
            let log =
                safe_fs::read_text(wd, Path::new(OUT_DIR).join(USAGE_FILE)).unwrap_or_default();
            for line in log.lines() {
                let Ok(v) = serde_json::from_str::<Value>(line) else {
                    continue;
                };
                let n = |p: &str| v.pointer(p).and_then(Value::as_u64).unwrap_or(0);
                with_tokens = true;
                usage.input_tokens += n("/input_tokens");
                usage.cached_input_tokens += n("/input_token_details/cache_read");
                usage.output_tokens += n("/output_tokens");
            }
        }
        c.metadata.insert("ax_items".into(), json!(items));
        c.metadata.insert("ax_proven".into(), json!(proven));
        if with_tokens {
            c.usage = Some(usage);
        } else {
            c.usage_unknown = true;
        }
        c.logs
            .extend(safe_fs::move_tree(wd, OUT_DIR, &logs.join("axprover"))?);
        Ok(c)
    }
}

/// Parser of the launch script's output: atp's per-file markers and ax-prover's log tails.
#[derive(Debug, Default)]
pub struct AxParser {
    files: u64,
    failed_files: u64,
    last_line: Option<String>,
}

impl StreamParser for AxParser {
    fn line(&mut self, line: &str) -> Vec<ProgressEvent> {
        let t = line.trim();
        if let Ok(v) = serde_json::from_str::<Value>(t) {
            match v.get("type").and_then(Value::as_str) {
                Some("atp.file") => {
                    self.files += 1;
                    return vec![ProgressEvent::Turn];
                }
                Some("atp.file_done") => {
                    if v.get("exit")
                        .and_then(Value::as_i64)
                        .is_some_and(|c| c != 0)
                    {
                        self.failed_files += 1;
                    }
                    return Vec::new();
                }
                _ => {}
            }
        }
        if !t.is_empty() {
            self.last_line = Some(t.to_string());
        }
        Vec::new()
    }

    fn finish(&mut self) -> Parsed {
        let mut meta = BTreeMap::new();
        meta.insert("files".to_string(), json!(self.files));
        meta.insert("failed_files".to_string(), json!(self.failed_files));
        Parsed {
            usage: Usage {
                turns: Some(self.files),
                ..Default::default()
            },
            result_text: self.last_line.clone(),
            metadata: meta,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_snapshots_and_bounded_retries() {
        let h = AxProver {
            max_iterations: Some(8),
            ..Default::default()
        };
        insta::assert_snapshot!("axprover_launch", h.launch_script());
        let c = h.config_json();
        insta::assert_json_snapshot!("axprover_config", c);
        assert_eq!(
            c["llm_configs"]["atp"]["retry_config"]["stop_after_attempt"],
            json!(MAX_ATTEMPTS)
        );
        assert_eq!(c["prover"]["proposer_tools"]["search_web"], Value::Null);
        let o = AxProver {
            model: "gpt-5.5".into(),
            api_base: Some("http://127.0.0.1:9/v1".into()),
            ..Default::default()
        };
        assert_eq!(o.qualified_model(), "openai:gpt-5.5");
        assert_eq!(
            o.config_json()["llm_configs"]["atp"]["provider_config"]["base_url"],
            json!("http://127.0.0.1:9/v1")
        );
    }

    #[test]
    fn only_the_model_providers_key() {
        let env = EnvSource::fixed(
            [
                ("ANTHROPIC_API_KEY".to_string(), "a-secret".to_string()),
                ("OPENAI_API_KEY".to_string(), "o-secret".to_string()),
            ]
            .into(),
        );
        let c = AxProver::default()
            .credentials(&env, Path::new("/tmp"), "/root")
            .expect("creds");
        assert_eq!(
            c.exec_env.keys().collect::<Vec<_>>(),
            vec!["ANTHROPIC_API_KEY"]
        );
        let none = EnvSource::fixed(Default::default());
        let s = AxProver::default().auth(&none);
        assert!(s.state.blocks());
        assert!(s.remedy.unwrap_or_default().contains("ANTHROPIC_API_KEY"));
    }

    #[test]
    fn usage_from_outputs_when_written_else_unknown() {
        let d = tempfile::tempdir().expect("tmp");
        let wd = d.path().join("wd");
        std::fs::create_dir_all(wd.join(OUT_DIR)).expect("mk");
        std::fs::write(
            wd.join(OUT_DIR).join("ax_output.Main_lean.json"),
            r#"{"Main:t":{"success":true,"error":null,"summary":"ok","input_tokens":4700,"output_tokens":80}}"#,
        )
        .expect("w");
        let logs = d.path().join("logs");
        let c = AxProver::default().collect(&wd, &logs).expect("collect");
        let u = c.usage.expect("usage");
        assert_eq!((u.input_tokens, u.output_tokens), (4700, 80));
        assert_eq!(c.metadata["ax_proven"], json!(1));
        assert!(logs.join("axprover/ax_output.Main_lean.json").is_file());
        // ax-prover 0.2.0's outputs carry no tokens.
        std::fs::create_dir_all(wd.join(OUT_DIR)).expect("mk");
        std::fs::write(
            wd.join(OUT_DIR).join("ax_output.Main_lean.json"),
            r#"{"Main:t":{"success":false,"error":"x","summary":""}}"#,
        )
        .expect("w");
        let c = AxProver::default().collect(&wd, &logs).expect("collect");
        assert!(c.usage.is_none());
        assert!(c.usage_unknown);
        // ... so the staged hook's log is summed.
        std::fs::create_dir_all(wd.join(OUT_DIR)).expect("mk");
        std::fs::write(
            wd.join(OUT_DIR).join("ax_output.Main_lean.json"),
            r#"{"Main:t":{"success":true,"error":null,"summary":""}}"#,
        )
        .expect("w");
        std::fs::write(
            wd.join(OUT_DIR).join(USAGE_FILE),
            concat!(
                r#"{"input_tokens":4700,"output_tokens":80,"input_token_details":{"cache_read":3000,"cache_creation":500}}"#,
                "\n",
                r#"{"input_tokens":100,"output_tokens":7}"#,
                "\nnot json\n"
            ),
        )
        .expect("w");
        let c = AxProver::default().collect(&wd, &logs).expect("collect");
        let u = c.usage.expect("usage from the hook's log");
        assert_eq!(
            (u.input_tokens, u.cached_input_tokens, u.output_tokens),
            (4800, 3000, 87)
        );
        assert!(!c.usage_unknown);
    }

    #[test]
    fn the_usage_hook_is_staged_and_keyed_by_its_variable() {
        let d = tempfile::tempdir().expect("tmp");
        AxProver::default().stage(d.path()).expect("stage");
        let hook = std::fs::read_to_string(d.path().join(USAGE_HOOK_DIR).join("sitecustomize.py"))
            .expect("hook");
        assert_eq!(hook, USAGE_HOOK);
        assert_eq!(hook.matches(USAGE_ENV).count(), 3, "{hook}");
        let launch = AxProver::default().launch_script();
        assert!(launch.contains(&format!("{USAGE_ENV}=\"$PWD/{OUT_DIR}/{USAGE_FILE}\"")));
        assert!(launch.contains(&format!("PYTHONPATH=\"$PWD/{USAGE_HOOK_DIR}")));
    }
}
