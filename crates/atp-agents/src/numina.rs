//! Numina: Claude Code in rounds, with a Numina assets directory (skills, prompts), the
//! END_REASON protocol, a statement guard between rounds and a ledger of helper-model costs.
//!
//! One sandbox session serves every round. A round is one `claude -p` run (the Claude Code
//! harness's launch script, parser and credentials); it ends its last message with
//! `END_REASON:COMPLETE` (stop), `END_REASON:SELECTED_TARGET_COMPLETE` (the target it chose is
//! done: the next round starts a fresh conversation, unless no `sorry` is left) or
//! `END_REASON:LIMIT` (it ran out of room: the next round resumes the same conversation).
//! Without a line, Claude Code's `subtype` decides (`success` → COMPLETE, `error_max_turns` →
//! LIMIT). `max_consecutive_limits` LIMITs in a row reset the conversation (the next round
//! starts fresh from the main prompt) — a *session reset*. At most `max_rounds` rounds, all
//! within the generation's deadline (a round needs at least [`MIN_ROUND`] left, else the loop
//! ends with `TIMEOUT`).
//!
//! Statement guard (between rounds): the workdir's sources are compared with the task's by the
//! verifier's own statement comparison (`atp_verify::check::statement_check`). A change either
//! stops the loop with `STATEMENT_CHANGED` (`--on-statement-change error`, the default; the
//! verifier then reports it) or is restored (`warn`): the original declaration replaces the
//! changed one, a removed one is appended, and anything else (a lost import, a deleted file)
//! restores the whole file — written through the sandbox so every backend sees it.
//!
//! Helper ledger: Numina's helper scripts append `{backend, model, input_tokens,
//! output_tokens}` lines to `.claude/helper_usage.jsonl`; atp prices them from its table
//! (unknown models are listed, not guessed) and adds them to Claude Code's reported cost.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use atp_backend::layout::shell_quote as sq;
use atp_backend::{ComputeSession, ExecOptions};
use atp_prover::{
    run_logged, AuthStatus, CollectContext, EnvSource, GenOutcome, GenerateContext, Generation,
    Preparation, PrepareContext, PriceTable, ProgressEvent, ProveError, Prover, ProverInfo,
    ProverKind, RunEnd, SandboxRequest, Usage,
};
use atp_verify::{check, Violation};
use serde::Serialize;
use serde_json::{json, Value};

use crate::agent::launch_command;
use crate::claude_code::{ClaudeCode, RESUME_ENV};
use crate::harness::{Harness, ATP_DIR, LAUNCH_FILE, PROMPT_FILE};
use crate::safe_fs;

/// The least time a round is started with.
pub const MIN_ROUND: Duration = Duration::from_secs(60);
/// Where Numina's helpers write their usage.
pub const HELPER_LEDGER: &str = ".claude/helper_usage.jsonl";
/// Host variables of Numina's helper scripts, forwarded when set.
pub const HELPER_ENV: &[&str] = &["GEMINI_API_KEY", "OPENAI_API_KEY", "LEAN_LEANDEX_API_KEY"];
const KILL_GRACE: Duration = Duration::from_secs(10);

/// What to do when a round changed a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnStatementChange {
    /// Stop the loop (`STATEMENT_CHANGED`); the verifier reports the change.
    Error,
    /// Restore the original declarations and go on.
    Warn,
}

/// The END_REASON a round gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EndReason {
    Complete,
    SelectedTargetComplete,
    Limit,
}

/// The END_REASON of a round: its last `END_REASON:` line, else the `subtype`.
pub fn end_reason(result_text: Option<&str>, subtype: Option<&str>) -> Option<EndReason> {
    let re =
        regex::Regex::new(r"(?mi)^\s*END_REASON:(LIMIT|COMPLETE|SELECTED_TARGET_COMPLETE)\s*$")
            .ok()?;
    if let Some(t) = result_text {
        if let Some(c) = re.captures_iter(t).last() {
            return match c.get(1)?.as_str().to_ascii_uppercase().as_str() {
                "COMPLETE" => Some(EndReason::Complete),
                "LIMIT" => Some(EndReason::Limit),
                _ => Some(EndReason::SelectedTargetComplete),
            };
        }
    }
    match subtype {
        Some("success") => Some(EndReason::Complete),
        Some("error_max_turns") => Some(EndReason::Limit),
        _ => None,
    }
}

