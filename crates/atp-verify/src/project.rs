//! The Lean project model: a lake project on the host, its pins, its files, and proof tasks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::lexer::contains_sorry;

/// Errors about a project on the host. Each message says what, where, and the remedy.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("{path}: not a directory — pass a lake project directory or .lean files")]
    NotADirectory { path: PathBuf },
    #[error("{root}: no lakefile.toml or lakefile.lean — a lake project needs one (or pass bare .lean files to stage them into the image's skeleton)")]
    MissingLakefile { root: PathBuf },
    #[error("{root}: no lean-toolchain file — add one line such as `leanprover/lean4:v4.28.0`")]
    MissingToolchain { root: PathBuf },
    #[error("{path}: {message}")]
    BadFile { path: PathBuf, message: String },
    #[error(
        "{path}: only .lean files can be staged — pass .lean files or a lake project directory"
    )]
    NotLeanFile { path: PathBuf },
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("project toolchain `{project}` differs from the image's `{image}` — use an image built for `{project}` or change lean-toolchain")]
    ToolchainMismatch { project: String, image: String },
    #[error("project pins Mathlib `{project}` but the image has `{image}` — use a matching image or re-pin Mathlib in lake-manifest.json/lakefile")]
    MathlibRevMismatch { project: String, image: String },
}

