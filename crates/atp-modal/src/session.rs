//! [`ModalSession`]: one Modal sandbox — its execs through the command router, the workdir
//! transfers (tar.gz streamed through exec stdin/stdout, unpacked by `atp_archive`), teardown.
//!
//! Invariants: every wait is bounded by a deadline and raced against a liveness poll, so a dead
//! sandbox yields `SandboxDead` and a silent one `ExecTimeout`; nothing is staged in temporary
//! files; `close` pulls the workdir back when a command ran since the last pull (see
//! [`atp_backend::ComputeSession::close`]) and terminates the sandbox even when that fails.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use atp_archive::{pack, prune, unpack_safe, Limits, UnpackOptions};
use atp_backend::layout::{self, WORKDIR};
use atp_backend::{
    BackendError, CommandHandle, CommandResult, ComputeSession, ExecDriver, ExecOptions, Mount,
    Result, RunId, TeardownGuard,
};
use bytes::Bytes;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::backend::ModalConfig;
use crate::client::{describe, ModalClient};
use crate::error::ModalError;
use crate::router::{RouterClient, Stdio, STDIN_CHUNK};
use crate::transfer::{ChannelReader, ChannelWriter};

/// What every exec in one sandbox needs.
#[derive(Debug, Clone)]
pub(crate) struct ExecCtx {
    pub(crate) client: ModalClient,
    pub(crate) router: Arc<RouterClient>,
    pub(crate) sandbox_id: String,
    pub(crate) liveness: Duration,
}

impl ExecCtx {
    fn dead(&self, detail: String) -> BackendError {
        BackendError::SandboxDead {
            id: self.sandbox_id.clone(),
            detail,
        }
    }

    /// Resolves only when the sandbox has ended (polled every `liveness`).
    async fn watch_dead(client: ModalClient, id: String, every: Duration) -> BackendError {
        loop {
            tokio::time::sleep(every).await;
            match client.sandbox_wait(&id, Duration::ZERO).await {
                Ok(Some(res)) => {
                    return BackendError::SandboxDead {
                        id,
                        detail: format!("the sandbox ended ({})", describe(&res)),
                    }
                }
                Ok(None) => {}
                Err(e) if e.code() == Some(tonic::Code::NotFound) => {
                    return BackendError::SandboxDead {
                        id,
                        detail: "Modal no longer knows the sandbox".into(),
                    }
                }
                Err(e) => tracing::debug!(sandbox = %id, "liveness poll failed: {e}"),
            }
        }
    }

