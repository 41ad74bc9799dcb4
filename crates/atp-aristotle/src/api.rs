//! Aristotle's HTTP API v3, as Harmonic's Python client (aristotlelib 3.0.0) uses it: the
//! endpoints atp needs, tolerant decoding, and the client's transport policy.
//!
//! Transport policy (one place, [`Client::call`]):
//! - At least [`ClientOptions::min_interval`] between request starts (the server allows ten
//!   requests per second per user; the client stays at half that).
//! - Up to [`Backoff::max_attempts`] attempts, capped exponential backoff with jitter, a
//!   server's `Retry-After` honoured; no retry starts later than [`ClientOptions::retry_window`]
//!   after the first attempt, nor after the caller's deadline.
//! - Always retried (the request never reached a handler): connection failures, the
//!   per-second 429, a 409 of a request carrying an `Idempotency-Key`.
//! - Retried only for idempotent calls (GETs and cancel): 5xx, timeouts and connections dropped
//!   mid-answer, a 2xx body that is not JSON (a captive portal).
//! - Never retried: 401 (the key), the project-limit 429 ("Too many runs in progress"), any
//!   other 4xx (the server's message is kept), and a create whose outcome is unknown.
//! - Every request has a wall clock (`timeout`, at most the time left before the deadline); the
//!   event stream is never opened (it can hang on a half-open connection): atp polls.
//!
//! Invariant: the key travels only in the `X-API-Key` header; no error, log line or `Debug`
//! output holds it.

use atp_prover::retry::error_chain;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use atp_prover::retry::{parse_retry_after, Backoff};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use crate::endpoint::{is_loopback, Secret, API_PATH};

/// Largest JSON body read from the API.
const MAX_JSON_BYTES: usize = 32 * 1024 * 1024;

/// `detail` prefixes of the 429 that means "too many runs in progress" (not rate limiting).
const PROJECT_LIMIT_PREFIXES: &[&str] =
    &["Too many runs in progress", "Too many inflight requests"];

