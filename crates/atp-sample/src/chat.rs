//! A client of the OpenAI Chat Completions API as vLLM, SGLang, DeepSeek, Mistral, xAI and
//! OpenAI serve it: `POST {api_base}/chat/completions`, JSON or streamed (`data:` chunks ending
//! in `data: [DONE]`, usage asked for with `stream_options.include_usage`), `n` choices.
//!
//! Transport policy: 429 (its `retry-after` honoured), 408, 5xx, connection failures, timeouts
//! and streams cut before `[DONE]` are retried with capped exponential backoff, never past the
//! deadline; 401/403 stop the run (the key); any other 4xx fails at once with the server's
//! message. Every request has a wall clock.
//!
//! Invariant: the key is sent only as `Authorization: Bearer …`; it is in no error or log.

use atp_prover::retry::error_chain;
use std::time::Duration;

use atp_prover::retry::{parse_retry_after, Backoff};
use atp_prover::Usage;
use serde_json::{json, Value};
use tokio::time::Instant;

/// A credential value (never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(v: impl Into<String>) -> Self {
        ApiKey(v.into())
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Largest answer body read.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: &'static str,
    pub content: String,
}

impl Message {
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: "user",
            content: content.into(),
        }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Message {
            role: "assistant",
            content: content.into(),
        }
    }
}

/// Sampling parameters sent with every request.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    pub model: String,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u64>,
}

/// One choice of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub text: String,
    /// `stop`, `length`, … as the server said (`None` when it did not).
    pub finish_reason: Option<String>,
}

/// A completed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub choices: Vec<Choice>,
    /// The request's usage (all choices together); zero when the server sent none.
    pub usage: Usage,
    pub usage_reported: bool,
    /// The model the server says answered.
    pub model: Option<String>,
    /// Attempts it took (1 = no retry).
    pub attempts: u32,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    #[error("the model API rejected the credentials (HTTP {status}: {detail}) — check the key (OPENAI_API_KEY or --api-key-env)")]
    Unauthorized { status: u16, detail: String },
    #[error("the model API refused the request (HTTP {status}: {detail})")]
    Refused { status: u16, detail: String },
    #[error("the model API failed {attempts} times, last: {last}")]
    Exhausted { attempts: u32, last: String },
    #[error("the time budget ran out while waiting for the model (last: {last})")]
    Deadline { last: String },
}

impl ChatError {
    /// Whether the whole run must stop (a credential or request problem every request shares).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ChatError::Unauthorized { .. } | ChatError::Refused { .. }
        )
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ChatError::Unauthorized { .. } => "credentials_rejected",
            ChatError::Refused { .. } => "model_api_refused",
            ChatError::Exhausted { .. } => "model_api_unavailable",
            ChatError::Deadline { .. } => "deadline",
        }
    }
}

/// Transport knobs.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub backoff: Backoff,
    /// Wall clock of one request (a long reasoning answer takes minutes).
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Ask for a streamed answer.
    pub stream: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            backoff: Backoff {
                first: Duration::from_secs(1),
                cap: Duration::from_secs(30),
                max_attempts: 6,
            },
            request_timeout: Duration::from_secs(20 * 60),
            connect_timeout: Duration::from_secs(10),
            stream: false,
        }
    }
}

/// A Chat Completions client of one endpoint.
pub struct ChatClient {
    http: reqwest::Client,
    url: String,
    key: Option<ApiKey>,
    opts: ClientOptions,
}

impl std::fmt::Debug for ChatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatClient")
            .field("url", &self.url)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

fn one_line(s: &str) -> String {
    atp_prover::one_line(s)
}

/// The server's message in an error body (`error.message`, `message`, `detail`), else an
/// excerpt.
fn detail_of(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        for p in ["/error/message", "/message", "/detail", "/error"] {
            if let Some(s) = v.pointer(p).and_then(Value::as_str) {
                return one_line(s);
            }
        }
    }
    let t = String::from_utf8_lossy(body);
    let t = t.trim();
    if t.is_empty() {
        "no message".into()
    } else {
        one_line(&t.chars().take(300).collect::<String>())
    }
}

fn usage_of(v: &Value) -> Option<Usage> {
    let u = v.get("usage").filter(|u| u.is_object())?;
    let n = |p: &str| u.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    Some(Usage {
        input_tokens: n("/prompt_tokens"),
        cached_input_tokens: n("/prompt_tokens_details/cached_tokens"),
        output_tokens: n("/completion_tokens"),
        ..Usage::default()
    })
}

