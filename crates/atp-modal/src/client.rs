//! The control-plane client: one channel, Modal's metadata headers, a lazily fetched auth JWT,
//! and unary retries with one idempotency key per logical call.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use atp_image::ModalLayer;
use base64::Engine as _;
use tokio::sync::Mutex;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Response, Status};

use crate::config::ModalCredentials;
use crate::error::ModalError;
use crate::proto::client as pb;
use crate::proto::client::modal_client_client::ModalClientClient;

/// Value of `x-modal-client-type` (there is no Rust value; libmodal's generic one is reused).
pub const CLIENT_TYPE: i32 = pb::ClientType::Libmodal as i32;
/// Value of `x-modal-client-version`: the Python SDK version whose behaviour atp follows.
pub const CLIENT_VERSION: &str = "1.0.0";
/// Largest gRPC message sent or accepted (as Modal's SDKs).
pub const MAX_MESSAGE: usize = 100 * 1024 * 1024;

/// Status codes retried on unary calls.
pub fn is_retryable(code: Code) -> bool {
    matches!(
        code,
        Code::DeadlineExceeded
            | Code::Unavailable
            | Code::Cancelled
            | Code::Internal
            | Code::Unknown
    )
}

/// Unary retry policy (Modal SDK defaults: 3 retries, 100 ms doubling, capped at 1 s).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub retries: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 3,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        }
    }
}

#[derive(Clone)]
struct AuthToken {
    value: String,
    exp: u64,
}

struct Inner {
    creds: ModalCredentials,
    channel: Channel,
    token: Mutex<Option<AuthToken>>,
    retry: RetryPolicy,
    refresh_window: Duration,
    loopback: bool,
}

/// A Modal control-plane client. Cheap to clone.
#[derive(Clone)]
pub struct ModalClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ModalClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModalClient")
            .field("server_url", &self.inner.creds.server_url)
            .field("environment", &self.inner.creds.environment)
            .finish_non_exhaustive()
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The `exp` claim of a JWT (seconds since the epoch); `None` if it has none or is malformed.
pub fn jwt_exp(jwt: &str) -> Option<u64> {
    let mut parts = jwt.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    let payload = payload.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("exp")?.as_f64().map(|f| f as u64)
}

/// Whether `url`'s host is a loopback / local-dev address (router traffic is then plaintext).
pub fn is_local_url(url: &str) -> bool {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1" | "172.21.0.1")
}

/// Open a lazily connecting channel to `url` (`https://` = TLS with webpki roots, `http://` =
/// plaintext).
pub(crate) fn open_channel(url: &str, force_plaintext: bool) -> Result<Channel, ModalError> {
    let connect_err = |detail: String| ModalError::Connect {
        endpoint: url.to_string(),
        detail,
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| connect_err("URL has no scheme (use https:// or http://)".into()))?;
    let tls = match scheme {
        "https" => !force_plaintext,
        "http" => false,
        other => return Err(connect_err(format!("unsupported scheme {other:?}"))),
    };
    let target = if tls {
        format!("https://{rest}")
    } else {
        format!("http://{rest}")
    };
    let mut ep = Endpoint::from_shared(target)
        .map_err(|e| connect_err(e.to_string()))?
        .connect_timeout(Duration::from_secs(20))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true)
        .initial_stream_window_size(64 * 1024 * 1024)
        .initial_connection_window_size(64 * 1024 * 1024);
    if tls {
        ep = ep
            .tls_config(ClientTlsConfig::new().with_webpki_roots())
            .map_err(|e| connect_err(e.to_string()))?;
    }
    Ok(ep.connect_lazy())
}

fn put(md: &mut MetadataMap, key: &'static str, value: &str) -> Result<(), ModalError> {
    let v = MetadataValue::try_from(value).map_err(|_| ModalError::Config {
        detail: format!("header {key} has a value that is not valid ASCII"),
    })?;
    md.insert(key, v);
    Ok(())
}

/// What a sandbox is created with.
#[derive(Debug, Clone, Default)]
pub struct SandboxSpec {
    pub image_id: String,
    pub secret_ids: Vec<String>,
    pub milli_cpu: u32,
    pub memory_mib: u32,
    pub timeout_secs: u32,
    pub workdir: Option<String>,
    /// Block all network access (else open).
    pub block_network: bool,
    pub name: Option<String>,
    pub entrypoint_args: Vec<String>,
}

