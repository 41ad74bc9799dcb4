//! The checker's line protocol (version 1), parsed strictly.
//!
//! `atp-check` (Lean source in `images/checker/AtpCheck.lean`; the test image's stand-in speaks
//! the same protocol) prints one JSON object per line; see that file's header for the messages.
//! [`parse_checker`] accepts exactly that: a `hello` of protocol 1 first, `done` last with counts
//! that match, a `module` or `kernel` line for every candidate module it was given, no unknown
//! message, field or value. Anything else is an error — the checker did not answer — never a
//! verdict.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

/// The protocol version atp speaks.
pub const PROTOCOL: u32 = 1;

/// One line of the checker's output.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case", deny_unknown_fields)]
pub enum CheckerLine {
    Hello {
        protocol: u32,
        lean: String,
    },
    Module {
        module: String,
        constants: usize,
    },
    Kernel {
        module: String,
        decl: String,
        error: String,
    },
    Axioms {
        module: String,
        decl: String,
        axioms: Vec<String>,
    },
    Import {
        module: String,
        missing: String,
    },
    Obligation {
        module: String,
        decl: String,
        kind: String,
        status: ObligationStatus,
    },
    Done {
        modules: usize,
        obligations: usize,
    },
    Error {
        message: String,
    },
}

/// How one obligation of the original fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObligationStatus {
    Ok,
    Missing,
    KindMismatch,
    LevelMismatch,
    TypeMismatch,
    ValueMismatch,
}

/// The checker's findings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckerReport {
    pub lean: String,
    /// Modules the kernel replayed, with their constant counts.
    pub replayed: BTreeMap<String, usize>,
    /// Kernel refusals: module → (declaration, error).
    pub kernel: BTreeMap<String, (String, String)>,
    /// `(module, declaration) → axioms`, for every constant of a replayed module.
    pub axioms: BTreeMap<(String, String), Vec<String>>,
    /// `(module, import)` of the original that the candidate dropped.
    pub missing_imports: Vec<(String, String)>,
    /// `(module, declaration, kind, status)` for every obligation.
    pub obligations: Vec<(String, String, String, ObligationStatus)>,
}

