//! [`SampleProver`]: pass@k whole-proof generation.
//!
//! k samples run as k independent chains: round 0 takes its answer from a request shared with
//! up to `per_request − 1` other samples (`n` choices), then each round extracts the code,
//! splices it into the task, and verifies the candidate in the run's one verification sandbox
//! ([`VerifyPool`]); a failed candidate's findings are fed back for up to `rounds` more rounds.
//! At most `concurrency` requests and `batch_workers` verifications are in flight. With
//! `stop_on_first`, the first verified candidate stops everything else.
//!
//! Output: `logs/samples/NNN/rR/` per sample and round (`answer.md`, `project/` — the candidate
//! —, `compile.log`), one line per event in `logs/stdout.txt`, and the best candidate (the
//! verified one with the lowest index, else the last one built) copied into `OUT/wd`, which the
//! lifecycle verifies again in a fresh sandbox. Per-sample verdicts, tokens, cost and times, the
//! pass@k figures and the exact sampling parameters go to `result.json`'s metadata.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use atp_lean::LeanProject;
use atp_prover::{
    AuthStatus, EnvSource, GenOutcome, GenerateContext, Generation, Preparation, PrepareContext,
    ProgressEvent, ProveError, Prover, ProverInfo, ProverKind, Usage,
};
use atp_verify::Verification;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{OnceCell, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::batch::{needs_serial, VerifyPool};
use crate::chat::{ApiKey, ChatClient, ChatError, Message, Sampling};
use crate::config::SampleConfig;
use crate::extract::{extract_lean, NoCode};
use crate::splice::{splice_file, Unit};
use crate::template::{correction, template_hash, Template};

/// Largest feedback text sent back to the model per unit.
const MAX_FEEDBACK: usize = 6000;
/// How long stopped chains may take to wind down.
const WIND_DOWN: Duration = Duration::from_secs(10);

/// Whole-proof sampling from an OpenAI-compatible endpoint.
#[derive(Debug, Clone)]
pub struct SampleProver {
    pub config: SampleConfig,
    env: EnvSource,
}

impl SampleProver {
    pub fn new(config: SampleConfig, env: EnvSource) -> Self {
        SampleProver { config, env }
    }
}

#[async_trait]
impl Prover for SampleProver {
    fn info(&self) -> ProverInfo {
        let t = self.config.template();
        let record = self.config.record(&template_hash(&t, self.config.rounds));
        let config = record
            .as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        ProverInfo {
            name: "sample".into(),
            kind: ProverKind::Sampling,
            model: self.config.model.clone(),
            effort: None,
            config,
        }
    }

    fn auth(&self) -> AuthStatus {
        self.config.auth(&self.env)
    }

    async fn prepare(&self, _cx: &PrepareContext<'_>) -> Result<Preparation, ProveError> {
        self.config.validate().map_err(ProveError::InvalidInput)?;
        Ok(Preparation {
            sandbox: None,
            private: None,
        })
    }

    async fn generate(&self, cx: GenerateContext<'_>) -> Generation {
        match Run::setup(self, &cx) {
            Ok(run) => run.go(&cx).await,
            Err(g) => *g,
        }
    }
}

/// One answer for one unit.
#[derive(Debug, Clone)]
struct Answer {
    text: String,
    finish_reason: Option<String>,
    /// This answer's share of its request's usage.
    usage: Usage,
    /// Wall time of the request it came from.
    secs: f64,
    seed: Option<u64>,
}

/// Why a request gave no answer.
#[derive(Debug, Clone)]
enum ReqError {
    Chat(ChatError),
    Stopped,
}

/// What one round of a sample came to.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct RoundRecord {
    round: u32,
    verdict: String,
    reason: Option<String>,
    finish_reasons: Vec<Option<String>>,
    violations: Vec<String>,
    input_tokens: u64,
    output_tokens: u64,
    generation_s: f64,
    verification_s: f64,
}

/// A sample's record in result.json.
#[derive(Debug, Clone, serde::Serialize)]
struct SampleRecord {
    index: usize,
    verdict: String,
    reason: Option<String>,
    seed: Option<u64>,
    input_tokens: u64,
    cached_input_tokens: u64,
    output_tokens: u64,
    cost_usd: Option<f64>,
    generation_s: f64,
    verification_s: f64,
    /// `logs/samples/NNN`.
    dir: String,
    rounds: Vec<RoundRecord>,
    #[serde(skip)]
    usage: Usage,
    /// The last candidate built (project directory), if any.
    #[serde(skip)]
    candidate: Option<PathBuf>,
}

