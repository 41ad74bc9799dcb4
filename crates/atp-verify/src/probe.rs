//! The axiom probe and the probe copy of each file.
//!
//! The verifier never compiles the candidate's files in place: it compiles a COPY of each file
//! (under `/tmp` in the sandbox) in which
//! 1. every `example` keyword is replaced by `noncomputable def _atp_example_<k>` — Lean
//!    elaborates examples and then throws them away, so without a name their proof terms would
//!    never reach the environment and no axiom probe could see them (lines are preserved;
//!    columns shift only on those lines);
//! 2. the probe below is appended. It enumerates the constants the file itself added (stage 2
//!    of the environment's constant map, which includes auxiliary constants such as
//!    `foo.proof_1`, `match_1` and the renamed examples), collects each one's axioms with
//!    `Lean.collectAxioms` and logs them in `#print axioms` format, then logs a sentinel carrying
//!    a per-run nonce. Only messages positioned at or after the probe's first line are believed,
//!    so a candidate cannot forge probe output, and a missing sentinel (e.g. after `#exit`) is a
//!    violation.
//!
//! The probe is Lean 4 meta code written for v4.28; no Lean toolchain exists where atp is
//! developed, so it is exercised only against the stand-in `lake` of the test image, which
//! recognises the probe's marker comment and prints what real Lean would print.

use atp_lean::source::parse;

/// Marker comment that starts the probe (the stand-in looks for it).
pub const PROBE_MARKER: &str = "-- atp-axiom-probe";
/// Prefix of the sentinel message (followed by the nonce).
pub const SENTINEL: &str = "atp-probe-done";
/// Prefix of the generated names of examples.
pub const EXAMPLE_PREFIX: &str = "_atp_example_";

/// The probe text for `nonce`.
pub fn probe_source(nonce: &str) -> String {
    format!(
        r#"
{PROBE_MARKER} {nonce}
open Lean Elab Command in
run_cmd do
  let env ← getEnv
  -- constants added by this file (stage 2 of the constant map), auxiliary ones included
  let names := env.constants.foldStage2 (fun acc n _ => acc.push n) (#[] : Array Name)
  for n in names.qsort Name.quickLt do
    let axs ← collectAxioms n
    if axs.isEmpty then
      logInfo m!"'{{n}}' does not depend on any axioms"
    else
      logInfo m!"'{{n}}' depends on axioms: {{axs.qsort Name.lt |>.toList}}"
  logInfo m!"{SENTINEL} {nonce}"
"#
    )
}

/// A probe copy of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeCopy {
    pub text: String,
    /// First line of the probe in the copy (messages at or after it come from the probe).
    pub probe_line: usize,
    /// Number of examples renamed.
    pub examples: usize,
}

/// Build the probe copy of `src`.
pub fn probe_copy(src: &str, nonce: &str) -> ProbeCopy {
    let file = parse(src);
    let mut text = String::with_capacity(src.len() + 1024);
    let mut last = 0;
    let mut k = 0;
    for c in file.commands.iter().filter(|c| c.keyword == "example") {
        let t = &file.tokens[c.keyword_token];
        k += 1;
        text.push_str(&src[last..t.start]);
        if c.modifiers.iter().any(|m| m == "noncomputable") {
            text.push_str(&format!("def {EXAMPLE_PREFIX}{k}"));
        } else {
            text.push_str(&format!("noncomputable def {EXAMPLE_PREFIX}{k}"));
        }
        last = t.end;
    }
    text.push_str(&src[last..]);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let probe_line = text.lines().count() + 2; // blank line, then the marker
    text.push_str(&probe_source(nonce));
    ProbeCopy {
        text,
        probe_line,
        examples: k,
    }
}

/// The human name of a probed constant: `Ns._atp_example_2` → `example #2`.
pub fn display_decl(name: &str) -> String {
    let last = name.rsplit('.').next().unwrap_or(name);
    match last.strip_prefix(EXAMPLE_PREFIX) {
        Some(k) if k.chars().all(|c| c.is_ascii_digit()) => format!("example #{k}"),
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_get_names_and_lines_are_kept() {
        let src = "theorem t : True := trivial\nexample : True := by\n  trivial\nnoncomputable example : Nat := 1";
        let c = probe_copy(src, "N1");
        assert_eq!(c.examples, 2);
        let lines: Vec<&str> = c.text.lines().collect();
        assert_eq!(lines[1], "noncomputable def _atp_example_1 : True := by");
        assert_eq!(lines[3], "noncomputable def _atp_example_2 : Nat := 1");
        assert_eq!(lines[c.probe_line - 1], "-- atp-axiom-probe N1");
        assert!(c.text.contains("logInfo m!\"atp-probe-done N1\""));
        assert!(c.text.contains("collectAxioms n"));
        // the probe's own `run_cmd` is added to the copy only; the line count of the source is kept
        assert_eq!(lines[0], "theorem t : True := trivial");
    }

    #[test]
    fn example_in_comments_is_untouched() {
        let c = probe_copy("-- example : False\ntheorem x : True := trivial\n", "n");
        assert_eq!(c.examples, 0);
        assert!(c.text.starts_with("-- example : False\n"));
    }

    #[test]
    fn display_names() {
        assert_eq!(display_decl("Fixture._atp_example_3"), "example #3");
        assert_eq!(display_decl("Fixture.two_mul'"), "Fixture.two_mul'");
    }
}
