//! Dialect-independent behaviour: turn indices, side requests, hangs, recording, failures.

use std::time::Duration;

use atp_model_fake::{policy, Answered, AuthHeader, Dialect};
use serde_json::{json, Value};

use crate::common::*;

fn anthropic(tools: bool, assistant_turns: usize) -> Value {
    let mut messages = vec![json!({"role": "user", "content": "Complete the proof"})];
    for i in 0..assistant_turns {
        messages.push(json!({"role": "assistant", "content": [{"type": "tool_use", "id": format!("t{i}"), "name": "Bash", "input": {}}]}));
        messages.push(json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": format!("t{i}"), "content": "ok"}]}));
    }
    let mut body = json!({"model": "claude-opus-4-8", "max_tokens": 100, "messages": messages});
    if tools {
        body["tools"] = json!([claude_bash()]);
    }
    body
}

async fn answer(fake: &ModelFake, body: &Value) -> Value {
    let (status, _, text) = post(&format!("{}/v1/messages", fake.url()), body).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).expect("json")
}

#[tokio::test]
async fn turn_index_comes_from_the_conversation() {
    let fake = ModelFake::start(Script::new(vec![
        Turn::shell("step one"),
        Turn::shell("step two"),
        Turn::text("done"),
    ]))
    .await
    .expect("start");
    // A retry and a second session at the same point get the same answer; order does not matter.
    for turns in [1, 0, 1, 0, 2] {
        let v = answer(&fake, &anthropic(true, turns)).await;
        match turns {
            0 => assert_eq!(v["content"][0]["input"]["command"], "step one"),
            1 => assert_eq!(v["content"][0]["input"]["command"], "step two"),
            _ => assert_eq!(v["content"][0]["text"], "done"),
        }
    }
    let idx: Vec<_> = fake.requests().iter().map(|r| r.turn_index).collect();
    assert_eq!(idx, [Some(1), Some(0), Some(1), Some(0), Some(2)]);
    // Parallel sessions.
    let mut handles = Vec::new();
    for _ in 0..8 {
        let url = format!("{}/v1/messages", fake.url());
        handles.push(tokio::spawn(async move {
            let (_, _, text) = post(&url, &anthropic(true, 0)).await;
            serde_json::from_str::<Value>(&text).expect("json")
        }));
    }
    for h in handles {
        let v = h.await.expect("join");
        assert_eq!(v["content"][0]["input"]["command"], "step one");
    }
}