/// An error of one API call. Messages are one line and name what atp was doing.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Aristotle ({what}): cannot reach {origin}: {message}")]
    Transport {
        what: &'static str,
        origin: String,
        message: String,
    },
    #[error("Aristotle ({what}): the API key was rejected (HTTP 401) — check ARISTOTLE_API_KEY or run `aristotle login` again")]
    Unauthorized { what: &'static str },
    #[error("Aristotle ({what}): {detail} (HTTP 429) — too many runs in progress on this account: wait for one to finish or cancel it")]
    ProjectLimit { what: &'static str, detail: String },
    #[error("Aristotle ({what}): HTTP {status}: {detail}")]
    Status {
        what: &'static str,
        status: u16,
        detail: String,
    },
    #[error("Aristotle ({what}): the request failed after the server may have acted on it ({message}); not resent — look at your Aristotle projects before running again")]
    OutcomeUnknown { what: &'static str, message: String },
    #[error("Aristotle ({what}): unexpected answer: {message}")]
    Decode { what: &'static str, message: String },
    #[error("Aristotle ({what}): the answer is larger than {limit} bytes — refused")]
    TooLarge { what: &'static str, limit: u64 },
    #[error("Aristotle ({what}): the time budget ran out")]
    Deadline { what: &'static str },
    #[error("Aristotle ({what}): {path}: {message}")]
    Io {
        what: &'static str,
        path: String,
        message: String,
    },
}

impl ApiError {
    /// Short machine-readable name (for result.json).
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::Transport { .. } => "aristotle_unreachable",
            ApiError::Unauthorized { .. } => "credentials_rejected",
            ApiError::ProjectLimit { .. } => "aristotle_project_limit",
            ApiError::Status { .. } => "aristotle_http",
            ApiError::OutcomeUnknown { .. } => "aristotle_outcome_unknown",
            ApiError::Decode { .. } => "aristotle_bad_answer",
            ApiError::TooLarge { .. } => "aristotle_result_too_large",
            ApiError::Deadline { .. } => "deadline",
            ApiError::Io { .. } => "io",
        }
    }

    /// Whether retrying later could help (the server was unreachable or overloaded).
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Transport { .. } => true,
            ApiError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// Status of an agent task (a JSON string). Unknown strings are kept, never fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskStatus {
    Queued,
    InProgress,
    Complete,
    CompleteWithErrors,
    OutOfBudget,
    Failed,
    Canceled,
    Unknown(String),
}

impl TaskStatus {
    pub fn parse(s: &str) -> TaskStatus {
        match s {
            "QUEUED" => TaskStatus::Queued,
            "IN_PROGRESS" => TaskStatus::InProgress,
            "COMPLETE" => TaskStatus::Complete,
            "COMPLETE_WITH_ERRORS" => TaskStatus::CompleteWithErrors,
            "OUT_OF_BUDGET" => TaskStatus::OutOfBudget,
            "FAILED" => TaskStatus::Failed,
            "CANCELED" => TaskStatus::Canceled,
            other => TaskStatus::Unknown(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            TaskStatus::Queued => "QUEUED",
            TaskStatus::InProgress => "IN_PROGRESS",
            TaskStatus::Complete => "COMPLETE",
            TaskStatus::CompleteWithErrors => "COMPLETE_WITH_ERRORS",
            TaskStatus::OutOfBudget => "OUT_OF_BUDGET",
            TaskStatus::Failed => "FAILED",
            TaskStatus::Canceled => "CANCELED",
            TaskStatus::Unknown(s) => s,
        }
    }

    /// The run ended (Harmonic's terminal set; an unknown status is not terminal).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            TaskStatus::Complete
                | TaskStatus::CompleteWithErrors
                | TaskStatus::OutOfBudget
                | TaskStatus::Failed
                | TaskStatus::Canceled
        )
    }
}

/// An agent task (one run of a project), decoded leniently.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentTask {
    pub id: String,
    pub status: TaskStatus,
    /// Deprecated by the server (null from current servers) but kept when sent.
    pub percent_complete: Option<i64>,
    pub output_summary: Option<String>,
    /// The raw JSON, for `logs/task.json`.
    pub raw: Value,
}

/// A project, decoded leniently.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub id: String,
    pub has_files: bool,
    pub raw: Value,
}

/// What a cancel request achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The task is cancelled (the server accepted, or answered 404 and the task shows CANCELED).
    Landed(TaskStatus),
    /// The task had already ended some other way.
    AlreadyFinished(TaskStatus),
}

fn str_field(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

/// Ids go into URL paths: only what a UUID-like id holds.
fn check_id(what: &'static str, id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::Decode {
            what,
            message: format!("the server sent an id atp does not accept: {id:?}"),
        })
    }
}

impl AgentTask {
    pub fn from_value(what: &'static str, v: Value) -> Result<Self, ApiError> {
        let id = str_field(&v, "agent_task_id").ok_or_else(|| ApiError::Decode {
            what,
            message: "an agent task without `agent_task_id`".into(),
        })?;
        check_id(what, &id)?;
        let status = TaskStatus::parse(v.get("status").and_then(Value::as_str).unwrap_or(""));
        let percent_complete = v
            .get("percent_complete")
            .and_then(|p| p.as_i64().or_else(|| p.as_f64().map(|f| f.round() as i64)));
        Ok(AgentTask {
            id,
            status,
            percent_complete,
            output_summary: str_field(&v, "output_summary"),
            raw: v,
        })
    }
}

impl Project {
    pub fn from_value(what: &'static str, v: Value) -> Result<Self, ApiError> {
        let id = str_field(&v, "project_id").ok_or_else(|| ApiError::Decode {
            what,
            message: "a project without `project_id`".into(),
        })?;
        check_id(what, &id)?;
        Ok(Project {
            id,
            has_files: v.get("has_files").and_then(Value::as_bool).unwrap_or(false),
            raw: v,
        })
    }
}

