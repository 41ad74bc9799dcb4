//! atp's agent harnesses: coding-agent CLIs run inside the prover's sandbox.
//!
//! - [`Harness`]: one CLI — its credential, staged files, launch script and stream parser.
//! - [`AgentProver`]: any harness as an `atp_prover::Prover` (stage → launch → stream →
//!   parse).
//! - One module per CLI: [`claude_code`].
//!
//! Architecture invariant: atp-agents knows no engine (only `atp_backend::ComputeSession`), no
//! HTTP client, and does not call the verifier — the lifecycle in `atp-prover` does. Credential
//! values go only into the agent command's environment, never into the workdir or a log.

mod agent;
pub mod assets;
pub mod axprover;
pub mod claude_code;
pub mod codex;
mod harness;
pub mod kimi;
pub mod numina;
pub mod opencode;
pub mod safe_fs;
pub mod vibe;

pub use agent::{launch_command, tool_version, AgentProver};
pub use assets::{AssetError, Assets, McpServer, LEAN_LSP};
pub use harness::{
    home_dir, Collected, CredentialError, Credentials, Harness, Parsed, StreamParser, ATP_DIR,
    CREDENTIALS_MOUNT, LAUNCH_FILE, PROMPT_FILE,
};

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the parser tests on recorded transcripts.
    use atp_prover::ProgressEvent;
    use serde_json::json;

    use crate::{Parsed, StreamParser};

    /// `fixtures/transcripts/<rel>` of the repository.
    pub fn transcript(rel: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/transcripts")
            .join(rel);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// Feed every line of `text` and finish.
    pub fn parse_all(p: &mut dyn StreamParser, text: &str) -> (Vec<ProgressEvent>, Parsed) {
        let mut ev = Vec::new();
        for l in text.lines() {
            ev.extend(p.line(l));
        }
        (ev, p.finish())
    }

    /// A snapshot-friendly view of a parse.
    pub fn summary(ev: &[ProgressEvent], p: &Parsed) -> serde_json::Value {
        json!({
            "events": ev.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>(),
            "usage": p.usage,
            "reported_cost": p.reported_cost,
            "model": p.model,
            "result_text": p.result_text,
            "finished": p.finished,
            "is_error": p.is_error,
            "metadata": p.metadata,
        })
    }
}
