//! A Lean file as a sequence of top-level commands, with the scope each declaration lives in.
//!
//! A source-level model (no elaboration) of how Lean splits a file: Lean's command parser
//! stops where a command's grammar stops, and a command keyword is a reserved token that no term
//! or tactic grammar consumes, so **a command keyword starts a new command wherever it appears**
//! outside brackets (and anywhere at column 0). The keywords are [`crate::keywords`]' derived
//! lists plus what the project declares; every `#…` token counts (fail closed). The exceptions
//! are Lean's own: `open …`/`set_option …` followed by `in` and a non-command are term/tactic
//! syntax; `class inductive`, `deriving instance`, `… deriving Repr` are one command.
//!
//! A command begins at its doc comment, `@[…]` attributes and modifiers. Lean's generic
//! `cmd₁ in cmd₂` (`Command.in`, a trailing command parser) makes `cmd₁` — *any* command — a
//! prefix of `cmd₂`: prefixes are recorded on the command they scope and are part of its
//! context (except `set_option`s that only bound resources or change messages).
//!
//! Each declaration gets its kind, modifiers, attribute names, full name (namespace + name,
//! `_root_` handled, `«»` canonical) and signature (tokens up to the top-level `:=`/`|`/`where`,
//! in [`Token::normal`] form), and its *scope*: namespace, `open`, `variable`, `universe`,
//! `include`, `omit`, `export`, `set_option` in effect, and its prefixes.
//!
//! Invariant: every token belongs to exactly one command, or is reported in
//! [`SourceFile::diagnostics`] (tokens before the first command); the model never drops code.

use std::collections::BTreeSet;

use crate::keywords::{
    also_inner, command_keywords, declared_in_parser_def, declared_syntax, DeclaredSyntax,
    MODIFIERS,
};
use crate::lexer::{lex, Diagnostic, Token, TokenKind};

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
    "proof_wanted",
    "alias",
];

/// `set_option`s that only bound resources or change messages: they cannot change what a
/// statement means, so a prover may add them (`set_option maxHeartbeats 400000 in`).
pub const RESOURCE_OPTIONS: &[&str] = &[
    "maxHeartbeats",
    "maxRecDepth",
    "synthInstance.maxHeartbeats",
    "synthInstance.maxSize",
    "maxSynthPendingDepth",
    "exponentiation.threshold",
];
/// Option prefixes of the same kind (linters, pretty-printing, tracing, profiling).
pub const RESOURCE_OPTION_PREFIXES: &[&str] = &["linter.", "pp.", "trace.", "profiler"];

/// Whether option `name` (canonical) only bounds resources or changes messages.
pub fn is_resource_option(name: &str) -> bool {
    RESOURCE_OPTIONS.contains(&name) || RESOURCE_OPTION_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// One top-level command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The command keyword after doc comment, attributes and modifiers (`theorem`, `open`,
    /// `#eval`, `/-!` for a module doc).
    pub keyword: String,
    /// Modifiers as written (`private`, `noncomputable`, `local`, …).
    pub modifiers: Vec<String>,
    /// Attribute names (canonical) of the `@[…]` lists, in order.
    pub attributes: Vec<String>,
    /// The declared name as written, for named declarations (`None` for anonymous instances).
    pub name: Option<String>,
    /// The full name: namespace + canonical name (`_root_.` stripped).
    pub full_name: Option<String>,
    /// Normalised statement (tokens between the name and the top-level `:=`), for declarations.
    pub signature: Option<String>,
    /// Normalised text of the command (comments, doc comments and whitespace dropped).
    pub text: String,
    /// Whether the command's body (after its signature) contains a sorry token.
    pub body_has_sorry: bool,
    /// Line and column of the name (or of the keyword when anonymous).
    pub line: usize,
    pub col: usize,
    /// The scope in effect: namespace, then normalised `open`/`variable`/`universe`/…
    /// commands, then this command's prefixes (see the module docs).
    pub context: Vec<String>,
    /// The `cmd in` prefixes scoping this command, normalised, outermost first.
    pub prefixes: Vec<String>,
    /// Index range into [`SourceFile::tokens`].
    pub tokens: std::ops::Range<usize>,
    /// Index of the keyword token.
    pub keyword_token: usize,
    /// Whether this command is itself a prefix (`… in`) of the next one.
    pub is_prefix: bool,
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
    /// Imported modules, in order (canonical names).
    pub imports: Vec<String>,
    /// Places where atp's reading may differ from Lean's (lexer and model).
    pub diagnostics: Vec<Diagnostic>,
    /// `syntax`/`macro`/`elab` declarations and parser definitions of the file.
    pub declared: Vec<DeclaredSyntax>,
}

