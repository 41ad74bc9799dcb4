//! `cargo xtask conformance`: every candidate of the exploit corpus verified against its
//! original through Docker and the stand-in `lake` of atp-test:latest.
//!
//! The corpus path comes from `ATP_EXPLOIT_CORPUS` (or `--corpus`); without it the task prints
//! a message and exits 0. The corpus is only read: each case is materialised in a temp dir.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use atp_backend::{ComputeBackend, NetworkMode};
use atp_docker::{DockerBackend, DockerConfig};
use atp_verify::check::{source_checks, VerifyPolicy};
use atp_verify::corpus::{self, CorpusCase};

use atp_lean::LeanProject;
use atp_verify::{Verifier, VerifyOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The corpus directory (default: $ATP_EXPLOIT_CORPUS).
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Image holding the stand-in `lake`.
    #[arg(long, default_value = "atp-test:latest")]
    pub image: String,
    /// Cases verified concurrently.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
}

pub fn run(args: Args) -> Result<()> {
    let corpus = match args
        .corpus
        .clone()
        .or_else(|| std::env::var_os("ATP_EXPLOIT_CORPUS").map(PathBuf::from))
    {
        Some(c) => c,
        None => {
            println!("conformance skipped: set ATP_EXPLOIT_CORPUS (or --corpus) to the exploit corpus directory");
            return Ok(());
        }
    };
    // A relative path is taken from the workspace root (how `.ci/run` sets it) unless it
    // exists relative to the current directory.
    let corpus = if corpus.is_relative() && !corpus.exists() {
        crate::test_image::workspace_root()?.join(corpus)
    } else {
        corpus
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(conformance(args, corpus))
}

#[derive(Debug)]
struct Row {
    id: String,
    category: String,
    file: String,
    verdict: String,
    reason: String,
    source_refused: bool,
    lean_refused: bool,
    safeverify: String,
    valid: bool,
}

fn materialize(dir: &Path, files: &BTreeMap<String, String>) -> Result<LeanProject> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in atp_image::Skeleton::builtin().files() {
        std::fs::write(dir.join(name), text)?;
    }
    for (rel, text) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().context("parent")?)?;
        std::fs::write(p, text)?;
    }
    Ok(LeanProject::open(dir)?)
}

fn short(s: &str, n: usize) -> String {
    let one = atp_backend::one_line(s);
    if one.chars().count() > n {
        format!("{}…", one.chars().take(n).collect::<String>())
    } else {
        one
    }
}

async fn one(
    b: Arc<dyn ComputeBackend>,
    case: CorpusCase,
    sv: String,
    tmp: PathBuf,
) -> Result<Row> {
    let cand = materialize(&tmp.join("candidate"), &case.candidate)?;
    let orig = materialize(&tmp.join("original"), &case.original)?;
    let source = source_checks(
        &case.candidate,
        Some(&case.original),
        &VerifyPolicy::default(),
    );
    let v = Verifier::new(b)
        .with_options(VerifyOptions {
            timeout: Duration::from_secs(120),
            ..Default::default()
        })
        .verify(&cand, Some(&orig))
        .await;
    let (verdict, reason, lean_refused) = match v {
        Ok(v) => {
            let r = &v.report;
            let verdict = if r.verified {
                "verified"
            } else if r.timed_out {
                "timeout"
            } else {
                "refused"
            };
            let lean = r.violations.iter().any(|x| x.from_lean);
            let mut kinds: Vec<&str> = Vec::new();
            for x in &r.violations {
                if !kinds.contains(&x.kind.as_str()) {
                    kinds.push(x.kind.as_str());
                }
            }
            let reason = r
                .violations
                .first()
                .map(|x| format!("[{}] {}", kinds.join(","), x.message))
                .unwrap_or_default();
            (verdict.to_string(), reason, lean)
        }
        Err(e) => ("error".to_string(), format!("{}: {e}", e.kind()), false),
    };
    Ok(Row {
        id: case.id(),
        category: case.category.clone(),
        file: format!("{}.lean", case.name),
        verdict,
        reason,
        source_refused: !source.is_empty(),
        lean_refused,
        safeverify: sv,
        valid: case.is_valid(),
    })
}

