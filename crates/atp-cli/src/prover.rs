//! Prover selection: the registry of provers `atp` knows and how the CLI builds one. The only
//! place that names concrete provers.

use std::path::PathBuf;
use std::time::Duration;

use atp_agents::axprover::{self, AxProver};
use atp_agents::claude_code::{self, ClaudeCode};
use atp_agents::codex::{self, Codex};
use atp_agents::kimi::{self, Kimi};
use atp_agents::numina::{Numina, OnStatementChange};
use atp_agents::opencode::{AuthMode, OpenCode};
use atp_agents::vibe::Vibe;
use atp_agents::{AgentProver, Assets};
use atp_aristotle::{AristotleConfig, AristotleProver};
use atp_prover::{AuthStatus, EnvSource, Prover, ProverKind};
use atp_sample::{SampleConfig, SampleProver, SpliceMode};
use atp_tactics::TacticsProver;
use serde::Serialize;

/// One registered prover, as `atp provers` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub name: &'static str,
    pub kind: ProverKind,
    /// What runs (`Claude Code CLI`, …).
    pub runs: &'static str,
    pub default_model: Option<&'static str>,
    /// The credential it needs, in words.
    pub credential: &'static str,
}

/// Every prover atp knows, in the order `atp provers` shows them.
pub const REGISTRY: &[Entry] = &[
    Entry {
        name: "claude",
        kind: ProverKind::Agent,
        runs: "Claude Code CLI in the sandbox",
        default_model: Some(claude_code::DEFAULT_MODEL),
        credential: "CLAUDE_CODE_OAUTH_TOKEN (claude setup-token) or ANTHROPIC_API_KEY",
    },
    Entry {
        name: "codex",
        kind: ProverKind::Agent,
        runs: "Codex CLI in the sandbox",
        default_model: Some(codex::DEFAULT_MODEL),
        credential: "~/.codex/auth.json (codex login) or OPENAI_API_KEY",
    },
    Entry {
        name: "opencode",
        kind: ProverKind::Agent,
        runs: "OpenCode CLI in the sandbox (--model provider/model)",
        default_model: Some("deepseek/deepseek-v4-pro"),
        credential: "the provider's API key variable, or its entry of OpenCode's auth.json (opencode auth login)",
    },
    Entry {
        name: "deepseek",
        kind: ProverKind::Agent,
        runs: "OpenCode CLI in the sandbox, DeepSeek",
        default_model: Some("deepseek/deepseek-v4-pro"),
        credential: "DEEPSEEK_API_KEY",
    },
    Entry {
        name: "grok",
        kind: ProverKind::Agent,
        runs: "OpenCode CLI in the sandbox, xAI Grok",
        default_model: Some("xai/grok-4.5"),
        credential: "xai entry of OpenCode's auth.json (opencode auth login) or XAI_API_KEY",
    },
    Entry {
        name: "vibe",
        kind: ProverKind::Agent,
        runs: "Mistral Vibe CLI in the sandbox",
        default_model: Some("magistral-medium-latest"),
        credential: "MISTRAL_API_KEY",
    },
    Entry {
        name: "leanstral",
        kind: ProverKind::Agent,
        runs: "Mistral Vibe CLI in the sandbox, Leanstral with Vibe's Lean prompt",
        default_model: Some("labs-leanstral-1-5"),
        credential: "MISTRAL_API_KEY",
    },
    Entry {
        name: "axprover",
        kind: ProverKind::Agent,
        runs: "ax-prover in the sandbox, once per file with a sorry",
        default_model: Some(axprover::DEFAULT_MODEL),
        credential: "the model provider's key (ANTHROPIC_API_KEY, OPENAI_API_KEY, GOOGLE_API_KEY or DEEPSEEK_API_KEY)",
    },
    Entry {
        name: "kimi",
        kind: ProverKind::Agent,
        runs: "Kimi Code CLI in the sandbox",
        default_model: Some(kimi::DEFAULT_MODEL),
        credential: "~/.kimi-code/credentials/ (kimi login)",
    },
    Entry {
        name: "numina",
        kind: ProverKind::Agent,
        runs: "Claude Code in rounds with Numina's assets (--numina-assets DIR)",
        default_model: Some(claude_code::DEFAULT_MODEL),
        credential: "CLAUDE_CODE_OAUTH_TOKEN (claude setup-token) or ANTHROPIC_API_KEY",
    },
    Entry {
        name: "tactics",
        kind: ProverKind::Tactics,
        runs: "a closing-tactic portfolio per sorry in the sandbox",
        default_model: None,
        credential: "none",
    },
    Entry {
        name: "aristotle",
        kind: ProverKind::Hosted,
        runs: "Harmonic's hosted Aristotle over its HTTP API (from the host)",
        default_model: None,
        credential: "ARISTOTLE_API_KEY or `aristotle login`'s stored key",
    },
    Entry {
        name: "sample",
        kind: ProverKind::Sampling,
        runs: "pass@k whole-proof sampling from an OpenAI-compatible API (from the host)",
        default_model: None,
        credential: "OPENAI_API_KEY (or --api-key-env NAME); none for a keyless --api-base",
    },
];

