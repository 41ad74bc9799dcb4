//! A scripted fake of LLM provider APIs on loopback, for testing agent harnesses against the
//! REAL agent CLIs (Claude Code, Codex, OpenCode, Mistral Vibe, ax-prover) and atp's own
//! samplers.
//!
//! One server speaks every dialect, routed by path (any prefix, so `/v1/…`, `/…` and
//! `/openai/v1/…` all work):
//!
//! | path | dialect |
//! |---|---|
//! | `POST …/messages` (also `?beta=true`) | Anthropic Messages, SSE or JSON |
//! | `POST …/messages/count_tokens` | Anthropic token counting (a fixed count) |
//! | `POST …/responses` | OpenAI Responses, SSE or JSON |
//! | `POST …/chat/completions` | OpenAI Chat Completions (Mistral, DeepSeek, xAI, vLLM), SSE or JSON, `n` choices |
//! | `GET …/models`, `GET …/models/{id}` | a model list / card (OpenAI, Anthropic and Mistral fields) |
//! | `GET …/connectors/bootstrap` | Mistral Vibe's connector list: empty |
//! | `HEAD` anything | 200, empty (connectivity checks) |
//!
//! Every request is answered from a [`Script`] (see [`script`]): its turn index is the number
//! of assistant turns already in its conversation, so retries and parallel sessions behave; a
//! request that offers no tools while its turn wants a tool call (title and summary requests)
//! gets the script's short side reply. Every request is [`Recorded`] in order, with the
//! presence of auth headers but never their values; the usage the fake reported is summed in
//! [`UsageTotals`].
//!
//! Invariant: the fake binds loopback addresses only.
//!
//! Not faithful: no authentication check (a [`policy::reject_auth`] script refuses instead);
//! usage numbers are scripted, not counted; one output item per answer (no parallel tool calls,
//! no thinking blocks); compressed request bodies are refused; only the request fields listed
//! in [`Recorded`] are interpreted.

mod anthropic;
mod chat;
mod plan;
mod request;
mod responses;
pub mod script;
mod wire;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::watch;

pub use request::Dialect;
pub use script::{policy, Reply, Script, ScriptError, Turn, Usage};

use plan::{Answer, Plan};
use request::ModelRequest;

/// Largest request body the fake reads (agent conversations grow large).
const MAX_BODY: usize = 256 * 1024 * 1024;

/// An auth header a request carried (its value is never stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthHeader {
    /// `x-api-key` (Anthropic).
    XApiKey,
    /// `authorization: Bearer …` (OpenAI, Mistral, OAuth tokens).
    AuthorizationBearer,
    /// `authorization` with another scheme.
    AuthorizationOther,
    /// `api-key` (Azure OpenAI).
    ApiKey,
    /// `x-goog-api-key` (Gemini).
    XGoogApiKey,
}

/// What the fake answered a request with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Answered {
    /// A tool call of `name`.
    ToolCall {
        name: String,
    },
    /// Final text, in `choices` choices.
    Text {
        choices: u32,
    },
    /// The script's side reply (no tools offered while the turn wants a call).
    SideReply,
    Error {
        status: u16,
    },
    Hang,
    Truncated {
        cut: bool,
    },
    /// The script could not answer (HTTP 500 or 400 with `message`).
    Failure {
        message: String,
    },
    /// A model list or card.
    Models,
    /// A canned answer to a side endpoint (token counting, connectors).
    Canned,
    /// No such route (HTTP 404).
    NotFound,
}

/// One request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// Order of arrival, from 0.
    pub seq: u64,
    pub dialect: Dialect,
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The query string, with the values of parameters named like credentials (`key`,
    /// `token`, `secret`) replaced by `<redacted>`.
    pub query: Option<String>,
    pub model: Option<String>,
    pub stream: bool,
    /// Choices asked for (chat completions `n`; 1 otherwise).
    pub n: u32,
    /// System text: Anthropic `system`, Responses `instructions` plus system/developer
    /// messages, chat system/developer messages (those before the first assistant turn).
    pub system: Option<String>,
    /// User text before the first assistant turn (all text parts, joined by newlines).
    pub user_prompt: Option<String>,
    /// Names of the offered tools (hosted tools by their type, e.g. `web_search`).
    pub tools: Vec<String>,
    /// Assistant turns already in the conversation (model requests only).
    pub turn_index: Option<usize>,
    /// Auth headers present (never their values).
    pub auth: Vec<AuthHeader>,
    /// Names of all request headers, lower-case, sorted.
    pub header_names: Vec<String>,
    pub user_agent: Option<String>,
    /// The JSON body (`null` if there was none or it was not JSON).
    pub body: Value,
    pub answered: Answered,
}

