//! Scripts: what the fake answers, turn by turn, in every dialect.
//!
//! A [`Script`] is an ordered list of [`Turn`]s. A request is answered with the turn at its
//! *turn index*, the number of assistant turns already in its conversation, so a retried
//! request gets the same answer again and parallel sessions each walk the script from the
//! start. Scripts are serde (JSON), e.g.
//!
//! ```json
//! {"turns": [
//!   {"kind": "shell", "command": "sed -i 's/sorry/rfl/' Main.lean"},
//!   {"kind": "text", "text": "done", "usage": {"input_tokens": 1200, "output_tokens": 40}}
//! ]}
//! ```
//!
//! A bare JSON array of turns is accepted as well ([`Script::from_json`]).

use serde::{Deserialize, Serialize};

/// Token usage the fake reports for one response.
///
/// `input_tokens` are the *uncached* input tokens (Anthropic's meaning). In the OpenAI dialects
/// the reported prompt/input tokens are `input_tokens + cache_read_tokens +
/// cache_creation_tokens`, with `cache_read_tokens` as the cached part (`cached_tokens`);
/// Responses also reports `input_tokens_details.cache_write_tokens`, chat completions has no
/// field for cache writes (they count as uncached input there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_creation_tokens: u64,
}

impl Default for Usage {
    /// 1000 uncached input tokens, 50 output tokens, no cache.
    fn default() -> Self {
        Usage {
            input_tokens: 1000,
            output_tokens: 50,
            cache_read_tokens: 0,
            cache_creation_tokens: 0,
        }
    }
}

impl Usage {
    /// The usage of a side reply (a request that offers no tools while the script wants a tool
    /// call): 100 input tokens, 5 output tokens.
    pub const SIDE: Usage = Usage {
        input_tokens: 100,
        output_tokens: 5,
        cache_read_tokens: 0,
        cache_creation_tokens: 0,
    };

    /// Usage with the given uncached input and output tokens and no cache.
    pub fn new(input_tokens: u64, output_tokens: u64) -> Usage {
        Usage {
            input_tokens,
            output_tokens,
            cache_read_tokens: 0,
            cache_creation_tokens: 0,
        }
    }

    /// The same usage with cache reads and cache writes.
    pub fn with_cache(mut self, read: u64, creation: u64) -> Usage {
        self.cache_read_tokens = read;
        self.cache_creation_tokens = creation;
        self
    }
}

/// What one turn answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    /// A call of the CLI's shell tool, whatever the request names it (`Bash`, `exec_command`,
    /// `bash`, …), with its command parameter set to `command`. A request that offers tools but
    /// no shell tool is answered with HTTP 500 and a message naming the offered tools.
    Shell { command: String },
    /// A call of the tool `name` exactly as given. `input` is the JSON arguments (a string for
    /// a freeform tool such as Codex's `apply_patch`).
    Tool {
        name: String,
        input: serde_json::Value,
    },
    /// Final assistant text; the stop reason is end of turn.
    Text { text: String },
    /// An HTTP error in the dialect's error shape. `body` replaces the whole default body;
    /// `message` only its message. `retry_after` (seconds) sets the `retry-after` header.
    Error {
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// Accept the request and never answer (the connection stays open until the fake stops).
    Hang,
    /// An unfinished answer. `cut = false`: a complete response whose stop reason is the
    /// output limit (`max_tokens` / `length` / `incomplete`) with partial `text`. `cut = true`:
    /// the response body ends mid-way (a stream without its final events, or a JSON body cut
    /// in the middle) and the connection is dropped.
    Truncated {
        #[serde(default = "default_truncated_text")]
        text: String,
        #[serde(default)]
        cut: bool,
    },
    /// Sampling: the i-th sample the fake serves for this turn (counted over requests and
    /// chat-completions choices, `n > 1` taking `n` at once) is `texts[i % len]`. The counter
    /// restarts with [`crate::ModelFake::set_script`].
    Sample { texts: Vec<String> },
    /// Sampling for agents: the i-th request the fake answers at this turn (counted with
    /// [`Reply::Sample`]'s counter) gets a shell call of `commands[i % len]` — repeated runs
    /// of one task see different answers, in request order.
    ShellSample { commands: Vec<String> },
}