/// Look a prover up by name.
pub fn entry(name: &str) -> Option<&'static Entry> {
    REGISTRY.iter().find(|e| e.name == name)
}

/// One line naming the known provers, for errors.
pub fn known() -> String {
    REGISTRY
        .iter()
        .map(|e| e.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The flags that configure a prover.
#[derive(Debug, Clone, Default, clap::Args, Serialize, serde::Deserialize)]
pub struct ProverArgs {
    /// The prover (see `atp provers`).
    #[arg(long, short = 'p', value_name = "NAME", default_value = "claude")]
    pub prover: String,
    /// Model (default: the prover's).
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Reasoning effort, for provers that take one (e.g. low, medium, high, max).
    #[arg(long, value_name = "EFFORT")]
    pub effort: Option<String>,
    /// The API's base URL: an LLM gateway or self-hosted server for agent provers, the
    /// OpenAI-compatible endpoint for `sample` (e.g. http://127.0.0.1:8000/v1, default
    /// OpenAI's), Aristotle's origin for `aristotle` (default ARISTOTLE_WEB_URL, else Harmonic's).
    #[arg(long, value_name = "URL")]
    pub api_base: Option<String>,
    /// A skill directory staged for the agent (repeatable).
    #[arg(long = "skill", value_name = "DIR")]
    pub skills: Vec<PathBuf>,
    /// A plugin directory staged for the agent (repeatable; Claude Code).
    #[arg(long = "plugin", value_name = "DIR")]
    pub plugins: Vec<PathBuf>,
    /// A closing tactic for `tactics`, in order (repeatable; default: its portfolio).
    #[arg(long = "tactic", value_name = "TACTIC")]
    pub tactics: Vec<String>,
    /// Budget of one `tactics` compile, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub attempt_timeout: u64,
    /// Numina's assets directory (skills/, prompts/ with main_entry.md), for `numina`.
    #[arg(long, value_name = "DIR")]
    pub numina_assets: Option<PathBuf>,
    /// Most rounds of `numina`.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub max_rounds: u32,
    /// Consecutive LIMIT rounds after which `numina` starts a fresh conversation.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub max_consecutive_limits: u32,
    /// What `numina` does when a round changed a theorem statement: stop, or restore it.
    #[arg(long, value_enum, default_value_t = StatementChangeArg::Error)]
    pub on_statement_change: StatementChangeArg,
    /// Most proof iterations per theorem, for `axprover`.
    #[arg(long, value_name = "N")]
    pub max_iterations: Option<u32>,
    /// Most agent turns, for `claude`, `vibe` and `leanstral`.
    #[arg(long, value_name = "N")]
    pub max_turns: Option<u32>,
    #[command(flatten)]
    #[serde(default)]
    pub hosted: HostedArgs,
}

/// `--on-statement-change`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum StatementChangeArg {
    /// Stop the rounds (the verifier reports the change).
    #[default]
    Error,
    /// Restore the original statement and go on.
    Warn,
}

/// Flags of the provers that run on the host (`aristotle`, `sample`).
#[derive(Debug, Clone, clap::Args, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct HostedArgs {
    /// `aristotle`: seconds between two status polls of the hosted task.
    #[arg(long, value_name = "SECS", default_value_t = 15.0)]
    pub poll_interval: f64,
    /// `sample`: k, the candidates generated per task.
    #[arg(long = "samples", short = 'k', value_name = "N", default_value_t = 8)]
    pub samples: u32,
    /// `sample`: sampling temperature.
    #[arg(long, value_name = "T", default_value_t = 1.0)]
    pub temperature: f64,
    /// `sample`: nucleus sampling (top_p), not sent unless given.
    #[arg(long, value_name = "P")]
    pub top_p: Option<f64>,
    /// `sample`: the answer's token limit (max_tokens), not sent unless given.
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u64>,
    /// `sample`: requests to the model API in flight at once.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub concurrency: usize,
    /// `sample`: choices asked per request (the API's `n`; vLLM and OpenAI honour it).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub per_request: u32,
    /// `sample`: base seed (the request of samples from index i sends seed + i).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// `sample`: a prompt template file ({{file}}, {{source}}, {{theorem}}, {{name}},
    /// {{instructions}}); default: atp's whole-proof prompt.
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
    /// `sample`: splice each answer as the whole file, or per theorem with a `sorry`.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = SpliceArg::Whole)]
    pub splice: SpliceArg,
    /// `sample`: self-correction rounds (a failed candidate's errors are fed back).
    #[arg(long, value_name = "R", default_value_t = 0)]
    pub rounds: u32,
    /// `sample`: stop at the first verified candidate (pass@k then has no estimates).
    #[arg(long)]
    pub stop_on_first: bool,
    /// `sample`: ask for streamed answers.
    #[arg(long)]
    pub stream: bool,
    /// `sample`: the environment variable holding the API key (default OPENAI_API_KEY).
    #[arg(long, value_name = "NAME")]
    pub api_key_env: Option<String>,
    /// `sample`: candidates verified at once in the run's one verification sandbox.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub batch_workers: usize,
    /// `sample`: wall clock of one model request, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 1200)]
    pub request_timeout: u64,
}

