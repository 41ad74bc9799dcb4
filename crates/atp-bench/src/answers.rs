//! Answer keys: the official answers of definition holes (`--answers FILE`, or the key a
//! download extracted, e.g. PutnamBench's).
//!
//! The format (TOML, `atp.answers/1`):
//!
//! ```toml
//! schema = "atp.answers/1"          # optional
//! source = "where the answers come from"   # optional, for the record
//!
//! [answers]
//! # full Lean name of the definition (namespace included) = the official answer, a Lean term
//! putnam_1962_a5_solution = "fun n : ℕ => n * (n + 1) * 2^(n - 2)"
//! "Foo.bar_solution" = "(3 : ℕ)"
//! ```
//!
//! Each answer is checked in the verification sandbox against the prover's filled definition
//! (see `atp_verify::holes`); a hole with no entry is `unchecked` and not counted as solved.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::BenchError;

/// The schema tag of an answer key.
pub const ANSWERS_SCHEMA: &str = "atp.answers/1";
/// The file name a download writes its extracted key to.
pub const ANSWERS_FILE: &str = "answers.toml";

/// An answer key: full name → official answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerKey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default)]
    pub answers: BTreeMap<String, String>,
}

impl AnswerKey {
    /// Read and check a key.
    pub fn load(path: &Path) -> Result<AnswerKey, BenchError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BenchError::bad_file(path, format!("cannot read the answer key: {e}")))?;
        let key: AnswerKey = toml::from_str(&text).map_err(|e| {
            BenchError::bad_file(
                path,
                format!("not an answer key ({e}); expected `[answers]` with `name = \"Lean term\"` entries"),
            )
        })?;
        if let Some(s) = &key.schema {
            if s != ANSWERS_SCHEMA {
                return Err(BenchError::bad_file(
                    path,
                    format!("schema {s:?} is not {ANSWERS_SCHEMA:?}"),
                ));
            }
        }
        for (name, answer) in &key.answers {
            if answer.trim().is_empty() {
                return Err(BenchError::bad_file(
                    path,
                    format!(
                        "the answer of `{name}` is empty — give a Lean term or remove the entry"
                    ),
                ));
            }
        }
        Ok(key)
    }

    /// Write the key (atomically).
    pub fn save(&self, path: &Path) -> Result<(), BenchError> {
        let mut text = String::from(
            "# atp answer key: the official answer of each definition hole (`:= sorry` in the task),\n# as a Lean term, keyed by the definition's full name. Checked in the verification sandbox.\n",
        );
        text.push_str(&toml::to_string(self).map_err(|e| BenchError::output(path, e))?);
        crate::util::write_atomic(path, text.as_bytes()).map_err(|e| BenchError::output(path, e))
    }

    /// The answers for the holes of one task's sources (only names the key has).
    pub fn for_sources(&self, sources: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for hole in atp_verify::holes::find_holes(sources) {
            if let Some(a) = self.answers.get(&hole.name) {
                out.insert(hole.name, a.clone());
            }
        }
        out
    }

    /// Add the answers written PutnamBench-style in `src`: the comment line right after each
    /// hole (`abbrev x_solution : T := sorry` then `-- ANSWER`).
    pub fn extract_comments(&mut self, rel: &str, src: &str) -> usize {
        let lines: Vec<&str> = src.lines().collect();
        let one = BTreeMap::from([(rel.to_string(), src.to_string())]);
        let mut n = 0;
        for atp_verify::holes::FoundHole { line, name, .. } in atp_verify::holes::find_holes(&one) {
            // The hole ends on the first line from its name holding `sorry`.
            let Some(end) = (line.saturating_sub(1)..lines.len()).find(|&i| {
                atp_lean::lexer::contains_sorry(lines[i].split("--").next().unwrap_or(""))
            }) else {
                continue;
            };
            let Some(next) = lines.get(end + 1) else {
                continue;
            };
            let Some(comment) = next.trim_start().strip_prefix("--") else {
                continue;
            };
            let answer = comment.trim();
            if answer.is_empty() || next.trim_start().starts_with("---") {
                continue;
            }
            self.answers.insert(name, answer.to_string());
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn putnam_style_comments_become_answers() {
        let src = "import Mathlib\n\nabbrev putnam_1962_a5_solution : ℕ → ℕ := sorry\n-- fun n : ℕ => n * (n + 1) * 2^(n - 2)\n/--\nEvaluate\n-/\ntheorem putnam_1962_a5 : ∀ n ≥ 2, putnam_1962_a5_solution n = 0 :=\nsorry\n\nabbrev other_solution : ℕ := sorry\n--3\n";
        let mut k = AnswerKey::default();
        assert_eq!(k.extract_comments("a.lean", src), 2);
        assert_eq!(
            k.answers["putnam_1962_a5_solution"],
            "fun n : ℕ => n * (n + 1) * 2^(n - 2)"
        );
        assert_eq!(k.answers["other_solution"], "3");
        let only = k.for_sources(&BTreeMap::from([(
            "b.lean".to_string(),
            "abbrev other_solution : ℕ := sorry\n".to_string(),
        )]));
        assert_eq!(only.len(), 1);
    }

    #[test]
    fn a_key_round_trips_and_bad_keys_are_named() {
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("answers.toml");
        let k = AnswerKey {
            schema: Some(ANSWERS_SCHEMA.into()),
            source: Some("test".into()),
            answers: BTreeMap::from([("A.b".to_string(), "(2 : ℕ)".to_string())]),
        };
        k.save(&p).expect("save");
        assert_eq!(AnswerKey::load(&p).expect("load"), k);
        std::fs::write(&p, "[answers]\nx = 3\n").expect("w");
        let e = AnswerKey::load(&p).expect_err("not a string");
        assert!(e.to_string().contains("not an answer key"), "{e}");
        std::fs::write(&p, "[answers]\nx = \" \"\n").expect("w");
        assert!(AnswerKey::load(&p).is_err());
    }
}