/// The protocol appended to the prompt.
pub const END_REASON_PROTOCOL: &str = "# Ending a round\n\n\
You work in rounds. End your final message with exactly one line:\n\
- `END_REASON:COMPLETE` when every `sorry` of the task is proved;\n\
- `END_REASON:SELECTED_TARGET_COMPLETE` when the theorem you chose is proved and others remain;\n\
- `END_REASON:LIMIT` when you are running out of room and want to continue in another round.\n";

/// The prompt of a round that resumes the conversation.
pub const CONTINUE_PROMPT: &str = "Continue where you stopped: the task is not complete yet. \
Follow the same rules, and end your final message with an END_REASON line as before.";

/// The Numina prover.
#[derive(Debug)]
pub struct Numina {
    pub claude: ClaudeCode,
    /// The Numina assets directory: `skills/*` go to `.claude/skills/`, `prompts/` to
    /// `.claude/prompts/` (its `main_entry.md` opens the prompt).
    pub assets_dir: Option<PathBuf>,
    pub max_rounds: u32,
    pub max_consecutive_limits: u32,
    pub guard_statements: bool,
    pub on_statement_change: OnStatementChange,
    env: EnvSource,
    prices: Mutex<Option<PriceTable>>,
}

impl Numina {
    pub fn new(claude: ClaudeCode, env: EnvSource) -> Self {
        Numina {
            claude,
            assets_dir: None,
            max_rounds: 20,
            max_consecutive_limits: 2,
            guard_statements: true,
            on_statement_change: OnStatementChange::Error,
            env,
            prices: Mutex::new(None),
        }
    }

    /// Check the assets directory (before anything is created).
    pub fn validate(&self) -> Result<(), String> {
        if let Some(d) = &self.assets_dir {
            if !(d.join("skills").is_dir() || d.join("prompts").is_dir()) {
                return Err(format!(
                    "--numina-assets {}: not a Numina assets directory — it must hold skills/ or prompts/",
                    d.display()
                ));
            }
        }
        if self.max_rounds == 0 {
            return Err("--max-rounds 0: give at least one round".into());
        }
        Ok(())
    }

    fn main_entry(&self) -> Option<String> {
        let d = self.assets_dir.as_ref()?;
        std::fs::read_to_string(d.join("prompts/main_entry.md")).ok()
    }
}

/// One round, for result.json.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    pub round: u32,
    pub end_reason: Option<String>,
    pub subtype: Option<String>,
    pub resumed: bool,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub statement_changes: Vec<String>,
}

#[async_trait]
impl Prover for Numina {
    fn info(&self) -> ProverInfo {
        let mut config = self.claude.config();
        config.insert("harness".into(), json!("numina"));
        config.insert(
            "assets".into(),
            json!(self.assets_dir.as_ref().map(|d| d.display().to_string())),
        );
        config.insert("max_rounds".into(), json!(self.max_rounds));
        config.insert(
            "max_consecutive_limits".into(),
            json!(self.max_consecutive_limits),
        );
        config.insert("guard_statements".into(), json!(self.guard_statements));
        config.insert(
            "on_statement_change".into(),
            json!(self.on_statement_change),
        );
        ProverInfo {
            name: "numina".into(),
            kind: ProverKind::Agent,
            model: Some(self.claude.model().to_string()),
            effort: self.claude.effort().map(str::to_string),
            config,
        }
    }

    fn auth(&self) -> AuthStatus {
        self.claude.auth(&self.env)
    }

