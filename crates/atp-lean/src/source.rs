//! A Lean file as a sequence of top-level commands, with the scope each declaration lives in.
//!
//! This is a source-level model (no elaboration): it splits a file into commands at command
//! keywords, tracks `namespace`/`section`/`end`, `open`, `variable`, `universe`, `include`,
//! `omit` and `export`, and extracts each declaration's kind, modifiers, attributes, full name
//! and signature (the statement: everything between the name and the top-level `:=`).
//!
//! Invariant: a command keyword that is the first token of its line starts a new command when
//! it is outside brackets or in column 0 (column 0 also resets bracket depth, so unbalanced
//! brackets cannot hide later commands). `open … in` / `set_option … in` inside proofs are tactic
//! syntax and stay part of the enclosing proof; before a command they become its prefixes.

use crate::lexer::{tokenize, Token, TokenKind};

/// Keywords that unambiguously start a command when first on a line.
const COMMAND_KEYWORDS: &[&str] = &[
    "theorem",
    "lemma",
    "def",
    "abbrev",
    "example",
    "instance",
    "structure",
    "class",
    "inductive",
    "coinductive",
    "axiom",
    "opaque",
    "mutual",
    "private",
    "protected",
    "noncomputable",
    "partial",
    "unsafe",
    "nonrec",
    "local",
    "scoped",
    "namespace",
    "section",
    "end",
    "variable",
    "universe",
    "import",
    "attribute",
    "macro",
    "macro_rules",
    "syntax",
    "elab",
    "elab_rules",
    "notation",
    "notation3",
    "infix",
    "infixl",
    "infixr",
    "prefix",
    "postfix",
    "declare_syntax_cat",
    "run_cmd",
    "run_elab",
    "run_meta",
    "initialize",
    "builtin_initialize",
    "include",
    "omit",
    "export",
    "deriving",
    "alias",
    "irreducible_def",
    "add_decl_doc",
    "binder_predicate",
    "simproc",
    "dsimproc",
];

/// Modifiers that may precede a declaration keyword.
const MODIFIERS: &[&str] = &[
    "private",
    "protected",
    "noncomputable",
    "partial",
    "unsafe",
    "nonrec",
    "local",
    "scoped",
];

/// Declaration keywords that take a name.
const NAMED_DECLS: &[&str] = &[
    "theorem",
    "lemma",
    "def",
    "abbrev",
    "instance",
    "structure",
    "class",
    "inductive",
    "coinductive",
    "axiom",
    "opaque",
    "irreducible_def",
];

/// One top-level command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The command keyword after modifiers and attributes (`theorem`, `def`, `open`, `#eval`…).
    pub keyword: String,
    /// Modifiers as written (`private`, `noncomputable`, `local`, …).
    pub modifiers: Vec<String>,
    /// Identifiers inside `@[…]` attribute lists.
    pub attributes: Vec<String>,
    /// The declared name as written, for named declarations (`None` for anonymous instances).
    pub name: Option<String>,
    /// The full name: namespace + name (`_root_.` stripped).
    pub full_name: Option<String>,
    /// Normalised statement (tokens between the name and the top-level `:=`), for declarations.
    pub signature: Option<String>,
    /// Normalised full text of the command (comments and whitespace dropped).
    pub text: String,
    /// Whether the command's body (after its signature) contains a sorry token.
    pub body_has_sorry: bool,
    /// Line and column of the name (or of the keyword when anonymous).
    pub line: usize,
    pub col: usize,
    /// The scope in effect: namespace, then normalised `open`/`variable`/`universe`/… commands,
    /// including `open … in` prefixes of this command.
    pub context: Vec<String>,
    /// `set_option … in`, `open … in` etc. attached to this command, normalised.
    pub prefixes: Vec<String>,
    /// Index range into [`SourceFile::tokens`].
    pub tokens: std::ops::Range<usize>,
    /// Index of the keyword token.
    pub keyword_token: usize,
}

impl Command {
    /// `theorem`/`lemma` (one kind for comparison).
    pub fn kind(&self) -> &str {
        match self.keyword.as_str() {
            "lemma" => "theorem",
            k => k,
        }
    }

    /// Whether this declares a theorem or lemma.
    pub fn is_theorem(&self) -> bool {
        self.kind() == "theorem"
    }

    /// Visibility modifier (`private`/`protected`), which changes the constant's name or access.
    pub fn visibility(&self) -> &str {
        for m in &self.modifiers {
            if m == "private" || m == "protected" {
                return m;
            }
        }
        "public"
    }

