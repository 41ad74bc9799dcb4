//! Definition holes: definitions whose body is `sorry` in the original task (PutnamBench's
//! `abbrev putnam_…_solution : T := sorry`, with the answer in a comment).
//!
//! The checker treats such a definition as an obligation of its *type* only (its value is the
//! prover's to fill), so a prover can fill it with anything that makes the theorem trivial. The
//! verifier therefore reports every hole in [`crate::VerificationReport::definition_holes`] with
//! the candidate's body, and — when an answer key gives the official answer — checks the filled
//! hole against it with the same machinery as every other obligation:
//!
//! - per hole two **check modules** are added to both sides, `AtpHoles<nonce>/Same<k>.lean` and
//!   `…/Differs<k>.lean`, each importing the hole's module, repeating the original's `open`s in
//!   effect at the hole and stating one theorem:
//!   `theorem AtpHoles<nonce>.same_<k> : (_root_.NAME) = (ANSWER) := …` and
//!   `theorem AtpHoles<nonce>.differs_<k> : (_root_.NAME) ≠ (ANSWER) := …`;
//! - the original's copies (compiled in the check sandbox, trusted) prove them `by sorry`, so the
//!   statement the checker compares against is elaborated from the original and the official
//!   answer, never from candidate code; the candidate's copies (compiled in the build sandbox)
//!   prove them `by first | rfl | decide | norm_num` / `by first | decide | norm_num`;
//! - the checker replays the candidate's check modules in the kernel and compares each theorem's
//!   elaborated statement with the original's: a hole is [`HoleCheck::Equal`] only when the
//!   `same` theorem compiled, was replayed, has the original's statement and depends on no
//!   axiom outside the policy (no `sorryAx`); else [`HoleCheck::Wrong`] when the `differs`
//!   theorem passes the same test (a `wrong_answer` violation); else [`HoleCheck::Undecided`];
//! - no answer, or the hole not filled → [`HoleCheck::Unchecked`].
//!
//! Invariants: a hole is never `equal` without the checker's agreement; a candidate that changes
//! what the answer means in its scope (a new declaration capturing a name, an instance) changes
//! the elaborated statement, which the checker refuses (`undecided`); the check modules never
//! count as the candidate's files (no compile error, axiom or obligation of theirs reaches the
//! main verdict).

use std::collections::BTreeMap;

use atp_lean::lexer::Token;
use atp_lean::source::{parse, Command, SourceFile};
use serde::{Deserialize, Serialize};

use crate::check::{module_name, VerifyPolicy};
use crate::parse::{parse_messages, Severity};
use crate::protocol::{CheckerReport, ObligationStatus};
use crate::report::{Violation, ViolationKind};
use crate::script::Frames;

/// Declaration keywords whose `:= sorry` body is a definition hole.
pub const HOLE_KINDS: &[&str] = &["def", "abbrev", "opaque", "irreducible_def"];

/// The tactic of the equality check.
pub const EQUAL_TACTIC: &str = "first | rfl | decide | norm_num";
/// The tactic of the disequality check.
pub const DIFFERENT_TACTIC: &str = "first | decide | norm_num";

/// What the answer check says about one hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoleCheck {
    /// No official answer to compare with (no answer key, or the hole is not in it), or the
    /// hole was not filled.
    Unchecked,
    /// Lean proved the filled hole equal to the official answer (checker-confirmed).
    Equal,
    /// Lean proved the filled hole different from the official answer (checker-confirmed).
    Wrong,
    /// Neither was shown (or the check could not run): not counted as solved.
    Undecided,
}

impl HoleCheck {
    pub fn as_str(self) -> &'static str {
        match self {
            HoleCheck::Unchecked => "unchecked",
            HoleCheck::Equal => "equal",
            HoleCheck::Wrong => "wrong",
            HoleCheck::Undecided => "undecided",
        }
    }
}

/// One definition whose body was `sorry` in the original.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionHole {
    /// Project-relative file.
    pub file: String,
    /// Line of the name in the original.
    pub line: usize,
    /// Full name (namespace included).
    pub name: String,
    /// `def`, `abbrev`, …
    pub kind: String,
    /// The candidate's body as written (`None`: the definition is missing from the candidate).
    pub body: Option<String>,
    /// The official answer, when an answer key has one.
    pub answer: Option<String>,
    pub check: HoleCheck,
    /// Why the check came out as it did, when that needs saying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The two check modules of one hole.
