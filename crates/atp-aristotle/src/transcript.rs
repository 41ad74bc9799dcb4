//! A task's events as files: `logs/events.json` (the server's objects, oldest first) and a
//! readable `logs/transcript.txt` (`[created_at] TYPE: text` blocks separated by blank lines).

use serde_json::Value;

/// Names of `event_type` values (Harmonic's enumeration).
const EVENT_TYPES: &[&str] = &[
    "UNKNOWN",
    "MESSAGE",
    "BUILDING",
    "THINKING",
    "EDITING_FILE",
    "SEARCHING_LOCAL",
    "RUNNING_COMMAND",
    "PROVING",
    "READING_FILES",
    "REVIEWING",
    "FINISHED",
    "ERROR",
    "READING_LEAN",
    "SEARCHING_EXTERNAL",
    "RUNNING_LEAN",
    "QUESTION",
    "SUMMARY",
    "AGENT_QUESTION",
    "AGENT_FOLLOW_UP",
];

/// The name of an event's type (`UNKNOWN` for values atp does not know).
pub fn event_type_name(v: &Value) -> &'static str {
    v.get("event_type")
        .and_then(Value::as_u64)
        .and_then(|i| EVENT_TYPES.get(i as usize).copied())
        .unwrap_or("UNKNOWN")
}

fn text(v: &Value, k: &str) -> Option<String> {
    v.get(k)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// One event as a transcript block (without its timestamp).
pub fn render_event(v: &Value) -> String {
    let content = text(v, "content").unwrap_or_default();
    let explanation = text(v, "explanation");
    match event_type_name(v) {
        "QUESTION" => match explanation {
            Some(a) => format!("You asked: {content}\nAnswer: {a}"),
            None => format!("You asked: {content}"),
        },
        "AGENT_QUESTION" => {
            let mut s = format!("Aristotle asked: {content}");
            if let Some(a) = explanation {
                s.push_str(&format!("\nYou answered: {a}"));
            } else if v.get("status").and_then(Value::as_u64) == Some(1) {
                s.push_str("\n(no answer before the question timed out)");
            } else if let Some(sug) = v.get("suggestions").and_then(Value::as_array) {
                let list: Vec<&str> = sug.iter().filter_map(Value::as_str).collect();
                if !list.is_empty() {
                    s.push_str(&format!("\nSuggestions: {}", list.join(" | ")));
                }
            }
            s
        }
        name => {
            let body = explanation
                .or_else(|| text(v, "file_path"))
                .unwrap_or(content);
            format!("{name}: {body}")
        }
    }
}

/// The transcript of `events`.
pub fn transcript(events: &[Value]) -> String {
    let mut s = String::new();
    for e in events {
        let at = text(e, "created_at").unwrap_or_else(|| "?".into());
        s.push_str(&format!("[{at}] {}\n\n", render_event(e)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_render_like_harmonics_client() {
        let events = vec![
            json!({"event_type": 7, "created_at": "2026-07-01T10:02:00", "content": "c", "explanation": "trying omega"}),
            json!({"event_type": 4, "created_at": "2026-07-01T10:03:00", "content": "", "file_path": "Main.lean"}),
            json!({"event_type": 15, "created_at": "t", "content": "why?", "explanation": "because"}),
            json!({"event_type": 17, "created_at": "t", "content": "which lemma?", "status": 2, "suggestions": ["a", "b"]}),
            json!({"event_type": 99, "content": "odd"}),
        ];
        insta::assert_snapshot!(transcript(&events), @r"
        [2026-07-01T10:02:00] PROVING: trying omega

        [2026-07-01T10:03:00] EDITING_FILE: Main.lean

        [t] You asked: why?
        Answer: because

        [t] Aristotle asked: which lemma?
        Suggestions: a | b

        [?] UNKNOWN: odd
        ");
    }
}
