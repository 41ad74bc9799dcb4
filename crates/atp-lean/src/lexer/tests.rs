use super::*;

fn texts(src: &str) -> Vec<String> {
    tokenize(src).into_iter().map(|t| t.text).collect()
}

fn idents(src: &str) -> Vec<String> {
    tokenize(src)
        .into_iter()
        .filter(|t| t.kind == TokenKind::Ident)
        .map(|t| t.text)
        .collect()
}

/// Whether `axiom` is read as a keyword token (code), the way Lean reads it.
fn sees_axiom(src: &str) -> bool {
    tokenize(src).iter().any(|t| t.is("axiom"))
}

#[test]
fn sorry_only_as_a_whole_token() {
    assert!(contains_sorry("theorem t : P := sorry"));
    assert!(contains_sorry("example : P := by\n  exact (sorry)"));
    assert!(contains_sorry("theorem t : P := ⟨sorry, sorry⟩"));
    assert!(contains_sorry("theorem t : P := by admit"));
    assert!(!contains_sorry("theorem t : P := my_sorry"));
    assert!(!contains_sorry("theorem t : P := sorry_lemma x"));
    assert!(!contains_sorry("theorem t : P := Foo.sorry'"));
    assert!(!contains_sorry("def unsorry := 1"));
    assert!(contains_sorry("theorem t : P := sorryAx _ false"));
    // however the constant is spelt
    assert!(contains_sorry("theorem t : P := «sorryAx» _ false"));
    assert!(contains_sorry("theorem t : P := _root_.sorryAx _ false"));
    assert!(contains_sorry(
        "theorem t : P := «_root_».«sorryAx» _ false"
    ));
}

#[test]
fn comments_and_literals_hide_sorry() {
    assert!(!contains_sorry("-- sorry\ntheorem t : P := rfl"));
    assert!(!contains_sorry(
        "/- a /- nested sorry -/ still comment sorry -/ def x := 1"
    ));
    assert!(!contains_sorry(
        "/-- doc: sorry -/ theorem t : True := trivial"
    ));
    assert!(!contains_sorry("def s := \"sorry\""));
    assert!(!contains_sorry("def s := \"esc \\\" sorry\""));
    assert!(!contains_sorry("def s := r#\"raw \" sorry\"#"));
    assert!(!contains_sorry("def c := 's'"));
    // after the nested comment closes, code resumes
    assert!(contains_sorry("/- /- -/ -/ theorem t : P := sorry"));
}

#[test]
fn char_literals_follow_char_lit_fn_aux() {
    // an escaped quote is one char literal; what follows is code
    for src in [
        "def c := '\\''\naxiom bad : False",
        "def c := '\\'' axiom bad : False",
        "def c : List Char := ['\\'', '\\'']\naxiom bad : False",
        "def c := '\\\\'\naxiom bad : False",
        "def c := '\\x41' axiom bad : False",
        "def c := '\\u03B1' axiom bad : False",
        "def c := '\\n' axiom bad : False",
    ] {
        assert!(sees_axiom(src), "{src}");
        assert!(lex(src).diagnostics.is_empty(), "{src}");
    }
    // a char literal holding `"` opens no string
    for src in [
        "def q := '\"'\naxiom bad : False",
        "def q := ('\"', 1)\naxiom bad : False",
        "theorem t : '\"'.toNat = 34 := rfl\naxiom bad : False",
    ] {
        assert!(sees_axiom(src), "{src}");
    }
    let toks = tokenize("'\\'' '\"' 'a' '∀'");
    assert!(toks.iter().all(|t| t.kind == TokenKind::Char), "{toks:?}");
    assert_eq!(toks.len(), 4);
}

#[test]
fn primes_are_identifier_characters_not_char_literals() {
    assert_eq!(texts("h' x'' 'a' f'"), vec!["h'", "x''", "'a'", "f'"]);
    assert_eq!(
        texts("Scope.fromBytes'_append"),
        vec!["Scope.fromBytes'_append"]
    );
    // `''` at a token start is not a char literal
    assert_eq!(tokenize("''")[0].kind, TokenKind::Sym);
}