impl ProjectError {
    /// Short machine-readable name.
    pub fn kind(&self) -> &'static str {
        match self {
            ProjectError::NotADirectory { .. } => "not_a_directory",
            ProjectError::MissingLakefile { .. } => "missing_lakefile",
            ProjectError::MissingToolchain { .. } => "missing_toolchain",
            ProjectError::BadFile { .. } => "bad_file",
            ProjectError::NotLeanFile { .. } => "not_lean_file",
            ProjectError::Io { .. } => "io",
            ProjectError::ToolchainMismatch { .. } => "toolchain_mismatch",
            ProjectError::MathlibRevMismatch { .. } => "mathlib_rev_mismatch",
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProjectError + '_ {
    move |source| ProjectError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A lake project on the host.
///
/// Invariant: `root` holds `lakefile.toml` or `lakefile.lean` and a `lean-toolchain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeanProject {
    root: PathBuf,
}

impl LeanProject {
    /// Open a project; fails when the lakefile or the toolchain file is missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, ProjectError> {
        let root = root.into();
        if !root.is_dir() {
            return Err(ProjectError::NotADirectory { path: root });
        }
        if !root.join("lakefile.toml").is_file() && !root.join("lakefile.lean").is_file() {
            return Err(ProjectError::MissingLakefile { root });
        }
        if !root.join("lean-toolchain").is_file() {
            return Err(ProjectError::MissingToolchain { root });
        }
        Ok(LeanProject { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The toolchain line, trimmed (e.g. `leanprover/lean4:v4.28.0`).
    pub fn lean_toolchain(&self) -> Result<String, ProjectError> {
        let p = self.root.join("lean-toolchain");
        let s = std::fs::read_to_string(&p).map_err(io(&p))?;
        let t = s.trim().to_string();
        if t.is_empty() || t.contains(char::is_whitespace) {
            return Err(ProjectError::BadFile {
                path: p,
                message: format!(
                    "expected one toolchain such as `leanprover/lean4:v4.28.0`, found {s:?}"
                ),
            });
        }
        Ok(t)
    }

    /// The pinned Mathlib revision: `lake-manifest.json`'s `inputRev`, else its `rev`, else
    /// the lakefile's `rev` (`lakefile.toml`) / `@ "rev"` (`lakefile.lean`); `None` when the
    /// project does not require Mathlib.
    pub fn mathlib_rev(&self) -> Result<Option<String>, ProjectError> {
        let manifest = self.root.join("lake-manifest.json");
        if manifest.is_file() {
            let s = std::fs::read_to_string(&manifest).map_err(io(&manifest))?;
            let v: serde_json::Value =
                serde_json::from_str(&s).map_err(|e| ProjectError::BadFile {
                    path: manifest.clone(),
                    message: format!("not valid JSON ({e}) — regenerate it with `lake update`"),
                })?;
            let pkgs = v.get("packages").and_then(|p| p.as_array());
            if let Some(m) = pkgs
                .into_iter()
                .flatten()
                .find(|p| p.get("name").and_then(|n| n.as_str()) == Some("mathlib"))
            {
                let pick = |k: &str| {
                    m.get(k)
                        .and_then(|x| x.as_str())
                        .map(str::to_string)
                        .filter(|s| !s.is_empty())
                };
                if let Some(r) = pick("inputRev").or_else(|| pick("rev")) {
                    return Ok(Some(r));
                }
            }
        }
        let toml_path = self.root.join("lakefile.toml");
        if toml_path.is_file() {
            let s = std::fs::read_to_string(&toml_path).map_err(io(&toml_path))?;
            let t: toml::Table = toml::from_str(&s).map_err(|e| ProjectError::BadFile {
                path: toml_path.clone(),
                message: format!(
                    "not valid TOML: {}",
                    e.to_string().lines().next().unwrap_or("")
                ),
            })?;
            return Ok(atp_image::mathlib_rev_of_lakefile(&t));
        }
        let lean_path = self.root.join("lakefile.lean");
        if lean_path.is_file() {
            let s = std::fs::read_to_string(&lean_path).map_err(io(&lean_path))?;
            for line in s.lines() {
                let l = line.trim();
                if l.starts_with("require") && l.contains("mathlib") {
                    if let Some(at) = l.rfind('@') {
                        let rev = l[at + 1..].trim().trim_matches('"').to_string();
                        if !rev.is_empty() {
                            return Ok(Some(rev));
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    /// Project-relative paths of all `.lean` files, sorted, excluding `.lake/`, hidden dirs and
    /// the root `lakefile.lean` (build configuration, not a proof source).
    pub fn lean_files(&self) -> Result<Vec<String>, ProjectError> {
        let mut out = Vec::new();
        walk(&self.root, &self.root, &mut out)?;
        out.sort();
        Ok(out)
    }

    /// Files containing a `sorry` token (not in comments or strings).
    pub fn files_with_sorry(&self) -> Result<Vec<String>, ProjectError> {
        Ok(self
            .sources()?
            .into_iter()
            .filter(|(_, s)| contains_sorry(s))
            .map(|(k, _)| k)
            .collect())
    }

    /// `rel path → source` for every `.lean` file.
    pub fn sources(&self) -> Result<BTreeMap<String, String>, ProjectError> {
        let mut out = BTreeMap::new();
        for rel in self.lean_files()? {
            let p = self.root.join(&rel);
            let s = std::fs::read_to_string(&p).map_err(io(&p))?;
            out.insert(rel, s);
        }
        Ok(out)
    }

    /// The compatibility gate: the project's pins must equal the image's.
    pub fn check_compatible(&self, image: &Pins) -> Result<(), ProjectError> {
        let tc = self.lean_toolchain()?;
        if tc != image.lean_toolchain {
            return Err(ProjectError::ToolchainMismatch {
                project: tc,
                image: image.lean_toolchain.clone(),
            });
        }
        if let Some(rev) = self.mathlib_rev()? {
            if rev != image.mathlib_rev {
                return Err(ProjectError::MathlibRevMismatch {
                    project: rev,
                    image: image.mathlib_rev.clone(),
                });
            }
        }
        Ok(())
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), ProjectError> {
    let rd = std::fs::read_dir(dir).map_err(io(dir))?;
    for entry in rd {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue; // .lake, .git, .atp-* …
        }
        let path = entry.path();
        let ft = entry.file_type().map_err(io(&path))?;
        if ft.is_dir() {
            walk(root, &path, out)?;
        } else if ft.is_file()
            && name.ends_with(".lean")
            && !(dir == root && name == "lakefile.lean")
        {
            if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    Ok(())
}

/// The compatibility pins of an image (or skeleton).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pins {
    pub lean_toolchain: String,
    pub mathlib_rev: String,
}

pub use atp_image::{LABEL_LEAN_TOOLCHAIN, LABEL_MATHLIB_REV};

impl Pins {
    /// The pins from image labels (`atp.lean-toolchain`, `atp.mathlib-rev`, read by
    /// [`atp_image::ImagePins::from_labels`]); `None` unless both are present.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Option<Pins> {
        atp_image::ImagePins::from_labels(labels).map(|p| Pins {
            lean_toolchain: p.lean_toolchain,
            mathlib_rev: p.mathlib_rev,
        })
    }

    /// The pins of a skeleton directory (`lean-toolchain` + the lakefile's Mathlib `rev`).
    pub fn from_skeleton(dir: &Path) -> Result<Pins, ProjectError> {
        let p = LeanProject::open(dir)?;
        Ok(Pins {
            lean_toolchain: p.lean_toolchain()?,
            mathlib_rev: p.mathlib_rev()?.ok_or_else(|| ProjectError::BadFile {
                path: dir.join("lakefile.toml"),
                message: "the skeleton does not pin Mathlib — add a `[[require]]` named mathlib with a `rev`".into(),
            })?,
        })
    }

    /// The skeleton pins compiled into atp (`images/lean/`), the fallback for unlabelled images.
    pub fn builtin() -> Pins {
        let tc = include_str!("../../../images/lean/lean-toolchain")
            .trim()
            .to_string();
        let lf = include_str!("../../../images/lean/lakefile.toml");
        let rev = toml::from_str::<toml::Table>(lf)
            .ok()
            .and_then(|t| {
                t.get("require")?
                    .as_array()?
                    .iter()
                    .filter_map(|r| r.as_table())
                    .find(|r| r.get("name").and_then(|n| n.as_str()) == Some("mathlib"))?
                    .get("rev")?
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_default();
        Pins {
            lean_toolchain: tc,
            mathlib_rev: rev,
        }
    }
}

/// The skeleton files compiled into atp (from `images/lean/`).
pub fn skeleton_files() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "lakefile.toml",
            include_str!("../../../images/lean/lakefile.toml"),
        ),
        (
            "lean-toolchain",
            include_str!("../../../images/lean/lean-toolchain"),
        ),
    ]
}

/// Stage bare `.lean` files into `dest` as a lake project built from the image skeleton.
///
/// Files keep their base names; non-`.lean` input and duplicate names are rejected.
pub fn stage_files(files: &[PathBuf], dest: &Path) -> Result<LeanProject, ProjectError> {
    for f in files {
        if f.extension().and_then(|e| e.to_str()) != Some("lean") {
            return Err(ProjectError::NotLeanFile { path: f.clone() });
        }
        if !f.is_file() {
            return Err(ProjectError::Io {
                path: f.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
    }
    std::fs::create_dir_all(dest).map_err(io(dest))?;
    for (name, text) in skeleton_files() {
        let p = dest.join(name);
        std::fs::write(&p, text).map_err(io(&p))?;
    }
    let mut seen = std::collections::BTreeSet::new();
    for f in files {
        let name = f.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        if !seen.insert(name.clone()) {
            return Err(ProjectError::BadFile {
                path: f.clone(),
                message: "two staged files share this name — rename one".into(),
            });
        }
        let to = dest.join(&name);
        std::fs::copy(f, &to).map_err(io(f))?;
    }
    LeanProject::open(dest)
}

/// A proof task: a project, optionally which files are the targets, and what to tell a prover.
#[derive(Debug, Clone)]
pub struct ProofTask {
    pub name: String,
    pub project: LeanProject,
    /// Target files (project-relative); empty means every `.lean` file.
    pub targets: Vec<String>,
    pub user_prompt: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

impl ProofTask {
    /// A task over a whole project, named after its directory.
    pub fn new(project: LeanProject) -> Self {
        let name = project
            .root()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "task".into());
        ProofTask {
            name,
            project,
            targets: Vec::new(),
            user_prompt: None,
            metadata: BTreeMap::new(),
        }
    }

    /// The files to prove: the targets, or every `.lean` file.
    pub fn target_files(&self) -> Result<Vec<String>, ProjectError> {
        if self.targets.is_empty() {
            self.project.lean_files()
        } else {
            Ok(self.targets.clone())
        }
    }
}

#[cfg(test)]
mod tests;
