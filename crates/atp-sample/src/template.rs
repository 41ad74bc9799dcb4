//! Prompt templates: atp's built-in whole-proof prompts (per file and per theorem), a user's
//! `--template FILE`, and the self-correction prompt. `{{name}}` placeholders are replaced;
//! an unknown placeholder is an error at load time, not a silent blank in every prompt.
//!
//! The template hash recorded in result.json is sha256 over the prompt template and (when
//! self-correction rounds are on) the correction template, so a paper can name exactly what
//! the model was asked.

use sha2::{Digest, Sha256};

use crate::splice::{SpliceMode, Unit};

/// Placeholders a prompt template may use.
pub const PLACEHOLDERS: &[&str] = &["file", "source", "theorem", "name", "instructions"];

/// The built-in prompt for whole-file splicing.
pub const WHOLE_FILE: &str = "\
Complete the following Lean 4 file (Lean 4 with Mathlib): replace every `sorry` with a proof.

File `{{file}}`:

```lean
{{source}}
```

Keep every import, theorem statement and definition exactly as written. Do not use `sorry`, \
`admit`, `axiom`, `native_decide` or `set_option debug.*`.
Answer with the complete Lean 4 file in one ```lean code block.
{{instructions}}";

/// The built-in prompt for per-theorem splicing.
pub const ONE_THEOREM: &str = "\
Complete the proof of `{{name}}` in the Lean 4 file below (Lean 4 with Mathlib).

File `{{file}}`:

```lean
{{source}}
```

The declaration to prove:

```lean
{{theorem}}
```

Keep its statement exactly as written. Do not use `sorry`, `admit`, `axiom`, `native_decide` or \
`set_option debug.*`.
Answer with the complete declaration `{{name}}` (statement and proof; helper lemmas may come \
before it) in one ```lean code block.
{{instructions}}";

/// The built-in self-correction prompt (`{{errors}}`: the verifier's findings and Lean's output).
pub const CORRECTION: &str = "\
The Lean 4 checker rejected that answer:

```
{{errors}}
```

