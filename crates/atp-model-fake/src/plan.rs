//! From a request and the script to the answer, independent of the dialect.

use serde_json::{json, Map, Value};

use crate::request::{ModelRequest, OfferedTool, ToolKind};
use crate::script::{Reply, Script, Usage};

/// A tool call the fake answers with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    pub name: String,
    /// JSON arguments (function tools) or the freeform input string (custom tools).
    pub input: Value,
    pub kind: ToolKind,
}

/// What a request is answered with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    Call(Call),
    /// One text per choice (several only for chat completions `n > 1`).
    Texts(Vec<String>),
    Error {
        status: u16,
        message: Option<String>,
        body: Option<Value>,
        retry_after: Option<u64>,
    },
    Hang,
    Truncated {
        text: String,
        cut: bool,
    },
    /// The script cannot answer this request; HTTP 500 with this message.
    Failure(String),
}

/// The planned answer with its usage and a label for the record.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub answer: Answer,
    pub usage: Usage,
    pub side: bool,
}

/// Tool names that are a CLI's shell tool, in order of preference.
const SHELL_TOOL_NAMES: &[&str] = &[
    "Bash",
    "bash",
    "exec_command",
    "shell",
    "shell_command",
    "run_shell_command",
    "execute_command",
    "run_command",
    "execute_bash",
    "terminal",
];

/// Parameter names that carry a shell tool's command.
const COMMAND_PARAMS: &[&str] = &["command", "cmd", "script"];

fn command_param(tool: &OfferedTool) -> Option<(&'static str, bool)> {
    if tool.kind != ToolKind::Function {
        return None;
    }
    let props = tool.schema.as_ref()?.get("properties")?.as_object()?;
    COMMAND_PARAMS.iter().find_map(|p| {
        let prop = props.get(*p)?;
        let is_array = prop.get("type").and_then(Value::as_str) == Some("array");
        Some((*p, is_array))
    })
}

/// A value for a required parameter the script does not set.
fn filler(name: &str, schema: &Value) -> Value {
    if let Some(d) = schema.get("default") {
        return d.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("boolean") => Value::Bool(false),
        Some("integer") | Some("number") => {
            schema.get("minimum").cloned().unwrap_or_else(|| json!(1))
        }
        Some("array") => json!([]),
        Some("object") => json!({}),
        _ if name.contains("desc") => json!("Run the scripted command"),
        _ => json!(""),
    }
}

/// The call of the request's shell tool running `command`.
fn shell_call(req: &ModelRequest, command: &str) -> Result<Call, String> {
    let by_name = SHELL_TOOL_NAMES.iter().find_map(|n| {
        req.tools
            .iter()
            .find(|t| t.name == *n)
            .and_then(|t| command_param(t).map(|p| (t, p)))
    });
    // Any other function tool named like a shell with a command parameter (not companions
    // such as `BashOutput` or `KillShell`, which have none).
    let found = by_name.or_else(|| {
        req.tools.iter().find_map(|t| {
            let lower = t.name.to_lowercase();
            if lower.contains("bash") || lower.contains("shell") {
                command_param(t).map(|p| (t, p))
            } else {
                None
            }
        })
    });
    let Some((tool, (param, is_array))) = found else {
        return Err(format!(
            "atp-model-fake: the script wants a shell command ({command:?}) but the request offers no shell tool; offered tools: [{}]",
            req.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
        ));
    };
    let mut input = Map::new();
    input.insert(
        param.to_string(),
        if is_array {
            json!(["bash", "-lc", command])
        } else {
            json!(command)
        },
    );
    if let Some(schema) = &tool.schema {
        let props = schema.get("properties").and_then(Value::as_object);
        if let (Some(required), Some(props)) =
            (schema.get("required").and_then(Value::as_array), props)
        {
            for r in required.iter().filter_map(Value::as_str) {
                if !input.contains_key(r) {
                    let s = props.get(r).cloned().unwrap_or(Value::Null);
                    input.insert(r.to_string(), filler(r, &s));
                }
            }
        }
    }
    Ok(Call {
        name: tool.name.clone(),
        input: Value::Object(input),
        kind: ToolKind::Function,
    })
}

