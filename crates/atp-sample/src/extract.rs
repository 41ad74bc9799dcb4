//! Extracting the Lean code from a model's answer: the last closed ```` ```lean ```` (or
//! ```` ```lean4 ````) fenced block, else the last closed untagged block. A block still open at
//! the end of the answer (an answer cut at the output limit) is not code.

/// Why an answer holds no code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoCode {
    #[error("no ```lean code block in the answer")]
    NoBlock,
    #[error("the answer ends inside an unclosed code block (cut off?)")]
    Unclosed,
    #[error("the answer's code block is empty")]
    Empty,
}

/// The code of the answer (see the module doc).
pub fn extract_lean(answer: &str) -> Result<String, NoCode> {
    let mut lean: Option<String> = None;
    let mut plain: Option<String> = None;
    // (is_lean, lines) of the block being read.
    let mut open: Option<(Option<bool>, Vec<&str>)> = None;
    for line in answer.lines() {
        let t = line.trim();
        match &mut open {
            None => {
                if let Some(tag) = t.strip_prefix("```") {
                    let tag = tag.trim().to_ascii_lowercase();
                    let kind = match tag.as_str() {
                        "lean" | "lean4" => Some(true),
                        "" => Some(false),
                        _ => None, // another language: read past it
                    };
                    open = Some((kind, Vec::new()));
                }
            }
            Some((kind, lines)) => {
                if t == "```" {
                    let code = lines.join("\n");
                    match kind {
                        Some(true) => lean = Some(code),
                        Some(false) => plain = Some(code),
                        None => {}
                    }
                    open = None;
                } else {
                    lines.push(line);
                }
            }
        }
    }
    let unclosed = matches!(open, Some((Some(_), _)));
    match lean.or(plain) {
        Some(code) if code.trim().is_empty() => Err(NoCode::Empty),
        Some(code) => Ok(code.trim_end().to_string() + "\n"),
        None if unclosed => Err(NoCode::Unclosed),
        None => Err(NoCode::NoBlock),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_lean_block_wins() {
        let a = "Plan: use omega.\n```lean\ntheorem a : 1 = 1 := rfl\n```\nBetter:\n```lean4\ntheorem a : 1 = 1 := by\n  rfl\n```\nDone.";
        assert_eq!(
            extract_lean(a).expect("code"),
            "theorem a : 1 = 1 := by\n  rfl\n"
        );
    }

    #[test]
    fn untagged_blocks_are_a_fallback_and_other_languages_are_skipped() {
        let a = "```\ntheorem b : True := trivial\n```\n```python\nprint(1)\n```";
        assert_eq!(
            extract_lean(a).expect("code"),
            "theorem b : True := trivial\n"
        );
        let a = "```lean\ntheorem c : True := trivial\n```\n```\nnot lean\n```";
        assert_eq!(
            extract_lean(a).expect("code"),
            "theorem c : True := trivial\n"
        );
    }

    #[test]
    fn cut_and_missing_blocks_are_no_code() {
        assert_eq!(
            extract_lean("Let me think step by step"),
            Err(NoCode::NoBlock)
        );
        assert_eq!(
            extract_lean("```lean\ntheorem d : True := by\n  triv"),
            Err(NoCode::Unclosed)
        );
        assert_eq!(extract_lean("```lean\n\n```"), Err(NoCode::Empty));
        // An earlier complete block still counts when a later one is cut.
        assert_eq!(
            extract_lean("```lean\ntheorem e : True := trivial\n```\nAgain:\n```lean\ntheorem e")
                .expect("code"),
            "theorem e : True := trivial\n"
        );
    }
}