/// One round-0 request whose answers up to `per_request` samples share.
type SharedRequest = OnceCell<Result<Vec<Answer>, ReqError>>;

/// The answers of one file: the whole-file code, else the per-declaration codes.
type FileCodes<'c> = (Option<&'c str>, Vec<(&'c crate::splice::DeclRef, &'c str)>);

struct Run<'a> {
    cfg: &'a SampleConfig,
    model: String,
    client: ChatClient,
    template: Template,
    units: Vec<Unit>,
    /// Task text of every target file with a `sorry`.
    sources: BTreeMap<String, String>,
    task_dir: PathBuf,
    samples_dir: PathBuf,
    stdout: PathBuf,
    original: LeanProject,
    serial: bool,
    instructions: Option<String>,
    /// `[unit][batch]`: the round-0 request shared by up to `per_request` samples.
    batches: Vec<Vec<SharedRequest>>,
    requests: Semaphore,
    stop: CancellationToken,
    fatal: Mutex<Option<(String, String)>>,
    records: Mutex<Vec<SampleRecord>>,
    usage: Mutex<Usage>,
    requests_made: Mutex<u64>,
    model_reported: Mutex<Option<String>>,
    prices: &'a atp_prover::PriceTable,
    progress: atp_prover::ProgressSink,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn secs(d: Duration) -> f64 {
    atp_prover::secs(d)
}

/// Split `u` over `n` answers (the remainder to the first).
fn share(u: &Usage, n: usize, i: usize) -> Usage {
    let n = n.max(1) as u64;
    let part = |x: u64| x / n + if i == 0 { x % n } else { 0 };
    Usage {
        input_tokens: part(u.input_tokens),
        cached_input_tokens: part(u.cached_input_tokens),
        output_tokens: part(u.output_tokens),
        ..Usage::default()
    }
}

/// The unbiased pass@j estimate from `n` samples with `c` verified (Chen et al. 2021):
/// `1 − C(n−c, j) / C(n, j)`.
pub fn pass_at(n: u64, c: u64, j: u64) -> f64 {
    if j == 0 || j > n {
        return f64::NAN;
    }
    if n - c < j {
        return 1.0;
    }
    let mut p = 1.0;
    for i in (n - c + 1)..=n {
        p *= 1.0 - j as f64 / i as f64;
    }
    1.0 - p
}