    /// Start `argv`, feed `stdin` (then EOF), stream stdout into `out` and stderr into
    /// `err`; the exit status. Raced against the liveness poll.
    async fn drive(
        &self,
        argv: Vec<String>,
        server_timeout: Option<Duration>,
        stdin: Option<mpsc::Receiver<Bytes>>,
        out: &mut (dyn FnMut(&[u8]) + Send),
        err: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<i64> {
        let exec_id = uuid::Uuid::new_v4().to_string();
        let router = &self.router;
        let work = async {
            router
                .exec_start(
                    &exec_id,
                    &argv,
                    server_timeout.map(|t| t.as_secs().clamp(1, u64::from(u32::MAX)) as u32),
                    None,
                )
                .await
                .map_err(|e| self.classify(e))?;
            let feed = async {
                let mut offset = 0u64;
                if let Some(mut rx) = stdin {
                    while let Some(chunk) = rx.recv().await {
                        for piece in chunk.chunks(STDIN_CHUNK) {
                            router
                                .stdin_write(&exec_id, offset, piece.to_vec(), false)
                                .await?;
                            offset += piece.len() as u64;
                        }
                    }
                }
                router.stdin_write(&exec_id, offset, Vec::new(), true).await
            };
            let (fed, o, e) = tokio::join!(
                feed,
                router.stdio_read(&exec_id, Stdio::Stdout, out),
                router.stdio_read(&exec_id, Stdio::Stderr, err),
            );
            o.map_err(|e| self.classify(e))?;
            e.map_err(|e| self.classify(e))?;
            let code = router
                .exec_wait(&exec_id)
                .await
                .map_err(|e| self.classify(e))?;
            // A command that exits without reading all of its stdin is not a failure.
            if let Err(e) = fed {
                tracing::debug!("stdin of exec {exec_id} not fully delivered: {e}");
            }
            Ok(code)
        };
        tokio::select! {
            r = work => r,
            dead = Self::watch_dead(self.client.clone(), self.sandbox_id.clone(), self.liveness) => Err(dead),
        }
    }

    fn classify(&self, e: ModalError) -> BackendError {
        match e.code() {
            Some(tonic::Code::NotFound | tonic::Code::FailedPrecondition) => {
                self.dead(e.to_string())
            }
            _ => e.into_backend("exec"),
        }
    }

    /// Run `argv` as it is (outside the layout's wrapping: the image contract check) to
    /// completion within `deadline`.
    pub(crate) async fn run_argv(
        &self,
        argv: Vec<String>,
        deadline: Duration,
    ) -> Result<CommandResult> {
        let started = std::time::Instant::now();
        let mut stdout = Vec::new();
        let (exit_code, stderr) = self
            .run_piped(
                argv,
                None,
                &mut |c: &[u8]| stdout.extend_from_slice(c),
                deadline,
            )
            .await?;
        Ok(CommandResult {
            exit_code,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr,
            duration: started.elapsed(),
        })
    }

    /// `drive` with collected stderr and a deadline; a nonzero exit is returned, not an error.
    pub(crate) async fn run_piped(
        &self,
        argv: Vec<String>,
        stdin: Option<mpsc::Receiver<Bytes>>,
        out: &mut (dyn FnMut(&[u8]) + Send),
        deadline: Duration,
    ) -> Result<(i64, String)> {
        let mut stderr = Vec::new();
        let r = tokio::time::timeout(
            deadline,
            self.drive(argv, Some(deadline), stdin, out, &mut |c: &[u8]| {
                stderr.extend_from_slice(c)
            }),
        )
        .await;
        match r {
            Err(_) => Err(BackendError::ExecTimeout {
                id: self.sandbox_id.clone(),
                after: deadline,
                partial: None,
            }),
            Ok(r) => r.map(|code| (code, String::from_utf8_lossy(&stderr).into_owned())),
        }
    }
}

struct CancelDriver {
    ctx: ExecCtx,
    exec_id: String,
}

#[async_trait]
impl ExecDriver for CancelDriver {
    async fn cancel(&self) -> Result<()> {
        let argv = layout::cancel_script(&self.exec_id);
        self.ctx
            .run_piped(argv, None, &mut |_: &[u8]| {}, Duration::from_secs(20))
            .await
            .map(|_| ())
    }
}

/// A live Modal sandbox with the host workdir pushed to [`WORKDIR`].
pub struct ModalSession {
    ctx: ExecCtx,
    run_id: RunId,
    workdir: PathBuf,
    mounts: Vec<Mount>,
    command_timeout: Option<Duration>,
    backstop_margin: Duration,
    transfer_timeout: Duration,
    pull_limits: Limits,
    closed: AtomicBool,
    /// An exec ran since the last pull.
    dirty: AtomicBool,
    guard: std::sync::Mutex<TeardownGuard>,
}

impl std::fmt::Debug for ModalSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModalSession")
            .field("sandbox", &self.ctx.sandbox_id)
            .field("run_id", &self.run_id)
            .field("workdir", &self.workdir)
            .finish_non_exhaustive()
    }
}

