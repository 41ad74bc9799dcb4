//! `atp image render|pins|lock`: what the image spec would build, which pins an image carries,
//! and the lock that fixes the spec's tool versions.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use atp_image::{ImageLock, ImagePins, ImageSpec, LockMode, LockStatus, LockedBase};
use serde_json::json;

use super::{print_json, Global};

/// `atp image ...`
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print what would be built: the Dockerfile or Modal's layers.
    Render(RenderArgs),
    /// Print the Lean pins and locked tool versions of the spec, or of a local Docker image (its
    /// labels, else the spec's pins flagged as assumed).
    Pins(PinsArgs),
    /// Resolve the exact version of every tool the spec installs (npm and PyPI JSON APIs, no
    /// build) and write the lock beside the spec.
    Lock(LockArgs),
}

/// Whether to use the lock beside the spec (default: when it exists and is fresh).
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct LockFlags {
    /// Require the lock beside the spec to exist and be fresh (made from the spec as it is).
    #[arg(long, conflicts_with = "unlocked")]
    pub locked: bool,
    /// Ignore the lock: install whatever the registries serve for unpinned tools.
    #[arg(long)]
    pub unlocked: bool,
}

impl LockFlags {
    fn mode(self) -> LockMode {
        LockMode::from_flags(self.locked, self.unlocked)
    }
}

#[derive(Debug, clap::Args)]
pub struct LockArgs {
    /// Image spec (default: images/open-atp.toml).
    #[arg(long, value_name = "PATH")]
    pub spec: Option<PathBuf>,
    /// Where to write the lock (default: beside the spec, same name with `.lock`).
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// npm registry to resolve against.
    #[arg(long, value_name = "URL", env = atp_lock::ENV_NPM_REGISTRY, default_value = atp_lock::DEFAULT_NPM_REGISTRY)]
    pub npm_registry: String,
    /// PyPI index to resolve against (its JSON API: URL/pypi/NAME/json).
    #[arg(long, value_name = "URL", env = atp_lock::ENV_PYPI_INDEX, default_value = atp_lock::DEFAULT_PYPI_INDEX)]
    pub pypi_index: String,
}

/// Render target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// A classic Dockerfile; its build context is the skeleton directory (images/lean/).
    Dockerfile,
    /// Modal's ordered layers (registry base, then Dockerfile commands per layer).
    Modal,
}

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// Image spec (default: images/open-atp.toml).
    #[arg(long, value_name = "PATH")]
    pub spec: Option<PathBuf>,
    /// What to render.
    #[arg(long, value_enum)]
    pub target: Target,
    #[command(flatten)]
    pub lock: LockFlags,
}

#[derive(Debug, clap::Args)]
pub struct PinsArgs {
    /// Image spec (default: images/open-atp.toml).
    #[arg(long, value_name = "PATH")]
    pub spec: Option<PathBuf>,
    /// Read the pins from this local Docker image's labels.
    #[arg(long, value_name = "NAME")]
    pub image: Option<String>,
    #[command(flatten)]
    pub lock: LockFlags,
}

/// Load `--spec` or the default spec with its lock per `flags` (a stale lock in the default
/// mode is one `warning:` line on stderr). Reads files only: nothing is contacted.
pub fn load_locked_spec(
    spec: Option<&PathBuf>,
    flags: LockFlags,
) -> Result<(PathBuf, ImageSpec, LockStatus)> {
    let path = spec_path(spec)?;
    let (spec, status) = ImageSpec::load_with_lock(&path, flags.mode())?;
    if let Some(warning) = status.warning() {
        let _ = writeln!(std::io::stderr(), "warning: {warning}");
    }
    Ok((path, spec, status))
}

/// `--spec` or the default spec's path, with a remedy when the default is not found.
fn spec_path(spec: Option<&PathBuf>) -> Result<PathBuf> {
    Ok(match spec {
        Some(p) => p.clone(),
        None => {
            let default = atp_image::default_spec_path();
            if !default.exists() {
                anyhow::bail!(
                    "no image spec at {} (run from the atp checkout, or pass --spec PATH)",
                    default.display()
                );
            }
            default
        }
    })
}

/// The lock status as JSON: `{status, path, lock_hash}`.
pub fn lock_json(status: &LockStatus, spec: &ImageSpec) -> serde_json::Value {
    json!({
        "status": status.as_str(),
        "path": status.path(),
        "lock_hash": spec.lock().map(ImageLock::lock_hash),
    })
}

