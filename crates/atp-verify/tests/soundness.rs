//! Issue 9's classes of cheats, several variants each, through the engine with the stand-in
//! `lake` and checker — and the honest proofs the old verifier refused.
//!
//! Each cheat hides something Lean reads but the old model did not (an `axiom`, a new notation,
//! a scope change, an elaborator) or prints what a candidate's code can print at elaboration
//! time; each must come out refused (or, for tampering with the build sandbox, an error), never
//! verified. The honest variants must verify.

use std::collections::BTreeMap;

use atp_verify::{VerifyError, ViolationKind};

use crate::common::{backend, one, verify, verify_with};

const ORIG_FALSE: &str = "theorem t : False := sorry\n";

/// Verify each candidate against `orig`; every one must be refused with one of `want`.
async fn refused_all(
    b: &std::sync::Arc<crate::common::Counting>,
    orig: &str,
    cases: &[(&str, &[ViolationKind])],
) {
    let orig = one(orig);
    let tasks = cases.iter().map(|(cand, want)| {
        let (b, orig) = (b.clone(), orig.clone());
        async move {
            let v = verify(&b, &one(cand), Some(&orig)).await;
            assert!(!v.report.verified, "verified a cheat:\n{cand}");
            let got: Vec<ViolationKind> = v.report.violations.iter().map(|x| x.kind).collect();
            assert!(
                got.iter().any(|k| want.contains(k)),
                "{cand}\nwanted one of {want:?}, got {:?}",
                v.report.violations
            );
        }
    });
    futures::future::join_all(tasks).await;
}

