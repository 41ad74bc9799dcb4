//! OpenAI Responses: streamed and JSON answers, custom tools, errors, usage.

use serde_json::{json, Value};

use crate::common::*;

fn request(stream: bool, history: Vec<Value>) -> Value {
    let mut input = vec![
        json!({"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]}),
        json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Complete the proof in Main.lean"}]}),
    ];
    input.extend(history);
    json!({
        "model": "gpt-5.5", "stream": stream, "store": false, "instructions": "",
        "input": input,
        "tools": [codex_exec_command(), {"type": "custom", "name": "apply_patch", "format": {"type": "grammar"}}, {"type": "web_search"}],
    })
}

fn after_call(call_id: &str) -> Vec<Value> {
    vec![
        json!({"type": "function_call", "call_id": call_id, "name": "exec_command", "arguments": "{}"}),
        json!({"type": "function_call_output", "call_id": call_id, "output": "done"}),
    ]
}

/// The kinds of the events, checking `type` = event name and increasing sequence numbers.
fn kinds(events: &[Event]) -> Vec<String> {
    let mut last = -1i64;
    events
        .iter()
        .map(|e| {
            let v = e.json();
            assert_eq!(v["type"].as_str(), e.name.as_deref());
            let seq = v["sequence_number"].as_i64().expect("sequence_number");
            assert!(seq > last, "sequence numbers increase");
            last = seq;
            e.name.clone().expect("named")
        })
        .collect()
}

#[tokio::test]
async fn streamed_function_call_then_message() {
    let fake = ModelFake::start(Script::new(vec![
        Turn::shell("lake env lean Main.lean")
            .with_usage(Usage::new(900, 30).with_cache(2000, 100)),
        Turn::text("All goals closed."),
    ]))
    .await
    .expect("start");
    let url = format!("{}/v1/responses", fake.url());
    let (status, ct, text) = post(&url, &request(true, vec![])).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/event-stream"));
    let events = parse_sse(&text);
    let k = kinds(&events);
    assert_eq!(
        k.iter()
            .map(String::as_str)
            .filter(|n| !n.ends_with(".delta"))
            .collect::<Vec<_>>(),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let args: String = events
        .iter()
        .map(Event::json)
        .filter(|v| v["type"] == "response.function_call_arguments.delta")
        .map(|v| v["delta"].as_str().expect("delta").to_string())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).expect("args"),
        json!({"cmd": "lake env lean Main.lean"})
    );
    let done = events
        .iter()
        .map(Event::json)
        .find(|v| v["type"] == "response.output_item.done")
        .expect("item done");
    assert_eq!(done["item"]["type"], "function_call");
    assert_eq!(done["item"]["name"], "exec_command");
    let call_id = done["item"]["call_id"]
        .as_str()
        .expect("call id")
        .to_string();
    let completed = events.last().expect("last").json();
    assert_eq!(completed["response"]["status"], "completed");
    assert_eq!(
        completed["response"]["usage"],
        json!({"input_tokens": 3000, "input_tokens_details": {"cached_tokens": 2000, "cache_write_tokens": 100},
               "output_tokens": 30, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 3030})
    );

    let (_, _, text) = post(&url, &request(true, after_call(&call_id))).await;
    let events = parse_sse(&text);
    let k = kinds(&events);
    assert!(k.contains(&"response.output_text.delta".to_string()));
    let done = events
        .iter()
        .map(Event::json)
        .find(|v| v["type"] == "response.output_item.done")
        .expect("item done");
    assert_eq!(done["item"]["type"], "message");
    assert_eq!(done["item"]["content"][0]["text"], "All goals closed.");
    let totals = fake.usage_reported();
    assert_eq!(
        (
            totals.input_tokens,
            totals.cache_read_tokens,
            totals.cache_creation_tokens,
            totals.output_tokens
        ),
        (900 + 1000, 2000, 100, 30 + 50)
    );
}

#[tokio::test]
async fn json_answers_and_custom_tools() {
    let fake = ModelFake::start(Script::new(vec![
        Turn::tool("apply_patch", json!("*** Begin Patch\n*** End Patch\n")),
        Turn::text("done"),
    ]))
    .await
    .expect("start");
    let url = format!("{}/v1/responses", fake.url());
    let (status, ct, text) = post(&url, &request(false, vec![])).await;
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["object"], "response");
    assert_eq!(v["output"][0]["type"], "custom_tool_call");
    assert_eq!(v["output"][0]["input"], "*** Begin Patch\n*** End Patch\n");
    let history = vec![
        json!({"type": "custom_tool_call", "call_id": "c", "name": "apply_patch", "input": "x"}),
        json!({"type": "custom_tool_call_output", "call_id": "c", "output": "ok"}),
    ];
    let (_, _, text) = post(&url, &request(false, history)).await;
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["output"][0]["content"][0]["text"], "done");
    assert_eq!(v["usage"]["input_tokens_details"]["cached_tokens"], 0);
}

#[tokio::test]
async fn truncated_is_incomplete_and_errors_use_openai_shape() {
    let fake = ModelFake::start(Script::new(vec![Turn::truncated()]))
        .await
        .expect("start");
    let url = format!("{}/v1/responses", fake.url());
    let (_, _, text) = post(&url, &request(true, vec![])).await;
    let last = parse_sse(&text).last().expect("events").json();
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );

    fake.set_script(Script::new(vec![Turn::error(401)]));
    let (status, _, text) = post(&url, &request(true, vec![])).await;
    assert_eq!(status, 401);
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["error"]["code"], "invalid_api_key");
    assert!(v["error"]["message"]
        .as_str()
        .expect("msg")
        .starts_with("Incorrect API key provided"));

    fake.set_script(Script::new(vec![Turn::rate_limited(3)]));
    let resp = client()
        .post(&url)
        .json(&request(true, vec![]))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "3");
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");

    fake.set_script(Script::new(vec![Turn::error(500)]));
    let (status, _, text) = post(&url, &request(true, vec![])).await;
    assert_eq!(status, 500);
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["error"]["type"], "server_error");
}