#[derive(Debug, Clone)]
struct Scope {
    ns: Vec<String>,
    entries: Vec<String>,
    kind: &'static str,
}

/// Join tokens' normal forms with single spaces (doc comments dropped): the comparison form,
/// where whitespace, comments and Lean's alternative spellings do not matter.
pub fn normalize(tokens: &[Token]) -> String {
    tokens
        .iter()
        .filter(|t| t.kind != TokenKind::DocComment)
        .map(Token::normal)
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_open_bracket(t: &Token) -> bool {
    t.kind == TokenKind::Sym && matches!(t.text.as_str(), "(" | "[" | "{" | "⟨" | "@[" | "⦃" | "⟦")
}

fn is_close_bracket(t: &Token) -> bool {
    t.kind == TokenKind::Sym && matches!(t.text.as_str(), ")" | "]" | "}" | "⟩" | "⦄" | "⟧")
}

struct Model<'a> {
    tokens: &'a [Token],
    keywords: BTreeSet<String>,
}

impl Model<'_> {
    fn is_keyword(&self, t: &Token) -> bool {
        (t.kind == TokenKind::Ident && !t.is_escaped() && self.keywords.contains(&t.text))
            || t.kind == TokenKind::Hash
    }

    /// End (exclusive) of the arguments of the `open`/`set_option` at `i`.
    fn open_like_end(&self, i: usize) -> usize {
        let toks = self.tokens;
        let mut j = i + 1;
        if toks[i].is("set_option") {
            // option name, then one value
            return (j + 2).min(toks.len());
        }
        let mut depth = 0i64;
        while let Some(t) = toks.get(j) {
            if t.is_sym("(") {
                depth += 1;
            } else if t.is_sym(")") {
                depth -= 1;
                if depth < 0 {
                    break;
                }
            } else if depth == 0 {
                let arg = (t.kind == TokenKind::Ident && !self.is_keyword(t) && !t.is("in"))
                    || t.is("hiding")
                    || t.is("renaming")
                    || t.is("scoped")
                    || t.is_sym("→")
                    || t.is_sym("->")
                    || t.is_sym(",");
                if !arg {
                    break;
                }
            }
            j += 1;
        }
        j
    }

    /// Whether the token at `i` starts a command (see the module docs).
    fn starts(&self, i: usize) -> bool {
        let toks = self.tokens;
        let t = &toks[i];
        if t.kind == TokenKind::ModuleDoc {
            return true;
        }
        // modifiers (`scoped`, `local`, …) begin the command of the keyword they precede
        if !self.is_keyword(t) || MODIFIERS.contains(&t.text.as_str()) {
            return false;
        }
        let prev = i.checked_sub(1).map(|p| &toks[p]);
        if t.is("open") || t.is("set_option") {
            let end = self.open_like_end(i);
            return match toks.get(end) {
                Some(n) if n.is("in") => end + 1 < toks.len() && self.starts(end + 1),
                _ => true,
            };
        }
        if also_inner().contains(&t.text) {
            return t.line_start && t.col == 0;
        }
        if (t.is("inductive") || t.is("abbrev")) && prev.is_some_and(|p| p.is("class")) {
            return false;
        }
        if t.is("instance") && prev.is_some_and(|p| p.is("deriving")) {
            return false;
        }
        if t.is("deriving") {
            return toks.get(i + 1).is_some_and(|n| n.is("instance"));
        }
        true
    }

    /// Walk back from a command keyword over its modifiers, `scoped[NS]`, `@[…]` lists and doc
    /// comment, never before `floor`.
    fn begin(&self, i: usize, floor: usize) -> usize {
        let toks = self.tokens;
        let mut j = i;
        while j > floor {
            let p = j - 1;
            let prev = &toks[p];
            if prev.kind == TokenKind::DocComment
                || (prev.kind == TokenKind::Ident && MODIFIERS.contains(&prev.text.as_str()))
            {
                j = p;
            } else if prev.is_sym("]") {
                // `@[ … ]` or `scoped[NS]`
                let mut d = 0i64;
                let mut k = p;
                let opener = loop {
                    let t = &toks[k];
                    if is_close_bracket(t) {
                        d += 1;
                    } else if is_open_bracket(t) {
                        d -= 1;
                        if d == 0 {
                            break Some(k);
                        }
                    }
                    if k <= floor {
                        break None;
                    }
                    k -= 1;
                };
                match opener {
                    Some(k) if toks[k].is_sym("@[") => j = k,
                    Some(k)
                        if toks[k].is_sym("[")
                            && k > floor
                            && toks[k - 1].is("scoped")
                            && toks[k - 1].end == toks[k].start =>
                    {
                        j = k - 1
                    }
                    _ => break,
                }
            } else {
                break;
            }
        }
        j
    }
}

