use super::*;

fn kws(src: &str) -> Vec<String> {
    parse(src)
        .commands
        .iter()
        .map(|c| c.keyword.clone())
        .collect()
}

fn find<'a>(f: &'a SourceFile, name: &str) -> &'a Command {
    f.commands
        .iter()
        .find(|c| c.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no `{name}` in {:?}", f.commands))
}

#[test]
fn splits_commands_and_tracks_namespaces() {
    let src = "import Mathlib\nopen Nat\n\nnamespace A.B\n\ntheorem foo (n : ℕ) : n = n := by\n  open Classical in\n  rfl\n\n/-- doc -/\n@[simp] private lemma bar : True := trivial\nend A.B\n\nexample : 1 = 1 := rfl\n";
    let f = parse(src);
    assert_eq!(
        kws(src),
        vec![
            "import",
            "open",
            "namespace",
            "theorem",
            "lemma",
            "end",
            "example"
        ]
    );
    assert_eq!(f.imports, vec!["Mathlib"]);
    let foo = &f.commands[3];
    assert_eq!(foo.full_name.as_deref(), Some("A.B.foo"));
    assert_eq!(foo.signature.as_deref(), Some("( n : ℕ ) : n = n"));
    assert_eq!((foo.line, foo.col), (6, 8));
    assert_eq!(foo.context, vec!["namespace A.B", "open Nat"]);
    let bar = &f.commands[4];
    assert_eq!(bar.full_name.as_deref(), Some("A.B.bar"));
    assert_eq!(bar.visibility(), "private");
    assert_eq!(bar.attributes, vec!["simp"]);
    assert!(f.diagnostics.is_empty());
    let ex = &f.commands[6];
    assert_eq!(ex.full_name, None);
    assert_eq!(ex.signature.as_deref(), Some(": 1 = 1"));
    assert_eq!(ex.context, vec!["namespace ", "open Nat"]);
}

#[test]
fn command_keywords_of_every_library_start_commands_mid_line() {
    // each hides an axiom-like command after a finished proof on the same line
    for (src, kw) in [
        ("lemma h : True := trivial axiom bad : False", "axiom"),
        (
            "lemma h : True := by simp irreducible_def bad : Nat := 1",
            "irreducible_def",
        ),
        ("lemma h : True := trivial alias bad := h", "alias"),
        (
            "lemma h : True := trivial proof_wanted bad : False",
            "proof_wanted",
        ),
        (
            "lemma h : True := trivial notation3 \"x\" => False",
            "notation3",
        ),
        (
            "lemma h : True := trivial suppress_compilation",
            "suppress_compilation",
        ),
        ("lemma h : True := trivial #eval (1 : Nat)", "#eval"),
        (
            "lemma h : True := trivial #not_a_known_command x",
            "#not_a_known_command",
        ),
        (
            "lemma h : True := trivial instance : Inhabited Nat := ⟨0⟩",
            "instance",
        ),
        (
            "lemma h : True := by trivial theorem t : False := sorry",
            "theorem",
        ),
        ("lemma h : True := trivial run_cmd pure ()", "run_cmd"),
        (
            "lemma h : True := trivial elab \"x\" : term => pure default",
            "elab",
        ),
        (
            "lemma h : True := trivial unseal foo in theorem t : True := trivial",
            "unseal",
        ),
        (
            "lemma h : True := trivial declare_aesop_rule_sets [x]",
            "declare_aesop_rule_sets",
        ),
        (
            "lemma h : True := trivial initialize_simps_projections Foo",
            "initialize_simps_projections",
        ),
    ] {
        let k = kws(src);
        assert!(k.contains(&kw.to_string()), "{src}: {k:?}");
        assert_eq!(k[0], "lemma", "{src}");
    }
}