fn named_call(req: &ModelRequest, name: &str, input: &Value) -> Result<Call, String> {
    let Some(tool) = req.tools.iter().find(|t| t.name == name) else {
        return Err(format!(
            "atp-model-fake: the script calls tool {name:?} but the request does not offer it; offered tools: [{}]",
            req.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
        ));
    };
    match (tool.kind, input) {
        (ToolKind::Custom, Value::String(_)) | (ToolKind::Function, Value::Object(_)) => Ok(Call {
            name: name.to_string(),
            input: input.clone(),
            kind: tool.kind,
        }),
        (ToolKind::Custom, _) => Err(format!(
            "atp-model-fake: tool {name:?} is a freeform tool; the script's input must be a JSON string"
        )),
        (ToolKind::Function, _) => Err(format!(
            "atp-model-fake: tool {name:?} takes JSON arguments; the script's input must be a JSON object"
        )),
        (ToolKind::Hosted, _) => Err(format!(
            "atp-model-fake: tool {name:?} is a provider-hosted tool; the fake cannot call it"
        )),
    }
}

/// A small JSON value matching `schema` (required properties only), strings set to `text`: the
/// side reply of a structured-output request (e.g. Claude Code's `{"title": …}` request).
pub(crate) fn schema_instance(schema: &Value, text: &str) -> Value {
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = schema
            .get(key)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            return schema_instance(first, text);
        }
    }
    let kind = match schema.get("type") {
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match kind {
        "object" => {
            let mut out = Map::new();
            let props = schema.get("properties").and_then(Value::as_object);
            if let (Some(required), Some(props)) =
                (schema.get("required").and_then(Value::as_array), props)
            {
                for r in required.iter().filter_map(Value::as_str) {
                    let s = props.get(r).cloned().unwrap_or(Value::Null);
                    out.insert(r.to_string(), schema_instance(&s, text));
                }
            }
            Value::Object(out)
        }
        "array" => json!([]),
        "integer" | "number" => schema.get("minimum").cloned().unwrap_or(json!(0)),
        "boolean" => json!(false),
        "null" => Value::Null,
        _ => json!(text),
    }
}