impl<'a> Run<'a> {
    fn setup(p: &'a SampleProver, cx: &'a GenerateContext<'_>) -> Result<Run<'a>, Box<Generation>> {
        fn fail(kind: &str, e: impl std::fmt::Display) -> Box<Generation> {
            Box::new(Generation::failed(kind, e))
        }
        let cfg = &p.config;
        cfg.validate().map_err(|e| fail("invalid_input", e))?;
        let model = cfg.model.clone().unwrap_or_default();
        let key = p.env.get(cfg.key_var()).map(ApiKey::new);
        let client = ChatClient::new(cfg.api_base(), key, cfg.client.clone())
            .map_err(|e| fail("invalid_input", e))?;
        let task_dir = cx.layout.task();
        let original = LeanProject::open(&task_dir).map_err(|e| fail(e.kind(), e))?;
        let all = original.sources().map_err(|e| fail(e.kind(), e))?;
        let targets = cx.task.target_files().map_err(|e| fail(e.kind(), e))?;
        let sources: BTreeMap<String, String> = all
            .iter()
            .filter(|(k, _)| targets.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let units = crate::splice::units(&sources, cfg.splice);
        let k = cfg.samples as usize;
        let n = cfg.per_request as usize;
        let batches = units
            .iter()
            .map(|_| (0..k.div_ceil(n)).map(|_| OnceCell::new()).collect())
            .collect();
        Ok(Run {
            cfg,
            model,
            client,
            template: cfg.template(),
            units,
            sources,
            task_dir,
            samples_dir: cx.layout.logs().join("samples"),
            stdout: cx.layout.stdout(),
            serial: needs_serial(&all),
            original,
            instructions: cx.task.user_prompt.clone(),
            batches,
            requests: Semaphore::new(cfg.concurrency),
            stop: CancellationToken::new(),
            fatal: Mutex::new(None),
            records: Mutex::new(
                (0..k)
                    .map(|i| SampleRecord {
                        index: i,
                        verdict: "not_started".into(),
                        reason: None,
                        seed: None,
                        input_tokens: 0,
                        cached_input_tokens: 0,
                        output_tokens: 0,
                        cost_usd: None,
                        generation_s: 0.0,
                        verification_s: 0.0,
                        dir: format!("logs/samples/{i:03}"),
                        rounds: Vec::new(),
                        usage: Usage::default(),
                        candidate: None,
                    })
                    .collect(),
            ),
            usage: Mutex::new(Usage::default()),
            requests_made: Mutex::new(0),
            model_reported: Mutex::new(None),
            prices: cx.prices,
            progress: cx.progress.clone(),
        })
    }

    fn log(&self, line: &str) {
        tracing::info!("sample: {line}");
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stdout)
        {
            let _ = writeln!(f, "{line}");
        }
    }

    fn set_fatal(&self, kind: &str, msg: String) {
        let mut f = lock(&self.fatal);
        if f.is_none() {
            self.log(&format!("error: {msg}"));
            *f = Some((kind.to_string(), msg));
        }
        drop(f);
        self.stop.cancel();
    }

    fn with_record(&self, i: usize, f: impl FnOnce(&mut SampleRecord)) {
        if let Some(r) = lock(&self.records).get_mut(i) {
            f(r);
        }
    }

    fn prompt(&self, unit: &Unit) -> String {
        let source = self
            .sources
            .get(&unit.file)
            .map(String::as_str)
            .unwrap_or("");
        self.template
            .render(unit, source, self.instructions.as_deref())
    }

    /// One request of `n` choices (waits for a request slot; gives up when the run stops).
    async fn request(
        &self,
        messages: Vec<Message>,
        n: u32,
        seed: Option<u64>,
        deadline: Instant,
    ) -> Result<Vec<Answer>, ReqError> {
        let _slot = tokio::select! {
            s = self.requests.acquire() => s.map_err(|_| ReqError::Stopped)?,
            _ = self.stop.cancelled() => return Err(ReqError::Stopped),
        };
        let sampling = Sampling {
            model: self.model.clone(),
            temperature: self.cfg.temperature,
            top_p: self.cfg.top_p,
            max_tokens: self.cfg.max_tokens,
        };
        let started = Instant::now();
        let r = tokio::select! {
            r = self.client.complete(&sampling, &messages, n, seed, deadline) => r,
            _ = self.stop.cancelled() => return Err(ReqError::Stopped),
        };
        let c = match r {
            Ok(c) => c,
            Err(e) => {
                if e.is_fatal() {
                    self.set_fatal(e.kind(), format!("sample: {e}"));
                }
                return Err(ReqError::Chat(e));
            }
        };
        let total = {
            let mut u = lock(&self.usage);
            u.add(&c.usage);
            u.clone()
        };
        *lock(&self.requests_made) += 1;
        if let Some(m) = &c.model {
            lock(&self.model_reported).get_or_insert_with(|| m.clone());
        }
        (self.progress)(ProgressEvent::Turn);
        (self.progress)(ProgressEvent::Usage(total));
        let took = secs(started.elapsed());
        let got = c.choices.len();
        Ok((0..n as usize)
            .map(|i| match c.choices.get(i) {
                Some(ch) => Answer {
                    text: ch.text.clone(),
                    finish_reason: ch.finish_reason.clone(),
                    usage: share(&c.usage, got, i),
                    secs: took,
                    seed,
                },
                None => Answer {
                    text: String::new(),
                    finish_reason: Some(format!(
                        "missing (the server returned {got} of {n} choices)"
                    )),
                    usage: Usage::default(),
                    secs: took,
                    seed,
                },
            })
            .collect())
    }

    /// Sample `i`'s round-0 answer for unit `u` (from the request shared with its batch).
    async fn first_answer(
        &self,
        u: usize,
        i: usize,
        deadline: Instant,
    ) -> Result<Answer, ReqError> {
        let n = self.cfg.per_request as usize;
        let b = i / n;
        let count = n.min(self.cfg.samples as usize - b * n) as u32;
        let seed = self.cfg.seed.map(|s| s.wrapping_add((b * n) as u64));
        let cell = &self.batches[u][b];
        let r = cell
            .get_or_init(|| async {
                self.request(
                    vec![Message::user(self.prompt(&self.units[u]))],
                    count,
                    seed,
                    deadline,
                )
                .await
            })
            .await;
        match r {
            Ok(answers) => answers.get(i % n).cloned().ok_or(ReqError::Stopped),
            Err(e) => Err(e.clone()),
        }
    }

    fn stopped_verdict(&self) -> &'static str {
        if lock(&self.fatal).is_some() {
            "error"
        } else {
            "skipped"
        }
    }