    async fn prepare(&self, cx: &PrepareContext<'_>) -> Result<Preparation, ProveError> {
        let io = |what: &str, e: std::io::Error| ProveError::Output {
            path: cx.wd.display().to_string(),
            message: format!("cannot stage {what}: {e}"),
        };
        std::fs::create_dir_all(cx.wd.join(ATP_DIR)).map_err(|e| io(ATP_DIR, e))?;
        std::fs::write(cx.wd.join(PROMPT_FILE), self.first_prompt(cx.prompt))
            .map_err(|e| io(PROMPT_FILE, e))?;
        std::fs::write(cx.wd.join(LAUNCH_FILE), self.claude.launch_script())
            .map_err(|e| io(LAUNCH_FILE, e))?;
        self.claude.stage(cx.wd).map_err(|e| io("claude_code", e))?;
        if let Some(d) = &self.assets_dir {
            let assets = crate::Assets {
                skills: subdirs(&d.join("skills")),
                plugins: vec![],
            };
            assets
                .stage(cx.wd, Some(".claude/skills"), None)
                .map_err(|e| io("numina skills", std::io::Error::other(e)))?;
            let prompts = d.join("prompts");
            if prompts.is_dir() {
                crate::assets::copy_tree(&prompts, &cx.wd.join(".claude/prompts"))
                    .map_err(|e| io("numina prompts", e))?;
            }
        }
        let private = crate::agent::private_dir()?;
        let creds = self
            .claude
            .credentials(&self.env, private.path(), cx.container_home)
            .map_err(|e| ProveError::Credentials(e.0))?;
        Ok(Preparation {
            sandbox: Some(SandboxRequest {
                mounts: creds.mounts,
                env: BTreeMap::new(),
            }),
            private: Some(private),
        })
    }

