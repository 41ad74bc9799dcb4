//! Recognising a rejected credential in a prover's transcript.
//!
//! Agent CLIs report a refused key in their own words and exit; without this, such a run
//! would look like an honest "unverified". Used only when the prover changed no `.lean` file.

use std::io::{BufRead, BufReader};

use regex::Regex;

use crate::layout::RunLayout;

/// Case-insensitive patterns of authentication failures as agent CLIs and model APIs print
/// them.
const PATTERNS: &[&str] = &[
    r"authentication[ _]?(failed|error|fails)",
    r"(invalid|incorrect|expired|missing)[ _-](api[ _-]?key|x-api-key|bearer token|credentials?|token|auth)",
    r"\b401\b.{0,40}unauthori[sz]ed|unauthori[sz]ed.{0,40}\b401\b",
    r#""status"\s*:\s*401|status(code)?[ :=]+401\b|\b401 unauthori[sz]ed"#,
    r"login[ ._]?required|requires login|please (run )?.{0,20}log ?in",
    r"invalid_grant|invalid_api_key|authentication_error|token[ _]refresh[ _]failed",
    r"api error:?\s*401\b",
    r"(api[ _-]?key|token|credentials?) (has |have )?(been )?revoked",
];

fn matcher() -> Option<Regex> {
    Regex::new(&format!("(?i){}", PATTERNS.join("|"))).ok()
}

/// The first line of `text` that reads like a rejected credential, trimmed to 160 chars.
pub fn rejected_in(text: &str) -> Option<String> {
    let re = matcher()?;
    text.lines().find(|l| re.is_match(l)).map(clip)
}

/// The first such line of the run's `stdout.txt` or `stderr.txt` (atp's own logs).
pub fn rejected_in_logs(layout: &RunLayout) -> Option<String> {
    let re = matcher()?;
    for p in [layout.stdout(), layout.stderr()] {
        let Ok(f) = std::fs::File::open(&p) else {
            continue;
        };
        for line in BufReader::new(f).lines().map_while(Result::ok) {
            if re.is_match(&line) {
                return Some(clip(&line));
            }
        }
    }
    None
}

fn clip(line: &str) -> String {
    let t = line.trim();
    match t.char_indices().nth(160) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typical_rejections_are_recognised() {
        for line in [
            r#"{"type":"result","is_error":true,"result":"Invalid API key · Please run /login"}"#,
            "Error: 401 Unauthorized",
            r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
            "API Error: 401 {\"type\":\"error\"}",
            "unexpected status 401 Unauthorized: Incorrect API key provided",
            "OAuth token has been revoked",
            "Authentication failed",
        ] {
            assert!(rejected_in(line).is_some(), "{line}");
        }
    }

    #[test]
    fn ordinary_transcripts_are_not_rejections() {
        for line in [
            r#"{"type":"assistant","message":{"content":[{"type":"text","text":"Proving theorem token_count"}]}}"#,
            "theorem t401 : 2 + 2 = 4 := by norm_num",
            "error: unsolved goals",
        ] {
            assert!(rejected_in(line).is_none(), "{line}");
        }
    }
}