pub async fn run(args: Args, global: &Global) -> Result<ExitCode> {
    match args.command {
        Command::Render(args) => render(args, global)?,
        Command::Pins(args) => pins(args, global).await?,
        Command::Lock(args) => lock(args, global).await?,
    }
    Ok(ExitCode::SUCCESS)
}

fn render(args: RenderArgs, global: &Global) -> Result<()> {
    let (path, spec, status) = load_locked_spec(args.spec.as_ref(), args.lock)?;
    let labels = spec.image_labels()?;
    let lock = lock_json(&status, &spec);
    match (args.target, global.json) {
        (Target::Dockerfile, false) => print!("{}", spec.to_dockerfile()?),
        (Target::Modal, false) => print!("{}", modal_text(&spec)?),
        (Target::Dockerfile, true) => print_json(&json!({
            "target": "dockerfile",
            "spec": path,
            "tag": spec.tag,
            "dockerfile": spec.to_dockerfile()?,
            "context": spec.build_context().iter().map(|(n, _)| n).collect::<Vec<_>>(),
            "labels": labels,
            "lock": lock,
        }))?,
        (Target::Modal, true) => print_json(&json!({
            "target": "modal",
            "spec": path,
            "tag": spec.tag,
            "layers": spec.to_modal_layers()?,
            "env": spec.pin_env()?,
            "labels": labels,
            "lock": lock,
        }))?,
    }
    Ok(())
}

/// The layers as Modal's builder receives them, one block per layer.
fn modal_text(spec: &ImageSpec) -> Result<String> {
    let mut out =
        String::from("# Modal layers rendered by atp-image; pins are in the last layer's ENV.\n");
    for (i, layer) in spec.to_modal_layers()?.iter().enumerate() {
        out.push_str(&format!("\n# layer {i}\n"));
        for command in layer.commands_with_from() {
            out.push_str(&command);
            out.push('\n');
        }
    }
    Ok(out)
}

async fn pins(args: PinsArgs, global: &Global) -> Result<()> {
    let (_, spec, status) = load_locked_spec(args.spec.as_ref(), args.lock)?;
    let pins = match &args.image {
        None => ImagePins::spec_defaults(&spec)?,
        Some(image) => {
            let backend = crate::backend::make(&crate::backend::BackendSpec {
                kind: crate::backend::BackendKind::Docker,
                image: image.clone(),
                network: atp_backend::NetworkMode::Default,
            })?;
            let info = backend
                .image_info()
                .await
                .with_context(|| format!("reading the labels of {image}"))?;
            ImagePins::from_labels_or_spec(&info.labels, &spec)?
        }
    };
    if global.json {
        let lock = args.image.is_none().then(|| lock_json(&status, &spec));
        print_json(&json!({ "image": args.image, "pins": pins, "lock": lock }))?;
    } else {
        print!("{}", pins_text(&pins));
    }
    Ok(())
}

/// The pins as `key  value` lines, one `tool` line per locked tool.
pub fn pins_text(pins: &ImagePins) -> String {
    let source = match pins.source {
        atp_image::PinSource::Labels => "image labels",
        atp_image::PinSource::SpecDefaults => "spec defaults (not read from an image)",
    };
    let mut out = String::new();
    let mut line = |k: &str, v: &str| out.push_str(&format!("{k:<15} {v}\n"));
    line("lean-toolchain", &pins.lean_toolchain);
    line("mathlib-rev", &pins.mathlib_rev);
    line(
        "spec-hash",
        pins.spec_hash.as_deref().unwrap_or("(not labelled)"),
    );
    line(
        "lock-hash",
        pins.lock_hash
            .as_deref()
            .unwrap_or("(none: tools not locked)"),
    );
    line("source", source);
    for t in &pins.tools {
        line("tool", &format!("{} {} {}", t.kind, t.name, t.version));
    }
    out
}

