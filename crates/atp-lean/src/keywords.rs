//! Which tokens start a command: the command keywords of Lean core, Batteries, Mathlib and its
//! dependencies at the pinned revisions (data in `keywords/`, derived as its README says), plus
//! what a project declares itself with `syntax`/`macro`/`elab … : command`.
//!
//! Lean ends a command where its parser stops, and a command keyword is a reserved token no term
//! or tactic grammar consumes, so a command keyword *anywhere* (outside brackets) starts a new
//! command — except the few that are also term/tactic syntax (`open … in`, `set_option … in`,
//! listed in `keywords/also_inner.txt`). Every `#…` token is treated as a command keyword
//! whether or not it is listed (fail closed).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use crate::lexer::{Token, TokenKind};

/// The derived list (one keyword per line, `--` comments).
const COMMAND_DATA: &str = include_str!("keywords/command.txt");
/// Command keywords that are also term or tactic syntax (start a command only in some
/// positions; the command model decides).
const ALSO_INNER_DATA: &str = include_str!("keywords/also_inner.txt");

fn parse_list(data: &str) -> BTreeSet<String> {
    data.lines()
        .map(|l| l.split("--").next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Every command keyword of the pinned Lean, Batteries, Mathlib and dependencies.
pub fn command_keywords() -> &'static BTreeSet<String> {
    static SET: OnceLock<BTreeSet<String>> = OnceLock::new();
    SET.get_or_init(|| parse_list(COMMAND_DATA))
}

/// Command keywords that are also valid inside terms or tactic blocks.
pub fn also_inner() -> &'static BTreeSet<String> {
    static SET: OnceLock<BTreeSet<String>> = OnceLock::new();
    SET.get_or_init(|| parse_list(ALSO_INNER_DATA))
}

/// Declaration modifiers that precede a command keyword (`declModifiers`, `attrKind`, and the
/// module system's `public`/`meta`).
pub const MODIFIERS: &[&str] = &[
    "private",
    "protected",
    "public",
    "meta",
    "noncomputable",
    "unsafe",
    "partial",
    "nonrec",
    "local",
    "scoped",
];

/// One `syntax`/`macro`/`elab` declaration's category and leading atom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredSyntax {
    /// `command`, `term`, `tactic`, …
    pub category: String,
    /// The first atom of the pattern (`"foo "` → `foo`), `None` when there is none (e.g. a
    /// syntax that starts with an identifier).
    pub leading: Option<String>,
    /// Whether the pattern starts with a category (a trailing parser such as `command " in "
    /// command`).
    pub trailing: bool,
    /// 1-based line of the declaring keyword.
    pub line: usize,
}

fn is_open(t: &Token) -> bool {
    t.kind == TokenKind::Sym && matches!(t.text.as_str(), "(" | "[" | "{" | "⟨" | "@[")
}

fn is_close(t: &Token) -> bool {
    t.kind == TokenKind::Sym && matches!(t.text.as_str(), ")" | "]" | "}" | "⟩")
}

