//! The compile copy of each file.
//!
//! The verifier never compiles the candidate's files in place: it compiles a COPY of each file
//! in which every `example` keyword is replaced by `noncomputable def _atp_example_<k>` — Lean
//! elaborates examples and then throws them away, so without a name their proof terms would never
//! reach the `.olean` and the checker could not see them (lines are preserved; columns shift only
//! on those lines). Nothing else changes: the checker reads what Lean compiled from the file.
//! Names starting with `_atp_` are refused in sources (see [`crate::check::RESERVED_PREFIX`]).

use atp_lean::source::parse;

/// Prefix of the generated names of examples.
pub const EXAMPLE_PREFIX: &str = "_atp_example_";

/// A compile copy of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileCopy {
    pub text: String,
    /// Number of examples renamed.
    pub examples: usize,
}

/// Build the compile copy of `src`.
pub fn compile_copy(src: &str) -> CompileCopy {
    let file = parse(src);
    let mut text = String::with_capacity(src.len() + 64);
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
    CompileCopy { text, examples: k }
}

/// The human name of a checked constant: `Ns._atp_example_2` → `example #2`, a private name
/// `_private.M.0.Ns.foo` → `Ns.foo`.
pub fn display_decl(name: &str) -> String {
    let user = match name.strip_prefix("_private.") {
        Some(rest) => {
            let parts: Vec<&str> = rest.split('.').collect();
            match parts
                .iter()
                .position(|p| p.chars().all(|c| c.is_ascii_digit()))
            {
                Some(i) => parts[i + 1..].join("."),
                None => name.to_string(),
            }
        }
        None => name.to_string(),
    };
    let last = user.rsplit('.').next().unwrap_or(&user);
    match last.strip_prefix(EXAMPLE_PREFIX) {
        Some(k) if !k.is_empty() && k.chars().all(|c| c.is_ascii_digit()) => {
            format!("example #{k}")
        }
        _ => user,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_get_names_and_lines_are_kept() {
        let src = "theorem t : True := trivial\nexample : True := by\n  trivial\nnoncomputable example : Nat := 1";
        let c = compile_copy(src);
        assert_eq!(c.examples, 2);
        let lines: Vec<&str> = c.text.lines().collect();
        assert_eq!(lines[1], "noncomputable def _atp_example_1 : True := by");
        assert_eq!(lines[3], "noncomputable def _atp_example_2 : Nat := 1");
        assert_eq!(lines[0], "theorem t : True := trivial");
        assert_eq!(lines.len(), 4, "nothing is appended");
    }

    #[test]
    fn example_in_comments_is_untouched() {
        let c = compile_copy("-- example : False\ntheorem x : True := trivial\n");
        assert_eq!(c.examples, 0);
        assert!(c.text.starts_with("-- example : False\n"));
    }

    #[test]
    fn display_names() {
        assert_eq!(display_decl("Fixture._atp_example_3"), "example #3");
        assert_eq!(display_decl("_atp_example_1"), "example #1");
        assert_eq!(display_decl("Fixture.two_mul'"), "Fixture.two_mul'");
        assert_eq!(display_decl("_private.A.B.0.A.foo"), "A.foo");
    }
}
