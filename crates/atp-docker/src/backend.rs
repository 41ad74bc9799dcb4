//! [`DockerBackend`]: sessions are containers created over the Docker Engine API.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use atp_backend::contract::{ContractCache, ImageRef};
use atp_backend::layout::{LABEL_MANAGED, LABEL_RUN_ID, WORKDIR};
use atp_backend::{
    BackendError, ComputeBackend, ComputeSession, GcEntry, GcFilter, Health, ImageInfo,
    NetworkMode, Result, SessionOptions, ValidSession,
};
use bollard::models::{ContainerCreateBody, HostConfig, Mount as DockerMount, MountType};
use bollard::query_parameters::{CreateContainerOptionsBuilder, ListContainersOptionsBuilder};
use bollard::Docker;
use tokio::sync::OnceCell;
use tracing::Instrument;

use crate::build::{BuildError, BuildEvent, BuildRequest, BuiltImage};
use crate::engine::{connect_negotiated, force_remove};
use crate::error::{self, BACKEND};
use crate::session::DockerSession;

/// The image sessions are created from unless configured otherwise.
pub const DEFAULT_IMAGE: &str = "open-atp:latest";
/// Home directory of the container user (root) where agent credentials are mounted.
pub const DEFAULT_CONTAINER_HOME: &str = "/root";
/// Where the engine is reached when neither the config nor `DOCKER_HOST` names an endpoint.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";
/// Deadline of the image contract check in a new container.
const CONTRACT_CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// How a [`DockerBackend`] reaches the engine and builds its containers.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// Image every session is created from.
    pub image: String,
    /// Engine endpoint (`unix://…`, `tcp://…`); `None`: `DOCKER_HOST`, else the default socket.
    pub host: Option<String>,
    /// Network of every session. `NetworkMode::None` here (or in a session's options) disables
    /// networking; the more restrictive of the two wins.
    pub network: NetworkMode,
    /// Home directory of the container user.
    pub container_home: String,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            image: DEFAULT_IMAGE.into(),
            host: None,
            network: NetworkMode::Default,
            container_home: DEFAULT_CONTAINER_HOME.into(),
        }
    }
}

impl DockerConfig {
    /// A config for `image` with all other settings at their defaults.
    pub fn for_image(image: impl Into<String>) -> Self {
        DockerConfig {
            image: image.into(),
            ..Default::default()
        }
    }

    /// The endpoint the backend will contact.
    pub fn endpoint(&self) -> String {
        self.host
            .clone()
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_string())
    }
}

/// The Docker implementation of [`ComputeBackend`].
///
/// Invariants: every container it creates carries `atp.run-id` and `atp.managed=true`, runs
/// `sleep infinity` under the engine's init, has the host workdir bind-mounted at
/// [`WORKDIR`] and is removed by the session's `close` or its teardown guard. The engine is
/// contacted lazily; the API version is negotiated once per backend. Containers are created from
/// the image id the name resolved to, and the first session of each image id checks the image
/// contract ([`atp_backend::contract`]) before it is handed out.
#[derive(Debug, Clone)]
pub struct DockerBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: DockerConfig,
    endpoint: String,
    client: OnceCell<Docker>,
    contract: ContractCache,
}

impl DockerBackend {
    /// A backend for `config`. Nothing is contacted until the first operation.
    pub fn new(config: DockerConfig) -> Self {
        let endpoint = config.endpoint();
        DockerBackend {
            inner: Arc::new(Inner {
                config,
                endpoint,
                client: OnceCell::new(),
                contract: ContractCache::new(),
            }),
        }
    }

    /// A backend for `image` on the default endpoint.
    pub fn for_image(image: impl Into<String>) -> Self {
        Self::new(DockerConfig::for_image(image))
    }

    /// The configuration.
    pub fn config(&self) -> &DockerConfig {
        &self.inner.config
    }

    /// The engine endpoint (never contains credentials).
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// The engine client, connected and version-negotiated (once).
    pub(crate) async fn client(&self) -> Result<&Docker> {
        self.inner
            .client
            .get_or_try_init(|| connect_negotiated(&self.inner.endpoint))
            .await
    }

    /// Build `req` with the engine's classic builder, streaming progress to `progress` (see
    /// [`crate::build`]).
    pub async fn build_image<F>(
        &self,
        req: BuildRequest,
        progress: F,
    ) -> std::result::Result<BuiltImage, BuildError>
    where
        F: FnMut(&BuildEvent) + Send,
    {
        let docker = self.client().await.map_err(|e| match e {
            BackendError::EngineUnavailable {
                endpoint, detail, ..
            } => BuildError::EngineUnavailable(format!("{endpoint}: {detail}")),
            other => BuildError::Engine(other.to_string()),
        })?;
        crate::build::build_image(docker, req, progress).await
    }

    fn map(&self, operation: &str, e: bollard::errors::Error) -> BackendError {
        error::map(&self.inner.endpoint, operation, e)
    }

