use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::stream::BoxStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::layout::{TIMEOUT_EXIT, TIMEOUT_KILLED_EXIT};
use crate::{BackendError, CommandResult, LineSplitter, Result};

/// The engine-specific half of a running command: how to kill it.
#[async_trait]
pub trait ExecDriver: Send + Sync + 'static {
    /// Kill the command's whole process tree (best effort; must return promptly).
    async fn cancel(&self) -> Result<()>;
}

#[derive(Default)]
struct SinkState {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    split: LineSplitter,
}

/// Where a backend pours a command's output as it arrives.
///
/// Stdout is split into lines (across arbitrary chunk and UTF-8 boundaries) and forwarded to the
/// handle's line stream at once; both streams are also kept whole for the [`CommandResult`].
#[derive(Clone)]
pub struct OutputSink {
    state: Arc<Mutex<SinkState>>,
    lines: mpsc::UnboundedSender<String>,
}

impl fmt::Debug for OutputSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutputSink").finish_non_exhaustive()
    }
}

impl OutputSink {
    /// Record a chunk of stdout.
    pub fn stdout(&self, chunk: &[u8]) {
        let lines = {
            let mut st = lock(&self.state);
            st.stdout.extend_from_slice(chunk);
            st.split.push(chunk)
        };
        for line in lines {
            // A receiver that went away only means nobody streams; the result keeps everything.
            let _ = self.lines.send(line);
        }
    }

    /// Record a chunk of stderr.
    pub fn stderr(&self, chunk: &[u8]) {
        lock(&self.state).stderr.extend_from_slice(chunk);
    }

    fn flush(&self) {
        let last = lock(&self.state).split.finish();
        if let Some(line) = last {
            let _ = self.lines.send(line);
        }
    }

    fn snapshot(&self, exit_code: i64, duration: Duration) -> CommandResult {
        let st = lock(&self.state);
        CommandResult {
            exit_code,
            stdout: String::from_utf8_lossy(&st.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&st.stderr).into_owned(),
            duration,
        }
    }
}

fn lock(m: &Mutex<SinkState>) -> std::sync::MutexGuard<'_, SinkState> {
    // A panic while holding the lock cannot leave the buffers inconsistent: recover.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running command: its stdout lines as they arrive, its result, and a way to kill it.
///
/// Invariants: [`wait`] never hangs past budget + grace + backstop margin (an engine that stops
/// answering yields [`BackendError::ExecTimeout`]); a command that exceeds its budget yields
/// [`BackendError::CommandTimeout`] with everything it printed; a handle dropped before the
/// command ended kills the command.
///
/// [`wait`]: CommandHandle::wait
pub struct CommandHandle {
    lines: Option<mpsc::UnboundedReceiver<String>>,
    task: Option<JoinHandle<Result<CommandResult>>>,
    driver: Arc<dyn ExecDriver>,
    cancelled: Arc<AtomicBool>,
}

impl fmt::Debug for CommandHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandHandle")
            .field("finished", &self.task.as_ref().map(|t| t.is_finished()))
            .finish_non_exhaustive()
    }
}

/// Timing parameters of one exec.
#[derive(Debug, Clone, Copy)]
struct Timing {
    budget: Duration,
    backstop: Duration,
}

impl CommandHandle {
    /// Start driving a command.
    ///
    /// `run` receives the sink, pours the command's output into it and resolves to the exit
    /// status (128+signal for a signalled command). `budget` is the command's own budget (the one
    /// given to GNU `timeout`); `backstop` the total client-side deadline after which the engine
    /// is declared stalled and the command killed through `driver`.
    pub fn spawn<F, Fut>(
        sandbox_id: impl Into<String>,
        budget: Duration,
        backstop: Duration,
        driver: Arc<dyn ExecDriver>,
        run: F,
    ) -> Self
    where
        F: FnOnce(OutputSink) -> Fut,
        Fut: Future<Output = Result<i64>> + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = OutputSink {
            state: Arc::new(Mutex::new(SinkState::default())),
            lines: tx,
        };
        let cancelled = Arc::new(AtomicBool::new(false));
        let timing = Timing { budget, backstop };
        let fut = run(sink.clone());
        let task = tokio::spawn(drive(
            sandbox_id.into(),
            timing,
            sink,
            fut,
            Arc::clone(&driver),
            Arc::clone(&cancelled),
        ));
        CommandHandle {
            lines: Some(rx),
            task: Some(task),
            driver,
            cancelled,
        }
    }

    /// The next stdout line, as soon as it is complete; `None` once the command's stdout ended
    /// (or after [`CommandHandle::lines`] took the stream).
    pub async fn next_line(&mut self) -> Option<String> {
        match self.lines.as_mut() {
            Some(rx) => rx.recv().await,
            None => None,
        }
    }

    /// Take stdout as a stream of lines.
    pub fn lines(&mut self) -> BoxStream<'static, String> {
        match self.lines.take() {
            Some(rx) => Box::pin(futures::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|line| (line, rx))
            })),
            None => Box::pin(futures::stream::empty()),
        }
    }

    /// Wait for the command to end; lines not yet streamed stay in the result's stdout.
    pub async fn wait(mut self) -> Result<CommandResult> {
        self.lines = None;
        let Some(task) = self.task.take() else {
            return Err(BackendError::InvalidInput(
                "command handle already waited on".into(),
            ));
        };
        match task.await {
            Ok(r) => r,
            Err(e) => Err(BackendError::engine("exec", "driver task", e)),
        }
    }

    /// Kill the command; [`CommandHandle::wait`] then returns [`BackendError::Cancelled`] with
    /// the partial output.
    pub async fn cancel(&mut self) -> Result<()> {
        self.cancelled.store(true, Ordering::SeqCst);
        self.driver.cancel().await
    }
}