#[derive(Debug, Clone)]
struct CheckPair {
    hole: usize,
    /// `(rel, declaration)` of the equality theorem.
    same: (String, String),
    /// `(rel, declaration)` of the disequality theorem.
    differs: (String, String),
}

/// The holes of a candidate and the check modules to compile with it.
#[derive(Debug, Clone, Default)]
pub(crate) struct HolePlan {
    holes: Vec<DefinitionHole>,
    pairs: Vec<CheckPair>,
    /// rel → text of the candidate's check modules (compiled in the build sandbox).
    candidate_modules: BTreeMap<String, String>,
    /// rel → text of the original's check modules (compiled in the check sandbox).
    original_modules: BTreeMap<String, String>,
}

fn is_open(t: &Token) -> bool {
    t.kind == atp_lean::lexer::TokenKind::Sym
        && matches!(t.text.as_str(), "(" | "[" | "{" | "⟨" | "@[" | "⦃" | "⟦")
}

fn is_close(t: &Token) -> bool {
    t.kind == atp_lean::lexer::TokenKind::Sym
        && matches!(t.text.as_str(), ")" | "]" | "}" | "⟩" | "⦄" | "⟧")
}

/// Token indices `[start, end)` of a declaration's body: after its first top-level `:=`.
fn body_range(file: &SourceFile, c: &Command) -> Option<(usize, usize)> {
    let toks = &file.tokens;
    let mut depth = 0i64;
    let mut j = c.keyword_token + 1;
    while j < c.tokens.end {
        let t = &toks[j];
        if is_open(t) {
            depth += 1;
        } else if is_close(t) {
            depth -= 1;
        } else if depth == 0 && t.is_sym(":=") {
            return (j + 1 < c.tokens.end).then_some((j + 1, c.tokens.end));
        }
        j += 1;
    }
    None
}

fn is_hole_body(toks: &[Token]) -> bool {
    match toks {
        [t] => t.is("sorry"),
        [b, t] => b.is("by") && t.is("sorry"),
        _ => false,
    }
}

/// A hole found in the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundHole {
    pub file: String,
    pub line: usize,
    pub name: String,
    pub kind: String,
    /// The scope lines to repeat in a check module: the `open`s in effect at the hole, and an
    /// `open` of its namespace.
    pub opens: Vec<String>,
}

/// The holes of `original` (file → source): definitions whose whole body is `sorry` (or
/// `by sorry`), in file order.
pub fn find_holes(original: &BTreeMap<String, String>) -> Vec<FoundHole> {
    let mut out = Vec::new();
    for (rel, src) in original {
        let file = parse(src);
        for c in &file.commands {
            if !HOLE_KINDS.contains(&c.keyword.as_str()) {
                continue;
            }
            let Some(name) = &c.full_name else { continue };
            let Some((a, b)) = body_range(&file, c) else {
                continue;
            };
            if !is_hole_body(&file.tokens[a..b]) {
                continue;
            }
            let mut opens: Vec<String> = c
                .context
                .iter()
                .filter(|e| e.starts_with("open ") && !e.ends_with(" in"))
                .cloned()
                .collect();
            if let Some((ns, _)) = name.rsplit_once('.') {
                opens.push(format!("open {ns}"));
            }
            out.push(FoundHole {
                file: rel.clone(),
                line: c.line,
                name: name.clone(),
                kind: c.keyword.clone(),
                opens,
            });
        }
    }
    out
}

/// One-line form of an answer (each check statement is one line).
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The text of one check module.
fn check_module(
    import: &str,
    opens: &[String],
    decl: &str,
    statement: &str,
    proof: &str,
) -> String {
    let mut s = format!("import {import}\n");
    for o in opens {
        s.push_str(o);
        s.push('\n');
    }
    s.push_str(&format!("theorem {decl} : {statement} := {proof}\n"));
    s
}