    /// The engine id of the configured image; [`BackendError::ImageUnavailable`] when missing.
    async fn image_id(&self, docker: &Docker) -> Result<String> {
        let image = &self.inner.config.image;
        let inspect =
            docker
                .inspect_image(image)
                .await
                .map_err(|e| match error::server_status(&e) {
                    Some(404) => error::image_missing(image),
                    _ => self.map("inspect image", e),
                })?;
        inspect.id.ok_or_else(|| {
            BackendError::engine(BACKEND, "inspect image", format!("{image} has no id"))
        })
    }

    async fn create_container(
        &self,
        docker: &Docker,
        image_id: &str,
        v: &ValidSession,
        opts: &SessionOptions,
    ) -> Result<String> {
        let mut mounts = vec![DockerMount {
            target: Some(WORKDIR.into()),
            source: Some(v.workdir.to_string_lossy().into_owned()),
            typ: Some(MountType::BIND),
            read_only: Some(false),
            ..Default::default()
        }];
        for m in &v.mounts {
            mounts.push(DockerMount {
                target: Some(m.container.clone()),
                source: Some(m.host.to_string_lossy().into_owned()),
                typ: Some(MountType::BIND),
                read_only: Some(m.read_only),
                ..Default::default()
            });
        }
        let labels: HashMap<String, String> = v
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let env: Vec<String> = opts.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let network = v.network;
        let network_off = network == NetworkMode::None;
        let host_config = HostConfig {
            mounts: Some(mounts),
            network_mode: match network {
                NetworkMode::None => Some("none".to_string()),
                NetworkMode::Host => Some("host".to_string()),
                NetworkMode::Default => None,
            },
            nano_cpus: opts.resources.cpus.map(|c| (c * 1e9).round() as i64),
            memory: opts
                .resources
                .memory_mib
                .map(|m| (m as i64).saturating_mul(1024 * 1024)),
            init: Some(true),
            auto_remove: Some(false),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(image_id.to_string()),
            entrypoint: Some(vec!["sleep".into(), "infinity".into()]),
            cmd: None,
            env: (!env.is_empty()).then_some(env),
            labels: Some(labels),
            working_dir: Some(WORKDIR.into()),
            network_disabled: network_off.then_some(true),
            host_config: Some(host_config),
            ..Default::default()
        };
        let name = format!("atp-{}-{}", v.run_id.short(), short_random());
        // The request runs to its end even if this future is dropped; a container made for a
        // caller that gave up is removed at once (it would otherwise be known to no guard).
        let (engine, reaper) = (docker.clone(), docker.clone());
        let endpoint = self.inner.endpoint.clone();
        let image = self.inner.config.image.clone();
        atp_backend::create_owned(
            BACKEND,
            async move {
                engine
                    .create_container(
                        Some(CreateContainerOptionsBuilder::new().name(&name).build()),
                        body,
                    )
                    .await
                    .map(|c| c.id)
                    .map_err(|e| match error::server_status(&e) {
                        Some(404) => error::image_missing(&image),
                        _ => error::map(&endpoint, "create container", e),
                    })
            },
            move |id: String| {
                Box::pin(async move {
                    if let Err(e) = force_remove(&reaper, &id).await {
                        tracing::error!(container = %id, "removing an abandoned container: {e}");
                    }
                })
            },
        )
        .await
    }
}

/// Eight random hex digits for container names.
fn short_random() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

#[async_trait]
impl ComputeBackend for DockerBackend {
    fn name(&self) -> &str {
        BACKEND
    }

    fn container_home(&self) -> &str {
        &self.inner.config.container_home
    }

    fn image(&self) -> &str {
        &self.inner.config.image
    }

    async fn health(&self) -> Result<Health> {
        let docker = self.client().await?;
        docker.ping().await.map_err(|e| self.map("ping", e))?;
        let v = docker.version().await.map_err(|e| self.map("version", e))?;
        let mut details = BTreeMap::new();
        for (k, val) in [
            ("os", v.os.clone()),
            ("arch", v.arch.clone()),
            ("kernel", v.kernel_version.clone()),
            ("engine_api_version", v.api_version.clone()),
            ("min_api_version", v.min_api_version.clone()),
        ] {
            if let Some(val) = val {
                details.insert(k.to_string(), val);
            }
        }
        Ok(Health {
            backend: BACKEND.into(),
            endpoint: self.inner.endpoint.clone(),
            version: v.version,
            api_version: Some(docker.client_version().to_string()),
            details,
        })
    }

