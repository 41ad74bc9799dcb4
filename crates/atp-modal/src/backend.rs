//! [`ModalBackend`]: the backend contract over Modal Sandboxes.
//!
//! Invariants: every sandbox is tagged `atp.run-id` / `atp.managed=true` right after creation
//! and created in the dedicated app, so `gc` finds it; a failed provision terminates the
//! sandbox before returning; a session dropped without `close` is terminated by a
//! [`TeardownGuard`] using a fresh client; every wait is bounded by a deadline and raced against
//! a liveness poll, so a dead sandbox yields `SandboxDead` and a silent one `ExecTimeout`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use atp_backend::layout::{self, LABEL_MANAGED, LABEL_RUN_ID, WORKDIR};
use atp_backend::{
    BackendError, CommandHandle, ComputeBackend, ComputeSession, ExecDriver, ExecOptions, GcEntry,
    GcFilter, Health, ImageInfo, Mount, NetworkMode, Result, RunId, SessionOptions, TeardownGuard,
};
use bytes::Bytes;
use tokio::sync::{mpsc, OnceCell};
use tracing::Instrument;

use crate::client::{describe, normalize_tag, ModalClient, SandboxSpec};
use crate::config::ModalCredentials;
use crate::error::ModalError;
use crate::router::{RouterClient, Stdio, STDIN_CHUNK};
use crate::unpack::{pack, prune, unpack_safe, ChannelReader, ChannelWriter};

/// Pin labels read from a Modal image's environment (the same pairs as
/// `atp_image::PIN_ENV_LABELS`, which this crate cannot name; a test in atp-cli compares them).
pub const PIN_ENV: [(&str, &str); 5] = [
    ("ATP_LEAN_TOOLCHAIN", "atp.lean-toolchain"),
    ("ATP_MATHLIB_REV", "atp.mathlib-rev"),
    ("ATP_SPEC_HASH", "atp.spec-hash"),
    ("ATP_LOCK_HASH", "atp.lock-hash"),
    ("ATP_TOOLS", "atp.tools"),
];

/// How the Modal backend creates sandboxes.
///
/// `Debug` shows the names of `env`, never its values (they may hold API keys).
#[derive(Clone)]
pub struct ModalConfig {
    /// Published image name (`name[:tag]`; the tag defaults to `latest`).
    pub image: String,
    /// The app every sandbox belongs to (created if missing).
    pub app: String,
    /// CPU cores requested (a floor on Modal).
    pub cpu: f64,
    pub memory_mib: u32,
    /// Sandbox lifetime when the session sets no timeout.
    pub timeout: Duration,
    /// Environment for every sandbox (put in an ephemeral secret).
    pub env: BTreeMap<String, String>,
    /// Run once after the push, before real work (warms the Lean cache); `None` skips it.
    pub warm_command: Option<String>,
    /// How often a running exec checks that its sandbox is alive.
    pub liveness_interval: Duration,
    /// Margin past budget + grace after which a silent exec is a stall.
    pub backstop_margin: Duration,
    /// How long to wait for a new sandbox to be scheduled.
    pub provision_deadline: Duration,
    /// Bound on one push or pull.
    pub transfer_timeout: Duration,
    /// Directory caching the pins read from each image id (Modal image ids name immutable
    /// content, so an entry never goes stale); `None` probes every time.
    pub pin_cache: Option<PathBuf>,
    /// `None` blocks the network of every sandbox whatever the session asks; `Default` lets
    /// each session choose.
    pub network: NetworkMode,
}

impl std::fmt::Debug for ModalConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModalConfig")
            .field("image", &self.image)
            .field("app", &self.app)
            .field("cpu", &self.cpu)
            .field("memory_mib", &self.memory_mib)
            .field("timeout", &self.timeout)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("warm_command", &self.warm_command)
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

impl Default for ModalConfig {
    fn default() -> Self {
        ModalConfig {
            image: "open-atp".into(),
            app: "open-atp".into(),
            cpu: 2.0,
            memory_mib: 4096,
            timeout: Duration::from_secs(3600),
            env: BTreeMap::new(),
            warm_command: Some(
                "if command -v lake >/dev/null 2>&1 && [ -f lakefile.toml -o -f lakefile.lean ]; then lake build >/dev/null 2>&1; fi; true"
                    .into(),
            ),
            liveness_interval: Duration::from_secs(10),
            backstop_margin: layout::DEFAULT_BACKSTOP_MARGIN,
            provision_deadline: Duration::from_secs(300),
            transfer_timeout: Duration::from_secs(900),
            pin_cache: std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .map(|c| c.join("atp").join("modal-image-pins")),
            network: NetworkMode::Default,
        }
    }
}

