//! A fake Modal on loopback: a tonic control-plane server and a tonic command-router server
//! speaking atp's subset of Modal's protocol with Modal's semantics, whose sandboxes are REAL
//! containers of the local Docker engine (so exec, push and pull move real bytes).
//!
//! Semantics kept: token-id/secret required on every control-plane call; auth JWTs issued by
//! `AuthTokenGet` with an `exp` claim and refused once expired; router JWTs checked the same way;
//! idempotency keys deduplicate `SandboxCreate`; long polls (`SandboxWait`,
//! `ImageJoinStreaming`) end early without a result; `SandboxGetTaskId` answers "not scheduled
//! yet" at first; `SandboxList` pages by `before_timestamp`; exec output arrives in chunks of a
//! configurable (odd) size and is resumable by byte offset; exits by signal are reported as
//! `signal`.
//!
//! Not faithful: image builds do not execute their Dockerfile commands (each layer records its
//! commands and `ENV` values; sandboxes run the configured local Docker image with that
//! environment); resources are recorded, not enforced.
//!
//! Test hooks: transient error injection per method, recorded request metadata, killing a
//! sandbox's container, stalling exec streams.
//!
//! Invariant: every container carries `atp.managed=true` and `atp.run-id=<the fake's run id>`
//! and is removed by [`FakeModal::shutdown`] (or when its sandbox is terminated).

mod control;
mod engine;
mod router;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atp_modal::proto::client::{self as pb, modal_client_server::ModalClientServer};
use atp_modal::proto::router::task_command_router_server::TaskCommandRouterServer;
use base64::Engine as _;
use sha2::Digest as _;
use tokio::sync::Notify;
use tonic::{Code, Status};

pub use engine::docker_ready;

/// Error starting the fake.
#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    #[error("fake Modal: Docker engine not usable: {0}")]
    Docker(String),
    #[error("fake Modal: cannot bind {addr}: {detail}")]
    Bind { addr: String, detail: String },
}

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// Control-plane listen address (`127.0.0.1:0` = a random port).
    pub addr: SocketAddr,
    /// Lifetime of auth JWTs issued by `AuthTokenGet`.
    pub token_ttl: Duration,
    /// Lifetime of router JWTs.
    pub router_token_ttl: Duration,
    /// Local Docker image every sandbox runs.
    pub docker_image: String,
    /// Exec output is sent in chunks of at most this many bytes.
    pub chunk_size: usize,
    /// Longest a long poll waits before ending without a result.
    pub long_poll_max: Duration,
    /// `SandboxGetTaskId` answers without a task id this many times per sandbox first.
    pub task_id_pending_polls: u32,
    /// Image build log entries sent per `ImageJoinStreaming` call (then the stream ends early).
    pub build_log_batch: usize,
    /// Named images present from the start (`name:tag`).
    pub seed_images: Vec<String>,
    /// Run id on every container the fake creates.
    pub run_id: String,
    /// `SandboxList` page size.
    pub list_page: usize,
    /// Break every exec output stream with UNAVAILABLE after this many messages (clients must
    /// resume at their byte offset).
    pub break_stdio_after: Option<usize>,
    /// Sandboxes whose network is not blocked run with the host's network (so they reach
    /// loopback fakes); otherwise every sandbox has no network.
    pub open_network_is_host: bool,
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            token_ttl: Duration::from_secs(3600),
            router_token_ttl: Duration::from_secs(3600),
            docker_image: "atp-test:latest".into(),
            chunk_size: 4093,
            long_poll_max: Duration::from_millis(1500),
            task_id_pending_polls: 1,
            build_log_batch: 2,
            seed_images: vec!["open-atp:latest".into()],
            run_id: format!("fake-modal-{}", uuid::Uuid::new_v4().simple()),
            list_page: 2,
            break_stdio_after: None,
            open_network_is_host: false,
        }
    }
}

/// One control-plane or router request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Lowercased metadata keys and their (ASCII) values.
    pub metadata: BTreeMap<String, String>,
}

/// A sandbox as the fake sees it (for assertions).
#[derive(Debug, Clone)]
pub struct SandboxView {
    pub id: String,
    /// The name the client gave at creation.
    pub name: Option<String>,
    pub app_id: String,
    pub image_id: String,
    pub tags: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
    pub milli_cpu: u32,
    pub memory_mb: u32,
    pub timeout_secs: u32,
    pub network_blocked: bool,
    pub terminated: bool,
    pub container: Option<String>,
}

