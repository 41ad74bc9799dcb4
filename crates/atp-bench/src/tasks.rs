//! Task sets: the tasks of a dataset directory.
//!
//! Rules (one walk, [`discover`]):
//! - the directory itself is a lake project (a lakefile and `lean-toolchain`) → one task;
//! - a loose `.lean` file holding a `sorry` → a task named by its stem, staged into the image
//!   skeleton (with the image's pins when they differ from atp's built-in skeleton);
//! - a sub-directory that is a lake project → one task named by the directory; any other
//!   sub-directory is walked, its tasks named `sub/Stem`;
//! - hidden entries (`.git`, `.atp-dataset.toml`), links, empty files and directories, and
//!   `.lean` files without a `sorry` (nothing to prove, e.g. an index importing the others) are
//!   skipped;
//! - `--tasks GLOB` (repeatable) keeps the tasks whose name matches one of the globs.
//!
//! Invariant: task names are unique, non-empty, relative paths without `.`/`..` components and
//! never collide with the reports atp writes at the top of the output directory.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use atp_image::{LeanPins, Skeleton};
use atp_lean::{stage_files, LeanProject};
use atp_prover::ProofTask;

use crate::error::BenchError;

/// Names atp writes at the top of a benchmark's output directory (a task may not use them).
pub const RESERVED: &[&str] = &[
    "run.toml",
    "plan.json",
    "results.jsonl",
    "results.csv",
    "report.md",
    "report.html",
    "atp.jsonl",
];

/// One task of a set.
#[derive(Debug, Clone)]
pub struct BenchTask {
    /// Unique name; the cell directories live under `OUT/<name>/`.
    pub name: String,
    pub task: ProofTask,
    /// Where it came from (a file or a directory of the dataset).
    pub source: PathBuf,
}

/// What discovery skipped, for the plan summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Hidden entries, links, special files, empty files or directories.
    pub ignored: usize,
    /// `.lean` files without a `sorry`.
    pub nothing_to_prove: usize,
    /// Tasks the `--tasks` globs left out.
    pub filtered: usize,
}

/// A lake project root: a lakefile and a toolchain file.
fn is_project(dir: &Path) -> bool {
    (dir.join("lakefile.toml").is_file() || dir.join("lakefile.lean").is_file())
        && dir.join("lean-toolchain").is_file()
}

#[derive(Debug)]
enum Found {
    File(PathBuf),
    Project(PathBuf),
}

fn walk(
    dir: &Path,
    prefix: &str,
    out: &mut Vec<(String, Found)>,
    skipped: &mut Skipped,
) -> Result<(), BenchError> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| BenchError::Directory {
            path: dir.to_path_buf(),
            message: format!("cannot read the task directory: {e}"),
        })?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            skipped.ignored += 1;
            continue;
        };
        if name.starts_with('.') || meta.file_type().is_symlink() {
            skipped.ignored += 1;
            continue;
        }
        if meta.is_file() {
            let Some(stem) = name.strip_suffix(".lean") else {
                continue; // other files (README, answers.toml) are not tasks
            };
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.trim().is_empty() || stem.is_empty() {
                skipped.ignored += 1;
            } else if !atp_lean::lexer::contains_sorry(&text) {
                skipped.nothing_to_prove += 1;
            } else {
                out.push((format!("{prefix}{stem}"), Found::File(path)));
            }
        } else if meta.is_dir() {
            let empty = std::fs::read_dir(&path)
                .map(|mut d| d.next().is_none())
                .unwrap_or(true);
            if empty {
                skipped.ignored += 1;
            } else if is_project(&path) {
                out.push((format!("{prefix}{name}"), Found::Project(path)));
            } else {
                walk(&path, &format!("{prefix}{name}/"), out, skipped)?;
            }
        } else {
            skipped.ignored += 1;
        }
    }
    Ok(())
}

/// Count the tasks of `dir` (no filters, nothing staged).
pub fn count_tasks(dir: &Path) -> usize {
    if is_project(dir) {
        return 1;
    }
    let mut out = Vec::new();
    let mut skipped = Skipped::default();
    match walk(dir, "", &mut out, &mut skipped) {
        Ok(()) => out.len(),
        Err(_) => 0,
    }
}

