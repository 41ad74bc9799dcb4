//! [`Transcript`]: a prover's run as a readable conversation (assistant text, tool calls, tool
//! results, the final message), in one shape whatever the prover's own stream format is.
//!
//! A prover that knows its stream format builds one with [`crate::Prover::transcript`] from
//! `logs/stdout.txt`; reports render it. Invariant: every text is what the prover printed
//! (clipped, never rewritten), so a report shows no more and no less than the run did.

use serde::{Deserialize, Serialize};

/// The longest text of one entry kept (longer texts are clipped with a marker).
pub const ENTRY_MAX_CHARS: usize = 4000;
/// The most entries kept (the rest are counted in [`Transcript::dropped`]).
pub const MAX_ENTRIES: usize = 500;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Session facts (model, tools, MCP servers).
    System,
    /// The prompt or another user message.
    User,
    /// Text the model wrote.
    Assistant,
    /// A tool call: `tool` is its name, `text` its input.
    ToolCall,
    /// A tool's result (`is_error` when the tool failed).
    ToolResult,
    /// The run's final message (stop reason, turns, cost as the prover reported them).
    Final,
}

/// One entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptEntry {
    pub kind: EntryKind,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
}

/// A run as a conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transcript {
    /// The stream format it was read from (e.g. `claude-code stream-json`).
    pub format: String,
    pub entries: Vec<TranscriptEntry>,
    /// Entries left out past [`MAX_ENTRIES`].
    #[serde(default)]
    pub dropped: usize,
}

impl Transcript {
    pub fn new(format: impl Into<String>) -> Self {
        Transcript {
            format: format.into(),
            ..Default::default()
        }
    }

    /// Append an entry (clipped; counted as dropped past [`MAX_ENTRIES`]).
    pub fn push(
        &mut self,
        kind: EntryKind,
        text: impl Into<String>,
        tool: Option<String>,
        is_error: bool,
    ) {
        if self.entries.len() >= MAX_ENTRIES {
            self.dropped += 1;
            return;
        }
        self.entries.push(TranscriptEntry {
            kind,
            text: clip(&text.into(), ENTRY_MAX_CHARS),
            tool,
            is_error,
        });
    }
}

/// `s` cut to `max` characters with a marker saying how much was left out.
pub fn clip(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let kept: String = s.chars().take(max).collect();
    format!("{kept}… [{} more characters]", n - max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_clipped_and_capped() {
        let mut t = Transcript::new("test");
        t.push(
            EntryKind::Assistant,
            "x".repeat(ENTRY_MAX_CHARS + 5),
            None,
            false,
        );
        assert!(t.entries[0].text.ends_with("… [5 more characters]"));
        for _ in 0..MAX_ENTRIES + 3 {
            t.push(EntryKind::ToolResult, "ok", Some("Bash".into()), false);
        }
        assert_eq!(t.entries.len(), MAX_ENTRIES);
        assert_eq!(t.dropped, 4);
    }
}