#[tokio::test]
async fn class_1_lean_lexical_rules_hide_nothing() {
    let Some(b) = backend("class_1_lean_lexical_rules_hide_nothing").await else {
        return;
    };
    use ViolationKind::*;
    refused_all(
        &b,
        ORIG_FALSE,
        &[
            // a char literal with an escaped quote does not open a string
            (
                "def c : Char := '\\''\naxiom bad : False\ntheorem t : False := bad\n",
                &[Axiom, NonStandardAxiom],
            ),
            (
                "def c : List Char := ['\\'', 'x'] axiom bad : False\ntheorem t : False := bad\n",
                &[Axiom],
            ),
            // a char literal holding `\"`
            (
                "def q : Char := '\"' axiom bad : False\ntheorem t : False := bad\n",
                &[Axiom],
            ),
            // an interpolated string whose hole holds a quote does not end at it
            (
                "def s : String := s!\"{\"}\"}\" axiom bad : False\ntheorem t : False := bad\n",
                &[Axiom],
            ),
            // identifier characters are Lean's: `ᶜ` and Cyrillic are not letters
            (
                "def f (s : Nat) := sᶜaxiom bad : False\ntheorem t : False := bad\n",
                &[Axiom],
            ),
            (
                "def f := 1 + 2фaxiom bad : False\ntheorem t : False := bad\n",
                &[Axiom, SourceUnclear],
            ),
            // a number never swallows a keyword
            (
                "def n := 2axiom bad : False\ntheorem t : False := bad\n",
                &[Axiom],
            ),
            // `/-` consumes its third character: `/-/-` is one level deep
            (
                "/-/- -/ axiom bad : False\ntheorem t : False := bad\n",
                &[Axiom],
            ),
            // «escaped» names are the names they spell
            (
                "theorem t : False := «sorryAx» False false\n",
                &[Sorry, NonStandardAxiom],
            ),
            (
                "set_option «debug».skipKernelTC true in\ntheorem t : False := sorry\n",
                &[DebugOption],
            ),
            (
                "@[«instance»] def i : Inhabited Nat := ⟨0⟩\ntheorem t : False := sorry\n",
                &[NewInstance, Sorry],
            ),
            (
                "theorem t : False := by decide +«native»\n",
                &[NativeDecide],
            ),
            // a string that reads differently when interpolated is refused, not guessed
            (
                "def s := foo \"{\"}\"}\" axiom bad : False\ntheorem t : False := bad\n",
                &[SourceUnclear],
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn class_2_the_command_model_fails_closed() {
    let Some(b) = backend("class_2_the_command_model_fails_closed").await else {
        return;
    };
    use ViolationKind::*;
    let orig = "def two := 2\ntheorem t : two = 2 := sorry\n";
    refused_all(
        &b,
        orig,
        &[
            // command keywords of Batteries/Mathlib the old model did not know, mid-line
            ("def two := 2\ntheorem t : two = 2 := rfl notation3 \"two\" => 3\n", &[SyntaxExtension]),
            ("def two := 2\ntheorem t : two = 2 := rfl simproc s (two) := fun _ => pure none\n", &[Metaprogramming]),
            ("def two := 2\ntheorem t : two = 2 := rfl #not_a_known_command\n", &[Metaprogramming, SourceUnclear, StatementChanged]),
            ("def two := 2\ntheorem t : two = 2 := rfl alias two := Nat.zero\n", &[DuplicateDeclaration]),
            // a declaration name twice
            ("def two := 2\ntheorem t : two = 2 := rfl\ntheorem t : two = 2 := rfl\n", &[DuplicateDeclaration]),
            ("def two := 2\nnamespace A\ntheorem _root_.t : two = 2 := rfl\nend A\ntheorem t : two = 2 := rfl\n", &[DuplicateDeclaration]),
            // every `X … in` prefix is part of the scope
            ("def two := 2\nattribute [local simp] two in\ntheorem t : two = 2 := rfl\n", &[ContextChanged]),
            ("def two := 2\nset_option autoImplicit true in\ntheorem t : two = 2 := rfl\n", &[ContextChanged]),
            ("def two := 2\nvariable (h : False) in\ninclude h in\ntheorem t : two = 2 := rfl\n", &[ContextChanged]),
            ("def two := 2\n#guard_msgs in\ntheorem t : two = 2 := rfl\n", &[ContextChanged]),
            // attributes that register macros and elaborators
            ("def two := 2\n@[macro Lean.Parser.Term.app] def m : Lean.Macro := fun _ => Lean.Macro.throwUnsupported\ntheorem t : two = 2 := rfl\n", &[Metaprogramming]),
            ("def two := 2\n@[term_elab Lean.Parser.Term.app] def e : Lean.Elab.Term.TermElab := fun _ _ => default\ntheorem t : two = 2 := rfl\n", &[Metaprogramming]),
            ("def two := 2\n@[command_elab x, tactic y] def e := 1\ntheorem t : two = 2 := rfl\n", &[Metaprogramming]),
            ("def two := 2\nattribute [tactic Lean.Parser.Tactic.simp] e\ntheorem t : two = 2 := rfl\n", &[Metaprogramming]),
            // a headerless file can redefine the core library
            ("prelude\ndef two := 2\ntheorem t : two = 2 := rfl\n", &[UnsafeHeader, ContextChanged]),
        ],
    )
    .await;
}

#[tokio::test]
async fn class_3_forged_output_and_a_tampered_build_sandbox_change_nothing() {
    let Some(b) =
        backend("class_3_forged_output_and_a_tampered_build_sandbox_change_nothing").await
    else {
        return;
    };
    // everything a candidate could print at elaboration time to forge a verdict: the old
    // probe's sentinel and end marker, the new frames, the checker's protocol
    let prints = "-- STANDIN_PRINT Main.lean:1:0: info: atp-probe-done 0123456789abcdef\n\
                  -- STANDIN_PRINT === ATP EXIT 0123456789abcdef Main.lean 0 ===\n\
                  -- STANDIN_PRINT END 1\n\
                  -- STANDIN_PRINT FILE 0 0 \n\
                  -- STANDIN_PRINT OLEAN 0 QVRQLVNUQU5ESU4tT0xFQU4gMQo=\n\
                  -- STANDIN_PRINT {\"t\":\"done\",\"modules\":1,\"obligations\":1}\n\
                  -- STANDIN_PRINT 'Main.t' does not depend on any axioms\n";
    let orig = one("theorem t : 2 = 2 := sorry\n");
    let honest = one(&format!("{prints}theorem t : 2 = 2 := rfl\n"));
    let v = verify(&b, &honest, Some(&orig)).await;
    assert!(v.report.verified, "{:?}", v.report.violations);
    assert!(
        v.compile_log.contains("=== ATP EXIT"),
        "the forgery is shown as the file's output"
    );
    let cheat = one(&format!("{prints}theorem t : 2 = 2 := sorry\n"));
    let v = verify(&b, &cheat, Some(&orig)).await;
    assert!(!v.report.verified);
    assert!(v
        .report
        .violations
        .iter()
        .any(|x| x.kind == ViolationKind::NonStandardAxiom && x.from_lean));

    // code run at elaboration time replaces the checker in the build sandbox: the checker runs
    // in a fresh sandbox and is not the candidate's
    let tamper = "-- STANDIN_RUN printf '#!/bin/bash\\necho {\\\"t\\\":\\\"done\\\"}\\n' > /usr/local/bin/atp-check; printf 'forged' > /usr/local/lib/atp-standin/checker.awk\n";
    let v = verify(
        &b,
        &one(&format!("{tamper}theorem t : 2 = 2 := sorry\n")),
        Some(&orig),
    )
    .await;
    assert!(!v.report.verified);
    assert!(v
        .report
        .violations
        .iter()
        .any(|x| x.kind == ViolationKind::NonStandardAxiom && x.from_lean));
    let v = verify(
        &b,
        &one(&format!("{tamper}theorem t : 2 = 2 := rfl\n")),
        Some(&orig),
    )
    .await;
    assert!(v.report.verified, "{:?}", v.report.violations);

    // code that writes forged frames into the build script's own output: an error, never a
    // verdict (the framing is strict)
    let inject = "-- STANDIN_RUN for f in /proc/[0-9]*/fd/1; do printf 'FILE 0 0 \\nEND 1\\n' > \"$f\"; done 2>/dev/null\n";
    let r = verify_with(
        &b,
        &one(&format!("{inject}theorem t : 2 = 2 := sorry\n")),
        Some(&orig),
        |o| o,
    )
    .await;
    match r {
        Err(e @ VerifyError::Script { .. }) => assert!(e.to_string().contains("build"), "{e}"),
        Ok(v) => assert!(!v.report.verified, "a forged frame verified a sorry"),
        Err(e) => panic!("unexpected error: {e}"),
    }

    // the old probe ran in the candidate's scope; nothing of the candidate's scope matters now
    let scope = "namespace Lean\ndef collectAxioms (n : Name) : IO (Array Name) := pure #[]\n\
                 theorem t : 2 = 2 := sorry\n";
    let v = verify(
        &b,
        &one(scope),
        Some(&one("namespace Lean\ntheorem t : 2 = 2 := sorry\n")),
    )
    .await;
    assert!(!v.report.verified);
}

#[tokio::test]
async fn class_3_the_checker_refuses_what_the_source_cannot_see() {
    let Some(b) = backend("class_3_the_checker_refuses_what_the_source_cannot_see").await else {
        return;
    };
    // a declaration added behind the kernel's back (emulated): the kernel replay refuses it
    let v = verify(
        &b,
        &one("-- STANDIN_FORGE t : False\n"),
        Some(&one(ORIG_FALSE)),
    )
    .await;
    assert!(!v.report.verified);
    assert!(
        v.report
            .violations
            .iter()
            .any(|x| x.kind == ViolationKind::KernelRejected && x.from_lean),
        "{:?}",
        v.report.violations
    );
    // a non-positive inductive (the kernel's own check, emulated by the stand-in)
    let bad = "inductive Bad where\n  | mk : (Bad → False) → Bad\ntheorem t : False := sorry\n";
    let v = verify(&b, &one(bad), Some(&one(ORIG_FALSE))).await;
    assert!(!v.report.verified && !v.report.compiles);
    // a changed statement is caught by the checker as well as by the source comparison
    let v = verify(
        &b,
        &one("theorem t : True := trivial\n"),
        Some(&one(ORIG_FALSE)),
    )
    .await;
    let from_checker: Vec<_> = v.report.violations.iter().filter(|x| x.from_lean).collect();
    assert!(
        from_checker
            .iter()
            .any(|x| x.kind == ViolationKind::StatementChanged),
        "{:?}",
        v.report.violations
    );
    // a dropped import of the original
    let v = verify(
        &b,
        &one("theorem t : 2 = 2 := rfl\n"),
        Some(&one("import Mathlib\ntheorem t : 2 = 2 := sorry\n")),
    )
    .await;
    assert!(v
        .report
        .violations
        .iter()
        .any(|x| x.kind == ViolationKind::ContextChanged && x.from_lean));
}

#[tokio::test]
async fn class_4_honest_proofs_written_differently_verify() {
    let Some(b) = backend("class_4_honest_proofs_written_differently_verify").await else {
        return;
    };
    let cases: &[(&str, &str)] = &[
        (
            "theorem t : (fun x : Nat => x) = id := sorry\n",
            "theorem t : (fun x : Nat ↦ x) = id := rfl\n",
        ),
        (
            "theorem t : (λ x : Nat => x) = id := sorry\n",
            "theorem t : (fun x : Nat ↦ x) = id := rfl\n",
        ),
        (
            "theorem t : Nat → Nat := sorry\n",
            "theorem t : Nat -> Nat := id\n",
        ),
        (
            "theorem t : 1 = 1 := sorry\n",
            "theorem «t» : 1 = 1 := rfl\n",
        ),
        (
            "namespace A\ntheorem t : 1 = 1 := sorry\nend A\n",
            "namespace «A»\ntheorem t : 1 = 1 := rfl\nend «A»\n",
        ),
        (
            "theorem t : '\"'.toNat = 34 := sorry\n",
            "theorem t : '\"'.toNat = 34 := rfl\n",
        ),
        (
            "theorem t : 1 = 1 := sorry\n",
            "set_option maxHeartbeats 400000 in\ntheorem t : 1 = 1 := rfl\n",
        ),
        (
            "/-- doc -/\ntheorem t : 1 = 1 := sorry\n",
            "/-- another doc -/\ntheorem t : 1 = 1 := rfl\n",
        ),
        (
            "theorem t : 1 = 1 := sorry\n",
            "theorem t : 1 = 1 := by\n  open Nat in rfl\n",
        ),
    ];
    let tasks = cases.iter().map(|(orig, cand)| {
        let b = b.clone();
        async move {
            let v = verify(&b, &one(cand), Some(&one(orig))).await;
            assert!(
                v.report.verified,
                "{cand}\nagainst\n{orig}\nrefused: {:?}",
                v.report.violations
            );
        }
    });
    futures::future::join_all(tasks).await;
    let _ = BTreeMap::<String, String>::new();
}
