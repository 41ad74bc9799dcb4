//! `tactics`: atp's baseline prover — no model, no credential.
//!
//! For every `sorry` of the task it tries a portfolio of closing tactics inside the sandbox
//! (network off) and keeps, per `sorry`, the first that compiles. Each round tries one tactic
//! on every `sorry` still open, one compile per file (`lake env lean`), and attributes each
//! error to the replacement it falls in; a tactic that leaves goals fails (`focus (TAC; done)`
//! in tactic position, `(by TAC)` in term position). The result is verified like any prover's.
//!
//! Architecture invariant: the prover only writes the task's `.lean` files (through the
//! sandbox, so remote backends see the same text) and never judges its own output.

pub mod sites;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use async_trait::async_trait;
use atp_backend::layout::shell_quote;
use atp_backend::ExecOptions;
use atp_prover::{
    run_logged, AuthStatus, GenOutcome, GenerateContext, Generation, Preparation, PrepareContext,
    ProgressEvent, ProveError, Prover, ProverInfo, ProverKind, RunEnd, SandboxRequest,
};
use atp_verify::parse::{parse_messages, Severity};
use serde_json::json;

use crate::sites::{attribute, replacement, sites, splice, Site};

/// The default portfolio, cheap and decisive tactics first.
pub const DEFAULT_PORTFOLIO: &[&str] = &[
    "rfl",
    "decide",
    "norm_num",
    "simp",
    "omega",
    "linarith",
    "nlinarith",
    "positivity",
    "ring",
    "aesop",
    "grind",
    "exact?",
];

/// Default budget of one compile (one tactic on one file).
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(300);

/// The tactic-portfolio prover.
#[derive(Debug, Clone)]
pub struct TacticsProver {
    pub portfolio: Vec<String>,
    /// Budget of one compile.
    pub attempt_timeout: Duration,
}

impl Default for TacticsProver {
    fn default() -> Self {
        TacticsProver {
            portfolio: DEFAULT_PORTFOLIO.iter().map(|s| s.to_string()).collect(),
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
        }
    }
}

impl TacticsProver {
    /// Check the portfolio: non-empty, each entry one tactic word the replacement can hold.
    pub fn validate(&self) -> Result<(), String> {
        if self.portfolio.is_empty() {
            return Err("the tactic portfolio is empty — pass --tactic NAME (repeatable)".into());
        }
        for t in &self.portfolio {
            let ok = !t.is_empty()
                && t.chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '?' | '!' | '.' | '\''));
            if !ok {
                return Err(format!(
                    "tactic `{t}`: only single tactic names such as `omega` or `exact?` are accepted"
                ));
            }
        }
        Ok(())
    }
}

/// One file's open sites and accepted replacements.
struct FileWork {
    rel: String,
    original: String,
    sites: Vec<Site>,
    /// Site index → accepted tactic.
    accepted: BTreeMap<usize, String>,
}

impl FileWork {
    fn open(&self) -> Vec<usize> {
        (0..self.sites.len())
            .filter(|k| !self.accepted.contains_key(k))
            .collect()
    }

    /// The text with accepted tactics in place and `trying` on the open sites (or `sorry` left
    /// as is when `trying` is `None`). Returns the text and, per open site tried, its span.
    fn text(&self, trying: Option<&str>) -> (String, Vec<(usize, sites::Span)>) {
        // Edits in site order; `tried[i]` remembers which edit belongs to an open site.
        let mut edits: Vec<(&Site, String)> = Vec::new();
        let mut open_edits = Vec::new();
        for (k, s) in self.sites.iter().enumerate() {
            match (self.accepted.get(&k), trying) {
                (Some(t), _) => edits.push((s, replacement(s.mode, t))),
                (None, Some(t)) => {
                    open_edits.push((k, edits.len()));
                    edits.push((s, replacement(s.mode, t)));
                }
                (None, None) => {}
            }
        }
        let (text, spans) = splice(&self.original, &edits);
        let tried = open_edits.into_iter().map(|(k, e)| (k, spans[e])).collect();
        (text, tried)
    }
}

fn write_file_cmd(rel: &str) -> String {
    let q = shell_quote(rel);
    format!("cat > {q}")
}

fn compile_cmd(rel: &str) -> String {
    let q = shell_quote(rel);
    format!("cat > {q} && lake env lean {q}")
}

#[async_trait]
impl Prover for TacticsProver {
    fn info(&self) -> ProverInfo {
        let mut config = BTreeMap::new();
        config.insert("portfolio".into(), json!(self.portfolio));
        config.insert(
            "attempt_timeout_s".into(),
            json!(self.attempt_timeout.as_secs()),
        );
        ProverInfo {
            name: "tactics".into(),
            kind: ProverKind::Tactics,
            model: None,
            effort: None,
            config,
        }
    }

    fn auth(&self) -> AuthStatus {
        AuthStatus::not_required()
    }

    async fn prepare(&self, _cx: &PrepareContext<'_>) -> Result<Preparation, ProveError> {
        self.validate().map_err(ProveError::InvalidInput)?;
        Ok(Preparation {
            sandbox: Some(SandboxRequest::default()),
            private: None,
        })
    }

