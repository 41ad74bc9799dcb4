//! [`SampleConfig`]: every knob of the `sample` prover, checked once.

use atp_prover::{AuthKind, AuthState, AuthStatus, EnvSource};

use crate::chat::ClientOptions;
use crate::splice::SpliceMode;
use crate::template::Template;

/// OpenAI's endpoint: the provider default.
pub const DEFAULT_API_BASE: &str = "https://api.openai.com/v1";
/// The key variable unless `--api-key-env` names another.
pub const DEFAULT_KEY_VAR: &str = "OPENAI_API_KEY";

/// How to sample.
#[derive(Debug, Clone)]
pub struct SampleConfig {
    /// The OpenAI-compatible base URL (`…/v1`); `/chat/completions` is appended.
    pub api_base: Option<String>,
    /// The model id the endpoint serves (required).
    pub model: Option<String>,
    /// k: candidates per task.
    pub samples: u32,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u64>,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Choices asked per request (`n`); 1 sends one request per sample.
    pub per_request: u32,
    /// Base seed: the request for samples from index `i` sends `seed + i`.
    pub seed: Option<u64>,
    /// `None`: the built-in template for the splice mode.
    pub template: Option<Template>,
    pub splice: SpliceMode,
    /// Self-correction rounds: a failed candidate's findings are fed back this many times.
    pub rounds: u32,
    /// Stop sampling and verifying at the first verified candidate.
    pub stop_on_first: bool,
    /// The variable holding the key (`None`: `OPENAI_API_KEY`).
    pub api_key_env: Option<String>,
    /// Candidates verified at once in the shared verification sandbox.
    pub batch_workers: usize,
    pub client: ClientOptions,
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig {
            api_base: None,
            model: None,
            samples: 8,
            temperature: Some(1.0),
            top_p: None,
            max_tokens: None,
            concurrency: 8,
            per_request: 1,
            seed: None,
            template: None,
            splice: SpliceMode::Whole,
            rounds: 0,
            stop_on_first: false,
            api_key_env: None,
            batch_workers: 2,
            client: ClientOptions::default(),
        }
    }
}

impl SampleConfig {
    pub fn api_base(&self) -> &str {
        self.api_base.as_deref().unwrap_or(DEFAULT_API_BASE)
    }

    pub fn key_var(&self) -> &str {
        self.api_key_env.as_deref().unwrap_or(DEFAULT_KEY_VAR)
    }

    /// The template in use.
    pub fn template(&self) -> Template {
        self.template
            .clone()
            .unwrap_or_else(|| Template::builtin(self.splice))
    }