    /// The whole life of sample `i`.
    async fn chain(&self, i: usize, deadline: Instant, pool: &VerifyPool<'_>) {
        self.with_record(i, |r| r.verdict = "sampling".into());
        let mut convos: Vec<Vec<Message>> = self
            .units
            .iter()
            .map(|u| vec![Message::user(self.prompt(u))])
            .collect();
        let mut answers = Vec::new();
        for u in 0..self.units.len() {
            match self.first_answer(u, i, deadline).await {
                Ok(a) => answers.push(a),
                Err(e) => return self.give_up(i, 0, e),
            }
        }
        self.with_record(i, |r| r.seed = answers.first().and_then(|a| a.seed));
        for round in 0..=self.cfg.rounds {
            let mut rec = RoundRecord {
                round,
                finish_reasons: answers.iter().map(|a| a.finish_reason.clone()).collect(),
                input_tokens: answers.iter().map(|a| a.usage.input_tokens).sum(),
                output_tokens: answers.iter().map(|a| a.usage.output_tokens).sum(),
                generation_s: answers.iter().map(|a| a.secs).fold(0.0, f64::max),
                ..RoundRecord::default()
            };
            self.with_record(i, |r| {
                for a in &answers {
                    r.usage.add(&a.usage);
                }
                r.generation_s += rec.generation_s;
            });
            let dir = self
                .samples_dir
                .join(format!("{i:03}"))
                .join(format!("r{round}"));
            let feedback = match self.build(i, round, &answers, &dir) {
                Err(why) => {
                    rec.verdict = "no_code".into();
                    rec.reason = Some(why.clone());
                    self.log(&format!("sample {i} round {round}: no candidate: {why}"));
                    vec![format!("{why}. Answer with the complete Lean 4 code in one ```lean code block."); self.units.len()]
                }
                Ok(project) => {
                    if self.stop.is_cancelled() {
                        rec.verdict = self.stopped_verdict().into();
                        self.finish_round(i, rec);
                        return;
                    }
                    self.with_record(i, |r| r.verdict = "verifying".into());
                    let started = Instant::now();
                    let v = tokio::select! {
                        v = pool.verify(&project) => v,
                        _ = self.stop.cancelled() => {
                            rec.verdict = self.stopped_verdict().into();
                            rec.verification_s = secs(started.elapsed());
                            self.finish_round(i, rec);
                            return;
                        }
                    };
                    rec.verification_s = secs(started.elapsed());
                    match v {
                        Err(e) => {
                            // An infrastructure failure is an error, never a verdict.
                            rec.verdict = "error".into();
                            rec.reason = Some(e.to_string());
                            self.finish_round(i, rec);
                            self.set_fatal(
                                e.kind(),
                                format!("sample: verifying the candidates: {e}"),
                            );
                            return;
                        }
                        Ok(v) => {
                            let _ = std::fs::write(dir.join("compile.log"), &v.compile_log);
                            rec.violations = v
                                .report
                                .violations
                                .iter()
                                .map(|x| x.kind.to_string())
                                .collect();
                            if v.report.verified {
                                rec.verdict = "verified".into();
                                self.log(&format!("sample {i} round {round}: verified"));
                                self.finish_round(i, rec);
                                (self.progress)(ProgressEvent::Note(format!(
                                    "sample {i} verified"
                                )));
                                if self.cfg.stop_on_first {
                                    self.log(
                                        "stopping at the first verified sample (--stop-on-first)",
                                    );
                                    self.stop.cancel();
                                }
                                return;
                            }
                            rec.verdict = if v.report.timed_out {
                                "timeout".into()
                            } else {
                                "unverified".into()
                            };
                            rec.reason = Some(v.report.reason());
                            self.log(&format!(
                                "sample {i} round {round}: {}: {}",
                                rec.verdict,
                                v.report.reason()
                            ));
                            self.units
                                .iter()
                                .map(|u| feedback_for(&v, &u.file))
                                .collect()
                        }
                    }
                }
            };
            let last_round = round == self.cfg.rounds;
            self.finish_round(i, rec);
            if last_round {
                return;
            }
            // Self-correction: each unit's conversation gets its answer and the findings.
            let mut next = Vec::new();
            for (u, convo) in convos.iter_mut().enumerate() {
                convo.push(Message::assistant(answers[u].text.clone()));
                convo.push(Message::user(correction(&feedback[u])));
                let seed = self
                    .cfg
                    .seed
                    .map(|s| s.wrapping_add(i as u64 + (round as u64 + 1) * 1_000_003));
                match self.request(convo.clone(), 1, seed, deadline).await {
                    Ok(mut a) if !a.is_empty() => next.push(a.remove(0)),
                    Ok(_) => return self.give_up(i, round + 1, ReqError::Stopped),
                    Err(e) => return self.give_up(i, round + 1, e),
                }
            }
            answers = next;
        }
    }