impl Drop for CommandHandle {
    fn drop(&mut self) {
        let Some(task) = self.task.take() else { return };
        if task.is_finished() {
            return;
        }
        // The caller lost interest in a running command: kill it rather than let it run on.
        self.cancelled.store(true, Ordering::SeqCst);
        let driver = Arc::clone(&self.driver);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = driver.cancel().await;
            });
        }
    }
}

async fn drive<Fut>(
    id: String,
    timing: Timing,
    sink: OutputSink,
    fut: Fut,
    driver: Arc<dyn ExecDriver>,
    cancelled: Arc<AtomicBool>,
) -> Result<CommandResult>
where
    Fut: Future<Output = Result<i64>> + Send + 'static,
{
    let started = Instant::now();
    let outcome = tokio::time::timeout(timing.backstop, fut).await;
    sink.flush();
    let elapsed = started.elapsed();
    let code = match outcome {
        Err(_) => {
            let _ = tokio::time::timeout(Duration::from_secs(10), driver.cancel()).await;
            return Err(BackendError::ExecTimeout {
                id,
                after: elapsed,
                partial: Some(Box::new(sink.snapshot(-1, elapsed))),
            });
        }
        Ok(Err(e)) => return Err(e),
        Ok(Ok(code)) => code,
    };
    let result = sink.snapshot(code, elapsed);
    if cancelled.load(Ordering::SeqCst) {
        return Err(BackendError::Cancelled {
            partial: Box::new(result),
        });
    }
    let timed_out =
        code == TIMEOUT_EXIT || (code == TIMEOUT_KILLED_EXIT && elapsed >= timing.budget);
    if timed_out {
        return Err(BackendError::CommandTimeout {
            budget: timing.budget,
            partial: Box::new(result),
        });
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    struct Noop(Arc<AtomicBool>);

    #[async_trait]
    impl ExecDriver for Noop {
        async fn cancel(&self) -> Result<()> {
            self.0.store(true, Ordering::SeqCst);
            Ok(())
        }
    }

    fn driver() -> (Arc<AtomicBool>, Arc<dyn ExecDriver>) {
        let flag = Arc::new(AtomicBool::new(false));
        (Arc::clone(&flag), Arc::new(Noop(flag)))
    }

    #[tokio::test]
    async fn lines_stream_before_exit() {
        let (_, d) = driver();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let mut h = CommandHandle::spawn(
            "t",
            Duration::from_secs(5),
            Duration::from_secs(10),
            d,
            |sink| async move {
                sink.stdout(b"first\nsec");
                let _ = go_rx.await;
                sink.stdout(b"ond\nthird");
                sink.stderr(b"err");
                Ok(3)
            },
        );
        assert_eq!(h.next_line().await.as_deref(), Some("first"));
        go_tx.send(()).expect("still waiting");
        let rest: Vec<String> = h.lines().collect().await;
        assert_eq!(rest, vec!["second", "third"]);
        let r = h.wait().await.expect("result");
        assert_eq!(r.exit_code, 3);
        assert_eq!(r.stdout, "first\nsecond\nthird");
        assert_eq!(r.stderr, "err");
    }

    #[tokio::test]
    async fn exit_124_is_a_command_timeout_with_partial_output() {
        let (_, d) = driver();
        let h = CommandHandle::spawn(
            "t",
            Duration::from_secs(1),
            Duration::from_secs(10),
            d,
            |sink| async move {
                sink.stdout(b"partial\n");
                Ok(124)
            },
        );
        match h.wait().await {
            Err(BackendError::CommandTimeout { partial, .. }) => {
                assert_eq!(partial.stdout, "partial\n")
            }
            other => panic!("expected CommandTimeout, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_silent_engine_hits_the_backstop_and_is_killed() {
        let (killed, d) = driver();
        let h = CommandHandle::spawn(
            "sb-1",
            Duration::from_millis(50),
            Duration::from_millis(200),
            d,
            |sink| async move {
                sink.stdout(b"before stall\n");
                futures::future::pending::<()>().await;
                Ok(0)
            },
        );
        match h.wait().await {
            Err(BackendError::ExecTimeout { id, partial, .. }) => {
                assert_eq!(id, "sb-1");
                assert_eq!(partial.expect("partial").stdout, "before stall\n");
            }
            other => panic!("expected ExecTimeout, got {other:?}"),
        }
        assert!(killed.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn cancel_reports_cancelled() {
        let (killed, d) = driver();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut h = CommandHandle::spawn(
            "t",
            Duration::from_secs(5),
            Duration::from_secs(10),
            d,
            |_| async move {
                let _ = rx.await;
                Ok(137)
            },
        );
        h.cancel().await.expect("cancel");
        assert!(killed.load(Ordering::SeqCst));
        let _ = tx.send(());
        assert!(matches!(
            h.wait().await,
            Err(BackendError::Cancelled { .. })
        ));
    }
}
