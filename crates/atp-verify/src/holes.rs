//! Definition holes: definitions whose body is `sorry` in the original task (PutnamBench's
//! `abbrev putnam_…_solution : T := sorry`, with the answer in a comment).
//!
//! The statement check compares only the signature of such a definition (its body is a proof
//! obligation), so a prover can fill it with anything that makes the theorem trivial. The
//! verifier therefore reports every hole in [`crate::VerificationReport::definition_holes`] with
//! the candidate's body, and — when an answer key gives the official answer — checks the filled
//! hole against it **in the verification sandbox**, in the same run as the candidate's compile:
//!
//! - a check copy of the candidate's file, cut after the last hole (so the answers elaborate in
//!   the holes' own scope and the proofs are not compiled twice), followed per hole by
//!   `example : (_root_.NAME) = (ANSWER) := by first | rfl | decide | norm_num` and
//!   `example : (_root_.NAME) ≠ (ANSWER) := by first | decide | norm_num`, one line each;
//! - the equality line compiling without an error → [`HoleCheck::Equal`]; otherwise the
//!   disequality line compiling → [`HoleCheck::Wrong`] (a `wrong_answer` violation: the proof
//!   is about a different statement); neither → [`HoleCheck::Undecided`] (not counted as
//!   solved by a benchmark, never a pass);
//! - no answer for the hole → [`HoleCheck::Unchecked`].
//!
//! Invariants: a hole is never `equal` without Lean accepting the equality in the verifier's
//! sandbox; a new declaration of the candidate whose name can capture an identifier of the
//! official answer makes that hole `undecided` without compiling (it could change what the
//! answer means); errors are attributed by line, so a check line can only be accepted by its
//! own compile output.

use std::collections::{BTreeMap, BTreeSet};

use atp_lean::lexer::{tokenize, Token, TokenKind};
use atp_lean::source::{parse, Command, SourceFile};
use serde::{Deserialize, Serialize};

use crate::parse::{parse_messages, FileBlock, Severity};
use crate::report::{Violation, ViolationKind};

/// Declaration keywords whose `:= sorry` body is a definition hole.
pub const HOLE_KINDS: &[&str] = &["def", "abbrev", "opaque", "irreducible_def"];

/// The tactic of the equality check line.
pub const EQUAL_TACTIC: &str = "first | rfl | decide | norm_num";
/// The tactic of the disequality check line.
pub const DIFFERENT_TACTIC: &str = "first | decide | norm_num";

/// What the answer check says about one hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoleCheck {
    /// No official answer to compare with (no answer key, or the hole is not in it), or the
    /// hole was not filled.
    Unchecked,
    /// Lean proved the filled hole equal to the official answer.
    Equal,
    /// Lean proved the filled hole different from the official answer.
    Wrong,
    /// Lean proved neither (or the check could not run): not counted as solved.
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

/// One check line of a check file.
#[derive(Debug, Clone)]
struct CheckLine {
    hole: usize,
    equal_line: usize,
    different_line: usize,
}

/// A check copy of one candidate file.
#[derive(Debug, Clone)]
struct CheckFile {
    text: String,
    lines: Vec<CheckLine>,
}

/// The holes of a candidate and the check files to compile with it.
#[derive(Debug, Clone, Default)]
pub(crate) struct HolePlan {
    holes: Vec<DefinitionHole>,
    /// check file rel path → file
    checks: BTreeMap<String, CheckFile>,
}

fn is_open(t: &Token) -> bool {
    t.kind == TokenKind::Sym && matches!(t.text.as_str(), "(" | "[" | "{" | "⟨" | "@[" | "⦃" | "⟦")
}

fn is_close(t: &Token) -> bool {
    t.kind == TokenKind::Sym && matches!(t.text.as_str(), ")" | "]" | "}" | "⟩" | "⦄" | "⟧")
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

/// The holes of `original` (file → source): definitions whose whole body is `sorry` (or
/// `by sorry`), in file order.
pub fn find_holes(original: &BTreeMap<String, String>) -> Vec<(String, usize, String, String)> {
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
            if is_hole_body(&file.tokens[a..b]) {
                out.push((rel.clone(), c.line, name.clone(), c.keyword.clone()));
            }
        }
    }
    out
}