/// Modal Sandboxes as an atp backend.
#[derive(Debug)]
pub struct ModalBackend {
    cfg: ModalConfig,
    creds: ModalCredentials,
    client: ModalClient,
    pins: OnceCell<ImageInfo>,
    app_id: OnceCell<String>,
}

fn be(op: &'static str) -> impl Fn(ModalError) -> BackendError {
    move |e| e.into_backend(op)
}

impl ModalBackend {
    /// A backend using the credentials of the environment / `~/.modal.toml`.
    pub fn from_env(cfg: ModalConfig) -> Result<Self> {
        let creds = ModalCredentials::from_env().map_err(be("credentials"))?;
        Self::new(cfg, creds)
    }

    /// A backend with explicit credentials.
    pub fn new(cfg: ModalConfig, creds: ModalCredentials) -> Result<Self> {
        let client = ModalClient::new(creds.clone()).map_err(be("connect"))?;
        Ok(ModalBackend {
            cfg,
            creds,
            client,
            pins: OnceCell::new(),
            app_id: OnceCell::new(),
        })
    }

    /// The control-plane client.
    pub fn client(&self) -> &ModalClient {
        &self.client
    }

    /// The configuration.
    pub fn config(&self) -> &ModalConfig {
        &self.cfg
    }

    /// The app's id (created if missing; looked up once per backend).
    async fn app(&self) -> std::result::Result<String, ModalError> {
        self.app_id
            .get_or_try_init(|| self.client.app_get_or_create(&self.cfg.app, true))
            .await
            .cloned()
    }

    /// The published image id, or `None` when nothing is published under the name.
    pub async fn lookup_image(&self) -> Result<Option<String>> {
        self.client
            .image_get_by_tag(&self.cfg.image)
            .await
            .map_err(be("ImageGetByTag"))
    }

    async fn require_image(&self) -> Result<String> {
        self.lookup_image()
            .await?
            .ok_or_else(|| BackendError::ImageUnavailable {
                backend: "modal".into(),
                image: normalize_tag(&self.cfg.image),
                remedy: format!(
                    "atp build-modal-image --name {} --app {}",
                    self.cfg.image.split(':').next().unwrap_or(&self.cfg.image),
                    self.cfg.app
                ),
            })
    }

    fn whole_cpus(&self) -> u32 {
        (self.cfg.cpu.floor() as u32).max(1)
    }

