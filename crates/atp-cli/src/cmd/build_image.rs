//! `atp build-image`: build an image spec with the local Docker engine (Engine API, classic
//! builder), streaming the build's progress.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use atp_docker::build::{BuildError, BuildEvent, BuildRequest, ContextFile};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::image::{load_locked_spec, lock_json, LockFlags};
use super::{print_json, Global};

/// `atp build-image`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image spec (default: images/open-atp.toml).
    #[arg(long, value_name = "PATH")]
    pub spec: Option<PathBuf>,
    /// Tag of the result (default: the spec's `tag`).
    #[arg(long, value_name = "NAME")]
    pub tag: Option<String>,
    /// Rebuild every step instead of reusing cached layers.
    #[arg(long)]
    pub no_cache: bool,
    /// Network mode of the build's RUN steps (e.g. `none`); engine default if unset.
    #[arg(long, value_name = "MODE")]
    pub network: Option<String>,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
    /// Build with this Lean toolchain instead of the skeleton's (e.g. leanprover/lean4:v4.27.0,
    /// for a dataset pinned to it); the image's labels carry it. Needs --mathlib-rev.
    #[arg(long, value_name = "T", requires = "mathlib_rev")]
    pub lean_toolchain: Option<String>,
    /// Build with this Mathlib revision instead of the skeleton's. Needs --lean-toolchain.
    #[arg(long, value_name = "R", requires = "lean_toolchain")]
    pub mathlib_rev: Option<String>,
    #[command(flatten)]
    pub lock: LockFlags,
}

/// The tag of a build whose pins are overridden, unless `--tag` says otherwise: the spec's
/// repository with the toolchain's version (`open-atp:v4.27.0`), so the default image is not
/// replaced by a differently pinned one.
pub fn overridden_tag(spec_tag: &str, lean_toolchain: &str) -> String {
    let repo = match spec_tag.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => spec_tag,
    };
    let version = lean_toolchain
        .rsplit_once(':')
        .map_or(lean_toolchain, |(_, v)| v);
    let version: String = version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{repo}:{version}")
}

/// The request that builds `spec` as `tag`.
pub fn request_for(
    spec: &atp_image::ImageSpec,
    tag: &str,
    no_cache: bool,
    network: Option<String>,
) -> Result<BuildRequest> {
    Ok(BuildRequest {
        dockerfile: spec.to_dockerfile()?,
        context: spec
            .build_context()
            .into_iter()
            .map(|(name, bytes)| ContextFile::new(name, bytes))
            .collect(),
        tag: tag.to_string(),
        // The Dockerfile carries every label, so `docker build` of the rendered Dockerfile
        // yields the same image metadata.
        labels: Default::default(),
        no_cache,
        network_mode: network,
    })
}

/// Build atp's built-in spec as `tag` with progress on stderr (what `atp prove` does when its
/// image is missing).
pub async fn build_builtin(tag: &str, quiet: bool) -> Result<()> {
    let spec = atp_image::ImageSpec::builtin()?;
    let request = request_for(&spec, tag, false, None)?;
    let backend = atp_docker::DockerBackend::for_image(tag.to_string());
    let mut progress = Progress::new(quiet);
    let result = backend
        .build_image(request, |event| progress.event(event))
        .await;
    progress.finish();
    result?;
    Ok(())
}

