//! Anthropic Messages: streamed and JSON answers, errors, usage.

use serde_json::{json, Value};

use crate::common::*;

fn first_turn(stream: bool) -> Value {
    json!({
        "model": "claude-opus-4-8", "max_tokens": 1024, "stream": stream,
        "system": [{"type": "text", "text": "You are Claude Code."}],
        "tools": [claude_bash(), {"name": "Read", "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Complete the proof in Main.lean"}]}]
    })
}

fn second_turn(stream: bool, tool_use_id: &str) -> Value {
    let mut body = first_turn(stream);
    let messages = body["messages"].as_array_mut().expect("messages");
    messages.push(json!({"role": "assistant", "content": [
        {"type": "tool_use", "id": tool_use_id, "name": "Bash", "input": {"command": "x"}}]}));
    messages.push(json!({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": tool_use_id, "content": "ok"}]}));
    body
}

fn script() -> Script {
    Script::new(vec![
        Turn::shell("sed -i 's/sorry/rfl/' Main.lean")
            .with_usage(Usage::new(1200, 80).with_cache(3000, 500)),
        Turn::text("The proof is complete: `rfl` closes the goal.")
            .with_usage(Usage::new(1500, 40).with_cache(4000, 0)),
    ])
}

/// Reassemble a streamed message: (content blocks, stop reason, final usage, event names).
fn assemble(events: &[Event]) -> (Vec<Value>, String, Value, Vec<String>) {
    let mut blocks: Vec<Value> = Vec::new();
    let mut partial: Vec<String> = Vec::new();
    let mut stop = String::new();
    let mut usage = Value::Null;
    let names: Vec<String> = events.iter().filter_map(|e| e.name.clone()).collect();
    for e in events {
        let v = e.json();
        assert_eq!(
            v["type"].as_str(),
            e.name.as_deref(),
            "event name = data type"
        );
        match v["type"].as_str().expect("type") {
            "message_start" => {
                assert_eq!(v["message"]["role"], "assistant");
                assert_eq!(v["message"]["model"], "claude-opus-4-8");
            }
            "content_block_start" => {
                assert_eq!(v["index"].as_u64(), Some(blocks.len() as u64));
                blocks.push(v["content_block"].clone());
                partial.push(String::new());
            }
            "content_block_delta" => {
                let i = v["index"].as_u64().expect("index") as usize;
                match v["delta"]["type"].as_str().expect("delta type") {
                    "text_delta" => {
                        let t = blocks[i]["text"].as_str().unwrap_or("").to_string()
                            + v["delta"]["text"].as_str().expect("text");
                        blocks[i]["text"] = json!(t);
                    }
                    "input_json_delta" => {
                        partial[i].push_str(v["delta"]["partial_json"].as_str().expect("pj"))
                    }
                    other => panic!("delta {other}"),
                }
            }
            "content_block_stop" => {
                let i = v["index"].as_u64().expect("index") as usize;
                if blocks[i]["type"] == "tool_use" {
                    blocks[i]["input"] = serde_json::from_str(&partial[i]).expect("input json");
                }
            }
            "message_delta" => {
                stop = v["delta"]["stop_reason"]
                    .as_str()
                    .expect("stop")
                    .to_string();
                usage = v["usage"].clone();
            }
            "message_stop" | "ping" => {}
            other => panic!("unexpected event {other}"),
        }
    }
    (blocks, stop, usage, names)
}

#[tokio::test]
async fn streamed_tool_call_then_text() {
    let fake = ModelFake::start(script()).await.expect("start");
    let url = format!("{}/v1/messages?beta=true", fake.url());

    let (status, ct, text) = post(&url, &first_turn(true)).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let events = parse_sse(&text);
    let (blocks, stop, usage, names) = assemble(&events);
    assert_eq!(names.first().map(String::as_str), Some("message_start"));
    assert_eq!(names.last().map(String::as_str), Some("message_stop"));
    assert!(
        names.iter().filter(|n| *n == "content_block_delta").count() > 1,
        "arguments arrive in several deltas: {names:?}"
    );
    assert_eq!(stop, "tool_use");
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0]["type"], "tool_use");
    assert_eq!(blocks[0]["name"], "Bash");
    assert_eq!(
        blocks[0]["input"],
        json!({"command": "sed -i 's/sorry/rfl/' Main.lean"})
    );
    let id = blocks[0]["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("toolu_"), "{id}");
    assert_eq!(
        (
            &usage["input_tokens"],
            &usage["output_tokens"],
            &usage["cache_read_input_tokens"],
            &usage["cache_creation_input_tokens"]
        ),
        (&json!(1200), &json!(80), &json!(3000), &json!(500))
    );

    let (status, _, text) = post(&url, &second_turn(true, &id)).await;
    assert_eq!(status, 200);
    let (blocks, stop, _, _) = assemble(&parse_sse(&text));
    assert_eq!(stop, "end_turn");
    assert_eq!(
        blocks,
        vec![json!({"type": "text", "text": "The proof is complete: `rfl` closes the goal."})]
    );

    let totals = fake.usage_reported();
    assert_eq!(
        (
            totals.input_tokens,
            totals.output_tokens,
            totals.cache_read_tokens,
            totals.cache_creation_tokens,
            totals.responses
        ),
        (2700, 120, 7000, 500, 2)
    );
    assert_eq!(totals.by_model["claude-opus-4-8"].output_tokens, 120);
}

#[tokio::test]
async fn json_tool_call_then_text() {
    let fake = ModelFake::start(script()).await.expect("start");
    let url = format!("{}/v1/messages", fake.url());
    let (status, ct, text) = post(&url, &first_turn(false)).await;
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["type"], "message");
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(v["content"][0]["type"], "tool_use");
    assert_eq!(
        v["content"][0]["input"]["command"],
        "sed -i 's/sorry/rfl/' Main.lean"
    );
    assert_eq!(v["usage"]["cache_read_input_tokens"], 3000);
    let id = v["content"][0]["id"].as_str().expect("id");
    let (_, _, text) = post(&url, &second_turn(false, id)).await;
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(
        v["content"][0]["text"],
        "The proof is complete: `rfl` closes the goal."
    );
    assert_eq!(fake.usage_reported().output_tokens, 120);
}

#[tokio::test]
async fn error_shapes_and_retry_after() {
    let fake = ModelFake::start(Script::new(vec![Turn::error(401)]))
        .await
        .expect("start");
    let url = format!("{}/v1/messages", fake.url());
    let (status, _, text) = post(&url, &first_turn(true)).await;
    assert_eq!(status, 401);
    assert_eq!(
        serde_json::from_str::<Value>(&text).expect("json"),
        json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
    );

    fake.set_script(Script::new(vec![Turn::rate_limited(7)]));
    let resp = client()
        .post(&url)
        .json(&first_turn(true))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("7")
    );
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["type"], "rate_limit_error");

    for (status, kind) in [(500, "api_error"), (529, "overloaded_error")] {
        fake.set_script(Script::new(vec![Turn::error(status)]));
        let (got, _, text) = post(&url, &first_turn(false)).await;
        assert_eq!(got, status);
        let v: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["error"]["type"], kind, "{status}");
    }

    let custom = json!({"type": "error", "error": {"type": "permission_error", "message": "OAuth token revoked"}});
    fake.set_script(Script::new(vec![atp_model_fake::Reply::Error {
        status: 403,
        message: None,
        body: Some(custom.clone()),
        retry_after: None,
    }
    .into()]));
    let (got, _, text) = post(&url, &first_turn(false)).await;
    assert_eq!(got, 403);
    assert_eq!(serde_json::from_str::<Value>(&text).expect("json"), custom);
    assert_eq!(fake.usage_reported().responses, 0, "errors report no usage");
}

