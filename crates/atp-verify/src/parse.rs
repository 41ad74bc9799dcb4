//! Parsers for what Lean and Lake print (formats: `shared/reference/lean-output.md`).
//!
//! Pure functions over text. Every variant the reference lists is accepted: messages
//! `<path>:<line>:<col>: <severity>: <text>` with continuation lines, Lake's
//! `<severity>: <path>:<line>:<col>: <text>`, sorry warnings with straight quotes or backticks,
//! and Lake's build progress lines.

/// Message severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "error" => Some(Severity::Error),
            "warning" => Some(Severity::Warning),
            "info" => Some(Severity::Info),
            _ => None,
        }
    }
}

/// One Lean message (its text includes continuation lines, joined with `\n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub path: String,
    pub line: usize,
    pub col: usize,
    pub severity: Severity,
    pub text: String,
}

impl Message {
    /// Whether this is Lean's "declaration uses sorry" warning (either quote style).
    pub fn is_sorry_warning(&self) -> bool {
        self.severity == Severity::Warning && is_sorry_text(&self.text)
    }
}

/// `declaration uses 'sorry'` or ``declaration uses `sorry` ``.
pub fn is_sorry_text(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with("declaration uses 'sorry'") || t.starts_with("declaration uses `sorry`")
}

/// Parse `<path>:<line>:<col>: <severity>: <text>`; `None` when the line is not a message start.
fn parse_lean_head(line: &str) -> Option<Message> {
    // Find ":<digits>:<digits>: " — the path may itself contain ':'.
    let bytes = line.as_bytes();
    let mut search = 0;
    while let Some(rel) = line[search..].find(':') {
        let i = search + rel;
        search = i + 1;
        let rest = &line[i + 1..];
        let l_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if l_end == 0 || rest.as_bytes().get(l_end) != Some(&b':') {
            continue;
        }
        let rest2 = &rest[l_end + 1..];
        let c_end = rest2
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest2.len());
        if c_end == 0 || !rest2[c_end..].starts_with(": ") {
            continue;
        }
        let after = &rest2[c_end + 2..];
        let (sev, text) = after
            .split_once(": ")
            .unwrap_or((after.trim_end_matches(':'), ""));
        let severity = Severity::parse(sev)?;
        let path = &line[..i];
        if path.is_empty() || path.contains(": ") || bytes.is_empty() {
            return None;
        }
        return Some(Message {
            path: path.to_string(),
            line: rest[..l_end].parse().ok()?,
            col: rest2[..c_end].parse().ok()?,
            severity,
            text: text.to_string(),
        });
    }
    None
}

/// Parse Lake's `<severity>: <path>:<line>:<col>: <text>`.
fn parse_lake_head(line: &str) -> Option<Message> {
    let (sev, rest) = line.split_once(": ")?;
    let severity = Severity::parse(sev.trim())?;
    // rest = path:line:col: text
    let m = parse_lean_head(&rest.replacen(": ", &format!(": {sev}: "), 1))?;
    // the replacen inserted severity after the first ": " — only valid if that was after col
    if m.severity != severity {
        return None;
    }
    Some(m)
}

/// Lines of Lake's build progress that end a message and are not part of one.
fn is_build_noise(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("✔ [")
        || t.starts_with("⚠ [")
        || t.starts_with("✖ [")
        || t.starts_with("Build completed")
        || t.starts_with("Some required builds logged failures")
        || t.starts_with("error: build failed")
        || t.starts_with("- ")
        || t.starts_with("trace: ")
}

/// Every message in `output` (lines that start no message continue the previous one).
pub fn parse_messages(output: &str) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    let mut open = false;
    for line in output.lines() {
        let head = parse_lean_head(line).or_else(|| parse_lake_head(line));
        if let Some(m) = head {
            out.push(m);
            open = true;
        } else if is_build_noise(line) {
            open = false;
        } else if open {
            if let Some(last) = out.last_mut() {
                last.text.push('\n');
                last.text.push_str(line);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lean_messages_with_continuations() {
        let out = "P1/BlockE.lean:33:8: warning: declaration uses 'sorry'\nDemo.lean:5:2: error: unsolved goals\nx : ℕ\n⊢ x = x\nDemo.lean:7:0: info: 'demo_thm' depends on axioms: [propext, Classical.choice, Quot.sound]\n";
        let m = parse_messages(out);
        assert_eq!(m.len(), 3);
        assert_eq!(
            (m[0].path.as_str(), m[0].line, m[0].col),
            ("P1/BlockE.lean", 33, 8)
        );
        assert!(m[0].is_sorry_warning());
        assert_eq!(m[1].severity, Severity::Error);
        assert_eq!(m[1].text, "unsolved goals\nx : ℕ\n⊢ x = x");
        assert_eq!(m[2].severity, Severity::Info);
        assert!(m[2].text.starts_with("'demo_thm' depends on axioms"));
    }

    #[test]
    fn sorry_warning_both_quote_styles() {
        let m = parse_messages("A.lean:1:8: warning: declaration uses `sorry`\nA.lean:2:0: warning: declaration uses 'sorry'\nA.lean:3:0: warning: unused variable `x`\n");
        assert_eq!(m.iter().filter(|m| m.is_sorry_warning()).count(), 2);
    }

    #[test]
    fn lake_build_style() {
        let out = "⚠ [1917/1917] Built Mathlib.X.Defs (7.7s)\nwarning: Mathlib/X/Defs.lean:104:9: declaration uses 'sorry'\n✔ [1918/1918] Built Foo\nerror: Foo/Bar.lean:3:4: unknown identifier 'x'\nBuild completed successfully.\n";
        let m = parse_messages(out);
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(m[0].path, "Mathlib/X/Defs.lean");
        assert_eq!((m[0].line, m[0].col), (104, 9));
        assert!(m[0].is_sorry_warning());
        assert_eq!(m[1].severity, Severity::Error);
        assert_eq!(m[1].text, "unknown identifier 'x'");
    }
}