async fn lock(args: LockArgs, global: &Global) -> Result<()> {
    let path = spec_path(args.spec.as_ref())?;
    let spec = ImageSpec::load(&path)?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| atp_image::lock_path_for(&path));
    let resolver = atp_lock::Resolver::new(atp_lock::Registries {
        npm: args.npm_registry.clone(),
        pypi: args.pypi_index.clone(),
    })?;
    let base = base_digest(&spec.base).await;
    let lock = resolver.lock(&spec, base).await?;
    let previous = std::fs::read_to_string(&output).ok();
    let text = lock.to_toml()?;
    let changed = previous.as_deref() != Some(text.as_str());
    if changed {
        std::fs::write(&output, &text)
            .with_context(|| format!("writing the lock {}", output.display()))?;
    }
    if global.json {
        print_json(&json!({
            "spec": path,
            "lock": output,
            "changed": changed,
            "lock_hash": lock.lock_hash(),
            "spec_hash": lock.spec_hash(),
            "base": lock.base(),
            "tools": lock.tools(),
        }))?;
    } else {
        println!(
            "{} {} for {} (lock-hash {})",
            if changed { "wrote" } else { "unchanged:" },
            output.display(),
            path.display(),
            lock.lock_hash()
        );
        for t in lock.tools() {
            let source = match t.source {
                atp_image::LockSource::Spec => "pinned in the spec".to_string(),
                atp_image::LockSource::Registry => format!("resolved from {}", t.requested),
            };
            println!(
                "  {:<5} {:<28} {:<10} {source}",
                t.kind.as_str(),
                t.name,
                t.version
            );
        }
        match (&lock.base().digest, &lock.base().note) {
            (Some(d), _) => println!("  base  {} @ {d}", lock.base().image),
            (None, note) => println!(
                "  base  {} (digest not recorded: {})",
                lock.base().image,
                note.as_deref().unwrap_or("unknown")
            ),
        }
    }
    Ok(())
}

/// The base image's registry digest from the local Docker engine, or why it is not known.
/// Never fails: a lock without a base digest is still a lock.
async fn base_digest(base: &str) -> LockedBase {
    if let Some((_, digest)) = base.split_once('@') {
        return LockedBase::with_digest(base, digest);
    }
    let lookup = async {
        let backend = crate::backend::make(&crate::backend::BackendSpec {
            kind: crate::backend::BackendKind::Docker,
            image: base.to_string(),
            network: atp_backend::NetworkMode::Default,
        })
        .map_err(|e| e.to_string())?;
        let info = backend.image_info().await.map_err(|e| match e {
            atp_backend::BackendError::ImageUnavailable { .. } => format!(
                "{base} was not present in the local Docker engine when locking; pull it and \
                 rerun `atp image lock` to pin its digest"
            ),
            e => format!("the local Docker engine was not reachable when locking ({e})"),
        })?;
        digest_for(base, &info.repo_digests).ok_or_else(|| {
            format!("{base} in the local Docker engine has no registry digest (built or imported locally)")
        })
    };
    match tokio::time::timeout(Duration::from_secs(10), lookup).await {
        Ok(Ok(digest)) => LockedBase::with_digest(base, digest),
        Ok(Err(note)) => LockedBase::unknown(base, one_line(&note)),
        Err(_) => LockedBase::unknown(
            base,
            "the local Docker engine did not answer within 10 s when locking",
        ),
    }
}

/// The digest (`sha256:…`) among an image's `RepoDigests` (`repo@sha256:…`) that belongs to
/// the repository of `base` (`name[:tag]`, Docker Hub's `docker.io/library/` implied).
fn digest_for(base: &str, repo_digests: &[String]) -> Option<String> {
    fn normal(repo: &str) -> &str {
        let repo = repo.strip_prefix("docker.io/").unwrap_or(repo);
        repo.strip_prefix("library/").unwrap_or(repo)
    }
    let repo = match base.rfind(':') {
        Some(i) if !base[i..].contains('/') => &base[..i],
        _ => base,
    };
    repo_digests.iter().find_map(|rd| {
        let (r, digest) = rd.split_once('@')?;
        (normal(r) == normal(repo) && digest.starts_with("sha256:")).then(|| digest.to_string())
    })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_digest_is_the_one_of_its_repository() {
        let d = format!("sha256:{}", "b".repeat(64));
        let other = format!("sha256:{}", "c".repeat(64));
        let digests = vec![format!("example.com/x@{other}"), format!("ubuntu@{d}")];
        assert_eq!(digest_for("ubuntu:24.04", &digests), Some(d.clone()));
        assert_eq!(
            digest_for("docker.io/library/ubuntu:24.04", &digests),
            Some(d.clone())
        );
        assert_eq!(digest_for("debian:12", &digests), None);
        assert_eq!(
            digest_for("localhost:5000/img", &[format!("localhost:5000/img@{d}")]),
            Some(d)
        );
        assert_eq!(digest_for("ubuntu:24.04", &[]), None);
    }
}