/// One-line form of an answer (the check lines are one line each).
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The check file's path for `rel`.
fn check_rel(rel: &str, nonce: &str) -> String {
    let short: String = nonce.chars().take(12).collect();
    format!("AtpHoleCheck{short}/{rel}")
}

impl HolePlan {
    /// Find the holes of `original` in `candidate` and, for those with an answer in `answers`
    /// (full name → Lean term), build the check files.
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
        let original_names: BTreeSet<String> = original
            .values()
            .flat_map(|s| parse(s).commands.into_iter().filter_map(|c| c.full_name))
            .collect();
        // New declarations of the candidate: (last component, full name).
        let new_decls: Vec<(String, String)> = parsed
            .values()
            .flat_map(|f| f.commands.iter())
            .filter_map(|c| c.full_name.clone())
            .filter(|n| !original_names.contains(n))
            .map(|n| (n.rsplit('.').next().unwrap_or(&n).to_string(), n))
            .collect();

        let mut plan = HolePlan::default();
        // rel → (cut offset, [(hole index, answer)])
        let mut per_file: BTreeMap<String, (usize, Vec<(usize, String)>)> = BTreeMap::new();
        for (rel, line, name, kind) in found {
            let mut hole = DefinitionHole {
                file: rel.clone(),
                line,
                name: name.clone(),
                kind,
                body: None,
                answer: answers.get(&name).map(|a| one_line(a)),
                check: HoleCheck::Unchecked,
                note: None,
            };
            let located = parsed.get(&rel).and_then(|f| {
                let c = f
                    .commands
                    .iter()
                    .find(|c| c.full_name.as_deref() == Some(name.as_str()))?;
                let (a, b) = body_range(f, c)?;
                let src = candidate.get(&rel)?;
                let toks = &f.tokens;
                Some((
                    src[toks[a].start..toks[b - 1].end].to_string(),
                    toks[b - 1].end,
                    is_hole_body(&toks[a..b]),
                ))
            });
            match &located {
                None => {
                    hole.note = Some("the definition is missing from the candidate".into());
                    if hole.answer.is_some() {
                        hole.check = HoleCheck::Undecided;
                    }
                }
                Some((body, cut, unfilled)) => {
                    hole.body = Some(body.clone());
                    match &hole.answer {
                        _ if *unfilled => {
                            hole.note = Some("not filled: the body is still `sorry`".into());
                        }
                        None => {
                            hole.note = Some("no official answer in the answer key".into());
                        }
                        Some(answer) => match capture(answer, &new_decls) {
                            Some(note) => {
                                hole.check = HoleCheck::Undecided;
                                hole.note = Some(note);
                            }
                            None => {
                                let e = per_file.entry(rel.clone()).or_insert((0, Vec::new()));
                                e.0 = e.0.max(*cut);
                                e.1.push((plan.holes.len(), answer.clone()));
                            }
                        },
                    }
                }
            }
            plan.holes.push(hole);
        }
        for (rel, (cut, items)) in per_file {
            let Some(src) = candidate.get(&rel) else {
                continue;
            };
            let mut text = src[..cut].to_string();
            text.push_str("\n\n-- atp: answer checks of the definition holes (not part of the candidate)\n");
            let mut line = text.lines().count();
            let mut lines = Vec::new();
            for (hole, answer) in items {
                let name = &plan.holes[hole].name;
                text.push_str(&format!(
                    "example : (_root_.{name}) = ({answer}) := by {EQUAL_TACTIC}\n"
                ));
                text.push_str(&format!(
                    "example : (_root_.{name}) ≠ ({answer}) := by {DIFFERENT_TACTIC}\n"
                ));
                lines.push(CheckLine {
                    hole,
                    equal_line: line + 1,
                    different_line: line + 2,
                });
                line += 2;
            }
            plan.checks
                .insert(check_rel(&rel, nonce), CheckFile { text, lines });
        }
        plan
    }

    /// The check files to compile with the candidate (`rel → text`).
    pub fn check_sources(&self) -> BTreeMap<String, String> {
        self.checks
            .iter()
            .map(|(k, f)| (k.clone(), f.text.clone()))
            .collect()
    }

    /// The holes with their checks decided from the compile output (`blocks` of the verifier
    /// script, paths already relative), plus a `wrong_answer` violation per wrong hole.
    pub fn evaluate(
        &self,
        blocks: &[FileBlock],
        copy_prefix: &str,
        timed_out: bool,
    ) -> (Vec<DefinitionHole>, Vec<Violation>) {
        let mut holes = self.holes.clone();
        let mut violations = Vec::new();
        for (rel, check) in &self.checks {
            let block = blocks.iter().find(|b| &b.rel == rel);
            let errors: Vec<usize> = block
                .map(|b| {
                    parse_messages(&b.output.replace(copy_prefix, ""))
                        .into_iter()
                        .filter(|m| m.severity == Severity::Error && &m.path == rel)
                        .map(|m| m.line)
                        .collect()
                })
                .unwrap_or_default();
            let finished = block.is_some_and(|b| b.exit_code.is_some());
            for l in &check.lines {
                let h = &mut holes[l.hole];
                if !finished {
                    h.check = HoleCheck::Undecided;
                    h.note = Some(if timed_out {
                        "the verifier's time budget elapsed before the answer check".into()
                    } else {
                        "the answer check printed nothing".into()
                    });
                    continue;
                }
                let before: Vec<usize> = errors
                    .iter()
                    .copied()
                    .filter(|&e| e < check.lines[0].equal_line)
                    .collect();
                if !before.is_empty() {
                    h.check = HoleCheck::Undecided;
                    h.note = Some(format!(
                        "the candidate's file does not compile up to the hole (error at line {})",
                        before[0]
                    ));
                } else if !errors.contains(&l.equal_line) {
                    h.check = HoleCheck::Equal;
                    h.note = None;
                } else if !errors.contains(&l.different_line) {
                    h.check = HoleCheck::Wrong;
                    h.note = Some("Lean proved the filled hole different from the official answer".into());
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
                } else {
                    h.check = HoleCheck::Undecided;
                    h.note = Some(format!(
                        "neither `{EQUAL_TACTIC}` proved it equal to the official answer nor `{DIFFERENT_TACTIC}` different"
                    ));
                }
            }
        }
        (holes, violations)
    }
}