    async fn generate(&self, cx: GenerateContext<'_>) -> Generation {
        if let Ok(mut p) = self.prices.lock() {
            *p = Some(cx.prices.clone());
        }
        let Some(session) = cx.session else {
            return Generation::failed("internal", "numina needs a sandbox session");
        };
        let Some(private) = cx.private else {
            return Generation::failed("internal", "no private directory for credentials");
        };
        let creds = match self
            .claude
            .credentials(&self.env, private, cx.container_home)
        {
            Ok(c) => c,
            Err(e) => return Generation::failed("credentials", e.0),
        };
        let mut env = self.claude.static_env();
        for k in HELPER_ENV {
            if let Some(v) = self.env.get(k) {
                env.insert(k.to_string(), v);
            }
        }
        env.extend(creds.exec_env.clone());
        let original = match atp_prover::workdir::lean_texts(&cx.layout.task()) {
            Ok(t) => t,
            Err(e) => return Generation::failed("io", format!("reading the task: {e}")),
        };
        let first_prompt = match std::fs::read_to_string(cx.wd.join(PROMPT_FILE)) {
            Ok(p) => p,
            Err(e) => return Generation::failed("io", format!("reading the prompt: {e}")),
        };

        let mut total = Usage::default();
        let mut agent_cost = 0.0;
        let mut any_cost = false;
        let mut rounds: Vec<Round> = Vec::new();
        let mut resume: Option<String> = None;
        let mut consecutive_limits = 0u32;
        let mut session_resets = 0u32;
        let mut loop_end: Option<String> = None;
        let mut outcome = GenOutcome::Finished;
        let mut statement_changed = false;
        let mut last_text = None;
        let mut last_session_id = None;

        for n in 1..=self.max_rounds {
            if cx.remaining() < MIN_ROUND {
                loop_end = Some("TIMEOUT".into());
                outcome = GenOutcome::TimedOut;
                break;
            }
            if cx.cancel.is_cancelled() {
                outcome = GenOutcome::Cancelled;
                break;
            }
            (cx.progress)(ProgressEvent::Note(format!("numina: round {n}")));
            let resumed = resume.is_some();
            let prompt = if resumed {
                CONTINUE_PROMPT.to_string()
            } else {
                first_prompt.clone()
            };
            if let Err(e) = write_through(session, PROMPT_FILE, &prompt).await {
                outcome = GenOutcome::Failed {
                    error: "sandbox".into(),
                    message: format!("writing the round's prompt: {e}"),
                };
                break;
            }
            let mut round_env = env.clone();
            if let Some(id) = &resume {
                round_env.insert(RESUME_ENV.into(), id.clone());
            }
            let parser = Arc::new(Mutex::new(self.claude.parser()));
            let p2 = Arc::clone(&parser);
            let progress = Arc::clone(&cx.progress);
            let report = run_logged(
                session,
                &launch_command(),
                ExecOptions {
                    env: round_env,
                    timeout: Some(cx.remaining().max(Duration::from_secs(1))),
                    kill_grace: Some(KILL_GRACE),
                    stdin: None,
                },
                &cx.layout.stdout(),
                &cx.layout.stderr(),
                &cx.cancel,
                move |line| {
                    let events = match p2.lock() {
                        Ok(mut p) => p.line(line),
                        Err(poisoned) => poisoned.into_inner().line(line),
                    };
                    for e in events {
                        progress(e);
                    }
                },
            )
            .await;
            let parsed = match parser.lock() {
                Ok(mut p) => p.finish(),
                Err(poisoned) => poisoned.into_inner().finish(),
            };
            let subtype = parsed
                .metadata
                .get("subtype")
                .and_then(Value::as_str)
                .map(str::to_string);
            let reason = end_reason(parsed.result_text.as_deref(), subtype.as_deref());
            let round_cost = parsed.reported_cost.or_else(|| {
                cx.prices.cost(
                    parsed.model.as_deref().unwrap_or(self.claude.model()),
                    &parsed.usage,
                )
            });
            if let Some(c) = round_cost {
                agent_cost += c;
                any_cost = true;
            }
            total.add(&parsed.usage);
            last_text = parsed.result_text.clone().or(last_text);
            let session_id = parsed
                .metadata
                .get("session_id")
                .and_then(Value::as_str)
                .map(str::to_string);
            if session_id.is_some() {
                last_session_id = session_id.clone();
            }
            let mut round = Round {
                round: n,
                end_reason: None,
                subtype,
                resumed,
                input_tokens: parsed.usage.input_tokens,
                cached_input_tokens: parsed.usage.cached_input_tokens,
                output_tokens: parsed.usage.output_tokens,
                cost_usd: round_cost,
                statement_changes: Vec::new(),
            };
            round.end_reason = reason.map(|r| match r {
                EndReason::Complete => "COMPLETE".to_string(),
                EndReason::SelectedTargetComplete => "SELECTED_TARGET_COMPLETE".to_string(),
                EndReason::Limit => "LIMIT".to_string(),
            });

            // How the command ended decides first.
            match &report.end {
                RunEnd::TimedOut => outcome = GenOutcome::TimedOut,
                RunEnd::Cancelled => outcome = GenOutcome::Cancelled,
                RunEnd::Failed(kind, msg) => {
                    outcome = GenOutcome::Failed {
                        error: kind.clone(),
                        message: msg.clone(),
                    }
                }
                RunEnd::Exited(code) if *code != 0 && !parsed.finished => {
                    outcome = GenOutcome::Failed {
                        error: "agent_failed".into(),
                        message: format!(
                            "claude exited with status {code} without a result in round {n}"
                        ),
                    }
                }
                RunEnd::Exited(_) => {}
            }
            let stop_now = outcome != GenOutcome::Finished;

            // The statement guard.
            if self.guard_statements && !matches!(outcome, GenOutcome::Cancelled) {
                match self.guard(session, cx.wd, &original).await {
                    Ok(changes) if !changes.is_empty() => {
                        round.statement_changes = changes.clone();
                        statement_changed = true;
                        let msg = format!("numina: round {n} changed {}", changes.join("; "));
                        tracing::warn!("{msg}");
                        (cx.progress)(ProgressEvent::Note(msg));
                        if self.on_statement_change == OnStatementChange::Error {
                            rounds.push(round);
                            loop_end = Some("STATEMENT_CHANGED".into());
                            break;
                        }
                        if let Err(e) = self.restore(session, cx.wd, &original).await {
                            outcome = GenOutcome::Failed {
                                error: "sandbox".into(),
                                message: format!("restoring the statements: {e}"),
                            };
                            rounds.push(round);
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(
                        "numina: the statement guard could not read the workdir: {e}"
                    ),
                }
            }
            rounds.push(round);
            if stop_now {
                loop_end = Some(match &outcome {
                    GenOutcome::TimedOut => "TIMEOUT".into(),
                    GenOutcome::Cancelled => "CANCELLED".into(),
                    _ => "ERROR".into(),
                });
                break;
            }
            match reason {
                Some(EndReason::Complete) => {
                    loop_end = Some("COMPLETE".into());
                    break;
                }
                Some(EndReason::SelectedTargetComplete) => {
                    consecutive_limits = 0;
                    resume = None;
                    if !self.sorry_left(cx.wd) {
                        loop_end = Some("COMPLETE".into());
                        break;
                    }
                }
                Some(EndReason::Limit) => {
                    consecutive_limits += 1;
                    if consecutive_limits >= self.max_consecutive_limits {
                        session_resets += 1;
                        consecutive_limits = 0;
                        resume = None;
                    } else {
                        resume = session_id.or_else(|| last_session_id.clone());
                    }
                }
                None => {
                    resume = None;
                }
            }
        }
        if loop_end.is_none() {
            loop_end = Some("MAX_ROUNDS".into());
        }

        let mut g = Generation::new(outcome);
        if g.outcome == GenOutcome::TimedOut {
            total.stop_reason = Some("timeout".into());
        }
        g.usage = total;
        g.reported_cost = any_cost.then_some(agent_cost);
        g.model = Some(self.claude.model().to_string());
        let m = &mut g.metadata;
        m.insert("harness".into(), json!("numina"));
        if let Some(src) = creds.source {
            m.insert("credential_source".into(), json!(src));
        }
        m.insert("rounds".into(), json!(rounds.len()));
        m.insert("end_reason".into(), json!(loop_end));
        m.insert("session_resets".into(), json!(session_resets));
        m.insert("guard_statements".into(), json!(self.guard_statements));
        m.insert("statement_changed".into(), json!(statement_changed));
        m.insert(
            "statement_changes".into(),
            json!(rounds
                .iter()
                .flat_map(|r| r
                    .statement_changes
                    .iter()
                    .map(move |c| format!("round {}: {c}", r.round)))
                .collect::<Vec<_>>()),
        );
        m.insert(
            "agent_cost_usd".into(),
            json!(any_cost.then_some(agent_cost)),
        );
        m.insert("round_history".into(), json!(rounds));
        if let Some(t) = last_text {
            m.insert("result_text".into(), json!(clip(&t, 2000)));
        }
        g
    }

    fn collect(&self, cx: &CollectContext<'_>, gen: &mut Generation) {
        let prices = match self.prices.lock() {
            Ok(p) => p.clone().unwrap_or_else(PriceTable::builtin),
            Err(_) => PriceTable::builtin(),
        };
        let ledger = match safe_fs::read_text(cx.wd, HELPER_LEDGER) {
            Some(text) => Ledger::from_jsonl(&text, &prices),
            None => Ledger::default(),
        };
        if let Some(text) = safe_fs::read(cx.wd, HELPER_LEDGER, safe_fs::MAX_FILE_BYTES) {
            let to = cx.layout.logs().join("helper_usage.jsonl");
            if std::fs::write(&to, text).is_ok() {
                gen.logs.push(to);
            }
        }
        let m = &mut gen.metadata;
        m.insert("helper_cost_usd".into(), json!(ledger.cost_usd));
        m.insert(
            "helper_tokens".into(),
            json!({"input": ledger.input_tokens, "output": ledger.output_tokens}),
        );
        m.insert("helper_breakdown".into(), json!(ledger.breakdown));
        m.insert("helper_unpriced_models".into(), json!(ledger.unpriced));
        if ledger.calls > 0 {
            gen.reported_cost = Some(gen.reported_cost.unwrap_or(0.0) + ledger.cost_usd);
        }
    }
}

impl Numina {
    fn first_prompt(&self, atp_prompt: &str) -> String {
        let mut p = String::new();
        if let Some(main) = self.main_entry() {
            p.push_str(main.trim_end());
            p.push_str("\n\n");
        }
        p.push_str(atp_prompt.trim_end());
        p.push_str("\n\n");
        p.push_str(END_REASON_PROTOCOL);
        p
    }

    fn sorry_left(&self, wd: &Path) -> bool {
        lean_texts(wd)
            .map(|t| t.values().any(|s| atp_lean::lexer::contains_sorry(s)))
            .unwrap_or(true)
    }

    /// The statement changes of the workdir against `original` (pulled first).
    async fn guard(
        &self,
        session: &dyn ComputeSession,
        wd: &Path,
        original: &BTreeMap<String, String>,
    ) -> Result<Vec<String>, String> {
        session.sync_out().await.map_err(|e| e.to_string())?;
        let now = lean_texts(wd).map_err(|e| e.to_string())?;
        Ok(statement_violations(&now, original)
            .iter()
            .map(describe)
            .collect())
    }

    async fn restore(
        &self,
        session: &dyn ComputeSession,
        wd: &Path,
        original: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let now = lean_texts(wd).map_err(|e| e.to_string())?;
        for (rel, text) in restored(&now, original) {
            write_through(session, &rel, &text)
                .await
                .map_err(|e| format!("{rel}: {e}"))?;
        }
        Ok(())
    }
}

fn describe(v: &Violation) -> String {
    match &v.decl {
        Some(d) => format!("{} ({}: {})", d, v.file, v.message),
        None => format!("{}: {}", v.file, v.message),
    }
}

/// The verifier's statement comparison of `now` against `original`.
pub fn statement_violations(
    now: &BTreeMap<String, String>,
    original: &BTreeMap<String, String>,
) -> Vec<Violation> {
    check::statement_check(&check::parse_all(now), &check::parse_all(original))
}

/// The files to rewrite so that `now` keeps `original`'s statements: each changed
/// declaration replaced by the original's text, each removed one appended, and a file whose
/// change cannot be pinned to a declaration (an import, a deleted file, …) restored whole.
/// The result is checked: anything still in violation is restored whole.
pub fn restored(
    now: &BTreeMap<String, String>,
    original: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let violations = statement_violations(now, original);
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut files: BTreeMap<&str, Vec<&Violation>> = BTreeMap::new();
    for v in &violations {
        files.entry(v.file.as_str()).or_default().push(v);
    }
    for (rel, vs) in files {
        let Some(orig) = original.get(rel) else {
            continue;
        };
        let Some(cur) = now.get(rel) else {
            out.insert(rel.to_string(), orig.clone());
            continue;
        };
        let fixed = vs.iter().try_fold(cur.clone(), |text: String, v| {
            restore_decl(&text, orig, v.decl.as_deref()?)
        });
        out.insert(rel.to_string(), fixed.unwrap_or_else(|| orig.clone()));
    }
    // Whatever is still in violation is restored whole.
    let mut merged = now.clone();
    merged.extend(out.clone());
    for v in statement_violations(&merged, original) {
        if let Some(orig) = original.get(&v.file) {
            out.insert(v.file.clone(), orig.clone());
        }
    }
    out
}

/// `text` with the declaration `decl` (a full name) restored from `orig`.
fn restore_decl(text: &str, orig: &str, decl: &str) -> Option<String> {
    let o = atp_lean::source::parse(orig);
    let oc = o
        .commands
        .iter()
        .find(|c| c.full_name.as_deref() == Some(decl))?;
    let o_span = span(&o, oc)?;
    let block = &orig[o_span.0..o_span.1];
    let c = atp_lean::source::parse(text);
    match c
        .commands
        .iter()
        .find(|x| x.full_name.as_deref() == Some(decl))
    {
        Some(cc) => {
            let (a, b) = span(&c, cc)?;
            Some(format!("{}{}{}", &text[..a], block, &text[b..]))
        }
        None => {
            let mut t = text.trim_end().to_string();
            t.push_str("\n\n");
            t.push_str(block);
            t.push('\n');
            Some(t)
        }
    }
}

fn span(f: &atp_lean::source::SourceFile, c: &atp_lean::source::Command) -> Option<(usize, usize)> {
    let first = f.tokens.get(c.tokens.start)?;
    let last = f.tokens.get(c.tokens.end.checked_sub(1)?)?;
    Some((first.start, last.end))
}

/// `rel → text` of the workdir's Lean sources, read without following links.
fn lean_texts(wd: &Path) -> std::io::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for e in atp_lean::walk::walk(wd)? {
        if e.kind == atp_lean::walk::EntryKind::File && atp_lean::walk::is_lean_source(&e.rel) {
            if let Some(t) = safe_fs::read(wd, &e.rel, atp_prover::workdir::MAX_LEAN_FILE_BYTES) {
                out.insert(e.rel.clone(), String::from_utf8_lossy(&t).into_owned());
            }
        }
    }
    Ok(out)
}

/// Write `text` to `rel` (relative to the workdir) through the sandbox, so every backend has it.
async fn write_through(session: &dyn ComputeSession, rel: &str, text: &str) -> Result<(), String> {
    let cmd = format!("mkdir -p \"$(dirname {q})\" && cat > {q}", q = sq(rel));
    let r = session
        .exec_wait(
            &cmd,
            ExecOptions {
                timeout: Some(Duration::from_secs(60)),
                stdin: Some(text.as_bytes().to_vec().into()),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    if r.exit_code != 0 {
        return Err(format!("exit {}: {}", r.exit_code, r.stderr.trim()));
    }
    Ok(())
}

/// What Numina's helpers spent, priced.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ledger {
    pub calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    /// `backend:model` → calls, tokens, cost (`null` when unpriced).
    pub breakdown: BTreeMap<String, Value>,
    /// Models not in the price table (their cost is not counted).
    pub unpriced: Vec<String>,
}

impl Ledger {
    /// Price the ledger's lines (malformed lines are skipped).
    pub fn from_jsonl(text: &str, prices: &PriceTable) -> Ledger {
        #[derive(Default)]
        struct Acc {
            calls: u64,
            input: u64,
            output: u64,
            cost: Option<f64>,
        }
        let mut l = Ledger::default();
        let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line.trim()) else {
                continue;
            };
            let model = v.get("model").and_then(Value::as_str).unwrap_or("unknown");
            let backend = v
                .get("backend")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let usage = Usage {
                input_tokens: v.get("input_tokens").and_then(Value::as_u64).unwrap_or(0),
                output_tokens: v.get("output_tokens").and_then(Value::as_u64).unwrap_or(0),
                ..Default::default()
            };
            l.calls += 1;
            l.input_tokens += usage.input_tokens;
            l.output_tokens += usage.output_tokens;
            let a = acc.entry(format!("{backend}:{model}")).or_default();
            a.calls += 1;
            a.input += usage.input_tokens;
            a.output += usage.output_tokens;
            match prices.cost(model, &usage) {
                Some(c) => {
                    a.cost = Some(a.cost.unwrap_or(0.0) + c);
                    l.cost_usd += c;
                }
                None => {
                    if !l.unpriced.iter().any(|m| m == model) {
                        l.unpriced.push(model.to_string());
                    }
                }
            }
        }
        l.breakdown = acc
            .into_iter()
            .map(|(k, a)| {
                (
                    k,
                    json!({"calls": a.calls, "input_tokens": a.input, "output_tokens": a.output, "cost_usd": a.cost}),
                )
            })
            .collect();
        l
    }
}

