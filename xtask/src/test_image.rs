//! `cargo xtask test-image`: build `atp-test:latest` from the host, without any registry.
//!
//! The rootfs (under `target/atp-test-rootfs`) holds busybox-static with its applets, GNU `bash`,
//! `timeout`, `tar` and `gzip` copied from the host with their shared libraries, a root user, a
//! warm-cache marker at `/workspace/.lake/ATP_TEST_MARKER`, and then `images/test/overlay/`
//! copied verbatim on top. It is imported with `docker import` and labelled with the Lean pins of
//! `images/lean/`. The image is rebuilt from scratch on every call.
//!
//! The rootfs is built in two parts that `agents-image` reuses: [`build_base_rootfs`] (busybox,
//! the GNU tools, their libraries, users) and [`add_test_layer`] (the marker and the overlay).

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// Arguments of `cargo xtask test-image`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image reference to create.
    #[arg(long, default_value = "atp-test:latest")]
    pub tag: String,
}

/// Host binaries copied into the rootfs (GNU versions the sandbox contract relies on).
const HOST_BINARIES: &[&str] = &["bash", "timeout", "tar", "gzip"];
/// The PATH of every process in the image.
pub const IMAGE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Content of the warm-cache marker.
pub const MARKER_CONTENT: &str = "atp test image warm cache marker\n";

pub fn run(args: Args) -> Result<()> {
    let root = workspace_root()?;
    let target = target_dir(&root);
    let rootfs = target.join("atp-test-rootfs");
    // Build in a private folder so concurrent invocations cannot trample each other, then keep
    // the result at the stable path for inspection.
    let staging = target.join(format!("atp-test-rootfs.{}", std::process::id()));
    build_rootfs(&root, &staging)?;
    let labels = labels(&root)?;
    let imported = import(&staging, &args.tag, &labels);
    let kept = if imported.is_ok() {
        let _ = fs::remove_dir_all(&rootfs);
        fs::rename(&staging, &rootfs).is_ok()
    } else {
        false
    };
    if !kept {
        let _ = fs::remove_dir_all(&staging);
    }
    imported?;
    println!("built {} from {}", args.tag, rootfs.display());
    for (k, v) in &labels {
        println!("  label {k}={v}");
    }
    Ok(())
}

/// The workspace root (the parent of this crate's manifest directory).
pub fn workspace_root() -> Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .context("xtask manifest dir has no parent")
}

/// Cargo's target directory (`CARGO_TARGET_DIR` or `<root>/target`).
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// The whole test rootfs: [`build_base_rootfs`] then [`add_test_layer`].
pub fn build_rootfs(root: &Path, rootfs: &Path) -> Result<()> {
    let base = build_base_rootfs(rootfs)?;
    let overlaid = add_test_layer(root, rootfs)?;
    println!(
        "rootfs: busybox + {} applets, {} host binaries, {} shared libraries, {overlaid} overlay files",
        base.applets,
        HOST_BINARIES.len(),
        base.libs
    );
    Ok(())
}

/// What [`build_base_rootfs`] put in.
pub struct BaseRootfs {
    pub applets: usize,
    pub libs: usize,
}