/// The content of a string literal token (`"foo "` → `foo`), trimmed.
fn atom_text(t: &Token) -> Option<String> {
    if t.kind != TokenKind::Str || !t.text.starts_with('"') {
        return None;
    }
    let inner = t.text.trim_start_matches('"').trim_end_matches('"');
    let s = inner.replace("\\\"", "\"").replace("\\\\", "\\");
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// The syntax declared by one command whose tokens are `toks` (its keyword first, after
/// modifiers), if it is `syntax`, `macro` or `elab` (`leading_parser` definitions with a
/// `@[command_parser]`-like attribute are handled by [`declared_in_parser_def`]).
pub fn declared_syntax(toks: &[Token]) -> Option<DeclaredSyntax> {
    let kw = toks.first()?;
    if !(kw.is("syntax") || kw.is("macro") || kw.is("elab")) {
        return None;
    }
    let has_body = !kw.is("syntax");
    let mut i = 1;
    // `:prec` right after the keyword
    if toks.get(i).is_some_and(|t| t.is_sym(":")) {
        i += 2;
    }
    // `(name := x)`, `(priority := p)`, `(kind := k)`
    while toks.get(i).is_some_and(|t| t.is_sym("("))
        && toks.get(i + 2).is_some_and(|t| t.is_sym(":="))
    {
        let mut d = 0i64;
        while let Some(t) = toks.get(i) {
            if is_open(t) {
                d += 1;
            } else if is_close(t) {
                d -= 1;
            }
            i += 1;
            if d == 0 {
                break;
            }
        }
    }
    let pattern_start = i;
    // the category: `: cat` at depth 0, the last one before `=>`/`<=` (macro, elab) or the
    // last one of the command (syntax)
    let mut d = 0i64;
    let mut cat: Option<(usize, String)> = None;
    while let Some(t) = toks.get(i) {
        if is_open(t) {
            d += 1;
        } else if is_close(t) {
            d -= 1;
        } else if d == 0 {
            if has_body
                && (t.is_sym("=>")
                    || (t.is_sym("<") && toks.get(i + 1).is_some_and(|n| n.is_sym("="))))
            {
                break;
            }
            if t.is_sym(":") && i > pattern_start {
                if let Some(c) = toks.get(i + 1).filter(|c| c.kind == TokenKind::Ident) {
                    // a binder `x:term` is glued to its name; a category is not followed by
                    // more pattern in `syntax`
                    let glued = toks[i - 1].end == t.start && toks[i - 1].kind == TokenKind::Ident;
                    if !glued || i + 2 >= toks.len() {
                        cat = Some((i, c.name()));
                    }
                }
            }
        }
        i += 1;
    }
    let (cat_at, category) = cat?;
    let pattern = &toks[pattern_start..cat_at];
    let first = pattern.first()?;
    let trailing = first.kind == TokenKind::Ident
        && (matches!(
            first.text.as_str(),
            "command" | "term" | "tactic" | "level" | "prio" | "prec"
        ) || first.text == category);
    Some(DeclaredSyntax {
        category,
        leading: leading_atom(pattern),
        trailing,
        line: kw.line,
    })
}

/// Parsers that may precede a command's keyword without being able to start with an arbitrary
/// identifier (declaration modifiers, doc comments) and formatting/position wrappers.
const PREFIX_PARSERS: &[&str] = &[
    "declModifiers",
    "nestedDeclModifiers",
    "docComment",
    "plainDocComment",
    "attrKind",
    "attributes",
    "withPosition",
    "withPositionAfterLinebreak",
    "group",
    "atomic",
    "colGt",
    "colGe",
];

/// The first atom of a pattern, skipping [`PREFIX_PARSERS`], `pp…` formatting wrappers and
/// grouping symbols; `None` when the pattern can start with something else (an identifier, a
/// term, …).
fn leading_atom(pattern: &[Token]) -> Option<String> {
    let mut k = 0;
    while let Some(t) = pattern.get(k) {
        k += 1;
        // a binder name `x:` before a parser (`tk:"#whnf "`, `mods:declModifiers`)
        if t.kind == TokenKind::Ident
            && pattern
                .get(k)
                .is_some_and(|c| c.is_sym(":") && c.start == t.end)
        {
            k += 1;
            continue;
        }
        match t.kind {
            TokenKind::Str => return atom_text(t),
            TokenKind::Sym
                if matches!(t.text.as_str(), "(" | ")" | "?" | "*" | "+" | "," | ">") => {}
            TokenKind::Ident if t.is("false") || t.is("true") => {}
            TokenKind::Ident => {
                let last = t.last_component();
                if !(PREFIX_PARSERS.contains(&last.as_str()) || last.starts_with("pp")) {
                    return None;
                }
            }
            _ => return None,
        }
    }
    None
}

/// The leading atom of a `def x := leading_parser … "kw" …` whose attributes (`attrs`) make it
/// a parser of category `category` (`command_parser`, `builtin_command_parser`, …).
pub fn declared_in_parser_def(attrs: &[String], toks: &[Token]) -> Option<DeclaredSyntax> {
    let category = attrs.iter().find_map(|a| {
        let a = a.strip_prefix("builtin_").unwrap_or(a);
        a.strip_suffix("_parser").map(str::to_string)
    })?;
    let lp = toks.iter().position(|t| t.is("leading_parser"))?;
    let leading = leading_atom(&toks[lp + 1..]);
    Some(DeclaredSyntax {
        category,
        leading,
        trailing: false,
        line: toks.first().map_or(0, |t| t.line),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::tokenize;

    fn decl(src: &str) -> Option<DeclaredSyntax> {
        declared_syntax(&tokenize(src))
    }

    #[test]
    fn leading_atoms_and_categories() {
        let d =
            decl("syntax (name := parseCmd) \"#parse \" ident \" => \" str : command").expect("d");
        assert_eq!(
            (d.category.as_str(), d.leading.as_deref()),
            ("command", Some("#parse"))
        );
        let d = decl("syntax withPosition(\"#help \" colGt &\"option\") : command").expect("d");
        assert_eq!(d.leading.as_deref(), Some("#help"));
        let d = decl("macro \"evil\" x:term : command => `(axiom bad : $x)").expect("d");
        assert_eq!(
            (d.category.as_str(), d.leading.as_deref()),
            ("command", Some("evil"))
        );
        let d = decl("elab:max \"warn!\" s:str : term <= ty => pure s").expect("d");
        assert_eq!(
            (d.category.as_str(), d.leading.as_deref()),
            ("term", Some("warn!"))
        );
        let d = decl("syntax (name := lemma) declModifiers group(\"lemma \" declId declSig declVal) : command").expect("d");
        assert_eq!(d.leading.as_deref(), Some("lemma"));
        assert!(!d.trailing);
        let d = decl("syntax command \" in \" command : command").expect("d");
        assert!(d.trailing);
        // a pattern that starts with an identifier has no leading atom
        let d = decl("macro x:ident \"!!\" : term => `($x)").expect("d");
        assert_eq!((d.category.as_str(), d.leading.as_deref()), ("term", None));
        let attrs = vec!["command_parser".to_string()];
        let toks = tokenize("def «proof_wanted» := leading_parser\n  declModifiers false >> \"proof_wanted\" >> declId");
        let d = declared_in_parser_def(&attrs, &toks).expect("d");
        assert_eq!(
            (d.category.as_str(), d.leading.as_deref()),
            ("command", Some("proof_wanted"))
        );
        assert!(decl("macro_rules | `(x) => `(y)").is_none());
        let d = decl("elab (name := alias) mods:declModifiers \"alias \" a:ident \" := \" n:ident : command => pure ()").expect("d");
        assert_eq!(d.leading.as_deref(), Some("alias"));
        let d = decl("macro tk:\"#whnf \" e:term : command => `(x)").expect("d");
        assert_eq!(d.leading.as_deref(), Some("#whnf"));
    }

    #[test]
    fn the_derived_lists_hold_the_known_commands() {
        for k in [
            "theorem",
            "lemma",
            "axiom",
            "irreducible_def",
            "alias",
            "proof_wanted",
            "assert_not_exists",
            "elab",
            "macro_rules",
            "notation3",
            "open",
            "suppress_compilation",
        ] {
            assert!(command_keywords().contains(k), "{k}");
        }
        assert!(also_inner().contains("open") && also_inner().contains("set_option"));
        for k in [
            "by",
            "fun",
            "have",
            "exact",
            "simp",
            "in",
            "at",
            "with",
            "termination_by",
        ] {
            assert!(!command_keywords().contains(k), "{k}");
        }
    }
}
