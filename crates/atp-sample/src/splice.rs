//! Splicing a model's code into the task: per file (the code block is the whole file) or per
//! theorem (the code block's declaration replaces the one with the `sorry`).
//!
//! Invariant: splicing only ever replaces text of the target files; everything else of the
//! task (other files, the lakefile, the toolchain) is the task's. Whether the result is honest
//! is the verifier's business (a weakened statement spliced in is refused there).

use std::collections::BTreeMap;

use atp_lean::source::{parse, Command, SourceFile};

/// How answers are spliced into the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpliceMode {
    /// One prompt per target file; the answer's code block replaces the whole file.
    #[default]
    Whole,
    /// One prompt per declaration with a `sorry`; the answer's declaration of the same name
    /// (and helper declarations before it) replaces that declaration.
    Theorem,
}

impl SpliceMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SpliceMode::Whole => "whole",
            SpliceMode::Theorem => "theorem",
        }
    }
}

/// A declaration of the task that has a `sorry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclRef {
    /// `theorem Fixture.add_zero'`, `example #2`.
    pub label: String,
    /// The name as written (`None` for an `example`).
    pub name: Option<String>,
    /// For an `example`: its position among the file's examples (0-based).
    pub example_ordinal: Option<usize>,
    /// The declaration's source text in the task (with its `sorry`).
    pub text: String,
}

/// One thing a model is asked for: a whole file, or one declaration of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Project-relative path of the file.
    pub file: String,
    pub decl: Option<DeclRef>,
}

impl Unit {
    /// A short label for logs and records: `Main.lean` or `Main.lean: theorem foo`.
    pub fn label(&self) -> String {
        match &self.decl {
            None => self.file.clone(),
            Some(d) => format!("{}: {}", self.file, d.label),
        }
    }
}

/// Why an answer cannot be spliced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpliceError {
    #[error("the answer's code has no declaration `{0}`")]
    Missing(String),
    #[error("the answer's code has no `example` to put in place of {0}")]
    NoExample(String),
    #[error("internal: {0}")]
    Internal(String),
}

fn span(src: &SourceFile, c: &Command) -> std::ops::Range<usize> {
    let first = &src.tokens[c.tokens.start];
    let last = &src.tokens[c.tokens.end.saturating_sub(1).max(c.tokens.start)];
    first.start..last.end
}