    /// Create, tag and connect a sandbox; terminated again if any step fails.
    #[allow(clippy::too_many_arguments)]
    async fn provision(
        &self,
        image_id: &str,
        env: BTreeMap<String, String>,
        run_id: &RunId,
        labels: &BTreeMap<String, String>,
        lifetime: Duration,
        network: NetworkMode,
        resources: (f64, u32),
    ) -> Result<(String, Arc<RouterClient>, TeardownGuard)> {
        let app_id = self.app().await.map_err(be("AppGetOrCreate"))?;
        let secret = self
            .client
            .secret_from_map(&env)
            .await
            .map_err(be("SecretGetOrCreate"))?;
        let spec = SandboxSpec {
            image_id: image_id.to_string(),
            secret_ids: vec![secret],
            milli_cpu: (resources.0 * 1000.0) as u32,
            memory_mib: resources.1,
            timeout_secs: lifetime.as_secs().clamp(60, 24 * 3600) as u32,
            workdir: None,
            block_network: network == NetworkMode::None,
            name: Some(format!(
                "atp-{}-{}",
                run_id.short(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            )),
            entrypoint_args: Vec::new(),
        };
        let id = self
            .client
            .sandbox_create(&app_id, &spec)
            .await
            .map_err(|e| BackendError::Provision {
                backend: "modal".into(),
                detail: e.to_string(),
            })?;
        // Armed before the first await: a caller that gives up (drops this future) still
        // terminates the sandbox.
        let mut guard = self.teardown_guard(&id);
        let prepared = async {
            let mut tags = labels.clone();
            tags.insert(LABEL_RUN_ID.into(), run_id.to_string());
            tags.insert(LABEL_MANAGED.into(), "true".into());
            self.client.sandbox_tags_set(&id, &tags).await?;
            let task = self
                .client
                .sandbox_task_id(&id, self.cfg.provision_deadline)
                .await?;
            let router = RouterClient::connect(&self.client, &task).await?;
            Ok::<_, ModalError>(Arc::new(router))
        };
        let bound = self.cfg.provision_deadline + Duration::from_secs(60);
        let prepared = match tokio::time::timeout(bound, prepared).await {
            Ok(r) => r,
            Err(_) => Err(ModalError::Deadline {
                method: "sandbox preparation",
                secs: bound.as_secs(),
            }),
        };
        match prepared {
            Ok(router) => Ok((id, router, guard)),
            Err(e) => {
                match self.client.sandbox_terminate(&id).await {
                    Ok(()) => guard.disarm(),
                    // The armed guard retries with a fresh client when it drops.
                    Err(t) => tracing::error!(sandbox = %id, "terminating a failed sandbox: {t}"),
                }
                Err(BackendError::Provision {
                    backend: "modal".into(),
                    detail: format!("sandbox {id}: {e} (terminated)"),
                })
            }
        }
    }

    /// A guard that terminates sandbox `id` with a fresh client if it is dropped armed.
    fn teardown_guard(&self, id: &str) -> TeardownGuard {
        let creds = self.creds.clone();
        let guard_id = id.to_string();
        TeardownGuard::new(format!("modal sandbox {id}"), move || {
            Box::pin(async move {
                match ModalClient::new(creds) {
                    Ok(c) => {
                        if let Err(e) = c.sandbox_terminate(&guard_id).await {
                            tracing::error!(sandbox = %guard_id, "teardown: {e}");
                        }
                    }
                    Err(e) => tracing::error!(sandbox = %guard_id, "teardown client: {e}"),
                }
            })
        })
    }

    /// The image's pins: from the cache, else probed and cached.
    async fn pins_of(&self, image_id: &str) -> Result<BTreeMap<String, String>> {
        let safe = !image_id.is_empty()
            && image_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let file = self
            .cfg
            .pin_cache
            .as_ref()
            .filter(|_| safe)
            .map(|d| d.join(format!("{image_id}.json")));
        if let Some(f) = &file {
            if let Ok(text) = std::fs::read_to_string(f) {
                if let Ok(labels) = serde_json::from_str::<BTreeMap<String, String>>(&text) {
                    return Ok(labels);
                }
            }
        }
        let labels = self.probe_pins(image_id).await?;
        if let Some(f) = &file {
            let written = f
                .parent()
                .map(std::fs::create_dir_all)
                .transpose()
                .and_then(|_| {
                    let json =
                        serde_json::to_string_pretty(&labels).map_err(std::io::Error::other)?;
                    std::fs::write(f, json)
                });
            if let Err(e) = written {
                tracing::debug!("caching the pins of {image_id} in {}: {e}", f.display());
            }
        }
        Ok(labels)
    }

    /// Read the image's pin environment in a short-lived probe sandbox.
    async fn probe_pins(&self, image_id: &str) -> Result<BTreeMap<String, String>> {
        let run_id = RunId::new();
        let (id, router, mut guard) = self
            .provision(
                image_id,
                BTreeMap::new(),
                &run_id,
                &BTreeMap::from([("atp.purpose".to_string(), "image-probe".to_string())]),
                Duration::from_secs(120),
                NetworkMode::None,
                (0.25, 512),
            )
            .await?;
        let ctx = ExecCtx {
            client: self.client.clone(),
            router,
            sandbox_id: id.clone(),
            liveness: self.cfg.liveness_interval,
        };
        let mut out = Vec::new();
        let r = ctx
            .run_piped(
                vec!["env".into()],
                None,
                &mut |c: &[u8]| out.extend_from_slice(c),
                Duration::from_secs(120),
            )
            .await;
        if self.client.sandbox_terminate(&id).await.is_ok() {
            guard.disarm();
        }
        r?;
        let text = String::from_utf8_lossy(&out);
        let mut labels = BTreeMap::new();
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('=') {
                if let Some((_, label)) = PIN_ENV.iter().find(|(e, _)| *e == k) {
                    labels.insert(label.to_string(), v.to_string());
                }
            }
        }
        Ok(labels)
    }
}

