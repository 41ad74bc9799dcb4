//! The one rule for which files make up a project, and a walker that never follows links.
//!
//! A project's files are every entry under its root except hidden entries (a name starting
//! with `.`: `.lake`, `.git`, an agent's `.claude/`, …) and build archives (`*.tar.gz`), at any
//! depth. Symbolic links and special files are reported, never followed or read: once an agent
//! has run over a bind-mounted workdir, a link there may point anywhere on the host.
//!
//! (A sandbox's workdir mirror — what a remote backend pulls back — is a different thing: it
//! keeps hidden harness logs; see `atp-archive`.)

use std::path::{Path, PathBuf};

/// What a walked entry is. Links are never followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    Symlink,
    /// A FIFO, socket or device.
    Special,
}

/// One entry of a project, by project-relative path (`/`-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub rel: String,
    pub path: PathBuf,
    pub kind: EntryKind,
    /// Size in bytes of a regular file (0 otherwise).
    pub size: u64,
}

/// Whether an entry named `name` is outside the project (hidden or a build archive).
pub fn is_excluded(name: &str) -> bool {
    name.starts_with('.') || name.ends_with(".tar.gz")
}

/// Every entry of the project at `root`, sorted by path, directories before their contents.
pub fn walk(root: &Path) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    walk_dir(root, root, &mut out)?;
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

fn walk_dir(root: &Path, dir: &Path, out: &mut Vec<Entry>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_excluded(&name) {
            continue;
        }
        let path = entry.path();
        // `file_type` of a directory entry does not follow symlinks.
        let ft = entry.file_type()?;
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let (kind, size) = if ft.is_symlink() {
            (EntryKind::Symlink, 0)
        } else if ft.is_dir() {
            (EntryKind::Dir, 0)
        } else if ft.is_file() {
            (EntryKind::File, std::fs::symlink_metadata(&path)?.len())
        } else {
            (EntryKind::Special, 0)
        };
        out.push(Entry {
            rel,
            path: path.clone(),
            kind,
            size,
        });
        if kind == EntryKind::Dir {
            walk_dir(root, &path, out)?;
        }
    }
    Ok(())
}

/// Copy the project at `from` into `to` (created), regular files and directories only.
/// Returns the entries that were not copied (links and special files).
pub fn copy_project(from: &Path, to: &Path) -> std::io::Result<Vec<Entry>> {
    std::fs::create_dir_all(to)?;
    let mut skipped = Vec::new();
    for e in walk(from)? {
        let dest = to.join(&e.rel);
        match e.kind {
            EntryKind::Dir => std::fs::create_dir_all(&dest)?,
            EntryKind::File => {
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::copy(&e.path, &dest)?;
            }
            EntryKind::Symlink | EntryKind::Special => skipped.push(e),
        }
    }
    Ok(skipped)
}

/// Whether `rel` is a Lean source of the project: a `.lean` file other than the root
/// `lakefile.lean` (build configuration, not a proof source).
pub fn is_lean_source(rel: &str) -> bool {
    rel.ends_with(".lean") && rel != "lakefile.lean"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_entries_archives_and_links_are_not_project_files() {
        let d = tempfile::tempdir().expect("tmp");
        let r = d.path();
        std::fs::create_dir_all(r.join(".lake/build")).expect("mk");
        std::fs::create_dir_all(r.join("Sub/.hidden")).expect("mk");
        std::fs::write(r.join("A.lean"), "a").expect("w");
        std::fs::write(r.join("Sub/B.lean"), "bb").expect("w");
        std::fs::write(r.join("Sub/.hidden/C.lean"), "c").expect("w");
        std::fs::write(r.join("out.tar.gz"), "z").expect("w");
        std::os::unix::fs::symlink("/etc/passwd", r.join("Link.lean")).expect("ln");
        let got: Vec<(String, EntryKind, u64)> = walk(r)
            .expect("walk")
            .into_iter()
            .map(|e| (e.rel, e.kind, e.size))
            .collect();
        assert_eq!(
            got,
            vec![
                ("A.lean".into(), EntryKind::File, 1),
                ("Link.lean".into(), EntryKind::Symlink, 0),
                ("Sub".into(), EntryKind::Dir, 0),
                ("Sub/B.lean".into(), EntryKind::File, 2),
            ]
        );
        let to = d.path().join("..").join(format!(
            "{}-copy",
            d.path().file_name().expect("name").to_string_lossy()
        ));
        let skipped = copy_project(r, &to).expect("copy");
        assert_eq!(skipped.len(), 1);
        assert!(to.join("Sub/B.lean").is_file());
        assert!(!to.join("Link.lean").exists());
        std::fs::remove_dir_all(&to).expect("cleanup");
    }
}
