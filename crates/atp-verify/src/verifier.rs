//! The verifier: compile every file of a candidate in a sandbox, probe axioms, and combine that
//! with the source-level checks into a [`VerificationReport`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atp_backend::layout::shell_quote;
use atp_backend::{
    BackendError, ComputeBackend, ComputeSession, ExecOptions, NetworkMode, RunId, SessionOptions,
};
use tracing::{info, Instrument};

use crate::check::{module_name, source_checks, VerifyPolicy};
use crate::holes::HolePlan;
use crate::parse::{parse_axioms_text, parse_messages, split_blocks, Severity};
use crate::probe::{display_decl, probe_copy, SENTINEL};
use crate::report::{FileReport, VerificationReport, Violation, ViolationKind};
use atp_image::ImagePins;
use atp_lean::source::parse;
use atp_lean::{LeanProject, ProjectError};

/// Default verifier time budget.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// The image's Lean project (skeleton + warm Mathlib cache) every compile runs in.
pub const SKELETON_DIR: &str = "/workspace";
/// Extra time past the budget for creating and tearing down the verifier's own sandbox.
pub const VERIFY_BACKSTOP_MARGIN: Duration = Duration::from_secs(180);

/// Errors that prevent a verdict (bad input, incompatible image, broken engine).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Project(#[from] ProjectError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("{0}")]
    InvalidInput(String),
}

impl VerifyError {
    /// Short machine-readable name (for result.json).
    pub fn kind(&self) -> &'static str {
        match self {
            VerifyError::Project(e) => e.kind(),
            VerifyError::Backend(e) => e.kind(),
            VerifyError::InvalidInput(_) => "invalid_input",
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
    /// Run id for the verifier's own session (a fresh one when `None`).
    pub run_id: Option<RunId>,
    /// Extra environment for the compile (e.g. `LEAN_NUM_THREADS`).
    pub env: BTreeMap<String, String>,
    /// The answer key: full name of a definition hole → the official answer (a Lean term),
    /// checked in the sandbox (see [`crate::holes`]).
    pub answers: BTreeMap<String, String>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            workers: None,
            timeout: DEFAULT_TIMEOUT,
            policy: VerifyPolicy::default(),
            run_id: None,
            env: BTreeMap::new(),
            answers: BTreeMap::new(),
        }
    }
}

/// A verdict plus the raw material it was drawn from.
#[derive(Debug, Clone)]
pub struct Verification {
    pub report: VerificationReport,
    /// Per-file compiler output (`== FILE rel (exit N) ==` headers).
    pub compile_log: String,
    /// The verification script's raw stdout/stderr.
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

    /// Verify `candidate` (against `original` when given) in a fresh sandbox.
    ///
    /// The compatibility gate runs first (it only reads the image's labels): an incompatible
    /// project fails with [`ProjectError::ToolchainMismatch`] / [`ProjectError::MathlibRevMismatch`]
    /// before any sandbox exists.
    pub async fn verify(
        &self,
        candidate: &LeanProject,
        original: Option<&LeanProject>,
    ) -> Result<Verification, VerifyError> {
        let pins = self.image_pins().await?;
        candidate.check_compatible(&pins.lean())?;
        let prepared = Prepared::new(candidate, original, &self.options)?;
        let fallback = prepared.clone();
        let started = tokio::time::Instant::now();
        let run_id = self.options.run_id.clone().unwrap_or_default();
        let span = tracing::info_span!("verify", run_id = %run_id);
        // The sandbox needs no host files (the sources travel in the script): give it an empty
        // workdir, so nothing is written into the candidate's directory and nothing is pushed.
        let empty = tempfile::Builder::new()
            .prefix("atp-verify-wd-")
            .tempdir()
            .map_err(|e| {
                VerifyError::InvalidInput(format!(
                    "cannot create a temporary directory: {e} — check TMPDIR"
                ))
            })?;
        let work = async {
            let session = self
                .backend
                .session(
                    empty.path(),
                    SessionOptions {
                        network: NetworkMode::None,
                        run_id: Some(run_id.clone()),
                        timeout: Some(self.options.timeout + Duration::from_secs(120)),
                        ..Default::default()
                    },
                )
                .await?;
            let out = self.run_prepared(session.as_ref(), prepared).await;
            let closed = session.close().await;
            let v = out?;
            closed?;
            Ok(v)
        }
        .instrument(span);
        // Backstop over everything (sandbox creation and teardown included): past it the
        // verdict is `timeout`; dropping the work tears its sandbox down (TeardownGuard).
        match tokio::time::timeout(self.options.timeout + VERIFY_BACKSTOP_MARGIN, work).await {
            Ok(r) => r,
            Err(_) => {
                let mut v = fallback.evaluate("", true, &self.options.policy);
                v.report.duration = started.elapsed();
                Ok(v)
            }
        }
    }

