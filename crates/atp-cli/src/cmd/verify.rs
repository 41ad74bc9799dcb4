//! `atp verify`: verify a candidate proof (a lake project or bare `.lean` files) in a sandbox.
//!
//! The candidate is copied to `OUTPUT/wd` (bare files are staged into the image skeleton there)
//! and verified against `--original` when given. `OUTPUT/logs/result.json` is always written.
//! Exit status: 0 verified, 1 unverified or timeout, 2 error (bad input, engine, image).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use atp_backend::{NetworkMode, RunId};
use atp_prover::{ProofResult, ProofTask, RunLayout, Status};
use atp_verify::{Verifier, VerifyError, VerifyOptions, VerifyPolicy};

use crate::backend::{self, BackendArgs};
use crate::cmd::{print_json, Global};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A lake project directory, or one or more bare .lean files.
    #[arg(required = true, value_name = "PROJECT_DIR|FILE.lean")]
    pub inputs: Vec<PathBuf>,
    /// The original task (a lake project directory or a .lean file) to compare statements with.
    #[arg(long, value_name = "DIR")]
    pub original: Option<PathBuf>,
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Files compiled in parallel (default: the sandbox's CPU count).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Verifier time budget in seconds; past it the verdict is `timeout`.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub timeout: u64,
    /// Output directory (default: ./atp-runs/verify-<run id>).
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Run id every sandbox of this run is labelled with (`atp.run-id`; default: a fresh one),
    /// e.g. to find them with `atp gc --run-id`.
    #[arg(long, value_name = "ID")]
    pub run_id: Option<RunId>,
    /// Accept `native_decide` (and Lean.ofReduceBool / Lean.trustCompiler).
    #[arg(long)]
    pub allow_native_decide: bool,
    /// Accept this axiom (repeatable).
    #[arg(long, value_name = "NAME")]
    pub allow_axiom: Vec<String>,
    /// Accept new instances.
    #[arg(long)]
    pub allow_new_instances: bool,
    /// Accept new macros/notations/syntax.
    #[arg(long)]
    pub allow_syntax_extensions: bool,
    /// Accept `#eval`, `run_cmd`, `elab` and other elaboration-time code.
    #[arg(long)]
    pub allow_metaprogramming: bool,
}

pub async fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let run_id = args.run_id.clone().unwrap_or_default();
    let out_dir = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("atp-runs").join(format!("verify-{}", run_id.short())));
    let layout = RunLayout::new(&out_dir);
    // Ctrl-C/SIGTERM drop the verification: its sandbox's teardown guard removes the container.
    let outcome = tokio::select! {
        o = verify(&args, &layout, run_id.clone()) => Some(o),
        _ = global.cancel.cancelled() => None,
    };
    let mut result = match &outcome {
        None => ProofResult::from_error(
            "cancelled",
            "interrupted before the verdict; the sandbox was removed",
            run_id.as_str(),
            &out_dir,
        ),
        Some(Ok(v)) => {
            let mut r = ProofResult::from_verification(v, run_id.as_str(), &out_dir);
            r.completed_files = v.sources.clone();
            if let Err(e) = layout.write_verification(v) {
                tracing::warn!("cannot write the verifier's logs: {e}");
            }
            r
        }
        Some(Err(e)) => ProofResult::from_error(e.kind(), e, run_id.as_str(), &out_dir),
    };
    if outcome.is_none() {
        result.status = Status::Cancelled;
    }
    result.durations.total_s = atp_prover::secs(started.elapsed());
    if let Err(e) = layout.write_result(&result) {
        eprintln!(
            "error: cannot write results under {}: {e} — choose a writable --output",
            out_dir.display()
        );
        return Ok(ExitCode::from(2));
    }
    if global.json {
        print_json(&result)?;
    } else {
        print!("{}", render(&result, &out_dir));
    }
    if let Some(Err(e)) = &outcome {
        eprintln!("error: {}", atp_backend::one_line(&e.to_string()));
    }
    Ok(crate::cmd::exit_for(result.status))
}