/// What is left, as the fake sees it: for leak checks in tests and benchmarks.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    /// Sandboxes ever created.
    pub created: usize,
    /// Sandboxes not ended: never terminated, not timed out, entrypoint still running.
    pub running: Vec<SandboxView>,
    /// Containers of this fake still on the engine although their sandbox ended, or whose
    /// sandbox the fake never recorded: `(container, sandbox id label, why)`.
    pub stray_containers: Vec<(String, String, String)>,
    /// Container removals the engine refused even after retries: `(container, error)`.
    pub failed_removals: Vec<(String, String)>,
}

impl Audit {
    /// Nothing running, nothing stray.
    pub fn is_clean(&self) -> bool {
        self.running.is_empty() && self.stray_containers.is_empty()
    }

    /// One paragraph naming every leftover (for a benchmark's or a test's output).
    pub fn summary(&self) -> String {
        let mut s = format!(
            "fake Modal audit: {} sandboxes created, {} still running, {} stray containers, {} failed removals",
            self.created,
            self.running.len(),
            self.stray_containers.len(),
            self.failed_removals.len()
        );
        for v in &self.running {
            s.push_str(&format!(
                "\n  running {} name={} tags={:?}",
                v.id,
                v.name.as_deref().unwrap_or("-"),
                v.tags
            ));
        }
        for (c, sb, why) in &self.stray_containers {
            s.push_str(&format!("\n  stray container {c} (sandbox {sb}): {why}"));
        }
        for (c, e) in &self.failed_removals {
            s.push_str(&format!("\n  removal of {c} failed: {e}"));
        }
        s
    }
}

#[derive(Debug, Clone)]
pub(crate) struct FakeImage {
    pub commands: Vec<String>,
    pub base: Option<String>,
    pub env: BTreeMap<String, String>,
    pub builds: u32,
    pub logs: Vec<String>,
    pub result: Option<pb::GenericResult>,
}

#[derive(Debug)]
pub(crate) struct FakeSandbox {
    pub view: SandboxView,
    pub task_id: String,
    pub created_at: f64,
    pub name: Option<String>,
    pub result: Option<pb::GenericResult>,
    pub task_polls: u32,
}

#[derive(Default)]
pub(crate) struct ExecState {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub output_done: bool,
    pub exit: Option<i64>,
    pub stdin_offset: u64,
    pub stdin_closed: bool,
    pub stdin_tx: Option<tokio::sync::mpsc::UnboundedSender<Option<bytes::Bytes>>>,
    pub task_id: String,
}

pub(crate) struct ExecEntry {
    pub state: Mutex<ExecState>,
    pub changed: Notify,
}

#[derive(Default)]
pub(crate) struct Tables {
    pub apps: HashMap<String, String>,
    pub secrets: HashMap<String, BTreeMap<String, String>>,
    pub images: HashMap<String, FakeImage>,
    pub tags: HashMap<String, String>,
    pub sandboxes: HashMap<String, FakeSandbox>,
    pub tasks: HashMap<String, String>,
    /// Idempotency key of a `SandboxCreate` → its outcome, watched while the creation runs (a
    /// retry with the same key waits for the first attempt instead of making a second sandbox).
    pub idempotent_creates: HashMap<String, CreateSlot>,
    /// Container removals the engine refused, even after retries: (container, error).
    pub failed_removals: Vec<(String, String)>,
    /// Container removals under way: container → when it started.
    pub removing: HashMap<String, std::time::Instant>,
    pub auth_tokens: HashMap<String, u64>,
    pub router_tokens: HashMap<String, u64>,
    pub inject: HashMap<String, (Code, u32)>,
    /// Calls whose work is done but whose answer is replaced by an error (a lost response).
    pub lose: HashMap<String, (Code, u32)>,
    pub recorded: Vec<Recorded>,
}

/// The outcome of one `SandboxCreate`, once known.
pub(crate) type CreateOutcome = Option<Result<String, Status>>;
pub(crate) type CreateSlot = tokio::sync::watch::Receiver<CreateOutcome>;

