//! The project archive sent to Aristotle, built as Harmonic's client builds it: a gzip tar of
//! regular files with paths relative to the project root (no wrapper folder, no directory
//! entries), at most [`MAX_ARCHIVE_BYTES`], after the client's preflight checks.
//!
//! What is left out: everything outside the project by atp's rule (hidden entries such as
//! `.lake/` and `.git/`, `*.tar.gz`; see `atp_lean::walk`), links and special files, build
//! outputs and editor droppings, credential-like names, names that are not UTF-8.

use std::io::Write;
use std::path::Path;

use atp_lean::walk::{self, EntryKind};

/// Harmonic's client refuses archives above 100 MiB.
pub const MAX_ARCHIVE_BYTES: usize = 100 * 1024 * 1024;

/// Why the project cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{path}: Aristotle does not support projects with local (path) dependencies ({name}) — vendor the dependency into the project")]
    LocalDependency { path: String, name: String },
    #[error("the project archive is {size} bytes, over Aristotle's {MAX_ARCHIVE_BYTES} byte limit — remove large files from the task")]
    TooLarge { size: usize },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

/// Names Harmonic's client never uploads (build outputs, editor files, credentials).
fn excluded(name: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        ".swp", ".swo", ".swn", "~", ".trace", ".ir", ".ir.hash", ".o", ".so", ".so.hash", ".pem",
        ".key",
    ];
    const EXACT: &[&str] = &["id_rsa", "id_ed25519", "credentials.json", ".netrc"];
    name.starts_with('.')
        || (name.starts_with('#') && name.ends_with('#'))
        || name.contains(".olean")
        || name.contains(".ilean")
        || SUFFIXES.iter().any(|s| name.ends_with(s))
        || EXACT.contains(&name)
        || name.ends_with(".setup.json")
}

/// The client's preflight: a lake manifest must not list `path` packages.
pub fn preflight(root: &Path) -> Result<(), UploadError> {
    let manifest = root.join("lake-manifest.json");
    let Ok(text) = std::fs::read_to_string(&manifest) else {
        return Ok(());
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Ok(());
    };
    for p in v
        .get("packages")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
    {
        if p.get("type").and_then(|t| t.as_str()) == Some("path") {
            return Err(UploadError::LocalDependency {
                path: manifest.display().to_string(),
                name: p
                    .get("name")
                    .and_then(|n| n.as_str())
                    .unwrap_or("?")
                    .to_string(),
            });
        }
    }
    Ok(())
}

/// The archive and what went into it.
#[derive(Debug, Clone)]
pub struct Archive {
    pub bytes: Vec<u8>,
    /// Project-relative paths, sorted.
    pub files: Vec<String>,
}

/// Build the archive of the project at `root`.
pub fn build(root: &Path) -> Result<Archive, UploadError> {
    let io = |p: &Path, e: std::io::Error| UploadError::Io {
        path: p.display().to_string(),
        message: e.to_string(),
    };
    let entries = walk::walk(root).map_err(|e| io(root, e))?;
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut files = Vec::new();
    for e in entries {
        if e.kind != EntryKind::File {
            continue;
        }
        let name = e.rel.rsplit('/').next().unwrap_or(&e.rel);
        if excluded(name) || e.rel.contains('\u{FFFD}') {
            continue;
        }
        let data = std::fs::read(&e.path).map_err(|x| io(&e.path, x))?;
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, &e.rel, data.as_slice())
            .map_err(|x| io(&e.path, x))?;
        files.push(e.rel);
        if tar.get_ref().get_ref().len() > MAX_ARCHIVE_BYTES {
            return Err(UploadError::TooLarge {
                size: tar.get_ref().get_ref().len(),
            });
        }
    }
    let mut gz = tar.into_inner().map_err(|e| io(root, e))?;
    gz.flush().map_err(|e| io(root, e))?;
    let bytes = gz.finish().map_err(|e| io(root, e))?;
    if bytes.len() > MAX_ARCHIVE_BYTES {
        return Err(UploadError::TooLarge { size: bytes.len() });
    }
    Ok(Archive { bytes, files })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_archive_holds_project_files_only_relative_and_unwrapped() {
        let d = tempfile::tempdir().expect("tmp");
        let r = d.path();
        std::fs::create_dir_all(r.join("Sub")).expect("mk");
        std::fs::create_dir_all(r.join(".lake/build")).expect("mk");
        std::fs::create_dir_all(r.join(".git")).expect("mk");
        for (p, t) in [
            ("lakefile.toml", "name = \"x\"\n"),
            ("lean-toolchain", "leanprover/lean4:v4.28.0\n"),
            ("Main.lean", "theorem t : True := by sorry\n"),
            ("Sub/B.lean", "-- b\n"),
            ("Sub/B.olean", "bin"),
            ("Main.lean~", "backup"),
            ("server.pem", "key"),
            ("credentials.json", "{}"),
            (".env", "SECRET=1"),
            (".lake/build/x", "y"),
            (".git/config", "z"),
            ("old-aristotle.tar.gz", "gz"),
        ] {
            std::fs::write(r.join(p), t).expect("w");
        }
        std::os::unix::fs::symlink("/etc/passwd", r.join("link.lean")).expect("ln");
        let a = build(r).expect("archive");
        assert_eq!(
            a.files,
            vec!["Main.lean", "Sub/B.lean", "lakefile.toml", "lean-toolchain"]
        );
        let mut names = Vec::new();
        let mut t = tar::Archive::new(flate2::read::GzDecoder::new(a.bytes.as_slice()));
        for e in t.entries().expect("entries") {
            let mut e = e.expect("entry");
            assert_eq!(e.header().entry_type(), tar::EntryType::Regular);
            let mut s = String::new();
            e.read_to_string(&mut s).expect("read");
            names.push(e.path().expect("path").display().to_string());
        }
        names.sort();
        assert_eq!(names, a.files);
    }

    #[test]
    fn local_dependencies_are_refused_before_upload() {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::write(
            d.path().join("lake-manifest.json"),
            r#"{"version": "1.1.0", "packages": [{"type": "git", "name": "mathlib"}, {"type": "path", "name": "mylib", "dir": "../mylib"}]}"#,
        )
        .expect("w");
        let e = preflight(d.path()).expect_err("path dependency");
        assert!(
            e.to_string().contains("local (path) dependencies (mylib)"),
            "{e}"
        );
        std::fs::write(
            d.path().join("lake-manifest.json"),
            r#"{"packages": [{"type": "git", "name": "mathlib"}]}"#,
        )
        .expect("w");
        preflight(d.path()).expect("git only");
    }
}