    /// Verify inside a caller's live session whose workdir holds `candidate` (the host copy is
    /// what is checked and compiled: its files are shipped to the sandbox with the script).
    pub async fn verify_in_session(
        &self,
        session: &dyn ComputeSession,
        candidate: &LeanProject,
        original: Option<&LeanProject>,
    ) -> Result<Verification, VerifyError> {
        let prepared = Prepared::new(candidate, original, &self.options)?;
        self.run_prepared(session, prepared).await
    }

    async fn run_prepared(
        &self,
        session: &dyn ComputeSession,
        p: Prepared,
    ) -> Result<Verification, VerifyError> {
        let started = Instant::now();
        let opts = ExecOptions {
            timeout: Some(self.options.timeout),
            kill_grace: Some(Duration::from_secs(5)),
            stdin: Some(p.script.clone().into_bytes().into()),
            env: self.options.env.clone(),
        };
        info!(sandbox = session.id(), files = p.sources.len(), "verifying");
        let cmd = "f=$(mktemp /tmp/atp-verify-XXXXXX) && cat > \"$f\" && bash \"$f\"; rc=$?; rm -f \"$f\"; exit $rc";
        let (result, timed_out) = match session.exec_wait(cmd, opts).await {
            Ok(r) => (r, false),
            Err(BackendError::CommandTimeout { partial, .. }) => (*partial, true),
            Err(e) => return Err(e.into()),
        };
        let mut v = p.evaluate(&result.stdout, timed_out, &self.options.policy);
        v.report.duration = started.elapsed();
        v.stdout = result.stdout;
        v.stderr = result.stderr;
        Ok(v)
    }
}

/// Everything computed on the host before the sandbox runs.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub nonce: String,
    pub sources: BTreeMap<String, String>,
    pub probe_lines: BTreeMap<String, usize>,
    pub source_violations: Vec<Violation>,
    pub script: String,
    /// Definition holes and their answer-check files (compiled by the same script).
    pub holes: HolePlan,
}

