//! OpenAI Chat Completions: streamed and JSON answers, `n > 1`, usage options, Mistral's SDK.

use serde_json::{json, Value};

use crate::common::*;

fn request(stream: bool, include_usage: bool, tools: bool, history: Vec<Value>) -> Value {
    let mut messages = vec![
        json!({"role": "system", "content": "You are a prover."}),
        json!({"role": "user", "content": "Complete the proof in Main.lean"}),
    ];
    messages.extend(history);
    let mut body = json!({"model": "deepseek-v4-pro", "stream": stream, "messages": messages});
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    if tools {
        body["tools"] = json!([chat_bash()]);
    }
    body
}

/// Data payloads of a chat stream; checks it ends with `[DONE]`.
fn chunks(text: &str) -> Vec<Value> {
    let events = parse_sse(text);
    assert!(
        events.iter().all(|e| e.name.is_none()),
        "chat streams have no event names"
    );
    assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
    events[..events.len() - 1].iter().map(Event::json).collect()
}

/// One reassembled choice: (content, tool call (name, arguments), finish reason).
type Choice = (String, Option<(String, String)>, String);

fn assemble(chunks: &[Value]) -> Vec<Choice> {
    let mut out: Vec<Choice> = Vec::new();
    for c in chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        for ch in c["choices"].as_array().expect("choices") {
            let i = ch["index"].as_u64().expect("index") as usize;
            while out.len() <= i {
                out.push((String::new(), None, String::new()));
            }
            let d = &ch["delta"];
            if let Some(t) = d["content"].as_str() {
                out[i].0.push_str(t);
            }
            if let Some(calls) = d["tool_calls"].as_array() {
                let f = &calls[0]["function"];
                let entry = out[i].1.get_or_insert((String::new(), String::new()));
                if let Some(n) = f["name"].as_str() {
                    entry.0 = n.to_string();
                }
                entry.1.push_str(f["arguments"].as_str().unwrap_or(""));
            }
            if let Some(fr) = ch["finish_reason"].as_str() {
                out[i].2 = fr.to_string();
            }
        }
    }
    out
}

#[tokio::test]
async fn streamed_tool_call_then_text_with_usage_chunk() {
    let fake = ModelFake::start(Script::new(vec![
        Turn::shell("lake build").with_usage(Usage::new(500, 20).with_cache(100, 0)),
        Turn::text("Proved."),
    ]))
    .await
    .expect("start");
    // Both path spellings DeepSeek/vLLM-style clients use.
    for (i, path) in ["/v1/chat/completions", "/chat/completions"]
        .iter()
        .enumerate()
    {
        let url = format!("{}{path}", fake.url());
        let (status, ct, text) = post(&url, &request(true, true, true, vec![])).await;
        assert_eq!(status, 200);
        assert!(ct.starts_with("text/event-stream"));
        let cs = chunks(&text);
        let usage_chunk = cs.last().expect("usage chunk");
        assert_eq!(usage_chunk["choices"], json!([]));
        assert_eq!(
            usage_chunk["usage"]["prompt_tokens"], 600,
            "prompt tokens include cached ones"
        );
        assert_eq!(
            usage_chunk["usage"]["prompt_tokens_details"]["cached_tokens"],
            100
        );
        assert_eq!(usage_chunk["usage"]["completion_tokens"], 20);
        let got = assemble(&cs);
        let (name, args) = got[0].1.clone().expect("a tool call");
        assert_eq!(name, "bash");
        assert_eq!(
            serde_json::from_str::<Value>(&args).expect("args"),
            json!({"command": "lake build"})
        );
        assert_eq!(got[0].2, "tool_calls");
        assert_eq!(fake.usage_reported().responses, i as u64 + 1);
    }
    let history = vec![
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "bash", "arguments": "{}"}}]}),
        json!({"role": "tool", "tool_call_id": "call_1", "content": "ok"}),
    ];
    let url = format!("{}/v1/chat/completions", fake.url());
    let (_, _, text) = post(&url, &request(true, false, true, history)).await;
    let got = assemble(&chunks(&text));
    assert_eq!(got, vec![("Proved.".to_string(), None, "stop".to_string())]);
    let totals = fake.usage_reported();
    assert_eq!(
        totals.responses, 2,
        "no usage without stream_options.include_usage"
    );
    assert_eq!(
        (
            totals.input_tokens,
            totals.cache_read_tokens,
            totals.output_tokens
        ),
        (1000, 200, 40)
    );
}

