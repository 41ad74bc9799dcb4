//! Loading an exploit corpus laid out like LeanParanoia's (`originals/<Cat>/<Name>.lean`,
//! `candidates/<Cat>/<Name>.lean`, `VERIFIER_COMPARISON.md`) into candidate/original project
//! sources, for conformance runs. Reads only; never writes into the corpus.

use std::collections::BTreeMap;
use std::path::Path;

/// Module prefix the corpus files import each other under.
pub const CORPUS_ROOT_MODULE: &str = "LeanTestProject";

/// One candidate with its original, as project sources (`rel path → text`).
#[derive(Debug, Clone)]
pub struct CorpusCase {
    pub category: String,
    pub name: String,
    /// `LeanTestProject/<Cat>/<Name>.lean`.
    pub rel: String,
    pub candidate: BTreeMap<String, String>,
    pub original: BTreeMap<String, String>,
}

impl CorpusCase {
    /// `Cat/Name`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.category, self.name)
    }
    /// Whether this is an honest solution (`Valid/`).
    pub fn is_valid(&self) -> bool {
        self.category == "Valid"
    }
}

fn rel_of(cat: &str, name: &str) -> String {
    format!("{CORPUS_ROOT_MODULE}/{cat}/{name}.lean")
}

/// Add `rel` and, transitively, every `LeanTestProject.*` module it imports, looking in
/// `dirs` in order.
fn add_with_imports(
    dirs: &[&Path],
    rel: &str,
    out: &mut BTreeMap<String, String>,
) -> std::io::Result<()> {
    if out.contains_key(rel) {
        return Ok(());
    }
    let inner = rel.trim_start_matches(&format!("{CORPUS_ROOT_MODULE}/"));
    let Some(text) = dirs
        .iter()
        .find_map(|d| std::fs::read_to_string(d.join(inner)).ok())
    else {
        return Ok(()); // an unresolvable import: Lean reports it
    };
    let imports: Vec<String> = atp_lean::source::parse(&text)
        .imports
        .into_iter()
        .filter(|m| m.starts_with(&format!("{CORPUS_ROOT_MODULE}.")))
        .collect();
    out.insert(rel.to_string(), text);
    for m in imports {
        let r = format!("{}.lean", m.replace('.', "/"));
        add_with_imports(dirs, &r, out)?;
    }
    Ok(())
}

/// Every candidate that has an original, sorted by category and name.
pub fn load(corpus: &Path) -> std::io::Result<Vec<CorpusCase>> {
    let originals = corpus.join("originals");
    let candidates = corpus.join("candidates");
    let mut cases = Vec::new();
    let mut cats: Vec<_> = std::fs::read_dir(&originals)?
        .filter_map(|e| e.ok())
        .collect();
    cats.sort_by_key(|e| e.file_name());
    for cat in cats {
        if !cat.path().is_dir() {
            continue;
        }
        let category = cat.file_name().to_string_lossy().into_owned();
        let mut files: Vec<_> = std::fs::read_dir(cat.path())?
            .filter_map(|e| e.ok())
            .collect();
        files.sort_by_key(|e| e.file_name());
        for f in files {
            let fname = f.file_name().to_string_lossy().into_owned();
            let Some(name) = fname.strip_suffix(".lean") else {
                continue;
            };
            if !candidates.join(&category).join(&fname).is_file() {
                continue;
            }
            let rel = rel_of(&category, name);
            let mut candidate = BTreeMap::new();
            add_with_imports(&[&candidates], &rel, &mut candidate)?;
            let mut original = BTreeMap::new();
            add_with_imports(&[&originals, &candidates], &rel, &mut original)?;
            cases.push(CorpusCase {
                category: category.clone(),
                name: name.to_string(),
                rel,
                candidate,
                original,
            });
        }
    }
    Ok(cases)
}

/// SafeVerify's verdict per `Cat/Name` from `VERIFIER_COMPARISON.md`: `detected: <detail>`,
/// `passed` or `n/a: <detail>`.
pub fn safeverify_verdicts(markdown: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in markdown.lines() {
        let cols: Vec<&str> = line.split(" | ").collect();
        if !line.starts_with("| ") || cols.len() < 5 {
            continue;
        }
        let id = cols[0]
            .trim_start_matches("| ")
            .split(' ')
            .next()
            .unwrap_or("")
            .to_string();
        if !id.contains('/') {
            continue;
        }
        let cell = cols[3];
        let detail = cell
            .split("</summary>")
            .nth(1)
            .map(|d| {
                d.split("</details>")
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        let verdict = if cell.contains('🛑') {
            "detected"
        } else if cell.contains('🟢') {
            "passed"
        } else {
            "n/a"
        };
        let v = if detail.is_empty() {
            verdict.to_string()
        } else {
            format!("{verdict}: {detail}")
        };
        out.insert(id, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safeverify_cells() {
        let md = "| Exploit | LP | l4c | SV | C |\n|---|---|---|---|---|\n| A/B [↗](x) | <details><summary>🛑 1ms</summary>Replay</details> | 🟢 2ms | <details><summary>🛑 3ms</summary>magic is not allowed</details> | 🟢 |\n| V/S [↗](y) | 🟢 | 🟢 | 🟢 1635ms | 🟢 |\n";
        let v = safeverify_verdicts(md);
        assert_eq!(v["A/B"], "detected: magic is not allowed");
        assert_eq!(v["V/S"], "passed");
    }

    #[test]
    fn loads_with_transitive_imports() {
        let d = tempfile::tempdir().expect("tmp");
        let w = |p: &str, t: &str| {
            let p = d.path().join(p);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mk");
            std::fs::write(p, t).expect("w");
        };
        w("originals/T/Top.lean", "theorem t : True := sorry");
        w(
            "candidates/T/Top.lean",
            "import LeanTestProject.T.Lib\ntheorem t : True := l",
        );
        w("candidates/T/Lib.lean", "axiom l : True");
        let cases = load(d.path()).expect("load");
        assert_eq!(cases.len(), 1);
        assert_eq!(
            cases[0].candidate.keys().collect::<Vec<_>>(),
            vec!["LeanTestProject/T/Lib.lean", "LeanTestProject/T/Top.lean"]
        );
        assert_eq!(cases[0].original.len(), 1);
    }
}