/// Transport knobs (defaults: Harmonic's client's).
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub backoff: Backoff,
    /// No retry starts later than this after a call's first attempt.
    pub retry_window: Duration,
    /// Least time between two request starts.
    pub min_interval: Duration,
    /// Wall clock of one request (uploads get more: 30 s + 1 s per 16 KiB, at most 600 s).
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            backoff: Backoff::default(),
            retry_window: Duration::from_secs(90),
            min_interval: Duration::from_millis(200),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// The body of a request.
#[derive(Clone)]
enum Payload {
    Empty,
    /// `POST /project`: the JSON `body` field and the gzip tar in `input`.
    Upload {
        body: String,
        /// Shared, so a retry does not keep a second copy around.
        archive: std::sync::Arc<Vec<u8>>,
        file_name: String,
    },
}

/// One API call.
struct Call {
    what: &'static str,
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    payload: Payload,
    idempotent: bool,
    idempotency_key: Option<String>,
    timeout: Duration,
}

/// Where an answer's body goes.
enum Sink<'a> {
    Json,
    File { path: &'a Path, max: u64 },
}

enum Output {
    Json(Value),
    File(u64),
}

/// An attempt that failed.
enum Failure {
    /// Worth another attempt (after `retry_after` if the server asked).
    Transient {
        error: ApiError,
        retry_after: Option<Duration>,
    },
    Fatal(ApiError),
}

/// A client of one Aristotle origin with one key.
pub struct Client {
    http: reqwest::Client,
    origin: String,
    base: String,
    key: Secret,
    opts: ClientOptions,
    last_start: tokio::sync::Mutex<Option<Instant>>,
    transient: AtomicU64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("origin", &self.origin)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Install rustls' ring provider once (reqwest is built without one).
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The server's message in an error body: `detail` (a string, or an object's `message`),
/// else `message`, else a short excerpt of the text.
fn detail_of(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let d = v.get("detail");
        if let Some(s) = d.and_then(Value::as_str).filter(|s| !s.trim().is_empty()) {
            return atp_prover::one_line(s);
        }
        if let Some(s) = d
            .and_then(|d| d.get("message"))
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
        {
            return atp_prover::one_line(s);
        }
        if let Some(s) = v.get("message").and_then(Value::as_str) {
            return atp_prover::one_line(s);
        }
    }
    let text = String::from_utf8_lossy(body);
    let t = text.trim();
    if t.is_empty() {
        "no message".into()
    } else if t.starts_with('<') {
        "an HTML page instead of Aristotle's JSON (a proxy or firewall in the way?)".into()
    } else {
        atp_prover::one_line(&t.chars().take(300).collect::<String>())
    }
}