/// A failed attempt.
enum Failure {
    Retry {
        message: String,
        retry_after: Option<Duration>,
    },
    Fatal(ChatError),
}

impl ChatClient {
    /// A client of `api_base` (e.g. `http://127.0.0.1:8000/v1`; `/chat/completions` is
    /// appended) sending `key` when given.
    pub fn new(
        api_base: &str,
        key: Option<ApiKey>,
        opts: ClientOptions,
    ) -> Result<ChatClient, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = api_base.trim_end_matches('/');
        let url = format!("{base}/chat/completions");
        let parsed = reqwest::Url::parse(&url)
            .map_err(|e| format!("--api-base {api_base}: not a URL ({e})"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("--api-base {api_base}: must be an http(s) URL"));
        }
        let mut b = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .user_agent(concat!("atp/", env!("CARGO_PKG_VERSION"), " (sample)"));
        let host = parsed
            .host_str()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback())
        {
            b = b.no_proxy();
        }
        let http = b
            .build()
            .map_err(|e| format!("building the HTTP client: {}", error_chain(&e)))?;
        Ok(ChatClient {
            http,
            url,
            key,
            opts,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Ask for `n` choices of `messages`, retrying as the module doc says, until `deadline`.
    pub async fn complete(
        &self,
        sampling: &Sampling,
        messages: &[Message],
        n: u32,
        seed: Option<u64>,
        deadline: Instant,
    ) -> Result<Completion, ChatError> {
        let mut body = json!({
            "model": sampling.model,
            "messages": messages.iter().map(|m| json!({"role": m.role, "content": m.content})).collect::<Vec<_>>(),
            "n": n,
            "stream": self.opts.stream,
        });
        if let Some(t) = sampling.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(p) = sampling.top_p {
            body["top_p"] = json!(p);
        }
        if let Some(m) = sampling.max_tokens {
            body["max_tokens"] = json!(m);
        }
        if let Some(s) = seed {
            body["seed"] = json!(s);
        }
        if self.opts.stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        let mut failed = 0u32;
        let mut last = String::from("no answer yet");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ChatError::Deadline { last });
            }
            match self
                .attempt(&body, n, self.opts.request_timeout.min(left))
                .await
            {
                Ok(mut c) => {
                    c.attempts = failed + 1;
                    return Ok(c);
                }
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry {
                    message,
                    retry_after,
                }) => {
                    failed += 1;
                    last.clone_from(&message);
                    match self.opts.backoff.next(failed, retry_after, deadline) {
                        Some(wait) => {
                            tracing::warn!(
                                attempt = failed,
                                wait_ms = wait.as_millis() as u64,
                                "model API: {message}; retrying"
                            );
                            tokio::time::sleep(wait).await;
                        }
                        None if failed < self.opts.backoff.max_attempts => {
                            return Err(ChatError::Deadline { last: message })
                        }
                        None => {
                            return Err(ChatError::Exhausted {
                                attempts: failed,
                                last: message,
                            })
                        }
                    }
                }
            }
        }
    }

    async fn attempt(
        &self,
        body: &Value,
        n: u32,
        timeout: Duration,
    ) -> Result<Completion, Failure> {
        let mut rb = self.http.post(&self.url).timeout(timeout).json(body);
        if let Some(k) = &self.key {
            rb = rb.bearer_auth(&k.0);
        }
        let retry = |message: String| Failure::Retry {
            message,
            retry_after: None,
        };
        let mut resp = rb.send().await.map_err(|e| retry(error_chain(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let mut body = Vec::new();
            while let Ok(Some(c)) = resp.chunk().await {
                body.extend_from_slice(&c);
                if body.len() > 64 * 1024 {
                    break;
                }
            }
            let detail = detail_of(&body);
            let code = status.as_u16();
            return Err(match code {
                401 | 403 => Failure::Fatal(ChatError::Unauthorized {
                    status: code,
                    detail,
                }),
                408 | 409 | 429 | 500..=599 => Failure::Retry {
                    message: format!("HTTP {code}: {detail}"),
                    retry_after,
                },
                _ => Failure::Fatal(ChatError::Refused {
                    status: code,
                    detail,
                }),
            });
        }
        let is_sse = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.contains("text/event-stream"));
        if self.opts.stream && is_sse {
            return read_stream(resp, n).await.map_err(retry);
        }
        let mut bytes = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    bytes.extend_from_slice(&c);
                    if bytes.len() > MAX_BODY {
                        return Err(Failure::Fatal(ChatError::Refused {
                            status: 200,
                            detail: format!("the answer is larger than {MAX_BODY} bytes"),
                        }));
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(retry(format!("reading the answer: {}", error_chain(&e)))),
            }
        }
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            retry(format!(
                "the answer is not JSON ({e}): {}",
                detail_of(&bytes)
            ))
        })?;
        let mut choices: Vec<(u64, Choice)> = v
            .get("choices")
            .and_then(Value::as_array)
            .ok_or_else(|| retry(format!("the answer has no choices: {}", detail_of(&bytes))))?
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    c.get("index").and_then(Value::as_u64).unwrap_or(i as u64),
                    Choice {
                        text: c
                            .pointer("/message/content")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        finish_reason: c
                            .get("finish_reason")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                    },
                )
            })
            .collect();
        choices.sort_by_key(|(i, _)| *i);
        let usage = usage_of(&v);
        Ok(Completion {
            choices: choices.into_iter().map(|(_, c)| c).collect(),
            usage_reported: usage.is_some(),
            usage: usage.unwrap_or_default(),
            model: v.get("model").and_then(Value::as_str).map(str::to_string),
            attempts: 1,
        })
    }
}

