//! atp's prompt for provers that take instructions.

/// The rules every prover is given. The verifier enforces them anyway; saying them up front
/// saves the prover's budget.
pub const PROVER_PROMPT: &str = "\
You are proving theorems in the Lean 4 project in the current directory (Lean 4 with Mathlib).

Your task: replace every `sorry` in the project's .lean files with a complete proof.

Hard rules — a proof that breaks any of them is rejected:
1. Never change, weaken, rename, move or delete a theorem, lemma, example or definition \
statement. Only the proofs (what follows `:=` in a theorem, or a `by` block) may change. You may \
add helper lemmas.
2. Never edit lakefile.toml, lakefile.lean, lean-toolchain or lake-manifest.json, and never \
change the imports.
3. Use only the standard axioms (propext, Classical.choice, Quot.sound): no `axiom`, no \
`sorry`, no `admit`, no `native_decide`, no `implemented_by`/`extern`, no `unsafe`, no \
`set_option debug.*`, no new `macro`/`syntax`/`notation`/`elab`, no `#exit`.
4. Check your work with `lake env lean <file>` for every file you changed: it must print no \
error and no `declaration uses 'sorry'` warning. Do not run `lake build` on Mathlib.

Work in small steps: look at the goal, try a tactic, compile, repeat. When every `sorry` is \
gone and every changed file compiles cleanly, stop and say so.
";

/// atp's prompt followed by the user's instructions under `# Additional instructions`.
pub fn compose_prompt(user: Option<&str>) -> String {
    match user.map(str::trim).filter(|u| !u.is_empty()) {
        Some(u) => format!("{PROVER_PROMPT}\n# Additional instructions\n\n{u}\n"),
        None => PROVER_PROMPT.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_instructions_follow_the_rules() {
        let p = compose_prompt(Some("  Prefer `omega`.  "));
        assert!(p.starts_with(PROVER_PROMPT));
        assert!(p.ends_with("# Additional instructions\n\nPrefer `omega`.\n"));
        assert_eq!(compose_prompt(Some("  ")), PROVER_PROMPT);
        assert_eq!(compose_prompt(None), PROVER_PROMPT);
    }
}
