//! OpenAI Responses (`POST …/responses`), streamed (SSE with `sequence_number`s) or JSON.

use axum::body::Body;
use axum::http::Response;
use serde_json::{json, Value};

use crate::chat::openai_error_body;
use crate::plan::{Answer, Plan};
use crate::request::ToolKind;
use crate::script::Usage;
use crate::wire::{self, named_event, Ctx, Reported, DELTA};

fn usage_json(u: &Usage) -> Value {
    let (input, cached) = wire::openai_input(u);
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": u.cache_creation_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input + u.output_tokens,
    })
}

/// The one output item of an answer, finished, and what streaming it takes.
enum Item {
    Message {
        id: String,
        text: String,
    },
    Function {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
    },
    Custom {
        id: String,
        call_id: String,
        name: String,
        input: String,
    },
}

impl Item {
    fn done(&self) -> Value {
        match self {
            Item::Message { id, text } => json!({
                "type": "message", "id": id, "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }),
            Item::Function {
                id,
                call_id,
                name,
                arguments,
            } => json!({
                "type": "function_call", "id": id, "call_id": call_id, "name": name,
                "arguments": arguments, "status": "completed",
            }),
            Item::Custom {
                id,
                call_id,
                name,
                input,
            } => json!({
                "type": "custom_tool_call", "id": id, "call_id": call_id, "name": name,
                "input": input, "status": "completed",
            }),
        }
    }

    fn added(&self) -> Value {
        let mut v = self.done();
        v["status"] = json!("in_progress");
        match self {
            Item::Message { .. } => v["content"] = json!([]),
            Item::Function { .. } => v["arguments"] = json!(""),
            Item::Custom { .. } => v["input"] = json!(""),
        }
        v
    }
}

struct Seq {
    n: u64,
    events: Vec<bytes::Bytes>,
}

impl Seq {
    fn push(&mut self, kind: &str, mut data: Value) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.n);
        self.n += 1;
        self.events.push(named_event(kind, &data));
    }
}

pub(crate) fn render(ctx: &Ctx, plan: &Plan) -> (Response<Body>, Reported) {
    let item = match &plan.answer {
        Answer::Error {
            status,
            message,
            body,
            retry_after,
        } => {
            let body = body
                .clone()
                .unwrap_or_else(|| openai_error_body(*status, message.as_deref()));
            return (wire::error_response(*status, &body, *retry_after), None);
        }
        Answer::Failure(msg) => {
            return (
                wire::json_response(500, &openai_error_body(500, Some(msg))),
                None,
            )
        }
        Answer::Hang => {
            return (
                wire::json_response(500, &openai_error_body(500, None)),
                None,
            )
        }
        Answer::Call(call) if call.kind == ToolKind::Custom => Item::Custom {
            id: ctx.id("ctc_"),
            call_id: ctx.id("call_"),
            name: call.name.clone(),
            input: call.input.as_str().unwrap_or_default().to_string(),
        },
        Answer::Call(call) => Item::Function {
            id: ctx.id("fc_"),
            call_id: ctx.id("call_"),
            name: call.name.clone(),
            arguments: call.input.to_string(),
        },
        Answer::Texts(texts) => Item::Message {
            id: ctx.id("msg_"),
            text: texts.first().cloned().unwrap_or_default(),
        },
        Answer::Truncated { text, .. } => Item::Message {
            id: ctx.id("msg_"),
            text: text.clone(),
        },
    };
    let truncated = matches!(plan.answer, Answer::Truncated { .. });
    let cut = matches!(plan.answer, Answer::Truncated { cut: true, .. });
    let u = plan.usage;
    let response = |status: &str, output: Value, usage: Value| -> Value {
        let mut r = json!({
            "id": format!("resp_{}", ctx.id("")), "object": "response",
            "created_at": wire::now_secs(), "status": status, "model": ctx.model(),
            "output": output, "usage": usage, "error": null, "incomplete_details": null,
            "parallel_tool_calls": true, "tool_choice": "auto", "tools": [],
        });
        if status == "incomplete" {
            r["incomplete_details"] = json!({"reason": "max_output_tokens"});
        }
        r
    };
    let final_status = if truncated { "incomplete" } else { "completed" };
    let final_response = response(final_status, json!([item.done()]), usage_json(&u));
    if !ctx.req.stream {
        if cut {
            return (wire::cut_json_response(&final_response), None);
        }
        return (wire::json_response(200, &final_response), Some(u));
    }
    let mut seq = Seq {
        n: 0,
        events: Vec::new(),
    };
    let mut created = final_response.clone();
    created["status"] = json!("in_progress");
    created["output"] = json!([]);
    created["usage"] = Value::Null;
    created["incomplete_details"] = Value::Null;
    seq.push("response.created", json!({"response": created.clone()}));
    seq.push("response.in_progress", json!({"response": created}));
    seq.push(
        "response.output_item.added",
        json!({"output_index": 0, "item": item.added()}),
    );
    let (item_id, deltas, delta_kind) = match &item {
        Item::Message { id, text } => {
            seq.push(
                "response.content_part.added",
                json!({"item_id": id, "output_index": 0, "content_index": 0,
                       "part": {"type": "output_text", "text": "", "annotations": []}}),
            );
            (id, wire::pieces(text, DELTA), "response.output_text.delta")
        }
        Item::Function { id, arguments, .. } => (
            id,
            wire::pieces(arguments, DELTA),
            "response.function_call_arguments.delta",
        ),
        Item::Custom { id, input, .. } => (
            id,
            wire::pieces(input, DELTA),
            "response.custom_tool_call_input.delta",
        ),
    };
    let half = deltas.len().div_ceil(2);
    for (k, d) in deltas.iter().enumerate() {
        let mut data = json!({"item_id": item_id, "output_index": 0, "delta": d});
        if matches!(item, Item::Message { .. }) {
            data["content_index"] = json!(0);
        }
        seq.push(delta_kind, data);
        if cut && k + 1 >= half {
            return (ctx.sse(seq.events, true), None);
        }
    }
    match &item {
        Item::Message { id, text } => {
            seq.push(
                "response.output_text.done",
                json!({"item_id": id, "output_index": 0, "content_index": 0, "text": text}),
            );
            seq.push(
                "response.content_part.done",
                json!({"item_id": id, "output_index": 0, "content_index": 0,
                       "part": {"type": "output_text", "text": text, "annotations": []}}),
            );
        }
        Item::Function { id, arguments, .. } => seq.push(
            "response.function_call_arguments.done",
            json!({"item_id": id, "output_index": 0, "arguments": arguments}),
        ),
        Item::Custom { id, input, .. } => seq.push(
            "response.custom_tool_call_input.done",
            json!({"item_id": id, "output_index": 0, "input": input}),
        ),
    }
    seq.push(
        "response.output_item.done",
        json!({"output_index": 0, "item": item.done()}),
    );
    let last = if truncated {
        "response.incomplete"
    } else {
        "response.completed"
    };
    seq.push(last, json!({"response": final_response}));
    (ctx.sse(seq.events, false), Some(u))
}