/// The busybox binary of the host.
fn host_busybox() -> Result<PathBuf> {
    ["/usr/bin/busybox", "/bin/busybox"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .context("busybox not found — run `apt-get install -y busybox-static`")
}

/// Every host file [`build_base_rootfs`] copies: busybox, the GNU binaries and their shared
/// libraries (what an image built from it depends on, for cache keys).
pub fn base_host_files() -> Result<Vec<PathBuf>> {
    let mut files = vec![host_busybox()?];
    let mut libs = BTreeSet::new();
    for name in HOST_BINARIES {
        let path = which(name)?;
        libs.extend(shared_libs(&path)?);
        files.push(path);
    }
    files.extend(libs);
    Ok(files)
}

/// The test image minus its test layer: directories, merged-/usr links, busybox and its applets,
/// the GNU binaries with their libraries, `/bin/sh` = bash, and the root user.
pub fn build_base_rootfs(rootfs: &Path) -> Result<BaseRootfs> {
    if rootfs.exists() {
        fs::remove_dir_all(rootfs).with_context(|| format!("removing {}", rootfs.display()))?;
    }
    for dir in [
        "usr/bin",
        "usr/lib",
        "usr/lib64",
        "usr/local/bin",
        "etc",
        "root",
        "tmp",
        "proc",
        "sys",
        "dev",
        "workspace/wd",
        "workspace/.lake",
    ] {
        fs::create_dir_all(rootfs.join(dir))?;
    }
    // Merged /usr: /bin, /sbin, /lib, /lib64 point into /usr.
    for (link, to) in [
        ("bin", "usr/bin"),
        ("sbin", "usr/bin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        symlink(to, rootfs.join(link))?;
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::set_permissions(rootfs.join("root"), fs::Permissions::from_mode(0o700))?;

    // busybox and its applets.
    let busybox = host_busybox()?;
    copy_file(&busybox, &rootfs.join("usr/bin/busybox"))?;
    let list = Command::new(&busybox)
        .arg("--list")
        .output()
        .context("running busybox --list")?;
    if !list.status.success() {
        bail!("busybox --list failed");
    }
    let mut applets = 0;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty()
            || applet.contains('/')
            || applet == "busybox"
            || applet == "sh"
            || HOST_BINARIES.contains(&applet)
        {
            continue;
        }
        symlink("busybox", rootfs.join("usr/bin").join(applet))?;
        applets += 1;
    }

    // GNU binaries from the host with their shared libraries.
    let mut libs = BTreeSet::new();
    for name in HOST_BINARIES {
        let path = which(name)?;
        copy_file(&path, &rootfs.join("usr/bin").join(name))?;
        libs.extend(shared_libs(&path)?);
    }
    for lib in &libs {
        copy_into_root(lib, rootfs)?;
    }
    // Debian's busybox shell prefers its own applets over PATH (busybox `timeout` lacks
    // `--kill-after`), so `/bin/sh` is GNU bash.
    symlink("bash", rootfs.join("usr/bin/sh"))?;

    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n",
    )?;
    fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    Ok(BaseRootfs {
        applets,
        libs: libs.len(),
    })
}

/// The test overlay copied verbatim over the rootfs (the stand-in `lake`).
pub fn overlay_dir(root: &Path) -> PathBuf {
    root.join("images/test/overlay")
}

/// The test layer over a base rootfs: the warm-cache marker and [`overlay_dir`]; returns the
/// number of overlay files.
pub fn add_test_layer(root: &Path, rootfs: &Path) -> Result<usize> {
    fs::create_dir_all(rootfs.join("workspace/.lake"))?;
    fs::write(
        rootfs.join("workspace/.lake/ATP_TEST_MARKER"),
        MARKER_CONTENT,
    )?;
    let overlay = overlay_dir(root);
    if overlay.is_dir() {
        copy_tree(&overlay, rootfs)
    } else {
        Ok(0)
    }
}

/// A host binary by name from `/usr/bin`, `/bin` or `/usr/local/bin` (canonicalized).
pub fn which(name: &str) -> Result<PathBuf> {
    for dir in ["/usr/bin", "/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return Ok(p.canonicalize()?);
        }
    }
    bail!("host binary `{name}` not found in /usr/bin or /bin — install it with apt-get")
}