pub(crate) struct State {
    pub opts: FakeOptions,
    pub t: Mutex<Tables>,
    pub execs: Mutex<HashMap<String, Arc<ExecEntry>>>,
    pub docker: bollard::Docker,
    pub router_url: Mutex<String>,
    pub sandbox_changed: Notify,
    pub stall: AtomicBool,
    pub seq: AtomicU64,
    /// Every gRPC path the servers received, known or not.
    pub paths: Mutex<Vec<String>>,
}

pub(crate) fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    pub(crate) fn next_id(&self, prefix: &str) -> String {
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        format!(
            "{prefix}-{n:04}{}",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        )
    }

    pub(crate) fn jwt(&self, ttl: Duration) -> (String, u64) {
        let exp = now() as u64 + ttl.as_secs().max(1);
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = b64.encode(format!(r#"{{"exp":{exp},"n":{n}}}"#));
        (format!("{header}.{payload}.fake"), exp)
    }

    /// Record the call, check credentials / tokens, apply injected errors.
    pub(crate) fn enter(
        &self,
        method: &str,
        md: &tonic::metadata::MetadataMap,
        router: bool,
    ) -> Result<(), Status> {
        let mut map = BTreeMap::new();
        for kv in md.iter() {
            if let tonic::metadata::KeyAndValueRef::Ascii(k, v) = kv {
                map.insert(
                    k.as_str().to_lowercase(),
                    v.to_str().unwrap_or("").to_string(),
                );
            }
        }
        let mut t = lock(&self.t);
        t.recorded.push(Recorded {
            method: method.to_string(),
            metadata: map.clone(),
        });
        if router {
            let token = map
                .get("authorization")
                .and_then(|a| a.strip_prefix("Bearer "))
                .unwrap_or("");
            match t.router_tokens.get(token) {
                Some(exp) if *exp as f64 > now() => {}
                Some(_) => return Err(Status::unauthenticated("router token expired")),
                None => return Err(Status::unauthenticated("missing or unknown router token")),
            }
        } else {
            if map.get("x-modal-token-id").is_none_or(|v| v.is_empty())
                || map.get("x-modal-token-secret").is_none_or(|v| v.is_empty())
            {
                return Err(Status::unauthenticated("missing token_id or token_secret"));
            }
            if let Some(tok) = map.get("x-modal-auth-token") {
                match t.auth_tokens.get(tok) {
                    Some(exp) if *exp as f64 > now() => {}
                    Some(_) => return Err(Status::unauthenticated("auth token expired")),
                    None => return Err(Status::unauthenticated("unknown auth token")),
                }
            }
        }
        if let Some((code, left)) = t.inject.get_mut(method) {
            if *left > 0 {
                *left -= 1;
                return Err(Status::new(*code, format!("injected {code:?} on {method}")));
            }
        }
        Ok(())
    }
}

impl State {
    /// The error replacing a successful answer of `method`, when a lost response is pending.
    pub(crate) fn lost(&self, method: &str) -> Result<(), Status> {
        let mut t = lock(&self.t);
        if let Some((code, left)) = t.lose.get_mut(method) {
            if *left > 0 {
                *left -= 1;
                return Err(Status::new(
                    *code,
                    format!("injected lost response on {method}"),
                ));
            }
        }
        Ok(())
    }
}

/// A running fake Modal.
pub struct FakeModal {
    state: Arc<State>,
    url: String,
    shutdown: Vec<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for FakeModal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeModal")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl FakeModal {
    /// Start both servers. Fails when the Docker engine or the sandbox image is missing.
    pub async fn start(opts: FakeOptions) -> Result<FakeModal, FakeError> {
        let docker = engine::docker_ready(&opts.docker_image)
            .await
            .map_err(FakeError::Docker)?;
        Self::start_with(opts, docker).await
    }

    /// Start both servers without a Docker engine: every control-plane RPC works except that
    /// `SandboxCreate` fails (INTERNAL) — for client tests that need no sandbox.
    pub async fn start_without_engine(opts: FakeOptions) -> Result<FakeModal, FakeError> {
        // A client aimed at a closed loopback port: every engine call fails at once.
        let docker = bollard::Docker::connect_with_http(
            "http://127.0.0.1:1",
            2,
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|e| FakeError::Docker(e.to_string()))?;
        Self::start_with(opts, docker).await
    }

    async fn start_with(
        opts: FakeOptions,
        docker: bollard::Docker,
    ) -> Result<FakeModal, FakeError> {
        let state = Arc::new(State {
            opts: opts.clone(),
            t: Mutex::new(Tables::default()),
            execs: Mutex::new(HashMap::new()),
            docker,
            router_url: Mutex::new(String::new()),
            sandbox_changed: Notify::new(),
            stall: AtomicBool::new(false),
            seq: AtomicU64::new(1),
            paths: Mutex::new(Vec::new()),
        });
        // Seeded images carry the local image's pin labels as environment, the way a Modal
        // image built from `to_modal_layers` carries them.
        let seed_env: BTreeMap<String, String> =
            match state.docker.inspect_image(&opts.docker_image).await {
                Ok(img) => atp_image::pin_env_from_labels(
                    &img.config
                        .and_then(|c| c.labels)
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                ),
                Err(_) => BTreeMap::new(),
            };
        {
            let mut t = lock(&state.t);
            for tag in &opts.seed_images {
                let mut h = sha2::Sha256::new();
                h.update(&opts.docker_image);
                for (k, v) in &seed_env {
                    h.update([0u8]);
                    h.update(k);
                    h.update([b'=']);
                    h.update(v);
                }
                let id = format!(
                    "im-seed{}-{}",
                    t.images.len(),
                    &hex::encode(h.finalize())[..12]
                );
                t.images.insert(
                    id.clone(),
                    FakeImage {
                        commands: vec![format!("FROM {}", opts.docker_image)],
                        base: None,
                        env: seed_env.clone(),
                        builds: 1,
                        logs: Vec::new(),
                        result: Some(success()),
                    },
                );
                t.tags.insert(atp_modal::client::normalize_tag(tag), id);
            }
        }
        let bind = |addr: SocketAddr| async move {
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| FakeError::Bind {
                    addr: addr.to_string(),
                    detail: e.to_string(),
                })
        };
        let cp_listener = bind(opts.addr).await?;
        let router_listener = bind(SocketAddr::new(opts.addr.ip(), 0)).await?;
        let cp_addr = cp_listener.local_addr().map_err(|e| FakeError::Bind {
            addr: opts.addr.to_string(),
            detail: e.to_string(),
        })?;
        let router_addr = router_listener.local_addr().map_err(|e| FakeError::Bind {
            addr: opts.addr.to_string(),
            detail: e.to_string(),
        })?;
        *lock(&state.router_url) = format!("http://{router_addr}");
        let mut shutdown = Vec::new();
        let mut tasks = Vec::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        shutdown.push(tx);
        let trace_state = state.clone();
        let trace = move |req: &http::Request<()>| {
            let path = req.uri().path().to_string();
            let method = path.rsplit('/').next().unwrap_or("").to_string();
            if !KNOWN_RPCS.contains(&method.as_str()) {
                tracing::warn!("fake Modal: unimplemented RPC {path} (answered UNIMPLEMENTED)");
                eprintln!("fake Modal: unimplemented RPC {path} (answered UNIMPLEMENTED)");
            }
            lock(&trace_state.paths).push(path.clone());
            tracing::debug_span!("fake_modal_rpc", path = %path)
        };
        let trace_router = trace.clone();
        let cp = ModalClientServer::new(control::Control(state.clone()))
            .max_decoding_message_size(atp_modal::client::MAX_MESSAGE)
            .max_encoding_message_size(atp_modal::client::MAX_MESSAGE);
        tasks.push(tokio::spawn(async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(cp_listener);
            let r = tonic::transport::Server::builder()
                .trace_fn(trace)
                .add_service(cp)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = r {
                tracing::error!("fake control plane: {e}");
            }
        }));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        shutdown.push(tx);
        let rt = TaskCommandRouterServer::new(router::Router(state.clone()))
            .max_decoding_message_size(atp_modal::client::MAX_MESSAGE)
            .max_encoding_message_size(atp_modal::client::MAX_MESSAGE);
        tasks.push(tokio::spawn(async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(router_listener);
            let r = tonic::transport::Server::builder()
                .trace_fn(trace_router)
                .add_service(rt)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = r {
                tracing::error!("fake router: {e}");
            }
        }));
        Ok(FakeModal {
            state,
            url: format!("http://{cp_addr}"),
            shutdown,
            tasks,
        })
    }

    /// The control-plane URL (`MODAL_SERVER_URL`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The run id on every container of this fake.
    pub fn run_id(&self) -> &str {
        &self.state.opts.run_id
    }

    /// Fail the next `times` calls of `method` (e.g. `"SandboxCreate"`) with `code`.
    pub fn inject_error(&self, method: &str, code: Code, times: u32) {
        lock(&self.state.t)
            .inject
            .insert(method.to_string(), (code, times));
    }

    /// Perform the next `times` calls of `method`, then answer them with `code` anyway (the
    /// response is "lost"): a client that retries must not do the work twice.
    pub fn lose_responses(&self, method: &str, code: Code, times: u32) {
        lock(&self.state.t)
            .lose
            .insert(method.to_string(), (code, times));
    }

    /// Forget every auth JWT issued so far (the server rotated its keys): clients presenting
    /// one get UNAUTHENTICATED.
    pub fn revoke_auth_tokens(&self) {
        lock(&self.state.t).auth_tokens.clear();
    }

    /// Every request received so far for `method` (all when `None`).
    pub fn recorded(&self, method: Option<&str>) -> Vec<Recorded> {
        lock(&self.state.t)
            .recorded
            .iter()
            .filter(|r| method.is_none_or(|m| r.method == m))
            .cloned()
            .collect()
    }

    /// gRPC methods received that the fake does not implement (answered UNIMPLEMENTED).
    pub fn unknown_rpcs(&self) -> Vec<String> {
        lock(&self.state.paths)
            .iter()
            .filter(|p| !KNOWN_RPCS.contains(&p.rsplit('/').next().unwrap_or("")))
            .cloned()
            .collect()
    }

    /// Number of requests received for `method`.
    pub fn calls(&self, method: &str) -> usize {
        self.recorded(Some(method)).len()
    }

    /// All sandboxes ever created.
    pub fn sandboxes(&self) -> Vec<SandboxView> {
        let t = lock(&self.state.t);
        let mut v: Vec<_> = t
            .sandboxes
            .values()
            .map(|s| {
                let mut view = s.view.clone();
                view.terminated = s.result.is_some();
                view
            })
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// The sandboxes still running and the containers left on the engine, now.
    pub async fn audit(&self) -> Audit {
        engine::audit(&self.state).await
    }

    /// How many times the image `image_id` was built.
    pub fn builds(&self, image_id: &str) -> u32 {
        lock(&self.state.t)
            .images
            .get(image_id)
            .map(|i| i.builds)
            .unwrap_or(0)
    }

    /// The commands and base of an image (for asserting layer chaining).
    pub fn image_layer(&self, image_id: &str) -> Option<(Vec<String>, Option<String>)> {
        lock(&self.state.t)
            .images
            .get(image_id)
            .map(|i| (i.commands.clone(), i.base.clone()))
    }

    /// Kill a sandbox's container under it, as a crashed worker would.
    pub async fn kill_sandbox(&self, sandbox_id: &str) {
        engine::kill_sandbox(
            &self.state,
            sandbox_id,
            "worker crashed (killed by the fake)",
        )
        .await;
    }

    /// Make every exec stream stop answering (neither data nor end), and `TaskExecWait` hang.
    pub fn stall_execs(&self, on: bool) {
        self.state.stall.store(on, Ordering::SeqCst);
    }

    /// Stop both servers and remove every container the fake created.
    pub async fn shutdown(mut self) {
        for tx in self.shutdown.drain(..) {
            let _ = tx.send(());
        }
        engine::remove_all(&self.state).await;
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

/// The RPCs the fake serves (control plane and router).
pub const KNOWN_RPCS: &[&str] = &[
    "AppGetOrCreate",
    "AuthTokenGet",
    "ImageGetByTag",
    "ImageGetOrCreate",
    "ImageJoinStreaming",
    "ImagePublish",
    "SandboxCreate",
    "SandboxGetTaskId",
    "SandboxList",
    "SandboxTagsSet",
    "SandboxTerminate",
    "SandboxWait",
    "SecretGetOrCreate",
    "TaskGetCommandRouterAccess",
    "TaskExecStart",
    "TaskExecStdinWrite",
    "TaskExecStdioRead",
    "TaskExecWait",
];

pub(crate) fn success() -> pb::GenericResult {
    pb::GenericResult {
        status: pb::generic_result::GenericStatus::Success as i32,
        ..Default::default()
    }
}