/// The tasks of `dir`, filtered by `globs` (none: all), loose files staged under `staging`
/// with `pins` (the image's) written into their skeleton.
pub fn discover(
    dir: &Path,
    globs: &[String],
    staging: &Path,
    pins: &LeanPins,
) -> Result<(Vec<BenchTask>, Skipped), BenchError> {
    if std::fs::symlink_metadata(dir).is_err() {
        return Err(BenchError::Directory {
            path: dir.to_path_buf(),
            message:
                "no such directory — pass a dataset directory (`atp download NAME DIR` fetches one)"
                    .into(),
        });
    }
    if !dir.is_dir() {
        return Err(BenchError::Directory {
            path: dir.to_path_buf(),
            message: "not a directory — pass a dataset directory of .lean files or lake projects"
                .into(),
        });
    }
    let mut found = Vec::new();
    let mut skipped = Skipped::default();
    if is_project(dir) {
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "project".into());
        found.push((name, Found::Project(dir.to_path_buf())));
    } else {
        walk(dir, "", &mut found, &mut skipped)?;
    }
    let before = found.len();
    if !globs.is_empty() {
        found.retain(|(n, _)| globs.iter().any(|g| crate::util::glob_match(g, n)));
    }
    skipped.filtered = before - found.len();
    if found.is_empty() {
        let filters = if globs.is_empty() {
            String::new()
        } else {
            format!(" matching {}", globs.join(" or "))
        };
        return Err(BenchError::NoTasks {
            dir: dir.to_path_buf(),
            filters,
        });
    }
    let builtin = LeanPins::builtin();
    let skeleton = if *pins == builtin {
        None
    } else {
        Some(
            Skeleton::builtin()
                .with_pins(&pins.lean_toolchain, &pins.mathlib_rev)
                .map_err(|e| BenchError::Invalid(e.to_string()))?,
        )
    };
    let mut names = BTreeSet::new();
    let mut tasks = Vec::new();
    for (i, (name, f)) in found.into_iter().enumerate() {
        if RESERVED.contains(&name.as_str()) || name.split('/').any(|c| c == "." || c == "..") {
            return Err(BenchError::Invalid(format!(
                "{}: task name `{name}` is reserved for atp's reports — rename the file",
                dir.display()
            )));
        }
        if !names.insert(name.clone()) {
            return Err(BenchError::Invalid(format!(
                "{}: two tasks are named `{name}` (a file and a project?) — rename one",
                dir.display()
            )));
        }
        let (task, source) = match f {
            Found::Project(p) => {
                let project = LeanProject::open(&p).map_err(|e| BenchError::bad_file(&p, e))?;
                (ProofTask::new(project), p)
            }
            Found::File(p) => {
                let dest = staging.join(format!("{i:05}"));
                let project = stage_files(std::slice::from_ref(&p), &dest)
                    .map_err(|e| BenchError::bad_file(&p, e))?;
                if let Some(s) = &skeleton {
                    for (file, bytes) in s.files() {
                        std::fs::write(dest.join(file), bytes)
                            .map_err(|e| BenchError::output(dest.join(file), e))?;
                    }
                }
                (ProofTask::new(project), p)
            }
        };
        let mut task = task;
        task.name = name.clone();
        tasks.push(BenchTask { name, task, source });
    }
    Ok((tasks, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, s: &str) {
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, s).expect("write");
    }

    fn dataset() -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tmp");
        let r = d.path();
        write(&r.join("A.lean"), "theorem a : True := sorry\n");
        write(&r.join("B.lean"), "theorem b : True := by sorry\n");
        write(&r.join("Index.lean"), "import A\n");
        write(&r.join("Empty.lean"), "\n");
        write(&r.join(".hidden.lean"), "theorem h : True := sorry\n");
        write(&r.join("README.md"), "hi");
        write(&r.join(".atp-dataset.toml"), "x");
        write(&r.join("Test/c.lean"), "theorem c : True := sorry\n");
        std::fs::create_dir_all(r.join("EmptyDir")).expect("mkdir");
        write(&r.join("Proj/lakefile.toml"), "name = \"p\"\n");
        write(&r.join("Proj/lean-toolchain"), "leanprover/lean4:v4.28.0\n");
        write(&r.join("Proj/P.lean"), "theorem p : True := sorry\n");
        d
    }

    #[test]
    fn loose_files_projects_and_subdirectories_are_tasks() {
        let d = dataset();
        let st = tempfile::tempdir().expect("tmp");
        let (tasks, skipped) =
            discover(d.path(), &[], st.path(), &LeanPins::builtin()).expect("tasks");
        let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["A", "B", "Proj", "Test/c"]);
        assert_eq!(skipped.nothing_to_prove, 1);
        assert_eq!(skipped.ignored, 4, "{skipped:?}"); // .hidden, .atp-dataset, Empty.lean, EmptyDir
        assert_eq!(tasks[0].task.name, "A");
        assert!(tasks[0].task.project.root().join("lakefile.toml").is_file());
        assert_eq!(tasks[2].task.project.root(), d.path().join("Proj"));
        assert_eq!(count_tasks(d.path()), 4);
    }

    #[test]
    fn globs_filter_and_no_match_is_one_line() {
        let d = dataset();
        let st = tempfile::tempdir().expect("tmp");
        let (tasks, skipped) = discover(
            d.path(),
            &["Test/*".into(), "A".into()],
            st.path(),
            &LeanPins::builtin(),
        )
        .expect("tasks");
        assert_eq!(tasks.len(), 2);
        assert_eq!(skipped.filtered, 2);
        let e = discover(d.path(), &["zzz*".into()], st.path(), &LeanPins::builtin())
            .expect_err("none");
        assert!(
            e.to_string().contains("no tasks found matching zzz*"),
            "{e}"
        );
    }

    #[test]
    fn staged_files_carry_the_image_pins() {
        let d = dataset();
        let st = tempfile::tempdir().expect("tmp");
        let pins = LeanPins {
            lean_toolchain: "leanprover/lean4:v4.27.0".into(),
            mathlib_rev: "v4.27.0".into(),
        };
        let (tasks, _) = discover(d.path(), &["A".into()], st.path(), &pins).expect("tasks");
        let p = &tasks[0].task.project;
        assert_eq!(
            p.lean_toolchain().expect("toolchain"),
            "leanprover/lean4:v4.27.0"
        );
        let lakefile = std::fs::read_to_string(p.root().join("lakefile.toml")).expect("lakefile");
        assert!(lakefile.contains("v4.27.0"), "{lakefile}");
    }
}
