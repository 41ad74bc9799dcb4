//! A dialect-neutral view of one model request: what the fake needs to pick its answer and what
//! it records.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The API a request speaks, chosen by its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// Anthropic Messages: `POST …/messages` (also `?beta=true`), `…/messages/count_tokens`.
    AnthropicMessages,
    /// OpenAI Responses: `POST …/responses`.
    OpenAiResponses,
    /// OpenAI Chat Completions (also Mistral, DeepSeek, xAI, vLLM): `POST …/chat/completions`.
    OpenAiChat,
    /// `GET …/models` and `GET …/models/{id}`.
    Models,
    /// Anything else (answered 404, or a small canned answer for known side endpoints).
    Other,
}

/// How a tool is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ToolKind {
    /// JSON arguments.
    Function,
    /// Freeform text input (OpenAI Responses `custom` tools, e.g. Codex's `apply_patch`).
    Custom,
    /// A provider-hosted or special tool the fake cannot call (web search, …).
    Hosted,
}

/// One tool the request offers.
#[derive(Debug, Clone)]
pub(crate) struct OfferedTool {
    pub name: String,
    pub kind: ToolKind,
    /// JSON schema of the arguments (function tools).
    pub schema: Option<Value>,
}

/// What the fake reads from a model request.
#[derive(Debug, Clone)]
pub(crate) struct ModelRequest {
    pub model: Option<String>,
    pub stream: bool,
    /// Number of choices asked for (chat completions `n`, else 1).
    pub n: u32,
    /// Chat completions `stream_options.include_usage`.
    pub include_usage: bool,
    pub system: Option<String>,
    pub user_prompt: Option<String>,
    pub tools: Vec<OfferedTool>,
    /// Assistant turns already in the conversation.
    pub turn_index: usize,
    /// JSON schema the answer text must match (Anthropic `output_config.format`, chat
    /// `response_format`, Responses `text.format`), if the request asks for structured output.
    pub output_schema: Option<Value>,
}

/// The JSON schema of a structured-output request field: `{"type": "json_schema", "schema":
/// …}` (Anthropic, Responses), `{"type": "json_schema", "json_schema": {"schema": …}}` (chat),
/// `{"type": "json_object"}` (any object).
fn output_schema(format: Option<&Value>) -> Option<Value> {
    let f = format?;
    match f.get("type").and_then(Value::as_str)? {
        "json_schema" => f
            .get("schema")
            .or_else(|| f.pointer("/json_schema/schema"))
            .cloned()
            .or_else(|| Some(serde_json::json!({"type": "object"}))),
        "json_object" => Some(serde_json::json!({"type": "object"})),
        _ => None,
    }
}