pub async fn run(args: Args, global: &Global) -> Result<ExitCode> {
    // The lock is checked before anything is contacted: `--locked` refuses a stale or missing
    // lock without an engine or credentials.
    let (path, spec, status) = load_locked_spec(args.spec.as_ref(), args.lock)?;
    let (spec, default_tag) = match (&args.lean_toolchain, &args.mathlib_rev) {
        (Some(t), Some(r)) => {
            if args.lock.locked {
                anyhow::bail!(
                    "--locked with --lean-toolchain/--mathlib-rev: the lock fixes the skeleton's \
                     own pins, so a build with overridden pins is unlocked; drop --locked"
                );
            }
            let over = spec.with_pins(t, r)?;
            let tag = overridden_tag(&spec.tag, t);
            (over, tag)
        }
        _ => {
            let tag = spec.tag.clone();
            (spec, tag)
        }
    };
    let tag = args.tag.clone().unwrap_or(default_tag);
    let labels = spec.image_labels()?;
    let request = request_for(&spec, &tag, args.no_cache, args.network.clone())?;
    let backend = atp_docker::DockerBackend::for_image(tag.clone());

    let started = Instant::now();
    let mut progress = Progress::new(args.quiet);
    // A signal drops the build: the engine cancels it when the connection closes, and the
    // classic builder removes the step's container (`forcerm`). Exit 128+N (set by main).
    let result = tokio::select! {
        r = backend.build_image(request, |event| progress.event(event)) => r,
        _ = global.cancel.cancelled() => {
            progress.finish();
            eprintln!("error: build-image interrupted — the build was cancelled, {tag} not tagged");
            return Ok(ExitCode::from(130));
        }
    };
    progress.finish();
    let built = match result {
        Ok(built) => built,
        Err(e) => {
            let (step, last_lines) = match &e {
                BuildError::StepFailed {
                    step, last_lines, ..
                } => (Some(step.clone()), last_lines.clone()),
                _ => (None, Vec::new()),
            };
            if !last_lines.is_empty() {
                eprintln!("last output of the failing step:");
                for line in &last_lines {
                    eprintln!("  | {line}");
                }
            }
            if global.json {
                print_json(&json!({
                    "tag": tag,
                    "spec": path,
                    "error": e.to_string(),
                    "step": step,
                    "last_lines": last_lines,
                }))?;
            }
            return Err(e.into());
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if global.json {
        print_json(&json!({
            "tag": tag,
            "id": built.id,
            "steps": built.steps,
            "spec": path,
            "labels": labels,
            "lock": lock_json(&status, &spec),
            "seconds": seconds,
        }))?;
    } else if !args.quiet {
        println!(
            "built {tag} ({}) in {seconds:.1}s: {} steps",
            built.id, built.steps
        );
        for (k, v) in &labels {
            println!("  {k}={v}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Build progress on stderr: a spinner on a terminal, plain lines otherwise, nothing if quiet.
struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
}

impl Progress {
    fn new(quiet: bool) -> Self {
        if quiet {
            return Self {
                bar: None,
                plain: false,
            };
        }
        if !std::io::stderr().is_terminal() {
            return Self {
                bar: None,
                plain: true,
            };
        }
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        Self {
            bar: Some(bar),
            plain: false,
        }
    }

    fn event(&mut self, event: &BuildEvent) {
        match (event, &self.bar) {
            (
                BuildEvent::Step {
                    index,
                    total,
                    instruction,
                },
                Some(bar),
            ) => {
                bar.println(format!("[{index}/{total}] {}", shorten(instruction, 160)));
                bar.set_prefix(format!("[{index}/{total}]"));
                bar.set_message(String::new());
            }
            (BuildEvent::Output(line), Some(bar)) => bar.set_message(line.clone()),
            (
                BuildEvent::Step {
                    index,
                    total,
                    instruction,
                },
                None,
            ) if self.plain => {
                eprintln!("[{index}/{total}] {instruction}")
            }
            (BuildEvent::Output(line), None) if self.plain => eprintln!("    {line}"),
            _ => {}
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_overridden_build_gets_its_own_tag() {
        assert_eq!(
            super::overridden_tag("open-atp:latest", "leanprover/lean4:v4.27.0"),
            "open-atp:v4.27.0"
        );
        assert_eq!(
            super::overridden_tag("registry:5000/atp", "leanprover/lean4:v4.27.0-rc1"),
            "registry:5000/atp:v4.27.0-rc1"
        );
    }
}