/// Sums of the usage the fake reported, in its own accounting (see [`Usage`]): only responses
/// that carried usage count (a chat stream reports usage only with
/// `stream_options.include_usage`, or always for Mistral's SDK; a cut response reports none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTotals {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_creation_tokens: u64,
    /// Responses that reported usage.
    pub responses: u64,
    /// The same sums per model (the request's `model`).
    pub by_model: BTreeMap<String, Usage>,
}

impl UsageTotals {
    fn add(&mut self, model: &str, u: &Usage) {
        self.input_tokens += u.input_tokens;
        self.output_tokens += u.output_tokens;
        self.cache_read_tokens += u.cache_read_tokens;
        self.cache_creation_tokens += u.cache_creation_tokens;
        self.responses += 1;
        let m = self.by_model.entry(model.to_string()).or_insert(Usage {
            input_tokens: 0,
            output_tokens: 0,
            cache_read_tokens: 0,
            cache_creation_tokens: 0,
        });
        m.input_tokens += u.input_tokens;
        m.output_tokens += u.output_tokens;
        m.cache_read_tokens += u.cache_read_tokens;
        m.cache_creation_tokens += u.cache_creation_tokens;
    }
}

struct ScriptState {
    script: Script,
    samples: u64,
}

struct Shared {
    script: Mutex<ScriptState>,
    records: Mutex<Vec<Recorded>>,
    usage: Mutex<UsageTotals>,
    ids: AtomicU64,
    stop: watch::Receiver<bool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running fake. Dropping it stops the server (hanging requests are released and every
/// connection closes).
#[derive(Debug)]
pub struct ModelFake {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl ModelFake {
    /// Start on `127.0.0.1` at a free port.
    pub async fn start(script: Script) -> std::io::Result<ModelFake> {
        ModelFake::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), script).await
    }

    /// Start on `addr`, which must be a loopback address (`127.0.0.1:0`, `[::1]:8080`, …).
    pub async fn start_on(addr: SocketAddr, script: Script) -> std::io::Result<ModelFake> {
        if !addr.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("atp-model-fake binds loopback only; {addr} is not a loopback address (use 127.0.0.1:PORT)"),
            ));
        }
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            script: Mutex::new(ScriptState { script, samples: 0 }),
            records: Mutex::new(Vec::new()),
            usage: Mutex::new(UsageTotals::default()),
            ids: AtomicU64::new(1),
            stop: stop_rx.clone(),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let mut stop = stop_rx;
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!(error = %e, "atp-model-fake server ended");
            }
        });
        tracing::debug!(%addr, "atp-model-fake listening");
        Ok(ModelFake {
            addr,
            shared,
            stop: stop_tx,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT` (no path; clients add `/v1` as their base URL needs).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request so far, in order of arrival.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.records).clone()
    }

    /// The requests from index `from` on (for followers of the record).
    pub fn requests_from(&self, from: usize) -> Vec<Recorded> {
        lock(&self.shared.records)
            .get(from..)
            .map(<[Recorded]>::to_vec)
            .unwrap_or_default()
    }

    /// Sums of the usage the fake reported so far.
    pub fn usage_reported(&self) -> UsageTotals {
        lock(&self.shared.usage).clone()
    }

    /// Answer the next requests from `script` (the sample counter restarts).
    pub fn set_script(&self, script: Script) {
        *lock(&self.shared.script) = ScriptState { script, samples: 0 };
    }

    /// Stop the server and wait until it has closed its connections.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ModelFake {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn auth_of(headers: &HeaderMap) -> Vec<AuthHeader> {
    let mut auth = Vec::new();
    if headers.contains_key("x-api-key") {
        auth.push(AuthHeader::XApiKey);
    }
    if let Some(v) = headers.get("authorization") {
        let bearer = v
            .to_str()
            .map(|s| s.len() >= 7 && s[..7].eq_ignore_ascii_case("bearer "))
            .unwrap_or(false);
        auth.push(if bearer {
            AuthHeader::AuthorizationBearer
        } else {
            AuthHeader::AuthorizationOther
        });
    }
    if headers.contains_key("api-key") {
        auth.push(AuthHeader::ApiKey);
    }
    if headers.contains_key("x-goog-api-key") {
        auth.push(AuthHeader::XGoogApiKey);
    }
    auth
}

fn redact_query(q: &str) -> String {
    q.split('&')
        .map(|pair| {
            let (k, _) = pair.split_once('=').unwrap_or((pair, ""));
            let lower = k.to_ascii_lowercase();
            if ["key", "token", "secret", "password"]
                .iter()
                .any(|s| lower.contains(s))
                && pair.contains('=')
            {
                format!("{k}=<redacted>")
            } else {
                pair.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn route(method: &Method, path: &str) -> (Dialect, Route) {
    let p = path.trim_end_matches('/');
    if method == Method::POST {
        if p.ends_with("/messages/count_tokens") {
            return (Dialect::AnthropicMessages, Route::CountTokens);
        }
        if p.ends_with("/messages") || p == "/messages" {
            return (Dialect::AnthropicMessages, Route::Model);
        }
        if p.ends_with("/responses") {
            return (Dialect::OpenAiResponses, Route::Model);
        }
        if p.ends_with("/chat/completions") {
            return (Dialect::OpenAiChat, Route::Model);
        }
    }
    if method == Method::HEAD {
        // Connectivity checks (Claude Code sends `HEAD /`).
        return (Dialect::Other, Route::Head);
    }
    if method == Method::GET {
        if p.ends_with("/models") {
            return (Dialect::Models, Route::ModelList);
        }
        if let Some((head, id)) = p.rsplit_once('/') {
            if head.ends_with("/models") && !id.is_empty() {
                return (Dialect::Models, Route::ModelCard(id.to_string()));
            }
        }
        if p.ends_with("/connectors/bootstrap") {
            return (Dialect::Other, Route::Connectors);
        }
    }
    (Dialect::Other, Route::NotFound)
}

enum Route {
    Model,
    CountTokens,
    ModelList,
    ModelCard(String),
    Connectors,
    Head,
    NotFound,
}

fn model_card(id: &str, mistral: bool) -> Value {
    json!({
        "id": id, "object": "model", "type": if mistral { "base" } else { "model" },
        "display_name": id, "name": id, "created": 1_767_225_600u64,
        "created_at": "2026-01-01T00:00:00Z", "owned_by": "atp-model-fake",
        "max_context_length": 200_000,
        "capabilities": {"completion_chat": true, "function_calling": true, "vision": false,
                         "completion_fim": false, "fine_tuning": false, "classification": false},
    })
}

/// Everything about a request except how it is answered.
struct Seen {
    dialect: Dialect,
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Value,
}

impl Shared {
    fn record(&self, seen: &Seen, req: Option<&ModelRequest>, answered: Answered) {
        let mut header_names: Vec<String> = seen
            .headers
            .keys()
            .map(|k| k.as_str().to_string())
            .collect();
        header_names.sort();
        header_names.dedup();
        let mut records = lock(&self.records);
        let rec = Recorded {
            seq: records.len() as u64,
            dialect: seen.dialect,
            method: seen.method.clone(),
            path: seen.path.clone(),
            query: seen.query.as_deref().map(redact_query),
            model: req.and_then(|r| r.model.clone()),
            stream: req.is_some_and(|r| r.stream),
            n: req.map_or(1, |r| r.n),
            system: req.and_then(|r| r.system.clone()),
            user_prompt: req.and_then(|r| r.user_prompt.clone()),
            tools: req
                .map(|r| r.tools.iter().map(|t| t.name.clone()).collect())
                .unwrap_or_default(),
            turn_index: req.map(|r| r.turn_index),
            auth: auth_of(&seen.headers),
            header_names,
            user_agent: seen
                .headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: seen.body.clone(),
            answered,
        };
        tracing::debug!(seq = rec.seq, path = %rec.path, answered = ?rec.answered, "atp-model-fake request");
        records.push(rec);
    }
}

fn answered_of(plan: &Plan) -> Answered {
    if plan.side {
        return Answered::SideReply;
    }
    match &plan.answer {
        Answer::Call(c) => Answered::ToolCall {
            name: c.name.clone(),
        },
        Answer::Texts(t) => Answered::Text {
            choices: t.len() as u32,
        },
        Answer::Error { status, .. } => Answered::Error { status: *status },
        Answer::Hang => Answered::Hang,
        Answer::Truncated { cut, .. } => Answered::Truncated { cut: *cut },
        Answer::Failure(m) => Answered::Failure { message: m.clone() },
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let (dialect, route) = route(&parts.method, parts.uri.path());
    let mut seen = Seen {
        dialect,
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body: Value::Null,
    };
    let mistral = seen
        .headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("mistral-client"));
    let fail = |shared: &Shared, seen: &Seen, status: u16, message: String| {
        shared.record(
            seen,
            None,
            Answered::Failure {
                message: message.clone(),
            },
        );
        wire::json_response(
            status,
            &json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}}),
        )
    };
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            let msg = format!("atp-model-fake: cannot read the request body: {e}");
            return fail(&shared, &seen, 400, msg);
        }
    };
    if let Some(enc) = seen.headers.get("content-encoding") {
        let msg = format!(
            "atp-model-fake: compressed request bodies ({}) are not supported; turn request compression off in the client",
            enc.to_str().unwrap_or("?")
        );
        return fail(&shared, &seen, 415, msg);
    }
    if !bytes.is_empty() {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => seen.body = v,
            Err(e) if matches!(route, Route::Model) => {
                let msg = format!("atp-model-fake: the request body is not JSON: {e}");
                return fail(&shared, &seen, 400, msg);
            }
            Err(_) => {}
        }
    }
    match route {
        Route::Model => {}
        Route::CountTokens => {
            shared.record(&seen, None, Answered::Canned);
            return anthropic::count_tokens();
        }
        Route::Head => {
            shared.record(&seen, None, Answered::Canned);
            return Response::new(Body::empty());
        }
        Route::Connectors => {
            shared.record(&seen, None, Answered::Canned);
            return wire::json_response(200, &json!({"connectors": []}));
        }
        Route::ModelList => {
            shared.record(&seen, None, Answered::Models);
            let ids = lock(&shared.script).script.model_ids();
            let data: Vec<Value> = ids.iter().map(|id| model_card(id, mistral)).collect();
            return wire::json_response(
                200,
                &json!({"object": "list", "data": data, "has_more": false,
                        "first_id": ids.first(), "last_id": ids.last()}),
            );
        }
        Route::ModelCard(id) => {
            shared.record(&seen, None, Answered::Models);
            return wire::json_response(200, &model_card(&id, mistral));
        }
        Route::NotFound => {
            shared.record(&seen, None, Answered::NotFound);
            let msg = format!("atp-model-fake: no route for {} {}", seen.method, seen.path);
            return wire::json_response(
                404,
                &json!({"type": "error", "error": {"type": "not_found_error", "message": msg}}),
            );
        }
    }
    let req = match dialect {
        Dialect::AnthropicMessages => ModelRequest::anthropic(&seen.body),
        Dialect::OpenAiResponses => ModelRequest::responses(&seen.body),
        _ => ModelRequest::chat(&seen.body),
    };
    let (plan, event_delay) = {
        let mut st = lock(&shared.script);
        let ScriptState { script, samples } = &mut *st;
        (
            plan::plan(&req, script, samples),
            std::time::Duration::from_millis(script.event_delay_ms),
        )
    };
    shared.record(&seen, Some(&req), answered_of(&plan));
    if matches!(plan.answer, Answer::Hang) {
        let mut stop = shared.stop.clone();
        let _ = stop.wait_for(|s| *s).await;
        return wire::json_response(503, &json!({"error": "atp-model-fake stopped"}));
    }
    let ctx = wire::Ctx {
        ids: &shared.ids,
        req: &req,
        mistral,
        event_delay,
    };
    let (response, reported) = match dialect {
        Dialect::AnthropicMessages => anthropic::render(&ctx, &plan),
        Dialect::OpenAiResponses => responses::render(&ctx, &plan),
        _ => chat::render(&ctx, &plan),
    };
    if let Some(u) = reported {
        lock(&shared.usage).add(&ctx.model(), &u);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_suffix() {
        let r = |m: Method, p: &str| route(&m, p).0;
        assert_eq!(r(Method::POST, "/v1/messages"), Dialect::AnthropicMessages);
        assert_eq!(r(Method::POST, "/messages"), Dialect::AnthropicMessages);
        assert_eq!(r(Method::POST, "/v1/responses"), Dialect::OpenAiResponses);
        assert_eq!(r(Method::POST, "/chat/completions"), Dialect::OpenAiChat);
        assert_eq!(
            r(Method::POST, "/openai/v1/chat/completions"),
            Dialect::OpenAiChat
        );
        assert_eq!(r(Method::GET, "/v1/models"), Dialect::Models);
        assert_eq!(
            r(Method::GET, "/v1/models/magistral-medium-latest"),
            Dialect::Models
        );
        assert_eq!(r(Method::GET, "/v1/messages"), Dialect::Other);
        assert!(matches!(
            route(&Method::GET, "/v1/connectors/bootstrap").1,
            Route::Connectors
        ));
    }

    #[test]
    fn query_credentials_are_redacted() {
        assert_eq!(
            redact_query("beta=true&key=abc&access_token=t&x"),
            "beta=true&key=<redacted>&access_token=<redacted>&x"
        );
    }
}
