//! `atp verify`: verify a candidate proof (a lake project or bare `.lean` files) in a sandbox.
//!
//! The candidate is copied to `OUTPUT/wd` (bare files are staged into the image skeleton there)
//! and verified against `--original` when given. `OUTPUT/logs/result.json` is always written.
//! Exit status: 0 verified, 1 unverified or timeout, 2 error (bad input, engine, image).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use atp_backend::{NetworkMode, RunId};
use atp_verify::{
    stage_files, write_result, LeanProject, ProofResult, RunLayout, Status, Verifier, VerifyError,
    VerifyOptions, VerifyPolicy,
};

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
    let run_id = RunId::new();
    let out_dir = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("atp-runs").join(format!("verify-{}", run_id.short())));
    let layout = RunLayout::new(&out_dir);
    let outcome = verify(&args, &layout, run_id).await;
    let wd = layout.wd();
    let root = wd.is_dir().then_some(wd.as_path());
    let result = match write_result(&layout, root, &outcome, started.elapsed()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "error: cannot write results under {}: {e} — choose a writable --output",
                out_dir.display()
            );
            return Ok(ExitCode::from(2));
        }
    };
    if global.json {
        print_json(&result)?;
    } else {
        print!("{}", render(&result, &out_dir));
    }
    if let Err(e) = &outcome {
        eprintln!(
            "error: {}",
            e.to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    Ok(match result.status {
        Status::Verified => ExitCode::SUCCESS,
        Status::Unverified | Status::Timeout => ExitCode::from(1),
        Status::Error => ExitCode::from(2),
    })
}

fn is_lean_file(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()) == Some("lean")
}

/// Open `inputs` as a project at `dest` (copying a directory, staging bare files).
fn materialize(inputs: &[PathBuf], dest: &Path) -> Result<LeanProject, VerifyError> {
    if inputs.len() == 1 && inputs[0].is_dir() {
        let src = LeanProject::open(&inputs[0])?;
        RunLayout::new(dest.parent().unwrap_or(Path::new(".")))
            .save_candidate(src.root())
            .map_err(|e| {
                VerifyError::InvalidInput(format!(
                    "{}: cannot copy the project: {e}",
                    dest.display()
                ))
            })?;
        return Ok(LeanProject::open(dest)?);
    }
    if let Some(d) = inputs.iter().find(|p| p.is_dir()) {
        return Err(VerifyError::InvalidInput(format!(
            "{}: pass either one project directory or .lean files, not both",
            d.display()
        )));
    }
    if let Some(bad) = inputs.iter().find(|p| !is_lean_file(p)) {
        return Err(atp_verify::ProjectError::NotLeanFile { path: bad.clone() }.into());
    }
    if dest.exists() {
        std::fs::remove_dir_all(dest).map_err(|e| {
            VerifyError::InvalidInput(format!("{}: cannot clear: {e}", dest.display()))
        })?;
    }
    Ok(stage_files(inputs, dest)?)
}

async fn verify(
    args: &Args,
    layout: &RunLayout,
    run_id: RunId,
) -> Result<atp_verify::Verification, VerifyError> {
    std::fs::create_dir_all(layout.logs()).map_err(|e| {
        VerifyError::InvalidInput(format!("{}: cannot create: {e}", layout.logs().display()))
    })?;
    let candidate = materialize(&args.inputs, &layout.wd())?;
    let staged_original;
    let original = match &args.original {
        None => None,
        Some(p) if p.is_dir() => Some(LeanProject::open(p)?),
        Some(p) => {
            staged_original = tempdir_in(&layout.root)?;
            Some(stage_files(std::slice::from_ref(p), &staged_original)?)
        }
    };
    let mut spec = args.backend.spec();
    spec.network = NetworkMode::None;
    let backend = backend::make(&spec).map_err(|e| VerifyError::InvalidInput(e.to_string()))?;
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
    if args.original.as_ref().is_some_and(|p| !p.is_dir()) {
        let _ = std::fs::remove_dir_all(layout.root.join(".original"));
    }
    out
}

fn tempdir_in(root: &Path) -> Result<PathBuf, VerifyError> {
    let d = root.join(".original");
    if d.exists() {
        let _ = std::fs::remove_dir_all(&d);
    }
    Ok(d)
}

/// The human summary.
pub fn render(r: &ProofResult, out_dir: &Path) -> String {
    let mut s = String::new();
    let status = match r.status {
        Status::Verified => "VERIFIED",
        Status::Unverified => "UNVERIFIED",
        Status::Timeout => "TIMEOUT",
        Status::Error => "ERROR",
    };
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
        ProofResult {
            status: Status::Unverified,
            prover: None,
            verification: Some(report),
            output_dir: "out".into(),
            completed_files: Default::default(),
            cost_usd: None,
            duration_s: 1.3,
            metadata: Default::default(),
            error: None,
        }
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
        r.error = Some(atp_verify::result::ErrorInfo {
            kind: "toolchain_mismatch".into(),
            message: "project toolchain `a` differs from the image's `b`".into(),
        });
        insta::assert_snapshot!(render(&r, Path::new("out")), @r"
        ERROR — toolchain_mismatch: project toolchain `a` differs from the image's `b`
        output: out (logs/result.json, logs/compile.log)
        ");
    }
}