async fn conformance(args: Args, corpus: PathBuf) -> Result<()> {
    let cases = corpus::load(&corpus)
        .with_context(|| format!("reading the exploit corpus at {}", corpus.display()))?;
    if cases.is_empty() {
        bail!("{}: no originals/<Category>/<Name>.lean with a matching candidate — is this the exploit corpus?", corpus.display());
    }
    let md = std::fs::read_to_string(corpus.join("VERIFIER_COMPARISON.md")).unwrap_or_default();
    let sv = corpus::safeverify_verdicts(&md);
    let backend: Arc<dyn ComputeBackend> = Arc::new(DockerBackend::new(DockerConfig {
        network: NetworkMode::None,
        ..DockerConfig::for_image(args.image.clone())
    }));
    backend
        .image_info()
        .await
        .with_context(|| format!("image {} (run `cargo xtask test-image`)", args.image))?;
    let tmp = tempfile::tempdir()?;
    let sem = Arc::new(tokio::sync::Semaphore::new(args.jobs.max(1)));
    let mut tasks = Vec::new();
    for (i, case) in cases.into_iter().enumerate() {
        let b = backend.clone();
        let s = sv.get(&case.id()).cloned().unwrap_or_else(|| "—".into());
        let dir = tmp.path().join(format!("case{i}"));
        let sem = sem.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            one(b, case, s, dir).await
        }));
    }
    let mut rows = Vec::new();
    for t in tasks {
        rows.push(t.await??);
    }
    print_table(&rows);
    let valid: Vec<&Row> = rows.iter().filter(|r| r.valid).collect();
    let exploits: Vec<&Row> = rows.iter().filter(|r| !r.valid).collect();
    let valid_ok = valid.iter().filter(|r| r.verdict == "verified").count();
    let refused: Vec<&&Row> = exploits.iter().filter(|r| r.verdict == "refused").collect();
    let from_source = refused.iter().filter(|r| r.source_refused).count();
    let lean_only = refused.iter().filter(|r| !r.source_refused).count();
    let lean_too = refused.iter().filter(|r| r.lean_refused).count();
    let passed: Vec<&str> = exploits
        .iter()
        .filter(|r| r.verdict != "refused")
        .map(|r| r.id.as_str())
        .collect();
    let sv_detected = exploits
        .iter()
        .filter(|r| r.safeverify.starts_with("detected"))
        .count();
    println!();
    println!("summary:");
    println!(
        "  Valid/ candidates verified:            {valid_ok}/{}",
        valid.len()
    );
    println!(
        "  exploit candidates refused:            {}/{}",
        refused.len(),
        exploits.len()
    );
    println!("    refused from the source alone:       {from_source}");
    println!("    refused only via Lean's output:      {lean_only} (through the stand-in)");
    println!("    also refused by Lean-level checks:   {lean_too} (sorry warnings, checker axioms and kernel replay, errors via the stand-in)");
    println!(
        "  not refused (need real Lean, or honest): {}",
        if passed.is_empty() {
            "none".to_string()
        } else {
            passed.join(", ")
        }
    );
    println!(
        "  SafeVerify detects (same exploits):    {sv_detected}/{}",
        exploits.len()
    );
    if valid_ok != valid.len() {
        bail!("an honest Valid/ candidate was not verified");
    }
    Ok(())
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<20} {:<28} {:<9} {:<8} {:<70} SafeVerify",
        "category", "file", "atp", "by", "atp reasons [kinds] first message"
    );
    for r in rows {
        println!(
            "{:<20} {:<28} {:<9} {:<8} {:<70} {}",
            r.category,
            r.file,
            r.verdict,
            match (r.source_refused, r.lean_refused) {
                (true, true) => "src+lean",
                (true, false) => "src",
                (false, true) => "lean",
                _ => "-",
            },
            short(&r.reason, 70),
            short(&r.safeverify, 70)
        );
    }
}
