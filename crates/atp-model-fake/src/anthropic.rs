//! Anthropic Messages: `POST /v1/messages`, streamed (SSE) or JSON.

use axum::body::Body;
use axum::http::Response;
use serde_json::{json, Value};

use crate::plan::{Answer, Call, Plan};
use crate::script::Usage;
use crate::wire::{self, named_event, Ctx, Reported, DELTA};

fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_creation_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
        "service_tier": "standard",
    })
}

/// The error `type` Anthropic uses for `status`, and a default message.
fn error_kind(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => ("invalid_request_error", "invalid request"),
        401 => ("authentication_error", "invalid x-api-key"),
        403 => (
            "permission_error",
            "your API key does not have permission to use the specified resource",
        ),
        404 => ("not_found_error", "not found"),
        413 => (
            "request_too_large",
            "request exceeds the maximum allowed number of bytes",
        ),
        429 => (
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
        ),
        529 => ("overloaded_error", "Overloaded"),
        _ => ("api_error", "Internal server error"),
    }
}

pub(crate) fn error_body(status: u16, message: Option<&str>) -> Value {
    let (kind, default) = error_kind(status);
    json!({
        "type": "error",
        "error": {"type": kind, "message": message.unwrap_or(default)},
    })
}

enum Block {
    Text(String),
    ToolUse { id: String, call: Call },
}

fn blocks(ctx: &Ctx, answer: &Answer) -> (Vec<Block>, &'static str) {
    match answer {
        Answer::Call(call) => (
            vec![Block::ToolUse {
                id: ctx.id("toolu_"),
                call: call.clone(),
            }],
            "tool_use",
        ),
        Answer::Texts(texts) => (
            vec![Block::Text(texts.first().cloned().unwrap_or_default())],
            "end_turn",
        ),
        Answer::Truncated { text, .. } => (vec![Block::Text(text.clone())], "max_tokens"),
        _ => (Vec::new(), "end_turn"),
    }
}

pub(crate) fn render(ctx: &Ctx, plan: &Plan) -> (Response<Body>, Reported) {
    match &plan.answer {
        Answer::Error {
            status,
            message,
            body,
            retry_after,
        } => {
            let body = body
                .clone()
                .unwrap_or_else(|| error_body(*status, message.as_deref()));
            return (wire::error_response(*status, &body, *retry_after), None);
        }
        Answer::Failure(msg) => {
            return (wire::json_response(500, &error_body(500, Some(msg))), None)
        }
        Answer::Hang => return (wire::json_response(500, &error_body(500, None)), None),
        _ => {}
    }
    let cut = matches!(plan.answer, Answer::Truncated { cut: true, .. });
    let (blocks, stop_reason) = blocks(ctx, &plan.answer);
    let id = ctx.id("msg_");
    let model = ctx.model();
    let u = plan.usage;
    if !ctx.req.stream {
        let content: Vec<Value> = blocks
            .iter()
            .map(|b| match b {
                Block::Text(t) => json!({"type": "text", "text": t}),
                Block::ToolUse { id, call } => {
                    json!({"type": "tool_use", "id": id, "name": call.name, "input": call.input})
                }
            })
            .collect();
        let body = json!({
            "id": id, "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop_reason, "stop_sequence": null,
            "usage": usage_json(&u),
        });
        if cut {
            return (wire::cut_json_response(&body), None);
        }
        return (wire::json_response(200, &body), Some(u));
    }
    let mut start_usage = usage_json(&u);
    start_usage["output_tokens"] = json!(0);
    let mut events = vec![
        named_event(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null, "usage": start_usage,
            }}),
        ),
        named_event("ping", &json!({"type": "ping"})),
    ];
    for (index, block) in blocks.iter().enumerate() {
        let (start, deltas): (Value, Vec<Value>) = match block {
            Block::Text(t) => (
                json!({"type": "text", "text": ""}),
                wire::pieces(t, DELTA)
                    .into_iter()
                    .map(|p| json!({"type": "text_delta", "text": p}))
                    .collect(),
            ),
            Block::ToolUse { id, call } => (
                json!({"type": "tool_use", "id": id, "name": call.name, "input": {}}),
                wire::pieces(&call.input.to_string(), DELTA)
                    .into_iter()
                    .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
                    .collect(),
            ),
        };
        events.push(named_event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": start}),
        ));
        let n = deltas.len();
        for (i, delta) in deltas.into_iter().enumerate() {
            events.push(named_event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index, "delta": delta}),
            ));
            if cut && i + 1 >= n.div_ceil(2) {
                return (ctx.sse(events, true), None);
            }
        }
        events.push(named_event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        ));
    }
    events.push(named_event(
        "message_delta",
        &json!({"type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": usage_json(&u)}),
    ));
    events.push(named_event(
        "message_stop",
        &json!({"type": "message_stop"}),
    ));
    (ctx.sse(events, false), Some(u))
}

/// `POST …/messages/count_tokens`.
pub(crate) fn count_tokens() -> Response<Body> {
    wire::json_response(200, &json!({"input_tokens": Usage::default().input_tokens}))
}