/// The default partial text of [`Reply::Truncated`] (no code block).
pub fn default_truncated_text() -> String {
    "Let me work through this step by step. First, we unfold the definitions and".to_string()
}

/// One scripted turn: a reply and the usage reported with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    #[serde(flatten)]
    pub reply: Reply,
    /// Usage reported with this turn (default [`Usage::default`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

impl Turn {
    pub fn shell(command: impl Into<String>) -> Turn {
        Reply::Shell {
            command: command.into(),
        }
        .into()
    }

    pub fn tool(name: impl Into<String>, input: serde_json::Value) -> Turn {
        Reply::Tool {
            name: name.into(),
            input,
        }
        .into()
    }

    pub fn text(text: impl Into<String>) -> Turn {
        Reply::Text { text: text.into() }.into()
    }

    /// An error with the dialect's default body for `status`.
    pub fn error(status: u16) -> Turn {
        Reply::Error {
            status,
            message: None,
            body: None,
            retry_after: None,
        }
        .into()
    }

    /// HTTP 429 with a `retry-after` of `seconds`.
    pub fn rate_limited(seconds: u64) -> Turn {
        Reply::Error {
            status: 429,
            message: None,
            body: None,
            retry_after: Some(seconds),
        }
        .into()
    }

    pub fn hang() -> Turn {
        Reply::Hang.into()
    }

    /// A complete response stopped by the output limit, with the default partial text.
    pub fn truncated() -> Turn {
        Reply::Truncated {
            text: default_truncated_text(),
            cut: false,
        }
        .into()
    }

    /// A response body that ends mid-way (the connection is dropped).
    pub fn cut() -> Turn {
        Reply::Truncated {
            text: default_truncated_text(),
            cut: true,
        }
        .into()
    }

    pub fn sample<S: Into<String>>(texts: impl IntoIterator<Item = S>) -> Turn {
        Reply::Sample {
            texts: texts.into_iter().map(Into::into).collect(),
        }
        .into()
    }

    /// The i-th request at this turn gets a shell call of `commands[i % len]`.
    pub fn shell_sample<S: Into<String>>(commands: impl IntoIterator<Item = S>) -> Turn {
        Reply::ShellSample {
            commands: commands.into_iter().map(Into::into).collect(),
        }
        .into()
    }

    /// The same turn reporting `usage`.
    pub fn with_usage(mut self, usage: Usage) -> Turn {
        self.usage = Some(usage);
        self
    }

    /// The usage this turn reports.
    pub fn usage(&self) -> Usage {
        self.usage.unwrap_or_default()
    }

    /// The command of a [`Reply::Shell`] turn.
    pub fn shell_command(&self) -> Option<&str> {
        match &self.reply {
            Reply::Shell { command } => Some(command),
            _ => None,
        }
    }

    /// Whether answering this turn needs a tool offered by the request.
    pub(crate) fn needs_tool(&self) -> bool {
        matches!(
            self.reply,
            Reply::Shell { .. } | Reply::Tool { .. } | Reply::ShellSample { .. }
        )
    }
}

impl From<Reply> for Turn {
    fn from(reply: Reply) -> Turn {
        Turn { reply, usage: None }
    }
}

/// The text of side replies unless a script says otherwise.
pub const DEFAULT_SIDE_REPLY: &str = "Scripted session";

fn default_side_reply() -> String {
    DEFAULT_SIDE_REPLY.to_string()
}

/// Model ids listed by `GET /v1/models` unless a script says otherwise.
pub const DEFAULT_MODELS: &[&str] = &[
    "claude-opus-4-8",
    "claude-sonnet-4-6",
    "claude-haiku-4-5",
    "gpt-5.5",
    "magistral-medium-latest",
    "deepseek-v4-pro",
];