#[test]
fn identifier_characters_are_leans_not_unicodes() {
    // `ᶜ` (a Mathlib postfix) is not an identifier character: a keyword glued to it is seen
    for src in [
        "theorem t : sᶜaxiom bad : False",
        "lemma t : xᶜ = y := rfl ᶜaxiom bad : False",
        "def f := ⁻¹axiom bad : False",
        "def f := фaxiom bad : False",
        "def f := 𝕜axiom",
    ] {
        let toks = tokenize(src);
        let seen = toks.iter().any(|t| t.is("axiom"));
        // `𝕜` (U+1D55C) is letter-like: `𝕜axiom` is one identifier in Lean too
        assert_eq!(seen, !src.contains('𝕜'), "{src}: {toks:?}");
    }
    assert_eq!(idents("sᶜ"), vec!["s"]);
    assert_eq!(texts("λx"), vec!["λ", "x"], "λ is not letter-like");
    assert_eq!(idents("Π x, Σ y"), vec!["x", "y"]);
    assert_eq!(
        idents("α₁ ℕ x₀' étonnant ψ ⱼ xⱼ"),
        vec!["α₁", "ℕ", "x₀'", "étonnant", "ψ", "xⱼ"]
    );
    assert_eq!(idents("f?x!y"), vec!["f?x!y"]);
    assert_eq!(idents("a×b a÷b"), vec!["a", "b", "a", "b"]);
}

#[test]
fn numbers_never_swallow_letters() {
    assert!(sees_axiom("theorem t : 1 = 1 := rfl 2axiom bad : False"));
    assert!(sees_axiom("def n := 0b101axiom"));
    assert_eq!(texts("0x1Fg"), vec!["0x1F", "g"]);
    assert_eq!(
        texts("1_000 2.5e-3 7. 0o17"),
        vec!["1_000", "2.5e-3", "7.", "0o17"]
    );
    assert_eq!(texts("x.1.2"), vec!["x", ".", "1.2"]);
}

#[test]
fn comment_forms_lean_treats_specially() {
    // `/-` consumes its third character unexamined: `/-/-` is ONE level, so code follows
    assert!(sees_axiom("/-/- -/ axiom bad : False"));
    assert!(sees_axiom("/-/-/ -/ axiom bad : False"));
    // a real nesting needs the `/-` after the third character
    assert!(!sees_axiom("/- /- -/ axiom bad : False -/"));
    assert!(sees_axiom("/- /- -/ -/ axiom bad : False"));
    // `/--/` opens a doc comment that does not close itself
    assert!(!sees_axiom(
        "/--/ axiom bad : False -/ theorem t : True := trivial"
    ));
    let toks = tokenize("/--/ x -/ theorem t : True := trivial");
    assert_eq!(toks[0].kind, TokenKind::DocComment);
    assert_eq!(toks[0].text, "/--/ x -/");
    assert!(toks[1].is("theorem"));
    // doc comments nest
    let toks = tokenize("/-- a /- b -/ c -/ def x := 1");
    assert_eq!(toks[0].kind, TokenKind::DocComment);
    assert!(toks[1].is("def"));
    // module docs are tokens too
    let toks = tokenize("/-! # Title -/\ntheorem t : True := trivial");
    assert_eq!(toks[0].kind, TokenKind::ModuleDoc);
    // `--` inside a block comment and `-/` inside a line comment mean nothing
    assert!(sees_axiom("/- -- -/ axiom"));
    assert!(sees_axiom("-- -/\naxiom"));
    assert!(!sees_axiom(
        "-- /-\naxiom".replace("\naxiom", " axiom").as_str()
    ));
    // `--/` closes a block comment (`-` then `-/`)
    assert!(sees_axiom("/- x --/ axiom"));
    let lx = lex("/- never closed axiom bad : False");
    assert!(!lx.tokens.iter().any(|t| t.is("axiom")));
    assert_eq!(lx.diagnostics.len(), 1);
}

#[test]
fn whitespace_is_only_space_tab_cr_lf() {
    // a no-break space is not whitespace in Lean: it is a (bad) token, not a separator
    let toks = tokenize("a\u{a0}b");
    assert_eq!(toks.len(), 3, "{toks:?}");
    assert_eq!(toks[1].kind, TokenKind::Sym);
}