#[tokio::test]
async fn side_requests_get_a_short_reply_and_do_not_move_the_script() {
    let fake = ModelFake::start(Script::new(vec![Turn::shell("ls"), Turn::text("done")]))
        .await
        .expect("start");
    // A title request (no tools), as OpenCode sends before the real turn.
    let v = answer(&fake, &anthropic(false, 0)).await;
    assert_eq!(
        v["content"][0]["text"],
        atp_model_fake::script::DEFAULT_SIDE_REPLY
    );
    assert_eq!(v["stop_reason"], "end_turn");
    let v = answer(&fake, &anthropic(true, 0)).await;
    assert_eq!(v["content"][0]["name"], "Bash");
    // A structured-output side request (Claude Code's title request) gets JSON of its schema.
    let mut titled = anthropic(false, 0);
    titled["output_config"] = json!({"format": {"type": "json_schema", "schema": {
        "type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}}});
    let v = answer(&fake, &titled).await;
    let title: Value =
        serde_json::from_str(v["content"][0]["text"].as_str().expect("t")).expect("json text");
    assert_eq!(
        title,
        json!({"title": atp_model_fake::script::DEFAULT_SIDE_REPLY})
    );
    let answered: Vec<_> = fake.requests().into_iter().map(|r| r.answered).collect();
    assert_eq!(
        answered,
        [
            Answered::SideReply,
            Answered::ToolCall {
                name: "Bash".into()
            },
            Answered::SideReply
        ]
    );
    let totals = fake.usage_reported();
    assert_eq!(totals.responses, 3);
    assert_eq!(
        totals.output_tokens,
        2 * Usage::SIDE.output_tokens + Usage::default().output_tokens
    );
}

#[tokio::test]
async fn hang_keeps_the_request_open_until_the_client_gives_up() {
    let fake = ModelFake::start(policy::never_answer())
        .await
        .expect("start");
    let started = std::time::Instant::now();
    crate::common::tls();
    let err = reqwest::Client::builder()
        .timeout(Duration::from_millis(400))
        .build()
        .expect("client")
        .post(format!("{}/v1/responses", fake.url()))
        .json(&json!({"model": "gpt-5.5", "input": "hi", "stream": true}))
        .send()
        .await
        .expect_err("no answer");
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(fake.requests()[0].answered, Answered::Hang);
    // Stopping the fake releases the hanging request.
    let url = format!("{}/v1/messages", fake.url());
    let pending =
        tokio::spawn(async move { client().post(url).json(&anthropic(true, 0)).send().await });
    for _ in 0..100 {
        if fake.requests().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(fake.requests().len(), 2);
    tokio::time::timeout(Duration::from_secs(10), fake.shutdown())
        .await
        .expect("shutdown does not wait for hanging requests");
    let done = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .expect("released")
        .expect("join");
    if let Ok(resp) = done {
        assert_eq!(resp.status().as_u16(), 503);
    }
}

#[tokio::test]
async fn records_prompts_tools_and_auth_presence_but_no_secret() {
    let fake = ModelFake::start(Script::new(vec![Turn::text("hi")]))
        .await
        .expect("start");
    let body = json!({
        "model": "claude-opus-4-8", "stream": true, "max_tokens": 10,
        "system": "SYSTEM TEXT",
        "tools": [claude_bash(), {"name": "mcp__lean-lsp__lean_goal", "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "reminder"}, {"type": "text", "text": "USER PROMPT"}]}]
    });
    let resp = client()
        .post(format!(
            "{}/v1/messages?beta=true&key=q-secret-777",
            fake.url()
        ))
        .header("x-api-key", "sk-ant-secret-111")
        .header("authorization", "Bearer oauth-secret-222")
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    let _ = resp.text().await;
    let resp = client()
        .post(format!("{}/v1/chat/completions", fake.url()))
        .header("authorization", "Basic dXNlcjpiYXNpYy1zZWNyZXQtMzMz")
        .header("api-key", "azure-secret-444")
        .json(&json!({"model": "m", "messages": [{"role": "developer", "content": "DEV"}, {"role": "user", "content": "Q"}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);

    let recs = fake.requests();
    let r = &recs[0];
    assert_eq!(r.dialect, Dialect::AnthropicMessages);
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/messages")
    );
    assert_eq!(r.query.as_deref(), Some("beta=true&key=<redacted>"));
    assert_eq!(r.model.as_deref(), Some("claude-opus-4-8"));
    assert!(r.stream);
    assert_eq!(r.system.as_deref(), Some("SYSTEM TEXT"));
    assert_eq!(r.user_prompt.as_deref(), Some("reminder\nUSER PROMPT"));
    assert_eq!(r.tools, ["Bash", "mcp__lean-lsp__lean_goal"]);
    assert_eq!(
        r.auth,
        [AuthHeader::XApiKey, AuthHeader::AuthorizationBearer]
    );
    assert!(r.header_names.contains(&"anthropic-version".to_string()));
    assert_eq!(r.body["messages"][0]["content"][1]["text"], "USER PROMPT");
    let c = &recs[1];
    assert_eq!(c.dialect, Dialect::OpenAiChat);
    assert_eq!(c.system.as_deref(), Some("DEV"));
    assert_eq!(c.user_prompt.as_deref(), Some("Q"));
    assert_eq!(c.auth, [AuthHeader::AuthorizationOther, AuthHeader::ApiKey]);
    let all = serde_json::to_string(&recs).expect("ser");
    for secret in [
        "111",
        "222",
        "333",
        "444",
        "777",
        "dXNlcjpiYXNpYy1zZWNyZXQtMzMz",
    ] {
        assert!(
            !all.contains(secret),
            "the record holds a secret ({secret})"
        );
    }
}

#[tokio::test]
async fn scripts_that_cannot_answer_fail_loudly() {
    let fake = ModelFake::start(Script::new(vec![Turn::shell("ls")]))
        .await
        .expect("start");
    let url = format!("{}/v1/messages", fake.url());
    // Tools offered, but none is a shell.
    let mut body = anthropic(true, 0);
    body["tools"] = json!([{"name": "Read", "input_schema": {"type": "object", "properties": {"file_path": {}}}}]);
    let (status, _, text) = post(&url, &body).await;
    assert_eq!(status, 500);
    assert!(
        text.contains("offers no shell tool") && text.contains("[Read]"),
        "{text}"
    );
    // Past the end of the script.
    let (status, _, text) = post(&url, &anthropic(true, 1)).await;
    assert_eq!(status, 500);
    assert!(text.contains("script exhausted"), "{text}");
    // Not JSON.
    let resp = client()
        .post(&url)
        .body("{nope")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 400);
    let failures = fake
        .requests()
        .iter()
        .filter(|r| matches!(r.answered, Answered::Failure { .. }))
        .count();
    assert_eq!(failures, 3, "every failure is recorded");
    // Unknown routes.
    let resp = client()
        .get(format!("{}/v1/nothing", fake.url()))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(
        fake.requests().last().expect("rec").answered,
        Answered::NotFound
    );
}

#[tokio::test]
async fn models_are_listed_and_described() {
    let script = Script {
        models: vec!["claude-opus-4-8".into(), "gpt-5.5".into()],
        ..Script::default()
    };
    let fake = ModelFake::start(script).await.expect("start");
    let v: Value = client()
        .get(format!("{}/v1/models", fake.url()))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| m["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["claude-opus-4-8", "gpt-5.5"]);
    assert_eq!(v["object"], "list");
    assert_eq!(v["has_more"], false);
    let card: Value = client()
        .get(format!("{}/v1/models/magistral-medium-latest", fake.url()))
        .header("user-agent", "mistral-client-python/3.5.0")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (card["id"].as_str(), card["type"].as_str()),
        (Some("magistral-medium-latest"), Some("base"))
    );
    let connectors: Value = client()
        .get(format!(
            "{}/v1/connectors/bootstrap?supports_mcp=true",
            fake.url()
        ))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(connectors, json!({"connectors": []}));
}

#[tokio::test]
async fn binds_loopback_only_and_keeps_connections_alive() {
    let err = ModelFake::start_on("0.0.0.0:0".parse().expect("addr"), Script::default())
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("loopback only"), "{err}");
    let fake = ModelFake::start_on(
        "[::1]:0".parse().expect("addr"),
        Script::new(vec![Turn::text("x")]),
    )
    .await;
    if let Ok(fake) = fake {
        assert!(fake.url().starts_with("http://[::1]:"));
    }
    let fake = ModelFake::start(Script::new(vec![Turn::text("x")]).repeating_last())
        .await
        .expect("start");
    assert!(fake.url().starts_with("http://127.0.0.1:"));
    // One client, several requests: HTTP/1.1 keep-alive (the server must not close after each).
    let c = client();
    for _ in 0..3 {
        let resp = c
            .post(format!("{}/v1/messages", fake.url()))
            .json(&anthropic(true, 0))
            .send()
            .await
            .expect("send");
        assert_ne!(
            resp.headers()
                .get("connection")
                .and_then(|v| v.to_str().ok()),
            Some("close")
        );
        assert_eq!(resp.version(), reqwest::Version::HTTP_11);
        resp.text().await.expect("body");
    }
}

#[tokio::test]
async fn streamed_events_are_flushed_one_by_one() {
    let script = Script {
        event_delay_ms: 80,
        ..Script::new(vec![Turn::text(
            "a text long enough for several deltas of the stream",
        )])
    };
    let fake = ModelFake::start(script).await.expect("start");
    let mut body = anthropic(true, 0);
    body["stream"] = json!(true);
    let started = std::time::Instant::now();
    let mut resp = client()
        .post(format!("{}/v1/messages", fake.url()))
        .json(&body)
        .send()
        .await
        .expect("send");
    let mut arrivals = Vec::new();
    let mut text = String::new();
    while let Some(chunk) = resp.chunk().await.expect("chunk") {
        arrivals.push(started.elapsed());
        text.push_str(std::str::from_utf8(&chunk).expect("utf8"));
    }
    let events = parse_sse(&text).len();
    let total = *arrivals.last().expect("chunks");
    assert!(events >= 7, "{events} events");
    assert!(
        total >= Duration::from_millis(80 * (events as u64 - 1)),
        "{total:?}"
    );
    assert!(
        arrivals.len() >= events / 2,
        "{} chunks for {events} events",
        arrivals.len()
    );
    assert!(
        arrivals[0] < total / 3,
        "the first event comes early: {arrivals:?}"
    );
}
