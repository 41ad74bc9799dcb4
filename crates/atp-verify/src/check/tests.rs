use super::*;

fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn kinds(cand: &str, orig: Option<&str>) -> Vec<ViolationKind> {
    kinds_with(cand, orig, &VerifyPolicy::default())
}

fn kinds_with(cand: &str, orig: Option<&str>, policy: &VerifyPolicy) -> Vec<ViolationKind> {
    let c = files(&[("T.lean", cand)]);
    let o = orig.map(|o| files(&[("T.lean", o)]));
    let mut k: Vec<ViolationKind> = source_checks(&c, o.as_ref(), policy)
        .into_iter()
        .map(|v| v.kind)
        .collect();
    k.sort();
    k.dedup();
    k
}

const ORIG: &str = "import Mathlib\n\nnamespace P\n\ntheorem t (n : ℕ) : n + 0 = n := by\n  sorry\n\nexample : 2 + 2 = 4 := by sorry\n\nend P\n";

#[test]
fn honest_proof_passes() {
    let cand = "import Mathlib\n\nnamespace P\n\n-- helper\nlemma helper (n : ℕ) : n = n := rfl\n\ntheorem   t (n : ℕ) :\n    n + 0 = n := by\n  simp\n\nexample : 2 + 2 = 4 := by norm_num\n\nend P\n";
    assert_eq!(kinds(cand, Some(ORIG)), vec![]);
}

#[test]
fn changed_weakened_deleted_renamed_moved() {
    let weakened = ORIG
        .replace("n + 0 = n := by\n  sorry", "True := trivial")
        .replace("by sorry", "by simp");
    assert_eq!(
        kinds(&weakened, Some(ORIG)),
        vec![ViolationKind::StatementChanged]
    );
    let deleted = ORIG.replace("theorem t (n : ℕ) : n + 0 = n := by\n  sorry", "");
    let v = source_checks(
        &files(&[("T.lean", &deleted)]),
        Some(&files(&[("T.lean", ORIG)])),
        &VerifyPolicy::default(),
    );
    assert_eq!(v.len(), 2, "{v:?}"); // theorem missing + example sorry
    assert_eq!(v[0].kind, ViolationKind::StatementMissing);
    assert_eq!(v[0].decl.as_deref(), Some("P.t"));
    let renamed = ORIG
        .replace("theorem t ", "theorem t' ")
        .replace("  sorry", "  simp");
    assert!(kinds(&renamed, Some(ORIG)).contains(&ViolationKind::StatementMissing));
    let moved = ORIG
        .replace("namespace P", "namespace Q")
        .replace("end P", "end Q");
    assert!(kinds(&moved, Some(ORIG)).contains(&ViolationKind::StatementMissing));
    let private = ORIG
        .replace("theorem t", "private theorem t")
        .replace("  sorry", "  simp");
    assert!(kinds(&private, Some(ORIG)).contains(&ViolationKind::StatementChanged));
    let as_def = ORIG
        .replace("theorem t", "def t")
        .replace("  sorry", "  simp");
    assert!(kinds(&as_def, Some(ORIG)).contains(&ViolationKind::StatementChanged));
    let ex_changed = ORIG.replace(
        "example : 2 + 2 = 4 := by sorry",
        "example : 2 + 2 = 5 := by simp",
    );
    let v = source_checks(
        &files(&[("T.lean", &ex_changed)]),
        Some(&files(&[("T.lean", ORIG)])),
        &VerifyPolicy::default(),
    );
    assert!(
        v.iter().any(|v| v.decl.as_deref() == Some("example #1")
            && v.kind == ViolationKind::StatementChanged),
        "{v:?}"
    );
}