#[test]
fn strings_raw_and_interpolated() {
    assert!(sees_axiom("def s := \"a\\\"b\" axiom"));
    assert!(sees_axiom("def s := r#\"a \" b\"# axiom"));
    assert!(sees_axiom("def s := r##\"a \"# b\"## axiom"));
    assert!(
        !sees_axiom("def s := r#\"a \" axiom"),
        "unterminated raw string"
    );
    // an interpolated string whose hole holds a quote does not end at that quote
    for src in [
        "def s := s!\"{\"}\"}\" axiom bad : False",
        "def s := s!\"a{(\"x\" ++ \"}\")}b\" axiom",
        "def s := m!\"{'\"'}\" axiom",
        "def s := throwError \"{ \"x\" } -- not a comment\" axiom",
        "def s := s!\"{s!\"{1}\"}\" axiom",
        "def s := f!\"{ /- \" -/ 1 }\" axiom",
    ] {
        let lx = lex(src);
        assert!(
            lx.tokens.iter().any(|t| t.is("axiom")),
            "{src}: {:?}",
            lx.tokens
        );
        assert!(lx.diagnostics.is_empty(), "{src}: {:?}", lx.diagnostics);
    }
    // code in holes is code
    assert!(contains_sorry("def s := s!\"x = {sorry}\""));
    assert!(!contains_sorry("def s := \"x = {sorry}\""));
    // the escaped brace opens no hole
    let lx = lex("def s := s!\"\\{\" axiom");
    assert!(lx.tokens.iter().any(|t| t.is("axiom")));
}

#[test]
fn ambiguous_strings_are_diagnosed_not_guessed() {
    // outside a known interpolating keyword, a string that ends elsewhere when interpolated
    for src in [
        "def s := foo \"{\"}\"}\" axiom",
        "def s := myInterp! \"{\"}\"}\"",
        "def s := dbg \"{ \"a\" }\"",
    ] {
        let lx = lex(src);
        assert_eq!(lx.diagnostics.len(), 1, "{src}: {:?}", lx.diagnostics);
        assert!(lx.diagnostics[0].message.contains("interpolated"));
    }
    // strings whose two readings agree are not flagged
    for src in [
        "def s := \"{x}\"",
        "def s := \"plain\"",
        "def s := \"{ a }\" ++ \"}\"",
        "def s := \"{\"",
    ] {
        assert!(lex(src).diagnostics.is_empty(), "{src}");
    }
}

#[test]
fn escaped_names_are_names_not_keywords() {
    let t = &tokenize("«instance»")[0];
    assert_eq!(t.kind, TokenKind::Ident);
    assert!(
        !t.is("instance"),
        "an escaped identifier is never a keyword"
    );
    assert_eq!(t.name(), "instance");
    let t = &tokenize("«a.b».c")[0];
    assert_eq!(t.components(), vec!["a.b", "c"]);
    assert_eq!(t.name(), "«a.b».c");
    assert_eq!(tokenize("«foo».«bar»")[0].name(), "foo.bar");
    assert_eq!(tokenize("«my name».b")[0].text, "«my name».b");
    assert_eq!(canonical("«debug».skipKernelTC"), "debug.skipKernelTC");
    assert_eq!(tokenize("`«x».y")[0].name(), "x.y");
}

#[test]
fn positions_are_line_and_char_column() {
    let toks = tokenize("theorem α_1 : True := by\n  sorry");
    let s = toks.iter().find(|t| t.text == "sorry").expect("sorry");
    assert_eq!((s.line, s.col, s.line_start), (2, 2, true));
    let colon = toks.iter().find(|t| t.text == ":").expect(":");
    assert_eq!(colon.col, 12);
    assert_eq!(sorry_positions("x\n  /- c -/ sorry"), vec![(2, 10)]);
}

#[test]
fn symbols_names_and_hash_commands() {
    assert_eq!(texts("a := b"), vec!["a", ":=", "b"]);
    assert_eq!(texts("@[simp] #exit"), vec!["@[", "simp", "]", "#exit"]);
    assert_eq!(
        texts("`(sorry) ``Nat"),
        vec!["`", "(", "sorry", ")", "``Nat"]
    );
    assert_eq!(
        texts("x.1 Nat.succ n"),
        vec!["x", ".", "1", "Nat.succ", "n"]
    );
    assert_eq!(texts("«my name».b"), vec!["«my name».b"]);
    assert_eq!(texts("a -> b <- c"), vec!["a", "->", "b", "<-", "c"]);
}

#[test]
fn normal_forms_unify_leans_alternative_spellings() {
    let n = |s: &str| -> Vec<String> { tokenize(s).iter().map(Token::normal).collect() };
    assert_eq!(n("fun x ↦ x"), n("λ x => x"));
    assert_eq!(n("∀ x, a → b"), n("forall x, a -> b"));
    assert_eq!(n("«foo» x"), n("foo x"));
    assert_ne!(n("≤"), n("<"));
}