impl Client {
    /// A client of `origin` (normalised, see [`crate::endpoint::parse_origin`]) sending `key`.
    pub fn new(origin: &str, key: Secret, opts: ClientOptions) -> Result<Client, ApiError> {
        install_tls_provider();
        let mut b = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .user_agent(concat!(
                "atp/",
                env!("CARGO_PKG_VERSION"),
                " (aristotle; rust)"
            ));
        if is_loopback(origin) {
            b = b.no_proxy();
        }
        let http = b.build().map_err(|e| ApiError::Transport {
            what: "building the HTTP client",
            origin: origin.to_string(),
            message: error_chain(&e),
        })?;
        Ok(Client {
            http,
            origin: origin.to_string(),
            base: format!("{origin}{API_PATH}"),
            key,
            opts,
            last_start: tokio::sync::Mutex::new(None),
            transient: AtomicU64::new(0),
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Transient failures retried so far (for the record).
    pub fn transient_failures(&self) -> u64 {
        self.transient.load(Ordering::Relaxed)
    }

    fn get(&self, what: &'static str, path: String) -> Call {
        Call {
            what,
            method: Method::GET,
            path,
            query: Vec::new(),
            payload: Payload::Empty,
            idempotent: true,
            idempotency_key: None,
            timeout: self.opts.request_timeout,
        }
    }

    async fn throttle(&self) {
        let mut last = self.last_start.lock().await;
        if let Some(t) = *last {
            let next = t + self.opts.min_interval;
            if next > Instant::now() {
                tokio::time::sleep_until(next).await;
            }
        }
        *last = Some(Instant::now());
    }

    /// Run `call` under the transport policy until it succeeds, fails for good, or `deadline`.
    async fn call(
        &self,
        call: &Call,
        sink: Sink<'_>,
        deadline: Instant,
    ) -> Result<Output, ApiError> {
        let window_end = deadline.min(Instant::now() + self.opts.retry_window);
        let mut failed = 0u32;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ApiError::Deadline { what: call.what });
            }
            self.throttle().await;
            let (error, retry_after) = match self.attempt(call, &sink, call.timeout.min(left)).await
            {
                Ok(o) => return Ok(o),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient { error, retry_after }) => (error, retry_after),
            };
            failed += 1;
            self.transient.fetch_add(1, Ordering::Relaxed);
            match self.opts.backoff.next(failed, retry_after, window_end) {
                Some(wait) => {
                    tracing::warn!(
                        what = call.what,
                        attempt = failed,
                        wait_ms = wait.as_millis() as u64,
                        "Aristotle: {error}; retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
                None => return Err(error),
            }
        }
    }

    async fn attempt(
        &self,
        call: &Call,
        sink: &Sink<'_>,
        timeout: Duration,
    ) -> Result<Output, Failure> {
        let mut url = reqwest::Url::parse(&format!("{}{}", self.base, call.path)).map_err(|e| {
            Failure::Fatal(ApiError::Decode {
                what: call.what,
                message: format!("internal: a bad URL: {e}"),
            })
        })?;
        if !call.query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(call.query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let mut rb = self
            .http
            .request(call.method.clone(), url)
            .timeout(timeout)
            .header("X-API-Key", self.key.expose())
            .header("Accept", "application/json");
        if let Some(k) = &call.idempotency_key {
            rb = rb.header("Idempotency-Key", k);
        }
        if let Payload::Upload {
            body,
            archive,
            file_name,
        } = &call.payload
        {
            let bytes: Vec<u8> = archive.as_ref().clone();
            let len = bytes.len() as u64;
            let part =
                reqwest::multipart::Part::stream_with_length(reqwest::Body::from(bytes), len)
                    .file_name(file_name.clone())
                    .mime_str("application/x-tar")
                    .map_err(|e| {
                        Failure::Fatal(ApiError::Decode {
                            what: call.what,
                            message: error_chain(&e),
                        })
                    })?;
            let form = reqwest::multipart::Form::new()
                .text("body", body.clone())
                .part("input", part);
            rb = rb.multipart(form);
        }
        let what = call.what;
        let transport = |e: reqwest::Error| -> Failure {
            let error = ApiError::Transport {
                what,
                origin: self.origin.clone(),
                message: error_chain(&e),
            };
            if call.idempotent || e.is_connect() {
                Failure::Transient {
                    error,
                    retry_after: None,
                }
            } else {
                Failure::Fatal(ApiError::OutcomeUnknown {
                    what,
                    message: error_chain(&e),
                })
            }
        };
        let resp = rb.send().await.map_err(transport)?;
        let status = resp.status();
        if status.is_success() {
            return match sink {
                Sink::Json => {
                    let ct = resp
                        .headers()
                        .get(reqwest::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    let body = read_capped(resp, MAX_JSON_BYTES as u64, what)
                        .await
                        .map_err(|e| match e {
                            ReadError::Http(e) => transport(e),
                            ReadError::TooLarge(l) => {
                                Failure::Fatal(ApiError::TooLarge { what, limit: l })
                            }
                        })?;
                    match serde_json::from_slice::<Value>(&body) {
                        Ok(v) => Ok(Output::Json(v)),
                        Err(e) => {
                            let error = ApiError::Decode {
                                what,
                                message: format!(
                                    "the body is not JSON ({e}): {}",
                                    detail_of(&body)
                                ),
                            };
                            if call.idempotent && !ct.contains("json") {
                                Err(Failure::Transient {
                                    error,
                                    retry_after: None,
                                })
                            } else {
                                Err(Failure::Fatal(error))
                            }
                        }
                    }
                }
                Sink::File { path, max } => download(resp, path, *max, what)
                    .await
                    .map(Output::File)
                    .map_err(|e| match e {
                        DownloadError::Http(e) => transport(e),
                        DownloadError::TooLarge(l) => {
                            Failure::Fatal(ApiError::TooLarge { what, limit: l })
                        }
                        DownloadError::Io(m) => Failure::Fatal(ApiError::Io {
                            what,
                            path: path.display().to_string(),
                            message: m,
                        }),
                    }),
            };
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = read_capped(resp, 64 * 1024, what).await.unwrap_or_default();
        let detail = detail_of(&body);
        let code = status.as_u16();
        let status_error = ApiError::Status {
            what,
            status: code,
            detail: detail.clone(),
        };
        Err(match status {
            StatusCode::UNAUTHORIZED => Failure::Fatal(ApiError::Unauthorized { what }),
            StatusCode::TOO_MANY_REQUESTS => {
                if call.method == Method::POST
                    && PROJECT_LIMIT_PREFIXES.iter().any(|p| detail.starts_with(p))
                {
                    Failure::Fatal(ApiError::ProjectLimit { what, detail })
                } else {
                    // The per-second limit: the request never reached a handler.
                    Failure::Transient {
                        error: status_error,
                        retry_after,
                    }
                }
            }
            StatusCode::CONFLICT if call.idempotency_key.is_some() => Failure::Transient {
                error: status_error,
                retry_after,
            },
            s if s.is_server_error() && call.idempotent => Failure::Transient {
                error: status_error,
                retry_after,
            },
            _ => Failure::Fatal(status_error),
        })
    }

    async fn json(&self, call: Call, deadline: Instant) -> Result<Value, ApiError> {
        match self.call(&call, Sink::Json, deadline).await? {
            Output::Json(v) => Ok(v),
            Output::File(_) => Err(ApiError::Decode {
                what: call.what,
                message: "internal: a file where JSON was expected".into(),
            }),
        }
    }

    /// `GET /version`: the Lean toolchain the service expects (only for a warning).
    pub async fn lean_toolchain(&self, deadline: Instant) -> Result<Option<String>, ApiError> {
        let v = self
            .json(
                self.get("reading the service version", "/version".into()),
                deadline,
            )
            .await?;
        Ok(str_field(&v, "lean_toolchain_version"))
    }

    /// `POST /project`: upload the project and start its run. Carries an `Idempotency-Key`
    /// (the same for every attempt); resent only when the request surely did not reach the
    /// server.
    pub async fn create_project(
        &self,
        prompt: &str,
        archive: Vec<u8>,
        file_name: &str,
        agent_questions_setting: u8,
        deadline: Instant,
    ) -> Result<Project, ApiError> {
        let what = "creating the project";
        let body = serde_json::json!({"prompt": prompt, "agent_questions_setting": agent_questions_setting}).to_string();
        let upload_secs = 30 + archive.len() as u64 / 16_384;
        let call = Call {
            what,
            method: Method::POST,
            path: "/project".into(),
            query: Vec::new(),
            payload: Payload::Upload {
                body,
                archive: std::sync::Arc::new(archive),
                file_name: file_name.to_string(),
            },
            idempotent: false,
            idempotency_key: Some(uuid::Uuid::new_v4().to_string()),
            timeout: Duration::from_secs(upload_secs.min(600)).max(self.opts.request_timeout),
        };
        Project::from_value(what, self.json(call, deadline).await?)
    }

    /// `GET /project/{id}/tasks?limit=1&ascending=false`: the project's newest task.
    pub async fn latest_task(
        &self,
        project_id: &str,
        deadline: Instant,
    ) -> Result<Option<AgentTask>, ApiError> {
        let what = "finding the project's task";
        check_id(what, project_id)?;
        let mut call = self.get(what, format!("/project/{project_id}/tasks"));
        call.query = vec![("limit", "1".into()), ("ascending", "false".into())];
        let v = self.json(call, deadline).await?;
        match v
            .get("agent_tasks")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            Some(t) => Ok(Some(AgentTask::from_value(what, t.clone())?)),
            None => Ok(None),
        }
    }

    /// `GET /task/{id}`.
    pub async fn task(&self, task_id: &str, deadline: Instant) -> Result<AgentTask, ApiError> {
        let what = "polling the task";
        check_id(what, task_id)?;
        AgentTask::from_value(
            what,
            self.json(self.get(what, format!("/task/{task_id}")), deadline)
                .await?,
        )
    }

    /// `GET /project/{id}`.
    pub async fn project(&self, project_id: &str, deadline: Instant) -> Result<Project, ApiError> {
        let what = "reading the project";
        check_id(what, project_id)?;
        Project::from_value(
            what,
            self.json(self.get(what, format!("/project/{project_id}")), deadline)
                .await?,
        )
    }

    /// `GET /task/{id}/events?limit=100&ascending=true[&pagination_key=…]`: one page, oldest
    /// first, and the key of the next (`None` at the end; an empty key is never sent).
    pub async fn events_page(
        &self,
        task_id: &str,
        key: Option<&str>,
        deadline: Instant,
    ) -> Result<(Vec<Value>, Option<String>), ApiError> {
        let what = "reading the task's events";
        check_id(what, task_id)?;
        let mut call = self.get(what, format!("/task/{task_id}/events"));
        call.query = vec![("limit", "100".into()), ("ascending", "true".into())];
        if let Some(k) = key.filter(|k| !k.is_empty()) {
            call.query.push(("pagination_key", k.to_string()));
        }
        let v = self.json(call, deadline).await?;
        let events = v
            .get("events")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let next = str_field(&v, "pagination_key").filter(|k| !k.is_empty());
        Ok((events, next))
    }

    /// `POST /task/{id}/cancel` (idempotent, so retried). A 404 means the task is no longer
    /// live: the task is then read, and `CANCELED` counts as landed.
    pub async fn cancel(
        &self,
        task_id: &str,
        deadline: Instant,
    ) -> Result<CancelOutcome, ApiError> {
        let what = "cancelling the task";
        check_id(what, task_id)?;
        let call = Call {
            what,
            method: Method::POST,
            path: format!("/task/{task_id}/cancel"),
            query: Vec::new(),
            payload: Payload::Empty,
            idempotent: true,
            idempotency_key: None,
            timeout: self.opts.request_timeout,
        };
        match self.json(call, deadline).await {
            Ok(v) => {
                let status = v
                    .get("status")
                    .and_then(Value::as_str)
                    .map(TaskStatus::parse)
                    .unwrap_or(TaskStatus::Canceled);
                Ok(match status {
                    s @ (TaskStatus::Complete
                    | TaskStatus::CompleteWithErrors
                    | TaskStatus::OutOfBudget
                    | TaskStatus::Failed) => CancelOutcome::AlreadyFinished(s),
                    s => CancelOutcome::Landed(s),
                })
            }
            Err(ApiError::Status { status: 404, .. }) => {
                let t = self.task(task_id, deadline).await?;
                Ok(if t.status == TaskStatus::Canceled {
                    CancelOutcome::Landed(t.status)
                } else {
                    CancelOutcome::AlreadyFinished(t.status)
                })
            }
            Err(e) => Err(e),
        }
    }

    /// `GET /project/{id}/result`: the result archive streamed to `dest` (atomically: a
    /// partial download never stays under `dest`), at most `max` bytes. Returns its size.
    pub async fn download_result(
        &self,
        project_id: &str,
        dest: &Path,
        max: u64,
        deadline: Instant,
    ) -> Result<u64, ApiError> {
        let what = "downloading the result";
        check_id(what, project_id)?;
        let mut call = self.get(what, format!("/project/{project_id}/result"));
        call.timeout = Duration::from_secs(600);
        match self
            .call(&call, Sink::File { path: dest, max }, deadline)
            .await?
        {
            Output::File(n) => Ok(n),
            Output::Json(_) => Err(ApiError::Decode {
                what,
                message: "internal: JSON where a file was expected".into(),
            }),
        }
    }
}

enum ReadError {
    Http(reqwest::Error),
    TooLarge(u64),
}

async fn read_capped(
    mut resp: reqwest::Response,
    max: u64,
    _what: &'static str,
) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Http)? {
        if (out.len() + chunk.len()) as u64 > max {
            return Err(ReadError::TooLarge(max));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

enum DownloadError {
    Http(reqwest::Error),
    TooLarge(u64),
    Io(String),
}

async fn download(
    mut resp: reqwest::Response,
    dest: &Path,
    max: u64,
    _what: &'static str,
) -> Result<u64, DownloadError> {
    let part = dest.with_extension("part");
    let io = |e: std::io::Error| DownloadError::Io(e.to_string());
    let result = async {
        let mut f = tokio::fs::File::create(&part).await.map_err(io)?;
        let mut n = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(DownloadError::Http)? {
            n += chunk.len() as u64;
            if n > max {
                return Err(DownloadError::TooLarge(max));
            }
            f.write_all(&chunk).await.map_err(io)?;
        }
        f.flush().await.map_err(io)?;
        drop(f);
        tokio::fs::rename(&part, dest).await.map_err(io)?;
        Ok(n)
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&part).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_unknown_ones_are_not_terminal() {
        for s in [
            "QUEUED",
            "IN_PROGRESS",
            "COMPLETE",
            "COMPLETE_WITH_ERRORS",
            "OUT_OF_BUDGET",
            "FAILED",
            "CANCELED",
        ] {
            assert_eq!(TaskStatus::parse(s).as_str(), s);
        }
        assert!(!TaskStatus::parse("NOT_STARTED").is_terminal());
        assert!(!TaskStatus::Queued.is_terminal());
        assert!(TaskStatus::OutOfBudget.is_terminal());
    }

    #[test]
    fn decoding_is_lenient_but_ids_are_checked() {
        let t = AgentTask::from_value(
            "t",
            serde_json::json!({"agent_task_id": "c0ff-ee", "status": "WHATEVER"}),
        )
        .expect("task");
        assert_eq!(t.status, TaskStatus::Unknown("WHATEVER".into()));
        assert_eq!(t.percent_complete, None);
        let t = AgentTask::from_value(
            "t",
            serde_json::json!({"agent_task_id": "a", "percent_complete": 42.4}),
        )
        .expect("task");
        assert_eq!(t.percent_complete, Some(42));
        assert!(
            AgentTask::from_value("t", serde_json::json!({"agent_task_id": "../etc"})).is_err()
        );
        assert!(Project::from_value("p", serde_json::json!({"has_files": true})).is_err());
        let p = Project::from_value("p", serde_json::json!({"project_id": "p1"})).expect("project");
        assert!(!p.has_files);
    }

    #[test]
    fn error_details_are_the_servers_words_in_one_line() {
        assert_eq!(
            detail_of(br#"{"detail": "Too many runs in progress"}"#),
            "Too many runs in progress"
        );
        assert_eq!(
            detail_of(br#"{"detail": {"code": "x", "message": "no access"}}"#),
            "no access"
        );
        assert_eq!(detail_of(br#"{"message": "bad\nthing"}"#), "bad thing");
        assert!(detail_of(b"<html>blocked</html>").contains("HTML page"));
        assert_eq!(detail_of(b""), "no message");
    }
}