    fn give_up(&self, i: usize, round: u32, e: ReqError) {
        let (verdict, reason) = match e {
            ReqError::Stopped => (self.stopped_verdict().to_string(), None),
            ReqError::Chat(ChatError::Deadline { .. }) => ("timeout".to_string(), Some(e_str(&e))),
            ReqError::Chat(_) => ("error".to_string(), Some(e_str(&e))),
        };
        if let Some(r) = &reason {
            self.log(&format!("sample {i} round {round}: {verdict}: {r}"));
        }
        self.finish_round(
            i,
            RoundRecord {
                round,
                verdict,
                reason,
                ..RoundRecord::default()
            },
        );
    }

    fn finish_round(&self, i: usize, rec: RoundRecord) {
        self.with_record(i, |r| {
            r.verdict = rec.verdict.clone();
            r.reason = rec.reason.clone();
            r.verification_s += rec.verification_s;
            r.rounds.push(rec);
        });
    }

    /// Extract, splice and write sample `i`'s candidate for `round` under `dir`; the reason
    /// when there is none.
    fn build(
        &self,
        i: usize,
        round: u32,
        answers: &[Answer],
        dir: &Path,
    ) -> Result<LeanProject, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut codes = Vec::new();
        for (u, a) in answers.iter().enumerate() {
            let name = if answers.len() == 1 {
                "answer.md".to_string()
            } else {
                format!("answer-{u}.md")
            };
            let _ = std::fs::write(dir.join(name), &a.text);
            match extract_lean(&a.text) {
                Ok(c) => codes.push(c),
                Err(e) => {
                    let cut = a.finish_reason.as_deref() == Some("length");
                    return Err(match (e, cut) {
                        (_, true) => format!("{}: the answer was cut at the output limit (finish_reason length) with no complete ```lean block", self.units[u].label()),
                        (NoCode::NoBlock, false) => format!("{}: {}", self.units[u].label(), NoCode::NoBlock),
                        (e, false) => format!("{}: {e}", self.units[u].label()),
                    });
                }
            }
        }
        let project = dir.join("project");
        atp_lean::walk::copy_project(&self.task_dir, &project)
            .map_err(|e| format!("copying the task: {e}"))?;
        let mut files: BTreeMap<&str, FileCodes<'_>> = BTreeMap::new();
        for (u, unit) in self.units.iter().enumerate() {
            let e = files.entry(unit.file.as_str()).or_default();
            match &unit.decl {
                None => e.0 = Some(codes[u].as_str()),
                Some(d) => e.1.push((d, codes[u].as_str())),
            }
        }
        for (file, (whole, decls)) in files {
            let original = self.sources.get(file).map(String::as_str).unwrap_or("");
            let text = splice_file(original, whole, &decls).map_err(|e| format!("{file}: {e}"))?;
            std::fs::write(project.join(file), text).map_err(|e| format!("{file}: {e}"))?;
        }
        self.with_record(i, |r| r.candidate = Some(project.clone()));
        let _ = round;
        LeanProject::open(&project).map_err(|e| e.to_string())
    }

    async fn go(self, cx: &GenerateContext<'_>) -> Generation {
        let k = self.cfg.samples as usize;
        let t = template_hash(&self.template, self.cfg.rounds);
        self.log(&format!(
            "sampling {k} candidates of {} unit(s) from {} (model {}), template {} sha256 {t}",
            self.units.len(),
            self.client.url(),
            self.model,
            self.template.origin
        ));
        if self.units.is_empty() {
            self.log("the task has no `sorry`: nothing to sample");
            let mut g = Generation::new(GenOutcome::Finished);
            g.metadata.insert("samples".into(), json!([]));
            g.metadata.insert(
                "note".into(),
                json!("the task has no sorry: nothing was sampled"),
            );
            return g;
        }
        let workers = if self.serial {
            1
        } else {
            self.cfg.batch_workers
        };
        if self.serial && self.cfg.batch_workers > 1 {
            self.log("the task's files import each other: candidates are verified one at a time");
        }
        let lifetime = cx.remaining() + cx.verifier.options().timeout + Duration::from_secs(300);
        let pool = match VerifyPool::new(cx.verifier, &self.original, workers, lifetime) {
            Ok(p) => p,
            Err(e) => {
                return Generation::failed(
                    "io",
                    format!("cannot create a temporary directory: {e}"),
                )
            }
        };
        let deadline = cx.deadline;
        let mut outcome = GenOutcome::Finished;
        {
            let chains = futures::stream::iter(0..k)
                .map(|i| self.chain(i, deadline, &pool))
                .buffer_unordered(k.max(1))
                .collect::<Vec<()>>();
            tokio::pin!(chains);
            let mut stopping: Option<Instant> = None;
            loop {
                let wind_down = async {
                    match stopping {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = &mut chains => break,
                    _ = tokio::time::sleep_until(deadline), if stopping.is_none() => {
                        self.log("the generation budget ran out");
                        outcome = GenOutcome::TimedOut;
                        self.stop.cancel();
                        stopping = Some(Instant::now() + WIND_DOWN);
                    }
                    _ = cx.cancel.cancelled(), if stopping.is_none() => {
                        self.log("cancelled");
                        outcome = GenOutcome::Cancelled;
                        self.stop.cancel();
                        stopping = Some(Instant::now() + WIND_DOWN);
                    }
                    _ = wind_down => break,
                }
            }
        }
        let opened = (pool.opened(), pool.verifications());
        if let Err(e) = pool.close().await {
            self.log(&format!("warning: closing the verification sandbox: {e}"));
        }
        self.finish(outcome, opened, cx)
    }

    /// `opened`: whether the build sandbox was created, and the candidates verified in it.
    fn finish(
        self,
        outcome: GenOutcome,
        opened: (bool, usize),
        cx: &GenerateContext<'_>,
    ) -> Generation {
        let model = lock(&self.model_reported).clone();
        let price_model = model.clone().unwrap_or_else(|| self.model.clone());
        let mut records = std::mem::take(&mut *lock(&self.records));
        for r in records.iter_mut() {
            r.input_tokens = r.usage.input_tokens;
            r.cached_input_tokens = r.usage.cached_input_tokens;
            r.output_tokens = r.usage.output_tokens;
            r.cost_usd = self.prices.cost(&price_model, &r.usage);
            if matches!(r.verdict.as_str(), "not_started" | "sampling" | "verifying") {
                r.verdict = match outcome {
                    GenOutcome::TimedOut => "timeout".into(),
                    GenOutcome::Cancelled => "cancelled".into(),
                    _ => self.stopped_verdict().into(),
                };
            }
        }
        let k = records.len() as u64;
        let verified: Vec<usize> = records
            .iter()
            .filter(|r| r.verdict == "verified")
            .map(|r| r.index)
            .collect();
        let c = verified.len() as u64;
        let best = verified.first().copied().or_else(|| {
            records
                .iter()
                .rev()
                .find(|r| r.candidate.is_some())
                .map(|r| r.index)
        });
        let mut copy_error = None;
        if let Some(b) = best {
            if let Some(dir) = records[b].candidate.clone() {
                for file in self.sources.keys() {
                    if let Err(e) = std::fs::copy(dir.join(file), cx.wd.join(file)) {
                        copy_error =
                            Some(format!("copying sample {b}'s {file} into the workdir: {e}"));
                    }
                }
                self.log(&format!("sample {b} copied into the workdir"));
            }
        }
        let complete = records
            .iter()
            .all(|r| matches!(r.verdict.as_str(), "verified" | "unverified" | "no_code"));
        let mut g = Generation::new(outcome.clone());
        g.usage = lock(&self.usage).clone();
        g.usage.turns = Some(*lock(&self.requests_made));
        g.model = model;
        let m = &mut g.metadata;
        m.insert("pass_at_k".into(), json!(c > 0));
        m.insert("k".into(), json!(k));
        m.insert("verified_count".into(), json!(c));
        m.insert("verified_samples".into(), json!(verified));
        m.insert("best_sample".into(), json!(best));
        m.insert(
            "stopped_early".into(),
            json!(self.cfg.stop_on_first && c > 0 && !complete),
        );
        m.insert("all_samples_judged".into(), json!(complete));
        if complete {
            // Unbiased estimates are only meaningful when every sample was judged.
            let mut est = serde_json::Map::new();
            let mut j = 1u64;
            while j <= k {
                est.insert(j.to_string(), json!(pass_at(k, c, j)));
                j *= 2;
            }
            est.insert(k.to_string(), json!(pass_at(k, c, k)));
            m.insert("pass_at".into(), Value::Object(est));
        }
        m.insert(
            "sampling".into(),
            self.cfg
                .record(&template_hash(&self.template, self.cfg.rounds)),
        );
        m.insert(
            "units".into(),
            json!(self.units.iter().map(Unit::label).collect::<Vec<_>>()),
        );
        m.insert(
            "verification".into(),
            json!({"build_sandboxes": u8::from(opened.0), "candidates_verified": opened.1}),
        );
        m.insert(
            "samples".into(),
            serde_json::to_value(&records).unwrap_or_default(),
        );
        let fatal = lock(&self.fatal).clone();
        if let Some(e) = copy_error {
            m.insert("error".into(), json!(e));
        }
        if let Some((kind, msg)) = fatal {
            m.insert("error".into(), json!(msg));
            if c == 0 && outcome == GenOutcome::Finished {
                let mut f = Generation::failed(&kind, &msg);
                f.usage = g.usage;
                f.model = g.model;
                f.metadata = g.metadata;
                return f;
            }
        }
        g
    }
}