Fix the proof. Answer with the complete corrected code in one ```lean code block.";

/// A bad template.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("--template {path}: cannot read: {message}")]
    Read { path: String, message: String },
    #[error("{origin}: unknown placeholder {{{{{name}}}}} — the placeholders are {{{{file}}}}, {{{{source}}}}, {{{{theorem}}}}, {{{{name}}}}, {{{{instructions}}}}")]
    Unknown { origin: String, name: String },
    #[error("{origin}: the template never shows the task (use {{{{source}}}} or {{{{theorem}}}})")]
    NoTask { origin: String },
}

/// A prompt template and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub text: String,
    /// `builtin:whole`, `builtin:theorem` or the file's path.
    pub origin: String,
}

fn placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        let after = &rest[i + 2..];
        match after.find("}}") {
            Some(j) => {
                out.push(after[..j].trim().to_string());
                rest = &after[j + 2..];
            }
            None => break,
        }
    }
    out
}

impl Template {
    /// The built-in template for `mode`.
    pub fn builtin(mode: SpliceMode) -> Template {
        match mode {
            SpliceMode::Whole => Template {
                text: WHOLE_FILE.into(),
                origin: "builtin:whole".into(),
            },
            SpliceMode::Theorem => Template {
                text: ONE_THEOREM.into(),
                origin: "builtin:theorem".into(),
            },
        }
    }

    /// A user's template file, checked.
    pub fn from_file(path: &std::path::Path) -> Result<Template, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|e| TemplateError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let t = Template {
            text,
            origin: path.display().to_string(),
        };
        t.check()?;
        Ok(t)
    }

    /// Every placeholder known, and the task shown.
    pub fn check(&self) -> Result<(), TemplateError> {
        let names = placeholders(&self.text);
        if let Some(bad) = names.iter().find(|n| !PLACEHOLDERS.contains(&n.as_str())) {
            return Err(TemplateError::Unknown {
                origin: self.origin.clone(),
                name: bad.clone(),
            });
        }
        if !names.iter().any(|n| n == "source" || n == "theorem") {
            return Err(TemplateError::NoTask {
                origin: self.origin.clone(),
            });
        }
        Ok(())
    }

    /// The prompt for `unit` of `source` (the file's task text), with the user's instructions
    /// (appended when the template has no `{{instructions}}`).
    pub fn render(&self, unit: &Unit, source: &str, instructions: Option<&str>) -> String {
        let instr = instructions
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| format!("\n# Additional instructions\n\n{s}\n"))
            .unwrap_or_default();
        let (theorem, name) = match &unit.decl {
            Some(d) => (
                d.text.clone(),
                d.name.clone().unwrap_or_else(|| d.label.clone()),
            ),
            None => (String::new(), unit.file.clone()),
        };
        let has_instr = placeholders(&self.text).iter().any(|n| n == "instructions");
        let mut out = String::with_capacity(self.text.len() + source.len());
        let mut rest = self.text.as_str();
        while let Some(i) = rest.find("{{") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let Some(j) = after.find("}}") else {
                out.push_str(&rest[i..]);
                rest = "";
                break;
            };
            match after[..j].trim() {
                "file" => out.push_str(&unit.file),
                "source" => out.push_str(source.trim_end()),
                "theorem" => out.push_str(theorem.trim_end()),
                "name" => out.push_str(&name),
                "instructions" => out.push_str(&instr),
                other => {
                    out.push_str("{{");
                    out.push_str(other);
                    out.push_str("}}");
                }
            }
            rest = &after[j + 2..];
        }
        out.push_str(rest);
        if !has_instr {
            out.push_str(&instr);
        }
        out.trim_end().to_string() + "\n"
    }
}

/// The self-correction prompt for `errors`.
pub fn correction(errors: &str) -> String {
    CORRECTION.replace("{{errors}}", errors.trim_end())
}

/// sha256 (hex) of the prompt template, and of the correction template when `rounds > 0`.
pub fn template_hash(t: &Template, rounds: u32) -> String {
    let mut h = Sha256::new();
    h.update(t.text.as_bytes());
    if rounds > 0 {
        h.update(b"\0");
        h.update(CORRECTION.as_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit() -> Unit {
        Unit {
            file: "Main.lean".into(),
            decl: None,
        }
    }

    #[test]
    fn the_builtin_prompt_shows_the_file_and_asks_for_a_lean_block() {
        let t = Template::builtin(SpliceMode::Whole);
        t.check().expect("builtin is valid");
        let p = t.render(
            &unit(),
            "theorem t : True := by sorry\n",
            Some("Prefer simp."),
        );
        insta::assert_snapshot!(p);
        Template::builtin(SpliceMode::Theorem)
            .check()
            .expect("valid");
    }

    #[test]
    fn unknown_placeholders_and_templates_without_the_task_are_refused() {
        let t = Template {
            text: "Prove {{sourc}}".into(),
            origin: "t.txt".into(),
        };
        assert_eq!(
            t.check().expect_err("typo").to_string(),
            "t.txt: unknown placeholder {{sourc}} — the placeholders are {{file}}, {{source}}, {{theorem}}, {{name}}, {{instructions}}"
        );
        let t = Template {
            text: "Prove it.".into(),
            origin: "t.txt".into(),
        };
        assert!(t
            .check()
            .expect_err("no task")
            .to_string()
            .contains("never shows the task"));
    }

    #[test]
    fn instructions_are_appended_when_the_template_has_no_slot_and_the_hash_covers_rounds() {
        let t = Template {
            text: "{{source}}".into(),
            origin: "t".into(),
        };
        assert_eq!(
            t.render(&unit(), "X", Some("Be brief.")),
            "X\n# Additional instructions\n\nBe brief.\n"
        );
        assert_eq!(t.render(&unit(), "X", None), "X\n");
        assert_ne!(template_hash(&t, 0), template_hash(&t, 1));
        assert_eq!(template_hash(&t, 1), template_hash(&t, 3));
        assert!(correction("E").contains("```\nE\n```"));
    }
}