#[test]
fn scope_changes_are_refused() {
    let open_in = ORIG
        .replace("theorem t", "open Real in\ntheorem t")
        .replace("  sorry", "  simp")
        .replace("by sorry", "by simp");
    let v = source_checks(
        &files(&[("T.lean", &open_in)]),
        Some(&files(&[("T.lean", ORIG)])),
        &VerifyPolicy::default(),
    );
    assert_eq!(
        kinds(&open_in, Some(ORIG)),
        vec![ViolationKind::ContextChanged],
        "{v:?}"
    );
    let var = ORIG
        .replace("namespace P\n", "namespace P\nvariable [Fact False]\n")
        .replace("  sorry", "  simp")
        .replace("by sorry", "by simp");
    // the example's scope changed too, so it no longer matches
    assert_eq!(
        kinds(&var, Some(ORIG)),
        vec![
            ViolationKind::StatementChanged,
            ViolationKind::ContextChanged
        ]
    );
    let no_import = ORIG
        .replace("import Mathlib\n", "")
        .replace("  sorry", "  simp")
        .replace("by sorry", "by simp");
    assert_eq!(
        kinds(&no_import, Some(ORIG)),
        vec![ViolationKind::ContextChanged]
    );
    // an open scoped to a helper only is fine
    let helper_open = ORIG
        .replace(
            "theorem t",
            "open Real in\nlemma h : True := trivial\ntheorem t",
        )
        .replace("  sorry", "  simp")
        .replace("by sorry", "by simp");
    assert_eq!(kinds(&helper_open, Some(ORIG)), vec![]);
}

#[test]
fn sorry_variants_in_candidate() {
    assert_eq!(
        kinds(
            "theorem t : True := by\n  have h : True := sorry\n  exact h",
            None
        ),
        vec![ViolationKind::Sorry]
    );
    assert_eq!(
        kinds("example : True := sorry", None),
        vec![ViolationKind::Sorry]
    );
    assert_eq!(
        kinds("theorem t : False := by admit", None),
        vec![ViolationKind::Sorry]
    );
    assert_eq!(
        kinds("-- sorry\ntheorem t : True := trivial /- sorry -/", None),
        vec![]
    );
}

#[test]
fn red_flags_from_the_cheat_corpus() {
    use ViolationKind as K;
    let cases: &[(&str, K)] = &[
        ("axiom my_ax : False\ntheorem t : False := my_ax", K::Axiom),
        ("theorem t : 2 + 2 = 4 := by native_decide", K::NativeDecide),
        (
            "theorem t : 2 + 2 = 4 := by decide +native",
            K::NativeDecide,
        ),
        (
            "theorem t : True := Lean.ofReduceBool _ _ rfl",
            K::NativeDecide,
        ),
        ("unsafe def f : Nat := 1", K::Unsafe),
        ("def f : Nat := unsafeCast ()", K::Unsafe),
        ("@[implemented_by g] def f : Nat := 1", K::ImplementedBy),
        (
            "def f : Nat := 1\nattribute [implemented_by g] f",
            K::ImplementedBy,
        ),
        ("@[extern \"c_f\"] def f : Nat := 1", K::Extern),
        ("@[export c_f] def f : Nat := 1", K::Extern),
        ("@[csimp] theorem e : @f = @g := rfl", K::Csimp),
        ("@[init] def h : IO Unit := pure ()", K::InitHook),
        (
            "set_option debug.skipKernelTC true\ntheorem t : True := trivial",
            K::DebugOption,
        ),
        (
            "theorem t : True := by\n  set_option debug.byAsSorry true in\n  trivial",
            K::DebugOption,
        ),
        (
            "theorem t : True := trivial\n#exit\ntheorem u : False := x",
            K::Exit,
        ),
        (
            "macro \"theorem\" : command => `(axiom x : False)",
            K::SyntaxExtension,
        ),
        (
            "local macro_rules | `(tactic| decide) => `(tactic| trivial)",
            K::SyntaxExtension,
        ),
        ("local notation \"True\" => False", K::SyntaxExtension),
        (
            "local instance : Add Nat where add _ _ := 3",
            K::NewInstance,
        ),
        (
            "instance (priority := high) dec : Decidable p := isTrue sorry",
            K::NewInstance,
        ),
        (
            "attribute [local instance] Classical.propDecidable",
            K::NewInstance,
        ),
        ("run_cmd do\n  Lean.addDecl d", K::Metaprogramming),
        (
            "theorem t : False := by\n  run_tac do\n    pure ()",
            K::Metaprogramming,
        ),
        ("elab \"x\" : term => pure default", K::Metaprogramming),
        ("#eval IO.println 1", K::Metaprogramming),
        ("initialize foo : IO.Ref Nat ← IO.mkRef 0", K::InitHook),
        (
            "import Evil.Lib\ntheorem t : True := trivial",
            K::UnknownImport,
        ),
    ];
    for (src, want) in cases {
        let got = kinds(src, None);
        assert!(got.contains(want), "{src:?}: expected {want}, got {got:?}");
    }
}