/// Decide the answer. `samples` is the sample counter of the script (advanced by `Sample`).
pub(crate) fn plan(req: &ModelRequest, script: &Script, samples: &mut u64) -> Plan {
    let turn = script.turn_at(req.turn_index);
    let side = req.tools.is_empty() && turn.is_none_or(|t| t.needs_tool());
    if side {
        let text = match &req.output_schema {
            Some(schema) => schema_instance(schema, &script.side_reply).to_string(),
            None => script.side_reply.clone(),
        };
        return Plan {
            answer: Answer::Texts(vec![text; req.n as usize]),
            usage: Usage::SIDE,
            side: true,
        };
    }
    let Some(turn) = turn else {
        return Plan {
            answer: Answer::Failure(format!(
                "atp-model-fake: script exhausted: it has {} turns and this request is at turn index {} (assistant turns in its conversation); add turns or set \"repeat_last\": true",
                script.turns.len(),
                req.turn_index
            )),
            usage: Usage::default(),
            side: false,
        };
    };
    let answer = match &turn.reply {
        Reply::Shell { command } => shell_call(req, command)
            .map(Answer::Call)
            .unwrap_or_else(Answer::Failure),
        Reply::Tool { name, input } => named_call(req, name, input)
            .map(Answer::Call)
            .unwrap_or_else(Answer::Failure),
        Reply::Text { text } => Answer::Texts(vec![text.clone(); req.n as usize]),
        Reply::Error {
            status,
            message,
            body,
            retry_after,
        } => Answer::Error {
            status: *status,
            message: message.clone(),
            body: body.clone(),
            retry_after: *retry_after,
        },
        Reply::Hang => Answer::Hang,
        Reply::Truncated { text, cut } => Answer::Truncated {
            text: text.clone(),
            cut: *cut,
        },
        Reply::ShellSample { commands } if commands.is_empty() => {
            Answer::Failure("atp-model-fake: a shell_sample turn has no commands".to_string())
        }
        Reply::ShellSample { commands } => {
            let i = (*samples % commands.len() as u64) as usize;
            *samples += 1;
            shell_call(req, &commands[i])
                .map(Answer::Call)
                .unwrap_or_else(Answer::Failure)
        }
        Reply::Sample { texts } if texts.is_empty() => {
            Answer::Failure("atp-model-fake: a sample turn has no texts".to_string())
        }
        Reply::Sample { texts } => {
            let picked = (0..req.n)
                .map(|_| {
                    let i = (*samples % texts.len() as u64) as usize;
                    *samples += 1;
                    texts[i].clone()
                })
                .collect();
            Answer::Texts(picked)
        }
    };
    Plan {
        answer,
        usage: turn.usage(),
        side: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Turn;
    use serde_json::json;

    fn req(tools: Vec<(&str, Value)>, turn_index: usize) -> ModelRequest {
        ModelRequest {
            model: None,
            stream: false,
            n: 1,
            include_usage: false,
            system: None,
            user_prompt: None,
            tools: tools
                .into_iter()
                .map(|(name, schema)| OfferedTool {
                    name: name.to_string(),
                    kind: ToolKind::Function,
                    schema: Some(schema),
                })
                .collect(),
            turn_index,
            output_schema: None,
        }
    }

    #[test]
    fn shell_fills_the_offered_tools_schema() {
        let script = Script::new(vec![Turn::shell("ls")]);
        let mut s = 0;
        let cases = [
            (
                "Bash",
                json!({"properties": {"command": {"type": "string"}, "description": {"type": "string"}}, "required": ["command"]}),
                json!({"command": "ls"}),
            ),
            (
                "exec_command",
                json!({"properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}),
                json!({"cmd": "ls"}),
            ),
            (
                "shell",
                json!({"properties": {"command": {"type": "array"}, "timeout_ms": {"type": "number"}}, "required": ["command", "timeout_ms"]}),
                json!({"command": ["bash", "-lc", "ls"], "timeout_ms": 1}),
            ),
            (
                "my_bash_tool",
                json!({"properties": {"command": {"type": "string"}, "description": {"type": "string"}, "mode": {"enum": ["a", "b"]}}, "required": ["command", "description", "mode"]}),
                json!({"command": "ls", "description": "Run the scripted command", "mode": "a"}),
            ),
        ];
        for (name, schema, want) in cases {
            let r = req(
                vec![
                    ("BashOutput", json!({"properties": {"id": {}}})),
                    (name, schema),
                ],
                0,
            );
            let p = plan(&r, &script, &mut s);
            assert_eq!(
                p.answer,
                Answer::Call(Call {
                    name: name.to_string(),
                    input: want,
                    kind: ToolKind::Function
                })
            );
        }
    }

    #[test]
    fn shell_samples_cycle_over_requests() {
        let script = Script::new(vec![Turn::shell_sample(["a", "b"])]);
        let mut s = 0;
        let r = req(
            vec![(
                "Bash",
                json!({"properties": {"command": {"type": "string"}}, "required": ["command"]}),
            )],
            0,
        );
        let cmds: Vec<Value> = (0..3)
            .map(|_| match plan(&r, &script, &mut s).answer {
                Answer::Call(c) => c.input["command"].clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(cmds, [json!("a"), json!("b"), json!("a")]);
        // a side request (no tools) does not advance the counter
        assert!(plan(&req(vec![], 0), &script, &mut s).side);
        assert_eq!(s, 3);
    }

    #[test]
    fn shell_without_shell_tool_fails_loudly() {
        let script = Script::new(vec![Turn::shell("ls")]);
        let r = req(vec![("Read", json!({"properties": {"path": {}}}))], 0);
        let p = plan(&r, &script, &mut 0);
        let Answer::Failure(msg) = p.answer else {
            panic!("{:?}", p.answer)
        };
        assert!(
            msg.contains("offers no shell tool") && msg.contains("[Read]"),
            "{msg}"
        );
    }

    #[test]
    fn side_requests_and_exhaustion() {
        let script = Script::new(vec![Turn::shell("ls"), Turn::text("done")]);
        // No tools while the turn wants a call: side reply.
        let p = plan(&req(vec![], 0), &script, &mut 0);
        assert!(p.side);
        assert_eq!(p.usage, Usage::SIDE);
        // No tools at a text turn: the text (pass@k requests offer no tools).
        let p = plan(&req(vec![], 1), &script, &mut 0);
        assert_eq!(
            (p.side, p.answer),
            (false, Answer::Texts(vec!["done".into()]))
        );
        let tools = vec![("bash", json!({"properties": {"command": {}}}))];
        let p = plan(&req(tools.clone(), 2), &script, &mut 0);
        assert!(matches!(p.answer, Answer::Failure(m) if m.contains("script exhausted")));
        // Past the end without tools: side reply.
        assert!(plan(&req(vec![], 2), &script, &mut 0).side);
    }

    #[test]
    fn structured_side_replies_match_the_schema() {
        let script = Script::new(vec![Turn::shell("ls")]);
        let mut r = req(vec![], 0);
        r.output_schema = Some(json!({"type": "object", "properties": {
            "title": {"type": "string"}, "n": {"type": "integer"}, "ok": {"type": ["boolean", "null"]},
            "tags": {"type": "array"}, "opt": {"type": "string"}},
            "required": ["title", "n", "ok", "tags"]}));
        let p = plan(&r, &script, &mut 0);
        let Answer::Texts(t) = p.answer else { panic!() };
        let v: Value = serde_json::from_str(&t[0]).expect("json");
        assert_eq!(
            v,
            json!({"title": script.side_reply, "n": 0, "ok": false, "tags": []})
        );
    }

    #[test]
    fn samples_advance_per_choice() {
        let script = Script::new(vec![Turn::sample(["a", "b", "c"])]);
        let mut s = 0;
        let mut r = req(vec![], 0);
        r.n = 2;
        assert_eq!(
            plan(&r, &script, &mut s).answer,
            Answer::Texts(vec!["a".into(), "b".into()])
        );
        r.n = 1;
        assert_eq!(
            plan(&r, &script, &mut s).answer,
            Answer::Texts(vec!["c".into()])
        );
        assert_eq!(
            plan(&r, &script, &mut s).answer,
            Answer::Texts(vec!["a".into()])
        );
    }

    #[test]
    fn named_tools_must_be_offered_with_the_right_input() {
        let mut r = req(vec![("mcp__lean__goal", json!({}))], 0);
        r.tools.push(OfferedTool {
            name: "apply_patch".into(),
            kind: ToolKind::Custom,
            schema: None,
        });
        let call = |name: &str, input: Value| {
            plan(&r, &Script::new(vec![Turn::tool(name, input)]), &mut 0).answer
        };
        assert!(matches!(
            call("mcp__lean__goal", json!({"f": 1})),
            Answer::Call(_)
        ));
        assert!(
            matches!(call("apply_patch", json!("*** Begin Patch")), Answer::Call(c) if c.kind == ToolKind::Custom)
        );
        assert!(matches!(call("apply_patch", json!({})), Answer::Failure(_)));
        assert!(
            matches!(call("missing", json!({})), Answer::Failure(m) if m.contains("does not offer"))
        );
    }
}
