//! Unpacking Aristotle's result archive — through atp's one safe unpacker, never a second one.
//!
//! The archive is untrusted: the shared unpacker refuses absolute paths, `..`, links leaving
//! the root and writes through links, bounds the size and the number of entries, and unwraps a
//! single top-level folder. It unpacks into a private staging directory; [`crate::apply`] then
//! copies regular files only over `OUT/wd`.

use std::path::Path;

// INTEGRATION POINT (atp-archive): the shared unpacker is moving from `atp-modal` into
// `atp-archive` (limits on size and entries, single-folder unwrap). Until that lands on main,
// this module calls `atp_modal::unpack::unpack_safe` (INTERIM dependency, to be replaced by
// `atp_archive::unpack_safe(reader, dest, &UnpackOptions { limits, unwrap_single_dir: true })`)
// and unwraps the single folder itself.

/// Unpack the tar.gz at `archive` into the (empty) directory `dest`, a single top-level folder
/// unwrapped. The error is one line naming the refused entry.
pub fn unpack_result(archive: &Path, dest: &Path) -> Result<(), String> {
    let f = std::fs::File::open(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    let inner = dest.join(".atp-unpack");
    atp_modal::unpack::unpack_safe(std::io::BufReader::new(f), &inner)
        .map_err(|e| e.to_string())?;
    let top: Vec<_> = std::fs::read_dir(&inner)
        .map_err(|e| e.to_string())?
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let from = match top.as_slice() {
        [only] if only.file_type().map_err(|e| e.to_string())?.is_dir() => only.path(),
        _ => inner.clone(),
    };
    for e in std::fs::read_dir(&from).map_err(|e| e.to_string())? {
        let e = e.map_err(|e| e.to_string())?;
        std::fs::rename(e.path(), dest.join(e.file_name())).map_err(|e| e.to_string())?;
    }
    std::fs::remove_dir_all(&inner).map_err(|e| e.to_string())
}
