//! Mapping an unpacked result back over `OUT/wd`.
//!
//! Invariant: only regular files are copied, each to its own relative path under `wd`, never
//! through a link (every existing ancestor and the target itself are checked with
//! `symlink_metadata`); the task's build configuration (`lakefile.*`, `lean-toolchain`,
//! `lake-manifest.json`) is never replaced — a result that changes it is recorded, not applied;
//! `ARISTOTLE_SUMMARY.md` goes to `logs/summary.md`, not into the project.

use std::path::Path;

use atp_lean::walk::{self, EntryKind};

/// The summary Aristotle writes at the root of its result.
pub const SUMMARY_FILE: &str = "ARISTOTLE_SUMMARY.md";

/// Files of the task a result may not replace.
const PROTECTED: &[&str] = &[
    "lakefile.toml",
    "lakefile.lean",
    "lean-toolchain",
    "lake-manifest.json",
];

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Project-relative paths written into `wd`, sorted.
    pub written: Vec<String>,
    /// Entries not applied, each with the reason.
    pub ignored: Vec<(String, String)>,
    /// Whether `logs/summary.md` was written.
    pub summary: bool,
}

/// Copy the project files of `unpacked` over `wd` ("completed files win"), the summary to
/// `logs/summary.md`.
pub fn apply(unpacked: &Path, wd: &Path, logs: &Path) -> std::io::Result<Applied> {
    let mut out = Applied::default();
    for e in walk::walk(unpacked)? {
        match e.kind {
            EntryKind::Dir => continue,
            EntryKind::Symlink | EntryKind::Special => {
                out.ignored
                    .push((e.rel, "not a regular file (never copied)".into()));
                continue;
            }
            EntryKind::File => {}
        }
        if e.rel == SUMMARY_FILE {
            std::fs::copy(&e.path, logs.join("summary.md"))?;
            out.summary = true;
            continue;
        }
        if PROTECTED.contains(&e.rel.as_str()) {
            let theirs = std::fs::read(&e.path)?;
            let ours = std::fs::read(wd.join(&e.rel)).ok();
            if ours.as_deref() != Some(theirs.as_slice()) {
                out.ignored.push((
                    e.rel,
                    "the task's build configuration is kept (the result changed it)".into(),
                ));
            }
            continue;
        }
        if let Err(why) = safe_target(wd, &e.rel) {
            out.ignored.push((e.rel, why));
            continue;
        }
        let dest = wd.join(&e.rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(&e.path, &dest)?;
        out.written.push(e.rel);
    }
    out.written.sort();
    Ok(out)
}

/// `wd/rel` may be written: no existing ancestor below `wd` nor the target is a link, and no
/// ancestor is a file.
fn safe_target(wd: &Path, rel: &str) -> Result<(), String> {
    let mut cur = wd.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() || *part == "." || *part == ".." {
            return Err("not a plain relative path".into());
        }
        cur.push(part);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err("a link in the workdir is in the way (never written through)".into())
            }
            Ok(m) if i + 1 < parts.len() && !m.is_dir() => {
                return Err("a file in the workdir is in the way".into())
            }
            Ok(m) if i + 1 == parts.len() && m.is_dir() => {
                return Err("a directory in the workdir is in the way".into())
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_files_win_config_is_kept_and_links_are_never_followed() {
        let d = tempfile::tempdir().expect("tmp");
        let (u, wd, logs) = (
            d.path().join("u"),
            d.path().join("wd"),
            d.path().join("logs"),
        );
        for p in [&u, &wd, &logs] {
            std::fs::create_dir_all(p).expect("mk");
        }
        std::fs::create_dir_all(u.join("Sub")).expect("mk");
        std::fs::write(wd.join("Main.lean"), "theorem t : True := by sorry\n").expect("w");
        std::fs::write(wd.join("lean-toolchain"), "leanprover/lean4:v4.28.0\n").expect("w");
        let outside = d.path().join("outside.txt");
        std::fs::write(&outside, "untouched").expect("w");
        std::os::unix::fs::symlink(&outside, wd.join("Planted.lean")).expect("ln");

        std::fs::write(u.join("Main.lean"), "theorem t : True := trivial\n").expect("w");
        std::fs::write(u.join("Sub/New.lean"), "-- new\n").expect("w");
        std::fs::write(u.join("lean-toolchain"), "leanprover/lean4:v4.99.0\n").expect("w");
        std::fs::write(u.join("Planted.lean"), "overwrite?").expect("w");
        std::fs::write(u.join(SUMMARY_FILE), "# Summary\n").expect("w");
        let a = apply(&u, &wd, &logs).expect("apply");
        assert_eq!(a.written, vec!["Main.lean", "Sub/New.lean"]);
        assert!(a.summary);
        let ignored: Vec<&str> = a.ignored.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(ignored, vec!["Planted.lean", "lean-toolchain"]);
        assert_eq!(std::fs::read_to_string(&outside).expect("r"), "untouched");
        assert_eq!(
            std::fs::read_to_string(wd.join("lean-toolchain")).expect("r"),
            "leanprover/lean4:v4.28.0\n"
        );
        assert_eq!(
            std::fs::read_to_string(wd.join("Main.lean")).expect("r"),
            "theorem t : True := trivial\n"
        );
        assert_eq!(
            std::fs::read_to_string(logs.join("summary.md")).expect("r"),
            "# Summary\n"
        );
        assert!(!wd.join(SUMMARY_FILE).exists());
    }
}