/// An ordered list of turns and how to answer past its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    pub turns: Vec<Turn>,
    /// Answer turn indices past the end with the last turn (default: HTTP 500 "script
    /// exhausted").
    #[serde(default)]
    pub repeat_last: bool,
    /// Text of side replies: requests that offer no tools while their turn wants a tool call
    /// (title and summary requests) get this text and do not move the script.
    #[serde(default = "default_side_reply")]
    pub side_reply: String,
    /// Model ids listed by `GET …/models` (default [`DEFAULT_MODELS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Milliseconds between streamed events (default 0: all at once).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub event_delay_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Default for Script {
    fn default() -> Self {
        Script::new(Vec::new())
    }
}

impl Script {
    pub fn new(turns: Vec<Turn>) -> Script {
        Script {
            turns,
            repeat_last: false,
            side_reply: default_side_reply(),
            models: Vec::new(),
            event_delay_ms: 0,
        }
    }

    /// The same script answering every index past the end with its last turn.
    pub fn repeating_last(mut self) -> Script {
        self.repeat_last = true;
        self
    }

    /// Parse a script: an object `{"turns": […], …}` or a bare array of turns.
    pub fn from_json(text: &str) -> Result<Script, ScriptError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ScriptError::Json(e.to_string()))?;
        let script = if value.is_array() {
            serde_json::from_value::<Vec<Turn>>(value).map(Script::new)
        } else {
            serde_json::from_value::<Script>(value)
        };
        script.map_err(|e| ScriptError::Json(e.to_string()))
    }

    /// The turn answering `index`, honouring [`Script::repeat_last`].
    pub fn turn_at(&self, index: usize) -> Option<&Turn> {
        match self.turns.get(index) {
            Some(turn) => Some(turn),
            None if self.repeat_last => self.turns.last(),
            None => None,
        }
    }

    /// The models `GET …/models` lists.
    pub fn model_ids(&self) -> Vec<String> {
        if self.models.is_empty() {
            DEFAULT_MODELS.iter().map(|m| m.to_string()).collect()
        } else {
            self.models.clone()
        }
    }
}

/// A script or policy that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("model-fake script is not valid JSON for a script: {0}; expected {{\"turns\": [{{\"kind\": \"shell\", \"command\": …}}, …]}} or a bare array of turns")]
    Json(String),
    #[error("model-fake policy: {path:?} is not a relative path to a .lean file outside .lake/ (use e.g. \"Main.lean\")")]
    BadLeanPath { path: String },
    #[error("model-fake policy: the text to replace must be on one line (sed works line by line); got {0:?}")]
    MultiLinePattern(String),
}

/// Helpers that compile common scenarios into turns. Every command works over the workdir's
/// `.lean` files (found from the current directory, `.lake/` pruned) and nothing else.
pub mod policy {
    use super::{Script, ScriptError, Turn};

    /// The `find` prefix that lists the workdir's `.lean` files, `.lake/` pruned.
    const LEAN_FILES: &str = "find . -name .lake -prune -o -type f -name '*.lean'";

    /// Quote `s` for a POSIX shell (single quotes).
    pub fn shell_quote(s: &str) -> String {
        format!("'{}'", s.replace('\'', r"'\''"))
    }

