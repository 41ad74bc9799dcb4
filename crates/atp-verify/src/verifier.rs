//! The verifier: source checks, a build sandbox that compiles the candidate, a check sandbox that
//! compiles the original and runs the checker over both, and the [`VerificationReport`] drawn
//! from all of them.
//!
//! Trust: the build sandbox runs the candidate's code (Lean elaborates it), so nothing it prints
//! is believed beyond "this file compiled to these bytes" — and even its `.olean` bytes are only
//! data to the checker. The check sandbox is fresh from the image and never runs candidate code:
//! the original (trusted) is compiled there first, then the candidate's `.olean`s are written as
//! files and `atp-check` reads them without executing them. `verified` needs the checker's
//! agreement: every candidate module replayed by the kernel, every obligation of the original
//! present with the same elaborated statement, no axiom outside the policy, no `sorryAx`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use atp_backend::{
    BackendError, CommandResult, ComputeBackend, ComputeSession, ExecOptions, NetworkMode, RunId,
    SessionOptions,
};
use tokio::time::Instant;
use tracing::{info, Instrument};

use crate::check::{module_name, source_checks, VerifyPolicy};
use crate::holes::{HoleInput, HolePlan};
use crate::parse::{parse_messages, Severity};
use crate::protocol::{parse_checker, CheckerReport, ObligationStatus};
use crate::report::{FileReport, VerificationReport, Violation, ViolationKind};
use crate::script::{
    build_script, check_script, original_script, parse_frames, Frames, RUN_STDIN_SCRIPT,
};
use crate::staging::{compile_copy, display_decl};
use atp_image::ImagePins;
use atp_lean::{LeanProject, ProjectError};

/// The workdir of the verifier's sandboxes: empty, because sources and `.olean`s travel in the
/// scripts, so nothing is ever written into (or read back from) the candidate's directory.
fn empty_workdir() -> Result<tempfile::TempDir, VerifyError> {
    tempfile::Builder::new()
        .prefix("atp-verify-wd-")
        .tempdir()
        .map_err(|e| {
            VerifyError::InvalidInput(format!(
                "cannot create a temporary directory: {e} — check TMPDIR"
            ))
        })
}

/// Default verifier time budget.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Extra time past the budget for creating and tearing down the verifier's own sandboxes.
pub const VERIFY_BACKSTOP_MARGIN: Duration = Duration::from_secs(180);

/// Errors that prevent a verdict (bad input, incompatible or broken image, broken engine).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Project(#[from] ProjectError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("{0}")]
    InvalidInput(String),
    /// A verification script failed in the sandbox before it could frame its output (a broken
    /// image or sandbox, never a verdict on the candidate).
    #[error("the verifier's {stage} script failed in the sandbox: {message}")]
    Script {
        stage: &'static str,
        message: String,
    },
    /// The original task does not compile in the image.
    #[error("the original does not compile in this image: {0} — fix the task (it must compile with its `sorry`s)")]
    Original(String),
    /// The checker did not answer according to its protocol.
    #[error("the image's checker did not answer: {0} — rebuild the image with `atp build-image`")]
    Checker(String),
    /// The image failed its self-test; no verdict is drawn on it.
    #[error("image {image} failed atp's self-test at canary `{canary}`: {message} — run `atp doctor --self-test` for the table, rebuild the image with `atp build-image`")]
    SelfTest {
        image: String,
        canary: String,
        message: String,
    },
}

impl VerifyError {
    /// Short machine-readable name (for result.json).
    pub fn kind(&self) -> &'static str {
        match self {
            VerifyError::Project(e) => e.kind(),
            VerifyError::Backend(e) => e.kind(),
            VerifyError::InvalidInput(_) => "invalid_input",
            VerifyError::Script { .. } => "verifier_script",
            VerifyError::Original(_) => "original_does_not_compile",
            VerifyError::Checker(_) => "checker",
            VerifyError::SelfTest { .. } => "self_test_failed",
        }
    }
}

