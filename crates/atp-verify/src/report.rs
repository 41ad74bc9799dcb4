//! Verdict types: violations, the per-file summary and the [`VerificationReport`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Why a candidate is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// A `sorry`/`admit`/`sorryAx` token in the source, or Lean's "declaration uses sorry".
    Sorry,
    /// A file did not compile (an `error:` message or a non-zero exit).
    CompileError,
    /// The axiom probe found an axiom outside `propext`, `Classical.choice`, `Quot.sound`.
    NonStandardAxiom,
    /// The checker reported nothing for a file's declarations (no `.olean`: the file did not
    /// compile, or stopped early, e.g. at `#exit`).
    NotChecked,
    /// The checker's kernel replay refused a declaration of the candidate.
    KernelRejected,
    /// A theorem/example/definition of the original is missing from the candidate.
    StatementMissing,
    /// A statement (or a non-proof declaration) differs from the original.
    StatementChanged,
    /// The scope of a statement (namespace, `open`, `variable`, `universe`, imports) changed.
    ContextChanged,
    /// A new `axiom` declaration.
    Axiom,
    /// `set_option debug.*` (e.g. `debug.skipKernelTC`, `debug.byAsSorry`).
    DebugOption,
    /// `@[implemented_by]`.
    ImplementedBy,
    /// `@[extern]` / `@[export]`.
    Extern,
    /// `@[csimp]`.
    Csimp,
    /// `@[init]` / `@[builtin_init]` / `initialize`.
    InitHook,
    /// `unsafe` declarations or terms (`unsafeCast`, …).
    Unsafe,
    /// `#exit`.
    Exit,
    /// Code run at elaboration time that can change the environment (`run_cmd`, `elab`, `#eval`…).
    Metaprogramming,
    /// A new `macro`/`syntax`/`notation`/`macro_rules`.
    SyntaxExtension,
    /// A new instance (can change how an unchanged statement elaborates).
    NewInstance,
    /// `native_decide` / `Lean.ofReduceBool` / `Lean.trustCompiler`.
    NativeDecide,
    /// A new declaration whose name can capture a name used by a checked statement.
    Shadowing,
    /// An import that is neither a project file nor a trusted library.
    UnknownImport,
    /// The verifier's time budget elapsed.
    Timeout,
    /// A symbolic link, special file or oversized file in the candidate's workdir (never read;
    /// moved aside).
    UnsafeFile,
    /// A place where atp's reading of the source may differ from Lean's (an ambiguous string,
    /// a command syntax without a leading keyword, tokens outside any command): refused rather
    /// than guessed.
    SourceUnclear,
    /// `prelude`, or a `module` header the original does not have.
    UnsafeHeader,
    /// A declaration name that appears twice, or one reserved for the verifier.
    DuplicateDeclaration,
    /// A definition hole (`:= sorry` in the original) filled with a value Lean proved different
    /// from the official answer of the answer key.
    WrongAnswer,
}

impl ViolationKind {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationKind::Sorry => "sorry",
            ViolationKind::CompileError => "compile_error",
            ViolationKind::NonStandardAxiom => "non_standard_axiom",
            ViolationKind::NotChecked => "not_checked",
            ViolationKind::KernelRejected => "kernel_rejected",
            ViolationKind::StatementMissing => "statement_missing",
            ViolationKind::StatementChanged => "statement_changed",
            ViolationKind::ContextChanged => "context_changed",
            ViolationKind::Axiom => "axiom",
            ViolationKind::DebugOption => "debug_option",
            ViolationKind::ImplementedBy => "implemented_by",
            ViolationKind::Extern => "extern",
            ViolationKind::Csimp => "csimp",
            ViolationKind::InitHook => "init_hook",
            ViolationKind::Unsafe => "unsafe",
            ViolationKind::Exit => "exit",
            ViolationKind::Metaprogramming => "metaprogramming",
            ViolationKind::SyntaxExtension => "syntax_extension",
            ViolationKind::NewInstance => "new_instance",
            ViolationKind::NativeDecide => "native_decide",
            ViolationKind::Shadowing => "shadowing",
            ViolationKind::UnknownImport => "unknown_import",
            ViolationKind::Timeout => "timeout",
            ViolationKind::UnsafeFile => "unsafe_file",
            ViolationKind::SourceUnclear => "source_unclear",
            ViolationKind::UnsafeHeader => "unsafe_header",
            ViolationKind::DuplicateDeclaration => "duplicate_declaration",
            ViolationKind::WrongAnswer => "wrong_answer",
        }
    }

    /// Whether the kind is decided from the source alone (no Lean needed).
    pub fn is_source_level(self) -> bool {
        !matches!(
            self,
            ViolationKind::CompileError
                | ViolationKind::NonStandardAxiom
                | ViolationKind::NotChecked
                | ViolationKind::KernelRejected
                | ViolationKind::Timeout
                | ViolationKind::WrongAnswer
        )
    }
}