impl Default for HostedArgs {
    fn default() -> Self {
        HostedArgs {
            poll_interval: 15.0,
            samples: 8,
            temperature: 1.0,
            top_p: None,
            max_tokens: None,
            concurrency: 8,
            per_request: 1,
            seed: None,
            template: None,
            splice: SpliceArg::Whole,
            rounds: 0,
            stop_on_first: false,
            stream: false,
            api_key_env: None,
            batch_workers: 2,
            request_timeout: 1200,
        }
    }
}

/// `--splice`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SpliceArg {
    /// The answer's code block is the whole file.
    #[default]
    Whole,
    /// One prompt per declaration with a `sorry`; the answer's declaration replaces it.
    Theorem,
}

/// Build the prover `args` names, reading credentials from `env`; its configuration is checked
/// (one line naming the flag).
pub fn make(args: &ProverArgs, env: EnvSource) -> anyhow::Result<Box<dyn Prover>> {
    build(args, env, true)
}

fn build(args: &ProverArgs, env: EnvSource, strict: bool) -> anyhow::Result<Box<dyn Prover>> {
    let assets = Assets {
        skills: args.skills.clone(),
        plugins: args.plugins.clone(),
    };
    assets.validate()?;
    match args.prover.as_str() {
        "claude" => {
            let mut h = ClaudeCode {
                assets,
                api_base: args.api_base.clone(),
                max_turns: args.max_turns,
                ..ClaudeCode::default()
            };
            if let Some(m) = &args.model {
                h.model = m.clone();
            }
            if let Some(e) = &args.effort {
                h.effort = e.clone();
            }
            Ok(Box::new(AgentProver::with_env(h, env)))
        }
        "codex" => {
            let mut h = Codex {
                assets,
                api_base: args.api_base.clone(),
                ..Codex::default()
            };
            if let Some(m) = &args.model {
                h.model = m.clone();
            }
            if let Some(e) = &args.effort {
                h.effort = e.clone();
            }
            if let Some(b) = &h.api_base {
                codex::check_base_url(b).map_err(anyhow::Error::msg)?;
            }
            Ok(Box::new(AgentProver::with_env(h, env)))
        }
        "opencode" | "deepseek" | "grok" => {
            let mut h = match args.prover.as_str() {
                "grok" => OpenCode {
                    name: "grok".into(),
                    provider: "xai".into(),
                    model: "grok-4.5".into(),
                    auth_mode: AuthMode::Login,
                    ..OpenCode::default()
                },
                name => OpenCode {
                    name: name.into(),
                    ..OpenCode::default()
                },
            };
            h.assets = assets;
            h.api_base = args.api_base.clone();
            if let Some(m) = &args.model {
                h.set_model(m, args.prover != "opencode");
            }
            if let Some(e) = &args.effort {
                h.effort = e.clone();
            }
            h.resolve_api_base(&env);
            Ok(Box::new(AgentProver::with_env(h, env)))
        }
        "vibe" | "leanstral" => {
            let mut h = if args.prover == "vibe" {
                Vibe::general()
            } else {
                Vibe::leanstral()
            };
            h.assets = assets;
            h.api_base = args.api_base.clone();
            h.max_turns = args.max_turns;
            if let Some(m) = &args.model {
                h.model = m.clone();
            }
            if let Some(e) = &args.effort {
                h.effort = e.clone();
            }
            h.resolve_api_base(&env);
            Ok(Box::new(AgentProver::with_env(h, env)))
        }
        "axprover" => {
            let mut h = AxProver {
                api_base: args.api_base.clone(),
                max_iterations: args.max_iterations,
                ..AxProver::default()
            };
            if let Some(m) = &args.model {
                h.model = m.clone();
            }
            if let Some(e) = &args.effort {
                h.effort = e.clone();
            }
            Ok(Box::new(AgentProver::with_env(h, env)))
        }
        "kimi" => {
            let mut h = Kimi {
                assets,
                api_base: args.api_base.clone(),
                ..Kimi::default()
            };
            if let Some(m) = &args.model {
                h.model = m.clone();
            }
            if let Some(e) = &args.effort {
                h.effort = e.clone();
            }
            Ok(Box::new(AgentProver::with_env(h, env)))
        }
        "numina" => {
            let mut claude = ClaudeCode {
                assets: Assets {
                    skills: args.skills.clone(),
                    plugins: vec![],
                },
                api_base: args.api_base.clone(),
                max_turns: args.max_turns,
                ..ClaudeCode::default()
            };
            if let Some(m) = &args.model {
                claude.model = m.clone();
            }
            if let Some(e) = &args.effort {
                claude.effort = e.clone();
            }
            let mut n = Numina::new(claude, env);
            n.assets_dir = args.numina_assets.clone();
            n.max_rounds = args.max_rounds;
            n.max_consecutive_limits = args.max_consecutive_limits.max(1);
            n.on_statement_change = match args.on_statement_change {
                StatementChangeArg::Error => OnStatementChange::Error,
                StatementChangeArg::Warn => OnStatementChange::Warn,
            };
            n.validate().map_err(anyhow::Error::msg)?;
            Ok(Box::new(n))
        }
        "tactics" => {
            let mut t = TacticsProver {
                attempt_timeout: Duration::from_secs(args.attempt_timeout.max(1)),
                ..TacticsProver::default()
            };
            if !args.tactics.is_empty() {
                t.portfolio = args.tactics.clone();
            }
            t.validate().map_err(anyhow::Error::msg)?;
            Ok(Box::new(t))
        }
        "aristotle" => {
            let h = &args.hosted;
            if !(h.poll_interval.is_finite() && h.poll_interval > 0.0) {
                anyhow::bail!(
                    "--poll-interval {}: must be a positive number of seconds",
                    h.poll_interval
                );
            }
            let p = AristotleProver::new(
                AristotleConfig {
                    api_base: args.api_base.clone(),
                    poll_interval: Duration::from_secs_f64(h.poll_interval),
                    ..AristotleConfig::default()
                },
                env,
            );
            if strict {
                p.validate().map_err(anyhow::Error::msg)?;
            }
            Ok(Box::new(p))
        }
        "sample" => {
            let h = &args.hosted;
            let template = match &h.template {
                Some(f) => Some(atp_sample::template::Template::from_file(f)?),
                None => None,
            };
            let mut config = SampleConfig {
                api_base: args.api_base.clone(),
                model: args.model.clone(),
                samples: h.samples,
                temperature: Some(h.temperature),
                top_p: h.top_p,
                max_tokens: h.max_tokens,
                concurrency: h.concurrency,
                per_request: h.per_request,
                seed: h.seed,
                template,
                splice: match h.splice {
                    SpliceArg::Whole => SpliceMode::Whole,
                    SpliceArg::Theorem => SpliceMode::Theorem,
                },
                rounds: h.rounds,
                stop_on_first: h.stop_on_first,
                api_key_env: h.api_key_env.clone(),
                batch_workers: h.batch_workers,
                ..SampleConfig::default()
            };
            config.client.stream = h.stream;
            config.client.request_timeout = Duration::from_secs(h.request_timeout);
            if strict {
                config.validate().map_err(anyhow::Error::msg)?;
            }
            Ok(Box::new(SampleProver::new(config, env)))
        }
        other => anyhow::bail!(
            "unknown prover `{other}` — known provers: {} (see `atp provers`)",
            known()
        ),
    }
}

/// The credential status of the prover `name` with default settings.
pub fn auth_status(name: &str, env: EnvSource) -> anyhow::Result<AuthStatus> {
    let args = ProverArgs {
        prover: name.to_string(),
        attempt_timeout: 300,
        max_rounds: 20,
        max_consecutive_limits: 2,
        ..Default::default()
    };
    Ok(build(&args, env, false)?.auth())
}