/// How to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Files compiled in parallel; `None`: the sandbox's `nproc`.
    pub workers: Option<usize>,
    /// The whole verification's budget; past it the verdict is `timeout`.
    pub timeout: Duration,
    pub policy: VerifyPolicy,
    /// Run id for the verifier's own sessions (a fresh one when `None`).
    pub run_id: Option<RunId>,
    /// Extra environment for the compiles (e.g. `LEAN_NUM_THREADS`).
    pub env: BTreeMap<String, String>,
    /// Run the image's self-test before the first verification on an image id (default
    /// `true`; see [`crate::selftest`]).
    pub self_test: bool,
    /// The answer key: full name of a definition hole → the official answer (a Lean term),
    /// checked by the checker (see [`crate::holes`]).
    pub answers: BTreeMap<String, String>,
    /// Extra labels on every sandbox the verifier opens (e.g. a benchmark cell's
    /// `atp.bench.*`), so each of them can be traced to what it verified.
    pub labels: BTreeMap<String, String>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            workers: None,
            timeout: DEFAULT_TIMEOUT,
            policy: VerifyPolicy::default(),
            run_id: None,
            env: BTreeMap::new(),
            self_test: true,
            answers: BTreeMap::new(),
            labels: BTreeMap::new(),
        }
    }
}

/// A verdict plus the raw material it was drawn from.
#[derive(Debug, Clone)]
pub struct Verification {
    pub report: VerificationReport,
    /// Per-file compiler output (`== rel (exit N) ==` headers), then the checker's messages.
    pub compile_log: String,
    /// The verification scripts' raw stdout/stderr.
    pub stdout: String,
    pub stderr: String,
    /// `rel path → text` of every file that was checked and compiled (read once, on the host).
    pub sources: BTreeMap<String, String>,
}

/// Verifies candidate projects over any [`ComputeBackend`].
#[derive(Debug, Clone)]
pub struct Verifier {
    backend: Arc<dyn ComputeBackend>,
    options: VerifyOptions,
}

impl Verifier {
    /// A verifier over `backend` with default options.
    pub fn new(backend: Arc<dyn ComputeBackend>) -> Self {
        Verifier {
            backend,
            options: VerifyOptions::default(),
        }
    }