#[test]
fn policy_allowances_and_false_positive_guards() {
    let p = VerifyPolicy {
        allow_native_decide: true,
        ..Default::default()
    };
    assert_eq!(
        kinds_with("theorem t : 2 + 2 = 4 := by native_decide", None, &p),
        vec![]
    );
    // allowUnsafeReducibility is not `unsafe`
    assert_eq!(
        kinds(
            "set_option allowUnsafeReducibility true\ndef f := 1\nattribute [reducible] f",
            None
        ),
        vec![]
    );
    // a trusted import and a project import are fine
    let c = files(&[
        (
            "A.lean",
            "import Mathlib.Tactic\nimport B\ntheorem a : True := trivial",
        ),
        ("B.lean", "def b := 1"),
    ]);
    assert!(source_checks(&c, None, &VerifyPolicy::default()).is_empty());
    // instances/notation already in the original are not new
    let o = "scoped notation \"MyTrue\" => True\ntheorem t : MyTrue := sorry";
    let c = "scoped notation \"MyTrue\" => True\ntheorem t : MyTrue := trivial";
    assert_eq!(kinds(c, Some(o)), vec![]);
}

#[test]
fn definitions_of_the_original_must_not_change() {
    let o = "def foo (n : Nat) : Nat :=\n  match n with\n  | 0 => 0\n  | k + 1 => k\ntheorem t : foo 5 = 4 := sorry";
    let c = "def foo (n : Nat) : Nat := n - 1\ntheorem t : foo 5 = 4 := rfl";
    assert_eq!(kinds(c, Some(o)), vec![ViolationKind::StatementChanged]);
    // whitespace and comments do not matter
    let c2 = "-- same\ndef foo (n : Nat) : Nat :=\n  match n with | 0 => 0 | k + 1 => k\ntheorem t : foo 5 = 4 := rfl";
    assert_eq!(kinds(c2, Some(o)), vec![]);
    // a def with a sorry body is an obligation: only its statement is compared
    let o = "def x : False := sorry";
    assert_eq!(kinds("def x : False := y", Some(o)), vec![]);
    assert_eq!(
        kinds("def x : True := y", Some(o)),
        vec![ViolationKind::StatementChanged]
    );
}

#[test]
fn shadowing_a_name_used_by_a_statement() {
    let o = "namespace Foo\ntheorem t : Nat.Prime 7 := sorry\nend Foo";
    let c = "namespace Foo\ndef Nat.Prime (n : Nat) : Prop := True\ntheorem t : Nat.Prime 7 := trivial\nend Foo";
    let v = source_checks(
        &files(&[("T.lean", c)]),
        Some(&files(&[("T.lean", o)])),
        &VerifyPolicy::default(),
    );
    assert!(
        v.iter()
            .any(|v| v.kind == ViolationKind::Shadowing
                && v.decl.as_deref() == Some("Foo.Nat.Prime")),
        "{v:?}"
    );
}

#[test]
fn missing_file_of_the_original() {
    let o = files(&[
        ("A.lean", "theorem a : True := sorry"),
        ("B.lean", "theorem b : True := sorry"),
    ]);
    let c = files(&[("A.lean", "theorem a : True := trivial")]);
    let v = source_checks(&c, Some(&o), &VerifyPolicy::default());
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].kind, ViolationKind::StatementMissing);
    assert_eq!(v[0].file, "B.lean");
}