/// Read a streamed answer: `data:` chunks until `[DONE]`; a stream that ends before it is an
/// error (retried), not a short answer.
async fn read_stream(mut resp: reqwest::Response, n: u32) -> Result<Completion, String> {
    let mut choices: Vec<Choice> = (0..n.max(1))
        .map(|_| Choice {
            text: String::new(),
            finish_reason: None,
        })
        .collect();
    let mut usage = None;
    let mut model = None;
    let mut buf: Vec<u8> = Vec::new();
    let mut total = 0usize;
    let mut done = false;
    while !done {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Err(format!("the stream broke: {}", error_chain(&e))),
        };
        total += chunk.len();
        if total > MAX_BODY {
            return Err(format!("the stream is larger than {MAX_BODY} bytes"));
        }
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim();
            let Some(data) = line.strip_prefix("data:") else {
                continue;
            };
            let data = data.trim();
            if data == "[DONE]" {
                done = true;
                break;
            }
            let Ok(v) = serde_json::from_str::<Value>(data) else {
                continue;
            };
            if let Some(e) = v.get("error") {
                return Err(format!(
                    "the stream carried an error: {}",
                    detail_of(e.to_string().as_bytes())
                ));
            }
            if model.is_none() {
                model = v.get("model").and_then(Value::as_str).map(str::to_string);
            }
            if let Some(u) = usage_of(&v) {
                usage = Some(u);
            }
            for c in v
                .get("choices")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let i = c.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
                if i >= choices.len() {
                    choices.resize_with(i + 1, || Choice {
                        text: String::new(),
                        finish_reason: None,
                    });
                }
                if let Some(t) = c.pointer("/delta/content").and_then(Value::as_str) {
                    choices[i].text.push_str(t);
                }
                if let Some(f) = c.get("finish_reason").and_then(Value::as_str) {
                    choices[i].finish_reason = Some(f.to_string());
                }
            }
        }
    }
    if !done {
        return Err("the stream ended before [DONE] (connection dropped?)".into());
    }
    Ok(Completion {
        choices,
        usage_reported: usage.is_some(),
        usage: usage.unwrap_or_default(),
        model,
        attempts: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_details_and_usage_are_read_from_openai_shapes() {
        assert_eq!(
            detail_of(br#"{"error": {"message": "Rate limit reached", "type": "requests"}}"#),
            "Rate limit reached"
        );
        assert_eq!(
            detail_of(br#"{"object": "error", "message": "Invalid model"}"#),
            "Invalid model"
        );
        assert_eq!(detail_of(b"Bad Gateway"), "Bad Gateway");
        let u = usage_of(&json!({"usage": {"prompt_tokens": 100, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 40}}})).expect("usage");
        assert_eq!(
            (u.input_tokens, u.cached_input_tokens, u.output_tokens),
            (100, 40, 7)
        );
        assert!(usage_of(&json!({"usage": null})).is_none());
        assert!(!format!("{:?}", ApiKey::new("sk-x")).contains("sk-x"));
    }
}