#[test]
fn a_project_declared_command_keyword_starts_commands() {
    let lib = parse("macro \"evil\" : command => `(axiom bad : False)\n");
    let extra = declared_command_keywords([&lib]);
    assert!(extra.contains("evil"));
    let src = "lemma h : True := trivial evil\ntheorem t : False := bad";
    assert_eq!(parse(src).commands.len(), 2, "unknown to the built-in list");
    let f = parse_with(src, &extra);
    let k: Vec<&str> = f.commands.iter().map(|c| c.keyword.as_str()).collect();
    assert_eq!(k, vec!["lemma", "evil", "theorem"]);
    // a command syntax without a leading atom is refused (it could start commands anywhere)
    let f = parse("syntax ident \"!!\" : command\n");
    assert_eq!(f.diagnostics.len(), 1, "{:?}", f.diagnostics);
    let f = parse("syntax command \" also \" command : command\n");
    assert_eq!(f.diagnostics.len(), 1);
}

#[test]
fn every_in_prefix_is_part_of_the_context() {
    let src = "section\nvariable (x : Nat)\ntheorem a : x = x := rfl\nend\n\
               open Foo in\ntheorem b : True := trivial\n\
               set_option autoImplicit true in\ntheorem c : True := trivial\n\
               attribute [local instance] foo in\ntheorem d : True := trivial\n\
               variable (y : Nat) in\ntheorem e : y = y := rfl\n\
               include h in omit k in\ntheorem f : True := trivial\n\
               open A in set_option pp.all true in #guard_msgs in\ntheorem g : True := trivial\n\
               set_option maxHeartbeats 400000 in\ntheorem h : True := trivial\n\
               theorem z : True := trivial\n";
    let f = parse(src);
    assert_eq!(
        find(&f, "a").context,
        vec!["namespace ", "variable ( x : Nat )"]
    );
    assert_eq!(find(&f, "b").context, vec!["namespace ", "open Foo in"]);
    assert_eq!(
        find(&f, "c").context,
        vec!["namespace ", "set_option autoImplicit true in"]
    );
    assert_eq!(
        find(&f, "d").context,
        vec!["namespace ", "attribute [ local instance ] foo in"]
    );
    assert_eq!(
        find(&f, "e").context,
        vec!["namespace ", "variable ( y : Nat ) in"]
    );
    assert_eq!(
        find(&f, "f").context,
        vec!["namespace ", "include h in", "omit k in"]
    );
    let g = find(&f, "g");
    assert_eq!(g.prefixes.len(), 3);
    // pp.* only changes messages: a prefix, not context
    assert_eq!(g.context, vec!["namespace ", "open A in", "#guard_msgs in"]);
    let h = find(&f, "h");
    assert_eq!(h.prefixes, vec!["set_option maxHeartbeats 400000 in"]);
    assert_eq!(
        h.context,
        vec!["namespace "],
        "resource options do not change statements"
    );
    // a prefix's effect ends with the command it scopes
    assert_eq!(find(&f, "z").context, vec!["namespace "]);
    assert!(f.commands.iter().filter(|c| c.is_prefix).count() >= 9);
}

#[test]
fn open_and_set_option_in_proofs_stay_tactics() {
    let src = "lemma u : True := by open Classical in exact trivial\n\
               lemma v : True := by\n  set_option maxRecDepth 1000 in\n  exact trivial\n\
               lemma w : True := (open Nat in trivial)\n\
               lemma h : True := trivial open Real\ntheorem t : π > 3 := sorry\n";
    let f = parse(src);
    let k: Vec<&str> = f.commands.iter().map(|c| c.keyword.as_str()).collect();
    assert_eq!(
        k,
        vec!["lemma", "lemma", "lemma", "lemma", "open", "theorem"]
    );
    assert_eq!(f.commands[5].context, vec!["namespace ", "open Real"]);
}

