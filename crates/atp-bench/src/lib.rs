//! atp's benchmark runner: datasets, task sets, scheduling, the run store, aggregation and
//! reports. It calls the prove lifecycle (`atp_prover::prove`) once per cell and knows no
//! concrete prover or engine: it is handed `Arc<dyn Prover>`s and an `Arc<dyn ComputeBackend>`.
//!
//! - [`dataset`]: the registry (`atp datasets`) and downloads (`atp download NAME DIR`: a
//!   sparse, shallow git clone at a pinned commit, recorded in `DIR/.atp-dataset.toml`).
//! - [`answers`]: answer keys for definition holes (`--answers FILE`, PutnamBench's comments).
//! - [`tasks`]: the tasks of a directory (loose `.lean` files staged into the skeleton, lake
//!   projects as one task, `--tasks GLOB`).
//! - [`store`]: `OUT/<task>/<prover>/<attempt>/{task,wd,logs}`, configuration hashes, stamps.
//! - [`schedule`]: the bounded scheduler (global and per-prover bounds, task-major).
//! - [`bench`]: [`run`] — gate, plan, resume, cells, provenance, reports.
//! - [`aggregate`], [`report`], [`html`], [`provenance`]: what is solved, pass@k, the reports
//!   and `run.toml`; [`report::render`] is `atp report`.

pub mod aggregate;
pub mod answers;
pub mod bench;
pub mod dataset;
mod error;
pub mod html;
pub mod provenance;
pub mod report;
pub mod schedule;
pub mod store;
pub mod tasks;
pub mod util;

pub use aggregate::{pass_at_k, CellRecord, Outcome, ProverSummary};
pub use answers::AnswerKey;
pub use bench::{run, BenchEvent, BenchOptions, BenchProver, BenchSummary, EventSink, Mode};
pub use dataset::{DatasetRecord, DatasetSpec, DATASETS};
pub use error::BenchError;
pub use provenance::{RunInfo, RunState};
pub use store::{CellId, Store};