#[async_trait]
impl ComputeBackend for ModalBackend {
    fn name(&self) -> &str {
        "modal"
    }

    fn container_home(&self) -> &str {
        "/root"
    }

    fn image(&self) -> &str {
        &self.cfg.image
    }

    async fn health(&self) -> Result<Health> {
        let app_id = self
            .client
            .app_get_or_create(&self.cfg.app, true)
            .await
            .map_err(|e| match e.into_backend("AppGetOrCreate") {
                BackendError::EngineUnavailable {
                    backend,
                    detail,
                    remedy,
                    ..
                } => BackendError::EngineUnavailable {
                    backend,
                    endpoint: self.creds.server_url.clone(),
                    detail,
                    remedy,
                },
                other => other,
            })?;
        let mut details = BTreeMap::new();
        details.insert("credentials".into(), self.creds.source.to_string());
        details.insert(
            "environment".into(),
            if self.creds.environment.is_empty() {
                "(default)".into()
            } else {
                self.creds.environment.clone()
            },
        );
        details.insert("app".into(), format!("{} ({app_id})", self.cfg.app));
        Ok(Health {
            backend: "modal".into(),
            endpoint: self.creds.server_url.clone(),
            version: None,
            api_version: Some(crate::client::CLIENT_VERSION.into()),
            details,
        })
    }

    async fn image_info(&self) -> Result<ImageInfo> {
        let id = self.require_image().await?;
        let info = self
            .pins
            .get_or_try_init(|| async {
                let labels = self.pins_of(&id).await?;
                Ok::<_, BackendError>(ImageInfo {
                    name: normalize_tag(&self.cfg.image),
                    id: id.clone(),
                    labels,
                    size_bytes: None,
                })
            })
            .await?;
        if info.id != id {
            // Republished since we looked: read the new image's pins.
            let labels = self.pins_of(&id).await?;
            return Ok(ImageInfo {
                id,
                labels,
                ..info.clone()
            });
        }
        Ok(info.clone())
    }

    async fn session(
        &self,
        workdir: &Path,
        opts: SessionOptions,
    ) -> Result<Box<dyn ComputeSession>> {
        if !workdir.is_dir() {
            return Err(BackendError::InvalidInput(format!(
                "workdir {} is not a directory — pass an existing project directory",
                workdir.display()
            )));
        }
        for m in &opts.mounts {
            if !m.host.exists() {
                return Err(BackendError::InvalidInput(format!(
                    "mount source {} does not exist — create it or drop the mount",
                    m.host.display()
                )));
            }
        }
        let image_id = self.require_image().await?;
        let run_id = opts.run_id.clone().unwrap_or_default();
        let cpus = opts
            .resources
            .cpus
            .unwrap_or(self.cfg.cpu)
            .max(self.cfg.cpu);
        let memory = opts
            .resources
            .memory_mib
            .map(|m| m as u32)
            .unwrap_or(self.cfg.memory_mib);
        let mut env = self.cfg.env.clone();
        env.extend(opts.env.clone());
        env.insert("IS_SANDBOX".into(), "1".into());
        env.insert(
            "LEAN_NUM_THREADS".into(),
            ((cpus.floor() as u32).max(self.whole_cpus())).to_string(),
        );
        let command_timeout = opts.timeout;
        let lifetime = command_timeout
            .map(|t| t + layout::DEFAULT_KILL_GRACE + Duration::from_secs(600))
            .unwrap_or(self.cfg.timeout)
            .max(self.cfg.timeout);
        let (id, router, guard) = self
            .provision(
                &image_id,
                env,
                &run_id,
                &opts.labels,
                lifetime,
                NetworkMode::effective(self.cfg.network, opts.network),
                (cpus, memory),
            )
            .await?;
        let span = tracing::info_span!("modal_session", run_id = %run_id, sandbox = %id);
        let session = ModalSession {
            ctx: ExecCtx {
                client: self.client.clone(),
                router,
                sandbox_id: id.clone(),
                liveness: self.cfg.liveness_interval,
            },
            run_id,
            workdir: workdir.to_path_buf(),
            mounts: opts.mounts.clone(),
            command_timeout,
            backstop_margin: self.cfg.backstop_margin,
            transfer_timeout: self.cfg.transfer_timeout,
            closed: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
            guard: std::sync::Mutex::new(guard),
        };
        // From here on the guard terminates the sandbox if preparation fails.
        let prepared = async {
            session.sync_in().await?;
            if let Some(warm) = &self.cfg.warm_command {
                let started = Instant::now();
                let r = session
                    .exec_wait(warm, ExecOptions::with_timeout(Duration::from_secs(1800)))
                    .await?;
                tracing::info!(
                    exit = r.exit_code,
                    secs = started.elapsed().as_secs_f64(),
                    "warm step"
                );
            }
            session.dirty.store(false, Ordering::SeqCst);
            Ok::<_, BackendError>(())
        }
        .instrument(span)
        .await;
        match prepared {
            Ok(()) => Ok(Box::new(session)),
            Err(e) => {
                let _ = session.terminate().await;
                Err(match e {
                    BackendError::Provision { .. } => e,
                    other => BackendError::Provision {
                        backend: "modal".into(),
                        detail: format!("preparing sandbox {id}: {other} (terminated)"),
                    },
                })
            }
        }
    }