    /// Every knob in range; the line names the flag.
    pub fn validate(&self) -> Result<(), String> {
        if self.model.as_deref().is_none_or(|m| m.trim().is_empty()) {
            return Err("sample: --model is required (the model id your endpoint serves, e.g. deepseek-ai/DeepSeek-Prover-V2-7B)".into());
        }
        if !(1..=100_000).contains(&self.samples) {
            return Err(format!(
                "--samples {}: must be between 1 and 100000",
                self.samples
            ));
        }
        if let Some(t) = self.temperature {
            if !(0.0..=2.0).contains(&t) {
                return Err(format!("--temperature {t}: must be between 0 and 2"));
            }
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(format!("--top-p {p}: must be in (0, 1]"));
            }
        }
        if self.max_tokens == Some(0) {
            return Err("--max-tokens 0: must be positive".into());
        }
        if self.concurrency == 0 {
            return Err("--concurrency 0: at least one request must be in flight".into());
        }
        if self.per_request == 0 || self.per_request > self.samples {
            return Err(format!(
                "--per-request {}: must be between 1 and --samples ({})",
                self.per_request, self.samples
            ));
        }
        if self.batch_workers == 0 {
            return Err(
                "--batch-workers 0: at least one candidate must be verified at a time".into(),
            );
        }
        if self.client.request_timeout.is_zero() {
            return Err("--request-timeout 0: must be positive".into());
        }
        let name = self.key_var();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "--api-key-env {name:?}: not an environment variable name"
            ));
        }
        self.template().check().map_err(|e| e.to_string())?;
        crate::chat::ChatClient::new(self.api_base(), None, ClientOptions::default()).map(|_| ())
    }

    /// The credential in use: the key variable when set; none needed for a non-default
    /// endpoint unless `--api-key-env` was given.
    pub fn auth(&self, env: &EnvSource) -> AuthStatus {
        let var = self.key_var();
        if env.get(var).is_some() {
            return AuthStatus::present(
                AuthKind::ApiKey,
                format!("env {var}"),
                None,
                false,
                format!("set {var}"),
            );
        }
        if self.api_key_env.is_some() || self.api_base.is_none() {
            return AuthStatus::missing(
                AuthKind::ApiKey,
                format!("set {var} in the environment or in .env (or pass --api-base for a server that needs no key, e.g. a local vLLM)"),
            );
        }
        AuthStatus {
            source: Some("none (the endpoint is sent no key)".into()),
            state: AuthState::NotRequired,
            ..AuthStatus::not_required()
        }
    }

    /// The knobs for result.json (no secrets).
    pub fn record(&self, template_hash: &str) -> serde_json::Value {
        let t = self.template();
        serde_json::json!({
            "api_base": self.api_base(),
            "model": self.model,
            "k": self.samples,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "per_request": self.per_request,
            "concurrency": self.concurrency,
            "splice": self.splice.as_str(),
            "template": t.origin,
            "template_sha256": template_hash,
            "rounds": self.rounds,
            "stop_on_first": self.stop_on_first,
            "stream": self.client.stream,
            "batch_workers": self.batch_workers,
            "request_timeout_s": self.client.request_timeout.as_secs_f64(),
            "api_key_env": self.key_var(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn cfg() -> SampleConfig {
        SampleConfig {
            model: Some("m".into()),
            ..SampleConfig::default()
        }
    }

    #[test]
    fn a_model_is_required_and_ranges_are_checked() {
        let e = SampleConfig::default().validate().expect_err("no model");
        assert!(e.starts_with("sample: --model is required"), "{e}");
        cfg().validate().expect("ok");
        for (c, flag) in [
            (
                SampleConfig {
                    samples: 0,
                    ..cfg()
                },
                "--samples",
            ),
            (
                SampleConfig {
                    temperature: Some(3.0),
                    ..cfg()
                },
                "--temperature",
            ),
            (
                SampleConfig {
                    per_request: 9,
                    ..cfg()
                },
                "--per-request",
            ),
            (
                SampleConfig {
                    concurrency: 0,
                    ..cfg()
                },
                "--concurrency",
            ),
            (
                SampleConfig {
                    api_key_env: Some("A B".into()),
                    ..cfg()
                },
                "--api-key-env",
            ),
            (
                SampleConfig {
                    api_base: Some("ftp://x".into()),
                    ..cfg()
                },
                "--api-base",
            ),
        ] {
            let e = c.validate().expect_err(flag);
            assert!(e.starts_with(flag), "{e}");
        }
    }

    #[test]
    fn a_local_endpoint_needs_no_key_but_openai_and_a_named_variable_do() {
        let none = EnvSource::fixed(BTreeMap::new());
        assert!(
            cfg().auth(&none).state.blocks(),
            "OpenAI's default endpoint needs a key"
        );
        let local = SampleConfig {
            api_base: Some("http://127.0.0.1:8000/v1".into()),
            ..cfg()
        };
        assert_eq!(local.auth(&none).state, AuthState::NotRequired);
        let named = SampleConfig {
            api_key_env: Some("VLLM_KEY".into()),
            ..local.clone()
        };
        let st = named.auth(&none);
        assert!(st.state.blocks());
        assert!(st
            .remedy
            .as_deref()
            .unwrap_or("")
            .starts_with("set VLLM_KEY"));
        let with = EnvSource::fixed([("VLLM_KEY".to_string(), "secret".to_string())].into());
        let st = named.auth(&with);
        assert_eq!(st.source.as_deref(), Some("env VLLM_KEY"));
        assert!(!format!("{st:?}").contains("secret"));
    }
}