impl Prepared {
    /// Read the candidate (and original), run the source checks, and build the script.
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
        if let Some(bad) = sources.keys().find(|k| !safe_rel_path(k)) {
            return Err(VerifyError::InvalidInput(format!(
                "{}: file name `{bad}` contains characters atp does not accept (quotes, `$`, `\\`, backquotes, whitespace, `..`) — rename it",
                candidate.root().display()
            )));
        }
        Ok(Self::from_sources(sources, orig.as_ref(), options))
    }

    /// As [`Prepared::new`], from in-memory sources.
    pub fn from_sources(
        sources: BTreeMap<String, String>,
        original: Option<&BTreeMap<String, String>>,
        options: &VerifyOptions,
    ) -> Self {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let source_violations = source_checks(&sources, original, &options.policy);
        let holes = HolePlan::new(&sources, original, &options.answers, &nonce);
        let mut compiled = sources.clone();
        compiled.extend(holes.check_sources());
        let (script, probe_lines) = build_script(&compiled, &nonce, options.workers);
        Prepared {
            nonce,
            sources,
            probe_lines,
            source_violations,
            script,
            holes,
        }
    }

    /// Turn the script's stdout into a verdict.
    pub fn evaluate(&self, stdout: &str, timed_out: bool, policy: &VerifyPolicy) -> Verification {
        evaluate(self, stdout, timed_out, policy)
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

/// Dependency waves: files whose project-local imports are all in earlier waves.
fn waves(sources: &BTreeMap<String, String>) -> (Vec<Vec<String>>, BTreeSet<String>) {
    let modules: BTreeMap<String, String> = sources
        .keys()
        .map(|k| (module_name(k), k.clone()))
        .collect();
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut imported = BTreeSet::new();
    for (rel, src) in sources {
        let d: BTreeSet<String> = parse(src)
            .imports
            .into_iter()
            .filter_map(|m| modules.get(&m).cloned())
            .filter(|r| r != rel)
            .collect();
        imported.extend(d.iter().cloned());
        deps.insert(rel.clone(), d);
    }
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    while done.len() < sources.len() {
        let wave: Vec<String> = sources
            .keys()
            .filter(|r| !done.contains(*r))
            .filter(|r| deps[*r].iter().all(|d| done.contains(d)))
            .cloned()
            .collect();
        let wave = if wave.is_empty() {
            // an import cycle: Lean will report it; compile the rest together
            sources
                .keys()
                .filter(|r| !done.contains(*r))
                .cloned()
                .collect()
        } else {
            wave
        };
        done.extend(wave.iter().cloned());
        out.push(wave);
    }
    (out, imported)
}

/// The bash script run in the sandbox (fed through stdin).
///
/// It writes each probe copy under a fresh `/tmp` directory, then compiles the copies (with
/// `--root` at that directory, so each file gets its module name from its relative path) wave by
/// wave with at most `workers` `lake env lean` processes at a time (files imported by other
/// project files also get their `.olean` written so importers can load them), and prints each
/// file's output between nonce-carrying markers with its exit status, as each file finishes.
pub fn build_script(
    sources: &BTreeMap<String, String>,
    nonce: &str,
    workers: Option<usize>,
) -> (String, BTreeMap<String, usize>) {
    let mut s = String::new();
    let mut probe_lines = BTreeMap::new();
    let w = workers
        .map(|w| w.max(1).to_string())
        .unwrap_or_else(|| "0".into());
    s.push_str("set +e\n");
    s.push_str(&format!(
        "W={w}\nif [ \"$W\" = 0 ]; then W=$(nproc 2>/dev/null || echo 1); fi\n"
    ));
    s.push_str(&format!(
        "T=/tmp/atp-probe-{nonce}\nrm -rf \"$T\"; mkdir -p \"$T/src\" \"$T/out\"\n"
    ));
    s.push_str("trap 'rm -rf \"$T\"' EXIT\n");
    // Compile from the image's own Lean project, never through the candidate's lakefile (a
    // lakefile.lean is code Lake runs; a lakefile can add options or packages).
    s.push_str(&format!(
        "if [ -d {SKELETON_DIR} ]; then cd {SKELETON_DIR}; fi\n"
    ));
    for (i, (rel, src)) in sources.iter().enumerate() {
        let copy = probe_copy(src, nonce);
        probe_lines.insert(rel.clone(), copy.probe_line);
        let delim = format!("ATP_EOF_{nonce}_{i}");
        let path = format!("$T/src/{rel}");
        s.push_str(&format!(
            "mkdir -p \"$(dirname \"{path}\")\"\ncat > \"{path}\" <<'{delim}'\n{}{delim}\n",
            copy.text
        ));
    }
    s.push_str(&format!(
        r#"run_one() {{
  i=$1; rel=$2; out=$3
  if [ -n "$out" ]; then
    mkdir -p "$(dirname "$out")"
    lake env lean --root="$T/src" -o "$out" "$T/src/$rel" < /dev/null > "$T/out/$i.log" 2>&1
  else
    lake env lean --root="$T/src" "$T/src/$rel" < /dev/null > "$T/out/$i.log" 2>&1
  fi
  echo $? > "$T/out/$i.rc.tmp"; mv "$T/out/$i.rc.tmp" "$T/out/$i.rc"
}}
RUNNING=""
flush() {{
  keep=""
  for e in $RUNNING; do
    i=${{e%%:*}}; rel=${{e#*:}}
    if [ -f "$T/out/$i.rc" ]; then
      echo "=== ATP FILE {nonce} $rel ==="
      cat "$T/out/$i.log"
      echo "=== ATP EXIT {nonce} $rel $(cat "$T/out/$i.rc") ==="
    else
      keep="$keep $e"
    fi
  done
  RUNNING=$keep
}}
count() {{ set -- $RUNNING; echo $#; }}
start() {{
  while [ "$(count)" -ge "$W" ]; do wait -n 2>/dev/null || sleep 0.05; flush; done
  run_one "$1" "$2" "$3" &
  RUNNING="$RUNNING $1:$2"
}}
drain() {{
  while [ "$(count)" -gt 0 ]; do wait -n 2>/dev/null || sleep 0.05; flush; done
}}
"#
    ));
    let (ws, imported) = waves(sources);
    let index: BTreeMap<&String, usize> = sources.keys().enumerate().map(|(i, k)| (k, i)).collect();
    for wave in ws {
        for rel in wave {
            let out = if imported.contains(&rel) {
                format!(
                    ".lake/build/lib/lean/{}.olean",
                    rel.trim_end_matches(".lean")
                )
            } else {
                String::new()
            };
            s.push_str(&format!(
                "start {} {} {}\n",
                index[&rel],
                shell_quote(&rel),
                if out.is_empty() {
                    "''".to_string()
                } else {
                    shell_quote(&out)
                }
            ));
        }
        s.push_str("drain\n");
    }
    s.push_str("exit 0\n");
    (s, probe_lines)
}

fn evaluate(p: &Prepared, stdout: &str, timed_out: bool, policy: &VerifyPolicy) -> Verification {
    let blocks = split_blocks(stdout, &p.nonce);
    let copy_prefix = format!("/tmp/atp-probe-{}/src/", p.nonce);
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
    for (rel, src) in &p.sources {
        let mut fr = FileReport {
            sorry: atp_lean::lexer::contains_sorry(src),
            ..Default::default()
        };
        let probe_line = p.probe_lines.get(rel).copied().unwrap_or(usize::MAX);
        let Some(block) = blocks.iter().find(|b| &b.rel == rel) else {
            all_compiled = false;
            if !timed_out {
                violations.push(Violation {
                    kind: ViolationKind::CompileError,
                    file: rel.clone(),
                    line: None,
                    decl: None,
                    message: "the verifier script printed nothing for this file".into(),
                    from_lean: true,
                });
            }
            report.per_file.insert(rel.clone(), fr);
            continue;
        };
        let shown = block.output.replace(&copy_prefix, "");
        compile_log.push_str(&format!(
            "== {rel} (exit {}) ==\n{shown}",
            block
                .exit_code
                .map_or("none".to_string(), |c| c.to_string())
        ));
        fr.exit_code = block.exit_code;
        let messages = parse_messages(&shown);
        let own = |path: &str| path == rel;
        let errors: Vec<_> = messages
            .iter()
            .filter(|m| m.severity == Severity::Error)
            .collect();
        fr.compiled = block.exit_code == Some(0) && errors.is_empty();
        if !fr.compiled {
            all_compiled = false;
            match errors.first() {
                Some(m) => violations.push(Violation {
                    kind: ViolationKind::CompileError,
                    file: rel.clone(),
                    line: Some(m.line),
                    decl: None,
                    message: format!("error: {}", m.text.lines().next().unwrap_or("")),
                    from_lean: true,
                }),
                None if block.exit_code.is_some() => violations.push(Violation {
                    kind: ViolationKind::CompileError,
                    file: rel.clone(),
                    line: None,
                    decl: None,
                    message: format!("lean exited with status {}", block.exit_code.unwrap_or(-1)),
                    from_lean: true,
                }),
                None => {} // cut short by the time budget
            }
        }
        for m in messages
            .iter()
            .filter(|m| m.is_sorry_warning() && own(&m.path))
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
        let mut sentinel = false;
        for m in messages
            .iter()
            .filter(|m| m.severity == Severity::Info && own(&m.path) && m.line >= probe_line)
        {
            if m.text.trim() == format!("{SENTINEL} {}", p.nonce) {
                sentinel = true;
                continue;
            }
            if let Some(a) = parse_axioms_text(&m.text) {
                let decl = display_decl(&a.decl);
                let entry = fr.axioms.entry(decl.clone()).or_default();
                for ax in a.axioms {
                    if !entry.contains(&ax) {
                        entry.push(ax);
                    }
                }
            }
        }
        for (decl, axs) in &fr.axioms {
            for ax in axs {
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
                        decl: Some(decl.clone()),
                        message: format!("`{decl}` depends on axiom `{ax}`"),
                        from_lean: true,
                    });
                }
            }
        }
        if fr.compiled && !sentinel {
            violations.push(Violation {
                kind: ViolationKind::ProbeMissing,
                file: rel.clone(),
                line: None,
                decl: None,
                message: "the axiom probe did not report (the file stops early, e.g. `#exit`)"
                    .into(),
                from_lean: true,
            });
        }
        any_sorry |= fr.sorry;
        report.per_file.insert(rel.clone(), fr);
    }
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
    let (holes, wrong) = p.holes.evaluate(&blocks, &copy_prefix, timed_out);
    report.definition_holes = holes;
    violations.extend(wrong);
    report.statements_intact = !violations.iter().any(|v| {
        matches!(
            v.kind,
            ViolationKind::StatementMissing
                | ViolationKind::StatementChanged
                | ViolationKind::ContextChanged
                | ViolationKind::Shadowing
        )
    });
    report.compiles = all_compiled && !timed_out;
    report.sorry_free = !any_sorry;
    report.axioms = all_axioms.into_iter().collect();
    report.non_standard_axioms = non_standard.into_iter().collect();
    report.violations = violations;
    report.finalize();
    Verification {
        report,
        compile_log,
        stdout: String::new(),
        stderr: String::new(),
        sources: p.sources.clone(),
    }
}

#[cfg(test)]
mod tests;
