//! A Lean 4 token scanner, good enough to find identifiers, keywords and brackets.
//!
//! Invariants: comments (`--` to end of line, nested `/- … -/`, doc comments) never produce
//! tokens; string literals (`"…"` with escapes, interpolated `s!"…"`, raw `r#"…"#`) and char
//! literals (`'a'`, `'\n'`) are single [`TokenKind::Str`] / [`TokenKind::Char`] tokens, so
//! nothing inside them is mistaken for code; an identifier is a maximal dotted name (`Nat.succ`,
//! `foo'`, `simp?`, `«weird name»`), so `sorryAx` and `my_sorry` are not `sorry`.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A (possibly dotted) identifier or keyword.
    Ident,
    /// A `#command` such as `#exit`, `#eval`.
    Hash,
    /// A numeric literal.
    Num,
    /// A string literal (any flavour).
    Str,
    /// A character literal.
    Char,
    /// A name literal `` `foo `` / ``` ``foo ```.
    NameLit,
    /// Punctuation; `:=`, `=>` and `@[` are one token, every other symbol is one character.
    Sym,
}

/// One token with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
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
    /// Whether the token is the identifier/keyword `s`.
    pub fn is(&self, s: &str) -> bool {
        matches!(self.kind, TokenKind::Ident | TokenKind::Hash) && self.text == s
    }

    /// Whether the token is the symbol `s`.
    pub fn is_sym(&self, s: &str) -> bool {
        self.kind == TokenKind::Sym && self.text == s
    }

    /// The last dot-separated component of an identifier.
    pub fn last_component(&self) -> &str {
        self.text.rsplit('.').next().unwrap_or(&self.text)
    }
}

fn is_letter_like(c: char) -> bool {
    // Lean: Greek (except λ Π Σ), Coptic, letter-like symbols, and other unicode letters.
    (c.is_alphabetic() && c != 'λ' && c != 'Π' && c != 'Σ')
        || ('\u{1d49c}'..='\u{1d59f}').contains(&c)
        || ('\u{2100}'..='\u{214f}').contains(&c)
}

fn is_sub_script(c: char) -> bool {
    ('\u{2080}'..='\u{209c}').contains(&c)
        || ('\u{1d62}'..='\u{1d6a}').contains(&c)
        || c == '\u{2c7c}'
}

fn is_id_first(c: char) -> bool {
    c == '_' || is_letter_like(c)
}

fn is_id_rest(c: char) -> bool {
    c.is_alphanumeric()
        || c == '_'
        || c == '\''
        || c == '!'
        || c == '?'
        || is_letter_like(c)
        || is_sub_script(c)
}

struct Cursor<'a> {
    src: &'a str,
    chars: Vec<(usize, char)>,
    i: usize,
    line: usize,
    col: usize,
}

impl Cursor<'_> {
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
}

/// Split Lean source into tokens (comments and whitespace dropped).
///
/// Never fails: an unterminated comment or string runs to the end of the input.
pub fn tokenize(src: &str) -> Vec<Token> {
    let mut cur = Cursor {
        src,
        chars: src.char_indices().collect(),
        i: 0,
        line: 1,
        col: 0,
    };
    let mut out: Vec<Token> = Vec::new();
    let mut last_line = 0usize;
    while let Some(c) = cur.peek(0) {
        if c.is_whitespace() {
            cur.bump();
            continue;
        }
        // Comments.
        if c == '-' && cur.peek(1) == Some('-') {
            while let Some(c) = cur.peek(0) {
                if c == '\n' {
                    break;
                }
                cur.bump();
            }
            continue;
        }
        if c == '/' && cur.peek(1) == Some('-') {
            cur.bump();
            cur.bump();
            let mut depth = 1usize;
            while depth > 0 {
                match (cur.peek(0), cur.peek(1)) {
                    (None, _) => break,
                    (Some('/'), Some('-')) => {
                        cur.bump();
                        cur.bump();
                        depth += 1;
                    }
                    (Some('-'), Some('/')) => {
                        cur.bump();
                        cur.bump();
                        depth -= 1;
                    }
                    _ => {
                        cur.bump();
                    }
                }
            }
            continue;
        }
        let (line, col, start) = (cur.line, cur.col, cur.pos());
        let kind = lex_one(&mut cur, c, out.last());
        let end = cur.pos();
        let text = src[start..end].to_string();
        let line_start = line != last_line;
        last_line = line;
        out.push(Token {
            kind,
            text,
            line,
            col,
            start,
            end,
            line_start,
        });
    }
    out
}

fn lex_string(cur: &mut Cursor<'_>) {
    // At the opening quote.
    cur.bump();
    while let Some(c) = cur.bump() {
        match c {
            '\\' => {
                cur.bump();
            }
            '"' => break,
            _ => {}
        }
    }
}

