//! Unpacking Aristotle's result archive — through atp's one safe unpacker (`atp-archive`, shared
//! with the Modal backend), never a second one.
//!
//! The archive is untrusted: `atp_archive::unpack_safe` refuses absolute paths, `..`, links
//! leaving the root, hard links out of it and writes through links, bounds the bytes and the
//! number of entries ([`UnpackLimits`]), and unwraps a single top-level folder (Aristotle wraps
//! the project in `<name>_aristotle/`). It unpacks into a private staging directory;
//! [`crate::apply`] then copies regular files only over `OUT/wd`.

use std::path::Path;

pub use atp_archive::Limits as UnpackLimits;
use atp_archive::UnpackOptions;

/// The default bounds on one result: 2 GiB of files, 200,000 entries (a Lean project's sources
/// and whatever build output comes with them, far from a full disk).
pub const DEFAULT_LIMITS: UnpackLimits = UnpackLimits {
    max_total_bytes: 2 << 30,
    max_entries: 200_000,
};

/// Unpack the tar.gz at `archive` into the (empty) directory `dest`, a single top-level folder
/// unwrapped, within `limits`. The error is one line naming the refused entry or limit.
pub fn unpack_result(archive: &Path, dest: &Path, limits: UnpackLimits) -> Result<(), String> {
    let f = std::fs::File::open(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    atp_archive::unpack_safe(
        std::io::BufReader::new(f),
        dest,
        &UnpackOptions {
            limits,
            unwrap_single_dir: true,
        },
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}