/// Absolute paths of the shared libraries `ldd` reports for `bin`.
pub fn shared_libs(bin: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(bin)
        .output()
        .context("running ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut libs = Vec::new();
    for line in text.lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux... (0x...)"
        let candidate = match line.split_once("=>") {
            Some((_, rhs)) => rhs.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(c) = candidate {
            if c.starts_with('/') {
                libs.push(PathBuf::from(c));
            }
        }
    }
    Ok(libs)
}

/// Where a host path lands inside the rootfs (through its merged-/usr links: `/lib/x` →
/// `usr/lib/x`, `/bin/x` → `usr/bin/x`).
pub fn root_path(rootfs: &Path, host: &Path) -> PathBuf {
    let rel = host.strip_prefix("/").unwrap_or(host);
    let mut comps = rel.components();
    let mut dest = rootfs.to_path_buf();
    if let Some(first) = comps.next() {
        let first = first.as_os_str().to_string_lossy();
        dest.push(match first.as_ref() {
            "lib" => "usr/lib",
            "lib64" => "usr/lib64",
            "bin" | "sbin" => "usr/bin",
            other => other,
        });
    }
    dest.push(comps.as_path());
    dest
}

/// Copy a host file to the same path under `rootfs` (see [`root_path`]).
pub fn copy_into_root(host: &Path, rootfs: &Path) -> Result<()> {
    copy_file(host, &root_path(rootfs, host))
}

/// Copy following symlinks, keeping the permission bits.
pub fn copy_file(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Copy `src` over `dest` recursively, keeping modes and symlinks; returns the number of files.
pub fn copy_tree(src: &Path, dest: &Path) -> Result<usize> {
    copy_tree_filtered(src, dest, &|_| true)
}

/// [`copy_tree`] of the entries whose path (relative to `src`) `keep` accepts; a refused
/// directory is skipped whole.
pub fn copy_tree_filtered(src: &Path, dest: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<usize> {
    fn walk(base: &Path, src: &Path, dest: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<usize> {
        let mut n = 0;
        for entry in fs::read_dir(src)? {
            let entry = entry?;
            let from = entry.path();
            if !keep(from.strip_prefix(base).unwrap_or(&from)) {
                continue;
            }
            n += copy_entry(base, &entry, &dest.join(entry.file_name()), keep)?;
        }
        Ok(n)
    }
    fn copy_entry(
        base: &Path,
        entry: &fs::DirEntry,
        to: &Path,
        keep: &dyn Fn(&Path) -> bool,
    ) -> Result<usize> {
        let from = entry.path();
        let ty = entry.file_type()?;
        let mut n = 0;
        if ty.is_symlink() {
            let target = fs::read_link(&from)?;
            if to.symlink_metadata().is_ok() {
                fs::remove_file(to)?;
            }
            symlink(target, to)?;
            n += 1;
        } else if ty.is_dir() {
            fs::create_dir_all(to)?;
            fs::set_permissions(to, fs::metadata(&from)?.permissions())?;
            n += walk(base, &from, to, keep)?;
        } else {
            if to.symlink_metadata().is_ok() {
                fs::remove_file(to)?;
            }
            fs::copy(&from, to).with_context(|| format!("copying {}", from.display()))?;
            n += 1;
        }
        Ok(n)
    }
    walk(src, src, dest, keep)
}

/// The `atp.*` labels: the Lean pins of `images/lean/` and the test-image flag.
pub fn labels(root: &Path) -> Result<Vec<(String, String)>> {
    let toolchain_path = root.join("images/lean/lean-toolchain");
    let toolchain = fs::read_to_string(&toolchain_path)
        .with_context(|| format!("reading {}", toolchain_path.display()))?
        .trim()
        .to_string();
    let lakefile_path = root.join("images/lean/lakefile.toml");
    let lakefile = fs::read_to_string(&lakefile_path)
        .with_context(|| format!("reading {}", lakefile_path.display()))?;
    let rev = lakefile
        .lines()
        .filter_map(|l| l.trim().strip_prefix("rev"))
        .filter_map(|l| l.trim().strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_string())
        .next()
        .with_context(|| format!("no `rev = \"…\"` in {}", lakefile_path.display()))?;
    Ok(vec![
        ("atp.lean-toolchain".into(), toolchain),
        ("atp.mathlib-rev".into(), rev),
        ("atp.test-image".into(), "true".into()),
    ])
}

/// `docker import` of `rootfs` as `tag` with the image's PATH, `labels`, workdir and command.
pub fn import(rootfs: &Path, tag: &str, labels: &[(String, String)]) -> Result<()> {
    let mut tar = Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(rootfs)
        .args(["-cf", "-", "."])
        .stdout(Stdio::piped())
        .spawn()
        .context("running tar")?;
    let tar_out = tar.stdout.take().context("tar stdout")?;
    let mut docker = Command::new("docker");
    docker.arg("import");
    docker.args(["--change", &format!("ENV PATH={IMAGE_PATH}")]);
    for (k, v) in labels {
        docker.args(["--change", &format!("LABEL {k}=\"{v}\"")]);
    }
    docker.args(["--change", "WORKDIR /workspace/wd"]);
    docker.args(["--change", "CMD [\"sleep\", \"infinity\"]"]);
    docker.arg("-").arg(tag);
    let status = docker
        .stdin(tar_out)
        .stdout(Stdio::null())
        .status()
        .context("running `docker import` — is the docker CLI installed?")?;
    let tar_status = tar.wait()?;
    if !tar_status.success() {
        bail!("tar of {} failed", rootfs.display());
    }
    if !status.success() {
        bail!("`docker import` failed — is the engine running? (`sudo systemctl start docker` or `dockerd &`)");
    }
    Ok(())
}
