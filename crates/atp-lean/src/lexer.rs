//! A Lean 4 token scanner that follows Lean's own lexical rules (leanprover/lean4, v4.28).
//!
//! Sources of each rule (Lean's parser has no separate lexer; these are the functions its
//! `tokenFn` is made of):
//! - whitespace and comments: `Lean.Parser.whitespace` and `finishCommentBlock`
//!   (`src/Lean/Parser/Basic.lean`). Whitespace is exactly `' '`, `'\t'`, `'\r'`, `'\n'`
//!   (`Char.isWhitespace`); `--` runs to the end of the line; `/-` opens a nested block comment
//!   whose *third* character is consumed unexamined, so `/-/- x -/` is one comment, not two;
//!   `/--` and `/-!` are not comments but tokens (doc comments, `Command.docComment` and
//!   `Command.moduleDoc`) whose body is `finishCommentBlock 1` from right after the third
//!   character — so the degenerate `/--/` does *not* close itself.
//! - token dispatch: `tokenFnAux` — `"` starts a string, `'` starts a char literal unless the next
//!   character is also `'`, a digit starts a number, `` ` `` followed by an identifier start is a
//!   name literal, `r` followed by `#`*`"` is a raw string, anything else is an identifier or a
//!   symbol (`identFnAux`).
//! - identifiers: `identFnAux`, `isIdCont` (Basic.lean) and `isIdFirst`, `isIdRest`,
//!   `isLetterLike`, `isSubScriptAlnum`, `isIdBeginEscape` (`src/Init/Meta/Defs.lean`).
//!   `Char.isAlpha`/`isAlphanum` are ASCII-only in Lean, so a Unicode letter outside
//!   `isLetterLike` (Cyrillic, `ᶜ`, …) is *not* an identifier character. `«…»` escapes a part;
//!   an escaped part is never a keyword (`«instance»` is the name `instance`).
//! - strings: `strLitFnAux`, `quotedCharCoreFn` (escapes `\\ \" \' \r \n \t \xHH \uHHHH` and
//!   the `\`-newline gap), raw strings `rawStrLitFnAux`; interpolated strings
//!   `interpolatedStrFn` (`src/Lean/Parser/Extra.lean`): a `{` opens a term that ends at the
//!   matching `}`, and the term may itself hold strings, chars and comments.
//! - char literals: `charLitFnAux` (one character or one escape, then `'`).
//! - numbers: `numberFnAux`, `decimalNumberFn`, `takeDigitsFn` (`_` separators, `0b`/`0o`/`0x`,
//!   scientific `1.5e-3`); a number never swallows the letters after it (`2axiom` is `2`,
//!   `axiom`).
//!
//! Whether a string literal is interpolated depends on the syntax around it (`s!"…"`,
//! `m!"…"`, `throwError "…"`), which a scanner cannot know in general. Both readings are tried;
//! when they end at different places and the context is not a known interpolating keyword, the
//! scanner reports an [`Diagnostic`] instead of guessing (fail closed).
//!
//! Invariants: comments never produce tokens; a string (outside interpolation holes), char or
//! name literal is one token, so nothing inside it is mistaken for code; identifiers are maximal
//! dotted names; every diagnostic marks a place where atp's reading may differ from Lean's.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A (possibly dotted, possibly `«escaped»`) identifier or keyword.
    Ident,
    /// A `#command` such as `#exit`, `#eval` (`#` followed by identifier characters).
    Hash,
    /// A numeric literal.
    Num,
    /// A string literal, or one literal piece of an interpolated string.
    Str,
    /// A character literal.
    Char,
    /// A name literal `` `foo `` / ``` ``foo ```.
    NameLit,
    /// A doc comment `/-- … -/` (part of the next declaration's syntax, not whitespace).
    DocComment,
    /// A module doc `/-! … -/` (a command of its own).
    ModuleDoc,
    /// Punctuation; `:=`, `=>`, `@[`, `->`, `<-`, `<;>`, `..`, `::` are one token, every other
    /// symbol is one character.
    Sym,
}

