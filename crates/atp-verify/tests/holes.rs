//! Definition holes through the engine: every hole of the original reported with the candidate's
//! body; with an answer key, the filled hole judged by the checker (stand-in `lake`/`atp-check`
//! of the test image: `rfl` holds when the body is the answer as written, `decide` tells
//! different numerals apart).

use std::collections::BTreeMap;

use atp_verify::{HoleCheck, ViolationKind};

use crate::common::{backend, one, verify_with};

const ORIGINAL: &str = "import Mathlib\n\nopen Nat\n\nabbrev easy_solution : ℕ := sorry\n-- 2\n\ntheorem easy : 1 + 1 = easy_solution := by\n  sorry\n\nnamespace N\n\ndef other_solution : ℕ := sorry\n\ntheorem other : other_solution ≤ 5 := by\n  sorry\n\nend N\n";

fn candidate(easy: &str, other: &str) -> BTreeMap<String, String> {
    one(&ORIGINAL
        .replacen(":= sorry\n-- 2", &format!(":= {easy}\n-- 2"), 1)
        .replacen(
            "def other_solution : ℕ := sorry",
            &format!("def other_solution : ℕ := {other}"),
            1,
        )
        .replace("  sorry\n", "  decide\n"))
}

fn answers() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("easy_solution".to_string(), "2".to_string()),
        ("N.other_solution".to_string(), "(3)".to_string()),
    ])
}

#[tokio::test]
async fn holes_are_reported_and_checked_against_the_answer_key() {
    let Some(b) = backend("holes_are_reported_and_checked_against_the_answer_key").await else {
        return;
    };
    let orig = one(ORIGINAL);

    // Both holes filled with the official answers: equal, verified.
    let v = verify_with(&b, &candidate("2", "3"), Some(&orig), |o| {
        atp_verify::VerifyOptions {
            answers: answers(),
            ..o
        }
    })
    .await
    .expect("verdict");
    let h = &v.report.definition_holes;
    assert_eq!(h.len(), 2, "{h:?}");
    assert_eq!(
        (h[0].name.as_str(), h[0].body.as_deref()),
        ("easy_solution", Some("2"))
    );
    assert_eq!(
        (h[1].name.as_str(), h[1].body.as_deref()),
        ("N.other_solution", Some("3"))
    );
    assert!(h.iter().all(|h| h.check == HoleCheck::Equal), "{h:?}");
    assert!(v.report.verified, "{:?}", v.report.violations);
    assert!(v.report.holes_confirmed());
    // the check modules are never the candidate's files
    assert_eq!(v.report.per_file.keys().collect::<Vec<_>>(), ["Main.lean"]);

    // A trivialising value (0 ≤ 5) proved different from the official answer: wrong, and a
    // `wrong_answer` violation; the statement check alone cannot see it.
    let v = verify_with(&b, &candidate("2", "0"), Some(&orig), |o| {
        atp_verify::VerifyOptions {
            answers: answers(),
            ..o
        }
    })
    .await
    .expect("verdict");
    let h = &v.report.definition_holes;
    assert_eq!(h[0].check, HoleCheck::Equal);
    assert_eq!(h[1].check, HoleCheck::Wrong, "{h:?}");
    assert!(!v.report.verified);
    assert!(v
        .report
        .violations
        .iter()
        .any(|x| x.kind == ViolationKind::WrongAnswer
            && x.decl.as_deref() == Some("N.other_solution")));

    // A value neither tactic decides (not a numeral): undecided — verified by Lean, but not
    // confirmed, so a benchmark does not count it.
    let v = verify_with(&b, &candidate("1 + 1", "3"), Some(&orig), |o| {
        atp_verify::VerifyOptions {
            answers: answers(),
            ..o
        }
    })
    .await
    .expect("verdict");
    let h = &v.report.definition_holes;
    assert_eq!(h[0].check, HoleCheck::Undecided, "{h:?}");
    assert!(!v.report.holes_confirmed());

    // No answer key: reported with the body, unchecked.
    let v = verify_with(&b, &candidate("0", "0"), Some(&orig), |o| o)
        .await
        .expect("verdict");
    let h = &v.report.definition_holes;
    assert_eq!(h.len(), 2);
    assert!(h.iter().all(|h| h.check == HoleCheck::Unchecked), "{h:?}");
    assert_eq!(h[0].body.as_deref(), Some("0"));
    assert!(v.report.verified, "{:?}", v.report.violations);
    assert!(!v.report.holes_confirmed());
}

#[tokio::test]
async fn an_answer_that_does_not_elaborate_is_undecided_not_an_error() {
    let Some(b) = backend("an_answer_that_does_not_elaborate_is_undecided_not_an_error").await
    else {
        return;
    };
    let orig = one(ORIGINAL);
    let v = verify_with(&b, &candidate("2", "3"), Some(&orig), |o| {
        atp_verify::VerifyOptions {
            answers: BTreeMap::from([("easy_solution".to_string(), "STANDIN_ERROR".to_string())]),
            ..o
        }
    })
    .await
    .expect("a verdict, not an error");
    let h = &v.report.definition_holes;
    assert_eq!(h[0].check, HoleCheck::Undecided, "{h:?}");
    assert!(
        h[0].note
            .as_deref()
            .is_some_and(|n| n.contains("answer key")),
        "{h:?}"
    );
    assert_eq!(h[1].check, HoleCheck::Unchecked);
}