impl std::fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason to refuse, located.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub kind: ViolationKind,
    /// Project-relative path (empty for project-wide reasons such as a timeout).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The declaration concerned, when known (`example #2` for examples).
    pub decl: Option<String>,
    /// One line: what is wrong.
    pub message: String,
    /// Whether Lean found it (`false`: found in the source).
    #[serde(default)]
    pub from_lean: bool,
}

impl Violation {
    /// A source-level violation.
    pub fn source(
        kind: ViolationKind,
        file: &str,
        line: Option<usize>,
        decl: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        Violation {
            kind,
            file: file.to_string(),
            line,
            decl,
            message: message.into(),
            from_lean: false,
        }
    }

    /// `file:line` (or `file`).
    pub fn location(&self) -> String {
        match self.line {
            Some(l) => format!("{}:{l}", self.file),
            None => self.file.clone(),
        }
    }
}

/// What the verifier learned about one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileReport {
    /// `lake env lean` exited 0 and printed no error.
    pub compiled: bool,
    /// Lean warned "declaration uses sorry" (or the source holds a sorry token).
    pub sorry: bool,
    /// Declaration → axioms it depends on, as the probe reported them.
    pub axioms: BTreeMap<String, Vec<String>>,
    /// Exit status of the compile, when it ran.
    pub exit_code: Option<i64>,
}

/// The verdict on a candidate project.
///
/// Invariant: `verified` ⇔ `violations` is empty ∧ `compiles` ∧ `sorry_free` ∧
/// `non_standard_axioms` is empty ∧ `statements_intact` (and no timeout).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VerificationReport {
    pub verified: bool,
    pub compiles: bool,
    pub sorry_free: bool,
    /// Union of all axioms the probe reported, sorted.
    pub axioms: Vec<String>,
    /// Axioms outside the standard set (and the policy's allowances), sorted.
    pub non_standard_axioms: Vec<String>,
    pub statements_intact: bool,
    /// Whether the verifier's time budget elapsed.
    pub timed_out: bool,
    pub violations: Vec<Violation>,
    pub per_file: BTreeMap<String, FileReport>,
    #[serde(rename = "duration_s", with = "atp_backend::serde_secs")]
    pub duration: Duration,
    /// Every definition whose body was `sorry` in the original, with the candidate's body and
    /// the answer check (see [`crate::holes`]). A wrong hole is also a `wrong_answer` violation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub definition_holes: Vec<crate::holes::DefinitionHole>,
}

impl VerificationReport {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The first violation's kind and message, e.g. `statement_changed: …` (for tables).
    pub fn reason(&self) -> String {
        match self.violations.first() {
            Some(v) => format!("{}: {}", v.kind, v.message),
            None if self.verified => "verified".into(),
            None => "unverified".into(),
        }
    }

    /// Whether every definition hole was proved equal to its official answer (true when there
    /// is none). A verified proof whose holes are not all confirmed has not shown that the
    /// intended statement holds.
    pub fn holes_confirmed(&self) -> bool {
        self.definition_holes
            .iter()
            .all(|h| h.check == crate::holes::HoleCheck::Equal)
    }

    /// Recompute `verified` from the other fields (the struct's invariant).
    pub fn finalize(&mut self) {
        self.verified = self.violations.is_empty()
            && self.compiles
            && self.sorry_free
            && self.non_standard_axioms.is_empty()
            && self.statements_intact
            && !self.timed_out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_json_shape() {
        let mut r = VerificationReport {
            compiles: true,
            sorry_free: false,
            axioms: vec!["propext".into(), "sorryAx".into()],
            non_standard_axioms: vec!["sorryAx".into()],
            statements_intact: true,
            duration: Duration::from_millis(2500),
            ..Default::default()
        };
        r.per_file.insert(
            "A.lean".into(),
            FileReport {
                compiled: true,
                sorry: true,
                axioms: [(
                    "example #1".to_string(),
                    vec!["propext".to_string(), "sorryAx".to_string()],
                )]
                .into(),
                exit_code: Some(0),
            },
        );
        r.violations.push(Violation {
            kind: ViolationKind::NonStandardAxiom,
            file: "A.lean".into(),
            line: None,
            decl: Some("example #1".into()),
            message: "`example #1` depends on axiom `sorryAx`".into(),
            from_lean: true,
        });
        r.finalize();
        assert!(!r.verified);
        insta::assert_snapshot!(r.to_json(), @r#"
        {
          "verified": false,
          "compiles": true,
          "sorry_free": false,
          "axioms": [
            "propext",
            "sorryAx"
          ],
          "non_standard_axioms": [
            "sorryAx"
          ],
          "statements_intact": true,
          "timed_out": false,
          "violations": [
            {
              "kind": "non_standard_axiom",
              "file": "A.lean",
              "line": null,
              "decl": "example #1",
              "message": "`example #1` depends on axiom `sorryAx`",
              "from_lean": true
            }
          ],
          "per_file": {
            "A.lean": {
              "compiled": true,
              "sorry": true,
              "axioms": {
                "example #1": [
                  "propext",
                  "sorryAx"
                ]
              },
              "exit_code": 0
            }
          },
          "duration_s": 2.5
        }
        "#);
    }
}