async fn verify(
    args: &Args,
    layout: &RunLayout,
    run_id: RunId,
) -> Result<atp_verify::Verification, VerifyError> {
    layout.create().map_err(|e| {
        VerifyError::InvalidInput(format!("{}: cannot create: {e}", layout.logs().display()))
    })?;
    let wd = layout.wd();
    if std::fs::symlink_metadata(&wd).is_ok() {
        std::fs::remove_dir_all(&wd).map_err(|e| {
            VerifyError::InvalidInput(format!("{}: cannot clear: {e}", wd.display()))
        })?;
    }
    // Bare files are staged into OUT/wd; a project directory is checked where it is (so every
    // message names the user's path) and copied to OUT/wd for the record.
    let task = ProofTask::from_inputs(&args.inputs, &wd)?;
    let candidate = task.project.clone();
    if candidate.root() != wd.as_path() {
        atp_lean::walk::copy_project(candidate.root(), &wd).map_err(|e| {
            VerifyError::InvalidInput(format!(
                "{}: cannot copy the project to {}: {e}",
                candidate.root().display(),
                wd.display()
            ))
        })?;
    }
    let staged_original = layout.root.join(".original");
    let original = match &args.original {
        None => None,
        Some(p) => {
            if std::fs::symlink_metadata(&staged_original).is_ok() {
                let _ = std::fs::remove_dir_all(&staged_original);
            }
            Some(ProofTask::from_inputs(std::slice::from_ref(p), &staged_original)?.project)
        }
    };
    let mut spec = args.backend.spec();
    spec.network = NetworkMode::None;
    let backend = backend::make(&spec)?;
    let policy = VerifyPolicy {
        allow_native_decide: args.allow_native_decide,
        allowed_axioms: args.allow_axiom.iter().cloned().collect(),
        allow_new_instances: args.allow_new_instances,
        allow_syntax_extensions: args.allow_syntax_extensions,
        allow_metaprogramming: args.allow_metaprogramming,
        trusted_import_roots: Vec::new(),
    };
    let verifier = Verifier::new(backend).with_options(VerifyOptions {
        workers: args.workers,
        timeout: Duration::from_secs(args.timeout.max(1)),
        policy,
        run_id: Some(run_id),
        ..Default::default()
    });
    let out = verifier.verify(&candidate, original.as_ref()).await;
    let _ = std::fs::remove_dir_all(&staged_original);
    out
}

/// The human summary.
pub fn render(r: &ProofResult, out_dir: &Path) -> String {
    let mut s = String::new();
    let status = r.status.as_str().to_uppercase();
    match &r.verification {
        Some(v) => {
            s.push_str(&format!(
                "{status} — {} file(s), {:.1}s\n",
                v.per_file.len(),
                v.duration.as_secs_f64()
            ));
            let w = v.per_file.keys().map(|k| k.len()).max().unwrap_or(4).max(4);
            s.push_str(&format!(
                "  {:<w$}  {:<8}  {:<5}  axioms\n",
                "file", "compiled", "sorry"
            ));
            for (f, fr) in &v.per_file {
                let mut axs: Vec<&String> = fr.axioms.values().flatten().collect();
                axs.sort();
                axs.dedup();
                let axs = if axs.is_empty() {
                    "-".to_string()
                } else {
                    axs.iter()
                        .map(|a| a.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                s.push_str(&format!(
                    "  {:<w$}  {:<8}  {:<5}  {}\n",
                    f,
                    if fr.compiled { "yes" } else { "no" },
                    if fr.sorry { "yes" } else { "no" },
                    axs
                ));
            }
            if !v.violations.is_empty() {
                s.push_str("violations:\n");
                for x in &v.violations {
                    let decl = x
                        .decl
                        .as_deref()
                        .map(|d| format!(" [{d}]"))
                        .unwrap_or_default();
                    let loc = if x.file.is_empty() {
                        "-".to_string()
                    } else {
                        x.location()
                    };
                    s.push_str(&format!("  {loc}  {}{decl}: {}\n", x.kind, x.message));
                }
            }
        }
        None => {
            let e = r
                .error
                .as_ref()
                .map(|e| format!("{}: {}", e.kind, e.message))
                .unwrap_or_default();
            s.push_str(&format!("{status} — {e}\n"));
        }
    }
    s.push_str(&format!(
        "output: {} (logs/result.json, logs/compile.log)\n",
        out_dir.display()
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use atp_verify::{FileReport, VerificationReport, Violation, ViolationKind};

    fn result() -> ProofResult {
        let mut report = VerificationReport {
            compiles: true,
            sorry_free: true,
            axioms: vec!["propext".into()],
            statements_intact: false,
            duration: Duration::from_millis(1234),
            ..Default::default()
        };
        report.per_file.insert(
            "Task.lean".into(),
            FileReport {
                compiled: true,
                sorry: false,
                axioms: [("t".to_string(), vec!["propext".to_string()])].into(),
                exit_code: Some(0),
            },
        );
        report.violations.push(Violation::source(
            ViolationKind::StatementChanged,
            "Task.lean",
            Some(3),
            Some("t".into()),
            "statement of `t` changed: original `: 1 = 1`, candidate `: True`",
        ));
        report.finalize();
        let mut r = ProofResult::new(Status::Unverified, "run-1", Path::new("out"));
        r.verification = Some(report);
        r
    }

    #[test]
    fn summary_shows_files_and_violations() {
        insta::assert_snapshot!(render(&result(), Path::new("out")), @r"
        UNVERIFIED — 1 file(s), 1.2s
          file       compiled  sorry  axioms
          Task.lean  yes       no     propext
        violations:
          Task.lean:3  statement_changed [t]: statement of `t` changed: original `: 1 = 1`, candidate `: True`
        output: out (logs/result.json, logs/compile.log)
        ");
    }

    #[test]
    fn summary_of_an_error() {
        let mut r = result();
        r.status = Status::Error;
        r.verification = None;
        r.error = Some(atp_prover::ErrorInfo::new(
            "toolchain_mismatch",
            "project toolchain `a` differs from the image's `b`",
        ));
        insta::assert_snapshot!(render(&r, Path::new("out")), @r"
        ERROR — toolchain_mismatch: project toolchain `a` differs from the image's `b`
        output: out (logs/result.json, logs/compile.log)
        ");
    }
}