#[tokio::test]
async fn truncated_stops_at_max_tokens_and_cut_breaks_the_stream() {
    let fake = ModelFake::start(Script::new(vec![Turn::truncated()]))
        .await
        .expect("start");
    let url = format!("{}/v1/messages", fake.url());
    let (_, _, text) = post(&url, &first_turn(true)).await;
    let (blocks, stop, _, _) = assemble(&parse_sse(&text));
    assert_eq!(stop, "max_tokens");
    assert!(!blocks[0]["text"].as_str().expect("text").contains("```"));

    fake.set_script(Script::new(vec![Turn::cut()]));
    let resp = client()
        .post(&url)
        .json(&first_turn(true))
        .send()
        .await
        .expect("headers arrive");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.text().await.is_err(),
        "the body must end with an error"
    );
    let resp = client()
        .post(&url)
        .json(&first_turn(false))
        .send()
        .await
        .expect("headers arrive");
    assert!(resp.json::<Value>().await.is_err(), "a cut JSON body");
    assert_eq!(
        fake.usage_reported().responses,
        1,
        "only the complete answer"
    );
}

#[tokio::test]
async fn count_tokens_is_answered_without_using_the_script() {
    let fake = ModelFake::start(Script::default()).await.expect("start");
    let (status, _, text) = post(
        &format!("{}/v1/messages/count_tokens", fake.url()),
        &json!({"model": "claude-opus-4-8", "messages": []}),
    )
    .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&text).expect("json");
    assert!(v["input_tokens"].as_u64().is_some());
}