/// A new declaration whose name can capture an identifier of the official answer.
fn capture(answer: &str, new_decls: &[(String, String)]) -> Option<String> {
    let idents: BTreeSet<String> = tokenize(answer)
        .into_iter()
        .filter(|t| t.kind == TokenKind::Ident)
        .flat_map(|t| [t.last_component().to_string(), t.text.clone()])
        .collect();
    new_decls.iter().find_map(|(last, full)| {
        idents.contains(last).then(|| {
            format!("new declaration `{full}` can capture the name `{last}` used by the official answer")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::FileBlock;

    const ORIGINAL: &str = "import Mathlib\n\nabbrev easy_solution : ℕ := sorry\n-- 2\n\ntheorem easy : 1 + 1 = easy_solution := sorry\n";

    fn files(s: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("Easy.lean".to_string(), s.to_string())])
    }

    #[test]
    fn holes_are_definitions_whose_body_is_sorry() {
        let src = "abbrev a : ℕ := sorry\ndef b : ℕ := by sorry\ndef c : ℕ := 3\ntheorem t : a = 2 := sorry\nnamespace N\nnoncomputable def d (n : ℕ) : ℕ :=\n  sorry\nend N\n";
        let found = find_holes(&files(src));
        let names: Vec<&str> = found.iter().map(|h| h.2.as_str()).collect();
        assert_eq!(names, ["a", "b", "N.d"]);
        assert_eq!(found[2].1, 6);
    }

    #[test]
    fn without_an_answer_the_hole_is_reported_unchecked_with_the_body() {
        let cand = files(&ORIGINAL.replace("ℕ := sorry", "ℕ := 0"));
        let p = HolePlan::new(&cand, Some(&files(ORIGINAL)), &BTreeMap::new(), "n1");
        assert!(p.check_sources().is_empty());
        let (h, v) = p.evaluate(&[], "", false);
        assert!(v.is_empty());
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].name, "easy_solution");
        assert_eq!(h[0].body.as_deref(), Some("0"));
        assert_eq!(h[0].check, HoleCheck::Unchecked);
    }

    fn plan_with(body: &str) -> (HolePlan, String, String) {
        let cand_src = ORIGINAL.replace("ℕ := sorry", &format!("ℕ := {body}"));
        let answers = BTreeMap::from([("easy_solution".to_string(), "2".to_string())]);
        let p = HolePlan::new(&files(&cand_src), Some(&files(ORIGINAL)), &answers, "nonce123");
        let (rel, text) = p.check_sources().into_iter().next().expect("a check file");
        (p, rel, text)
    }

    #[test]
    fn the_check_file_is_the_candidate_cut_after_the_hole_plus_two_lines() {
        let (_, rel, text) = plan_with("0");
        assert_eq!(rel, "AtpHoleChecknonce123/Easy.lean");
        assert!(text.starts_with("import Mathlib\n\nabbrev easy_solution : ℕ := 0\n\n"));
        assert!(!text.contains("theorem easy"), "{text}");
        assert!(text.ends_with(
            "example : (_root_.easy_solution) = (2) := by first | rfl | decide | norm_num\nexample : (_root_.easy_solution) ≠ (2) := by first | decide | norm_num\n"
        ), "{text}");
    }

    fn block(rel: &str, out: &str) -> FileBlock {
        FileBlock {
            rel: rel.into(),
            output: out.into(),
            exit_code: Some(if out.contains("error") { 1 } else { 0 }),
        }
    }

    #[test]
    fn errors_are_attributed_to_the_check_lines() {
        let (p, rel, text) = plan_with("0");
        let eq = text.lines().position(|l| l.contains(" = (2)")).expect("eq") + 1;
        let ne = eq + 1;
        // equality fails, disequality holds → wrong
        let (h, v) = p.evaluate(&[block(&rel, &format!("{rel}:{eq}:40: error: decide failed\n"))], "", false);
        assert_eq!(h[0].check, HoleCheck::Wrong);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].kind, ViolationKind::WrongAnswer);
        // both fail → undecided
        let out = format!("{rel}:{eq}:40: error: x\n{rel}:{ne}:40: error: y\n");
        let (h, v) = p.evaluate(&[block(&rel, &out)], "", false);
        assert_eq!(h[0].check, HoleCheck::Undecided);
        assert!(v.is_empty());
        // no error → equal
        let (h, _) = p.evaluate(&[block(&rel, "")], "", false);
        assert_eq!(h[0].check, HoleCheck::Equal);
        // an error before the check lines → undecided, never equal
        let (h, _) = p.evaluate(&[block(&rel, &format!("{rel}:3:0: error: bad\n"))], "", false);
        assert_eq!(h[0].check, HoleCheck::Undecided);
        // no output at all → undecided
        let (h, _) = p.evaluate(&[], "", true);
        assert_eq!(h[0].check, HoleCheck::Undecided);
    }

    #[test]
    fn a_new_declaration_capturing_the_answer_is_not_compiled() {
        let original = "abbrev s : ℝ := sorry\ntheorem t : s = s := sorry\n";
        let cand = "def pi : ℝ := 0\nabbrev s : ℝ := pi\ntheorem t : s = s := rfl\n";
        let answers = BTreeMap::from([("s".to_string(), "Real.pi".to_string())]);
        let p = HolePlan::new(&files(cand), Some(&files(original)), &answers, "n");
        assert!(p.check_sources().is_empty());
        let (h, _) = p.evaluate(&[], "", false);
        assert_eq!(h[0].check, HoleCheck::Undecided);
        assert!(h[0].note.as_deref().is_some_and(|n| n.contains("`pi`")), "{h:?}");
    }
}