impl ModalSession {
    /// Own the provisioned sandbox of `ctx` (its guard armed) over the host `workdir`.
    pub(crate) fn new(
        ctx: ExecCtx,
        run_id: RunId,
        workdir: PathBuf,
        mounts: Vec<Mount>,
        command_timeout: Option<Duration>,
        cfg: &ModalConfig,
        guard: TeardownGuard,
    ) -> Self {
        ModalSession {
            ctx,
            run_id,
            workdir,
            mounts,
            command_timeout,
            backstop_margin: cfg.backstop_margin,
            transfer_timeout: cfg.transfer_timeout,
            pull_limits: cfg.pull_limits,
            closed: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
            guard: std::sync::Mutex::new(guard),
        }
    }

    pub(crate) fn ctx(&self) -> &ExecCtx {
        &self.ctx
    }

    /// Nothing to pull back yet (after preparation's own commands).
    pub(crate) fn mark_clean(&self) {
        self.dirty.store(false, Ordering::SeqCst);
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            Err(BackendError::Closed {
                id: self.ctx.sandbox_id.clone(),
            })
        } else {
            Ok(())
        }
    }

    fn transfer_err(
        &self,
        direction: &'static str,
        detail: impl std::fmt::Display,
    ) -> BackendError {
        BackendError::Transfer {
            id: self.ctx.sandbox_id.clone(),
            direction,
            detail: atp_backend::one_line(&detail.to_string()),
        }
    }

    /// Stream `src` as tar.gz into `tar -xzf - -C dest` in the sandbox.
    async fn push(&self, src: &Path, dest: &str, file_name: Option<String>) -> Result<()> {
        let (tx, rx) = mpsc::channel::<Bytes>(4);
        let src = src.to_path_buf();
        let packer = tokio::task::spawn_blocking(move || {
            pack(
                &src,
                file_name.as_deref(),
                true,
                ChannelWriter::new(tx, STDIN_CHUNK),
            )
            .and_then(|mut w| std::io::Write::flush(&mut w))
        });
        let q = layout::shell_quote(dest);
        let argv = vec![
            "bash".into(),
            "-c".into(),
            format!("mkdir -p {q} && tar -xzf - -C {q}"),
        ];
        let r = self
            .ctx
            .run_piped(argv, Some(rx), &mut |_: &[u8]| {}, self.transfer_timeout)
            .await;
        let packed = packer.await.map_err(|e| self.transfer_err("into", e))?;
        let (code, stderr) = r?;
        packed.map_err(|e| self.transfer_err("into", format!("packing: {e}")))?;
        if code != 0 {
            return Err(self.transfer_err(
                "into",
                format!("tar exited with {code} in the sandbox: {}", stderr.trim()),
            ));
        }
        Ok(())
    }

    /// Stream `tar -czf - -C src .` (without a top-level `.lake`) from the sandbox into the safe
    /// unpacker over `dest`, then remove what the sandbox deleted.
    async fn pull(&self, src: &str, dest: &Path) -> Result<()> {
        let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
        let root = dest.to_path_buf();
        let opts = UnpackOptions {
            limits: self.pull_limits,
            unwrap_single_dir: false,
        };
        let unpacker =
            tokio::task::spawn_blocking(move || unpack_safe(ChannelReader::new(rx), &root, &opts));
        let argv = vec![
            "tar".into(),
            "-czf".into(),
            "-".into(),
            "-C".into(),
            src.to_string(),
            "--exclude=./.lake".into(),
            ".".into(),
        ];
        let r = self
            .ctx
            .run_piped(
                argv,
                None,
                &mut |c: &[u8]| {
                    let _ = tx.send(Bytes::copy_from_slice(c));
                },
                self.transfer_timeout,
            )
            .await;
        drop(tx);
        let unpacked = unpacker.await.map_err(|e| self.transfer_err("out of", e))?;
        let (code, stderr) = r?;
        if code != 0 {
            return Err(self.transfer_err(
                "out of",
                format!(
                    "tar of {src} exited with {code} in the sandbox: {}",
                    stderr.trim()
                ),
            ));
        }
        let seen = unpacked.map_err(|e| self.transfer_err("out of", e))?;
        prune(dest, &seen).map_err(|e| self.transfer_err("out of", e))
    }

    pub(crate) async fn terminate(&self) -> Result<()> {
        let r = self
            .ctx
            .client
            .sandbox_terminate(&self.ctx.sandbox_id)
            .await;
        match r {
            Ok(()) => {
                self.guard
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .disarm();
                Ok(())
            }
            Err(e) if e.code() == Some(tonic::Code::NotFound) => {
                self.guard
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .disarm();
                Ok(())
            }
            Err(e) => Err(e.into_backend("SandboxTerminate")),
        }
    }
}

