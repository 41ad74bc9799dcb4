//! Running one command of a prover in its sandbox with its output logged as it arrives.
//!
//! Invariant: every stdout line reaches `logs/stdout.txt` (appended and flushed) before the
//! caller's line hook sees it, so a killed run keeps its transcript; stderr is appended to
//! `logs/stderr.txt` when the command ends (also on timeout and cancellation).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use atp_backend::{BackendError, ComputeSession, ExecOptions};
use tokio_util::sync::CancellationToken;

/// How a logged command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// The command exited with this status.
    Exited(i64),
    /// Its budget elapsed and it was killed.
    TimedOut,
    /// The run was cancelled and the command killed.
    Cancelled,
    /// The sandbox or the engine failed (kind, one line).
    Failed(String, String),
}

/// The result of [`run_logged`].
#[derive(Debug, Clone)]
pub struct RunReport {
    pub end: RunEnd,
    /// Lines of stdout seen.
    pub lines: u64,
    pub stderr: String,
    pub duration: Duration,
}

/// Run `command` in `session`, appending stdout to `stdout_log` line by line (flushed) and
/// handing each line to `on_line`; stderr is appended to `stderr_log` at the end. A
/// cancellation of `cancel` kills the command.
pub async fn run_logged(
    session: &dyn ComputeSession,
    command: &str,
    opts: ExecOptions,
    stdout_log: &Path,
    stderr_log: &Path,
    cancel: &CancellationToken,
    mut on_line: impl FnMut(&str) + Send,
) -> RunReport {
    let started = tokio::time::Instant::now();
    let mut out = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(stdout_log)
    {
        Ok(f) => f,
        Err(e) => {
            return RunReport {
                end: RunEnd::Failed(
                    "io".into(),
                    format!("{}: cannot open the log: {e}", stdout_log.display()),
                ),
                lines: 0,
                stderr: String::new(),
                duration: started.elapsed(),
            }
        }
    };
    let mut handle = match session.exec(command, opts).await {
        Ok(h) => h,
        Err(e) => {
            return RunReport {
                end: RunEnd::Failed(e.kind().into(), e.to_string()),
                lines: 0,
                stderr: String::new(),
                duration: started.elapsed(),
            }
        }
    };
    let mut lines = 0u64;
    let mut cancelled = false;
    loop {
        tokio::select! {
            line = handle.next_line() => match line {
                Some(line) => {
                    lines += 1;
                    // A full disk must not stop the run: the line still reaches the parser.
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                    on_line(&line);
                }
                None => break,
            },
            _ = cancel.cancelled(), if !cancelled => {
                cancelled = true;
                let _ = handle.cancel().await;
            }
        }
    }
    let waited = handle.wait().await;
    let (end, stderr) = match waited {
        Ok(r) => (
            if cancelled {
                RunEnd::Cancelled
            } else {
                RunEnd::Exited(r.exit_code)
            },
            r.stderr,
        ),
        Err(BackendError::CommandTimeout { partial, .. }) => (RunEnd::TimedOut, partial.stderr),
        Err(BackendError::Cancelled { partial }) => (RunEnd::Cancelled, partial.stderr),
        Err(e) => {
            let stderr = e.partial().map(|p| p.stderr.clone()).unwrap_or_default();
            if cancelled {
                (RunEnd::Cancelled, stderr)
            } else {
                (RunEnd::Failed(e.kind().into(), e.to_string()), stderr)
            }
        }
    };
    if !stderr.is_empty() {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(stderr_log)
        {
            let _ = f.write_all(stderr.as_bytes());
            if !stderr.ends_with('\n') {
                let _ = f.write_all(b"\n");
            }
        }
    }
    RunReport {
        end,
        lines,
        stderr,
        duration: started.elapsed(),
    }
}
