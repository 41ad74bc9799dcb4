//! Streaming tar.gz packing and a safe unpacker.
//!
//! Invariant of [`unpack_safe`]: nothing is written outside `root`. Entries with absolute
//! paths, `..` components, symlinks or hard links pointing outside `root`, or paths that pass
//! through a symlink are refused (the whole pull fails with the offending entry named); device
//! nodes and FIFOs are skipped.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use tokio::sync::mpsc;

/// Why a pulled archive was refused.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("unsafe entry {path:?} in the pulled archive: {reason}")]
    Unsafe { path: String, reason: &'static str },
    #[error("reading the pulled archive: {0}")]
    Io(#[from] io::Error),
}

/// A `Read` over chunks arriving on a channel (used on a blocking thread).
#[derive(Debug)]
pub struct ChannelReader {
    rx: mpsc::UnboundedReceiver<Bytes>,
    cur: Bytes,
}

impl ChannelReader {
    pub fn new(rx: mpsc::UnboundedReceiver<Bytes>) -> Self {
        ChannelReader {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// A `Write` that sends chunks to a channel (used on a blocking thread).
#[derive(Debug)]
pub struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
    chunk: usize,
}

impl ChannelWriter {
    pub fn new(tx: mpsc::Sender<Bytes>, chunk: usize) -> Self {
        let chunk = chunk.max(1);
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(chunk),
            chunk,
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let b = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(self.chunk),
        ));
        self.tx
            .blocking_send(b)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "upload stopped"))
    }
}

