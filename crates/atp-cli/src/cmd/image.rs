//! `atp image render|pins`: what the image spec would build, and which pins an image carries.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use atp_image::{ImagePins, ImageSpec};
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
    /// Print the Lean pins of the spec, or of a local Docker image (its labels, else the spec's
    /// pins flagged as assumed).
    Pins(PinsArgs),
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
}

#[derive(Debug, clap::Args)]
pub struct PinsArgs {
    /// Image spec (default: images/open-atp.toml).
    #[arg(long, value_name = "PATH")]
    pub spec: Option<PathBuf>,
    /// Read the pins from this local Docker image's labels.
    #[arg(long, value_name = "NAME")]
    pub image: Option<String>,
}

/// Load `--spec` or the default spec, with a remedy when the default is not found.
pub fn load_spec(spec: Option<&PathBuf>) -> Result<(PathBuf, ImageSpec)> {
    let path = match spec {
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
    };
    let spec = ImageSpec::load(&path)?;
    Ok((path, spec))
}

pub async fn run(args: Args, global: &Global) -> Result<ExitCode> {
    match args.command {
        Command::Render(args) => render(args, global)?,
        Command::Pins(args) => pins(args, global).await?,
    }
    Ok(ExitCode::SUCCESS)
}

fn render(args: RenderArgs, global: &Global) -> Result<()> {
    let (path, spec) = load_spec(args.spec.as_ref())?;
    let labels = spec.image_labels()?;
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
        }))?,
        (Target::Modal, true) => print_json(&json!({
            "target": "modal",
            "spec": path,
            "tag": spec.tag,
            "layers": spec.to_modal_layers()?,
            "env": spec.pin_env()?,
            "labels": labels,
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
    let (_, spec) = load_spec(args.spec.as_ref())?;
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
        print_json(&json!({ "image": args.image, "pins": pins }))?;
    } else {
        let source = match pins.source {
            atp_image::PinSource::Labels => "image labels",
            atp_image::PinSource::SpecDefaults => "spec defaults (not read from an image)",
        };
        println!("lean-toolchain  {}", pins.lean_toolchain);
        println!("mathlib-rev     {}", pins.mathlib_rev);
        println!(
            "spec-hash       {}",
            pins.spec_hash.as_deref().unwrap_or("(not labelled)")
        );
        println!("source          {source}");
    }
    Ok(())
}