fn subdirs(d: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(d)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

fn clip(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_reasons() {
        assert_eq!(
            end_reason(Some("done\nEND_REASON:COMPLETE\n"), Some("success")),
            Some(EndReason::Complete)
        );
        assert_eq!(
            end_reason(
                Some("END_REASON:COMPLETE\nmore\n  end_reason:limit  "),
                None
            ),
            Some(EndReason::Limit)
        );
        assert_eq!(
            end_reason(Some("END_REASON:SELECTED_TARGET_COMPLETE"), None),
            Some(EndReason::SelectedTargetComplete)
        );
        assert_eq!(
            end_reason(Some("no line"), Some("success")),
            Some(EndReason::Complete)
        );
        assert_eq!(
            end_reason(None, Some("error_max_turns")),
            Some(EndReason::Limit)
        );
        assert_eq!(
            end_reason(Some("END_REASON:MAYBE"), Some("error_during_execution")),
            None
        );
    }

    #[test]
    fn the_ledger_prices_known_models_and_flags_the_rest() {
        let text = concat!(
            r#"{"backend":"openai","model":"gpt-5.4","input_tokens":1000000,"output_tokens":1000000}"#,
            "\n",
            r#"{"backend":"gemini","model":"gemini-9-ultra","input_tokens":10,"output_tokens":5}"#,
            "\nnot json\n"
        );
        let l = Ledger::from_jsonl(text, &PriceTable::builtin());
        assert_eq!(l.calls, 2);
        assert!((l.cost_usd - 17.5).abs() < 1e-9, "{}", l.cost_usd);
        assert_eq!(l.unpriced, vec!["gemini-9-ultra".to_string()]);
        assert_eq!(
            l.breakdown["gemini:gemini-9-ultra"]["cost_usd"],
            Value::Null
        );
        assert_eq!(l.breakdown["openai:gpt-5.4"]["calls"], json!(1));
    }

    const ORIG: &str = "import Mathlib\n\nnamespace X\n\ntheorem a (n : ℕ) : n + 0 = n := by\n  sorry\n\ntheorem b (n : ℕ) : 2 * n = n + n := by\n  sorry\n\nend X\n";

    fn files(t: &str) -> BTreeMap<String, String> {
        [("A.lean".to_string(), t.to_string())].into()
    }

    #[test]
    fn a_weakened_statement_is_restored_and_other_proofs_kept() {
        let now = ORIG
            .replace("n + 0 = n := by\n  sorry", "True := by\n  trivial")
            .replace("n + n := by\n  sorry", "n + n := by\n  omega");
        assert!(!statement_violations(&files(&now), &files(ORIG)).is_empty());
        let r = restored(&files(&now), &files(ORIG));
        let fixed = &r["A.lean"];
        assert!(statement_violations(&r, &files(ORIG)).is_empty(), "{fixed}");
        assert!(
            fixed.contains("theorem a (n : ℕ) : n + 0 = n := by\n  sorry"),
            "{fixed}"
        );
        assert!(fixed.contains("omega"), "the other proof is kept: {fixed}");
    }

    #[test]
    fn a_removed_theorem_is_appended_and_a_lost_import_restores_the_file() {
        let removed = ORIG.replace("theorem b (n : ℕ) : 2 * n = n + n := by\n  sorry\n", "");
        let r = restored(&files(&removed), &files(ORIG));
        assert!(
            statement_violations(&r, &files(ORIG)).is_empty(),
            "{}",
            r["A.lean"]
        );
        let no_import = ORIG.replace("import Mathlib\n", "").replace("sorry", "rfl");
        let r = restored(&files(&no_import), &files(ORIG));
        assert_eq!(r["A.lean"], ORIG);
        let gone: BTreeMap<String, String> = BTreeMap::new();
        let r = restored(&gone, &files(ORIG));
        assert_eq!(r["A.lean"], ORIG);
        assert!(restored(&files(ORIG), &files(ORIG)).is_empty());
    }
}