fn e_str(e: &ReqError) -> String {
    match e {
        ReqError::Chat(c) => c.to_string(),
        ReqError::Stopped => "stopped".into(),
    }
}

/// What the model is told about its failed candidate for `file`: the findings, then Lean's
/// output for the file.
fn feedback_for(v: &Verification, file: &str) -> String {
    let mut s = String::new();
    for x in &v.report.violations {
        if x.file.is_empty() || x.file == file {
            s.push_str(&format!("{}: {}: {}\n", x.location(), x.kind, x.message));
        }
    }
    let header = format!("== {file} (");
    if let Some(start) = v.compile_log.find(&header) {
        let rest = &v.compile_log[start..];
        let end = rest[header.len()..]
            .find("\n== ")
            .map_or(rest.len(), |e| e + header.len() + 1);
        s.push('\n');
        s.push_str(&rest[..end]);
    }
    if s.len() > MAX_FEEDBACK {
        let mut cut = MAX_FEEDBACK;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("\n… (truncated)");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_at_is_the_unbiased_estimator() {
        assert_eq!(pass_at(10, 0, 1), 0.0);
        assert!((pass_at(10, 1, 1) - 0.1).abs() < 1e-12);
        assert!((pass_at(4, 2, 2) - (1.0 - 1.0 / 6.0)).abs() < 1e-12);
        assert_eq!(pass_at(4, 3, 2), 1.0);
        assert_eq!(pass_at(8, 1, 8), 1.0);
        assert!(pass_at(3, 1, 4).is_nan());
    }

    #[test]
    fn usage_shares_add_up() {
        let u = Usage {
            input_tokens: 1001,
            cached_input_tokens: 10,
            output_tokens: 302,
            ..Usage::default()
        };
        let mut sum = Usage::default();
        for i in 0..3 {
            sum.add(&share(&u, 3, i));
        }
        assert_eq!(
            (sum.input_tokens, sum.cached_input_tokens, sum.output_tokens),
            (1001, 10, 302)
        );
    }
}
