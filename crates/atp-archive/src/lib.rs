//! Safe tar.gz archives for atp: the workdir transfers of remote sandboxes (Modal) and the result
//! archives hosted provers return (Aristotle).
//!
//! - [`pack`] writes a directory (or one file) as tar.gz, symlinks stored as links, the
//!   top-level `.lake` optionally skipped.
//! - [`unpack_safe`] unpacks a tar.gz over a root directory and returns the relative paths it
//!   wrote. Invariant: nothing is written outside the root — entries with absolute paths or
//!   `..`, symlinks or hard links pointing outside, and paths that pass through a symlink are
//!   refused (the whole unpack fails naming the entry); device nodes and FIFOs are skipped; the
//!   archive's total file bytes and its entry count are bounded by [`Limits`], so a hostile
//!   archive cannot fill the disk. With [`UnpackOptions::unwrap_single_dir`], an archive whose
//!   only top-level entry is a directory is unpacked as that directory's contents (result
//!   archives wrap the project in one folder).
//! - [`prune`] removes what a complete unpack did not write, so deletions reach the host.
//!
//! This is a *mirror* of a sandbox workdir, not the project rule: hidden entries (a harness's
//! logs under `.claude/`, `.codex/`, …) travel, and only the top-level `.lake` (the warm cache
//! link) is left out. Which files make up a Lean *project* is `atp_lean::walk`'s rule (it also
//! drops hidden entries and `*.tar.gz`); the two are deliberately different.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

/// The top-level directory [`pack`] can skip and [`prune`] always keeps: the warm-cache link.
pub const LAKE_DIR: &str = ".lake";

/// Why an archive was refused.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("unsafe entry {path:?} in the archive: {reason}")]
    Unsafe { path: String, reason: &'static str },
    #[error("the archive holds more than {limit} bytes of files — refused (raise the limit if this is expected)")]
    TooLarge { limit: u64 },
    #[error("the archive holds more than {limit} entries — refused (raise the limit if this is expected)")]
    TooManyEntries { limit: u64 },
    #[error("reading the archive: {0}")]
    Io(#[from] io::Error),
}

/// Bounds on what one unpack may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Total bytes of regular files.
    pub max_total_bytes: u64,
    /// Entries of any kind (directories and skipped entries included).
    pub max_entries: u64,
}

impl Default for Limits {
    /// 4 GiB and 1,000,000 entries: far above a Lean workdir without `.lake`, far below a full
    /// disk.
    fn default() -> Self {
        Limits {
            max_total_bytes: 4 << 30,
            max_entries: 1_000_000,
        }
    }
}

/// How to unpack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackOptions {
    pub limits: Limits,
    /// When the archive's only top-level entry is a directory, unpack its contents over the root
    /// (the folder itself is dropped); any other archive is unpacked as it is.
    pub unwrap_single_dir: bool,
}

/// Write `src` (a directory, or a single file stored as `file_name`) as a tar.gz to `out`.
/// Symlinks are stored as links; the top-level [`LAKE_DIR`] of a directory is skipped when
/// `skip_lake`.
pub fn pack<W: Write>(
    src: &Path,
    file_name: Option<&str>,
    skip_lake: bool,
    out: W,
) -> io::Result<W> {
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    b.follow_symlinks(false);
    let meta = std::fs::symlink_metadata(src)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(src)? {
            let entry = entry?;
            let name = entry.file_name();
            if skip_lake && name == LAKE_DIR {
                continue;
            }
            let p = entry.path();
            if entry.file_type()?.is_dir() {
                b.append_dir_all(&name, &p)?;
            } else {
                b.append_path_with_name(&p, &name)?;
            }
        }
    } else {
        let name = file_name.unwrap_or("file");
        b.append_path_with_name(src, name)?;
    }
    let gz = b.into_inner()?;
    gz.finish()
}

fn check_relative(path: &Path) -> Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err("path contains `..`"),
            Component::RootDir | Component::Prefix(_) => return Err("absolute path"),
        }
    }
    Ok(out)
}

/// Whether `target`, taken relative to the directory of `link` (both relative to the root),
/// stays inside the root.
fn link_stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = link.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

/// No existing ancestor of `rel` below `root` may be a symlink.
fn no_symlink_ancestor(root: &Path, rel: &Path) -> bool {
    let mut cur = root.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => return false,
            _ => {}
        }
    }
    true
}

/// Unpack a tar.gz from `input` over `root` (created if missing). Returns the set of relative
/// paths written (after unwrapping, when asked).
pub fn unpack_safe<R: Read>(
    input: R,
    root: &Path,
    opts: &UnpackOptions,
) -> Result<BTreeSet<PathBuf>, UnpackError> {
    std::fs::create_dir_all(root)?;
    if !opts.unwrap_single_dir {
        return unpack_into(input, root, &opts.limits);
    }
    // Unpack beside the final place (same filesystem), then decide and move.
    let staging = tempfile::Builder::new()
        .prefix(".atp-unpack-")
        .tempdir_in(root)?;
    let seen = unpack_into(input, staging.path(), &opts.limits)?;
    let mut top = Vec::new();
    for e in std::fs::read_dir(staging.path())? {
        top.push(e?);
    }
    let single_dir = match top.as_slice() {
        [only] if only.file_type()?.is_dir() => Some(PathBuf::from(only.file_name())),
        _ => None,
    };
    let (base, seen) = match single_dir {
        None => (staging.path().to_path_buf(), seen),
        Some(dir) => {
            let mut stripped = BTreeSet::new();
            for rel in &seen {
                let Ok(inner) = rel.strip_prefix(&dir) else {
                    continue;
                };
                if inner.as_os_str().is_empty() {
                    continue;
                }
                // A link that stayed inside the folder must stay inside the root without it.
                let here = staging.path().join(rel);
                if let Ok(target) = std::fs::read_link(&here) {
                    if !link_stays_inside(inner, &target) {
                        return Err(UnpackError::Unsafe {
                            path: rel.display().to_string(),
                            reason: "symlink points outside the unwrapped folder",
                        });
                    }
                }
                stripped.insert(inner.to_path_buf());
            }
            (staging.path().join(dir), stripped)
        }
    };
    merge_move(&base, root)?;
    staging.close()?;
    Ok(seen)
}