    async fn image_info(&self) -> Result<ImageInfo> {
        let docker = self.client().await?;
        let image = &self.inner.config.image;
        let inspect =
            docker
                .inspect_image(image)
                .await
                .map_err(|e| match error::server_status(&e) {
                    Some(404) => error::image_missing(image),
                    _ => self.map("inspect image", e),
                })?;
        let labels = inspect
            .config
            .and_then(|c| c.labels)
            .unwrap_or_default()
            .into_iter()
            .collect();
        Ok(ImageInfo {
            name: image.clone(),
            id: inspect.id.unwrap_or_default(),
            labels,
            size_bytes: inspect.size.and_then(|s| u64::try_from(s).ok()),
            repo_digests: inspect.repo_digests.unwrap_or_default(),
        })
    }

    async fn session(
        &self,
        workdir: &Path,
        opts: SessionOptions,
    ) -> Result<Box<dyn ComputeSession>> {
        let v = opts.validate(workdir, self.inner.config.network)?;
        let span = tracing::info_span!("docker_session", run_id = %v.run_id, container = tracing::field::Empty);
        async {
            let docker = self.client().await?;
            let image_id = self.image_id(docker).await?;
            // Creation fails atomically on a missing image or an unreachable engine, so both are
            // detected before anything exists; from here on the guard owns the container.
            let id = self.create_container(docker, &image_id, &v, &opts).await?;
            tracing::Span::current().record("container", id.as_str());
            let session = DockerSession::new(
                docker.clone(),
                self.inner.endpoint.clone(),
                id,
                v.run_id.clone(),
                v.workdir.clone(),
                opts.timeout,
            );
            session.start().await?;
            tracing::debug!("container started");
            let image = &self.inner.config.image;
            let remedy = error::contract_remedy(image);
            let checked = self
                .inner
                .contract
                .ensure(
                    &ImageRef {
                        backend: BACKEND,
                        image,
                        id: &image_id,
                        remedy: &remedy,
                    },
                    &opts.requires,
                    |argv| session.run_argv(argv, CONTRACT_CHECK_TIMEOUT),
                )
                .await;
            if let Err(e) = checked {
                // Best effort; the guard retries on drop if this fails.
                let _ = session.close().await;
                return Err(e);
            }
            Ok(Box::new(session) as Box<dyn ComputeSession>)
        }
        .instrument(span)
        .await
    }

    async fn gc(&self, filter: GcFilter) -> Result<Vec<GcEntry>> {
        let docker = self.client().await?;
        let mut labels = vec![format!("{LABEL_MANAGED}=true")];
        if let Some(run) = &filter.run_id {
            labels.push(format!("{LABEL_RUN_ID}={run}"));
        }
        let filters: HashMap<&str, Vec<String>> = HashMap::from([("label", labels)]);
        let list = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(|e| self.map("list containers", e))?;
        let cutoff = filter.older_than.map(|d| unix_now() - d.as_secs() as i64);
        let mut out = Vec::new();
        for c in list {
            let Some(id) = c.id else { continue };
            if let (Some(cutoff), Some(created)) = (cutoff, c.created) {
                if created > cutoff {
                    continue;
                }
            }
            let removed = if filter.dry_run {
                false
            } else {
                force_remove(docker, &id)
                    .await
                    .map_err(|d| BackendError::engine(BACKEND, "remove container", d))?;
                tracing::info!(container = %id, "gc removed container");
                true
            };
            out.push(GcEntry {
                id,
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .map(|n| n.trim_start_matches('/').to_string()),
                run_id: c.labels.as_ref().and_then(|l| l.get(LABEL_RUN_ID).cloned()),
                created_unix: c.created,
                state: c.state.map(|s| s.to_string()),
                removed,
            });
        }
        out.sort_by(|a, b| a.created_unix.cmp(&b.created_unix).then(a.id.cmp(&b.id)));
        Ok(out)
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_host_wins_over_environment() {
        let cfg = DockerConfig {
            host: Some("unix:///nonexistent.sock".into()),
            ..Default::default()
        };
        assert_eq!(cfg.endpoint(), "unix:///nonexistent.sock");
        assert_eq!(cfg.image, DEFAULT_IMAGE);
        assert_eq!(cfg.container_home, "/root");
    }

    #[tokio::test]
    async fn a_dead_socket_is_engine_unavailable_without_contacting_anything() {
        let b = DockerBackend::new(DockerConfig {
            host: Some("unix:///nonexistent/atp.sock".into()),
            ..Default::default()
        });
        let err = b.health().await.expect_err("dead socket");
        assert_eq!(err.kind(), "engine_unavailable", "{err}");
        assert!(err.to_string().contains("DOCKER_HOST"), "{err}");
    }

    #[tokio::test]
    async fn a_missing_workdir_is_invalid_input() {
        let b = DockerBackend::new(DockerConfig {
            host: Some("unix:///nonexistent/atp.sock".into()),
            ..Default::default()
        });
        let err = b
            .session(Path::new("/nonexistent/atp/wd"), SessionOptions::default())
            .await
            .expect_err("missing workdir");
        assert_eq!(err.kind(), "invalid_input", "{err}");
    }
}