/// Attribute names of the `@[…]` list whose `@[` is at `i` (canonical), and the index after it.
fn attribute_list(toks: &[Token], i: usize) -> (Vec<String>, usize) {
    let mut names = Vec::new();
    let mut j = i + 1;
    let mut depth = 1i64;
    let mut expect_name = true;
    while j < toks.len() && depth > 0 {
        let t = &toks[j];
        if is_open_bracket(t) {
            depth += 1;
        } else if is_close_bracket(t) {
            depth -= 1;
        } else if depth == 1 && t.is_sym(",") {
            expect_name = true;
        } else if depth == 1
            && expect_name
            && t.kind == TokenKind::Ident
            && !(t.is("local") || t.is("scoped"))
        {
            names.push(t.name());
            expect_name = false;
        }
        j += 1;
    }
    (names, j)
}

/// Attribute names of an `attribute [a, -b, local c] x y` command (canonical, `-` dropped).
pub fn attribute_command_names(toks: &[Token]) -> Vec<String> {
    let Some(open) = toks.iter().position(|t| t.is_sym("[")) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    let mut expect_name = true;
    let mut depth = 0i64;
    for t in &toks[open..] {
        if is_open_bracket(t) {
            depth += 1;
        } else if is_close_bracket(t) {
            depth -= 1;
            if depth == 0 {
                break;
            }
        } else if depth == 1 && t.is_sym(",") {
            expect_name = true;
        } else if depth == 1
            && expect_name
            && t.kind == TokenKind::Ident
            && !(t.is("local") || t.is("scoped"))
        {
            names.push(t.name());
            expect_name = false;
        }
    }
    names
}

/// Split `src` into commands and compute each declaration's scope, with the built-in command
/// keywords.
pub fn parse(src: &str) -> SourceFile {
    parse_with(src, &BTreeSet::new())
}

