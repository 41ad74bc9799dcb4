//! `cargo xtask test-image`: build `atp-test:latest` from the host, without any registry.
//!
//! The rootfs (under `target/atp-test-rootfs`) holds busybox-static with its applets, GNU `bash`,
//! `timeout`, `tar` and `gzip` copied from the host with their shared libraries, a root user, a
//! warm-cache marker at `/workspace/.lake/ATP_TEST_MARKER`, and then `images/test/overlay/`
//! copied verbatim on top. It is imported with `docker import` and labelled with the Lean pins of
//! `images/lean/`. The image is rebuilt from scratch on every call.

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
const IMAGE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Content of the warm-cache marker.
pub const MARKER_CONTENT: &str = "atp test image warm cache marker\n";

pub fn run(args: Args) -> Result<()> {
    let root = workspace_root()?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
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

fn build_rootfs(root: &Path, rootfs: &Path) -> Result<()> {
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
    let busybox = ["/usr/bin/busybox", "/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
        .context("busybox not found — run `apt-get install -y busybox-static`")?;
    copy_file(busybox, &rootfs.join("usr/bin/busybox"))?;
    let list = Command::new(busybox)
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
    fs::write(
        rootfs.join("workspace/.lake/ATP_TEST_MARKER"),
        MARKER_CONTENT,
    )?;

    let overlay = root.join("images/test/overlay");
    let overlaid = if overlay.is_dir() {
        copy_tree(&overlay, rootfs)?
    } else {
        0
    };
    println!(
        "rootfs: busybox + {applets} applets, {} host binaries, {} shared libraries, {overlaid} overlay files",
        HOST_BINARIES.len(),
        libs.len()
    );
    Ok(())
}

fn which(name: &str) -> Result<PathBuf> {
    for dir in ["/usr/bin", "/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return Ok(p.canonicalize()?);
        }
    }
    bail!("host binary `{name}` not found in /usr/bin or /bin — install it with apt-get")
}

/// Absolute paths of the shared libraries `ldd` reports for `bin`.
fn shared_libs(bin: &Path) -> Result<Vec<PathBuf>> {
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

/// Copy a host file to the same path under `rootfs` (through the rootfs's merged-/usr links).
fn copy_into_root(host: &Path, rootfs: &Path) -> Result<()> {
    let rel = host.strip_prefix("/").unwrap_or(host);
    let mut dest = rootfs.to_path_buf();
    // Resolve the first component through the rootfs symlinks (lib -> usr/lib …).
    let mut comps = rel.components();
    if let Some(first) = comps.next() {
        let first = first.as_os_str().to_string_lossy().into_owned();
        let mapped = match first.as_str() {
            "lib" => "usr/lib".to_string(),
            "lib64" => "usr/lib64".to_string(),
            "bin" | "sbin" => "usr/bin".to_string(),
            other => other.to_string(),
        };
        dest.push(mapped);
    }
    dest.push(comps.as_path());
    copy_file(host, &dest)
}

/// Copy following symlinks, keeping the permission bits.
fn copy_file(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Copy `src` over `dest` recursively, keeping modes and symlinks; returns the number of files.
fn copy_tree(src: &Path, dest: &Path) -> Result<usize> {
    let mut n = 0;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dest.join(entry.file_name());
        let ty = entry.file_type()?;
        if ty.is_symlink() {
            let target = fs::read_link(&from)?;
            if to.symlink_metadata().is_ok() {
                fs::remove_file(&to)?;
            }
            symlink(target, &to)?;
            n += 1;
        } else if ty.is_dir() {
            fs::create_dir_all(&to)?;
            fs::set_permissions(&to, fs::metadata(&from)?.permissions())?;
            n += copy_tree(&from, &to)?;
        } else {
            if to.symlink_metadata().is_ok() {
                fs::remove_file(&to)?;
            }
            fs::copy(&from, &to)
                .with_context(|| format!("copying overlay file {}", from.display()))?;
            n += 1;
        }
    }
    Ok(n)
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

fn import(rootfs: &Path, tag: &str, labels: &[(String, String)]) -> Result<()> {
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