/// Parse the checker's stdout (`modules`: the candidate modules it was given).
pub fn parse_checker(stdout: &str, modules: &BTreeSet<String>) -> Result<CheckerReport, String> {
    let mut r = CheckerReport::default();
    let mut seen_hello = false;
    let mut done = None;
    for (n, line) in stdout.lines().enumerate() {
        let msg: CheckerLine = serde_json::from_str(line)
            .map_err(|e| format!("line {}: not a protocol message ({e})", n + 1))?;
        if done.is_some() {
            return Err(format!("line {}: output after `done`", n + 1));
        }
        if !seen_hello && !matches!(msg, CheckerLine::Hello { .. } | CheckerLine::Error { .. }) {
            return Err("the first line is not `hello`".into());
        }
        let known = |m: &str| -> Result<(), String> {
            if modules.contains(m) {
                Ok(())
            } else {
                Err(format!(
                    "line {}: module `{m}` was not given to the checker",
                    n + 1
                ))
            }
        };
        match msg {
            CheckerLine::Hello { protocol, lean } => {
                if seen_hello {
                    return Err("a second `hello`".into());
                }
                if protocol != PROTOCOL {
                    return Err(format!(
                        "the checker speaks protocol {protocol}, atp speaks {PROTOCOL}; rebuild the image with `atp build-image`"
                    ));
                }
                seen_hello = true;
                r.lean = lean;
            }
            CheckerLine::Module { module, constants } => {
                known(&module)?;
                if r.replayed.insert(module.clone(), constants).is_some()
                    || r.kernel.contains_key(&module)
                {
                    return Err(format!("module `{module}` reported twice"));
                }
            }
            CheckerLine::Kernel {
                module,
                decl,
                error,
            } => {
                known(&module)?;
                if r.replayed.contains_key(&module)
                    || r.kernel.insert(module.clone(), (decl, error)).is_some()
                {
                    return Err(format!("module `{module}` reported twice"));
                }
            }
            CheckerLine::Axioms {
                module,
                decl,
                axioms,
            } => {
                if !r.replayed.contains_key(&module) {
                    return Err(format!(
                        "axioms of `{decl}` before module `{module}` was replayed"
                    ));
                }
                r.axioms.insert((module, decl), axioms);
            }
            CheckerLine::Import { module, missing } => r.missing_imports.push((module, missing)),
            CheckerLine::Obligation {
                module,
                decl,
                kind,
                status,
            } => r.obligations.push((module, decl, kind, status)),
            CheckerLine::Done {
                modules: m,
                obligations,
            } => {
                if m != modules.len() || obligations != r.obligations.len() {
                    return Err(format!(
                        "`done` counts {m} modules and {obligations} obligations, but {} and {} were reported",
                        modules.len(),
                        r.obligations.len()
                    ));
                }
                done = Some(());
            }
            CheckerLine::Error { message } => return Err(format!("the checker failed: {message}")),
        }
    }
    if done.is_none() {
        return Err("the output ends without `done`".into());
    }
    for m in modules {
        if !r.replayed.contains_key(m) && !r.kernel.contains_key(m) {
            return Err(format!("module `{m}` was neither replayed nor refused"));
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mods(ms: &[&str]) -> BTreeSet<String> {
        ms.iter().map(|m| m.to_string()).collect()
    }

    const GOOD: &str = r#"{"t":"hello","protocol":1,"lean":"4.28.0"}
{"t":"module","module":"A","constants":2}
{"t":"axioms","module":"A","decl":"A.t","axioms":["propext"]}
{"t":"kernel","module":"B","decl":"B.bad","error":"(kernel) declaration type mismatch"}
{"t":"import","module":"A","missing":"Mathlib.Tactic"}
{"t":"obligation","module":"A","decl":"A.t","kind":"theorem","status":"ok"}
{"t":"obligation","module":"A","decl":"_atp_example_1","kind":"example","status":"type_mismatch"}
{"t":"done","modules":2,"obligations":2}
"#;

    #[test]
    fn a_complete_answer_parses() {
        let r = parse_checker(GOOD, &mods(&["A", "B"])).expect("parses");
        assert_eq!(r.replayed["A"], 2);
        assert_eq!(r.kernel["B"].0, "B.bad");
        assert_eq!(r.axioms[&("A".into(), "A.t".into())], vec!["propext"]);
        assert_eq!(r.obligations[1].3, ObligationStatus::TypeMismatch);
        assert_eq!(r.missing_imports.len(), 1);
    }

    #[test]
    fn anything_unexpected_is_an_error() {
        let m = mods(&["A", "B"]);
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "without `done`"),
            (
                GOOD.replace("\"protocol\":1", "\"protocol\":2"),
                "protocol 2",
            ),
            (
                GOOD.lines().skip(1).collect::<Vec<_>>().join("\n"),
                "first line",
            ),
            (
                GOOD.replace("{\"t\":\"done\",\"modules\":2,\"obligations\":2}\n", ""),
                "without `done`",
            ),
            (
                GOOD.replace("\"obligations\":2}", "\"obligations\":3}"),
                "counts",
            ),
            (
                format!("{GOOD}{{\"t\":\"module\",\"module\":\"A\",\"constants\":1}}\n"),
                "after `done`",
            ),
            (
                GOOD.replace("\"status\":\"ok\"", "\"status\":\"fine\""),
                "not a protocol message",
            ),
            (
                GOOD.replace("\"constants\":2", "\"constants\":2,\"extra\":1"),
                "not a protocol message",
            ),
            (
                GOOD.replace("{\"t\":\"kernel\"", "{\"t\":\"kernal\""),
                "not a protocol message",
            ),
            (
                GOOD.replace(
                    "\"module\":\"B\",\"decl\":\"B.bad\"",
                    "\"module\":\"C\",\"decl\":\"C.bad\"",
                ),
                "not given",
            ),
            (
                GOOD.replacen(
                    "{\"t\":\"module\",\"module\":\"A\",\"constants\":2}\n",
                    "",
                    1,
                ),
                "before module",
            ),
            ("not json\n".to_string(), "not a protocol message"),
            (
                "{\"t\":\"error\",\"message\":\"no .olean for module A\"}\n".to_string(),
                "no .olean",
            ),
            (format!("{GOOD}garbage\n"), "not a protocol message"),
        ];
        for (out, want) in cases {
            let e = parse_checker(&out, &m).expect_err(&out);
            assert!(e.contains(want), "{want}: {e}");
        }
        // a module that is never mentioned
        let e = parse_checker(GOOD, &mods(&["A", "B", "C"])).expect_err("C missing");
        assert!(e.contains("counts") || e.contains("`C`"), "{e}");
    }
}
