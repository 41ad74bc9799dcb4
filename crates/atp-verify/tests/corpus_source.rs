//! The exploit corpus through the source-level checks alone (no engine). Needs the corpus path
//! in ATP_EXPLOIT_CORPUS; skipped with a message when unset.

use atp_verify::check::{source_checks, VerifyPolicy};
use atp_verify::corpus;

#[test]
fn corpus_source_checks() {
    let Ok(dir) = std::env::var("ATP_EXPLOIT_CORPUS") else {
        {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "\n!!! SKIPPED corpus_source_checks: set ATP_EXPLOIT_CORPUS to the exploit corpus directory\n");
        }
        return;
    };
    // A relative path is taken from the workspace root (how `.ci/run` sets it) unless it
    // exists relative to the current directory.
    let mut path = std::path::PathBuf::from(&dir);
    if path.is_relative() && !path.exists() {
        path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(&dir);
    }
    let cases = corpus::load(&path).unwrap_or_else(|e| {
        panic!(
            "ATP_EXPLOIT_CORPUS={dir}: cannot read {}: {e}",
            path.display()
        )
    });
    assert!(
        cases.len() >= 50,
        "expected the full corpus, found {}",
        cases.len()
    );
    let mut refused = 0;
    let mut missed = Vec::new();
    for c in &cases {
        let v = source_checks(&c.candidate, Some(&c.original), &VerifyPolicy::default());
        if c.is_valid() {
            assert!(
                v.is_empty(),
                "{}: an honest solution was refused: {:?}",
                c.id(),
                v
            );
        } else if v.is_empty() {
            missed.push(c.id());
        } else {
            refused += 1;
        }
    }
    eprintln!("source-level: {refused} exploits refused; not decidable from source: {missed:?}");
    // What the source cannot decide needs Lean's kernel (a non-positive inductive) or is an
    // honest multi-file proof in the Transitive category.
    let allowed_misses = ["KernelRejection/NonPositive", "Transitive/Level2_UsesBoth"];
    for m in &missed {
        assert!(
            allowed_misses.contains(&m.as_str()),
            "{m} is not refused from the source"
        );
    }
}