fn lex_one(cur: &mut Cursor<'_>, c: char, prev: Option<&Token>) -> TokenKind {
    // Raw strings r"…", r#"…"#.
    if c == 'r' && matches!(cur.peek(1), Some('"') | Some('#')) {
        let mut hashes = 0;
        while cur.peek(1 + hashes) == Some('#') {
            hashes += 1;
        }
        if cur.peek(1 + hashes) == Some('"') {
            for _ in 0..(2 + hashes) {
                cur.bump();
            }
            loop {
                match cur.bump() {
                    None => break,
                    Some('"') if (0..hashes).all(|k| cur.peek(k) == Some('#')) => {
                        for _ in 0..hashes {
                            cur.bump();
                        }
                        break;
                    }
                    _ => {}
                }
            }
            return TokenKind::Str;
        }
    }
    // Interpolated / prefixed strings: s!"…", m!"…", f!"…".
    if matches!(c, 's' | 'm' | 'f') && cur.peek(1) == Some('!') && cur.peek(2) == Some('"') {
        cur.bump();
        cur.bump();
        lex_string(cur);
        return TokenKind::Str;
    }
    if c == '"' {
        lex_string(cur);
        return TokenKind::Str;
    }
    if c == '\'' {
        // A char literal unless it continues an identifier (handled in ident lexing).
        let is_char = match (cur.peek(1), cur.peek(2)) {
            (Some('\\'), _) => true,
            (Some(x), Some('\'')) => x != '\'',
            _ => false,
        };
        if is_char {
            cur.bump();
            if cur.bump() == Some('\\') {
                // escape: \n, \x41, \u{…}
                while let Some(c) = cur.peek(0) {
                    if c == '\'' || c == '\n' {
                        break;
                    }
                    cur.bump();
                }
            }
            if cur.peek(0) == Some('\'') {
                cur.bump();
            }
            return TokenKind::Char;
        }
        cur.bump();
        return TokenKind::Sym;
    }
    if c == '`' {
        // Name literal `foo / ``foo; a syntax quotation `( is a symbol.
        let mut k = 1;
        if cur.peek(1) == Some('`') {
            k = 2;
        }
        if cur.peek(k).is_some_and(|c| is_id_first(c) || c == '«') {
            for _ in 0..k {
                cur.bump();
            }
            lex_ident(cur);
            return TokenKind::NameLit;
        }
        cur.bump();
        return TokenKind::Sym;
    }
    if c == '#' && cur.peek(1).is_some_and(is_id_first) {
        cur.bump();
        while cur.peek(0).is_some_and(is_id_rest) {
            cur.bump();
        }
        return TokenKind::Hash;
    }
    if is_id_first(c) || c == '«' {
        lex_ident(cur);
        return TokenKind::Ident;
    }
    if c.is_ascii_digit() {
        while cur
            .peek(0)
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            cur.bump();
        }
        if cur.peek(0) == Some('.') && cur.peek(1).is_some_and(|c| c.is_ascii_digit()) {
            cur.bump();
            while cur.peek(0).is_some_and(|c| c.is_ascii_alphanumeric()) {
                cur.bump();
            }
        }
        return TokenKind::Num;
    }
    if c == ':' && cur.peek(1) == Some('=') {
        cur.bump();
        cur.bump();
        return TokenKind::Sym;
    }
    if c == '=' && cur.peek(1) == Some('>') {
        cur.bump();
        cur.bump();
        return TokenKind::Sym;
    }
    if c == '@' && cur.peek(1) == Some('[') {
        cur.bump();
        cur.bump();
        return TokenKind::Sym;
    }
    let _ = prev;
    cur.bump();
    TokenKind::Sym
}

fn lex_ident(cur: &mut Cursor<'_>) {
    loop {
        if cur.peek(0) == Some('«') {
            while let Some(c) = cur.bump() {
                if c == '»' {
                    break;
                }
            }
        } else {
            while cur.peek(0).is_some_and(is_id_rest) {
                cur.bump();
            }
        }
        // A dot continues the name only when an identifier part follows.
        if cur.peek(0) == Some('.') && cur.peek(1).is_some_and(|c| is_id_first(c) || c == '«') {
            cur.bump();
            continue;
        }
        break;
    }
}

/// Tokens that mean "this proof is not finished": `sorry`, `admit` and a direct `sorryAx`.
pub fn is_sorry_token(t: &Token) -> bool {
    t.kind == TokenKind::Ident && matches!(t.text.as_str(), "sorry" | "admit" | "sorryAx")
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
mod tests {
    use super::*;

    fn texts(src: &str) -> Vec<String> {
        tokenize(src).into_iter().map(|t| t.text).collect()
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
        assert!(!contains_sorry("def s := s!\"x {1} sorry\""));
        assert!(!contains_sorry("def c := 's'"));
        // after the nested comment closes, code resumes
        assert!(contains_sorry("/- /- -/ -/ theorem t : P := sorry"));
    }

    #[test]
    fn primes_are_identifier_characters_not_char_literals() {
        assert_eq!(texts("h' x'' 'a' f'"), vec!["h'", "x''", "'a'", "f'"]);
        assert_eq!(
            texts("Scope.fromBytes'_append"),
            vec!["Scope.fromBytes'_append"]
        );
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
    }
}
