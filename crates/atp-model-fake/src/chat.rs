//! OpenAI Chat Completions (`POST …/chat/completions`), as served by OpenAI, Mistral,
//! DeepSeek, xAI and vLLM: streamed `data:` chunks ending in `data: [DONE]`, or JSON, with `n`
//! choices.

use axum::body::Body;
use axum::http::Response;
use serde_json::{json, Value};

use crate::plan::{Answer, Plan};
use crate::script::Usage;
use crate::wire::{self, data_event, Ctx, Reported, DELTA};

fn usage_json(u: &Usage, n: u64) -> Value {
    let (prompt, cached) = wire::openai_input(u);
    let completion = u.output_tokens * n;
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        // DeepSeek's names for the same split.
        "prompt_cache_hit_tokens": cached,
        "prompt_cache_miss_tokens": prompt - cached,
        "completion_tokens_details": {"reasoning_tokens": 0},
    })
}

/// OpenAI's error body for `status` (also used by the Responses dialect).
pub(crate) fn openai_error_body(status: u16, message: Option<&str>) -> Value {
    let (kind, code, default) = match status {
        400 => ("invalid_request_error", Value::Null, "Invalid request."),
        401 => (
            "invalid_request_error",
            json!("invalid_api_key"),
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
        ),
        403 => ("invalid_request_error", json!("unsupported_country_region_territory"), "Request not allowed."),
        404 => ("invalid_request_error", json!("model_not_found"), "The model does not exist or you do not have access to it."),
        429 => ("requests", json!("rate_limit_exceeded"), "Rate limit reached for requests. Please try again later."),
        503 => ("server_error", Value::Null, "The engine is currently overloaded, please try again later."),
        _ => ("server_error", Value::Null, "The server had an error while processing your request. Sorry about that!"),
    };
    json!({"error": {"message": message.unwrap_or(default), "type": kind, "param": null, "code": code}})
}

/// Mistral's error body for `status`: `{"message": "Unauthorized", "request_id": …}` for 401 (as
/// api.mistral.ai answers a refused key), `{"object": "error", …}` otherwise.
fn mistral_error_body(ctx: &Ctx, status: u16, message: Option<&str>) -> Value {
    if status == 401 {
        return json!({"message": message.unwrap_or("Unauthorized"), "request_id": ctx.id("")});
    }
    let (kind, default) = match status {
        429 => ("rate_limited", "Requests rate limit exceeded"),
        400 => ("invalid_request_error", "Invalid request"),
        _ => ("internal_server_error", "Internal server error"),
    };
    json!({"object": "error", "message": message.unwrap_or(default), "type": kind, "param": null, "code": status.to_string()})
}

pub(crate) fn error_body(ctx: &Ctx, status: u16, message: Option<&str>) -> Value {
    if ctx.mistral {
        mistral_error_body(ctx, status, message)
    } else {
        openai_error_body(status, message)
    }
}

struct Choice {
    content: Option<String>,
    /// (id, name, arguments JSON text)
    call: Option<(String, String, String)>,
    finish: &'static str,
}

pub(crate) fn render(ctx: &Ctx, plan: &Plan) -> (Response<Body>, Reported) {
    let n = ctx.req.n as usize;
    let choices: Vec<Choice> = match &plan.answer {
        Answer::Error {
            status,
            message,
            body,
            retry_after,
        } => {
            let body = body
                .clone()
                .unwrap_or_else(|| error_body(ctx, *status, message.as_deref()));
            return (wire::error_response(*status, &body, *retry_after), None);
        }
        Answer::Failure(msg) => {
            return (
                wire::json_response(500, &error_body(ctx, 500, Some(msg))),
                None,
            )
        }
        Answer::Hang => return (wire::json_response(500, &error_body(ctx, 500, None)), None),
        Answer::Call(call) => (0..n)
            .map(|_| Choice {
                content: None,
                call: Some((
                    ctx.id("call_"),
                    call.name.clone(),
                    match &call.input {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                )),
                finish: "tool_calls",
            })
            .collect(),
        Answer::Texts(texts) => texts
            .iter()
            .map(|t| Choice {
                content: Some(t.clone()),
                call: None,
                finish: "stop",
            })
            .collect(),
        Answer::Truncated { text, .. } => (0..n)
            .map(|_| Choice {
                content: Some(text.clone()),
                call: None,
                finish: "length",
            })
            .collect(),
    };
    let cut = matches!(plan.answer, Answer::Truncated { cut: true, .. });
    let id = ctx.id("chatcmpl-");
    let model = ctx.model();
    let created = wire::now_secs();
    let u = plan.usage;
    let reported = wire::chat_reported(&u, choices.len() as u64);
    if !ctx.req.stream {
        let list: Vec<Value> = choices
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut message = json!({"role": "assistant", "content": c.content});
                if let Some((cid, name, args)) = &c.call {
                    message["tool_calls"] = json!([{"id": cid, "type": "function",
                        "function": {"name": name, "arguments": args}}]);
                }
                json!({"index": i, "message": message, "finish_reason": c.finish, "logprobs": null})
            })
            .collect();
        let body = json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": list, "usage": usage_json(&u, choices.len() as u64),
        });
        if cut {
            return (wire::cut_json_response(&body), None);
        }
        return (wire::json_response(200, &body), Some(reported));
    }
    let chunk = |choices: Value| -> Value {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
               "choices": choices})
    };
    let mut events = Vec::new();
    let last = choices.len().saturating_sub(1);
    for (i, c) in choices.iter().enumerate() {
        events.push(data_event(
            &chunk(json!([{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]))
                .to_string(),
        ));
        let deltas: Vec<Value> =
            match (&c.content, &c.call) {
                // Mistral's API sends each call whole in one delta (its SDK requires the
                // name in every tool-call delta).
                (_, Some((cid, name, args))) if ctx.mistral => {
                    vec![
                        json!({"tool_calls": [{"index": 0, "id": cid, "type": "function",
                        "function": {"name": name, "arguments": args}}]}),
                    ]
                }
                (_, Some((cid, name, args))) => {
                    let mut d = vec![
                        json!({"tool_calls": [{"index": 0, "id": cid, "type": "function",
                    "function": {"name": name, "arguments": ""}}]}),
                    ];
                    d.extend(wire::pieces(args, DELTA).into_iter().map(
                        |p| json!({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}),
                    ));
                    d
                }
                (Some(text), None) => wire::pieces(text, DELTA)
                    .into_iter()
                    .map(|p| json!({"content": p}))
                    .collect(),
                (None, None) => Vec::new(),
            };
        let half = deltas.len().div_ceil(2);
        for (k, d) in deltas.into_iter().enumerate() {
            events.push(data_event(
                &chunk(json!([{"index": i, "delta": d, "finish_reason": null}])).to_string(),
            ));
            if cut && k + 1 >= half {
                return (ctx.sse(events, true), None);
            }
        }
        let mut finish = chunk(json!([{"index": i, "delta": {}, "finish_reason": c.finish}]));
        // Mistral's API puts the usage on the last chunk whether or not it was asked for.
        if ctx.mistral && i == last && !ctx.req.include_usage {
            finish["usage"] = usage_json(&u, choices.len() as u64);
        }
        events.push(data_event(&finish.to_string()));
    }
    let usage_sent = if ctx.req.include_usage {
        let mut usage_chunk = chunk(json!([]));
        usage_chunk["usage"] = usage_json(&u, choices.len() as u64);
        events.push(data_event(&usage_chunk.to_string()));
        true
    } else {
        ctx.mistral
    };
    events.push(data_event("[DONE]"));
    (ctx.sse(events, false), usage_sent.then_some(reported))
}
