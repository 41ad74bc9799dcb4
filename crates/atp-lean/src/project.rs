//! The Lean project model: a lake project on the host, its pins, its files, and proof tasks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atp_image::{LeanPins, Skeleton};

use crate::lexer::contains_sorry;

/// Errors about a project on the host. Each message says what, where, and the remedy.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("no such file or directory: {}", path.display())]
    NotFound { path: PathBuf },
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
            ProjectError::NotFound { .. } => "not_found",
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
        if std::fs::symlink_metadata(&root).is_err() {
            return Err(ProjectError::NotFound { path: root });
        }
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

    /// Project-relative paths of all `.lean` files, sorted: the regular `.lean` files of
    /// [`crate::walk`]'s project rule (no hidden entries, links not followed) except the root
    /// `lakefile.lean` (build configuration, not a proof source).
    pub fn lean_files(&self) -> Result<Vec<String>, ProjectError> {
        let entries = crate::walk::walk(&self.root).map_err(io(&self.root))?;
        Ok(entries
            .into_iter()
            .filter(|e| {
                e.kind == crate::walk::EntryKind::File && crate::walk::is_lean_source(&e.rel)
            })
            .map(|e| e.rel)
            .collect())
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
    pub fn check_compatible(&self, image: &LeanPins) -> Result<(), ProjectError> {
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

/// Stage bare `.lean` files into `dest` as a lake project built from the image skeleton.
///
/// Files keep their base names; non-`.lean` input and duplicate names are rejected.
pub fn stage_files(files: &[PathBuf], dest: &Path) -> Result<LeanProject, ProjectError> {
    for f in files {
        if std::fs::symlink_metadata(f).is_err() {
            return Err(ProjectError::NotFound { path: f.clone() });
        }
        if f.extension().and_then(|e| e.to_str()) != Some("lean") {
            return Err(ProjectError::NotLeanFile { path: f.clone() });
        }
        if !f.is_file() {
            return Err(ProjectError::NotFound { path: f.clone() });
        }
    }
    std::fs::create_dir_all(dest).map_err(io(dest))?;
    for (name, bytes) in Skeleton::builtin().files() {
        let p = dest.join(name);
        std::fs::write(&p, bytes).map_err(io(&p))?;
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

#[cfg(test)]
mod tests;
