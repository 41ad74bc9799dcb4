//! The dataset registry (`atp datasets`) and downloads (`atp download NAME DIR`).
//!
//! A download is a sparse, shallow git clone of the dataset's folder at a pinned commit
//! (`--rev` overrides it), whose folder's contents land in `DIR`, recorded in
//! `DIR/.atp-dataset.toml` (name, repository, commit, the Lean toolchain and Mathlib revision the
//! dataset needs, the answer key if any). Git runs with prompts disabled and only against the
//! repository given (an `https://` URL by default; tests use `file://` repositories).
//!
//! Invariant: `DIR` is written only once the clone succeeded (the clone lives in a temporary
//! directory beside it until then); an existing record is reused, never overwritten.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::answers::{AnswerKey, ANSWERS_FILE};
use crate::error::BenchError;

/// The file recording a downloaded dataset.
pub const RECORD_FILE: &str = ".atp-dataset.toml";
/// The schema tag of the record.
pub const RECORD_SCHEMA: &str = "atp.dataset/1";

/// Where a dataset's official answers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerSource {
    /// No definition holes (or no answers shipped).
    None,
    /// The comment line right after each `:= sorry` definition (PutnamBench).
    CommentAfterHole,
}

/// One registered dataset.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// Git repository (`bundled` for atp's own examples).
    pub repo: &'static str,
    /// The folder of the repository that holds the tasks (`""`: the whole tree).
    pub subdir: &'static str,
    /// The pinned commit.
    pub commit: &'static str,
    /// The repository path of the `lean-toolchain` the dataset is written for.
    pub toolchain_file: &'static str,
    /// The toolchain and Mathlib revision at the pinned commit (what `atp datasets` shows; a
    /// download reads them from the clone).
    pub lean_toolchain: &'static str,
    pub mathlib_rev: &'static str,
    /// Tasks at the pinned commit.
    pub tasks: usize,
    pub answers: AnswerSource,
}

/// Every dataset atp knows, in the order `atp datasets` lists them.
pub const DATASETS: &[DatasetSpec] = &[
    DatasetSpec {
        name: "examples",
        description: "atp's five bundled Mathlib examples (from Mathematics in Lean)",
        repo: "bundled",
        subdir: "",
        commit: "",
        toolchain_file: "",
        lean_toolchain: "",
        mathlib_rev: "",
        tasks: 5,
        answers: AnswerSource::None,
    },
    DatasetSpec {
        name: "putnam",
        description: "PutnamBench: Putnam competition problems 1962–2025 (346 with definition holes)",
        repo: "https://github.com/trishullab/PutnamBench",
        subdir: "lean4/src",
        commit: "3c9b9268ebd132d482938b8e9d242dd71fc1ebc0",
        toolchain_file: "lean4/lean-toolchain",
        lean_toolchain: "leanprover/lean4:v4.27.0",
        mathlib_rev: "v4.27.0",
        tasks: 672,
        answers: AnswerSource::CommentAfterHole,
    },
    DatasetSpec {
        name: "fate-h",
        description: "FATE-H: honours-level abstract algebra (graduate exam level)",
        repo: "https://github.com/frenzymath/FATE-H",
        subdir: "FATEH",
        commit: "fee1e19c2c7d24a2677649856c6184f78534ee4a",
        toolchain_file: "lean-toolchain",
        lean_toolchain: "leanprover/lean4:v4.16.0",
        mathlib_rev: "v4.16.0",
        tasks: 100,
        answers: AnswerSource::None,
    },
    DatasetSpec {
        name: "fate-m",
        description: "FATE-M: medium abstract algebra (undergraduate level)",
        repo: "https://github.com/frenzymath/FATE-M",
        subdir: "FATEM",
        commit: "4eb33c8ccd0ff058b461cd763cc406509129743f",
        toolchain_file: "lean-toolchain",
        lean_toolchain: "leanprover/lean4:v4.28.0",
        mathlib_rev: "v4.28.0",
        tasks: 150,
        answers: AnswerSource::None,
    },
    DatasetSpec {
        name: "fate-x",
        description: "FATE-X: research-level abstract algebra (beyond PhD qualifying exams)",
        repo: "https://github.com/frenzymath/FATE-X",
        subdir: "FATEX",
        commit: "a6fb49ee85fd05bb8ce9fc66e1c66797b5a0592d",
        toolchain_file: "lean-toolchain",
        lean_toolchain: "leanprover/lean4:v4.28.0",
        mathlib_rev: "v4.28.0",
        tasks: 100,
        answers: AnswerSource::None,
    },
    DatasetSpec {
        name: "minif2f",
        description: "miniF2F (Lean 4 port by Kaiyu Yang, used by LeanDojo and most provers): 244 test + 244 valid olympiad problems",
        repo: "https://github.com/yangky11/miniF2F-lean4",
        subdir: "MiniF2F",
        commit: "5746b7d6c47855ce1294bed87329618ff7f1bc31",
        toolchain_file: "lean-toolchain",
        lean_toolchain: "leanprover/lean4:v4.24.0",
        mathlib_rev: "v4.24.0",
        tasks: 488,
        answers: AnswerSource::None,
    },
];

