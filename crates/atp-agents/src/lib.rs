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
pub mod claude_code;
mod harness;

pub use agent::{launch_command, tool_version, AgentProver};
pub use assets::{AssetError, Assets, McpServer, LEAN_LSP};
pub use harness::{
    CredentialError, Credentials, Harness, Parsed, StreamParser, ATP_DIR, LAUNCH_FILE, PROMPT_FILE,
};
