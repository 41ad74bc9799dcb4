//! Derive command keywords from Lean sources (how `src/keywords/command.txt` was made; see
//! `src/keywords/README.md`).
//!
//! `cargo run -p atp-lean --example derive_keywords -- DIR...` reads every `.lean` file under the
//! directories (checkouts of Batteries, Mathlib and Mathlib's dependencies at the pinned
//! revisions) with atp's own Lean lexer and prints, one per line:
//! - `command <kw> <files>`: the leading atom of every `syntax`/`macro`/`elab … : command` and of
//!   every `leading_parser` definition with a `command_parser` attribute;
//! - `inner <kw> <files>`: leading atoms of `term`/`tactic`/`doElem`/`conv` syntax (a command
//!   keyword that is also one of these is valid inside proofs);
//! - `column0 <kw> <count>`: identifiers that begin a column-0 line after the doc comment,
//!   attributes and modifiers (the commands the code actually uses, Lean core's included).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use atp_lean::keywords::{declared_in_parser_def, declared_syntax, MODIFIERS};
use atp_lean::lexer::{tokenize, Token, TokenKind};

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            walk(&p, out);
        } else if name.ends_with(".lean") {
            out.push(p);
        }
    }
}

/// Index just past a run of doc comment, `@[…]` lists and modifiers starting at `i`.
fn skip_prefix(toks: &[Token], mut i: usize) -> (usize, Vec<String>) {
    let mut attrs = Vec::new();
    while let Some(t) = toks.get(i) {
        if t.kind == TokenKind::DocComment {
            i += 1;
        } else if t.is_sym("@[") {
            let mut d = 1;
            i += 1;
            while let Some(t) = toks.get(i) {
                i += 1;
                if t.is_sym("[") || t.is_sym("@[") {
                    d += 1;
                } else if t.is_sym("]") {
                    d -= 1;
                    if d == 0 {
                        break;
                    }
                } else if t.kind == TokenKind::Ident && d == 1 {
                    attrs.push(t.name());
                }
            }
        } else if t.kind == TokenKind::Ident && MODIFIERS.contains(&t.text.as_str()) {
            i += 1;
        } else {
            break;
        }
    }
    (i, attrs)
}

fn main() {
    let mut files = Vec::new();
    for d in std::env::args().skip(1) {
        walk(Path::new(&d), &mut files);
    }
    files.sort();
    let mut command: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut inner: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut column0: BTreeMap<String, usize> = BTreeMap::new();
    for f in &files {
        let Ok(src) = std::fs::read_to_string(f) else {
            continue;
        };
        let toks = tokenize(&src);
        // column-0 lines, a line of nothing but attributes/doc joined to the next
        let mut starts: Vec<usize> = Vec::new();
        let mut pending: Option<usize> = None;
        let col0: Vec<usize> = (0..toks.len())
            .filter(|&i| toks[i].line_start && toks[i].col == 0)
            .collect();
        for (k, &s) in col0.iter().enumerate() {
            let end = col0.get(k + 1).copied().unwrap_or(toks.len());
            let (i, _) = skip_prefix(&toks[..end], s);
            let start = pending.take().unwrap_or(s);
            if i >= end {
                pending = Some(start);
            } else {
                starts.push(start);
            }
        }
        for (k, &s) in starts.iter().enumerate() {
            let end = starts.get(k + 1).copied().unwrap_or(toks.len());
            let (i, attrs) = skip_prefix(&toks[..end], s);
            let Some(t) = toks.get(i).filter(|_| i < end) else {
                continue;
            };
            if matches!(t.kind, TokenKind::Ident | TokenKind::Hash) && !t.is_escaped() {
                *column0.entry(t.text.clone()).or_default() += 1;
            }
            let region = &toks[i..end];
            let found = declared_syntax(region).or_else(|| {
                if t.is("def") || t.is("abbrev") {
                    declared_in_parser_def(&attrs, region)
                } else {
                    None
                }
            });
            if let Some(d) = found {
                let Some(lead) = d.leading.filter(|_| !d.trailing) else {
                    continue;
                };
                let rel = f.display().to_string();
                if d.category == "command" {
                    command.entry(lead).or_default().insert(rel);
                } else if matches!(d.category.as_str(), "term" | "tactic" | "doElem" | "conv") {
                    inner.entry(lead).or_default().insert(rel);
                }
            }
        }
    }
    for (k, fs) in &command {
        println!("command {k} {}", fs.len());
    }
    for (k, fs) in &inner {
        println!("inner {k} {}", fs.len());
    }
    for (k, n) in &column0 {
        println!("column0 {k} {n}");
    }
}
