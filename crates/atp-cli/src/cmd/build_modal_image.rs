//! `atp build-modal-image`: build the image spec on Modal layer by layer (live build logs) and
//! publish it under a name the Modal backend looks up at run time.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use atp_modal::ModalCredentials;
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
    let layers = spec.to_modal_layers()?;
    let creds = ModalCredentials::from_env().map_err(|e| e.into_backend("credentials"))?;
    let json = global.json;
    let mut log = |l: &str| {
        // Build logs stream live; with --json they go to stderr so stdout stays JSON.
        if json {
            eprint!("{l}");
        } else {
            print!("{l}");
        }
    };
    // A signal abandons the build (no sandbox exists; nothing is published) and exits 128+N.
    let built = tokio::select! {
        r = atp_modal::build_and_publish(creds, &args.app, &args.name, &layers, args.force, &mut log) => r?,
        _ = global.cancel.cancelled() => {
            eprintln!("error: build-modal-image interrupted — nothing was published");
            return Ok(ExitCode::from(130));
        }
    };
    let pins = spec.pin_env()?;
    if global.json {
        print_json(&json!({
            "image_id": built.image_id,
            "tag": built.tag,
            "app": args.app,
            "layers": built.layers,
            "spec": path,
            "pins": pins,
            "lock": lock_json(&status, &spec),
        }))?;
    } else {
        println!(
            "published {} = {} ({} layers from {})",
            built.tag,
            built.image_id,
            built.layers,
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
