//! [`ProofTask`]: a Lean project with `sorry`s to prove, and how it is read from user input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atp_lean::{stage_files, LeanProject, ProjectError};
use sha2::{Digest, Sha256};

/// A proof task: a project, optionally which files are the targets, and what to tell a prover.
#[derive(Debug, Clone)]
pub struct ProofTask {
    pub name: String,
    pub project: LeanProject,
    /// Target files (project-relative); empty means every `.lean` file.
    pub targets: Vec<String>,
    /// The user's extra instructions, appended to atp's prompt under "# Additional instructions".
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

    /// A task from what a user typed: one lake project directory, or bare `.lean` files staged
    /// into atp's skeleton under `staging` (created). Missing paths are named as typed.
    pub fn from_inputs(inputs: &[PathBuf], staging: &Path) -> Result<ProofTask, ProjectError> {
        let Some(first) = inputs.first() else {
            return Err(ProjectError::BadFile {
                path: PathBuf::from("."),
                message: "no input given — pass a lake project directory or .lean files".into(),
            });
        };
        for p in inputs {
            if std::fs::symlink_metadata(p).is_err() {
                return Err(ProjectError::NotFound { path: p.clone() });
            }
        }
        if inputs.len() == 1 && first.is_dir() {
            return Ok(ProofTask::new(LeanProject::open(first)?));
        }
        if let Some(d) = inputs.iter().find(|p| p.is_dir()) {
            return Err(ProjectError::BadFile {
                path: d.clone(),
                message: "pass either one project directory or .lean files, not both".into(),
            });
        }
        let project = stage_files(inputs, staging)?;
        let mut task = ProofTask::new(project);
        task.name = if inputs.len() == 1 {
            first
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "task".into())
        } else {
            "files".into()
        };
        Ok(task)
    }

    /// The files to prove: the targets, or every `.lean` file.
    pub fn target_files(&self) -> Result<Vec<String>, ProjectError> {
        if self.targets.is_empty() {
            self.project.lean_files()
        } else {
            Ok(self.targets.clone())
        }
    }

    /// sha256 over the task's content: every `.lean` source, the lakefile, `lean-toolchain` and
    /// `lake-manifest.json` (path and bytes of each, sorted by path).
    pub fn content_hash(&self) -> Result<String, ProjectError> {
        let root = self.project.root();
        let mut files: Vec<String> = self.project.lean_files()?;
        for extra in [
            "lakefile.toml",
            "lakefile.lean",
            "lean-toolchain",
            "lake-manifest.json",
        ] {
            if root.join(extra).is_file() {
                files.push(extra.to_string());
            }
        }
        files.sort();
        files.dedup();
        let mut h = Sha256::new();
        for rel in files {
            let p = root.join(&rel);
            let bytes = std::fs::read(&p).map_err(|source| ProjectError::Io {
                path: p.clone(),
                source,
            })?;
            h.update((rel.len() as u64).to_le_bytes());
            h.update(rel.as_bytes());
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(&bytes);
        }
        Ok(hex::encode(h.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures")
            .join(name)
    }

    #[test]
    fn a_directory_is_one_task_and_files_are_staged() {
        let t =
            ProofTask::from_inputs(&[fixture("original")], Path::new("/nonexistent")).expect("dir");
        assert_eq!(t.name, "original");
        assert_eq!(t.target_files().expect("files"), vec!["Fixture.lean"]);
        let d = tempfile::tempdir().expect("tmp");
        let t = ProofTask::from_inputs(
            &[fixture("original").join("Fixture.lean")],
            &d.path().join("s"),
        )
        .expect("file");
        assert_eq!(t.name, "Fixture");
        assert!(d.path().join("s/lakefile.toml").is_file());
    }

    #[test]
    fn a_missing_input_is_named_as_typed() {
        let e = ProofTask::from_inputs(&[PathBuf::from("/nonexistent")], Path::new("/tmp/x"))
            .expect_err("missing");
        assert_eq!(e.to_string(), "no such file or directory: /nonexistent");
    }

    #[test]
    fn the_content_hash_follows_the_sources() {
        let d = tempfile::tempdir().expect("tmp");
        atp_lean::walk::copy_project(&fixture("original"), d.path()).expect("copy");
        let t = ProofTask::new(LeanProject::open(d.path()).expect("open"));
        let h1 = t.content_hash().expect("hash");
        assert_eq!(h1, t.content_hash().expect("again"));
        std::fs::write(
            d.path().join("Fixture.lean"),
            "theorem x : True := trivial\n",
        )
        .expect("w");
        assert_ne!(h1, t.content_hash().expect("changed"));
    }
}
