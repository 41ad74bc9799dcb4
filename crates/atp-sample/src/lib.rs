//! `sample`: pass@k whole-proof generation from an OpenAI-compatible Chat Completions endpoint
//! (vLLM, SGLang, DeepSeek, OpenAI, …) — how DeepSeek-Prover, Goedel-Prover and Kimina-Prover
//! are evaluated — with every candidate judged by atp's verifier.
//!
//! - [`chat`]: the Chat Completions client (JSON and streamed, `n` choices, retries).
//! - [`template`]: the prompts (built in per file and per theorem, `--template FILE`, the
//!   self-correction prompt) and their hash.
//! - [`extract`]: the Lean code of an answer; [`splice`]: putting it into the task.
//! - [`batch`]: batch verification — all candidates of a task in one sandbox, bounded workers.
//! - [`SampleConfig`], [`SampleProver`]: the [`atp_prover::Prover`].
//!
//! Architecture invariants: a sample's verdict comes only from the verifier (in the run's one
//! network-less verification sandbox), and the final verdict from the lifecycle's own
//! verification of `OUT/wd`; the key goes only into the `Authorization` header.

pub mod batch;
pub mod chat;
mod config;
pub mod extract;
mod prover;
pub mod splice;
pub mod template;

pub use config::{SampleConfig, DEFAULT_API_BASE, DEFAULT_KEY_VAR};
pub use prover::{pass_at, SampleProver};
pub use splice::SpliceMode;
