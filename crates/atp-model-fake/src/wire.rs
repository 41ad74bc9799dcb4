//! Shared pieces of the HTTP answers: SSE framing, bodies that end early, ids, chunking.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use bytes::Bytes;
use serde_json::Value;

use crate::request::ModelRequest;
use crate::script::Usage;

/// What one answer reported as usage (already in the dialect's accounting: the OpenAI dialects
/// fold cache writes into uncached input).
pub(crate) type Reported = Option<Usage>;

/// Per-request context of a renderer.
pub(crate) struct Ctx<'a> {
    pub ids: &'a AtomicU64,
    pub req: &'a ModelRequest,
    /// The request came from Mistral's SDK (usage rides on the last chunk, Mistral error shape).
    pub mistral: bool,
    /// Pause before each streamed event after the first.
    pub event_delay: Duration,
}

impl Ctx<'_> {
    /// A fresh id with `prefix`, unique within the fake (e.g. `toolu_…`, `call_…`).
    pub fn id(&self, prefix: &str) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}fake{n:020}")
    }

    /// A streamed SSE answer of `pieces` (see [`stream_body`]).
    pub fn sse(&self, pieces: Vec<Bytes>, cut: bool) -> Response<Body> {
        sse_response(pieces, cut, self.event_delay)
    }

    pub fn model(&self) -> String {
        self.req
            .model
            .clone()
            .unwrap_or_else(|| "atp-model-fake".to_string())
    }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Split `s` into pieces of at most `size` characters (at least one piece, maybe empty), so
/// streamed text and arguments arrive in several deltas.
pub(crate) fn pieces(s: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars
        .chunks(size.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

/// Size of streamed deltas, in characters.
pub(crate) const DELTA: usize = 24;

/// One SSE event with an `event:` line.
pub(crate) fn named_event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// One SSE event with only a `data:` line.
pub(crate) fn data_event(data: &str) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

/// A streamed body: each piece is its own chunk, written when the client reads; with a
/// `delay`, each piece after the first waits that long first (so clients see the events arrive
/// over time). With `cut`, the body ends with an error after the pieces, so the server drops the
/// connection without the terminating chunk.
pub(crate) fn stream_body(pieces: Vec<Bytes>, cut: bool, delay: Duration) -> Body {
    use futures::StreamExt as _;
    let items =
        futures::stream::iter(pieces.into_iter().enumerate()).then(move |(i, b)| async move {
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok::<Bytes, std::io::Error>(b)
        });
    if !cut {
        return Body::from_stream(items);
    }
    // Pause before the error so the head and the pieces are on the wire first (an error that
    // is ready at once makes the server drop the connection before it writes anything).
    let end = futures::stream::once(async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Err(std::io::Error::other(
            "atp-model-fake: response cut mid-way by the script",
        ))
    });
    Body::from_stream(items.chain(end))
}

pub(crate) fn sse_response(pieces: Vec<Bytes>, cut: bool, delay: Duration) -> Response<Body> {
    let mut resp = Response::new(stream_body(pieces, cut, delay));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

pub(crate) fn json_response(status: u16, body: &Value) -> Response<Body> {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A JSON body that stops in the middle (chunked, then the connection is dropped).
pub(crate) fn cut_json_response(body: &Value) -> Response<Body> {
    let text = body.to_string();
    let half = text
        .char_indices()
        .map(|(i, _)| i)
        .nth(text.chars().count() / 2)
        .unwrap_or(0);
    let mut resp = Response::new(stream_body(
        vec![Bytes::from(text[..half].to_string())],
        true,
        Duration::ZERO,
    ));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// An error answer with an optional `retry-after` header.
pub(crate) fn error_response(
    status: u16,
    body: &Value,
    retry_after: Option<u64>,
) -> Response<Body> {
    let mut resp = json_response(status, body);
    if let Some(secs) = retry_after {
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

/// Usage as the OpenAI dialects report it: (prompt/input tokens incl. cache, cached tokens).
pub(crate) fn openai_input(u: &Usage) -> (u64, u64) {
    (
        u.input_tokens + u.cache_read_tokens + u.cache_creation_tokens,
        u.cache_read_tokens,
    )
}

/// What chat completions report, in the fake's accounting (cache writes are not distinguished
/// there, so they count as uncached input).
pub(crate) fn chat_reported(u: &Usage, output_multiplier: u64) -> Usage {
    Usage {
        input_tokens: u.input_tokens + u.cache_creation_tokens,
        output_tokens: u.output_tokens * output_multiplier,
        cache_read_tokens: u.cache_read_tokens,
        cache_creation_tokens: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_split_on_char_boundaries() {
        assert_eq!(pieces("", 3), vec![""]);
        assert_eq!(pieces("ℕ→ℝab", 2), vec!["ℕ→", "ℝa", "b"]);
    }
}