fn last_component(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

fn is_decl(c: &Command) -> bool {
    c.name.is_some() || c.keyword == "example" || c.keyword == "instance"
}

/// The units of `files` (path → text) for `mode`: every file with a `sorry` (whole), or every
/// declaration whose body has one (theorem).
pub fn units(files: &BTreeMap<String, String>, mode: SpliceMode) -> Vec<Unit> {
    let mut out = Vec::new();
    for (file, text) in files {
        if !atp_lean::lexer::contains_sorry(text) {
            continue;
        }
        match mode {
            SpliceMode::Whole => out.push(Unit {
                file: file.clone(),
                decl: None,
            }),
            SpliceMode::Theorem => {
                let src = parse(text);
                let mut examples = 0usize;
                for c in &src.commands {
                    let ordinal = (c.keyword == "example").then(|| {
                        examples += 1;
                        examples - 1
                    });
                    if !c.body_has_sorry || !is_decl(c) {
                        continue;
                    }
                    let label = match (&c.full_name, ordinal) {
                        (Some(n), _) => format!("{} {n}", c.kind()),
                        (None, Some(k)) => format!("example #{}", k + 1),
                        (None, None) => c.label(),
                    };
                    out.push(Unit {
                        file: file.clone(),
                        decl: Some(DeclRef {
                            label,
                            name: c.name.clone(),
                            example_ordinal: ordinal,
                            text: text[span(&src, c)].to_string(),
                        }),
                    });
                }
            }
        }
    }
    out
}

/// The original file's leading `import` lines, when `code` has none of its own.
fn restore_header(original: &str, code: &str) -> String {
    let theirs = parse(code);
    if !theirs.imports.is_empty() {
        return code.to_string();
    }
    let ours = parse(original);
    let Some(end) = ours
        .commands
        .iter()
        .filter(|c| c.keyword == "import")
        .map(|c| span(&ours, c).end)
        .max()
    else {
        return code.to_string();
    };
    format!("{}\n\n{}", &original[..end], code)
}

/// The text that replaces `target` taken from `code`: the declaration matching it and the
/// declarations before it that the task does not already have (helpers).
fn replacement(original: &SourceFile, target: &DeclRef, code: &str) -> Result<String, SpliceError> {
    let src = parse(code);
    let decls: Vec<&Command> = src.commands.iter().filter(|c| is_decl(c)).collect();
    let pos = match (&target.name, target.example_ordinal) {
        (Some(n), _) => decls.iter().position(|c| {
            c.name
                .as_deref()
                .is_some_and(|m| m == n || last_component(m) == last_component(n))
        }),
        (None, Some(k)) => {
            let examples: Vec<usize> = decls
                .iter()
                .enumerate()
                .filter(|(_, c)| c.keyword == "example")
                .map(|(i, _)| i)
                .collect();
            match examples.as_slice() {
                [] => return Err(SpliceError::NoExample(target.label.clone())),
                [only] => Some(*only),
                many => many.get(k).copied().or(many.last().copied()),
            }
        }
        (None, None) => None,
    }
    .ok_or_else(|| SpliceError::Missing(target.label.clone()))?;
    let existing: Vec<&str> = original
        .commands
        .iter()
        .filter_map(|c| c.name.as_deref().map(last_component))
        .collect();
    let mut parts = Vec::new();
    for c in &decls[..pos] {
        let known = c
            .name
            .as_deref()
            .is_some_and(|n| existing.contains(&last_component(n)));
        if !known && c.keyword != "example" {
            parts.push(&code[span(&src, c)]);
        }
    }
    parts.push(&code[span(&src, decls[pos])]);
    Ok(parts.join("\n\n"))
}

/// Splice the answers for one file into its `original` text: `whole` is the code of a whole-file
/// unit; `decls` pairs each declaration unit of the file with its code.
pub fn splice_file(
    original: &str,
    whole: Option<&str>,
    decls: &[(&DeclRef, &str)],
) -> Result<String, SpliceError> {
    if let Some(code) = whole {
        return Ok(restore_header(original, code));
    }
    let src = parse(original);
    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    let mut examples = 0usize;
    for c in &src.commands {
        let ordinal = (c.keyword == "example").then(|| {
            examples += 1;
            examples - 1
        });
        for (d, code) in decls {
            let same = match (&d.name, d.example_ordinal) {
                (Some(n), _) => c.name.as_deref() == Some(n.as_str()),
                (None, Some(k)) => ordinal == Some(k),
                _ => false,
            };
            if same && c.body_has_sorry {
                edits.push((span(&src, c), replacement(&src, d, code)?));
            }
        }
    }
    if edits.len() != decls.len() {
        return Err(SpliceError::Internal(format!(
            "{} of {} declarations found in the task file",
            edits.len(),
            decls.len()
        )));
    }
    edits.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    let mut out = original.to_string();
    for (r, text) in edits {
        out.replace_range(r, &text);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK: &str = "import Mathlib\n\nnamespace Fixture\n\ntheorem add_zero' (n : ℕ) : n + 0 = n := by\n  sorry\n\ntheorem two_mul' (n : ℕ) : 2 * n = n + n := by\n  sorry\n\nexample : (2 : ℕ) + 2 = 4 := by\n  sorry\n\nend Fixture\n";

    fn files() -> BTreeMap<String, String> {
        [("Fixture.lean".to_string(), TASK.to_string())].into()
    }

    #[test]
    fn units_are_files_or_declarations_with_sorry() {
        let w = units(&files(), SpliceMode::Whole);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].label(), "Fixture.lean");
        let t = units(&files(), SpliceMode::Theorem);
        let labels: Vec<String> = t.iter().map(Unit::label).collect();
        assert_eq!(
            labels,
            vec![
                "Fixture.lean: theorem Fixture.add_zero'",
                "Fixture.lean: theorem Fixture.two_mul'",
                "Fixture.lean: example #1"
            ]
        );
        assert!(t[0]
            .decl
            .as_ref()
            .expect("decl")
            .text
            .starts_with("theorem add_zero'"));
        assert!(t[0].decl.as_ref().expect("decl").text.ends_with("sorry"));
    }

    #[test]
    fn whole_file_answers_get_the_imports_back_when_they_dropped_them() {
        let code =
            "namespace Fixture\ntheorem add_zero' (n : ℕ) : n + 0 = n := by simp\nend Fixture\n";
        let out = splice_file(TASK, Some(code), &[]).expect("splice");
        assert!(
            out.starts_with("import Mathlib\n\nnamespace Fixture"),
            "{out}"
        );
        let full = "import Mathlib\ntheorem x : True := trivial\n";
        assert_eq!(splice_file(TASK, Some(full), &[]).expect("splice"), full);
    }

    #[test]
    fn theorem_answers_replace_their_declaration_with_helpers_before_it() {
        let t = units(&files(), SpliceMode::Theorem);
        let d0 = t[0].decl.as_ref().expect("d");
        let d2 = t[2].decl.as_ref().expect("d");
        // The model repeats the whole file, adds a helper, proves add_zero'.
        let a0 = "import Mathlib\nnamespace Fixture\nlemma helper (n : ℕ) : n + 0 = n := Nat.add_zero n\ntheorem two_mul' (n : ℕ) : 2 * n = n + n := by sorry\ntheorem add_zero' (n : ℕ) : n + 0 = n := by\n  exact helper n\nend Fixture";
        let a2 = "example : (2 : ℕ) + 2 = 4 := by norm_num";
        let out = splice_file(TASK, None, &[(d0, a0), (d2, a2)]).expect("splice");
        assert!(out.contains("lemma helper (n : ℕ) : n + 0 = n := Nat.add_zero n\n\ntheorem add_zero' (n : ℕ) : n + 0 = n := by\n  exact helper n\n"), "{out}");
        assert!(
            out.contains("example : (2 : ℕ) + 2 = 4 := by norm_num\n"),
            "{out}"
        );
        // two_mul' is untouched (still the task's sorry), and the file keeps its frame.
        assert!(
            out.contains("theorem two_mul' (n : ℕ) : 2 * n = n + n := by\n  sorry"),
            "{out}"
        );
        assert!(out.starts_with("import Mathlib\n\nnamespace Fixture\n"));
        assert!(out.ends_with("end Fixture\n"));
        assert_eq!(out.matches("two_mul'").count(), 1);
    }

    #[test]
    fn a_missing_declaration_is_a_reason_not_a_panic() {
        let t = units(&files(), SpliceMode::Theorem);
        let d = t[1].decl.as_ref().expect("d");
        let e = splice_file(TASK, None, &[(d, "theorem other : True := trivial")])
            .expect_err("missing");
        assert_eq!(
            e.to_string(),
            "the answer's code has no declaration `theorem Fixture.two_mul'`"
        );
    }
}
