//! The agents-only part of the agents test image's small test layer (see [`crate::agents_image`]):
//! `images/agents/overlay/` (the STAND-IN Lean REPL, `usr/local/lib/atp-standin/lean-repl`) and a
//! `lean_interact` cache in which ax-prover finds that stand-in as its built Lean REPL. Kept out of
//! `agents_image.rs` so that changing it rebuilds the test layer only, not the ~1 GB base (whose
//! inputs hash covers that file's source).

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;
use sha2::{Digest, Sha256};

use crate::agents_image::{run_cmd, sha256_hex, walk_files, AGENTS_DIR, PY_MINOR};
use crate::test_image;

/// Feed this layer's inputs (the overlay's files and modes, the cache's layout) into the final
/// image's inputs hash.
pub fn hash_inputs(root: &Path, h: &mut Sha256) -> Result<()> {
    let overlay = agents_overlay_dir(root);
    if overlay.is_dir() {
        for rel in walk_files(&overlay, &|_| true)? {
            let path = overlay.join(&rel);
            let data = fs::read(&path)?;
            let mode = fs::metadata(&path)?.permissions().mode();
            h.update(
                format!(
                    "agents-overlay {} {mode:o} {}\n",
                    rel.display(),
                    sha256_hex(&data)
                )
                .as_bytes(),
            );
        }
    }
    h.update(include_str!("agents_layer.rs").as_bytes());
    Ok(())
}

/// The agents-only part of the test layer, copied over the rootfs after the test overlay: the
/// stand-in Lean REPL (`usr/local/lib/atp-standin/lean-repl`).
fn agents_overlay_dir(root: &Path) -> PathBuf {
    root.join("images/agents/overlay")
}

/// Where the stand-in Lean REPL is installed (from [`agents_overlay_dir`]).
const STANDIN_REPL: &str = "/usr/local/lib/atp-standin/lean-repl";
/// The Lean REPL `lean_interact` 0.11.6 (pinned in `images/agents/ax-prover.txt`) clones and
/// builds: `DEFAULT_REPL_GIT_URL` = github.com/augustepoiroux/repl, `DEFAULT_REPL_VERSION` =
/// v1.3.19 (`lean_interact/utils.py`), checked out at the tag `<rev>_lean-toolchain-<lean>`
/// for the project's Lean (`LeanREPLConfig._prepare_git_repl`). The stand-in `lake` and the test
/// fixtures are Lean v4.28.0.
const STANDIN_REPL_DIR: &str = "augustepoiroux/repl";
const STANDIN_REPL_TAG: &str = "v1.3.19_lean-toolchain-v4.28.0";
const STANDIN_LEAN_TOOLCHAIN: &str = "leanprover/lean4:v4.28.0";

/// `lean_interact`'s cache (`DEFAULT_CACHE_DIR`, inside the package; no setting moves it, and
/// ax-prover passes no `local_repl_path`).
fn lean_interact_cache() -> String {
    format!("{AGENTS_DIR}/venvs/ax-prover/lib/python{PY_MINOR}/site-packages/lean_interact/cache")
}

/// The agents overlay and a `lean_interact` cache holding the stand-in REPL "already built":
/// `repl_clean_copy` (a git repository whose HEAD is the tag lean_interact checks out, with the
/// `lean-toolchain` it validates) and the version directory it runs
/// (`repl_<tag>/.lake/build/bin/repl` → the stand-in, `.last_synced_commit` = that HEAD, so
/// lean_interact neither clones, copies nor builds anything but runs `lake build` there, a no-op
/// for the stand-in `lake`). A real offline image needs the same cache with the real REPL built.
pub fn add(root: &Path, rootfs: &Path) -> Result<()> {
    let overlay = agents_overlay_dir(root);
    if overlay.is_dir() {
        test_image::copy_tree(&overlay, rootfs)?;
    }
    let cache = rootfs.join(lean_interact_cache().trim_start_matches('/'));
    let repo = cache.join(STANDIN_REPL_DIR);
    let clean = repo.join("repl_clean_copy");
    fs::create_dir_all(&clean)?;
    fs::write(
        clean.join("lean-toolchain"),
        format!("{STANDIN_LEAN_TOOLCHAIN}\n"),
    )?;
    fs::write(
        clean.join("README.md"),
        format!(
            "STAND-IN for tests: not the Lean REPL. `.lake/build/bin/repl` is atp's stand-in \
             ({STANDIN_REPL}), seeded by `cargo xtask agents-image`.\n"
        ),
    )?;
    let git = |args: &[&str]| -> Result<String> {
        let mut cmd = Command::new("git");
        cmd.arg("-C")
            .arg(&clean)
            .args(["-c", "user.name=atp", "-c", "user.email=atp@localhost"])
            .args([
                "-c",
                "init.defaultBranch=master",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", &clean);
        run_cmd(&mut cmd, "git (seeding the lean_interact cache)")
    };
    git(&["init", "--quiet"])?;
    git(&["add", "lean-toolchain", "README.md"])?;
    git(&[
        "commit",
        "--quiet",
        "-m",
        "atp stand-in Lean REPL (tests only)",
    ])?;
    git(&["tag", STANDIN_REPL_TAG])?;
    let head = git(&["rev-parse", "HEAD"])?.trim().to_string();
    let version_dir = repo.join(format!("repl_{STANDIN_REPL_TAG}"));
    fs::create_dir_all(&version_dir)?;
    test_image::copy_tree(&clean, &version_dir)?;
    fs::write(version_dir.join(".last_synced_commit"), &head)?;
    for dir in [&clean, &version_dir] {
        let bin = dir.join(".lake/build/bin");
        fs::create_dir_all(&bin)?;
        symlink(STANDIN_REPL, bin.join("repl"))?;
    }
    Ok(())
}