/// One token with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    /// The token's source text.
    pub text: String,
    /// 1-based line.
    pub line: usize,
    /// 0-based column, in characters (as Lean reports it).
    pub col: usize,
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
    /// Whether this is the first token on its line.
    pub line_start: bool,
}

impl Token {
    /// Whether the token is the keyword `s` (raw text: an escaped `«s»` is a name, not `s`).
    pub fn is(&self, s: &str) -> bool {
        matches!(self.kind, TokenKind::Ident | TokenKind::Hash) && self.text == s
    }

    /// Whether the token is the symbol `s`.
    pub fn is_sym(&self, s: &str) -> bool {
        self.kind == TokenKind::Sym && self.text == s
    }

    /// Whether the identifier has an `«escaped»` part.
    pub fn is_escaped(&self) -> bool {
        self.kind == TokenKind::Ident && self.text.contains('«')
    }

    /// The parts of an identifier or name literal as Lean reads them (`«a.b».c` → `["a.b",
    /// "c"]`); any other token is one part, its text.
    pub fn components(&self) -> Vec<String> {
        match self.kind {
            TokenKind::Ident => split_name(&self.text),
            TokenKind::NameLit => split_name(self.text.trim_start_matches('`')),
            _ => vec![self.text.clone()],
        }
    }

    /// The canonical spelling of the name: parts joined with `.`, a part kept in `«»` only
    /// when it is not a plain identifier part (`«sorryAx»` → `sorryAx`, `«a b».c` stays).
    pub fn name(&self) -> String {
        canonical_name(&self.components())
    }

    /// The last part of the name, unescaped.
    pub fn last_component(&self) -> String {
        self.components().pop().unwrap_or_default()
    }

    /// The comparison form: identifiers canonical, Lean's ASCII/Unicode alternatives of the
    /// same token unified (`=>`/`↦`, `->`/`→`, `fun`/`λ`, `<-`/`←`, `forall`/`∀`).
    pub fn normal(&self) -> String {
        match self.kind {
            TokenKind::Ident if self.is_escaped() => self.name(),
            TokenKind::Ident => match self.text.as_str() {
                "fun" => "λ".to_string(),
                "forall" => "∀".to_string(),
                _ => self.text.clone(),
            },
            TokenKind::Sym => match self.text.as_str() {
                "↦" => "=>".to_string(),
                "->" => "→".to_string(),
                "<-" => "←".to_string(),
                _ => self.text.clone(),
            },
            _ => self.text.clone(),
        }
    }
}

/// Something atp's scanner is unsure of, where Lean may read the file differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: usize,
    /// 0-based column (characters).
    pub col: usize,
    /// One line: what is unsure and how to rewrite it.
    pub message: String,
}