/// [`parse`] with extra command keywords (those a project declares; see
/// [`declared_command_keywords`]).
pub fn parse_with(src: &str, extra: &BTreeSet<String>) -> SourceFile {
    let lexed = lex(src);
    let tokens = lexed.tokens;
    let mut diagnostics = lexed.diagnostics;
    let mut keywords = command_keywords().clone();
    keywords.extend(extra.iter().cloned());
    let model = Model {
        tokens: &tokens,
        keywords,
    };

    // 1. command boundaries
    let mut starts: Vec<usize> = Vec::new();
    let mut depth: i64 = 0;
    for (i, t) in tokens.iter().enumerate() {
        let col0 = t.line_start && t.col == 0;
        if (depth <= 0 || col0) && model.starts(i) {
            let floor = starts.last().map_or(0, |&s| s + 1);
            let b = model.begin(i, floor);
            if starts.last().is_none_or(|&l| l < b) {
                starts.push(b);
            }
            depth = 0;
        }
        if is_open_bracket(t) {
            depth += 1;
        } else if is_close_bracket(t) {
            depth -= 1;
        }
    }
    let first = starts.first().copied().unwrap_or(tokens.len());
    if first > 0 {
        let t = &tokens[0];
        let text: String = normalize(&tokens[..first.min(8)])
            .chars()
            .take(60)
            .collect();
        diagnostics.push(Diagnostic {
            line: t.line,
            col: t.col,
            message: format!(
                "the file starts with `{text}`, which is not a command atp knows (Lean reads \
                 commands only); start the file with `import`, a declaration or a comment"
            ),
        });
    }
    let ranges: Vec<std::ops::Range<usize>> = starts
        .iter()
        .enumerate()
        .map(|(k, &s)| s..starts.get(k + 1).copied().unwrap_or(tokens.len()))
        .collect();

    // 2. declared syntax (for the caller's second pass) and fail-closed checks
    let mut declared = Vec::new();
    for r in &ranges {
        let toks = &tokens[r.clone()];
        let mut i = 0;
        let mut attrs = Vec::new();
        while i < toks.len() {
            if toks[i].is_sym("@[") {
                let (names, j) = attribute_list(toks, i);
                attrs.extend(names);
                i = j;
            } else if toks[i].kind == TokenKind::DocComment
                || (toks[i].kind == TokenKind::Ident && MODIFIERS.contains(&toks[i].text.as_str()))
            {
                i += 1;
            } else {
                break;
            }
        }
        let found = declared_syntax(&toks[i.min(toks.len())..]).or_else(|| {
            toks.get(i)
                .filter(|t| t.is("def") || t.is("abbrev"))
                .and_then(|_| declared_in_parser_def(&attrs, &toks[i..]))
        });
        if let Some(d) = found {
            if d.category == "command" && (d.leading.is_none() || d.trailing) {
                diagnostics.push(Diagnostic {
                    line: d.line,
                    col: 0,
                    message: "a command syntax whose first token atp cannot determine (it could \
                              start commands anywhere); give it a leading keyword"
                        .into(),
                });
            }
            declared.push(d);
        }
    }

    // 3. build commands with scope tracking
    let mut scopes: Vec<Scope> = vec![Scope {
        ns: vec![],
        entries: vec![],
        kind: "root",
    }];
    let mut commands: Vec<Command> = Vec::new();
    let mut imports = Vec::new();
    let mut pending_prefixes: Vec<(String, bool)> = Vec::new();
    for r in ranges {
        let toks = &tokens[r.clone()];
        let text = normalize(toks);
        let is_prefix = toks.last().is_some_and(|t| t.is("in")) && r.end < tokens.len();

        // modifiers and attributes
        let mut i = 0;
        let mut modifiers = Vec::new();
        let mut attributes = Vec::new();
        while i < toks.len() {
            let t = &toks[i];
            if t.is_sym("@[") {
                let (names, j) = attribute_list(toks, i);
                attributes.extend(names);
                i = j;
                continue;
            }
            if t.kind == TokenKind::DocComment {
                i += 1;
                continue;
            }
            if t.is("scoped")
                && toks
                    .get(i + 1)
                    .is_some_and(|n| n.is_sym("[") && n.start == t.end)
            {
                modifiers.push("scoped".to_string());
                i += 2;
                while i < toks.len() && !toks[i].is_sym("]") {
                    i += 1;
                }
                i += 1;
                continue;
            }
            if t.kind == TokenKind::Ident && MODIFIERS.contains(&t.text.as_str()) {
                modifiers.push(t.text.clone());
                i += 1;
                continue;
            }
            break;
        }
        let kw_idx = i.min(toks.len().saturating_sub(1));
        let keyword = toks
            .get(i)
            .map(|t| {
                if t.kind == TokenKind::ModuleDoc {
                    "/-!".to_string()
                } else {
                    t.text.clone()
                }
            })
            .unwrap_or_default();
        let abs_kw = r.start + kw_idx;
        let ns_path: Vec<String> = scopes.iter().flat_map(|s| s.ns.clone()).collect();
        let ns = ns_path.join(".");
        let mut context: Vec<String> = vec![format!("namespace {ns}")];
        for s in &scopes {
            context.extend(s.entries.iter().cloned());
        }
        let prefixes: Vec<String> = if is_prefix {
            Vec::new()
        } else {
            let p = std::mem::take(&mut pending_prefixes);
            for (text, in_context) in &p {
                if *in_context {
                    context.push(text.clone());
                }
            }
            p.into_iter().map(|(t, _)| t).collect()
        };

        // scope commands (a prefix's effect is confined to the command it scopes)
        if !is_prefix {
            match keyword.as_str() {
                "namespace" => {
                    if let Some(n) = toks.get(i + 1) {
                        for part in n.components() {
                            scopes.push(Scope {
                                ns: vec![part],
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
                                t.components().len()
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
                "set_option" => {
                    let resource = toks
                        .get(i + 1)
                        .is_some_and(|o| is_resource_option(&o.name()));
                    if !resource {
                        if let Some(s) = scopes.last_mut() {
                            s.entries.push(text.clone());
                        }
                    }
                }
                "import" => {
                    for t in &toks[i + 1..] {
                        if t.kind == TokenKind::Ident
                            && !t.is("public")
                            && !t.is("meta")
                            && !t.is("all")
                        {
                            imports.push(t.name());
                        }
                    }
                }
                _ => {}
            }
        }

        // declaration name and signature
        let mut name = None;
        let mut full_name = None;
        let mut signature = None;
        let mut body_has_sorry = false;
        let (mut line, mut col) = toks.get(kw_idx).map(|t| (t.line, t.col)).unwrap_or((0, 0));
        let is_decl = NAMED_DECLS.contains(&keyword.as_str()) || keyword == "example";
        if is_decl && !is_prefix {
            let mut j = i + 1;
            // `class inductive` / `class abbrev`
            if keyword == "class"
                && toks
                    .get(j)
                    .is_some_and(|t| t.is("inductive") || t.is("abbrev"))
            {
                j += 1;
            }
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
                    if t.kind == TokenKind::Ident && !t.is("where") {
                        name = Some(t.text.clone());
                        line = t.line;
                        col = t.col;
                        let n = t.name();
                        let fq = if let Some(rest) = n.strip_prefix("_root_.") {
                            rest.to_string()
                        } else if ns.is_empty() {
                            n
                        } else {
                            format!("{ns}.{n}")
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

        if is_prefix {
            // a prefix joins the context unless it is a resource-only `set_option`
            let resource = keyword == "set_option"
                && toks
                    .get(i + 1)
                    .is_some_and(|o| is_resource_option(&o.name()));
            pending_prefixes.push((text.clone(), !resource));
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
            is_prefix,
        });
    }
    SourceFile {
        tokens,
        commands,
        imports,
        diagnostics,
        declared,
    }
}

/// Command keywords a set of files declares (`syntax`/`macro`/`elab … : command` leading
/// atoms), for [`parse_with`].
pub fn declared_command_keywords<'a>(
    files: impl IntoIterator<Item = &'a SourceFile>,
) -> BTreeSet<String> {
    files
        .into_iter()
        .flat_map(|f| f.declared.iter())
        .filter(|d| d.category == "command" && !d.trailing)
        .filter_map(|d| d.leading.clone())
        .map(|k| k.trim_end_matches('%').to_string())
        .collect()
}

#[cfg(test)]
mod tests;
