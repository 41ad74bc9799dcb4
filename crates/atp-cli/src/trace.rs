//! atp's own trace of a run: every tracing event at info level or above, as JSON lines, in
//! `OUT/logs/atp.jsonl` (with the spans' fields: run id, sandbox id, phase).
//!
//! `main` installs the JSON layer once with a writer that goes nowhere; [`to_file`] points it
//! at a run's file until the returned guard is dropped.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use tracing_subscriber::fmt::MakeWriter;

type Slot = Arc<Mutex<Option<File>>>;

fn slot() -> &'static Slot {
    static SLOT: OnceLock<Slot> = OnceLock::new();
    SLOT.get_or_init(|| Arc::new(Mutex::new(None)))
}

/// The writer of the JSON layer: the current run's file, if any.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceWriter;

/// One event's write.
#[derive(Debug)]
pub struct TraceLine;

impl Write for TraceLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut f) = slot().lock() {
            if let Some(f) = f.as_mut() {
                // A failing trace must not fail the run.
                let _ = f.write_all(buf);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Ok(mut f) = slot().lock() {
            if let Some(f) = f.as_mut() {
                let _ = f.flush();
            }
        }
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for TraceWriter {
    type Writer = TraceLine;
    fn make_writer(&'a self) -> Self::Writer {
        TraceLine
    }
}

/// Stops tracing into the file when dropped.
#[derive(Debug)]
pub struct TraceGuard;

impl Drop for TraceGuard {
    fn drop(&mut self) {
        if let Ok(mut f) = slot().lock() {
            *f = None;
        }
    }
}

/// Trace into `path` (parents created) until the guard is dropped. A file that cannot be
/// created only costs the trace (logged as a warning).
pub fn to_file(path: &Path) -> TraceGuard {
    let opened = path
        .parent()
        .map(std::fs::create_dir_all)
        .transpose()
        .and_then(|_| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
        });
    match opened {
        Ok(f) => {
            if let Ok(mut s) = slot().lock() {
                *s = Some(f);
            }
        }
        Err(e) => tracing::warn!("cannot write the trace {}: {e}", path.display()),
    }
    TraceGuard
}
