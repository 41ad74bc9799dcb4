//! The flags every command that runs provers shares (`atp prove`, `atp benchmark`).

use std::path::PathBuf;

use atp_backend::RunId;
use atp_prover::PriceTable;

/// Flattened into `atp prove` and `atp benchmark`; recorded by `atp prove` in result.json's
/// `provenance.invocation` (flattened there too, so the record's shape is the flags').
#[derive(Debug, Clone, Default, clap::Args, serde::Serialize, serde::Deserialize)]
pub struct RunArgs {
    /// A price table replacing entries of atp's (same format as prices.toml).
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,
    /// Fail when the image is missing instead of building it from atp's built-in spec.
    #[arg(long)]
    pub no_build: bool,
    /// The run id (labels every sandbox of the run; default: a fresh one).
    #[arg(long, value_name = "ID")]
    pub run_id: Option<RunId>,
}

impl RunArgs {
    /// The run id given, or a fresh one.
    pub fn run_id(&self) -> RunId {
        self.run_id.clone().unwrap_or_default()
    }

    /// atp's price table, with `--prices` entries replacing its own.
    pub fn prices(&self) -> anyhow::Result<PriceTable> {
        Ok(match &self.prices {
            Some(p) => PriceTable::builtin_with(p)?,
            None => PriceTable::builtin(),
        })
    }
}
