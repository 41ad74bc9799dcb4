//! The `sorry`s of a file, how each can be replaced by a tactic, and where a compiler message
//! about a replacement lands.

use atp_lean::lexer::{tokenize, Token, TokenKind};

/// Whether a `sorry` stands where a tactic or a term is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `by sorry`, a line of a tactic block, `<;> sorry`, …: replaced by `focus (TAC; done)`.
    Tactic,
    /// `:= sorry`, `exact sorry`, `(sorry)`, …: replaced by `(by TAC)`.
    Term,
}

/// One `sorry` of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// Byte range of the `sorry` token in the original text.
    pub start: usize,
    pub end: usize,
    /// 1-based line of the `sorry` in the original text.
    pub line: usize,
    pub mode: Mode,
}

/// The text that replaces a site with `tactic`.
///
/// A tactic that leaves goals fails: `done` inside `focus` (which narrows to the site's goal),
/// or term-mode `by`, which reports unsolved goals.
pub fn replacement(mode: Mode, tactic: &str) -> String {
    match mode {
        Mode::Tactic => format!("focus ({tactic}; done)"),
        Mode::Term => format!("(by {tactic})"),
    }
}

const DECL_KEYWORDS: &[&str] = &[
    "theorem", "lemma", "example", "def", "abbrev", "instance", "opaque",
];
/// Tokens after which a `sorry` at the start of a line is still a term.
const TERM_BEFORE: &[&str] = &[
    ":=", "(", "⟨", ",", "exact", "refine", "refine'", "from", "show", "apply", "use", "=", "→",
    "<|", "$", "fun", "λ",
];
/// Tokens after which a `sorry` is a tactic.
const TACTIC_BEFORE: &[&str] = &["by", ";", "·", ".", "<;>", "then", "else"];

/// Every `sorry` token of `src` with its mode.
pub fn sites(src: &str) -> Vec<Site> {
    let toks: Vec<Token> = tokenize(src);
    let mut out = Vec::new();
    let mut decl_start = 0usize;
    for (i, t) in toks.iter().enumerate() {
        if t.line_start && t.col == 0 && DECL_KEYWORDS.iter().any(|k| t.is(k)) {
            decl_start = i;
        }
        if !(t.kind == TokenKind::Ident && t.text == "sorry") {
            continue;
        }
        let prev = i.checked_sub(1).map(|j| &toks[j]);
        let in_by = toks[decl_start..i].iter().any(|x| x.is("by"));
        let prev_text = prev.map(|p| p.text.as_str()).unwrap_or("");
        let mode = if TACTIC_BEFORE.contains(&prev_text) {
            Mode::Tactic
        } else if prev_text == "=>" {
            if in_by {
                Mode::Tactic
            } else {
                Mode::Term
            }
        } else if t.line_start && in_by && !TERM_BEFORE.contains(&prev_text) {
            Mode::Tactic
        } else {
            Mode::Term
        };
        out.push(Site {
            start: t.start,
            end: t.end,
            line: t.line,
            mode,
        });
    }
    out
}

/// Where a replacement sits in a trial text: 1-based line, 0-based character columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub line: usize,
    pub col_start: usize,
    pub col_end: usize,
}

/// `src` with each `(site, text)` replaced (sites in any order, non-overlapping); returns the
/// new text and each replacement's span, in the order given.
pub fn splice(src: &str, edits: &[(&Site, String)]) -> (String, Vec<Span>) {
    let mut order: Vec<usize> = (0..edits.len()).collect();
    order.sort_by_key(|&k| edits[k].0.start);
    let mut out = String::with_capacity(src.len() + 32 * edits.len());
    let mut spans = vec![
        Span {
            line: 0,
            col_start: 0,
            col_end: 0
        };
        edits.len()
    ];
    let mut pos = 0;
    for k in order {
        let (site, text) = &edits[k];
        out.push_str(&src[pos..site.start]);
        let (line, col) = line_col(&out);
        out.push_str(text);
        spans[k] = Span {
            line,
            col_start: col,
            col_end: col + text.chars().count(),
        };
        pos = site.end;
    }
    out.push_str(&src[pos..]);
    (out, spans)
}

/// 1-based line and 0-based character column of the end of `s`.
fn line_col(s: &str) -> (usize, usize) {
    let line = s.matches('\n').count() + 1;
    let col = match s.rfind('\n') {
        Some(i) => s[i + 1..].chars().count(),
        None => s.chars().count(),
    };
    (line, col)
}

/// Which span an error at `line:col` belongs to: the span containing it, else the only span on
/// its line; `None` when it belongs to no replacement.
pub fn attribute(spans: &[Span], line: usize, col: usize) -> Option<usize> {
    if let Some(k) = spans
        .iter()
        .position(|s| s.line == line && col >= s.col_start && col < s.col_end)
    {
        return Some(k);
    }
    let on_line: Vec<usize> = (0..spans.len())
        .filter(|&k| spans[k].line == line)
        .collect();
    (on_line.len() == 1).then(|| on_line[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_follow_the_surrounding_syntax() {
        let src = "theorem a : 1 = 1 := sorry\n\
                   theorem b : 1 = 1 := by sorry\n\
                   theorem c : 1 = 1 ∧ 2 = 2 := by\n  constructor\n  · sorry\n  exact sorry\n\
                   theorem d (n : Nat) : n = n := by\n  cases n with\n  | zero => sorry\n  | succ k =>\n    sorry\n\
                   example : True := -- sorry in a comment\n  sorry\n";
        let modes: Vec<(usize, Mode)> = sites(src).iter().map(|s| (s.line, s.mode)).collect();
        assert_eq!(
            modes,
            vec![
                (1, Mode::Term),
                (2, Mode::Tactic),
                (5, Mode::Tactic),
                (6, Mode::Term),
                (9, Mode::Tactic),
                (11, Mode::Tactic),
                (13, Mode::Term),
            ]
        );
    }

    #[test]
    fn splices_report_where_each_replacement_lands() {
        let src = "theorem a : 1 = 1 := sorry\ntheorem b : 2 = 2 := by\n  sorry -- é\n";
        let s = sites(src);
        let edits: Vec<(&Site, String)> =
            s.iter().map(|x| (x, replacement(x.mode, "rfl"))).collect();
        let (text, spans) = splice(src, &edits);
        assert_eq!(
            text,
            "theorem a : 1 = 1 := (by rfl)\ntheorem b : 2 = 2 := by\n  focus (rfl; done) -- é\n"
        );
        assert_eq!(
            spans[0],
            Span {
                line: 1,
                col_start: 21,
                col_end: 29
            }
        );
        assert_eq!(
            spans[1],
            Span {
                line: 3,
                col_start: 2,
                col_end: 19
            }
        );
        assert_eq!(attribute(&spans, 3, 15), Some(1));
        assert_eq!(attribute(&spans, 1, 0), Some(0));
        assert_eq!(attribute(&spans, 2, 0), None);
    }
}