/// Tokens and diagnostics of one file.
#[derive(Debug, Clone, Default)]
pub struct Lexed {
    pub tokens: Vec<Token>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Keywords after which a string literal is interpolated (`interpolatedStr(term)` in their
/// syntax): `s!`, `m!`, `f!` and Lean core's `throwError`, `throwErrorAt`, `println!`.
pub const INTERPOLATING_KEYWORDS: &[&str] =
    &["s!", "m!", "f!", "throwError", "throwErrorAt", "println!"];

/// Multi-character symbols kept as one token.
const MULTI_SYMBOLS: &[&str] = &[":=", "=>", "@[", "->", "<-", "<;>", "..", "::"];

/// `Lean.isLetterLike` (`src/Init/Meta/Defs.lean`).
pub fn is_letter_like(c: char) -> bool {
    let v = c as u32;
    ((0x3b1..=0x3c9).contains(&v) && v != 0x3bb)
        || ((0x391..=0x3a9).contains(&v) && v != 0x3a0 && v != 0x3a3)
        || (0x3ca..=0x3fb).contains(&v)
        || (0x1f00..=0x1ffe).contains(&v)
        || (0x2100..=0x214f).contains(&v)
        || (0x1d49c..=0x1d59f).contains(&v)
        || ((0xc0..=0xff).contains(&v) && v != 0xd7 && v != 0xf7)
        || (0x100..=0x17f).contains(&v)
}

/// `Lean.isSubScriptAlnum`.
pub fn is_sub_script_alnum(c: char) -> bool {
    let v = c as u32;
    (0x2080..=0x2089).contains(&v)
        || (0x2090..=0x209c).contains(&v)
        || (0x1d62..=0x1d6a).contains(&v)
        || v == 0x2c7c
}

/// `Lean.isIdFirst` (`Char.isAlpha` is ASCII in Lean).
pub fn is_id_first(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || is_letter_like(c)
}

/// `Lean.isIdRest`.
pub fn is_id_rest(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || c == '_'
        || c == '\''
        || c == '!'
        || c == '?'
        || is_letter_like(c)
        || is_sub_script_alnum(c)
}

/// `Char.isWhitespace`: exactly space, tab, CR and LF.
fn is_lean_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Whether `s` is one plain identifier part (needs no `«»`).
fn is_plain_part(s: &str) -> bool {
    let mut cs = s.chars();
    cs.next().is_some_and(is_id_first) && cs.all(is_id_rest)
}

/// Split identifier text into its parts, removing `«»` escapes.
fn split_name(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut in_escape = false;
    for c in text.chars() {
        match c {
            '«' if !in_escape => in_escape = true,
            '»' if in_escape => in_escape = false,
            '.' if !in_escape => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    parts
}

/// Join name parts, escaping only those that need it.
pub fn canonical_name(parts: &[String]) -> String {
    parts
        .iter()
        .map(|p| {
            if is_plain_part(p) {
                p.clone()
            } else {
                format!("«{p}»")
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The canonical form of a dotted name written in source (`«a».b` → `a.b`).
pub fn canonical(text: &str) -> String {
    canonical_name(&split_name(text))
}

struct Lexer<'a> {
    src: &'a str,
    chars: std::rc::Rc<Vec<(usize, char)>>,
    i: usize,
    line: usize,
    col: usize,
    tokens: Vec<Token>,
    diagnostics: Vec<Diagnostic>,
    /// Line of the last token pushed (0: none yet), for [`Token::line_start`].
    last_line: usize,
    /// Whether the last token pushed is an interpolating keyword.
    after_interpolating: bool,
}

impl<'a> Lexer<'a> {
    /// A lexer at the same position with no tokens of its own (for trying a reading).
    fn fork(&self) -> Self {
        Lexer {
            src: self.src,
            chars: self.chars.clone(),
            i: self.i,
            line: self.line,
            col: self.col,
            tokens: Vec::new(),
            diagnostics: Vec::new(),
            last_line: self.last_line,
            after_interpolating: self.after_interpolating,
        }
    }

    /// Adopt a fork's position, tokens and diagnostics.
    fn join(&mut self, other: Lexer<'a>) {
        self.i = other.i;
        self.line = other.line;
        self.col = other.col;
        self.last_line = other.last_line;
        self.after_interpolating = other.after_interpolating;
        self.tokens.extend(other.tokens);
        self.diagnostics.extend(other.diagnostics);
    }

    fn peek(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).map(|&(_, c)| c)
    }

    fn pos(&self) -> usize {
        self.chars.get(self.i).map_or(self.src.len(), |&(b, _)| b)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 0;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn diag(&mut self, line: usize, col: usize, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            line,
            col,
            message: message.into(),
        });
    }

    fn push(&mut self, kind: TokenKind, start: usize, line: usize, col: usize) {
        let end = self.pos();
        let line_start = self.last_line != line;
        self.last_line = line;
        self.after_interpolating =
            kind == TokenKind::Ident && INTERPOLATING_KEYWORDS.contains(&&self.src[start..end]);
        self.tokens.push(Token {
            kind,
            text: self.src[start..end].to_string(),
            line,
            col,
            start,
            end,
            line_start,
        });
    }

    /// `finishCommentBlock`: the body of a block comment after its opening, `nesting` deep.
    fn finish_comment_block(&mut self, line: usize, col: usize) {
        let mut nesting = 1usize;
        loop {
            let Some(c) = self.bump() else {
                self.diag(line, col, "unterminated comment (Lean rejects the file)");
                return;
            };
            match c {
                '-' if self.peek(0) == Some('/') => {
                    self.bump();
                    nesting -= 1;
                    if nesting == 0 {
                        return;
                    }
                }
                '/' if self.peek(0) == Some('-') => {
                    self.bump();
                    nesting += 1;
                }
                _ => {}
            }
        }
    }

    /// `whitespace`: skip whitespace and plain comments; stop at a token (doc comments are
    /// tokens).
    fn skip_trivia(&mut self) {
        while let Some(c) = self.peek(0) {
            if is_lean_whitespace(c) {
                self.bump();
            } else if c == '-' && self.peek(1) == Some('-') {
                while self.peek(0).is_some_and(|c| c != '\n') {
                    self.bump();
                }
            } else if c == '/' && self.peek(1) == Some('-') {
                if matches!(self.peek(2), Some('-') | Some('!')) {
                    return; // a doc comment: a token
                }
                let (line, col) = (self.line, self.col);
                self.bump();
                self.bump();
                self.bump(); // Lean consumes the third character unexamined
                self.finish_comment_block(line, col);
            } else {
                return;
            }
        }
    }

    /// Lex tokens until the end of input, or (when `in_hole`) until an unmatched `}`, which is
    /// left unconsumed. Returns whether it stopped at such a `}`.
    fn run(&mut self, in_hole: bool) -> bool {
        let mut depth = 0usize;
        loop {
            self.skip_trivia();
            let Some(c) = self.peek(0) else {
                return false;
            };
            if in_hole && c == '}' {
                if depth == 0 {
                    return true;
                }
                depth -= 1;
            } else if in_hole && c == '{' {
                depth += 1;
            }
            self.token(c);
        }
    }

    fn token(&mut self, c: char) {
        let (line, col, start) = (self.line, self.col, self.pos());
        if c == '/' && self.peek(1) == Some('-') {
            let module = self.peek(2) == Some('!');
            self.bump();
            self.bump();
            self.bump();
            self.finish_comment_block(line, col);
            let kind = if module {
                TokenKind::ModuleDoc
            } else {
                TokenKind::DocComment
            };
            self.push(kind, start, line, col);
        } else if c == '"' {
            self.string(start, line, col);
        } else if c == '\'' && self.peek(1) != Some('\'') {
            self.char_lit(start, line, col);
        } else if c.is_ascii_digit() {
            self.number();
            self.push(TokenKind::Num, start, line, col);
        } else if c == '`' && self.peek(1).is_some_and(|n| is_id_first(n) || n == '«') {
            self.bump();
            self.ident_parts(line, col);
            self.push(TokenKind::NameLit, start, line, col);
        } else if c == '`'
            && self.peek(1) == Some('`')
            && self.peek(2).is_some_and(|n| is_id_first(n) || n == '«')
        {
            self.bump();
            self.bump();
            self.ident_parts(line, col);
            self.push(TokenKind::NameLit, start, line, col);
        } else if c == 'r' && self.raw_string_start() {
            self.raw_string(line, col);
            self.push(TokenKind::Str, start, line, col);
        } else if is_id_first(c) || c == '«' {
            self.ident_parts(line, col);
            self.push(TokenKind::Ident, start, line, col);
        } else if c == '#' && self.peek(1).is_some_and(is_id_first) {
            self.bump();
            while self.peek(0).is_some_and(is_id_rest) {
                self.bump();
            }
            self.push(TokenKind::Hash, start, line, col);
        } else {
            let rest = &self.src[start..];
            let n = MULTI_SYMBOLS
                .iter()
                .find(|s| rest.starts_with(*s))
                .map_or(1, |s| s.chars().count());
            for _ in 0..n {
                self.bump();
            }
            self.push(TokenKind::Sym, start, line, col);
        }
    }

    /// `identFnAux`: parts separated by `.` when an identifier start or `«` follows.
    fn ident_parts(&mut self, line: usize, col: usize) {
        loop {
            if self.peek(0) == Some('«') {
                self.bump();
                loop {
                    match self.bump() {
                        Some('»') => break,
                        Some(_) => {}
                        None => {
                            self.diag(
                                line,
                                col,
                                "unterminated `«` identifier escape (Lean rejects the file)",
                            );
                            return;
                        }
                    }
                }
            } else if self.peek(0).is_some_and(is_id_first) {
                self.bump();
                while self.peek(0).is_some_and(is_id_rest) {
                    self.bump();
                }
            } else {
                return;
            }
            if self.peek(0) == Some('.') && self.peek(1).is_some_and(|c| is_id_first(c) || c == '«')
            {
                self.bump();
                continue;
            }
            return;
        }
    }

    /// `numberFnAux` / `decimalNumberFn`.
    fn number(&mut self) {
        let first = self.bump();
        if first == Some('0') {
            let digits: Option<fn(char) -> bool> = match self.peek(0) {
                Some('b' | 'B') => Some(|c| c == '0' || c == '1'),
                Some('o' | 'O') => Some(|c| ('0'..='7').contains(&c)),
                Some('x' | 'X') => Some(|c| c.is_ascii_hexdigit()),
                _ => None,
            };
            if let Some(is_digit) = digits {
                self.bump();
                while self.peek(0).is_some_and(|c| c == '_' || is_digit(c)) {
                    self.bump();
                }
                return;
            }
        }
        self.take_decimal_digits();
        if matches!(self.peek(0), Some('.' | 'e' | 'E')) {
            if self.peek(0) == Some('.') {
                self.bump();
                self.take_decimal_digits();
            }
            if matches!(self.peek(0), Some('e' | 'E')) {
                let sign = usize::from(matches!(self.peek(1), Some('+' | '-')));
                if self.peek(1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                    for _ in 0..=sign {
                        self.bump();
                    }
                    self.take_decimal_digits();
                }
            }
        }
    }

    fn take_decimal_digits(&mut self) {
        while self.peek(0).is_some_and(|c| c == '_' || c.is_ascii_digit()) {
            self.bump();
        }
    }

    /// `charLitFnAux`: `'`, one character or one escape, `'`. An invalid literal (Lean
    /// rejects it) is read as the symbol `'`.
    fn char_lit(&mut self, start: usize, line: usize, col: usize) {
        let save = (self.i, self.line, self.col);
        self.bump();
        let ok = match self.bump() {
            Some('\\') => self.escape() && self.peek(0) == Some('\''),
            Some(_) => self.peek(0) == Some('\''),
            None => false,
        };
        if ok {
            self.bump();
            self.push(TokenKind::Char, start, line, col);
        } else {
            (self.i, self.line, self.col) = save;
            self.bump();
            self.push(TokenKind::Sym, start, line, col);
        }
    }

    /// `quotedCharCoreFn` after a `\`: one escape. Returns false at the end of input.
    fn escape(&mut self) -> bool {
        match self.bump() {
            Some('x') => {
                for _ in 0..2 {
                    if self.peek(0).is_some_and(|c| c.is_ascii_hexdigit()) {
                        self.bump();
                    }
                }
                true
            }
            Some('u') => {
                for _ in 0..4 {
                    if self.peek(0).is_some_and(|c| c.is_ascii_hexdigit()) {
                        self.bump();
                    }
                }
                true
            }
            Some(_) => true,
            None => false,
        }
    }

    fn raw_string_start(&self) -> bool {
        let mut k = 1;
        while self.peek(k) == Some('#') {
            k += 1;
        }
        self.peek(k) == Some('"')
    }

    /// `rawStrLitFnAux`: `r`, n `#`, `"`, …, `"`, n `#`.
    fn raw_string(&mut self, line: usize, col: usize) {
        self.bump();
        let mut hashes = 0;
        while self.peek(0) == Some('#') {
            self.bump();
            hashes += 1;
        }
        self.bump(); // the opening quote
        loop {
            match self.bump() {
                None => {
                    self.diag(
                        line,
                        col,
                        "unterminated raw string literal (Lean rejects the file)",
                    );
                    return;
                }
                Some('"') => {
                    let mut closing = 0;
                    while closing < hashes && self.peek(0) == Some('#') {
                        self.bump();
                        closing += 1;
                    }
                    if closing == hashes {
                        return;
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// The body of a plain string after its opening quote (`strLitFnAux`). Returns whether it
    /// was terminated.
    fn plain_string_body(&mut self) -> bool {
        loop {
            match self.bump() {
                None => return false,
                Some('"') => return true,
                Some('\\') => {
                    if !self.escape() {
                        return false;
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// An interpolated string from its opening quote (`interpolatedStrFn`): literal pieces as
    /// [`TokenKind::Str`] tokens, each `{…}` hole lexed as code. Returns whether it was
    /// terminated.
    fn interpolated_string(&mut self, start: usize, line: usize, col: usize) -> bool {
        let (mut piece, mut pline, mut pcol) = (start, line, col);
        self.bump(); // opening quote
        loop {
            match self.bump() {
                None => {
                    self.push(TokenKind::Str, piece, pline, pcol);
                    return false;
                }
                Some('"') => {
                    self.push(TokenKind::Str, piece, pline, pcol);
                    return true;
                }
                Some('\\') => {
                    if !self.escape() {
                        self.push(TokenKind::Str, piece, pline, pcol);
                        return false;
                    }
                }
                Some('{') => {
                    self.push(TokenKind::Str, piece, pline, pcol);
                    if !self.run(true) {
                        return false;
                    }
                    (piece, pline, pcol) = (self.pos(), self.line, self.col);
                    self.bump(); // the closing `}`
                }
                Some(_) => {}
            }
        }
    }

    fn string(&mut self, start: usize, line: usize, col: usize) {
        let interpolating = self.after_interpolating;
        let mut plain = self.fork();
        plain.bump();
        let plain_ok = plain.plain_string_body();
        let plain_end = plain.i;
        let mut interp = self.fork();
        let interp_ok = interp.interpolated_string(start, line, col);
        if interpolating {
            self.join(interp);
            if !interp_ok {
                self.diag(
                    line,
                    col,
                    "unterminated string literal (Lean rejects the file)",
                );
            }
            return;
        }
        // An interpolated reading that never terminates is one Lean would reject: only two
        // terminating readings that end apart are a real ambiguity.
        let same = !interp_ok || interp.i == plain_end;
        self.bump();
        self.plain_string_body();
        self.push(TokenKind::Str, start, line, col);
        if !plain_ok {
            self.diag(
                line,
                col,
                "unterminated string literal (Lean rejects the file)",
            );
        } else if !same {
            self.diag(
                line,
                col,
                "this string literal ends elsewhere if Lean reads it as an interpolated string \
                 (`{…}` holding quotes or comments); atp cannot tell which — avoid `{` in it or \
                 escape it as `\\{`",
            );
        }
    }
}

/// Scan Lean source into tokens (comments and whitespace dropped) and diagnostics.
///
/// Never fails: an unterminated comment or string runs to the end of the input (Lean rejects
/// such a file; a diagnostic says so).
pub fn lex(src: &str) -> Lexed {
    let mut lx = Lexer {
        src,
        chars: std::rc::Rc::new(src.char_indices().collect()),
        i: 0,
        line: 1,
        col: 0,
        tokens: Vec::new(),
        diagnostics: Vec::new(),
        last_line: 0,
        after_interpolating: false,
    };
    lx.run(false);
    Lexed {
        tokens: lx.tokens,
        diagnostics: lx.diagnostics,
    }
}

/// The tokens of `src` (see [`lex`]).
pub fn tokenize(src: &str) -> Vec<Token> {
    lex(src).tokens
}

/// Tokens that mean "this proof is not finished": the keywords `sorry` and `admit`, and any
/// reference to the constant `sorryAx` (however it is spelt: `«sorryAx»`, `_root_.sorryAx`).
pub fn is_sorry_token(t: &Token) -> bool {
    t.kind == TokenKind::Ident
        && (t.text == "sorry" || t.text == "admit" || t.last_component() == "sorryAx")
}

/// Positions `(line, col)` of every sorry token (see [`is_sorry_token`]) in `src`.
pub fn sorry_positions(src: &str) -> Vec<(usize, usize)> {
    tokenize(src)
        .iter()
        .filter(|t| is_sorry_token(t))
        .map(|t| (t.line, t.col))
        .collect()
}

/// Whether `src` contains a sorry token outside comments and literals.
pub fn contains_sorry(src: &str) -> bool {
    !sorry_positions(src).is_empty()
}

#[cfg(test)]
mod tests;