#[test]
fn let_in_statement_and_root_and_escaped_names() {
    let f = parse("namespace N\ntheorem _root_.t : let x := 1; x = 1 := rfl\nend N");
    let t = &f.commands[1];
    assert_eq!(t.full_name.as_deref(), Some("t"));
    assert_eq!(t.signature.as_deref(), Some(": let x := 1 ; x = 1"));
    let f = parse("namespace «A».B\ntheorem «foo» : True := trivial\nend «A».B");
    assert_eq!(f.commands[1].full_name.as_deref(), Some("A.B.foo"));
    // guillemets and Lean's alternative spellings normalise away in statements
    let a = parse("theorem t : ∀ f : ℕ → ℕ, (fun x ↦ f x) = f := sorry");
    let b = parse("theorem «t» : forall f : ℕ -> ℕ, (λ x => «f» x) = f := sorry");
    assert_eq!(a.commands[0].signature, b.commands[0].signature);
    assert_eq!(a.commands[0].full_name, b.commands[0].full_name);
}

#[test]
fn body_sorry_and_equations() {
    let f = parse("def f : Nat → Nat\n  | 0 => sorry\n  | n + 1 => n\ndef g : |x| = 1 := sorry");
    assert_eq!(f.commands[0].signature.as_deref(), Some(": Nat → Nat"));
    assert!(f.commands[0].body_has_sorry);
    assert_eq!(f.commands[1].signature.as_deref(), Some(": | x | = 1"));
}

#[test]
fn commands_mid_line_are_split_with_their_modifiers_and_attributes() {
    let f = parse("lemma h : True := trivial private axiom bad : False\nlemma g : True := trivial open Foo in theorem t : False := bad\nclass inductive C | a\nlemma k : True := trivial @[implemented_by x, «instance»] def y := 1");
    let k: Vec<&str> = f.commands.iter().map(|c| c.keyword.as_str()).collect();
    assert_eq!(
        k,
        vec!["lemma", "axiom", "lemma", "open", "theorem", "class", "lemma", "def"]
    );
    assert_eq!(f.commands[1].modifiers, vec!["private"]);
    assert_eq!(f.commands[4].context, vec!["namespace ", "open Foo in"]);
    assert_eq!(f.commands[7].attributes, vec!["implemented_by", "instance"]);
}

#[test]
fn doc_comments_belong_to_their_declaration_and_module_docs_are_commands() {
    let src = "/-! # Module doc -/\n/-- doc of s -/\nstructure S where\n  /-- a field -/\n  x : Nat\n  /-- another -/\n  y : Nat\nderiving Repr\n/--/ odd doc -/ theorem t : True := trivial\n";
    let f = parse(src);
    let k: Vec<&str> = f.commands.iter().map(|c| c.keyword.as_str()).collect();
    assert_eq!(k, vec!["/-!", "structure", "theorem"]);
    assert!(f.diagnostics.is_empty(), "{:?}", f.diagnostics);
    let f = parse("deriving instance Repr for Nat\ninstance : Inhabited Nat := ⟨0⟩");
    let k: Vec<&str> = f.commands.iter().map(|c| c.keyword.as_str()).collect();
    assert_eq!(k, vec!["deriving", "instance"]);
}

#[test]
fn scoped_notation_and_noncomputable_sections_begin_at_their_prefix() {
    let f = parse("theorem a : True := trivial scoped[Foo] notation \"x\" => 1\nnoncomputable section\n@[expose] public section\nend\nend");
    let k: Vec<&str> = f.commands.iter().map(|c| c.keyword.as_str()).collect();
    assert_eq!(
        k,
        vec!["theorem", "notation", "section", "section", "end", "end"]
    );
    assert_eq!(f.commands[1].modifiers, vec!["scoped"]);
    assert_eq!(f.commands[2].modifiers, vec!["noncomputable"]);
}

#[test]
fn column_zero_keyword_resets_unbalanced_brackets() {
    let f = parse("theorem a : True := (by trivial\naxiom bad : False\n");
    assert!(f.commands.iter().any(|c| c.keyword == "axiom"));
}

#[test]
fn tokens_before_the_first_command_are_reported() {
    let f = parse("mystery_command foo\ntheorem t : True := trivial");
    assert_eq!(f.diagnostics.len(), 1);
    assert!(f.diagnostics[0].message.contains("mystery_command"));
    assert!(parse("-- only a comment\n").diagnostics.is_empty());
}