#[tokio::test]
async fn json_with_n_choices_samples_in_order() {
    let honest = "```lean\ntheorem t : 1 + 1 = 2 := by norm_num\n```";
    let cheat = "```lean\naxiom cheat : False\ntheorem t : 1 + 1 = 2 := cheat.elim\n```";
    let fake = ModelFake::start(
        Script::new(vec![
            Turn::sample([cheat, cheat, honest]).with_usage(Usage::new(300, 100))
        ])
        .repeating_last(),
    )
    .await
    .expect("start");
    let url = format!("{}/v1/chat/completions", fake.url());
    let mut body = request(false, false, false, vec![]);
    body["n"] = json!(4);
    let (status, ct, text) = post(&url, &body).await;
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    let v: Value = serde_json::from_str(&text).expect("json");
    let texts: Vec<&str> = v["choices"]
        .as_array()
        .expect("choices")
        .iter()
        .map(|c| c["message"]["content"].as_str().expect("content"))
        .collect();
    assert_eq!(texts, [cheat, cheat, honest, cheat]);
    assert!(v["choices"]
        .as_array()
        .expect("c")
        .iter()
        .all(|c| c["finish_reason"] == "stop"));
    assert_eq!(
        v["usage"]["completion_tokens"], 400,
        "n choices bill n outputs"
    );
    // The next request continues the sample sequence (index 4 → cheat, 5 → honest).
    body["n"] = json!(2);
    let (_, _, text) = post(&url, &body).await;
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["choices"][1]["message"]["content"], honest);
    // Streamed with n > 1: each choice by its index.
    body["stream"] = json!(true);
    body["n"] = json!(3);
    let (_, _, text) = post(&url, &body).await;
    let got = assemble(&chunks(&text));
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].0, honest);
    assert_eq!(
        fake.usage_reported().output_tokens,
        400 + 200,
        "the stream reported none"
    );
}

#[tokio::test]
async fn mistral_sdk_gets_usage_on_the_last_chunk_and_whole_calls() {
    let fake = ModelFake::start(Script::new(vec![Turn::shell("ls -la"), Turn::text("ok")]))
        .await
        .expect("start");
    let url = format!("{}/v1/chat/completions", fake.url());
    let resp = client()
        .post(&url)
        .header("user-agent", "mistral-client-python/3.5.0")
        .header("authorization", "Bearer k")
        .json(&request(true, false, true, vec![]))
        .send()
        .await
        .expect("send");
    let cs = chunks(&resp.text().await.expect("body"));
    let calls: Vec<&Value> = cs
        .iter()
        .filter(|c| c["choices"][0]["delta"]["tool_calls"].is_array())
        .collect();
    assert_eq!(calls.len(), 1, "one delta carries the whole call");
    assert_eq!(
        calls[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
        "bash"
    );
    let last = cs.last().expect("last");
    assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(last["usage"]["prompt_tokens"], 1000);
    assert_eq!(fake.usage_reported().responses, 1);

    fake.set_script(Script::new(vec![Turn::error(401)]));
    let resp = client()
        .post(&url)
        .header("user-agent", "mistral-client-python/3.5.0")
        .json(&request(true, false, true, vec![]))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 401);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["message"], "Unauthorized");
}

#[tokio::test]
async fn truncated_length_cut_and_errors() {
    let fake = ModelFake::start(Script::new(vec![Turn::truncated()]))
        .await
        .expect("start");
    let url = format!("{}/v1/chat/completions", fake.url());
    let (_, _, text) = post(&url, &request(false, false, false, vec![])).await;
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert!(!v["choices"][0]["message"]["content"]
        .as_str()
        .expect("c")
        .contains("```"));

    fake.set_script(Script::new(vec![Turn::cut()]));
    let resp = client()
        .post(&url)
        .json(&request(true, true, false, vec![]))
        .send()
        .await
        .expect("headers");
    let err = resp.text().await.expect_err("cut stream");
    assert!(err.is_body() || err.is_decode(), "{err}");

    fake.set_script(Script::new(vec![Turn::error(401)]));
    let (status, _, text) = post(&url, &request(true, false, false, vec![])).await;
    assert_eq!(status, 401);
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["error"]["code"], "invalid_api_key");
    fake.set_script(Script::new(vec![Turn::error(503)]));
    let (status, _, _) = post(&url, &request(true, false, false, vec![])).await;
    assert_eq!(status, 503);
}