/// Move every entry of `src` into `dst`: directories merge, anything else replaces what is
/// there (a symlink in `dst` is replaced, never followed).
fn merge_move(src: &Path, dst: &Path) -> io::Result<()> {
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let to = dst.join(e.file_name());
        let src_is_dir = e.file_type()?.is_dir();
        match std::fs::symlink_metadata(&to) {
            Err(_) => std::fs::rename(e.path(), &to)?,
            Ok(m) if m.is_dir() && src_is_dir => merge_move(&e.path(), &to)?,
            Ok(_) => {
                remove_any(&to)?;
                std::fs::rename(e.path(), &to)?;
            }
        }
    }
    Ok(())
}

fn unpack_into<R: Read>(
    input: R,
    root: &Path,
    limits: &Limits,
) -> Result<BTreeSet<PathBuf>, UnpackError> {
    let gz = flate2::read::GzDecoder::new(input);
    let mut ar = tar::Archive::new(gz);
    let mut seen = BTreeSet::new();
    let mut entries: u64 = 0;
    let mut bytes: u64 = 0;
    for entry in ar.entries()? {
        let mut entry = entry?;
        entries += 1;
        if entries > limits.max_entries {
            return Err(UnpackError::TooManyEntries {
                limit: limits.max_entries,
            });
        }
        let raw = entry.path()?.into_owned();
        let shown = raw.display().to_string();
        let unsafe_entry = |reason| UnpackError::Unsafe {
            path: shown.clone(),
            reason,
        };
        let rel = check_relative(&raw).map_err(unsafe_entry)?;
        if rel.as_os_str().is_empty() {
            continue; // "./" itself
        }
        if !no_symlink_ancestor(root, &rel) {
            return Err(unsafe_entry("path passes through a symlink"));
        }
        let dest = root.join(&rel);
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Directory => {
                if let Ok(m) = std::fs::symlink_metadata(&dest) {
                    if !m.is_dir() {
                        std::fs::remove_file(&dest)?;
                    }
                }
                std::fs::create_dir_all(&dest)?;
                if let Ok(mode) = entry.header().mode() {
                    set_mode(&dest, mode | 0o700);
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                remove_any(&dest)?;
                let room = limits.max_total_bytes - bytes;
                let mut f = std::fs::File::create(&dest)?;
                let n = io::copy(&mut (&mut entry).take(room + 1), &mut f)?;
                if n > room {
                    drop(f);
                    let _ = std::fs::remove_file(&dest);
                    return Err(UnpackError::TooLarge {
                        limit: limits.max_total_bytes,
                    });
                }
                bytes += n;
                if let Ok(mode) = entry.header().mode() {
                    set_mode(&dest, mode);
                }
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()?
                    .ok_or_else(|| unsafe_entry("symlink without a target"))?
                    .into_owned();
                if !link_stays_inside(&rel, &target) {
                    return Err(unsafe_entry("symlink points outside the root"));
                }
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                remove_any(&dest)?;
                make_symlink(&target, &dest)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()?
                    .ok_or_else(|| unsafe_entry("hard link without a target"))?
                    .into_owned();
                let trel = check_relative(&target)
                    .map_err(|_| unsafe_entry("hard link points outside the root"))?;
                if !no_symlink_ancestor(root, &trel) || !seen.contains(&trel) {
                    return Err(unsafe_entry("hard link to a file not in the archive"));
                }
                let tmeta = std::fs::symlink_metadata(root.join(&trel))?;
                if !tmeta.is_file() {
                    return Err(unsafe_entry("hard link to something other than a file"));
                }
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                remove_any(&dest)?;
                std::fs::hard_link(root.join(&trel), &dest)?;
            }
            _ => continue,
        }
        seen.insert(rel);
    }
    Ok(seen)
}

fn remove_any(p: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(_) => Ok(()),
    }
}

#[cfg(unix)]
fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode & 0o7777));
}
#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) {}

#[cfg(unix)]
fn make_symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}
#[cfg(not(unix))]
fn make_symlink(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::Error::other(
        "symlinks are not supported on this platform",
    ))
}

/// Remove files and directories under `root` not in `keep` (relative paths), except the
/// top-level [`LAKE_DIR`]. Used after a complete unpack so deletions reach the host.
pub fn prune(root: &Path, keep: &BTreeSet<PathBuf>) -> io::Result<()> {
    fn walk(root: &Path, rel: &Path, keep: &BTreeSet<PathBuf>) -> io::Result<()> {
        for e in std::fs::read_dir(root.join(rel))? {
            let e = e?;
            let r = rel.join(e.file_name());
            if r == Path::new(LAKE_DIR) {
                continue;
            }
            let ft = e.file_type()?;
            if !keep.contains(&r) {
                if ft.is_dir() {
                    std::fs::remove_dir_all(e.path())?;
                } else {
                    std::fs::remove_file(e.path())?;
                }
            } else if ft.is_dir() {
                walk(root, &r, keep)?;
            }
        }
        Ok(())
    }
    walk(root, Path::new(""), keep)
}

#[cfg(test)]
mod tests;