    /// Escape `s` as the replacement part of a sed `s/…/…/` command.
    fn sed_replacement(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '\\' | '/' | '&' => {
                    out.push('\\');
                    out.push(c);
                }
                '\n' => out.push_str("\\n"),
                _ => out.push(c),
            }
        }
        out
    }

    /// Escape `s` as a literal basic regular expression for sed.
    fn sed_literal(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            if matches!(c, '\\' | '/' | '.' | '*' | '[' | ']' | '^' | '$') {
                out.push('\\');
            }
            out.push(c);
        }
        out
    }

    fn sed_over_lean_files(expr: &str) -> String {
        format!("{LEAN_FILES} -exec sed -i -e {} {{}} +", shell_quote(expr))
    }

    /// Replace every whole-word `sorry` in every `.lean` file with `with`.
    pub fn replace_sorry(with: &str) -> Turn {
        Turn::shell(sed_over_lean_files(&format!(
            r"s/\<sorry\>/{}/g",
            sed_replacement(with)
        )))
    }

    /// Replace the literal text `from` with `to` in every `.lean` file (e.g. weaken a
    /// statement). `from` must be on one line.
    pub fn weaken_statement(from: &str, to: &str) -> Result<Turn, ScriptError> {
        if from.contains('\n') {
            return Err(ScriptError::MultiLinePattern(from.to_string()));
        }
        Ok(Turn::shell(sed_over_lean_files(&format!(
            "s/{}/{}/g",
            sed_literal(from),
            sed_replacement(to)
        ))))
    }

    /// Append `text` and a newline to the `.lean` file `file` (relative to the workdir), e.g.
    /// an `axiom`.
    pub fn append(file: &str, text: &str) -> Result<Turn, ScriptError> {
        let path = std::path::Path::new(file);
        let ok = file.ends_with(".lean")
            && path.is_relative()
            && path.components().all(|c| match c {
                std::path::Component::Normal(part) => part != ".lake",
                std::path::Component::CurDir => true,
                _ => false,
            });
        if !ok {
            return Err(ScriptError::BadLeanPath {
                path: file.to_string(),
            });
        }
        Ok(Turn::shell(format!(
            "printf '%s\\n' {} >> {}",
            shell_quote(text),
            shell_quote(file)
        )))
    }

    /// Every request hangs (never answered).
    pub fn never_answer() -> Script {
        Script::new(vec![Turn::hang()]).repeating_last()
    }

    /// Every request is refused with HTTP 401 in the dialect's authentication-error shape.
    pub fn reject_auth() -> Script {
        Script::new(vec![Turn::error(401)]).repeating_last()
    }

    /// The usual happy path: replace every `sorry` with `with`, then end with `final_text`.
    pub fn solve(with: &str, final_text: &str) -> Script {
        Script::new(vec![replace_sorry(with), Turn::text(final_text)])
    }

    /// Sampling for pass@k: the i-th sample is `texts[i % len]`.
    pub fn sample<S: Into<String>>(texts: impl IntoIterator<Item = S>) -> Script {
        Script::new(vec![Turn::sample(texts)]).repeating_last()
    }

    /// Wrap Lean code in a ```lean block, as pass@k samplers expect.
    pub fn lean_block(code: &str) -> String {
        format!("```lean\n{}\n```", code.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::policy::*;
    use super::*;
    use std::process::Command;

    fn run_in(dir: &std::path::Path, turn: &Turn) {
        let cmd = turn.shell_command().expect("a shell turn");
        let out = Command::new("bash")
            .arg("-c")
            .arg(cmd)
            .current_dir(dir)
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn json_round_trip_and_bare_array() {
        let script = Script::new(vec![
            Turn::shell("ls").with_usage(Usage::new(7, 3).with_cache(5, 1)),
            Turn::text("done"),
            Turn::rate_limited(2),
            Turn::hang(),
            Turn::cut(),
            Turn::sample(["a", "b"]),
            Turn::tool(
                "mcp__lean-lsp__lean_goal",
                serde_json::json!({"file": "A.lean"}),
            ),
        ]);
        let text = serde_json::to_string(&script).expect("ser");
        assert_eq!(Script::from_json(&text).expect("de"), script);
        let bare = r#"[{"kind":"shell","command":"ls"},{"kind":"text","text":"ok","usage":{"output_tokens":9}}]"#;
        let s = Script::from_json(bare).expect("bare array");
        assert_eq!(s.turns.len(), 2);
        assert_eq!(
            s.turns[1].usage(),
            Usage {
                output_tokens: 9,
                ..Usage::default()
            }
        );
        assert!(!s.repeat_last);
        assert_eq!(s.side_reply, DEFAULT_SIDE_REPLY);
        let err = Script::from_json(r#"{"turns":[{"kind":"nope"}]}"#).expect_err("bad kind");
        assert!(
            err.to_string().contains("not valid JSON for a script"),
            "{err}"
        );
    }

    #[test]
    fn turn_at_honours_repeat_last() {
        let s = Script::new(vec![Turn::text("a"), Turn::text("b")]);
        assert!(s.turn_at(2).is_none());
        let s = s.repeating_last();
        assert_eq!(s.turn_at(5), Some(&Turn::text("b")));
        assert!(Script::default().repeating_last().turn_at(0).is_none());
    }

    #[test]
    fn replace_sorry_edits_whole_words_outside_lake() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        std::fs::create_dir_all(d.join("sub")).expect("mk");
        std::fs::create_dir_all(d.join(".lake/pkg")).expect("mk");
        std::fs::write(
            d.join("Main.lean"),
            "theorem a : True := by sorry\n-- sorryAx stays, notsorry stays\ndef b := sorry\n",
        )
        .expect("w");
        std::fs::write(d.join("sub/B.lean"), "example : 1 = 1 := by\n  sorry\n").expect("w");
        std::fs::write(d.join(".lake/pkg/C.lean"), "sorry\n").expect("w");
        std::fs::write(d.join("notes.txt"), "sorry\n").expect("w");
        run_in(d, &replace_sorry("first | rfl & trivial / x\\y"));
        let main = std::fs::read_to_string(d.join("Main.lean")).expect("r");
        assert_eq!(
            main,
            "theorem a : True := by first | rfl & trivial / x\\y\n-- sorryAx stays, notsorry stays\ndef b := first | rfl & trivial / x\\y\n"
        );
        let b = std::fs::read_to_string(d.join("sub/B.lean")).expect("r");
        assert!(b.contains("  first | rfl"), "{b}");
        assert_eq!(
            std::fs::read_to_string(d.join(".lake/pkg/C.lean")).expect("r"),
            "sorry\n"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("notes.txt")).expect("r"),
            "sorry\n"
        );
    }

    #[test]
    fn weaken_statement_replaces_literal_text() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        std::fs::write(
            d.join("A.lean"),
            "theorem t (a b : ℕ) : a * b = b * a := by sorry\ntheorem u : [1].length = 1 := by sorry\n",
        )
        .expect("w");
        run_in(d, &weaken_statement("a * b = b * a", "True").expect("ok"));
        run_in(d, &weaken_statement("[1].length = 1", "1 = 1").expect("ok"));
        assert_eq!(
            std::fs::read_to_string(d.join("A.lean")).expect("r"),
            "theorem t (a b : ℕ) : True := by sorry\ntheorem u : 1 = 1 := by sorry\n"
        );
        assert!(weaken_statement("a\nb", "c").is_err());
    }

    #[test]
    fn append_adds_a_line_and_refuses_bad_paths() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        std::fs::write(d.join("A.lean"), "theorem t : True := trivial\n").expect("w");
        run_in(
            d,
            &append("A.lean", "axiom cheat : ∀ p : Prop, p -- it's a 'cheat'").expect("ok"),
        );
        assert_eq!(
            std::fs::read_to_string(d.join("A.lean")).expect("r"),
            "theorem t : True := trivial\naxiom cheat : ∀ p : Prop, p -- it's a 'cheat'\n"
        );
        for bad in [
            "/etc/A.lean",
            "../A.lean",
            ".lake/A.lean",
            "x/.lake/A.lean",
            "A.txt",
        ] {
            assert!(append(bad, "x").is_err(), "{bad}");
        }
        assert!(append("./sub/A.lean", "x").is_ok());
    }

    #[test]
    fn scenario_scripts() {
        assert!(never_answer().repeat_last);
        assert_eq!(never_answer().turn_at(3), Some(&Turn::hang()));
        assert_eq!(reject_auth().turn_at(9), Some(&Turn::error(401)));
        let s = solve("rfl", "done");
        assert_eq!(s.turns.len(), 2);
        assert_eq!(
            lean_block("theorem x : True := trivial\n"),
            "```lean\ntheorem x : True := trivial\n```"
        );
    }
}