    /// A short human label: `theorem foo`, `example #2`, `notation …`.
    pub fn label(&self) -> String {
        match &self.full_name {
            Some(n) => format!("{} `{}`", self.kind(), n),
            None => {
                let t: String = self.text.chars().take(48).collect();
                format!("`{t}`")
            }
        }
    }
}

/// A parsed Lean file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub tokens: Vec<Token>,
    pub commands: Vec<Command>,
    /// Imported modules, in order.
    pub imports: Vec<String>,
}

#[derive(Debug, Clone)]
struct Scope {
    ns: Vec<String>,
    entries: Vec<String>,
    /// Number of `end`s this scope needs (`namespace A.B` pushes 1 scope covering 2 parts).
    kind: &'static str,
}

/// Join tokens with single spaces (the comparison form: whitespace and comments do not matter).
pub fn normalize(tokens: &[Token]) -> String {
    tokens
        .iter()
        .map(|t| t.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_open_bracket(t: &Token) -> bool {
    t.kind == TokenKind::Sym && matches!(t.text.as_str(), "(" | "[" | "{" | "⟨" | "@[" | "⦃" | "⟦")
}

fn is_close_bracket(t: &Token) -> bool {
    t.kind == TokenKind::Sym && matches!(t.text.as_str(), ")" | "]" | "}" | "⟩" | "⦄" | "⟧")
}

fn is_command_keyword(t: &Token) -> bool {
    (t.kind == TokenKind::Ident && COMMAND_KEYWORDS.contains(&t.text.as_str()))
        || t.kind == TokenKind::Hash
        || t.is_sym("@[")
}

/// Keywords that can only start a command (Lean reserves them), wherever they appear.
const RESERVED_COMMANDS: &[&str] = &[
    "theorem",
    "lemma",
    "def",
    "abbrev",
    "example",
    "instance",
    "structure",
    "class",
    "inductive",
    "axiom",
    "opaque",
    "namespace",
    "section",
    "variable",
    "universe",
    "mutual",
    "macro",
    "macro_rules",
    "syntax",
    "elab",
    "elab_rules",
    "notation",
    "infix",
    "infixl",
    "infixr",
    "prefix",
    "postfix",
    "declare_syntax_cat",
    "initialize",
    "builtin_initialize",
    "attribute",
];

fn is_reserved_command(tokens: &[Token], i: usize) -> bool {
    let t = &tokens[i];
    if t.kind != TokenKind::Ident || !RESERVED_COMMANDS.contains(&t.text.as_str()) {
        return false;
    }
    // `class inductive`, `class abbrev`, `deriving instance`
    !matches!(
        i.checked_sub(1).map(|p| tokens[p].text.as_str()),
        Some("class") | Some("deriving")
    )
}

/// Walk back from a mid-line command keyword over its modifiers, `@[…]` attributes and
/// `open … in` / `set_option … in` prefixes.
fn command_begin(tokens: &[Token], i: usize) -> usize {
    let mut j = i;
    while let Some(p) = j.checked_sub(1) {
        let prev = &tokens[p];
        if prev.kind == TokenKind::Ident && MODIFIERS.contains(&prev.text.as_str()) {
            j = p;
        } else if prev.is_sym("]") {
            // an attribute list `@[ … ]`
            let mut d = 0i64;
            let mut k = p;
            let mut found = None;
            loop {
                let t = &tokens[k];
                if is_close_bracket(t) {
                    d += 1;
                } else if is_open_bracket(t) {
                    d -= 1;
                    if d == 0 {
                        if t.is_sym("@[") {
                            found = Some(k);
                        }
                        break;
                    }
                }
                if k == 0 {
                    break;
                }
                k -= 1;
            }
            match found {
                Some(k) => j = k,
                None => break,
            }
        } else if prev.is("in") {
            let opener = (0..p).rev().take(64).find(|&k| {
                let t = &tokens[k];
                t.is("open")
                    || t.is("set_option")
                    || t.is("omit")
                    || t.is("include")
                    || t.is("#guard_msgs")
            });
            match opener {
                Some(k) => j = k,
                None => break,
            }
        } else {
            break;
        }
    }
    j
}

/// Whether an `open`/`set_option` line starting at `i` is a command (not a tactic).
fn open_like_is_command(tokens: &[Token], i: usize) -> bool {
    let line = tokens[i].line;
    let mut j = i + 1;
    while j < tokens.len() && tokens[j].line == line {
        if tokens[j].is("in") {
            return match tokens.get(j + 1) {
                None => true,
                Some(n) => is_command_keyword(n) || n.is("open") || n.is("set_option"),
            };
        }
        j += 1;
    }
    true
}

/// Split `src` into commands and compute each declaration's scope.
pub fn parse(src: &str) -> SourceFile {
    let tokens = tokenize(src);
    // 1. command boundaries
    let mut starts = Vec::new();
    let mut depth: i64 = 0;
    for (i, t) in tokens.iter().enumerate() {
        if t.line_start && (depth <= 0 || t.col == 0) {
            let start = if t.is("open") || t.is("set_option") {
                open_like_is_command(&tokens, i)
            } else {
                is_command_keyword(t)
            };
            if start {
                depth = 0;
                starts.push(i);
            }
        } else if depth <= 0
            && !t.line_start
            && (is_reserved_command(&tokens, i)
                || ((t.is("open") || t.is("export") || t.is("include") || t.is("omit"))
                    && open_like_is_command(&tokens, i)))
        {
            // Lean starts a new command at a reserved command keyword wherever it appears; the
            // command begins at its modifiers, attributes and `… in` prefixes.
            let j = command_begin(&tokens, i);
            if starts.last().is_none_or(|&l| l < j) {
                starts.push(j);
            }
        }
        if is_open_bracket(t) {
            depth += 1;
        } else if is_close_bracket(t) {
            depth -= 1;
        }
    }
    // Tokens before the first command (e.g. a stray term) form no command.
    let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let e = starts.get(k + 1).copied().unwrap_or(tokens.len());
        ranges.push(s..e);
    }
    // Split `open X in theorem …` written on one line into prefix + command.
    let mut split: Vec<std::ops::Range<usize>> = Vec::new();
    for r in ranges {
        let mut s = r.start;
        loop {
            let t = &tokens[s];
            if t.is("open")
                || t.is("set_option")
                || t.is("#guard_msgs")
                || t.is("omit")
                || t.is("include")
            {
                // find `in` followed by a command keyword
                let mut j = s + 1;
                let mut found = None;
                while j < r.end {
                    if tokens[j].is("in")
                        && tokens.get(j + 1).is_some_and(|n| {
                            j + 1 < r.end
                                && (is_command_keyword(n) || n.is("open") || n.is("set_option"))
                        })
                    {
                        found = Some(j);
                        break;
                    }
                    if is_command_keyword(&tokens[j]) && !tokens[j].is("local") {
                        break;
                    }
                    j += 1;
                }
                if let Some(j) = found {
                    split.push(s..j + 1);
                    s = j + 1;
                    continue;
                }
            }
            split.push(s..r.end);
            break;
        }
    }

    // 2. build commands with scope tracking
    let mut scopes: Vec<Scope> = vec![Scope {
        ns: vec![],
        entries: vec![],
        kind: "root",
    }];
    let mut commands = Vec::new();
    let mut imports = Vec::new();
    let mut pending_prefixes: Vec<String> = Vec::new();
    for r in split {
        let toks = &tokens[r.clone()];
        let text = normalize(toks);
        let is_prefix = toks.last().is_some_and(|t| t.is("in"))
            && (toks[0].is("open")
                || toks[0].is("set_option")
                || toks[0].is("#guard_msgs")
                || toks[0].is("omit")
                || toks[0].is("include"));
        if is_prefix {
            pending_prefixes.push(text);
            continue;
        }
        // modifiers and attributes
        let mut i = 0;
        let mut modifiers = Vec::new();
        let mut attributes = Vec::new();
        while i < toks.len() {
            let t = &toks[i];
            if t.is_sym("@[") {
                let mut d = 1;
                i += 1;
                while i < toks.len() && d > 0 {
                    if is_open_bracket(&toks[i]) {
                        d += 1;
                    } else if is_close_bracket(&toks[i]) {
                        d -= 1;
                    } else if toks[i].kind == TokenKind::Ident {
                        attributes.push(toks[i].text.clone());
                    }
                    i += 1;
                }
                continue;
            }
            if t.kind == TokenKind::Ident && MODIFIERS.contains(&t.text.as_str()) {
                // `local`/`scoped` are modifiers only before another keyword
                modifiers.push(t.text.clone());
                i += 1;
                continue;
            }
            break;
        }
        let kw_idx = i.min(toks.len().saturating_sub(1));
        let keyword = toks.get(i).map(|t| t.text.clone()).unwrap_or_default();
        let abs_kw = r.start + kw_idx;
        let ns_path: Vec<String> = scopes.iter().flat_map(|s| s.ns.clone()).collect();
        let ns = ns_path.join(".");
        let mut context: Vec<String> = Vec::new();
        context.push(format!("namespace {ns}"));
        for s in &scopes {
            context.extend(s.entries.iter().cloned());
        }
        for p in &pending_prefixes {
            if p.starts_with("open") {
                context.push(p.clone());
            }
        }
        let prefixes = std::mem::take(&mut pending_prefixes);

        // scope commands
        match keyword.as_str() {
            "namespace" => {
                if let Some(n) = toks.get(i + 1) {
                    for part in n.text.split('.') {
                        scopes.push(Scope {
                            ns: vec![part.to_string()],
                            entries: vec![],
                            kind: "namespace",
                        });
                    }
                }
            }
            "section" => scopes.push(Scope {
                ns: vec![],
                entries: vec![],
                kind: "section",
            }),
            "mutual" => scopes.push(Scope {
                ns: vec![],
                entries: vec![],
                kind: "mutual",
            }),
            "end" => {
                let n = match toks.get(i + 1) {
                    Some(t) if t.kind == TokenKind::Ident && t.line == toks[i].line => {
                        let innermost = scopes.last().map(|s| s.kind).unwrap_or("root");
                        if innermost == "namespace" {
                            t.text.split('.').count()
                        } else {
                            1
                        }
                    }
                    _ => 1,
                };
                for _ in 0..n {
                    if scopes.len() > 1 {
                        scopes.pop();
                    }
                }
            }
            "open" | "variable" | "universe" | "include" | "omit" | "export" => {
                if let Some(s) = scopes.last_mut() {
                    s.entries.push(text.clone());
                }
            }
            "import" => {
                for t in &toks[i + 1..] {
                    if t.kind == TokenKind::Ident {
                        imports.push(t.text.clone());
                    }
                }
            }
            _ => {}
        }

        // declaration name and signature
        let mut name = None;
        let mut full_name = None;
        let mut signature = None;
        let mut body_has_sorry = false;
        let (mut line, mut col) = toks.get(kw_idx).map(|t| (t.line, t.col)).unwrap_or((0, 0));
        let is_decl = NAMED_DECLS.contains(&keyword.as_str()) || keyword == "example";
        if is_decl {
            let mut j = i + 1;
            // instance priority `(priority := …)`
            if keyword == "instance" && toks.get(j).is_some_and(|t| t.is_sym("(")) {
                let mut d = 0;
                while j < toks.len() {
                    if is_open_bracket(&toks[j]) {
                        d += 1;
                    } else if is_close_bracket(&toks[j]) {
                        d -= 1;
                        if d == 0 {
                            j += 1;
                            break;
                        }
                    }
                    j += 1;
                }
            }
            if keyword != "example" {
                if let Some(t) = toks.get(j) {
                    if t.kind == TokenKind::Ident && t.text != "where" {
                        name = Some(t.text.clone());
                        line = t.line;
                        col = t.col;
                        let fq = if let Some(rest) = t.text.strip_prefix("_root_.") {
                            rest.to_string()
                        } else if ns.is_empty() {
                            t.text.clone()
                        } else {
                            format!("{ns}.{}", t.text)
                        };
                        full_name = Some(fq);
                        j += 1;
                    }
                }
            }
            // signature: up to the top-level terminator
            let sig_start = j;
            let mut d: i64 = 0;
            let mut pending_let = 0usize;
            let mut end = toks.len();
            while j < toks.len() {
                let t = &toks[j];
                if is_open_bracket(t) {
                    d += 1;
                } else if is_close_bracket(t) {
                    d -= 1;
                } else if d == 0 {
                    if t.is("let") || t.is("have") || t.is("letI") || t.is("haveI") {
                        pending_let += 1;
                    } else if t.is_sym(":=") {
                        if pending_let > 0 {
                            pending_let -= 1;
                        } else {
                            end = j;
                            break;
                        }
                    } else if t.is("where") && keyword != "example" {
                        end = j;
                        break;
                    } else if t.is_sym("|") && t.line_start && j > sig_start {
                        // equation compiler alternatives start on their own line with `=>`
                        let line = t.line;
                        if toks[j..]
                            .iter()
                            .take_while(|x| x.line == line)
                            .any(|x| x.is_sym("=>"))
                        {
                            end = j;
                            break;
                        }
                    }
                }
                j += 1;
            }
            signature = Some(normalize(&toks[sig_start..end]));
            body_has_sorry = toks[end..].iter().any(crate::lexer::is_sorry_token);
        }

        commands.push(Command {
            keyword,
            modifiers,
            attributes,
            name,
            full_name,
            signature,
            text,
            body_has_sorry,
            line,
            col,
            context,
            prefixes,
            tokens: r.clone(),
            keyword_token: abs_kw,
        });
    }
    SourceFile {
        tokens,
        commands,
        imports,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_commands_and_tracks_namespaces() {
        let src = "import Mathlib\nopen Nat\n\nnamespace A.B\n\ntheorem foo (n : ℕ) : n = n := by\n  open Classical in\n  rfl\n\n/-- doc -/\n@[simp] private lemma bar : True := trivial\nend A.B\n\nexample : 1 = 1 := rfl\n";
        let f = parse(src);
        let kws: Vec<&str> = f.commands.iter().map(|c| c.keyword.as_str()).collect();
        assert_eq!(
            kws,
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
        let ex = &f.commands[6];
        assert_eq!(ex.full_name, None);
        assert_eq!(ex.signature.as_deref(), Some(": 1 = 1"));
        assert_eq!(ex.context, vec!["namespace ", "open Nat"]);
    }

    #[test]
    fn open_in_prefix_joins_the_context_and_sections_scope_variables() {
        let src = "section\nvariable (x : Nat)\ntheorem a : x = x := rfl\nend\nopen Foo in\ntheorem b : True := trivial\nset_option maxHeartbeats 400000 in\ntheorem c : True := trivial\n";
        let f = parse(src);
        let a = f
            .commands
            .iter()
            .find(|c| c.name.as_deref() == Some("a"))
            .expect("a");
        assert_eq!(a.context, vec!["namespace ", "variable ( x : Nat )"]);
        let b = f
            .commands
            .iter()
            .find(|c| c.name.as_deref() == Some("b"))
            .expect("b");
        assert_eq!(b.context, vec!["namespace ", "open Foo in"]);
        let c = f
            .commands
            .iter()
            .find(|c| c.name.as_deref() == Some("c"))
            .expect("c");
        assert_eq!(c.context, vec!["namespace "]);
        assert_eq!(c.prefixes, vec!["set_option maxHeartbeats 400000 in"]);
    }

    #[test]
    fn let_in_statement_and_root_names() {
        let f = parse("namespace N\ntheorem _root_.t : let x := 1; x = 1 := rfl\nend N");
        let t = &f.commands[1];
        assert_eq!(t.full_name.as_deref(), Some("t"));
        assert_eq!(t.signature.as_deref(), Some(": let x := 1 ; x = 1"));
    }

    #[test]
    fn body_sorry_and_equations() {
        let f =
            parse("def f : Nat → Nat\n  | 0 => sorry\n  | n + 1 => n\ndef g : |x| = 1 := sorry");
        assert_eq!(f.commands[0].signature.as_deref(), Some(": Nat → Nat"));
        assert!(f.commands[0].body_has_sorry);
        assert_eq!(f.commands[1].signature.as_deref(), Some(": | x | = 1"));
    }

    #[test]
    fn commands_mid_line_are_split_with_their_prefixes() {
        let f = parse("lemma h : True := trivial private axiom bad : False\nlemma g : True := trivial open Foo in theorem t : False := bad\nclass inductive C | a\nlemma k : True := trivial @[implemented_by x] def y := 1");
        let kws: Vec<&str> = f.commands.iter().map(|c| c.keyword.as_str()).collect();
        assert_eq!(
            kws,
            vec!["lemma", "axiom", "lemma", "theorem", "class", "lemma", "def"]
        );
        assert_eq!(f.commands[1].modifiers, vec!["private"]);
        assert_eq!(f.commands[3].context, vec!["namespace ", "open Foo in"]);
        assert_eq!(f.commands[6].attributes, vec!["implemented_by", "x"]);
        let f = parse("lemma h : True := trivial open Real\ntheorem t : π > 3 := sorry\nlemma u : True := by open Classical in exact trivial");
        assert_eq!(f.commands[1].keyword, "open");
        assert_eq!(f.commands[2].context, vec!["namespace ", "open Real"]);
        assert_eq!(
            f.commands.len(),
            4,
            "`open … in` inside a proof stays a tactic"
        );
    }

    #[test]
    fn column_zero_keyword_resets_unbalanced_brackets() {
        let f = parse("theorem a : True := (by trivial\naxiom bad : False\n");
        assert!(f.commands.iter().any(|c| c.keyword == "axiom"));
    }
}
