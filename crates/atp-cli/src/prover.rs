//! Prover selection: the registry of provers `atp` knows and how the CLI builds one. The only
//! place that names concrete provers.

use std::path::PathBuf;
use std::time::Duration;

use atp_agents::claude_code::{self, ClaudeCode};
use atp_agents::{AgentProver, Assets};
use atp_prover::{AuthStatus, EnvSource, Prover, ProverKind};
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
        name: "tactics",
        kind: ProverKind::Tactics,
        runs: "a closing-tactic portfolio per sorry in the sandbox",
        default_model: None,
        credential: "none",
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
    /// The model API's base URL (an LLM gateway, a self-hosted server), for agent provers.
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
}

/// Build the prover `args` names, reading credentials from `env`.
pub fn make(args: &ProverArgs, env: EnvSource) -> anyhow::Result<Box<dyn Prover>> {
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
        ..Default::default()
    };
    Ok(make(&args, env)?.auth())
}
