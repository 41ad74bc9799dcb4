//! `atp examples [DIR]`: write atp's bundled examples, as bare `.lean` files and as one lake
//! project (`DIR/project/`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;

use crate::cmd::{print_json, Global};

/// The bundled examples (`examples/` of the repository), compiled in.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "MulReorder.lean",
        include_str!("../../../../examples/MulReorder.lean"),
    ),
    (
        "AbsMulLt.lean",
        include_str!("../../../../examples/AbsMulLt.lean"),
    ),
    (
        "InterSubset.lean",
        include_str!("../../../../examples/InterSubset.lean"),
    ),
    (
        "InterUnionDistrib.lean",
        include_str!("../../../../examples/InterUnionDistrib.lean"),
    ),
    (
        "SmulAdd.lean",
        include_str!("../../../../examples/SmulAdd.lean"),
    ),
];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write them (default: ./atp-examples); must be empty or absent.
    #[arg(value_name = "DIR", default_value = "atp-examples")]
    pub dir: PathBuf,
}

pub async fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let written = write(&args.dir)?;
    if global.json {
        print_json(&json!({ "dir": args.dir, "files": written }))?;
    } else {
        println!("wrote {} files to {}", written.len(), args.dir.display());
        println!(
            "  bare files: {}",
            EXAMPLES.iter().map(|e| e.0).collect::<Vec<_>>().join(", ")
        );
        println!("  lake project: {}", args.dir.join("project").display());
        println!(
            "try: atp prove {} --prover tactics",
            args.dir.join("MulReorder.lean").display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Write the examples under `dir`; returns the relative paths written.
pub fn write(dir: &Path) -> anyhow::Result<Vec<String>> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        anyhow::bail!(
            "{}: exists and is not empty — pass a new directory",
            dir.display()
        );
    }
    let mut written = Vec::new();
    std::fs::create_dir_all(dir.join("project"))?;
    for (name, text) in EXAMPLES {
        std::fs::write(dir.join(name), text)?;
        std::fs::write(dir.join("project").join(name), text)?;
        written.push(name.to_string());
        written.push(format!("project/{name}"));
    }
    for (name, bytes) in atp_image::Skeleton::builtin().files() {
        std::fs::write(dir.join("project").join(name), bytes)?;
        written.push(format!("project/{name}"));
    }
    written.sort();
    Ok(written)
}