/// Look a dataset up by name.
pub fn find(name: &str) -> Result<&'static DatasetSpec, BenchError> {
    DATASETS
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| BenchError::UnknownDataset {
            name: name.to_string(),
            known: DATASETS
                .iter()
                .map(|d| d.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// `DIR/.atp-dataset.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetRecord {
    pub schema: String,
    pub name: String,
    pub repo: String,
    #[serde(default)]
    pub subdir: String,
    /// The commit checked out.
    pub commit: String,
    /// The revision asked for (the pinned commit, or `--rev`).
    pub requested_rev: String,
    pub lean_toolchain: String,
    pub mathlib_rev: Option<String>,
    /// RFC 3339 time of the download.
    pub downloaded: String,
    /// The answer key next to the record (relative), when the dataset ships answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<String>,
}

impl DatasetRecord {
    /// Read `dir/.atp-dataset.toml` (`None` when absent).
    pub fn read(dir: &Path) -> Result<Option<DatasetRecord>, BenchError> {
        let p = dir.join(RECORD_FILE);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BenchError::bad_file(&p, e)),
        };
        let r: DatasetRecord = toml::from_str(&text).map_err(|e| {
            BenchError::bad_file(
                &p,
                format!("not a dataset record ({e}) — remove it or download the dataset again"),
            )
        })?;
        if r.schema != RECORD_SCHEMA {
            return Err(BenchError::bad_file(
                &p,
                format!("schema {:?} is not {RECORD_SCHEMA:?}", r.schema),
            ));
        }
        Ok(Some(r))
    }

    /// Write `dir/.atp-dataset.toml` (atomically).
    pub fn write(&self, dir: &Path) -> Result<(), BenchError> {
        let p = dir.join(RECORD_FILE);
        let text = format!(
            "# written by `atp download`; atp benchmark reads it (dataset commit, Lean pins)\n{}",
            toml::to_string(self).map_err(|e| BenchError::output(&p, e))?
        );
        crate::util::write_atomic(&p, text.as_bytes()).map_err(|e| BenchError::output(&p, e))
    }

    /// The answer key the download extracted, if any.
    pub fn answer_key(&self, dir: &Path) -> Result<Option<AnswerKey>, BenchError> {
        match &self.answers {
            Some(rel) => AnswerKey::load(&dir.join(rel)).map(Some),
            None => Ok(None),
        }
    }
}

/// A download request.
#[derive(Debug, Clone)]
pub struct Download {
    pub dataset: &'static DatasetSpec,
    pub dir: PathBuf,
    /// Revision to check out instead of the pinned commit (a commit, tag or branch).
    pub rev: Option<String>,
    /// Repository to clone instead of the registry's (a mirror; tests use `file://`).
    pub repo: Option<String>,
}