impl Write for ChannelWriter {
    /// Sends whole chunks of exactly `chunk` bytes; the rest waits for more data or `flush`.
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.chunk - self.buf.len();
        let take = room.min(data.len());
        self.buf.extend_from_slice(&data[..take]);
        if self.buf.len() == self.chunk {
            self.send()?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Write `src` (a directory, or a single file stored as `file_name`) as a tar.gz to `out`.
/// Symlinks are stored as links; the top-level `.lake` of a directory is skipped when
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
            if skip_lake && name == ".lake" {
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

/// Unpack a tar.gz from `input` over `root`. Returns the set of relative paths written.
pub fn unpack_safe<R: Read>(input: R, root: &Path) -> Result<BTreeSet<PathBuf>, UnpackError> {
    let gz = flate2::read::GzDecoder::new(input);
    let mut ar = tar::Archive::new(gz);
    let mut seen = BTreeSet::new();
    std::fs::create_dir_all(root)?;
    for entry in ar.entries()? {
        let mut entry = entry?;
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
                if let Ok(Some(mode)) = entry.header().mode().map(Some) {
                    set_mode(&dest, mode | 0o700);
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                remove_non_dir(&dest)?;
                let mut f = std::fs::File::create(&dest)?;
                io::copy(&mut entry, &mut f)?;
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
                    return Err(unsafe_entry("symlink points outside the workdir"));
                }
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                remove_non_dir(&dest)?;
                make_symlink(&target, &dest)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()?
                    .ok_or_else(|| unsafe_entry("hard link without a target"))?
                    .into_owned();
                let trel = check_relative(&target)
                    .map_err(|_| unsafe_entry("hard link points outside the workdir"))?;
                if !no_symlink_ancestor(root, &trel) || !seen.contains(&trel) {
                    return Err(unsafe_entry("hard link to a file not in the archive"));
                }
                remove_non_dir(&dest)?;
                std::fs::hard_link(root.join(&trel), &dest)?;
            }
            _ => continue,
        }
        seen.insert(rel);
    }
    Ok(seen)
}

fn remove_non_dir(p: &Path) -> io::Result<()> {
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
/// top-level `.lake`. Used after a complete pull so deletions in the sandbox reach the host.
pub fn prune(root: &Path, keep: &BTreeSet<PathBuf>) -> io::Result<()> {
    fn walk(root: &Path, rel: &Path, keep: &BTreeSet<PathBuf>) -> io::Result<()> {
        for e in std::fs::read_dir(root.join(rel))? {
            let e = e?;
            let r = rel.join(e.file_name());
            if r == Path::new(".lake") {
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
mod tests {
    use super::*;

    fn archive(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        let raw = b.into_inner().expect("tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).expect("gz");
        gz.finish().expect("gz")
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // set_path refuses `..`; write the raw name to build hostile archives.
        let name = path.as_bytes();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        b.append(&h, data).expect("append");
    }

    fn symlink(b: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_entry_type(tar::EntryType::Symlink);
        let name = path.as_bytes();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        let t = target.as_bytes();
        h.as_old_mut().linkname[..t.len()].copy_from_slice(t);
        h.set_cksum();
        b.append(&h, &[][..]).expect("append");
    }

    #[test]
    fn round_trip_keeps_files_and_inner_symlinks() {
        let src = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(src.path().join("a/b")).expect("mk");
        std::fs::write(
            src.path().join("a/b/x.lean"),
            "theorem x : True := trivial\n",
        )
        .expect("w");
        std::fs::create_dir_all(src.path().join(".lake/build")).expect("mk");
        std::fs::write(src.path().join(".lake/build/big"), "skip me").expect("w");
        make_symlink(Path::new("a/b/x.lean"), &src.path().join("link")).expect("ln");
        let tgz = pack(src.path(), None, true, Vec::new()).expect("pack");
        let dst = tempfile::tempdir().expect("tmp");
        let seen = unpack_safe(&tgz[..], dst.path()).expect("unpack");
        assert_eq!(
            std::fs::read_to_string(dst.path().join("a/b/x.lean")).expect("read"),
            "theorem x : True := trivial\n"
        );
        assert_eq!(
            std::fs::read_link(dst.path().join("link")).expect("link"),
            Path::new("a/b/x.lean")
        );
        assert!(!dst.path().join(".lake").exists());
        assert!(seen.contains(Path::new("a/b/x.lean")));
    }

    #[test]
    fn traversal_absolute_and_symlink_escapes_are_refused() {
        let outside = tempfile::tempdir().expect("tmp");
        let victim = outside.path().join("victim");
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("dotdot", archive(|b| file(b, "../victim", b"pwned"))),
            (
                "nested dotdot",
                archive(|b| file(b, "a/../../victim", b"pwned")),
            ),
            (
                "absolute",
                archive(|b| file(b, &victim.display().to_string(), b"pwned")),
            ),
            ("absolute symlink", archive(|b| symlink(b, "l", "/etc"))),
            (
                "escaping symlink",
                archive(|b| symlink(b, "a/l", "../../x")),
            ),
            (
                "write through symlink",
                archive(|b| {
                    symlink(b, "l", ".");
                    file(b, "l/f", b"x");
                }),
            ),
        ];
        for (name, tgz) in cases {
            let dst = tempfile::tempdir().expect("tmp");
            let err = unpack_safe(&tgz[..], dst.path()).expect_err(name);
            assert!(matches!(err, UnpackError::Unsafe { .. }), "{name}: {err}");
            assert!(!victim.exists(), "{name} wrote outside");
        }
    }

    #[test]
    fn prune_removes_what_the_sandbox_deleted_but_keeps_lake() {
        let root = tempfile::tempdir().expect("tmp");
        std::fs::write(root.path().join("keep"), "k").expect("w");
        std::fs::write(root.path().join("gone"), "g").expect("w");
        std::fs::create_dir_all(root.path().join(".lake")).expect("mk");
        let keep: BTreeSet<PathBuf> = [PathBuf::from("keep")].into_iter().collect();
        prune(root.path(), &keep).expect("prune");
        assert!(root.path().join("keep").exists());
        assert!(!root.path().join("gone").exists());
        assert!(root.path().join(".lake").exists());
    }
}