/// Modal image builder version sent with every layer.
pub const BUILDER_VERSION: &str = "2024.10";

impl ModalClient {
    /// A client for `creds` (connects lazily; nothing is sent until the first call).
    pub fn new(creds: ModalCredentials) -> Result<Self, ModalError> {
        Self::with_options(creds, RetryPolicy::default(), Duration::from_secs(300))
    }

    /// A client with an explicit retry policy and JWT refresh window.
    pub fn with_options(
        creds: ModalCredentials,
        retry: RetryPolicy,
        refresh_window: Duration,
    ) -> Result<Self, ModalError> {
        let channel = open_channel(&creds.server_url, false)?;
        let loopback = is_local_url(&creds.server_url);
        Ok(ModalClient {
            inner: Arc::new(Inner {
                creds,
                channel,
                token: Mutex::new(None),
                retry,
                refresh_window,
                loopback,
            }),
        })
    }

    /// The control-plane URL (never contains credentials).
    pub fn server_url(&self) -> &str {
        &self.inner.creds.server_url
    }

    /// The resolved credentials (values redacted in `Debug`).
    pub fn credentials(&self) -> &ModalCredentials {
        &self.inner.creds
    }

    pub(crate) fn is_loopback(&self) -> bool {
        self.inner.loopback
    }

    fn environment(&self) -> String {
        self.inner.creds.environment.clone()
    }