impl HolePlan {
    /// Find the holes of `original` in `candidate` and, for those filled and with an answer in
    /// `answers` (full name → Lean term), build the check modules. `nonce` names them (so no
    /// candidate can anticipate the names).
    pub fn new(
        candidate: &BTreeMap<String, String>,
        original: Option<&BTreeMap<String, String>>,
        answers: &BTreeMap<String, String>,
        nonce: &str,
    ) -> HolePlan {
        let Some(original) = original else {
            return HolePlan::default();
        };
        let found = find_holes(original);
        if found.is_empty() {
            return HolePlan::default();
        }
        let parsed: BTreeMap<&String, SourceFile> =
            candidate.iter().map(|(k, v)| (k, parse(v))).collect();
        let short: String = nonce
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect();
        let dir = format!("AtpHoles{short}");
        let mut plan = HolePlan::default();
        for f in found {
            let mut hole = DefinitionHole {
                file: f.file.clone(),
                line: f.line,
                name: f.name.clone(),
                kind: f.kind.clone(),
                body: None,
                answer: answers.get(&f.name).map(|a| one_line(a)),
                check: HoleCheck::Unchecked,
                note: None,
            };
            let located = parsed.get(&f.file).and_then(|file| {
                let c = file
                    .commands
                    .iter()
                    .find(|c| c.full_name.as_deref() == Some(f.name.as_str()))?;
                let (a, b) = body_range(file, c)?;
                let src = candidate.get(&f.file)?;
                let toks = &file.tokens;
                Some((
                    src[toks[a].start..toks[b - 1].end].to_string(),
                    is_hole_body(&toks[a..b]),
                ))
            });
            match (&located, hole.answer.clone()) {
                (None, answer) => {
                    hole.note = Some("the definition is missing from the candidate".into());
                    if answer.is_some() {
                        hole.check = HoleCheck::Undecided;
                    }
                }
                (Some((body, unfilled)), answer) => {
                    hole.body = Some(body.clone());
                    match answer {
                        _ if *unfilled => {
                            hole.note = Some("not filled: the body is still `sorry`".into());
                        }
                        None => {
                            hole.note = Some("no official answer in the answer key".into());
                        }
                        Some(answer) => {
                            let k = plan.pairs.len();
                            let import = module_name(&f.file);
                            let name = &f.name;
                            let same_decl = format!("{dir}.same_{k}");
                            let differs_decl = format!("{dir}.differs_{k}");
                            let same_rel = format!("{dir}/Same{k}.lean");
                            let differs_rel = format!("{dir}/Differs{k}.lean");
                            let same_stmt = format!("(_root_.{name}) = ({answer})");
                            let differs_stmt = format!("(_root_.{name}) ≠ ({answer})");
                            for (rel, decl, stmt, tactic) in [
                                (&same_rel, &same_decl, &same_stmt, EQUAL_TACTIC),
                                (&differs_rel, &differs_decl, &differs_stmt, DIFFERENT_TACTIC),
                            ] {
                                plan.candidate_modules.insert(
                                    rel.clone(),
                                    check_module(
                                        &import,
                                        &f.opens,
                                        decl,
                                        stmt,
                                        &format!("by {tactic}"),
                                    ),
                                );
                                plan.original_modules.insert(
                                    rel.clone(),
                                    check_module(&import, &f.opens, decl, stmt, "by sorry"),
                                );
                            }
                            plan.pairs.push(CheckPair {
                                hole: plan.holes.len(),
                                same: (same_rel, same_decl),
                                differs: (differs_rel, differs_decl),
                            });
                        }
                    }
                }
            }
            plan.holes.push(hole);
        }
        plan
    }

    /// The candidate's check modules (`rel → text`), compiled beside the candidate.
    pub fn candidate_modules(&self) -> &BTreeMap<String, String> {
        &self.candidate_modules
    }

    /// The original's check modules (`rel → text`), compiled beside the original.
    pub fn original_modules(&self) -> &BTreeMap<String, String> {
        &self.original_modules
    }

    /// Whether `rel` is one of the check modules (never one of the candidate's files).
    pub fn is_check_module(&self, rel: &str) -> bool {
        self.candidate_modules.contains_key(rel)
    }

    /// Whether the checker's module name `module` is one of the check modules.
    pub fn is_check_module_name(&self, module: &str) -> bool {
        self.candidate_modules
            .keys()
            .any(|rel| module_name(rel) == module)
    }

