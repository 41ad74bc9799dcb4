//! [`ModalBackend`]: the backend contract over Modal Sandboxes — provisioning, sessions, gc.
//!
//! The image-pin probe and its cache are in [`pins`]; a session's execs and transfers in
//! [`crate::session`].
//!
//! Invariants: every sandbox is tagged `atp.run-id` / `atp.managed=true` right after creation
//! and created in the dedicated app, so `gc` finds it; a failed provision terminates the
//! sandbox before returning; a session dropped without `close` is terminated by a
//! [`TeardownGuard`] using a fresh client; the first session of each image id checks the image
//! contract ([`atp_backend::contract`], plus `tar`/`gzip` for the transfers) before it is handed
//! out.

mod pins;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use atp_archive::Limits;
use atp_backend::contract::{ContractCache, ImageRef};
use atp_backend::layout::{self, LABEL_MANAGED, LABEL_RUN_ID};
use atp_backend::{
    BackendError, ComputeBackend, ComputeSession, ExecOptions, GcEntry, GcFilter, Health,
    ImageInfo, NetworkMode, Requirements, Result, RunId, SessionOptions, TeardownGuard,
};
use tokio::sync::OnceCell;
use tracing::Instrument;

use crate::client::{normalize_tag, ModalClient, SandboxSpec};
use crate::config::ModalCredentials;
use crate::error::ModalError;
use crate::router::RouterClient;
use crate::session::{ExecCtx, ModalSession};

/// Deadline of the image contract check in a new sandbox.
const CONTRACT_CHECK_TIMEOUT: Duration = Duration::from_secs(120);

/// What the Modal transfers run in every sandbox (push: `tar -xzf`, pull: `tar -czf`).
pub(crate) const TRANSFER_COMMANDS: [&str; 2] = ["tar", "gzip"];

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
    /// Bounds on what one pull may write on the host (a sandbox is not trusted to be small).
    pub pull_limits: Limits,
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
            pull_limits: Limits::default(),
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
    contract: ContractCache,
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
            contract: ContractCache::new(),
        })
    }

    /// The control-plane client (the wire layer, for protocol tests).
    #[cfg(feature = "protocol")]
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
                remedy: self.build_command(),
            })
    }

    /// The command that (re)builds the configured image.
    fn build_command(&self) -> String {
        format!(
            "atp build-modal-image --name {} --app {}",
            self.cfg.image.split(':').next().unwrap_or(&self.cfg.image),
            self.cfg.app
        )
    }

    fn whole_cpus(&self) -> u32 {
        (self.cfg.cpu.floor() as u32).max(1)
    }

    /// Create, tag and connect a sandbox; terminated again if any step fails.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn provision(
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
        // The request runs to its end even if this future is dropped; a sandbox made for a
        // caller that gave up is terminated at once (its id would otherwise reach no guard).
        let (client, reaper) = (self.client.clone(), self.client.clone());
        let id = atp_backend::create_owned(
            "modal",
            async move {
                client
                    .sandbox_create(&app_id, &spec)
                    .await
                    .map_err(|e| BackendError::Provision {
                        backend: "modal".into(),
                        detail: e.to_string(),
                    })
            },
            move |id: String| {
                Box::pin(async move {
                    if let Err(e) = reaper.sandbox_terminate(&id).await {
                        tracing::error!(sandbox = %id, "terminating an abandoned sandbox: {e}");
                    }
                })
            },
        )
        .await?;
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
                    repo_digests: Vec::new(),
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
        let v = opts.validate(workdir, self.cfg.network)?;
        let image_id = self.require_image().await?;
        let run_id = v.run_id.clone();
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
                &v.labels,
                lifetime,
                v.network,
                (cpus, memory),
            )
            .await?;
        let span = tracing::info_span!("modal_session", run_id = %run_id, sandbox = %id);
        let session = ModalSession::new(
            ExecCtx {
                client: self.client.clone(),
                router,
                sandbox_id: id.clone(),
                liveness: self.cfg.liveness_interval,
            },
            run_id,
            v.workdir.clone(),
            v.mounts.clone(),
            command_timeout,
            &self.cfg,
            guard,
        );
        // The image contract, before anything is pushed (the push itself needs tar).
        let image = normalize_tag(&self.cfg.image);
        let remedy = format!(
            "rebuild it with `{}` (atp's images provide bash, GNU coreutils and tar)",
            self.build_command()
        );
        let checked = self
            .contract
            .ensure(
                &ImageRef {
                    backend: "modal",
                    image: &image,
                    id: &image_id,
                    remedy: &remedy,
                },
                &opts
                    .requires
                    .union(&Requirements::commands(TRANSFER_COMMANDS)),
                |argv| session.ctx().run_argv(argv, CONTRACT_CHECK_TIMEOUT),
            )
            .await;
        if let Err(e) = checked {
            let _ = session.terminate().await;
            return Err(e);
        }
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
            session.mark_clean();
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