    /// A verifier over the local Docker engine and `image`, networking disabled (feature
    /// `docker`).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), atp_verify::VerifyError> {
    /// use atp_lean::LeanProject;
    /// use atp_verify::Verifier;
    /// let verifier = Verifier::docker("open-atp:latest");
    /// let candidate = LeanProject::open("my-proof")?;
    /// let original = LeanProject::open("my-task")?;
    /// let v = verifier.verify(&candidate, Some(&original)).await?;
    /// println!("verified: {} ({})", v.report.verified, v.report.reason());
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "docker")]
    pub fn docker(image: &str) -> Self {
        let mut cfg = atp_docker::DockerConfig::for_image(image);
        cfg.network = NetworkMode::None;
        Self::new(Arc::new(atp_docker::DockerBackend::new(cfg)))
    }

    /// Replace the options.
    pub fn with_options(mut self, options: VerifyOptions) -> Self {
        self.options = options;
        self
    }

    pub fn options(&self) -> &VerifyOptions {
        &self.options
    }

    pub fn backend(&self) -> &Arc<dyn ComputeBackend> {
        &self.backend
    }

    /// The image's pins: its `atp.*` labels, else the skeleton pins built into atp (flagged
    /// [`atp_image::PinSource::SpecDefaults`]).
    pub async fn image_pins(&self) -> Result<ImagePins, VerifyError> {
        let info = self.backend.image_info().await?;
        Ok(ImagePins::from_labels(&info.labels).unwrap_or_else(ImagePins::builtin))
    }

    /// Verify `candidate` (against `original` when given) in fresh sandboxes.
    ///
    /// The compatibility gate runs first (it only reads the image's labels): an incompatible
    /// project fails with [`ProjectError::ToolchainMismatch`] / [`ProjectError::MathlibRevMismatch`]
    /// before any sandbox exists. Then, once per image id, the self-test.
    pub async fn verify(
        &self,
        candidate: &LeanProject,
        original: Option<&LeanProject>,
    ) -> Result<Verification, VerifyError> {
        let pins = self.image_pins().await?;
        candidate.check_compatible(&pins.lean())?;
        let prepared = Prepared::new(candidate, original, &self.options)?;
        if self.options.self_test {
            self.ensure_self_test().await?;
        }
        self.verify_prepared(prepared, None).await
    }

    /// The options of every sandbox the verifier opens: no network, the run's id, the budget
    /// plus room for setup, the image contract the scripts need, and `purpose` as a label.
    fn sandbox_options(&self, run_id: RunId, purpose: Option<&str>) -> SessionOptions {
        SessionOptions {
            network: NetworkMode::None,
            run_id: Some(run_id),
            timeout: Some(self.options.timeout + Duration::from_secs(120)),
            labels: self
                .options
                .labels
                .clone()
                .into_iter()
                .chain(purpose.map(|p| {
                    (
                        atp_backend::layout::LABEL_PURPOSE.to_string(),
                        p.to_string(),
                    )
                }))
                .collect(),
            requires: atp_backend::Requirements::commands(
                crate::script::SCRIPT_TOOLS
                    .iter()
                    .copied()
                    .chain(["lake", crate::script::CHECKER]),
            )
            .with_paths([crate::script::SKELETON_DIR]),
            ..Default::default()
        }
    }

    /// Verify prepared sources in fresh sandboxes, under the backstop.
    pub(crate) async fn verify_prepared(
        &self,
        p: Prepared,
        purpose: Option<&str>,
    ) -> Result<Verification, VerifyError> {
        let fallback = p.clone();
        let started = Instant::now();
        let run_id = self.options.run_id.clone().unwrap_or_default();
        let span = tracing::info_span!("verify", run_id = %run_id);
        // The sandboxes need no host files (sources and .oleans travel in the scripts): give
        // them an empty workdir, so nothing is written into the candidate's directory.
        let empty = empty_workdir()?;
        let work = async {
            let opts = || self.sandbox_options(run_id.clone(), purpose);
            let (build, check) = tokio::join!(
                self.backend.session(empty.path(), opts()),
                self.backend.session(empty.path(), opts())
            );
            let (build, check) = match (build, check) {
                (Ok(b), Ok(c)) => (b, c),
                (Ok(up), Err(e)) | (Err(e), Ok(up)) => {
                    let _ = up.close().await;
                    return Err(e.into());
                }
                (Err(e), Err(_)) => return Err(e.into()),
            };
            let out = self.run(build.as_ref(), check.as_ref(), p).await;
            let (a, b) = tokio::join!(build.close(), check.close());
            let v = out?;
            a?;
            b?;
            Ok(v)
        }
        .instrument(span);
        match tokio::time::timeout(self.options.timeout + VERIFY_BACKSTOP_MARGIN, work).await {
            Ok(r) => r,
            Err(_) => {
                let mut v = fallback.evaluate(&Runs::timed_out(), &self.options.policy)?;
                v.report.duration = started.elapsed();
                Ok(v)
            }
        }
    }

    /// Verify inside a caller's live session whose workdir holds `candidate`: the candidate is
    /// compiled there (the host copy is what is checked and compiled), and the original and the
    /// checker run in a fresh sandbox of this verifier's backend (never in the caller's, whose
    /// contents a prover may have changed).
    pub async fn verify_in_session(
        &self,
        session: &dyn ComputeSession,
        candidate: &LeanProject,
        original: Option<&LeanProject>,
    ) -> Result<Verification, VerifyError> {
        let prepared = Prepared::new(candidate, original, &self.options)?;
        if self.options.self_test {
            self.ensure_self_test().await?;
        }
        let empty = empty_workdir()?;
        let check = self
            .backend
            .session(
                empty.path(),
                self.sandbox_options(self.options.run_id.clone().unwrap_or_default(), None),
            )
            .await?;
        let out = self.run(session, check.as_ref(), prepared).await;
        let closed = check.close().await;
        let v = out?;
        closed?;
        Ok(v)
    }

    async fn exec(
        &self,
        session: &dyn ComputeSession,
        script: String,
        deadline: Instant,
    ) -> Result<(CommandResult, bool), VerifyError> {
        let budget = deadline.saturating_duration_since(Instant::now());
        if budget.is_zero() {
            return Ok((
                CommandResult {
                    exit_code: -1,
                    stdout: String::new(),
                    stderr: String::new(),
                    duration: Duration::ZERO,
                },
                true,
            ));
        }
        let opts = ExecOptions {
            timeout: Some(budget),
            kill_grace: Some(Duration::from_secs(5)),
            stdin: Some(script.into_bytes().into()),
            env: self.options.env.clone(),
        };
        match session.exec_wait(RUN_STDIN_SCRIPT, opts).await {
            Ok(r) => Ok((r, false)),
            Err(BackendError::CommandTimeout { partial, .. }) => Ok((*partial, true)),
            Err(e) => Err(e.into()),
        }
    }

    /// Run the scripts: build (candidate) and original concurrently, then the checker.
    async fn run(
        &self,
        build: &dyn ComputeSession,
        check: &dyn ComputeSession,
        p: Prepared,
    ) -> Result<Verification, VerifyError> {
        let started = Instant::now();
        let deadline = started + self.options.timeout;
        info!(
            build = build.id(),
            check = check.id(),
            files = p.sources.len(),
            "verifying"
        );
        let build_fut = self.exec(
            build,
            build_script(&p.copies, self.options.workers),
            deadline,
        );
        let orig_fut = async {
            match &p.original_copies {
                Some(o) => self
                    .exec(check, original_script(o, self.options.workers), deadline)
                    .await
                    .map(Some),
                None => Ok(None),
            }
        };
        let (b, o) = tokio::join!(build_fut, orig_fut);
        let (build_out, build_cut) = b?;
        let mut runs = Runs {
            stdout: build_out.stdout.clone(),
            stderr: build_out.stderr.clone(),
            timed_out: build_cut,
            ..Default::default()
        };
        runs.build = Some(script_frames(
            "build",
            &build_out,
            "ATP-BUILD 1",
            p.copies.len(),
            build_cut,
        )?);
        if let Some((orig_out, orig_cut)) = o? {
            runs.timed_out |= orig_cut;
            runs.stdout.push_str(&orig_out.stdout);
            runs.stderr.push_str(&orig_out.stderr);
            let n = p.original_copies.as_ref().map_or(0, BTreeMap::len);
            runs.original = Some(script_frames(
                "original",
                &orig_out,
                "ATP-ORIG 1",
                n,
                orig_cut,
            )?);
        }
        // The checker, over every candidate module that compiled.
        let oleans: BTreeMap<String, Vec<u8>> = runs
            .build
            .as_ref()
            .map(|f| {
                let rels: Vec<&String> = p.copies.keys().collect();
                f.oleans
                    .iter()
                    .map(|(i, bytes)| {
                        (
                            rels[*i].trim_end_matches(".lean").to_string(),
                            bytes.clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !runs.timed_out && !oleans.is_empty() {
            // a hole's check module whose official answer did not compile is left out (the
            // hole is then undecided)
            let orig_modules: Vec<String> = p
                .original_copies
                .as_ref()
                .map(|o| {
                    o.keys()
                        .enumerate()
                        .filter(|(i, k)| {
                            !p.holes.is_check_module(k)
                                || crate::holes::compiled(runs.original.as_ref(), *i)
                        })
                        .map(|(_, k)| module_name(k))
                        .collect()
                })
                .unwrap_or_default();
            let modules: BTreeSet<String> = oleans.keys().map(|k| k.replace('/', ".")).collect();
            let script = check_script(
                &oleans,
                &orig_modules,
                self.options.policy.allow_native_decide,
            );
            let (out, cut) = self.exec(check, script, deadline).await?;
            runs.timed_out |= cut;
            runs.stdout.push_str(&out.stdout);
            runs.stderr.push_str(&out.stderr);
            let frames = script_frames("check", &out, "ATP-CHECK 1", 1, cut)?;
            match frames.checker {
                Some((rc, stdout, stderr)) => {
                    runs.checker_log = stderr.clone();
                    match parse_checker(&stdout, &modules) {
                        Ok(r) if rc == 0 => runs.checker = Some(r),
                        Ok(_) => {
                            return Err(VerifyError::Checker(format!(
                                "it exited with status {rc}{}",
                                last_line(&stderr)
                                    .map(|l| format!(": {l}"))
                                    .unwrap_or_default()
                            )))
                        }
                        Err(e) => {
                            let why = if rc == 127 {
                                format!(
                                    "`atp-check` is not in the image (exit 127){}",
                                    last_line(&stderr)
                                        .map(|l| format!(": {l}"))
                                        .unwrap_or_default()
                                )
                            } else {
                                format!(
                                    "{e} (exit {rc}){}",
                                    last_line(&stderr)
                                        .map(|l| format!("; stderr: {l}"))
                                        .unwrap_or_default()
                                )
                            };
                            return Err(VerifyError::Checker(why));
                        }
                    }
                }
                None if cut => {}
                None => return Err(VerifyError::Checker("it printed no frame".into())),
            }
        }
        let mut v = p.evaluate(&runs, &self.options.policy)?;
        v.report.duration = started.elapsed();
        Ok(v)
    }
}

fn last_line(s: &str) -> Option<&str> {
    s.lines().rev().map(str::trim).find(|l| !l.is_empty())
}

/// Frames of one script, or the script's failure as an error (10c: a script that failed before
/// framing — wrapper exit 125–127, a non-zero exit, malformed or missing frames — is never a
/// verdict).
fn script_frames(
    stage: &'static str,
    out: &CommandResult,
    header: &str,
    files: usize,
    cut: bool,
) -> Result<Frames, VerifyError> {
    let stderr_line = || {
        last_line(&out.stderr)
            .map(|l| format!("; stderr: {l}"))
            .unwrap_or_default()
    };
    if !cut && matches!(out.exit_code, 125..=127) {
        return Err(VerifyError::Script {
            stage,
            message: format!(
                "the sandbox could not run it (exit {}){}",
                out.exit_code,
                stderr_line()
            ),
        });
    }
    if !cut && out.exit_code != 0 {
        return Err(VerifyError::Script {
            stage,
            message: format!("it exited with status {}{}", out.exit_code, stderr_line()),
        });
    }
    parse_frames(&out.stdout, header, files, cut).map_err(|e| VerifyError::Script {
        stage,
        message: format!("{e}{}", stderr_line()),
    })
}

/// What the sandboxes produced.
#[derive(Debug, Clone, Default)]
pub(crate) struct Runs {
    pub build: Option<Frames>,
    pub original: Option<Frames>,
    pub checker: Option<CheckerReport>,
    pub checker_log: String,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Runs {
    fn timed_out() -> Self {
        Runs {
            timed_out: true,
            ..Default::default()
        }
    }
}

/// Everything computed on the host before the sandboxes run.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub sources: BTreeMap<String, String>,
    /// `rel → compile copy` of the candidate.
    pub copies: BTreeMap<String, String>,
    /// `rel → compile copy` of the original, when there is one.
    pub original_copies: Option<BTreeMap<String, String>>,
    pub source_violations: Vec<Violation>,
    /// Definition holes; their check modules are in `copies` / `original_copies` too.
    pub holes: HolePlan,
}

impl Prepared {
    /// Read the candidate (and original) and run the source checks.
    pub fn new(
        candidate: &LeanProject,
        original: Option<&LeanProject>,
        options: &VerifyOptions,
    ) -> Result<Self, VerifyError> {
        let sources = candidate.sources()?;
        if sources.is_empty() {
            return Err(VerifyError::InvalidInput(format!(
                "{}: the project has no .lean files — nothing to verify",
                candidate.root().display()
            )));
        }
        let orig = match original {
            Some(o) => Some(o.sources()?),
            None => None,
        };
        for (root, files) in [(candidate.root(), Some(&sources))]
            .into_iter()
            .chain(original.map(|o| (o.root(), orig.as_ref())))
        {
            if let Some(bad) = files
                .into_iter()
                .flat_map(|f| f.keys())
                .find(|k| !safe_rel_path(k))
            {
                return Err(VerifyError::InvalidInput(format!(
                    "{}: file name `{bad}` contains characters atp does not accept (quotes, `$`, `\\`, backquotes, whitespace, `..`) — rename it",
                    root.display()
                )));
            }
        }
        Ok(
            Self::from_sources(sources, orig.as_ref(), &options.policy, true)
                .with_holes(orig.as_ref(), &options.answers),
        )
    }

    /// Add the definition holes of `original` and the check modules of those with an answer
    /// in `answers` (see [`crate::holes`]).
    pub fn with_holes(
        mut self,
        original: Option<&BTreeMap<String, String>>,
        answers: &BTreeMap<String, String>,
    ) -> Self {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let holes = HolePlan::new(&self.sources, original, answers, &nonce);
        self.copies.extend(
            holes
                .candidate_modules()
                .iter()
                .map(|(k, v)| (k.clone(), compile_copy(v).text)),
        );
        if let Some(o) = self.original_copies.as_mut() {
            o.extend(
                holes
                    .original_modules()
                    .iter()
                    .map(|(k, v)| (k.clone(), compile_copy(v).text)),
            );
        }
        self.holes = holes;
        self
    }

    /// As [`Prepared::new`], from in-memory sources; `source_checks: false` leaves the verdict
    /// to Lean and the checker alone (the self-test's canaries).
    pub fn from_sources(
        sources: BTreeMap<String, String>,
        original: Option<&BTreeMap<String, String>>,
        policy: &VerifyPolicy,
        source_checks_on: bool,
    ) -> Self {
        let source_violations = if source_checks_on {
            source_checks(&sources, original, policy)
        } else {
            Vec::new()
        };
        let copy = |m: &BTreeMap<String, String>| -> BTreeMap<String, String> {
            m.iter()
                .map(|(k, v)| (k.clone(), compile_copy(v).text))
                .collect()
        };
        Prepared {
            copies: copy(&sources),
            original_copies: original.map(copy),
            sources,
            source_violations,
            holes: HolePlan::default(),
        }
    }

    /// Turn what the sandboxes produced into a verdict (or an error when the original does not
    /// compile).
    pub fn evaluate(
        &self,
        runs: &Runs,
        policy: &VerifyPolicy,
    ) -> Result<Verification, VerifyError> {
        evaluate(self, runs, policy)
    }
}

/// Whether a project-relative path is safe to splice into the verification script: no shell
/// metacharacters, whitespace or `..` components (module names never need them).
pub(crate) fn safe_rel_path(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && !rel.starts_with('-')
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
        && rel.chars().all(|c| {
            (c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '«' | '»'))
                && !c.is_whitespace()
        })
}

/// Compiler output with the sandbox's staging prefix (`/tmp/…/src/`) removed from paths.
fn shown(output: &str) -> String {
    output
        .lines()
        .map(|l| match (l.starts_with("/tmp/"), l.find("/src/")) {
            (true, Some(i)) => &l[i + 5..],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn evaluate(p: &Prepared, runs: &Runs, policy: &VerifyPolicy) -> Result<Verification, VerifyError> {
    let timed_out = runs.timed_out;
    // The original must compile (it is the reference); a failure is the task's, not a verdict.
    if let (Some(frames), Some(copies)) = (&runs.original, &p.original_copies) {
        for (i, rel) in copies.keys().enumerate() {
            if p.holes.is_check_module(rel) {
                continue; // judged by the hole's answer check
            }
            let Some(f) = frames.files.get(&i) else {
                if timed_out {
                    continue;
                }
                return Err(VerifyError::Original(format!("{rel}: not compiled")));
            };
            let text = shown(&f.output);
            let err = parse_messages(&text)
                .into_iter()
                .find(|m| m.severity == Severity::Error);
            if f.exit_code != 0 || err.is_some() {
                let what = err
                    .map(|m| {
                        format!(
                            "{}:{}: {}",
                            rel,
                            m.line,
                            m.text.lines().next().unwrap_or("")
                        )
                    })
                    .unwrap_or_else(|| format!("{rel}: lean exited with status {}", f.exit_code));
                return Err(VerifyError::Original(what));
            }
        }
    }
    let mut report = VerificationReport {
        timed_out,
        ..Default::default()
    };
    let mut violations = p.source_violations.clone();
    let mut compile_log = String::new();
    let mut all_axioms = BTreeSet::new();
    let mut non_standard = BTreeSet::new();
    let mut all_compiled = true;
    let mut any_sorry = violations.iter().any(|v| v.kind == ViolationKind::Sorry);
    let empty = Frames::default();
    let frames = runs.build.as_ref().unwrap_or(&empty);
    let module_file: BTreeMap<String, String> = p
        .sources
        .keys()
        .map(|k| (module_name(k), k.clone()))
        .collect();
    // frame index of each compiled copy (the copies include the holes' check modules)
    let index: BTreeMap<String, usize> = p
        .copies
        .keys()
        .enumerate()
        .map(|(i, k)| (k.clone(), i))
        .collect();
    for (rel, src) in &p.sources {
        let i = index.get(rel).copied().unwrap_or(usize::MAX);
        let mut fr = FileReport {
            sorry: atp_lean::lexer::contains_sorry(src),
            ..Default::default()
        };
        let Some(f) = frames.files.get(&i) else {
            all_compiled = false;
            if !timed_out {
                violations.push(Violation {
                    kind: ViolationKind::CompileError,
                    file: rel.clone(),
                    line: None,
                    decl: None,
                    message: "the build script framed nothing for this file".into(),
                    from_lean: true,
                });
            }
            report.per_file.insert(rel.clone(), fr);
            continue;
        };
        let text = shown(&f.output);
        compile_log.push_str(&format!("== {rel} (exit {}) ==\n{text}\n", f.exit_code));
        fr.exit_code = Some(f.exit_code);
        let messages = parse_messages(&text);
        let errors: Vec<_> = messages
            .iter()
            .filter(|m| m.severity == Severity::Error)
            .collect();
        fr.compiled = f.exit_code == 0 && errors.is_empty();
        if !fr.compiled {
            all_compiled = false;
            violations.push(Violation {
                kind: ViolationKind::CompileError,
                file: rel.clone(),
                line: errors.first().map(|m| m.line),
                decl: None,
                message: match errors.first() {
                    Some(m) => format!("error: {}", m.text.lines().next().unwrap_or("")),
                    None => format!("lean exited with status {}", f.exit_code),
                },
                from_lean: true,
            });
        }
        for m in messages
            .iter()
            .filter(|m| m.is_sorry_warning() && &m.path == rel)
        {
            fr.sorry = true;
            violations.push(Violation {
                kind: ViolationKind::Sorry,
                file: rel.clone(),
                line: Some(m.line),
                decl: None,
                message: format!("Lean: {}", m.text.lines().next().unwrap_or("")),
                from_lean: true,
            });
        }
        // the checker's findings for this file's module
        let module = module_name(rel);
        if let Some(c) = &runs.checker {
            for ((m, decl), axs) in &c.axioms {
                if *m != module {
                    continue;
                }
                let shown_decl = display_decl(decl);
                let entry = fr.axioms.entry(shown_decl.clone()).or_default();
                let mut axs = axs.clone();
                axs.sort();
                for ax in &axs {
                    if !entry.contains(ax) {
                        entry.push(ax.clone());
                    }
                    all_axioms.insert(ax.clone());
                    if ax == "sorryAx" {
                        fr.sorry = true;
                    }
                    if !policy.axiom_allowed(ax) {
                        non_standard.insert(ax.clone());
                        violations.push(Violation {
                            kind: ViolationKind::NonStandardAxiom,
                            file: rel.clone(),
                            line: None,
                            decl: Some(shown_decl.clone()),
                            message: format!("`{shown_decl}` depends on axiom `{ax}`"),
                            from_lean: true,
                        });
                    }
                }
            }
            if let Some((decl, err)) = c.kernel.get(&module) {
                violations.push(Violation {
                    kind: ViolationKind::KernelRejected,
                    file: rel.clone(),
                    line: None,
                    decl: Some(display_decl(decl)),
                    message: format!(
                        "the kernel refused `{}` when the checker replayed the module: {}",
                        display_decl(decl),
                        err.lines().next().unwrap_or("")
                    ),
                    from_lean: true,
                });
            }
        }
        let replayed = runs
            .checker
            .as_ref()
            .is_some_and(|c| c.replayed.contains_key(&module) || c.kernel.contains_key(&module));
        if fr.compiled && !replayed && !timed_out {
            violations.push(Violation {
                kind: ViolationKind::NotChecked,
                file: rel.clone(),
                line: None,
                decl: None,
                message: "the checker did not judge this file (no .olean: it stops early, e.g. at `#exit`)".into(),
                from_lean: true,
            });
        }
        any_sorry |= fr.sorry;
        report.per_file.insert(rel.clone(), fr);
    }
    if let Some(c) = &runs.checker {
        for (module, decl, kind, status) in &c.obligations {
            if *status == ObligationStatus::Ok || p.holes.is_check_module_name(module) {
                continue;
            }
            let file = module_file
                .get(module)
                .cloned()
                .unwrap_or_else(|| module.clone());
            let d = display_decl(decl);
            let (vk, what) = match status {
                ObligationStatus::Missing => (
                    ViolationKind::StatementMissing,
                    format!("{kind} `{d}` of the original is not in the candidate's compiled module"),
                ),
                ObligationStatus::KindMismatch => (
                    ViolationKind::StatementChanged,
                    format!("`{d}` is a {kind} in the original but of another kind in the candidate"),
                ),
                ObligationStatus::LevelMismatch => (
                    ViolationKind::StatementChanged,
                    format!("`{d}` has other universe parameters than in the original"),
                ),
                ObligationStatus::TypeMismatch => (
                    ViolationKind::StatementChanged,
                    format!("the elaborated statement of `{d}` differs from the original's"),
                ),
                ObligationStatus::ValueMismatch | ObligationStatus::Ok => (
                    ViolationKind::StatementChanged,
                    format!("{kind} `{d}` must stay as in the original (a checked statement depends on it)"),
                ),
            };
            violations.push(Violation {
                kind: vk,
                file,
                line: None,
                decl: Some(d),
                message: format!("checker: {what}"),
                from_lean: true,
            });
        }
        for (module, import) in &c.missing_imports {
            if p.holes.is_check_module_name(module) {
                continue;
            }
            violations.push(Violation {
                kind: ViolationKind::ContextChanged,
                file: module_file
                    .get(module)
                    .cloned()
                    .unwrap_or_else(|| module.clone()),
                line: None,
                decl: None,
                message: format!("checker: import `{import}` of the original was removed"),
                from_lean: true,
            });
        }
        compile_log.push_str(&format!(
            "== checker (Lean {}) ==\n{}",
            c.lean, runs.checker_log
        ));
    }
    let orig_index: BTreeMap<String, usize> = p
        .original_copies
        .iter()
        .flat_map(|o| o.keys())
        .enumerate()
        .map(|(i, k)| (k.clone(), i))
        .collect();
    let (holes, wrong) = p.holes.evaluate(HoleInput {
        build: runs.build.as_ref(),
        original: runs.original.as_ref(),
        checker: runs.checker.as_ref(),
        index,
        orig_index,
        policy,
        timed_out,
    });
    report.definition_holes = holes;
    violations.extend(wrong);
    if timed_out {
        violations.push(Violation {
            kind: ViolationKind::Timeout,
            file: String::new(),
            line: None,
            decl: None,
            message: "the verifier's time budget elapsed before every file was checked".into(),
            from_lean: false,
        });
    }
    report.statements_intact = !violations.iter().any(|v| {
        matches!(
            v.kind,
            ViolationKind::StatementMissing
                | ViolationKind::StatementChanged
                | ViolationKind::ContextChanged
                | ViolationKind::Shadowing
        )
    });
    // `verified` needs the checker's agreement: it ran and judged every file.
    let checked = runs.checker.is_some();
    report.compiles = all_compiled && !timed_out;
    report.sorry_free = !any_sorry;
    report.axioms = all_axioms.into_iter().collect();
    report.non_standard_axioms = non_standard.into_iter().collect();
    if !checked && violations.is_empty() {
        violations.push(Violation {
            kind: ViolationKind::NotChecked,
            file: String::new(),
            line: None,
            decl: None,
            message: "the checker did not run".into(),
            from_lean: false,
        });
    }
    report.violations = violations;
    report.finalize();
    Ok(Verification {
        report,
        compile_log,
        stdout: runs.stdout.clone(),
        stderr: runs.stderr.clone(),
        sources: p.sources.clone(),
    })
}

#[cfg(test)]
mod tests;