fn text_of_content(content: &Value) -> Vec<String> {
    match content {
        Value::String(s) => vec![s.clone()],
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => {
                    let kind = o.get("type").and_then(Value::as_str).unwrap_or("text");
                    if matches!(kind, "text" | "input_text" | "output_text") {
                        o.get("text").and_then(Value::as_str).map(str::to_string)
                    } else {
                        None
                    }
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn join(parts: Vec<String>) -> Option<String> {
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("\n"))
    }
}

fn str_field(body: &Value, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Walk role-tagged messages: returns (assistant turns, user text before the first assistant
/// message, system/developer text).
fn walk_messages<'a>(
    messages: impl Iterator<Item = &'a Value>,
    is_assistant: impl Fn(&Value) -> bool,
) -> (usize, Vec<String>, Vec<String>) {
    let mut turns = 0;
    let mut in_assistant_run = false;
    let mut user = Vec::new();
    let mut system = Vec::new();
    for m in messages {
        if is_assistant(m) {
            if !in_assistant_run {
                turns += 1;
            }
            in_assistant_run = true;
            continue;
        }
        in_assistant_run = false;
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let content = m.get("content").unwrap_or(&Value::Null);
        match role {
            "user" if turns == 0 => user.extend(text_of_content(content)),
            "system" | "developer" if turns == 0 => system.extend(text_of_content(content)),
            _ => {}
        }
    }
    (turns, user, system)
}

impl ModelRequest {
    pub fn anthropic(body: &Value) -> ModelRequest {
        let empty = Vec::new();
        let messages = body
            .get("messages")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        // Consecutive assistant messages are one turn; a mid-conversation `system` message
        // (Claude Code) does not end a run of assistant messages only if it sits between them,
        // which real clients never send.
        let (turns, user, _) = walk_messages(messages.iter(), |m| {
            m.get("role").and_then(Value::as_str) == Some("assistant")
        });
        let system = body.get("system").map(text_of_content).unwrap_or_default();
        let tools = body
            .get("tools")
            .and_then(Value::as_array)
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| {
                        let name = t.get("name").and_then(Value::as_str)?.to_string();
                        // Client tools have no type or type "custom"; server tools carry a
                        // versioned type such as "web_search_20250305".
                        let kind = match t.get("type").and_then(Value::as_str) {
                            None | Some("custom") => ToolKind::Function,
                            Some(_) => ToolKind::Hosted,
                        };
                        Some(OfferedTool {
                            name,
                            kind,
                            schema: t.get("input_schema").cloned(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        ModelRequest {
            model: str_field(body, "model"),
            stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
            n: 1,
            include_usage: false,
            system: join(system),
            user_prompt: join(user),
            tools,
            turn_index: turns,
            output_schema: output_schema(body.pointer("/output_config/format")),
        }
    }

    pub fn chat(body: &Value) -> ModelRequest {
        let empty = Vec::new();
        let messages = body
            .get("messages")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        let (turns, user, system) = walk_messages(messages.iter(), |m| {
            m.get("role").and_then(Value::as_str) == Some("assistant")
        });
        let mut tools: Vec<OfferedTool> = body
            .get("tools")
            .and_then(Value::as_array)
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| {
                        let f = t.get("function")?;
                        Some(OfferedTool {
                            name: f.get("name").and_then(Value::as_str)?.to_string(),
                            kind: ToolKind::Function,
                            schema: f.get("parameters").cloned(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        // The legacy `functions` list.
        if let Some(functions) = body.get("functions").and_then(Value::as_array) {
            tools.extend(functions.iter().filter_map(|f| {
                Some(OfferedTool {
                    name: f.get("name").and_then(Value::as_str)?.to_string(),
                    kind: ToolKind::Function,
                    schema: f.get("parameters").cloned(),
                })
            }));
        }
        let n = body
            .get("n")
            .and_then(Value::as_u64)
            .map(|n| n.clamp(1, 128) as u32)
            .unwrap_or(1);
        ModelRequest {
            model: str_field(body, "model"),
            stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
            n,
            include_usage: body
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            system: join(system),
            user_prompt: join(user),
            tools,
            turn_index: turns,
            output_schema: output_schema(body.get("response_format")),
        }
    }

    pub fn responses(body: &Value) -> ModelRequest {
        let mut system: Vec<String> = str_field(body, "instructions")
            .filter(|s| !s.is_empty())
            .into_iter()
            .collect();
        let (turns, user, more_system) = match body.get("input") {
            Some(Value::String(s)) => (0, vec![s.clone()], Vec::new()),
            Some(Value::Array(items)) => walk_messages(items.iter(), |item| {
                let kind = item
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("message");
                match kind {
                    "message" => item.get("role").and_then(Value::as_str) == Some("assistant"),
                    // Everything the model produced: calls, reasoning, hosted tool calls.
                    // Their outputs (`*_output`) come from the client.
                    k => !k.ends_with("_output") && k != "item_reference",
                }
            }),
            _ => (0, Vec::new(), Vec::new()),
        };
        system.extend(more_system);
        let tools = body
            .get("tools")
            .and_then(Value::as_array)
            .map(|tools| {
                tools
                    .iter()
                    .map(|t| {
                        let kind = t.get("type").and_then(Value::as_str).unwrap_or("function");
                        let name = t
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or(kind)
                            .to_string();
                        let kind = match kind {
                            "function" => ToolKind::Function,
                            "custom" => ToolKind::Custom,
                            _ => ToolKind::Hosted,
                        };
                        OfferedTool {
                            name,
                            kind,
                            schema: t.get("parameters").cloned(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        ModelRequest {
            model: str_field(body, "model"),
            stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
            n: 1,
            include_usage: false,
            system: join(system),
            user_prompt: join(user),
            tools,
            turn_index: turns,
            output_schema: output_schema(body.pointer("/text/format")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn anthropic_counts_assistant_messages_and_reads_prompts() {
        let body = json!({
            "model": "claude-opus-4-8", "stream": true,
            "system": [{"type": "text", "text": "sys one"}, {"type": "text", "text": "sys two"}],
            "tools": [{"name": "Bash", "input_schema": {"type": "object"}},
                      {"type": "web_search_20250305", "name": "web_search"}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "<reminder>"}, {"type": "text", "text": "prove it"}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]},
                {"role": "assistant", "content": "thinking"},
                {"role": "user", "content": "more"}
            ]
        });
        let r = ModelRequest::anthropic(&body);
        assert_eq!(r.turn_index, 2);
        assert!(r.stream);
        assert_eq!(r.system.as_deref(), Some("sys one\nsys two"));
        assert_eq!(r.user_prompt.as_deref(), Some("<reminder>\nprove it"));
        assert_eq!(r.tools.len(), 2);
        assert_eq!(r.tools[1].kind, ToolKind::Hosted);
    }

    #[test]
    fn responses_counts_runs_of_model_items() {
        let body = json!({
            "model": "gpt-5.5", "instructions": "be brief",
            "input": [
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "dev"}]},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "env"}]},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "prove it"}]},
                {"type": "reasoning", "summary": []},
                {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "exec_command", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "x"},
                {"type": "function_call_output", "call_id": "c2", "output": "y"},
                {"type": "custom_tool_call", "call_id": "c3", "name": "apply_patch", "input": "*** Begin Patch"},
                {"type": "custom_tool_call_output", "call_id": "c3", "output": "done"}
            ],
            "tools": [{"type": "function", "name": "exec_command", "parameters": {}},
                      {"type": "custom", "name": "apply_patch"}, {"type": "web_search"}]
        });
        let r = ModelRequest::responses(&body);
        assert_eq!(r.turn_index, 2);
        assert_eq!(r.system.as_deref(), Some("be brief\ndev"));
        assert_eq!(r.user_prompt.as_deref(), Some("env\nprove it"));
        let kinds: Vec<_> = r.tools.iter().map(|t| (t.name.as_str(), t.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("exec_command", ToolKind::Function),
                ("apply_patch", ToolKind::Custom),
                ("web_search", ToolKind::Hosted)
            ]
        );
        let r = ModelRequest::responses(&json!({"input": "hi"}));
        assert_eq!((r.turn_index, r.user_prompt.as_deref()), (0, Some("hi")));
    }

    #[test]
    fn chat_reads_n_usage_option_and_tools() {
        let body = json!({
            "model": "deepseek-v4-pro", "n": 4, "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": [{"type": "text", "text": "q"}]},
                         {"role": "assistant", "content": null, "tool_calls": []}, {"role": "tool", "content": "r"}],
            "tools": [{"type": "function", "function": {"name": "bash", "parameters": {"type": "object"}}}]
        });
        let r = ModelRequest::chat(&body);
        assert_eq!((r.n, r.include_usage, r.turn_index), (4, true, 1));
        assert_eq!(r.system.as_deref(), Some("sys"));
        assert_eq!(r.user_prompt.as_deref(), Some("q"));
        assert_eq!(r.tools[0].name, "bash");
    }
}
