//! [`DockerSession`]: one container, its execs, and its teardown.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use atp_backend::layout::{self, DEFAULT_BACKSTOP_MARGIN};
use atp_backend::{
    BackendError, CommandHandle, CommandResult, ComputeSession, ExecDriver, ExecOptions,
    ExecTiming, OutputSink, Result, RunId, TeardownGuard,
};
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::Docker;
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tracing::Instrument;

use crate::engine::{connect_negotiated, force_remove};
use crate::error::{self, BACKEND};

/// Capacity of the exec output decoder (bytes buffered per read).
const OUTPUT_CAPACITY: usize = 64 * 1024;
/// How long to wait for the engine to publish an exec's exit code once its output ended.
const EXIT_CODE_WAIT: Duration = Duration::from_secs(10);

/// A running container with the host workdir bind-mounted at [`layout::WORKDIR`].
///
/// Invariants: the container is removed by [`ComputeSession::close`] (idempotent, retried while
/// it has not succeeded) or, when the session is dropped unclosed, by its armed
/// [`TeardownGuard`] on a fresh engine connection; `exec` after `close` fails with
/// [`BackendError::Closed`]. A command running when its container dies ends with exit code 137
/// and its output kept; the next `exec` fails with [`BackendError::SandboxDead`].
pub struct DockerSession {
    docker: Docker,
    endpoint: String,
    id: String,
    run_id: RunId,
    workdir: PathBuf,
    default_timeout: Option<Duration>,
    closed: AtomicBool,
    exec_seq: AtomicU64,
    guard: Mutex<TeardownGuard>,
    close_lock: tokio::sync::Mutex<()>,
}

