//! Reading what an agent left in the workdir without following links.
//!
//! The workdir is untrusted once an agent ran in it: it was root in a sandbox with the
//! directory bind-mounted, so any entry may be a symlink that resolves on the host. These
//! helpers never follow one: every path component below the root must be a real directory,
//! files are opened with `O_NOFOLLOW` and must be regular, and sizes are capped. Harnesses use
//! them after the sandbox is gone (see [`crate::Harness::collect`]), so nothing changes under
//! them.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

/// Largest single file a harness reads back (session logs, usage files).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Largest total a harness copies into `OUT/logs` from one directory tree.
pub const MAX_TREE_BYTES: u64 = 256 * 1024 * 1024;

/// `root/rel`, checked: `rel` is relative without `..`, and every existing component below
/// `root` is a directory or (the last) a regular file — never a link. `None` when something
/// is missing or is not what it should be.
fn checked(root: &Path, rel: &Path, last_is_dir: bool) -> Option<PathBuf> {
    let mut p = root.to_path_buf();
    let parts: Vec<Component> = rel.components().collect();
    for (i, c) in parts.iter().enumerate() {
        let Component::Normal(name) = c else {
            if matches!(c, Component::CurDir) {
                continue;
            }
            return None;
        };
        p.push(name);
        let md = std::fs::symlink_metadata(&p).ok()?;
        let last = i + 1 == parts.len();
        let ok = if last && !last_is_dir {
            md.file_type().is_file()
        } else {
            md.file_type().is_dir()
        };
        if !ok {
            return None;
        }
    }
    Some(p)
}

/// The bytes of the regular file `root/rel` (at most `max` bytes; larger files are `None`),
/// or `None` when it is missing, a link, special, or below a link.
pub fn read(root: &Path, rel: impl AsRef<Path>, max: u64) -> Option<Vec<u8>> {
    let p = checked(root, rel.as_ref(), false)?;
    read_nofollow(&p, max)
}

/// [`read`] as UTF-8 text (lossy).
pub fn read_text(root: &Path, rel: impl AsRef<Path>) -> Option<String> {
    read(root, rel, MAX_FILE_BYTES).map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn read_nofollow(p: &Path, max: u64) -> Option<Vec<u8>> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_nofollow())
        .open(p)
        .ok()?;
    let md = f.metadata().ok()?;
    if !md.file_type().is_file() || md.len() > max {
        return None;
    }
    let mut buf = Vec::with_capacity(md.len() as usize);
    f.take(max + 1).read_to_end(&mut buf).ok()?;
    (buf.len() as u64 <= max).then_some(buf)
}

/// `O_NOFOLLOW | O_NONBLOCK` (a FIFO planted in place of a file must not block the read).
fn libc_nofollow() -> i32 {
    libc::O_NOFOLLOW | libc::O_NONBLOCK
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
    /// A regular file (links and special files are neither).
    pub is_file: bool,
    pub size: u64,
    pub modified: Option<SystemTime>,
}

/// The entries of the directory `root/rel` (links reported as neither file nor directory),
/// sorted by name; empty when it is missing or not a real directory.
pub fn list(root: &Path, rel: impl AsRef<Path>) -> Vec<Entry> {
    let Some(dir) = checked(root, rel.as_ref(), true) else {
        return Vec::new();
    };
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<Entry> = rd
        .flatten()
        .filter_map(|e| {
            let md = std::fs::symlink_metadata(e.path()).ok()?;
            Some(Entry {
                name: e.file_name().to_string_lossy().into_owned(),
                is_dir: md.file_type().is_dir(),
                is_file: md.file_type().is_file(),
                size: md.len(),
                modified: md.modified().ok(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Regular files under `root/rel`, recursively, as paths relative to `root/rel` (links and
/// special files skipped), sorted.
pub fn files_under(root: &Path, rel: impl AsRef<Path>) -> Vec<PathBuf> {
    fn walk(root: &Path, rel: &Path, prefix: &Path, out: &mut Vec<PathBuf>, depth: usize) {
        if depth > 32 {
            return;
        }
        for e in list(root, rel) {
            let r = rel.join(&e.name);
            let p = prefix.join(&e.name);
            if e.is_dir {
                walk(root, &r, &p, out, depth + 1);
            } else if e.is_file {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, rel.as_ref(), Path::new(""), &mut out, 0);
    out.sort();
    out
}

/// Copy the regular files of the tree `root/rel` into `dest` (links and special files are
/// skipped, each file at most [`MAX_FILE_BYTES`], the whole at most [`MAX_TREE_BYTES`]), then
/// remove the tree from the workdir. Returns the files written.
pub fn move_tree(root: &Path, rel: impl AsRef<Path>, dest: &Path) -> std::io::Result<Vec<PathBuf>> {
    let rel = rel.as_ref();
    let Some(src) = checked(root, rel, true) else {
        return Ok(Vec::new());
    };
    let mut written = Vec::new();
    let mut total = 0u64;
    for f in files_under(root, rel) {
        let Some(bytes) = read(&src, &f, MAX_FILE_BYTES) else {
            continue;
        };
        total += bytes.len() as u64;
        if total > MAX_TREE_BYTES {
            tracing::warn!(
                "{}: over {} bytes of logs; the rest is not kept",
                src.display(),
                MAX_TREE_BYTES
            );
            break;
        }
        let to = dest.join(&f);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&to, bytes)?;
        written.push(to);
    }
    // remove_dir_all does not follow links (it removes them).
    std::fs::remove_dir_all(&src)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_never_followed() {
        let d = tempfile::tempdir().expect("tmp");
        let root = d.path().join("wd");
        std::fs::create_dir_all(root.join("logs/s1")).expect("mk");
        let secret = d.path().join("secret.txt");
        std::fs::write(&secret, "HOST SECRET").expect("w");
        std::fs::write(root.join("logs/s1/meta.json"), "{}").expect("w");
        std::os::unix::fs::symlink(&secret, root.join("logs/s1/leak.json")).expect("ln");
        std::os::unix::fs::symlink(d.path(), root.join("logs/up")).expect("ln");
        assert_eq!(read_text(&root, "logs/s1/meta.json").as_deref(), Some("{}"));
        assert!(read(&root, "logs/s1/leak.json", 100).is_none());
        assert!(read(&root, "logs/up/secret.txt", 100).is_none());
        assert!(read(&root, "../secret.txt", 100).is_none());
        assert!(read(&root, "logs/s1/meta.json", 1).is_none(), "size cap");
        assert_eq!(
            files_under(&root, "logs"),
            vec![PathBuf::from("s1/meta.json")]
        );
        let out = d.path().join("out");
        let moved = move_tree(&root, "logs", &out).expect("moved");
        assert_eq!(moved, vec![out.join("s1/meta.json")]);
        assert!(!root.join("logs").exists());
        assert!(!out.join("s1/leak.json").exists());
        assert_eq!(
            std::fs::read_to_string(&secret).expect("intact"),
            "HOST SECRET"
        );
    }

    #[test]
    fn a_fifo_does_not_block() {
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&p)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if made {
            assert!(read(d.path(), "fifo", 100).is_none());
        }
    }
}
