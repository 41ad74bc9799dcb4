//! Shared helpers: a client, SSE parsing, tool definitions as the real CLIs send them.

use serde_json::{json, Value};

pub use atp_model_fake::{ModelFake, Script, Turn, Usage};

/// reqwest's TLS needs a process-wide crypto provider (atp uses ring).
pub fn tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn client() -> reqwest::Client {
    tls();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// One server-sent event: its `event:` name (if any) and its `data:` text.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {}", self.data))
    }
}

pub fn parse_sse(text: &str) -> Vec<Event> {
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let mut name = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push(v.to_string());
                } else {
                    panic!("not an SSE line: {line:?}");
                }
            }
            Event {
                name,
                data: data.join("\n"),
            }
        })
        .collect()
}

/// POST `body` to `url` with an API key and return (status, content-type, body text).
pub async fn post(url: &str, body: &Value) -> (u16, String, String) {
    let resp = client()
        .post(url)
        .header("x-api-key", "sk-ant-test-secret")
        .header("authorization", "Bearer sk-openai-test-secret")
        .json(body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ct, resp.text().await.expect("body"))
}

/// Claude Code's `Bash` tool (abridged schema, as sent by 2.1.197).
pub fn claude_bash() -> Value {
    json!({"name": "Bash", "description": "Executes a bash command", "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}, "timeout": {"type": "number"},
                       "description": {"type": "string"}, "run_in_background": {"type": "boolean"}},
        "required": ["command"], "additionalProperties": false}})
}

/// Codex's `exec_command` tool (abridged schema, as sent by 0.171.0).
pub fn codex_exec_command() -> Value {
    json!({"type": "function", "name": "exec_command", "strict": false, "parameters": {
        "type": "object",
        "properties": {"cmd": {"type": "string"}, "workdir": {"type": "string"},
                       "yield_time_ms": {"type": "number"}},
        "required": ["cmd"], "additionalProperties": false}})
}

/// A chat-completions `bash` tool (Mistral Vibe 3.0.3's schema).
pub fn chat_bash() -> Value {
    json!({"type": "function", "function": {"name": "bash", "parameters": {
        "type": "object", "additionalProperties": false,
        "properties": {"command": {"type": "string"}, "timeout_seconds": {"type": "integer", "default": 120}},
        "required": ["command"]}}})
}
