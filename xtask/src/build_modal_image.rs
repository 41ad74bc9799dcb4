//! `cargo xtask build-modal-image`: build the default sandbox image (`images/open-atp.toml`) on
//! Modal layer by layer and publish it under a name — the same as `atp build-modal-image`.
//!
//! Needs Modal credentials (`modal setup` or MODAL_TOKEN_ID / MODAL_TOKEN_SECRET); set
//! MODAL_SERVER_URL to a `cargo xtask fake-modal` URL to try it locally.

use std::path::PathBuf;

use anyhow::{Context, Result};
use atp_image::ImageSpec;
use atp_modal::ModalCredentials;

/// Arguments of `cargo xtask build-modal-image`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Name to publish under (`name[:tag]`, tag `latest` by default).
    #[arg(long, default_value = "open-atp")]
    pub name: String,
    /// Modal app the build runs in.
    #[arg(long, default_value = "open-atp")]
    pub app: String,
    /// Rebuild every layer instead of reusing Modal's cache.
    #[arg(long)]
    pub force: bool,
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
    let layers = spec.to_modal_layers()?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let creds = ModalCredentials::from_env()?;
        println!("building {} layers in app {}", layers.len(), args.app);
        let published = atp_modal::build_and_publish(
            creds,
            &args.app,
            &args.name,
            &layers,
            args.force,
            &mut |l: &str| print!("    {l}"),
        )
        .await?;
        println!(
            "published {} = {} from {}",
            published.tag,
            published.image_id,
            spec_path.display()
        );
        for (k, v) in spec.pin_env()? {
            println!("  pin {k}={v}");
        }
        println!(
            "the Modal backend finds it by name: atp verify --backend modal --image {}",
            args.name
        );
        Ok(())
    })
}