    /// The holes with their checks decided, plus a `wrong_answer` violation per wrong hole.
    ///
    /// `index` maps a candidate rel to its frame index in `build`, `orig_index` an original rel
    /// to its frame index in `original`.
    pub fn evaluate(&self, input: HoleInput<'_>) -> (Vec<DefinitionHole>, Vec<Violation>) {
        let mut holes = self.holes.clone();
        let mut violations = Vec::new();
        for pair in &self.pairs {
            let h = &mut holes[pair.hole];
            let same = input.proved(&pair.same);
            let differs = input.proved(&pair.differs);
            match (same, differs) {
                (Ok(()), _) => {
                    h.check = HoleCheck::Equal;
                    h.note = None;
                }
                (Err(_), Ok(())) => {
                    h.check = HoleCheck::Wrong;
                    h.note = Some(
                        "Lean proved the filled hole different from the official answer".into(),
                    );
                    violations.push(Violation {
                        kind: ViolationKind::WrongAnswer,
                        file: h.file.clone(),
                        line: Some(h.line),
                        decl: Some(h.name.clone()),
                        message: format!(
                            "`{}` := {} differs from the official answer {}",
                            h.name,
                            h.body.as_deref().map(one_line).unwrap_or_default(),
                            h.answer.as_deref().unwrap_or("?")
                        ),
                        from_lean: true,
                    });
                }
                (Err(why_same), Err(why_differs)) => {
                    h.check = HoleCheck::Undecided;
                    h.note = Some(if why_same == why_differs {
                        why_same
                    } else {
                        format!("equality: {why_same}; disequality: {why_differs}")
                    });
                }
            }
        }
        (holes, violations)
    }
}

/// Whether frame `i` of `frames` is a compile without an error.
pub(crate) fn compiled(frames: Option<&Frames>, i: usize) -> bool {
    frames.and_then(|fr| fr.files.get(&i)).is_some_and(|f| {
        f.exit_code == 0
            && !parse_messages(&f.output)
                .into_iter()
                .any(|m| m.severity == Severity::Error)
    })
}

/// What [`HolePlan::evaluate`] reads: the sandboxes' frames and the checker's report.
pub(crate) struct HoleInput<'a> {
    pub build: Option<&'a Frames>,
    pub original: Option<&'a Frames>,
    pub checker: Option<&'a CheckerReport>,
    /// candidate rel → frame index of the build script.
    pub index: BTreeMap<String, usize>,
    /// original rel → frame index of the original script.
    pub orig_index: BTreeMap<String, usize>,
    pub policy: &'a VerifyPolicy,
    pub timed_out: bool,
}

