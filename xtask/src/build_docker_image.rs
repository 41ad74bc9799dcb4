//! `cargo xtask build-docker-image`: build the default sandbox image (`images/open-atp.toml`)
//! through the Engine API — the same build as `atp build-image` with its defaults.
//!
//! Needs a Docker engine with internet access: the spec installs packages and downloads
//! Mathlib's cache (~12 GB image).

use std::path::PathBuf;

use anyhow::{Context, Result};
use atp_docker::build::{BuildEvent, BuildRequest, ContextFile};
use atp_docker::DockerBackend;
use atp_image::ImageSpec;

/// Arguments of `cargo xtask build-docker-image`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Tag of the result (default: the spec's `tag`, `open-atp:latest`).
    #[arg(long)]
    pub tag: Option<String>,
    /// Rebuild every step instead of reusing cached layers.
    #[arg(long)]
    pub no_cache: bool,
    /// Spec file (default: `images/open-atp.toml` of this workspace).
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Require the spec's lock to exist and be fresh (default: use it when fresh).
    #[arg(long, conflicts_with = "unlocked")]
    pub locked: bool,
    /// Ignore the spec's lock.
    #[arg(long)]
    pub unlocked: bool,
}

pub fn run(args: Args) -> Result<()> {
    let spec_path = match args.spec {
        Some(path) => path,
        None => crate::test_image::workspace_root()?.join(atp_image::default_spec_path()),
    };
    let (spec, status) = ImageSpec::load_with_lock(
        &spec_path,
        atp_image::LockMode::from_flags(args.locked, args.unlocked),
    )?;
    if let Some(warning) = status.warning() {
        eprintln!("warning: {warning}");
    }
    let tag = args.tag.unwrap_or_else(|| spec.tag.clone());
    let request = BuildRequest {
        dockerfile: spec.to_dockerfile()?,
        context: spec
            .build_context()
            .into_iter()
            .map(|(name, bytes)| ContextFile::new(name, bytes))
            .collect(),
        tag: tag.clone(),
        labels: Default::default(),
        no_cache: args.no_cache,
        network_mode: None,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let built = runtime.block_on(async {
        DockerBackend::for_image(tag.clone())
            .build_image(request, |event| match event {
                BuildEvent::Step {
                    index,
                    total,
                    instruction,
                } => println!("[{index}/{total}] {instruction}"),
                BuildEvent::Output(line) => println!("    {line}"),
            })
            .await
            .map_err(anyhow::Error::from)
    })?;
    println!("built {tag} ({}) from {}", built.id, spec_path.display());
    for (k, v) in spec.image_labels()? {
        println!("  label {k}={v}");
    }
    Ok(())
}