    async fn generate(&self, cx: GenerateContext<'_>) -> Generation {
        let Some(session) = cx.session else {
            return Generation::failed("internal", "the tactics prover needs a sandbox session");
        };
        let targets = match cx.task.target_files() {
            Ok(t) => t,
            Err(e) => return Generation::failed(e.kind(), e),
        };
        let mut files = Vec::new();
        for rel in targets {
            let Ok(text) = std::fs::read_to_string(cx.wd.join(&rel)) else {
                continue;
            };
            let s = sites(&text);
            if !s.is_empty() {
                files.push(FileWork {
                    rel,
                    original: text,
                    sites: s,
                    accepted: BTreeMap::new(),
                });
            }
        }
        let total: usize = files.iter().map(|f| f.sites.len()).sum();
        let lake_version = match session
            .exec_wait(
                "lake --version",
                ExecOptions::with_timeout(Duration::from_secs(60)),
            )
            .await
        {
            Ok(r) if r.success() => r.stdout.lines().next().map(|l| l.trim().to_string()),
            _ => None,
        };
        let mut outcome = GenOutcome::Finished;
        let mut compiles = 0u64;
        'rounds: for tactic in &self.portfolio {
            for f in files.iter_mut() {
                if f.open().is_empty() {
                    continue;
                }
                if cx.cancel.is_cancelled() {
                    outcome = GenOutcome::Cancelled;
                    break 'rounds;
                }
                let left = cx.remaining();
                if left.is_zero() {
                    outcome = GenOutcome::TimedOut;
                    break 'rounds;
                }
                (cx.progress)(ProgressEvent::ToolCall(format!("{tactic} on {}", f.rel)));
                let (text, tried) = f.text(Some(tactic));
                log_header(
                    cx.layout,
                    &format!("tactics: {tactic} on {} ({} open)", f.rel, tried.len()),
                );
                let mut output = String::new();
                let report = run_logged(
                    session,
                    &compile_cmd(&f.rel),
                    ExecOptions {
                        timeout: Some(self.attempt_timeout.min(left).max(Duration::from_secs(1))),
                        kill_grace: Some(Duration::from_secs(5)),
                        stdin: Some(text.into_bytes().into()),
                        ..Default::default()
                    },
                    &cx.layout.stdout(),
                    &cx.layout.stderr(),
                    &cx.cancel,
                    |line| {
                        output.push_str(line);
                        output.push('\n');
                    },
                )
                .await;
                compiles += 1;
                match report.end {
                    RunEnd::Exited(_) => {}
                    RunEnd::TimedOut => continue,
                    RunEnd::Cancelled => {
                        outcome = GenOutcome::Cancelled;
                        break 'rounds;
                    }
                    RunEnd::Failed(kind, msg) => {
                        outcome = GenOutcome::Failed {
                            error: kind,
                            message: msg,
                        };
                        break 'rounds;
                    }
                }
                let mut failed = vec![false; tried.len()];
                let mut stray = false;
                let spans: Vec<sites::Span> = tried.iter().map(|(_, s)| *s).collect();
                for m in parse_messages(&output) {
                    if m.severity != Severity::Error {
                        continue;
                    }
                    match attribute(&spans, m.line, m.col) {
                        Some(k) => failed[k] = true,
                        None => stray = true,
                    }
                }
                if stray {
                    // An error outside every replacement: this round says nothing reliable.
                    continue;
                }
                for (i, (k, _)) in tried.iter().enumerate() {
                    if !failed[i] {
                        f.accepted.insert(*k, tactic.clone());
                    }
                }
            }
            if files.iter().all(|f| f.open().is_empty()) {
                break;
            }
        }
        // Leave each file with its accepted tactics and `sorry` where none worked — written
        // through the sandbox so every backend holds the same text (also after a cancel).
        for f in &files {
            let (text, _) = f.text(None);
            let wrote = session
                .exec_wait(
                    &write_file_cmd(&f.rel),
                    ExecOptions {
                        timeout: Some(Duration::from_secs(60)),
                        stdin: Some(text.clone().into_bytes().into()),
                        ..Default::default()
                    },
                )
                .await;
            if let Err(e) = wrote {
                tracing::warn!(file = %f.rel, "writing the final text through the sandbox: {e}");
                let _ = std::fs::write(cx.wd.join(&f.rel), &text);
            }
        }
        let solved: usize = files.iter().map(|f| f.accepted.len()).sum();
        let mut g = Generation::new(outcome);
        g.free = true;
        g.usage.tool_calls = Some(compiles);
        g.usage.stop_reason = Some(
            if solved == total {
                "all_closed"
            } else {
                "portfolio_exhausted"
            }
            .into(),
        );
        if let Some(v) = lake_version {
            g.metadata.insert("agent_version".into(), json!(v));
        }
        g.metadata.insert("sorries".into(), json!(total));
        g.metadata.insert("closed".into(), json!(solved));
        g.metadata.insert("compiles".into(), json!(compiles));
        let closed: BTreeMap<String, BTreeMap<String, String>> = files
            .iter()
            .map(|f| {
                (
                    f.rel.clone(),
                    f.accepted
                        .iter()
                        .map(|(k, t)| (format!("line {}", f.sites[*k].line), t.clone()))
                        .collect(),
                )
            })
            .collect();
        g.metadata.insert("closed_by".into(), json!(closed));
        g
    }
}

fn log_header(layout: &atp_prover::RunLayout, text: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(layout.stdout())
    {
        let _ = writeln!(f, "## {text}");
    }
}