#[async_trait]
impl ComputeSession for ModalSession {
    fn id(&self) -> &str {
        &self.ctx.sandbox_id
    }

    fn run_id(&self) -> &RunId {
        &self.run_id
    }

    fn workdir(&self) -> &Path {
        &self.workdir
    }

    async fn exec(&self, command: &str, opts: ExecOptions) -> Result<CommandHandle> {
        self.check_open()?;
        opts.validate()?;
        self.dirty.store(true, Ordering::SeqCst);
        let exec_id = uuid::Uuid::new_v4().simple().to_string();
        let timing = opts.timing(self.command_timeout, self.backstop_margin);
        let (budget, grace, backstop) = (timing.budget, timing.grace, timing.backstop);
        // The router has no per-exec environment: export it (names are shell identifiers).
        let mut exports = String::new();
        for (k, v) in &opts.env {
            exports.push_str(&format!("export {k}={}; ", layout::shell_quote(v)));
        }
        let argv = layout::exec_argv(&exec_id, &format!("{exports}{command}"), budget, grace);
        let driver = Arc::new(CancelDriver {
            ctx: self.ctx.clone(),
            exec_id: exec_id.clone(),
        });
        let ctx = self.ctx.clone();
        let stdin = opts.stdin.clone();
        let span = tracing::info_span!(
            "modal_exec",
            run_id = %self.run_id,
            sandbox = %self.ctx.sandbox_id,
            exec = %exec_id
        );
        Ok(CommandHandle::spawn(
            self.ctx.sandbox_id.clone(),
            budget,
            backstop,
            driver,
            move |sink| async move {
                let rx = stdin.map(|b| {
                    let (tx, rx) = mpsc::channel(1);
                    let _ = tx.try_send(b);
                    rx
                });
                let s_out = sink.clone();
                ctx.drive(
                    argv,
                    Some(backstop + Duration::from_secs(1)),
                    rx,
                    &mut |c: &[u8]| s_out.stdout(c),
                    &mut |c: &[u8]| sink.stderr(c),
                )
                .instrument(span)
                .await
            },
        ))
    }

    async fn sync_in(&self) -> Result<()> {
        self.check_open()?;
        self.push(&self.workdir, WORKDIR, None).await?;
        for m in &self.mounts {
            let meta = std::fs::metadata(&m.host)
                .map_err(|e| self.transfer_err("into", format!("{}: {e}", m.host.display())))?;
            if meta.is_dir() {
                self.push(&m.host, &m.container, None).await?;
            } else {
                let dest = Path::new(&m.container);
                let parent = dest.parent().and_then(|p| p.to_str()).unwrap_or("/");
                let name = dest
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("file")
                    .to_string();
                self.push(&m.host, parent, Some(name)).await?;
            }
        }
        Ok(())
    }

    async fn sync_out(&self) -> Result<()> {
        self.check_open()?;
        self.pull(WORKDIR, &self.workdir).await?;
        for m in self
            .mounts
            .iter()
            .filter(|m| !m.read_only && m.host.is_dir())
        {
            self.pull(&m.container, &m.host).await?;
        }
        self.dirty.store(false, Ordering::SeqCst);
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let pulled = if self.dirty.load(Ordering::SeqCst) {
            self.sync_out().await
        } else {
            Ok(())
        };
        self.closed.store(true, Ordering::SeqCst);
        let terminated = self.terminate().await;
        pulled?;
        terminated
    }
}