impl fmt::Debug for DockerSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerSession")
            .field("id", &self.id)
            .field("run_id", &self.run_id)
            .field("workdir", &self.workdir)
            .field("closed", &self.closed.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

impl DockerSession {
    /// Take ownership of the created container `id`; the teardown guard is armed at once.
    pub(crate) fn new(
        docker: Docker,
        endpoint: String,
        id: String,
        run_id: RunId,
        workdir: PathBuf,
        default_timeout: Option<Duration>,
    ) -> Self {
        let container = id.clone();
        let guard_endpoint = endpoint.clone();
        let guard = TeardownGuard::new(format!("docker container {id}"), move || {
            let endpoint = guard_endpoint;
            Box::pin(async move {
                match connect_negotiated(&endpoint).await {
                    Ok(docker) => match force_remove(&docker, &container).await {
                        Ok(()) => {
                            tracing::info!(container = %container, "teardown removed container")
                        }
                        Err(e) => tracing::error!(container = %container, "teardown: {e}"),
                    },
                    Err(e) => tracing::error!(container = %container, "teardown: {e}"),
                }
            })
        });
        DockerSession {
            docker,
            endpoint,
            id,
            run_id,
            workdir,
            default_timeout,
            closed: AtomicBool::new(false),
            exec_seq: AtomicU64::new(0),
            guard: Mutex::new(guard),
            close_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Start the container; on failure it is removed and a provision error returned.
    pub(crate) async fn start(&self) -> Result<()> {
        if let Err(e) = self.docker.start_container(&self.id, None).await {
            let err = if error::is_unreachable(&e) {
                error::map(&self.endpoint, "start container", e)
            } else {
                BackendError::Provision {
                    backend: BACKEND.into(),
                    detail: format!(
                        "container {} did not start: {}",
                        short(&self.id),
                        error::server_message(&e)
                    ),
                }
            };
            // Best effort; the guard retries on drop if this fails.
            let _ = self.close().await;
            return Err(err);
        }
        Ok(())
    }
}

impl DockerSession {
    /// Start `argv` as an Engine exec (the caller wrapped it, or deliberately did not).
    async fn start_exec(
        &self,
        exec_name: String,
        argv: Vec<String>,
        opts: ExecOptions,
        timing: ExecTiming,
    ) -> Result<CommandHandle> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(BackendError::Closed {
                id: short(&self.id).into(),
            });
        }
        let span = tracing::info_span!(
            "docker_exec",
            run_id = %self.run_id,
            container = short(&self.id),
            exec = %exec_name
        );
        let env: Vec<String> = opts.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let created = self
            .docker
            .create_exec(
                &self.id,
                CreateExecOptions {
                    attach_stdin: Some(opts.stdin.is_some()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(false),
                    env: (!env.is_empty()).then_some(env),
                    cmd: Some(argv),
                    ..Default::default()
                },
            )
            .instrument(span.clone())
            .await
            .map_err(|e| exec_error(&self.endpoint, &self.id, e))?;
        let driver = Arc::new(DockerExecDriver {
            docker: self.docker.clone(),
            endpoint: self.endpoint.clone(),
            container: self.id.clone(),
            exec_id: exec_name,
        });
        let docker = self.docker.clone();
        let endpoint = self.endpoint.clone();
        let container = self.id.clone();
        let stdin = opts.stdin;
        Ok(CommandHandle::spawn(
            short(&self.id),
            timing.budget,
            timing.backstop,
            driver,
            move |sink| {
                drive_exec(docker, endpoint, container, created.id, stdin, sink).instrument(span)
            },
        ))
    }

    /// Run `argv` as it is — outside the layout's wrapping, for the image contract check — to
    /// completion within `deadline`.
    pub(crate) async fn run_argv(
        &self,
        argv: Vec<String>,
        deadline: Duration,
    ) -> Result<CommandResult> {
        let timing = ExecTiming {
            budget: deadline,
            grace: Duration::ZERO,
            backstop: deadline,
        };
        let name = format!("check{}", self.exec_seq.fetch_add(1, Ordering::SeqCst));
        self.start_exec(name, argv, ExecOptions::default(), timing)
            .await?
            .wait()
            .await
    }
}

/// A 404/409 on an exec means the container is gone or stopped.
fn exec_error(endpoint: &str, container: &str, e: bollard::errors::Error) -> BackendError {
    match error::server_status(&e) {
        Some(404) | Some(409) => BackendError::SandboxDead {
            id: short(container).into(),
            detail: error::server_message(&e),
        },
        _ => error::map(endpoint, "exec", e),
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Kills an exec's process tree through a second exec of [`layout::cancel_script`].
struct DockerExecDriver {
    docker: Docker,
    endpoint: String,
    container: String,
    exec_id: String,
}

#[async_trait]
impl ExecDriver for DockerExecDriver {
    async fn cancel(&self) -> Result<()> {
        let created = self
            .docker
            .create_exec(
                &self.container,
                CreateExecOptions {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(layout::cancel_script(&self.exec_id)),
                    ..Default::default()
                },
            )
            .await;
        let exec = match created {
            Ok(x) => x,
            // The container is gone or stopped: nothing left to kill.
            Err(e) if matches!(error::server_status(&e), Some(404) | Some(409)) => return Ok(()),
            Err(e) => return Err(error::map(&self.endpoint, "cancel exec", e)),
        };
        match self.docker.start_exec(&exec.id, None).await {
            Ok(StartExecResults::Attached { mut output, .. }) => {
                while output.next().await.is_some() {}
                Ok(())
            }
            Ok(StartExecResults::Detached) => Ok(()),
            Err(e) if matches!(error::server_status(&e), Some(404) | Some(409)) => Ok(()),
            Err(e) => Err(error::map(&self.endpoint, "cancel exec", e)),
        }
    }
}

/// Stream an attached exec into `sink`, then read its exit code.
async fn drive_exec(
    docker: Docker,
    endpoint: String,
    container: String,
    exec: String,
    stdin: Option<Bytes>,
    sink: OutputSink,
) -> Result<i64> {
    let dead = |e| exec_error(&endpoint, &container, e);
    let started = docker
        .start_exec(
            &exec,
            Some(StartExecOptions {
                detach: false,
                tty: false,
                output_capacity: Some(OUTPUT_CAPACITY),
            }),
        )
        .await
        .map_err(dead)?;
    let StartExecResults::Attached { mut output, input } = started else {
        return Err(BackendError::engine(
            BACKEND,
            "exec",
            "engine detached the exec",
        ));
    };
    let feeder = stdin.map(|bytes| {
        let mut input = input;
        tokio::spawn(async move {
            // A command that exits without reading its stdin closes the pipe: not an error.
            let _ = input.write_all(&bytes).await;
            let _ = input.shutdown().await;
        })
    });
    while let Some(item) = output.next().await {
        match item {
            Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                sink.stdout(&message)
            }
            Ok(LogOutput::StdErr { message }) => sink.stderr(&message),
            Ok(LogOutput::StdIn { .. }) => {}
            Err(e) => {
                return Err(BackendError::SandboxDead {
                    id: short(&container).into(),
                    detail: format!("exec output stream broke: {}", error::server_message(&e)),
                })
            }
        }
    }
    if let Some(f) = feeder {
        f.abort();
    }
    // The engine publishes the exit code right after the output ends; poll briefly for it.
    let deadline = tokio::time::Instant::now() + EXIT_CODE_WAIT;
    let mut pause = Duration::from_millis(2);
    loop {
        let inspect = docker.inspect_exec(&exec).await.map_err(dead)?;
        if inspect.running != Some(true) {
            if let Some(code) = inspect.exit_code {
                return Ok(code);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(BackendError::SandboxDead {
                id: short(&container).into(),
                detail: "the engine reported no exit code after the exec's output ended".into(),
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

#[async_trait]
impl ComputeSession for DockerSession {
    fn id(&self) -> &str {
        &self.id
    }

    fn run_id(&self) -> &RunId {
        &self.run_id
    }

    fn workdir(&self) -> &Path {
        &self.workdir
    }

    async fn exec(&self, command: &str, opts: ExecOptions) -> Result<CommandHandle> {
        opts.validate()?;
        let timing = opts.timing(self.default_timeout, DEFAULT_BACKSTOP_MARGIN);
        let seq = self.exec_seq.fetch_add(1, Ordering::SeqCst);
        let exec_name = format!("x{seq}");
        let argv = layout::exec_argv(&exec_name, command, timing.budget, timing.grace);
        self.start_exec(exec_name, argv, opts, timing).await
    }

    async fn sync_in(&self) -> Result<()> {
        Ok(())
    }

    async fn sync_out(&self) -> Result<()> {
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        let _serial = self.close_lock.lock().await;
        self.closed.store(true, Ordering::SeqCst);
        let armed = self.guard.lock().map(|g| g.is_armed()).unwrap_or(true);
        if !armed {
            return Ok(());
        }
        force_remove(&self.docker, &self.id)
            .instrument(tracing::info_span!("docker_close", run_id = %self.run_id, container = short(&self.id)))
            .await
            .map_err(|d| BackendError::engine(BACKEND, "remove container", d))?;
        match self.guard.lock() {
            Ok(mut g) => g.disarm(),
            Err(poisoned) => poisoned.into_inner().disarm(),
        }
        tracing::debug!(container = short(&self.id), "container removed");
        Ok(())
    }
}
