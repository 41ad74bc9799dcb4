//! Parsers for what Lean and Lake print (formats: `shared/reference/lean-output.md`).
//!
//! Pure functions over text. Every variant the reference lists is accepted: messages
//! `<path>:<line>:<col>: <severity>: <text>` with continuation lines, Lake's
//! `<severity>: <path>:<line>:<col>: <text>`, sorry warnings with straight quotes or backticks,
//! `#print axioms` lines (wrapped lists, names containing `'`), and the verifier's own per-file
//! markers.

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

/// What one axioms line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AxiomReport {
    /// Fully qualified declaration name.
    pub decl: String,
    /// Sorted as printed; empty for "does not depend on any axioms".
    pub axioms: Vec<String>,
}

/// Parse `'NAME' depends on axioms: [A, B]` (list possibly wrapped) or
/// `'NAME' does not depend on any axioms`. NAME may contain `'`: the name ends at the LAST
/// `' depends on` / `' does not depend`.
pub fn parse_axioms_text(text: &str) -> Option<AxiomReport> {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let t = flat.trim();
    // `#guard_msgs` docstrings write the same message as `/-- info: … -/`
    let t = t.strip_prefix("/--").map(str::trim).unwrap_or(t);
    let t = t.strip_suffix("-/").map(str::trim).unwrap_or(t);
    let t = t.strip_prefix("info: ").unwrap_or(t);
    let body = t.strip_prefix('\'')?;
    if let Some(i) = body.rfind("' depends on axioms: [") {
        let decl = body[..i].to_string();
        let list = &body[i + "' depends on axioms: [".len()..];
        let list = &list[..list.rfind(']')?];
        let axioms = list
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        return Some(AxiomReport { decl, axioms });
    }
    if let Some(i) = body.rfind("' does not depend on any axioms") {
        return Some(AxiomReport {
            decl: body[..i].to_string(),
            axioms: vec![],
        });
    }
    None
}

/// The verifier's per-file block: the output between `=== ATP FILE <nonce> <rel> ===` and
/// `=== ATP EXIT <nonce> <rel> <code> ===`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileBlock {
    pub rel: String,
    pub output: String,
    /// `None` when the end marker never came (the run was cut short).
    pub exit_code: Option<i64>,
}

/// Start marker line for `rel`.
pub fn file_marker(nonce: &str, rel: &str) -> String {
    format!("=== ATP FILE {nonce} {rel} ===")
}

/// Split the verifier script's stdout into per-file blocks. Lines outside blocks are ignored;
/// markers carrying another nonce are ordinary output (a candidate cannot forge them).
pub fn split_blocks(stdout: &str, nonce: &str) -> Vec<FileBlock> {
    let start = format!("=== ATP FILE {nonce} ");
    let end = format!("=== ATP EXIT {nonce} ");
    let mut out: Vec<FileBlock> = Vec::new();
    let mut cur: Option<FileBlock> = None;
    for line in stdout.lines() {
        if let Some(rest) = line
            .strip_prefix(&start)
            .and_then(|r| r.strip_suffix(" ==="))
        {
            if let Some(b) = cur.take() {
                out.push(b);
            }
            cur = Some(FileBlock {
                rel: rest.to_string(),
                output: String::new(),
                exit_code: None,
            });
        } else if let Some(rest) = line.strip_prefix(&end).and_then(|r| r.strip_suffix(" ===")) {
            if let Some(mut b) = cur.take() {
                let code = rest.rsplit(' ').next().and_then(|c| c.parse().ok());
                b.exit_code = code;
                out.push(b);
            }
        } else if let Some(b) = cur.as_mut() {
            b.output.push_str(line);
            b.output.push('\n');
        }
    }
    if let Some(b) = cur {
        out.push(b);
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
        let a = parse_axioms_text(&m[2].text).expect("axioms");
        assert_eq!(a.decl, "demo_thm");
        assert_eq!(a.axioms, vec!["propext", "Classical.choice", "Quot.sound"]);
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

    #[test]
    fn axioms_wrapped_primes_and_none() {
        let a =
            parse_axioms_text("'Scope.fromBytes'_append' depends on axioms: [propext]").expect("a");
        assert_eq!(a.decl, "Scope.fromBytes'_append");
        assert_eq!(a.axioms, vec!["propext"]);
        let wrapped = "'Big.thm' depends on axioms: [propext,\n  sorryAx,\n  Classical.choice,\n  Lean.ofReduceBool,\n  Quot.sound]";
        let m = parse_messages(&format!("F.lean:9:0: info: {wrapped}\n"));
        let a = parse_axioms_text(&m[0].text).expect("wrapped");
        assert_eq!(
            a.axioms,
            vec![
                "propext",
                "sorryAx",
                "Classical.choice",
                "Lean.ofReduceBool",
                "Quot.sound"
            ]
        );
        let n = parse_axioms_text("'x' does not depend on any axioms").expect("none");
        assert_eq!((n.decl.as_str(), n.axioms.len()), ("x", 0));
        let q = parse_axioms_text("'it's' depends on axioms: [my_ax]").expect("q");
        assert_eq!(q.decl, "it's");
        assert!(parse_axioms_text("declaration uses 'sorry'").is_none());
        let g = parse_axioms_text("/-- info: 'demo' depends on axioms: [propext,\n Quot.sound] -/")
            .expect("guard_msgs");
        assert_eq!((g.decl.as_str(), g.axioms.len()), ("demo", 2));
    }

    #[test]
    fn blocks_need_the_nonce() {
        let out = "noise\n=== ATP FILE n1 A.lean ===\nA.lean:1:0: error: x\n=== ATP EXIT forged A.lean 0 ===\n=== ATP EXIT n1 A.lean 1 ===\n=== ATP FILE n1 B/C.lean ===\npartial\n";
        let b = split_blocks(out, "n1");
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].rel, "A.lean");
        assert_eq!(b[0].exit_code, Some(1));
        assert!(b[0].output.contains("forged"));
        assert_eq!(b[1].rel, "B/C.lean");
        assert_eq!(b[1].exit_code, None);
        assert_eq!(b[1].output, "partial\n");
    }
}
