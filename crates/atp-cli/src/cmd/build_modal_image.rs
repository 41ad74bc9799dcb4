//! `atp build-modal-image`: build the image spec on Modal layer by layer (live build logs) and
//! publish it under a name the Modal backend looks up at run time.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use atp_modal::{LayerSpec, ModalClient, ModalCredentials};
use serde_json::json;

use super::image::{load_locked_spec, lock_json, LockFlags};
use super::{print_json, Global};

/// `atp build-modal-image`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Name to publish under (`name[:tag]`, tag `latest` by default).
    #[arg(long, value_name = "NAME", default_value = "open-atp")]
    pub name: String,
    /// Modal app the build runs in.
    #[arg(long, value_name = "APP", default_value = "open-atp")]
    pub app: String,
    /// Rebuild every layer instead of reusing Modal's cache.
    #[arg(long)]
    pub force: bool,
    /// Image spec (default: images/open-atp.toml).
    #[arg(long, value_name = "PATH")]
    pub spec: Option<PathBuf>,
    #[command(flatten)]
    pub lock: LockFlags,
}

pub async fn run(args: Args, global: &Global) -> Result<ExitCode> {
    // The lock is checked before anything is contacted: `--locked` refuses a stale or missing
    // lock without an engine or credentials.
    let (path, spec, status) = load_locked_spec(args.spec.as_ref(), args.lock)?;
    let layers: Vec<LayerSpec> = spec
        .to_modal_layers()?
        .into_iter()
        .map(|l| LayerSpec {
            base: l.base,
            dockerfile_commands: l.dockerfile_commands,
        })
        .collect();
    let client = ModalClient::new(ModalCredentials::from_env()?)?;
    let app_id = client.app_get_or_create(&args.app, true).await?;
    let json = global.json;
    let mut log = |l: &str| {
        // Build logs stream live; with --json they go to stderr so stdout stays JSON.
        if json {
            eprint!("{l}");
        } else {
            print!("{l}");
        }
    };
    let image_id = client
        .image_build(&app_id, &layers, args.force, &mut log)
        .await?;
    client.image_publish(&image_id, &args.name).await?;
    let tag = atp_modal::client::normalize_tag(&args.name);
    let pins = spec.pin_env()?;
    if global.json {
        print_json(&json!({
            "image_id": image_id,
            "tag": tag,
            "app": args.app,
            "layers": layers.len(),
            "spec": path,
            "pins": pins,
            "lock": lock_json(&status, &spec),
        }))?;
    } else {
        println!(
            "published {tag} = {image_id} ({} layers from {})",
            layers.len(),
            path.display()
        );
        for (k, v) in &pins {
            println!("  pin {k}={v}");
        }
        println!(
            "the Modal backend looks it up by name: atp verify --backend modal --image {}",
            args.name
        );
    }
    Ok(ExitCode::SUCCESS)
}