    async fn gc(&self, filter: GcFilter) -> Result<Vec<GcEntry>> {
        let app_id = match self.client.app_get_or_create(&self.cfg.app, false).await {
            Ok(a) => a,
            Err(e) if e.code() == Some(tonic::Code::NotFound) => return Ok(Vec::new()),
            Err(e) => return Err(e.into_backend("AppGetOrCreate")),
        };
        let mut tags = BTreeMap::from([(LABEL_MANAGED.to_string(), "true".to_string())]);
        if let Some(r) = &filter.run_id {
            tags.insert(LABEL_RUN_ID.into(), r.to_string());
        }
        let list = self
            .client
            .sandbox_list(&app_id, &tags)
            .await
            .map_err(be("SandboxList"))?;
        let now = crate::client::unix_now() as f64;
        let mut out = Vec::new();
        for sb in list {
            if let Some(age) = filter.older_than {
                if now - sb.created_at < age.as_secs_f64() {
                    continue;
                }
            }
            let run_id = sb
                .tags
                .iter()
                .find(|t| t.tag_name == LABEL_RUN_ID)
                .map(|t| t.tag_value.clone());
            let removed = if filter.dry_run {
                false
            } else {
                self.client
                    .sandbox_terminate(&sb.id)
                    .await
                    .map_err(be("SandboxTerminate"))?;
                true
            };
            out.push(GcEntry {
                id: sb.id,
                name: (!sb.name.is_empty()).then_some(sb.name),
                run_id,
                created_unix: Some(sb.created_at as i64),
                state: Some("running".into()),
                removed,
            });
        }
        Ok(out)
    }
}

/// What every exec in one sandbox needs.
#[derive(Debug, Clone)]
struct ExecCtx {
    client: ModalClient,
    router: Arc<RouterClient>,
    sandbox_id: String,
    liveness: Duration,
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

    /// `drive` with collected stderr and a deadline; a nonzero exit is returned, not an error.
    async fn run_piped(
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
            detail: crate::error::one_line(&detail.to_string()),
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
            "sh".into(),
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
        let unpacker =
            tokio::task::spawn_blocking(move || unpack_safe(ChannelReader::new(rx), &root));
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

    async fn terminate(&self) -> Result<()> {
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
        self.dirty.store(true, Ordering::SeqCst);
        let exec_id = uuid::Uuid::new_v4().simple().to_string();
        let budget = opts
            .timeout
            .or(self.command_timeout)
            .unwrap_or(layout::DEFAULT_COMMAND_TIMEOUT);
        let grace = opts.kill_grace.unwrap_or(layout::DEFAULT_KILL_GRACE);
        let backstop = budget + grace + self.backstop_margin;
        let mut exports = String::new();
        for (k, v) in &opts.env {
            let ok = !k.is_empty()
                && !k.starts_with(|c: char| c.is_ascii_digit())
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !ok {
                return Err(BackendError::InvalidInput(format!(
                    "environment variable name {k:?} is not a shell identifier — use letters, digits and _"
                )));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_debug_hides_env_values() {
        let cfg = ModalConfig {
            env: BTreeMap::from([("ANTHROPIC_API_KEY".to_string(), "sk-secret".to_string())]),
            ..ModalConfig::default()
        };
        let d = format!("{cfg:?}");
        assert!(
            d.contains("ANTHROPIC_API_KEY") && !d.contains("sk-secret"),
            "{d}"
        );
    }
}