impl HoleInput<'_> {
    /// Whether the check theorem `decl` of module `rel` was proved: the original's copy
    /// compiled, the candidate's compiled, the checker replayed it, found the original's
    /// statement and no axiom outside the policy. `Err` says why not.
    fn proved(&self, (rel, decl): &(String, String)) -> Result<(), String> {
        if self.timed_out {
            return Err("the verifier's time budget elapsed before the answer check".into());
        }
        let compiled = |frames: Option<&Frames>, index: &BTreeMap<String, usize>| {
            let i = *index.get(rel)?;
            frames?.files.get(&i)?;
            Some(compiled(frames, i))
        };
        match compiled(self.original, &self.orig_index) {
            Some(true) => {}
            Some(false) => {
                return Err(
                    "the official answer does not elaborate in the original's scope (check the answer key)"
                        .into(),
                )
            }
            None => return Err("the answer check did not run in the check sandbox".into()),
        }
        if compiled(self.build, &self.index) != Some(true) {
            return Err("the check did not compile with the candidate's definition".into());
        }
        let Some(c) = self.checker else {
            return Err("the checker did not run".into());
        };
        let module = module_name(rel);
        if c.kernel.contains_key(&module) || !c.replayed.contains_key(&module) {
            return Err("the checker did not replay the check".into());
        }
        let status = c
            .obligations
            .iter()
            .find(|(m, d, _, _)| *m == module && d == decl)
            .map(|(_, _, _, s)| *s);
        match status {
            Some(ObligationStatus::Ok) => {}
            Some(_) => {
                return Err(
                    "the candidate's scope changes what the official answer means (the checker found another statement)"
                        .into(),
                )
            }
            None => return Err("the checker did not judge the check".into()),
        }
        let axioms: Vec<&String> = c
            .axioms
            .iter()
            .filter(|((m, d), _)| *m == module && d == decl)
            .flat_map(|(_, a)| a)
            .collect();
        if let Some(bad) = axioms
            .iter()
            .find(|a| a.as_str() == "sorryAx" || !self.policy.axiom_allowed(a))
        {
            return Err(format!("the check depends on axiom `{bad}`"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str = "import Mathlib\n\nopen Real\n\nabbrev easy_solution : ℕ := sorry\n-- 2\n\ntheorem easy : 1 + 1 = easy_solution := sorry\n";

    fn files(s: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("Easy.lean".to_string(), s.to_string())])
    }

    #[test]
    fn holes_are_definitions_whose_body_is_sorry() {
        let src = "abbrev a : ℕ := sorry\ndef b : ℕ := by sorry\ndef c : ℕ := 3\ntheorem t : a = 2 := sorry\nnamespace N\nnoncomputable def d (n : ℕ) : ℕ :=\n  sorry\nend N\n";
        let found = find_holes(&files(src));
        let names: Vec<&str> = found.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "N.d"]);
        assert_eq!(found[2].line, 6);
        assert_eq!(found[2].opens, ["open N"]);
    }

    #[test]
    fn without_an_answer_the_hole_is_reported_unchecked_with_the_body() {
        let cand = files(&ORIGINAL.replace("ℕ := sorry", "ℕ := 0"));
        let p = HolePlan::new(&cand, Some(&files(ORIGINAL)), &BTreeMap::new(), "n1");
        assert!(p.candidate_modules().is_empty());
        assert_eq!(p.holes.len(), 1);
        assert_eq!(p.holes[0].name, "easy_solution");
        assert_eq!(p.holes[0].body.as_deref(), Some("0"));
        assert_eq!(p.holes[0].check, HoleCheck::Unchecked);
    }

    #[test]
    fn the_check_modules_import_the_hole_and_differ_only_in_the_proof() {
        let cand_src = ORIGINAL.replace("ℕ := sorry", "ℕ := 0");
        let answers = BTreeMap::from([("easy_solution".to_string(), "2".to_string())]);
        let p = HolePlan::new(
            &files(&cand_src),
            Some(&files(ORIGINAL)),
            &answers,
            "nonce-123",
        );
        let cand = p.candidate_modules();
        let orig = p.original_modules();
        assert_eq!(
            cand.keys().collect::<Vec<_>>(),
            [
                "AtpHolesnonce123/Differs0.lean",
                "AtpHolesnonce123/Same0.lean"
            ]
        );
        assert_eq!(
            cand["AtpHolesnonce123/Same0.lean"],
            "import Easy\nopen Real\ntheorem AtpHolesnonce123.same_0 : (_root_.easy_solution) = (2) := by first | rfl | decide | norm_num\n"
        );
        assert_eq!(
            orig["AtpHolesnonce123/Same0.lean"],
            "import Easy\nopen Real\ntheorem AtpHolesnonce123.same_0 : (_root_.easy_solution) = (2) := by sorry\n"
        );
        assert!(orig["AtpHolesnonce123/Differs0.lean"].contains("≠ (2) := by sorry"));
        assert!(p.is_check_module("AtpHolesnonce123/Same0.lean"));
        assert!(p.is_check_module_name("AtpHolesnonce123.Differs0"));
        assert!(!p.is_check_module("Easy.lean"));
    }

    #[test]
    fn nothing_run_means_undecided_never_equal() {
        let cand_src = ORIGINAL.replace("ℕ := sorry", "ℕ := 2");
        let answers = BTreeMap::from([("easy_solution".to_string(), "2".to_string())]);
        let p = HolePlan::new(&files(&cand_src), Some(&files(ORIGINAL)), &answers, "n");
        let policy = VerifyPolicy::default();
        let (h, v) = p.evaluate(HoleInput {
            build: None,
            original: None,
            checker: None,
            index: BTreeMap::new(),
            orig_index: BTreeMap::new(),
            policy: &policy,
            timed_out: false,
        });
        assert!(v.is_empty());
        assert_eq!(h[0].check, HoleCheck::Undecided);
        assert!(
            h[0].note
                .as_deref()
                .is_some_and(|n| n.contains("did not run")),
            "{h:?}"
        );
    }

    #[test]
    fn a_missing_definition_with_an_answer_is_undecided() {
        let cand = files("import Mathlib\n\ntheorem easy : 1 + 1 = 2 := rfl\n");
        let answers = BTreeMap::from([("easy_solution".to_string(), "2".to_string())]);
        let p = HolePlan::new(&cand, Some(&files(ORIGINAL)), &answers, "n");
        assert_eq!(p.holes[0].check, HoleCheck::Undecided);
        assert!(p.candidate_modules().is_empty());
    }
}
