//! `.env`: `KEY=VALUE` lines in the working directory or its nearest parent that has one,
//! loaded into the environment without overriding variables already set.
//!
//! Accepted: blank lines, `# comments`, an optional `export ` prefix, values in single quotes
//! (literal) or double quotes (`\n`, `\"`, `\\` escapes), unquoted values up to a ` #` comment.
//! Values are never printed.

use std::path::{Path, PathBuf};

/// The `.env` that applies to `dir`: `dir/.env`, else the nearest parent's.
pub fn find(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .map(|d| d.join(".env"))
        .find(|p| p.is_file())
}

/// Parse `.env` text into `(key, value)` pairs; an error names the line.
pub fn parse(text: &str, origin: &Path) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let bad = |why: &str| format!("{}:{}: {why} — expected KEY=VALUE", origin.display(), i + 1);
        let Some((key, value)) = line.split_once('=') else {
            return Err(bad("no `=`"));
        };
        let key = key.trim();
        if key.is_empty()
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || key.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(bad("not a variable name"));
        }
        let value = value.trim();
        let value = if let Some(v) = value.strip_prefix('\'') {
            v.strip_suffix('\'')
                .ok_or_else(|| bad("unterminated single quote"))?
                .to_string()
        } else if let Some(v) = value.strip_prefix('"') {
            let v = v
                .strip_suffix('"')
                .ok_or_else(|| bad("unterminated double quote"))?;
            unescape(v)
        } else {
            match value.find(" #") {
                Some(i) => value[..i].trim_end().to_string(),
                None => value.to_string(),
            }
        };
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Load the applicable `.env` into the process environment (existing variables win). Must run
/// before any other thread exists.
pub fn load() -> Result<(), String> {
    let Ok(cwd) = std::env::current_dir() else {
        return Ok(());
    };
    let Some(path) = find(&cwd) else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    for (k, v) in parse(&text, &path)? {
        if std::env::var_os(&k).is_none() {
            std::env::set_var(k, v);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_lines() {
        let text = "# keys\nexport A=1\nB = 'two words'\nC=\"x\\ny\"\nD=plain # comment\n\nE=\n";
        let got = parse(text, Path::new(".env")).expect("parses");
        assert_eq!(
            got,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "x\ny".into()),
                ("D".into(), "plain".into()),
                ("E".into(), "".into()),
            ]
        );
        let e = parse("OK=1\nnot a line\n", Path::new("/p/.env")).expect_err("bad");
        assert_eq!(e, "/p/.env:2: no `=` — expected KEY=VALUE");
        assert!(parse("1X=2", Path::new(".env")).is_err());
    }
}
