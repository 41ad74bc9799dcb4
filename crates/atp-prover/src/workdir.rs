//! Reading the workdir back after a prover ran in it.
//!
//! Invariant: once an agent has run, `OUT/wd` is untrusted — it was bind-mounted into a
//! sandbox where the agent was root, so a symlink it planted resolves on the host. Nothing in
//! it is read before [`quarantine_unsafe`] has moved every link, special file and oversized
//! file out of the project into `OUT/quarantine/` (renaming a link never follows it); each is
//! reported as a [`ViolationKind::UnsafeFile`] violation.

use std::collections::BTreeMap;
use std::path::Path;

use atp_lean::walk::{self, EntryKind};
use atp_verify::{Violation, ViolationKind};

/// Largest `.lean` file read back from a workdir.
pub const MAX_LEAN_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Largest other project file left in place.
pub const MAX_OTHER_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// `rel → text` of the project's `.lean` sources (a trusted tree: the task as copied).
pub fn lean_texts(root: &Path) -> std::io::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for e in walk::walk(root)? {
        if e.kind == EntryKind::File
            && walk::is_lean_source(&e.rel)
            && e.size <= MAX_LEAN_FILE_BYTES
        {
            if let Ok(text) = std::fs::read_to_string(&e.path) {
                out.insert(e.rel, text);
            }
        }
    }
    Ok(out)
}

/// Move every symlink, special file and oversized file of the project at `wd` into
/// `quarantine` (created on demand), and report each.
pub fn quarantine_unsafe(wd: &Path, quarantine: &Path) -> std::io::Result<Vec<Violation>> {
    let mut violations = Vec::new();
    for e in walk::walk(wd)? {
        let why = match e.kind {
            EntryKind::Symlink => {
                let target = std::fs::read_link(&e.path)
                    .map(|t| t.display().to_string())
                    .unwrap_or_else(|_| "?".into());
                Some(format!(
                    "symbolic link to {target} in the workdir (moved aside, never followed)"
                ))
            }
            EntryKind::Special => Some("special file in the workdir (moved aside)".to_string()),
            EntryKind::File if walk::is_lean_source(&e.rel) && e.size > MAX_LEAN_FILE_BYTES => {
                Some(format!(
                    "{} bytes, over the {} byte limit for a Lean source (moved aside)",
                    e.size, MAX_LEAN_FILE_BYTES
                ))
            }
            EntryKind::File if e.size > MAX_OTHER_FILE_BYTES => Some(format!(
                "{} bytes, over the {} byte limit for a project file (moved aside)",
                e.size, MAX_OTHER_FILE_BYTES
            )),
            _ => None,
        };
        let Some(why) = why else { continue };
        // A parent that was itself moved aside took this entry with it.
        if std::fs::symlink_metadata(&e.path).is_err() {
            continue;
        }
        let dest = quarantine.join(&e.rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::rename(&e.path, &dest)?;
        violations.push(Violation::source(
            ViolationKind::UnsafeFile,
            &e.rel,
            None,
            None,
            why,
        ));
    }
    Ok(violations)
}

/// `.lean` files of `after` that differ from `before` or are new, sorted.
pub fn changed_files(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planted_links_are_moved_aside_never_followed() {
        let d = tempfile::tempdir().expect("tmp");
        let wd = d.path().join("wd");
        std::fs::create_dir_all(wd.join("Sub")).expect("mk");
        let secret = d.path().join("host-secret");
        std::fs::write(&secret, "HOST SECRET").expect("w");
        std::fs::write(wd.join("A.lean"), "theorem a : True := trivial").expect("w");
        std::os::unix::fs::symlink(&secret, wd.join("Sub/B.lean")).expect("ln");
        std::os::unix::fs::symlink(&secret, wd.join("lean-toolchain")).expect("ln");
        let q = d.path().join("quarantine");
        let v = quarantine_unsafe(&wd, &q).expect("scan");
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|x| x.kind == ViolationKind::UnsafeFile));
        assert!(!v.iter().any(|x| x.message.contains("HOST SECRET")));
        let texts = lean_texts(&wd).expect("texts");
        assert_eq!(texts.keys().collect::<Vec<_>>(), vec!["A.lean"]);
        assert!(std::fs::symlink_metadata(q.join("Sub/B.lean"))
            .expect("moved")
            .file_type()
            .is_symlink());
        assert_eq!(
            std::fs::read_to_string(&secret).expect("intact"),
            "HOST SECRET"
        );
    }

    #[test]
    fn changed_files_are_edits_and_additions() {
        let before: BTreeMap<String, String> =
            [("A.lean".into(), "a".into()), ("B.lean".into(), "b".into())].into();
        let after: BTreeMap<String, String> = [
            ("A.lean".into(), "a".into()),
            ("B.lean".into(), "b2".into()),
            ("C.lean".into(), "c".into()),
        ]
        .into();
        let c = changed_files(&before, &after);
        assert_eq!(c.keys().collect::<Vec<_>>(), vec!["B.lean", "C.lean"]);
    }
}