    fn grpc(&self) -> ModalClientClient<Channel> {
        ModalClientClient::new(self.inner.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    fn base_headers(&self, md: &mut MetadataMap, auth: Option<&str>) -> Result<(), ModalError> {
        let c = &self.inner.creds;
        put(md, "x-modal-client-type", &CLIENT_TYPE.to_string())?;
        put(md, "x-modal-client-version", CLIENT_VERSION)?;
        put(
            md,
            "x-modal-libmodal-version",
            concat!("atp-modal/", env!("CARGO_PKG_VERSION")),
        )?;
        put(md, "x-modal-token-id", c.token_id.expose())?;
        put(md, "x-modal-token-secret", c.token_secret.expose())?;
        if let Some(a) = auth {
            put(md, "x-modal-auth-token", a)?;
        }
        Ok(())
    }

    /// The auth JWT: fetched on first use, refreshed within the refresh window of its expiry;
    /// a failed refresh keeps a still-valid token.
    async fn auth_token(&self) -> Result<String, ModalError> {
        let mut guard = self.inner.token.lock().await;
        let now = unix_now();
        if let Some(t) = guard.as_ref() {
            if t.exp > now + self.inner.refresh_window.as_secs() {
                return Ok(t.value.clone());
            }
        }
        let fetched = self
            .raw_unary(
                "AuthTokenGet",
                pb::AuthTokenGetRequest {},
                None,
                None,
                |mut c, r| async move { c.auth_token_get(r).await },
            )
            .await;
        match fetched {
            Ok(resp) if !resp.token.is_empty() => {
                let exp = jwt_exp(&resp.token).unwrap_or_else(|| {
                    tracing::warn!("Modal auth token has no exp claim; assuming 20 minutes");
                    now + 1200
                });
                *guard = Some(AuthToken {
                    value: resp.token.clone(),
                    exp,
                });
                Ok(resp.token)
            }
            Ok(_) => Err(ModalError::Protocol {
                method: "AuthTokenGet",
                detail: "empty token".into(),
            }),
            Err(e) => match guard.as_ref() {
                Some(t) if t.exp > now => {
                    tracing::warn!("Modal auth token refresh failed, keeping the current one: {e}");
                    Ok(t.value.clone())
                }
                _ => Err(e),
            },
        }
    }

    /// One logical unary call with retries; the same idempotency key on every attempt.
    async fn raw_unary<Req, Resp, F, Fut>(
        &self,
        method: &'static str,
        req: Req,
        auth: Option<&str>,
        timeout: Option<Duration>,
        call: F,
    ) -> Result<Resp, ModalError>
    where
        Req: Clone,
        F: Fn(ModalClientClient<Channel>, Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        let key = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        let policy = self.inner.retry;
        let mut delay = policy.base;
        let mut attempt: u32 = 0;
        loop {
            let mut r = Request::new(req.clone());
            self.base_headers(r.metadata_mut(), auth)?;
            put(r.metadata_mut(), "x-idempotency-key", &key)?;
            put(r.metadata_mut(), "x-retry-attempt", &attempt.to_string())?;
            put(
                r.metadata_mut(),
                "x-retry-delay",
                &format!("{:.3}", started.elapsed().as_secs_f64()),
            )?;
            if let Some(t) = timeout {
                r.set_timeout(t);
            }
            let attempt_started = Instant::now();
            match call(self.grpc(), r).await {
                Ok(resp) => return Ok(resp.into_inner()),
                Err(s) => {
                    // Our own deadline surfaces as CANCELLED/DEADLINE_EXCEEDED: not retried.
                    let own_timeout = timeout.is_some_and(|t| attempt_started.elapsed() >= t);
                    if is_retryable(s.code()) && !own_timeout && attempt < policy.retries {
                        tracing::debug!(method, attempt, code = ?s.code(), "retrying Modal call");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(policy.max);
                        attempt += 1;
                        continue;
                    }
                    if own_timeout && timeout.is_some() {
                        return Err(ModalError::Deadline {
                            method,
                            secs: timeout.map(|t| t.as_secs()).unwrap_or(0),
                        });
                    }
                    return Err(ModalError::rpc(method, &s));
                }
            }
        }
    }

    /// An authenticated unary call; an UNAUTHENTICATED answer drops the cached JWT and the call
    /// is repeated once with a fresh one.
    async fn unary<Req, Resp, F, Fut>(
        &self,
        method: &'static str,
        req: Req,
        timeout: Option<Duration>,
        call: F,
    ) -> Result<Resp, ModalError>
    where
        Req: Clone,
        F: Fn(ModalClientClient<Channel>, Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        let token = self.auth_token().await?;
        match self
            .raw_unary(method, req.clone(), Some(&token), timeout, &call)
            .await
        {
            Err(e) if e.code() == Some(Code::Unauthenticated) => {
                *self.inner.token.lock().await = None;
                let token = self.auth_token().await?;
                self.raw_unary(method, req, Some(&token), timeout, &call)
                    .await
            }
            other => other,
        }
    }

    async fn stream_request<Req>(&self, req: Req) -> Result<Request<Req>, ModalError> {
        let token = self.auth_token().await?;
        let mut r = Request::new(req);
        self.base_headers(r.metadata_mut(), Some(&token))?;
        put(
            r.metadata_mut(),
            "x-idempotency-key",
            &uuid::Uuid::new_v4().to_string(),
        )?;
        Ok(r)
    }

    // ---- apps, secrets ----

    /// Look up (and optionally create) an app by name.
    pub async fn app_get_or_create(
        &self,
        name: &str,
        create_if_missing: bool,
    ) -> Result<String, ModalError> {
        let req = pb::AppGetOrCreateRequest {
            app_name: name.to_string(),
            environment_name: self.environment(),
            object_creation_type: if create_if_missing {
                pb::ObjectCreationType::CreateIfMissing as i32
            } else {
                pb::ObjectCreationType::Unspecified as i32
            },
        };
        let r = self
            .unary("AppGetOrCreate", req, None, |mut c, r| async move {
                c.app_get_or_create(r).await
            })
            .await?;
        Ok(r.app_id)
    }

    /// An ephemeral secret holding `env` (a fresh one per call).
    pub async fn secret_from_map(
        &self,
        env: &BTreeMap<String, String>,
    ) -> Result<String, ModalError> {
        let req = pb::SecretGetOrCreateRequest {
            environment_name: self.environment(),
            object_creation_type: pb::ObjectCreationType::Ephemeral as i32,
            env_dict: env.clone().into_iter().collect(),
            ..Default::default()
        };
        let r = self
            .unary("SecretGetOrCreate", req, None, |mut c, r| async move {
                c.secret_get_or_create(r).await
            })
            .await?;
        Ok(r.secret_id)
    }

    // ---- images ----

    /// The image id published under `tag` (`name[:tag]`, tag defaults to `latest`); `None` when
    /// nothing is published under it.
    pub async fn image_get_by_tag(&self, tag: &str) -> Result<Option<String>, ModalError> {
        let req = pb::ImageGetByTagRequest {
            tag: normalize_tag(tag),
            environment_name: self.environment(),
        };
        match self
            .unary("ImageGetByTag", req, None, |mut c, r| async move {
                c.image_get_by_tag(r).await
            })
            .await
        {
            Ok(r) => Ok(Some(r.image_id)),
            Err(e) if e.code() == Some(Code::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Publish a built image under `tag`.
    pub async fn image_publish(&self, image_id: &str, tag: &str) -> Result<String, ModalError> {
        let req = pb::ImagePublishRequest {
            image_id: image_id.to_string(),
            tag: normalize_tag(tag),
            environment_name: self.environment(),
            allow_public: false,
        };
        let r = self
            .unary("ImagePublish", req, None, |mut c, r| async move {
                c.image_publish(r).await
            })
            .await?;
        Ok(r.image_id)
    }

    /// Build `layers` in order, each on the previous one's image id; build logs go to `log` as
    /// they stream. Returns the last layer's image id.
    pub async fn image_build(
        &self,
        app_id: &str,
        layers: &[ModalLayer],
        force_build: bool,
        log: &mut (dyn FnMut(&str) + Send),
    ) -> Result<String, ModalError> {
        let mut prev: Option<String> = None;
        for (i, layer) in layers.iter().enumerate() {
            if layer
                .dockerfile_commands
                .iter()
                .any(|c| c.starts_with("COPY ") && !c.starts_with("COPY --from="))
            {
                return Err(ModalError::Config {
                    detail: format!(
                        "layer {i} uses COPY, which Modal layers cannot (no build context)"
                    ),
                });
            }
            let base_images = match &prev {
                Some(id) => vec![pb::BaseImage {
                    image_id: id.clone(),
                    docker_tag: "base".into(),
                }],
                None => Vec::new(),
            };
            let req = pb::ImageGetOrCreateRequest {
                image: Some(pb::Image {
                    base_images,
                    dockerfile_commands: layer.commands_with_from(),
                    secret_ids: Vec::new(),
                    gpu_config: None,
                }),
                app_id: app_id.to_string(),
                force_build,
                builder_version: BUILDER_VERSION.into(),
            };
            let r = self
                .unary("ImageGetOrCreate", req, None, |mut c, r| async move {
                    c.image_get_or_create(r).await
                })
                .await?;
            let result = match r.result.filter(|g| g.status != 0) {
                Some(done) => {
                    log(&format!(
                        "layer {}/{}: {} (cached)\n",
                        i + 1,
                        layers.len(),
                        r.image_id
                    ));
                    done
                }
                None => {
                    log(&format!(
                        "layer {}/{}: building {}\n",
                        i + 1,
                        layers.len(),
                        r.image_id
                    ));
                    self.image_join(&r.image_id, log).await?
                }
            };
            check_build(&r.image_id, &result)?;
            prev = Some(r.image_id);
        }
        prev.ok_or_else(|| ModalError::Config {
            detail: "an image needs at least one layer".into(),
        })
    }

    /// Follow a build to its end, re-issuing the long poll from the last entry id.
    async fn image_join(
        &self,
        image_id: &str,
        log: &mut (dyn FnMut(&str) + Send),
    ) -> Result<pb::GenericResult, ModalError> {
        let mut last_entry_id = String::new();
        loop {
            let req = self
                .stream_request(pb::ImageJoinStreamingRequest {
                    image_id: image_id.to_string(),
                    timeout: 55.0,
                    last_entry_id: last_entry_id.clone(),
                    include_logs_for_finished: true,
                })
                .await?;
            let mut stream = self
                .grpc()
                .image_join_streaming(req)
                .await
                .map_err(|s| ModalError::rpc("ImageJoinStreaming", &s))?
                .into_inner();
            loop {
                match stream.message().await {
                    Ok(Some(item)) => {
                        if !item.entry_id.is_empty() {
                            last_entry_id = item.entry_id.clone();
                        }
                        for l in &item.task_logs {
                            log(&l.data);
                        }
                        if let Some(res) = item.result.filter(|g| g.status != 0) {
                            return Ok(res);
                        }
                    }
                    Ok(None) => break,
                    Err(s) => return Err(ModalError::rpc("ImageJoinStreaming", &s)),
                }
            }
        }
    }

    // ---- sandboxes ----

    /// Create a sandbox; returns its id.
    pub async fn sandbox_create(
        &self,
        app_id: &str,
        spec: &SandboxSpec,
    ) -> Result<String, ModalError> {
        use pb::network_access::NetworkAccessType;
        let definition = pb::Sandbox {
            entrypoint_args: spec.entrypoint_args.clone(),
            image_id: spec.image_id.clone(),
            secret_ids: spec.secret_ids.clone(),
            resources: Some(pb::Resources {
                memory_mb: spec.memory_mib,
                milli_cpu: spec.milli_cpu,
                gpu_config: Some(pb::GpuConfig::default()),
                ..Default::default()
            }),
            timeout_secs: spec.timeout_secs,
            workdir: spec.workdir.clone(),
            open_ports_oneof: Some(pb::sandbox::OpenPortsOneof::OpenPorts(pb::PortSpecs {
                ports: Vec::new(),
            })),
            network_access: Some(pb::NetworkAccess {
                network_access_type: if spec.block_network {
                    NetworkAccessType::Blocked as i32
                } else {
                    NetworkAccessType::Open as i32
                },
                allowed_cidrs: Vec::new(),
            }),
            name: spec.name.clone(),
            idle_timeout_secs: None,
        };
        let req = pb::SandboxCreateRequest {
            app_id: app_id.to_string(),
            definition: Some(definition),
            environment_name: String::new(),
        };
        let r = self
            .unary("SandboxCreate", req, None, |mut c, r| async move {
                c.sandbox_create(r).await
            })
            .await?;
        Ok(r.sandbox_id)
    }

    /// Replace a sandbox's tags.
    pub async fn sandbox_tags_set(
        &self,
        sandbox_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), ModalError> {
        let req = pb::SandboxTagsSetRequest {
            environment_name: self.environment(),
            sandbox_id: sandbox_id.to_string(),
            tags: tags
                .iter()
                .map(|(k, v)| pb::SandboxTag {
                    tag_name: k.clone(),
                    tag_value: v.clone(),
                })
                .collect(),
        };
        self.unary("SandboxTagsSet", req, None, |mut c, r| async move {
            c.sandbox_tags_set(r).await
        })
        .await
    }

    /// The task id of a sandbox, polled until it is scheduled or `deadline` passes.
    pub async fn sandbox_task_id(
        &self,
        sandbox_id: &str,
        deadline: Duration,
    ) -> Result<String, ModalError> {
        let started = Instant::now();
        loop {
            let req = pb::SandboxGetTaskIdRequest {
                sandbox_id: sandbox_id.to_string(),
                timeout: None,
                wait_until_ready: false,
            };
            let r = self
                .unary("SandboxGetTaskId", req, None, |mut c, r| async move {
                    c.sandbox_get_task_id(r).await
                })
                .await?;
            if let Some(res) = r.task_result.filter(|g| g.status != 0) {
                return Err(ModalError::SandboxDead {
                    id: sandbox_id.to_string(),
                    detail: format!(
                        "already completed before it could run commands ({})",
                        describe(&res)
                    ),
                });
            }
            if let Some(t) = r.task_id.filter(|t| !t.is_empty()) {
                return Ok(t);
            }
            if started.elapsed() >= deadline {
                return Err(ModalError::Deadline {
                    method: "SandboxGetTaskId",
                    secs: deadline.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// One long poll on a sandbox's end (`timeout` 0 = a non-blocking poll). `None`: still
    /// running.
    pub async fn sandbox_wait(
        &self,
        sandbox_id: &str,
        timeout: Duration,
    ) -> Result<Option<pb::GenericResult>, ModalError> {
        let req = pb::SandboxWaitRequest {
            sandbox_id: sandbox_id.to_string(),
            timeout: timeout.as_secs_f32(),
        };
        let r = self
            .unary(
                "SandboxWait",
                req,
                Some(timeout + Duration::from_secs(30)),
                |mut c, r| async move { c.sandbox_wait(r).await },
            )
            .await?;
        Ok(r.result.filter(|g| g.status != 0))
    }

    /// Terminate a sandbox (idempotent on Modal's side).
    pub async fn sandbox_terminate(&self, sandbox_id: &str) -> Result<(), ModalError> {
        let req = pb::SandboxTerminateRequest {
            sandbox_id: sandbox_id.to_string(),
        };
        self.unary("SandboxTerminate", req, None, |mut c, r| async move {
            c.sandbox_terminate(r).await
        })
        .await
        .map(|_| ())
    }

    /// Every running sandbox of `app_id` carrying all `tags`, across pages.
    pub async fn sandbox_list(
        &self,
        app_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Vec<pb::SandboxInfo>, ModalError> {
        let mut out = Vec::new();
        let mut before = 0.0;
        loop {
            let req = pb::SandboxListRequest {
                app_id: app_id.to_string(),
                before_timestamp: before,
                environment_name: self.environment(),
                include_finished: false,
                tags: tags
                    .iter()
                    .map(|(k, v)| pb::SandboxTag {
                        tag_name: k.clone(),
                        tag_value: v.clone(),
                    })
                    .collect(),
            };
            let r = self
                .unary("SandboxList", req, None, |mut c, r| async move {
                    c.sandbox_list(r).await
                })
                .await?;
            let Some(last) = r.sandboxes.last() else {
                return Ok(out);
            };
            if before != 0.0 && last.created_at >= before {
                return Ok(out); // a server that ignores the cursor: stop rather than loop
            }
            before = last.created_at;
            out.extend(r.sandboxes);
        }
    }

    /// The command router of a task: its URL and a JWT for it.
    pub async fn router_access(&self, task_id: &str) -> Result<(String, String), ModalError> {
        let req = pb::TaskGetCommandRouterAccessRequest {
            task_id: task_id.to_string(),
        };
        let r = self
            .unary(
                "TaskGetCommandRouterAccess",
                req,
                None,
                |mut c, r| async move { c.task_get_command_router_access(r).await },
            )
            .await?;
        Ok((r.url, r.jwt))
    }
}

/// `name` → `name:latest`; a name with a tag is kept.
pub fn normalize_tag(tag: &str) -> String {
    let last = tag.rsplit('/').next().unwrap_or(tag);
    if last.contains(':') {
        tag.to_string()
    } else {
        format!("{tag}:latest")
    }
}

/// A short description of a finished task's result.
pub fn describe(r: &pb::GenericResult) -> String {
    use pb::generic_result::GenericStatus;
    let status = GenericStatus::try_from(r.status)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("GENERIC_STATUS_")
                .to_lowercase()
        })
        .unwrap_or_else(|_| format!("status {}", r.status));
    let mut s = status;
    if r.exitcode != 0 {
        s.push_str(&format!(", exit code {}", r.exitcode));
    }
    if !r.exception.is_empty() {
        s.push_str(&format!(": {}", atp_backend::one_line(&r.exception)));
    }
    s
}

fn check_build(image_id: &str, r: &pb::GenericResult) -> Result<(), ModalError> {
    use pb::generic_result::GenericStatus;
    if r.status == GenericStatus::Success as i32 {
        Ok(())
    } else {
        Err(ModalError::Build {
            image_id: image_id.to_string(),
            detail: describe(r),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_exp_is_read_from_the_payload() {
        assert_eq!(jwt_exp("x.eyJleHAiOjk5OTk5OTk5OTl9.x"), Some(9_999_999_999));
        assert_eq!(jwt_exp("not-a-jwt"), None);
    }

    #[test]
    fn local_urls() {
        assert!(is_local_url("http://127.0.0.1:5000"));
        assert!(is_local_url("https://localhost"));
        assert!(is_local_url("http://[::1]:80"));
        assert!(!is_local_url("https://api.modal.com:443"));
    }

    #[test]
    fn tags_default_to_latest() {
        assert_eq!(normalize_tag("open-atp"), "open-atp:latest");
        assert_eq!(normalize_tag("open-atp:v2"), "open-atp:v2");
        assert_eq!(normalize_tag("env/open-atp"), "env/open-atp:latest");
    }
}