#[test]
fn one_line_evasions_are_still_seen() {
    use ViolationKind as K;
    // commands need no newline in Lean
    assert!(kinds(
        "lemma h : True := trivial axiom bad : False\ntheorem t : False := bad",
        None
    )
    .contains(&K::Axiom));
    assert!(kinds(
        "lemma h : True := trivial @[implemented_by g] def f : Nat := 1",
        None
    )
    .contains(&K::ImplementedBy));
    assert!(kinds(
        "lemma h : True := trivial local instance : Add Nat := ⟨fun _ _ => 3⟩",
        None
    )
    .contains(&K::NewInstance));
    let o = "theorem t : 1 + 1 = 2 := sorry";
    let c = "lemma h : True := trivial open Foo in theorem t : 1 + 1 = 2 := rfl";
    assert!(kinds(c, Some(o)).contains(&K::ContextChanged));
    let c = "lemma h : True := trivial open Foo\ntheorem t : 1 + 1 = 2 := rfl";
    assert!(kinds(c, Some(o)).contains(&K::ContextChanged));
}

#[test]
fn fail_closed_flags_of_the_second_round() {
    use ViolationKind::*;
    let has = |cand: &str, k: ViolationKind| kinds(cand, None).contains(&k);
    // duplicates and the verifier's reserved names
    assert!(has(
        "theorem a : True := trivial\ntheorem a : True := trivial\n",
        DuplicateDeclaration
    ));
    assert!(has(
        "namespace N\ntheorem a : True := trivial\nend N\ntheorem N.a : True := trivial\n",
        DuplicateDeclaration
    ));
    assert!(has("def _atp_example_1 := 1\n", DuplicateDeclaration));
    // headers
    assert!(has("prelude\ntheorem a : True := trivial\n", UnsafeHeader));
    assert!(has("module\ntheorem a : True := trivial\n", UnsafeHeader));
    assert!(!kinds_with(
        "module\ntheorem a : True := trivial\n",
        Some("module\ntheorem a : True := sorry\n"),
        &VerifyPolicy::default()
    )
    .contains(&UnsafeHeader));
    // unknown `#` commands, tokens outside commands, ambiguous strings
    assert!(has(
        "theorem a : True := trivial\n#mystery\n",
        SourceUnclear
    ));
    assert!(has(
        "mystery x\ntheorem a : True := trivial\n",
        SourceUnclear
    ));
    assert!(has("def s := foo \"{\"}\"}\"\n", SourceUnclear));
    assert!(!has(
        "theorem a : True := trivial\n#check a\n",
        SourceUnclear
    ));
    // attributes that register code, however spelt
    for attr in [
        "macro x",
        "term_elab x",
        "command_elab x",
        "tactic x",
        "«macro» x",
        "builtin_term_elab x",
        "command_parser",
        "simproc",
        "norm_num x",
    ] {
        assert!(
            has(&format!("@[{attr}] def f := 1\n"), Metaprogramming),
            "{attr}"
        );
    }
    assert!(has("attribute [term_elab x] f\n", Metaprogramming));
    assert!(has("@[init f] def g : IO Unit := pure ()\n", InitHook));
    // canonical names
    assert!(has("set_option «debug».skipKernelTC true\n", DebugOption));
    assert!(has(
        "@[«instance»] def i : Inhabited Nat := ⟨0⟩\n",
        NewInstance
    ));
    assert!(has("attribute [«instance»] i\n", NewInstance));
    assert!(has("theorem a : True := «sorryAx» True false\n", Sorry));
    assert!(has(
        "theorem a : 1 = 1 := by decide (config := { native := true })\n",
        NativeDecide
    ));
    // a project file standing in for a library module
    let c = files(&[("Mathlib/Fake.lean", "theorem a : True := trivial\n")]);
    assert!(source_checks(&c, None, &VerifyPolicy::default())
        .iter()
        .any(|v| v.kind == UnknownImport));
}