/// What a download did.
#[derive(Debug, Clone, Serialize)]
pub struct Downloaded {
    pub record: DatasetRecord,
    pub dir: PathBuf,
    /// Tasks found (loose `.lean` files and lake projects with a `sorry`).
    pub tasks: usize,
    /// Answers extracted into the answer key.
    pub answers: usize,
    /// The directory already held this dataset at this revision; nothing was fetched.
    pub reused: bool,
}

/// Run a git command; its stderr's last line is the message on failure.
async fn git(repo: &str, step: &str, cwd: &Path, args: &[&str]) -> Result<String, BenchError> {
    let out = tokio::process::Command::new("git")
        .args([
            "-c",
            "advice.detachedHead=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(cwd)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| BenchError::Git {
            repo: repo.to_string(),
            step: step.to_string(),
            message: format!("cannot run git ({e}); install git"),
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty() && !l.starts_with("warning:"))
            .unwrap_or("no output");
        return Err(BenchError::Git {
            repo: repo.to_string(),
            step: step.to_string(),
            message: last.trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Download a git dataset (see the module docs). `examples` is written by the CLI (it holds
/// the bundled files); this handles every git dataset.
pub async fn download(req: &Download) -> Result<Downloaded, BenchError> {
    let spec = req.dataset;
    if spec.repo == "bundled" {
        return Err(BenchError::Invalid(format!(
            "dataset {} is bundled with atp, not downloaded by git",
            spec.name
        )));
    }
    let repo = req.repo.clone().unwrap_or_else(|| spec.repo.to_string());
    let rev = req.rev.clone().unwrap_or_else(|| spec.commit.to_string());
    if let Some(existing) = DatasetRecord::read(&req.dir)? {
        let same_rev = existing.requested_rev == rev || existing.commit == rev;
        if existing.name == spec.name && same_rev {
            let tasks = crate::tasks::count_tasks(&req.dir);
            let answers = existing
                .answer_key(&req.dir)?
                .map_or(0, |k| k.answers.len());
            return Ok(Downloaded {
                record: existing,
                dir: req.dir.clone(),
                tasks,
                answers,
                reused: true,
            });
        }
        return Err(BenchError::Directory {
            path: req.dir.clone(),
            message: format!(
                "already holds dataset {} at {} — pass a new directory",
                existing.name, existing.commit
            ),
        });
    }
    if req.dir.exists() {
        let empty = std::fs::read_dir(&req.dir)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(BenchError::Directory {
                path: req.dir.clone(),
                message: "exists and is not empty — pass a new directory".into(),
            });
        }
    }
    let parent = match req.dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| BenchError::Directory {
        path: parent.clone(),
        message: format!("cannot create it: {e}"),
    })?;
    let clone = tempfile::Builder::new()
        .prefix(".atp-download-")
        .tempdir_in(&parent)
        .map_err(|e| BenchError::Directory {
            path: parent.clone(),
            message: format!("cannot create a temporary directory: {e}"),
        })?;
    let c = clone.path();
    git(&repo, "init", c, &["init", "-q"]).await?;
    git(&repo, "remote add", c, &["remote", "add", "origin", &repo]).await?;
    if !spec.subdir.is_empty() {
        git(
            &repo,
            "sparse-checkout",
            c,
            &["sparse-checkout", "set", spec.subdir],
        )
        .await?;
    }
    git(
        &repo,
        &format!("fetch of {rev}"),
        c,
        &[
            "fetch",
            "-q",
            "--depth",
            "1",
            "--filter=blob:none",
            "origin",
            &rev,
        ],
    )
    .await?;
    git(&repo, "checkout", c, &["checkout", "-q", "FETCH_HEAD"]).await?;
    let commit = git(&repo, "rev-parse", c, &["rev-parse", "HEAD"]).await?;
    let src = if spec.subdir.is_empty() {
        c.to_path_buf()
    } else {
        c.join(spec.subdir)
    };
    if !src.is_dir() {
        return Err(BenchError::Git {
            repo,
            step: "checkout".into(),
            message: format!("{commit} has no folder {}", spec.subdir),
        });
    }
    // The pins the dataset is written for.
    let project_dir = c.join(spec.toolchain_file).parent().map(Path::to_path_buf);
    let (lean_toolchain, mathlib_rev) = match project_dir.map(atp_lean::LeanProject::open) {
        Some(Ok(p)) => (
            p.lean_toolchain()
                .unwrap_or_else(|_| spec.lean_toolchain.into()),
            p.mathlib_rev().ok().flatten(),
        ),
        _ => {
            let t = std::fs::read_to_string(c.join(spec.toolchain_file))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| spec.lean_toolchain.into());
            (t, Some(spec.mathlib_rev.to_string()))
        }
    };
    // Move the folder's contents into DIR.
    std::fs::create_dir_all(&req.dir).map_err(|e| BenchError::Directory {
        path: req.dir.clone(),
        message: format!("cannot create it: {e}"),
    })?;
    let entries = std::fs::read_dir(&src).map_err(|e| BenchError::Directory {
        path: src.clone(),
        message: e.to_string(),
    })?;
    for e in entries.flatten() {
        if e.file_name() == ".git" {
            continue;
        }
        let to = req.dir.join(e.file_name());
        std::fs::rename(e.path(), &to).map_err(|err| BenchError::Directory {
            path: to.clone(),
            message: format!("cannot move the checkout here: {err}"),
        })?;
    }
    drop(clone);
    let mut record = DatasetRecord {
        schema: RECORD_SCHEMA.into(),
        name: spec.name.into(),
        repo: repo.clone(),
        subdir: spec.subdir.into(),
        commit: commit.clone(),
        requested_rev: rev,
        lean_toolchain,
        mathlib_rev,
        downloaded: crate::util::rfc3339(SystemTime::now()),
        answers: None,
    };
    let mut answers = 0;
    if spec.answers == AnswerSource::CommentAfterHole {
        let mut key = AnswerKey {
            schema: Some(crate::answers::ANSWERS_SCHEMA.into()),
            source: Some(format!(
                "{} {} @ {commit}: the comment after each `:= sorry` definition",
                repo, spec.subdir
            )),
            ..Default::default()
        };
        for (rel, text) in lean_files(&req.dir) {
            key.extract_comments(&rel, &text);
        }
        answers = key.answers.len();
        if answers > 0 {
            key.save(&req.dir.join(ANSWERS_FILE))?;
            record.answers = Some(ANSWERS_FILE.into());
        }
    }
    record.write(&req.dir)?;
    Ok(Downloaded {
        tasks: crate::tasks::count_tasks(&req.dir),
        record,
        dir: req.dir.clone(),
        answers,
        reused: false,
    })
}

/// Every `.lean` file under `dir` (hidden entries skipped), relative path → text.
fn lean_files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(entries) = atp_lean::walk::walk(dir) else {
        return out;
    };
    for e in entries {
        if e.kind == atp_lean::walk::EntryKind::File && e.rel.ends_with(".lean") {
            if let Ok(t) = std::fs::read_to_string(&e.path) {
                out.push((e.rel, t));
            }
        }
    }
    out
}

/// The record of atp's bundled examples written to `dir` by the CLI.
pub fn examples_record(atp_version: &str) -> DatasetRecord {
    let pins = atp_image::LeanPins::builtin();
    DatasetRecord {
        schema: RECORD_SCHEMA.into(),
        name: "examples".into(),
        repo: "bundled".into(),
        subdir: String::new(),
        commit: format!("atp-{atp_version}"),
        requested_rev: format!("atp-{atp_version}"),
        lean_toolchain: pins.lean_toolchain,
        mathlib_rev: Some(pins.mathlib_rev),
        downloaded: crate::util::rfc3339(SystemTime::now()),
        answers: None,
    }
}
