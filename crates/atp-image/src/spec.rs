//! The image spec: data model, TOML loading and validation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, SpecError};
use crate::lock::{tools_label, ImageLock};
use crate::pins::{LeanPins, Skeleton};

/// File name of the default spec inside `images/`.
pub const DEFAULT_SPEC_FILE: &str = "open-atp.toml";
/// Default skeleton directory, relative to the spec file.
pub const DEFAULT_SKELETON_DIR: &str = "lean";
/// Tag used when a spec names none.
pub const DEFAULT_TAG: &str = "open-atp:latest";

/// One instruction of the image recipe, in order.
///
/// Every step runs as root; tool locations are global, so the same layout serves Docker and
/// Modal (which ignores `USER`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Set environment variables (literal values: Modal does not expand `${VAR}`).
    Env(BTreeMap<String, String>),
    /// Run shell commands (`/bin/sh -c`), joined with `&&`; one line each.
    Run(Commands),
    /// Change the working directory (absolute path).
    Workdir(String),
    /// Place the Lean skeleton's files into this absolute directory.
    CopySkeleton(String),
    /// Accepted only as `root` (or `0`): atp images run everything as root.
    User(String),
    /// Install global npm packages: `name`, `name@1.2.3` or `name@dist-tag` each (rendered as
    /// one `npm install -g` at the locked versions, then `npm cache clean --force`).
    Npm(Vec<String>),
    /// Install Python applications with pipx: `name` or `name==1.2.3` each (one
    /// `pipx install name==VERSION` per entry, at the locked versions).
    Pipx(Vec<String>),
    /// Install elan (no default toolchain) from its GitHub release `X.Y.Z`.
    Elan(String),
    /// Place a directory of the spec (its regular, non-hidden files, recursively) at an
    /// absolute path — e.g. the Lean source of atp's checker, built by a later `run` step.
    Copy(CopyDir),
}

/// The directories the built-in spec copies, compiled in (`images/checker/`: atp's checker).
const BUILTIN_COPY_DIRS: &[(&str, &[(&str, &str)])] = &[(
    "checker",
    &[
        (
            "AtpCheck.lean",
            include_str!("../../../images/checker/AtpCheck.lean"),
        ),
        (
            "lakefile.toml",
            include_str!("../../../images/checker/lakefile.toml"),
        ),
    ],
)];

/// A directory copied into the image by a [`Step::Copy`].
///
/// Its identity (for [`ImageSpec::spec_hash`]) is `from`, `to` and each file's sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyDir {
    /// The directory, relative to the spec file (`checker`).
    pub from: String,
    /// Absolute destination directory in the image.
    pub to: String,
    /// `relative path → contents`, sorted.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Serialize for CopyDir {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Canonical<'a> {
            from: &'a str,
            to: &'a str,
            files: BTreeMap<&'a str, String>,
        }
        Canonical {
            from: &self.from,
            to: &self.to,
            files: self
                .files
                .iter()
                .map(|(k, v)| (k.as_str(), hex::encode(Sha256::digest(v))))
                .collect(),
        }
        .serialize(s)
    }
}

impl CopyDir {
    /// Read `dir/from`: every regular file not under a hidden entry (`.lake` build output and
    /// the like are never copied), at any depth. Links are refused.
    pub fn read(dir: &Path, from: &str, to: &str) -> Result<Self> {
        let root = dir.join(from);
        let mut files = BTreeMap::new();
        fn walk(
            base: &Path,
            rel: &str,
            files: &mut BTreeMap<String, Vec<u8>>,
        ) -> std::result::Result<(), (PathBuf, std::io::Error)> {
            let here = base.join(rel);
            let mut entries: Vec<_> = std::fs::read_dir(&here)
                .map_err(|e| (here.clone(), e))?
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| (here.clone(), e))?;
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let child = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                let ty = e.file_type().map_err(|err| (e.path(), err))?;
                if ty.is_dir() {
                    walk(base, &child, files)?;
                } else if ty.is_file() {
                    let bytes = std::fs::read(e.path()).map_err(|err| (e.path(), err))?;
                    files.insert(child, bytes);
                } else {
                    return Err((
                        e.path(),
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidInput,
                            "a link or special file cannot be copied into an image; replace it by a regular file",
                        ),
                    ));
                }
            }
            Ok(())
        }
        walk(&root, "", &mut files).map_err(|(path, error)| SpecError::Read { path, error })?;
        Ok(CopyDir {
            from: from.to_string(),
            to: to.to_string(),
            files,
        })
    }
}

impl Step {
    /// The TOML key naming this step kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Env(_) => "env",
            Step::Run(_) => "run",
            Step::Workdir(_) => "workdir",
            Step::CopySkeleton(_) => "copy_skeleton",
            Step::User(_) => "user",
            Step::Npm(_) => "npm",
            Step::Pipx(_) => "pipx",
            Step::Elan(_) => "elan",
            Step::Copy(_) => "copy",
        }
    }
}

/// Shell commands of a `run` step: one string or a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Commands {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for Commands {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Commands;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a command string or a list of command strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Commands, E> {
                Ok(Commands::One(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Commands, A::Error> {
                let mut commands = Vec::new();
                while let Some(c) = seq.next_element::<String>()? {
                    commands.push(c);
                }
                Ok(Commands::Many(commands))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Commands {
    /// The commands in order.
    pub fn as_slice(&self) -> &[String] {
        match self {
            Commands::One(c) => std::slice::from_ref(c),
            Commands::Many(cs) => cs,
        }
    }
}

impl From<&str> for Commands {
    fn from(c: &str) -> Self {
        Commands::One(c.to_string())
    }
}

/// The spec file as written (`images/*.toml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    #[serde(default)]
    tag: Option<String>,
    base: String,
    #[serde(default)]
    skeleton: Option<PathBuf>,
    #[serde(default)]
    pins: Option<PinAssertions>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default, rename = "step")]
    steps: Vec<RawStep>,
}

/// One `[[step]]` table as written: exactly one of its keys must be set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    env: Option<BTreeMap<String, String>>,
    run: Option<Commands>,
    workdir: Option<String>,
    copy_skeleton: Option<String>,
    user: Option<String>,
    npm: Option<Vec<String>>,
    pipx: Option<Vec<String>>,
    elan: Option<String>,
    copy: Option<RawCopy>,
}

/// `copy = { from = "dir", to = "/abs" }` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCopy {
    from: String,
    to: String,
}

impl RawStep {
    fn into_step(
        self,
        origin: &str,
        index: usize,
        read_copy: &dyn Fn(&str, &str) -> Result<CopyDir>,
    ) -> Result<Step> {
        let copy = match self.copy {
            Some(c) => {
                if c.from.is_empty()
                    || c.from.starts_with('/')
                    || c.from.split('/').any(|p| p == ".." || p.is_empty())
                {
                    return Err(SpecError::BadStep {
                        origin: origin.to_string(),
                        step: index,
                        kind: "copy",
                        message: format!(
                            "from = {:?} must be a directory relative to the spec, without `..`",
                            c.from
                        ),
                    });
                }
                Some(Step::Copy(read_copy(&c.from, &c.to)?))
            }
            None => None,
        };
        let mut steps: Vec<Step> = [
            self.env.map(Step::Env),
            self.run.map(Step::Run),
            self.workdir.map(Step::Workdir),
            self.copy_skeleton.map(Step::CopySkeleton),
            self.user.map(Step::User),
            self.npm.map(Step::Npm),
            self.pipx.map(Step::Pipx),
            self.elan.map(Step::Elan),
            copy,
        ]
        .into_iter()
        .flatten()
        .collect();
        if steps.len() == 1 {
            if let Some(step) = steps.pop() {
                return Ok(step);
            }
        }
        let kinds: Vec<&str> = steps.iter().map(Step::kind).collect();
        Err(SpecError::BadStep {
            origin: origin.to_string(),
            step: index,
            kind: "step",
            message: format!(
                "holds {} instructions ({}); write exactly one of env, run, workdir, \
                 copy_skeleton, copy, user, npm, pipx, elan per [[step]]",
                kinds.len(),
                if kinds.is_empty() {
                    "none".to_string()
                } else {
                    kinds.join(", ")
                }
            ),
        })
    }
}

/// Optional restatement of the pins in a spec; must equal the skeleton's (checked, never used).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinAssertions {
    pub lean_toolchain: Option<String>,
    pub mathlib_rev: Option<String>,
}

/// A sandbox image: base, ordered steps, labels, the Lean skeleton that fixes its pins, and
/// optionally the lock that fixes its tool versions.
///
/// Invariant (checked by [`ImageSpec::validate`], which every renderer calls): the base is set,
/// every step leaves a usable root shell, the skeleton is copied at least once, no value in
/// the spec contradicts the skeleton's pins, every `npm`/`pipx`/`elan` entry can be locked, and
/// an attached lock was made from the spec as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// Where the spec came from, for messages (a path, or a name for in-code specs).
    pub origin: String,
    /// Default tag for builds.
    pub tag: String,
    /// Registry reference of the base image.
    pub base: String,
    pub steps: Vec<Step>,
    /// User labels (keys under `atp.` are reserved for the computed pin labels).
    pub labels: BTreeMap<String, String>,
    pub skeleton: Skeleton,
    /// Pins restated by the spec, if any.
    pub pin_assertions: PinAssertions,
    /// The attached lock ([`ImageSpec::with_lock`]); not part of the spec hash.
    pub(crate) lock: Option<ImageLock>,
}

impl ImageSpec {
    /// An in-code spec with no steps.
    pub fn new(origin: impl Into<String>, base: impl Into<String>, skeleton: Skeleton) -> Self {
        Self {
            origin: origin.into(),
            tag: DEFAULT_TAG.to_string(),
            base: base.into(),
            steps: Vec::new(),
            labels: BTreeMap::new(),
            skeleton,
            pin_assertions: PinAssertions::default(),
            lock: None,
        }
    }

    /// Append a step.
    pub fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// Add a user label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Load and validate a spec file; its skeleton is `skeleton = "<dir>"` relative to the file
    /// (default `lean/`).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|error| SpecError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let file: SpecFile = toml::from_str(&text).map_err(|e| SpecError::Parse {
            path: path.to_path_buf(),
            message: describe_toml_error(&text, &e),
        })?;
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        let skeleton_dir = dir.join(
            file.skeleton
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SKELETON_DIR)),
        );
        if !skeleton_dir.is_dir() {
            return Err(SpecError::Read {
                path: skeleton_dir,
                error: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the Lean skeleton directory does not exist (set `skeleton` in the spec)",
                ),
            });
        }
        let spec_dir = dir.to_path_buf();
        Self::from_file(
            file,
            path.display().to_string(),
            Skeleton::from_dir(&skeleton_dir)?,
            &|from: &str, to: &str| CopyDir::read(&spec_dir, from, to),
        )
    }

    /// atp's default spec (`images/open-atp.toml` with `images/lean/`), compiled in — what
    /// `atp prove` builds when the image is missing and no checkout is at hand. The committed
    /// lock (`images/open-atp.lock`) is compiled in too and attached while it is fresh (the
    /// lock's own policy: a stale lock is not used), so the built-in image is the locked one.
    pub fn builtin() -> Result<Self> {
        let text = include_str!("../../../images/open-atp.toml");
        let origin = "atp's built-in spec (images/open-atp.toml)";
        let file: SpecFile = toml::from_str(text).map_err(|e| SpecError::Parse {
            path: PathBuf::from(origin),
            message: describe_toml_error(text, &e),
        })?;
        let spec = Self::from_file(
            file,
            origin.to_string(),
            Skeleton::builtin(),
            &|from, to| {
                let files = BUILTIN_COPY_DIRS
                    .iter()
                    .find(|(dir, _)| *dir == from)
                    .map(|(_, files)| files)
                    .ok_or_else(|| SpecError::Read {
                        path: PathBuf::from(from),
                        error: std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "the built-in spec copies a directory atp does not carry",
                        ),
                    })?;
                Ok(CopyDir {
                    from: from.to_string(),
                    to: to.to_string(),
                    files: files
                        .iter()
                        .map(|(n, t)| (n.to_string(), t.as_bytes().to_vec()))
                        .collect(),
                })
            },
        )?;
        let lock = ImageLock::parse(
            include_str!("../../../images/open-atp.lock"),
            "atp's built-in lock (images/open-atp.lock)",
        )?;
        match spec.clone().with_lock(lock) {
            Ok(locked) => Ok(locked),
            Err(SpecError::StaleLock { .. }) => Ok(spec),
            Err(e) => Err(e),
        }
    }

    fn from_file(
        file: SpecFile,
        origin: String,
        skeleton: Skeleton,
        read_copy: &dyn Fn(&str, &str) -> Result<CopyDir>,
    ) -> Result<Self> {
        let steps = file
            .steps
            .into_iter()
            .enumerate()
            .map(|(i, raw)| raw.into_step(&origin, i + 1, read_copy))
            .collect::<Result<Vec<_>>>()?;
        let spec = Self {
            origin,
            tag: file.tag.unwrap_or_else(|| DEFAULT_TAG.to_string()),
            base: file.base,
            steps,
            labels: file.labels,
            skeleton,
            pin_assertions: file.pins.unwrap_or_default(),
            lock: None,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// The same spec with its skeleton pinned to `lean_toolchain` / `mathlib_rev` for one build
    /// ([`Skeleton::with_pins`]); a `[pins]` restatement is replaced by the new pins. The image's
    /// labels then carry the overridden pins (and a different spec hash), as always. Any lock is
    /// dropped: it was made for the original pins.
    pub fn with_pins(&self, lean_toolchain: &str, mathlib_rev: &str) -> Result<Self> {
        let skeleton = self.skeleton.with_pins(lean_toolchain, mathlib_rev)?;
        let pins = skeleton.pins()?;
        let spec = Self {
            skeleton,
            pin_assertions: PinAssertions {
                lean_toolchain: self
                    .pin_assertions
                    .lean_toolchain
                    .as_ref()
                    .map(|_| pins.lean_toolchain.clone()),
                mathlib_rev: self
                    .pin_assertions
                    .mathlib_rev
                    .as_ref()
                    .map(|_| pins.mathlib_rev.clone()),
            },
            // The lock fixes the skeleton's own pins (its spec hash covers them): a build with
            // overridden pins is unlocked.
            lock: None,
            ..self.clone()
        };
        spec.validate()?;
        Ok(spec)
    }

    /// The pins of the skeleton this spec bakes in.
    pub fn pins(&self) -> Result<LeanPins> {
        self.skeleton.pins()
    }

    /// sha256 (hex) of the spec's canonical form: base, steps, user labels and the skeleton's
    /// files. Independent of the spec's path, tag and TOML layout.
    pub fn spec_hash(&self) -> Result<String> {
        #[derive(Serialize)]
        struct Canonical<'a> {
            format: &'static str,
            base: &'a str,
            steps: &'a [Step],
            labels: &'a BTreeMap<String, String>,
            skeleton: BTreeMap<&'a str, String>,
        }
        let canonical = Canonical {
            format: "atp-image/1",
            base: &self.base,
            steps: &self.steps,
            labels: &self.labels,
            skeleton: self
                .skeleton
                .files()
                .iter()
                .map(|(name, bytes)| (name.as_str(), hex::encode(Sha256::digest(bytes))))
                .collect(),
        };
        let bytes = serde_json::to_vec(&canonical).map_err(|e| SpecError::Parse {
            path: PathBuf::from(&self.origin),
            message: format!("cannot serialise the spec: {e}"),
        })?;
        Ok(hex::encode(Sha256::digest(bytes)))
    }

    /// The labels the image carries: user labels plus `atp.lean-toolchain`, `atp.mathlib-rev`,
    /// `atp.spec-hash`, and with a lock attached `atp.lock-hash` and `atp.tools`.
    pub fn image_labels(&self) -> Result<BTreeMap<String, String>> {
        let mut labels = self.labels.clone();
        let mut env = self.pin_env()?;
        for (var, label) in crate::PIN_ENV_LABELS {
            if let Some(value) = env.remove(var) {
                labels.insert(label.to_string(), value);
            }
        }
        Ok(labels)
    }

    /// The environment variables recording the pins inside the image (`ATP_LEAN_TOOLCHAIN`,
    /// `ATP_MATHLIB_REV`, `ATP_SPEC_HASH`; with a lock `ATP_LOCK_HASH` and `ATP_TOOLS`).
    pub fn pin_env(&self) -> Result<BTreeMap<String, String>> {
        let pins = self.pins()?;
        let mut env = BTreeMap::from([
            (crate::ENV_LEAN_TOOLCHAIN.into(), pins.lean_toolchain),
            (crate::ENV_MATHLIB_REV.into(), pins.mathlib_rev),
            (crate::ENV_SPEC_HASH.into(), self.spec_hash()?),
        ]);
        if let Some(lock) = &self.lock {
            env.insert(crate::ENV_LOCK_HASH.into(), lock.lock_hash().to_string());
            env.insert(crate::ENV_TOOLS.into(), tools_label(lock.tools()));
        }
        Ok(env)
    }

    /// Check the invariant; see the type's docs.
    pub fn validate(&self) -> Result<()> {
        let origin = || self.origin.clone();
        if self.base.trim().is_empty() {
            return Err(SpecError::EmptyBase { origin: origin() });
        }
        if self.base.contains(char::is_whitespace) {
            return Err(SpecError::BadStep {
                origin: origin(),
                step: 0,
                kind: "base",
                message: format!("{:?} is not an image reference", self.base),
            });
        }
        let pins = self.pins()?;
        self.check_assertions(&pins)?;
        for (key, value) in &self.labels {
            let message = if key.starts_with("atp.") {
                Some("keys under `atp.` are computed from the skeleton; remove it".to_string())
            } else if key.is_empty() || key.contains(['"', '\n', '=']) || value.contains('\n') {
                Some("must be a non-empty single-line key without `\"` or `=`".to_string())
            } else {
                None
            };
            if let Some(message) = message {
                return Err(SpecError::BadLabel {
                    origin: origin(),
                    key: key.clone(),
                    message,
                });
            }
        }
        let mut copied = false;
        for (i, step) in self.steps.iter().enumerate() {
            let bad = |message: String| SpecError::BadStep {
                origin: origin(),
                step: i + 1,
                kind: step.kind(),
                message,
            };
            match step {
                Step::Env(vars) => {
                    if vars.is_empty() {
                        return Err(bad("sets no variable; remove the step".into()));
                    }
                    for (k, v) in vars {
                        check_env(k, v).map_err(&bad)?;
                    }
                }
                Step::Run(commands) => {
                    if commands.as_slice().is_empty() {
                        return Err(bad("has no command; remove the step".into()));
                    }
                    for command in commands.as_slice() {
                        check_command(command).map_err(&bad)?;
                    }
                }
                Step::Workdir(dir) | Step::CopySkeleton(dir) => {
                    check_abs_path(dir).map_err(&bad)?;
                    copied |= matches!(step, Step::CopySkeleton(_));
                }
                Step::User(user) => {
                    if user != "root" && user != "0" {
                        return Err(bad(format!(
                            "`{user}`: atp images run everything as root with global tool \
                             locations (Modal ignores USER); remove the step"
                        )));
                    }
                }
                Step::Npm(entries) | Step::Pipx(entries) => {
                    if entries.is_empty() {
                        return Err(bad("installs nothing; remove the step".into()));
                    }
                }
                // Checked with every other entry by `requirements` below.
                Step::Elan(_) => {}
                Step::Copy(copy) => {
                    check_abs_path(&copy.to).map_err(&bad)?;
                    if copy.files.is_empty() {
                        return Err(bad(format!(
                            "`{}` holds no file to copy; remove the step",
                            copy.from
                        )));
                    }
                }
            }
            self.check_step_pins(i + 1, step, &pins)?;
        }
        if !copied {
            return Err(SpecError::NoSkeletonCopy { origin: origin() });
        }
        self.requirements()?;
        if let Some(lock) = &self.lock {
            let lock_path = crate::lock_path_for(Path::new(&self.origin));
            lock.check_against(self, &lock_path.display().to_string())?;
        }
        Ok(())
    }

    fn check_assertions(&self, pins: &LeanPins) -> Result<()> {
        let checks = [
            (
                "lean_toolchain",
                &self.pin_assertions.lean_toolchain,
                &pins.lean_toolchain,
            ),
            (
                "mathlib_rev",
                &self.pin_assertions.mathlib_rev,
                &pins.mathlib_rev,
            ),
        ];
        for (what, stated, actual) in checks {
            if let Some(stated) = stated {
                if stated.trim() != actual {
                    return Err(SpecError::PinMismatch {
                        origin: self.origin.clone(),
                        location: format!("[pins] {what}"),
                        what: if what == "lean_toolchain" {
                            "Lean toolchain"
                        } else {
                            "Mathlib revision"
                        },
                        found: stated.clone(),
                        expected: actual.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// A step that names a Lean toolchain (`leanprover/lean4:...`) must name the pinned one.
    fn check_step_pins(&self, index: usize, step: &Step, pins: &LeanPins) -> Result<()> {
        let texts: Vec<&str> = match step {
            Step::Env(vars) => vars.values().map(String::as_str).collect(),
            Step::Run(commands) => commands.as_slice().iter().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        for text in texts {
            for found in toolchain_mentions(text) {
                if found != pins.lean_toolchain {
                    return Err(SpecError::PinMismatch {
                        origin: self.origin.clone(),
                        location: format!("step {index} ({})", step.kind()),
                        what: "Lean toolchain",
                        found,
                        expected: pins.lean_toolchain.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Every `leanprover/lean4:<version>` written in `text`.
fn toolchain_mentions(text: &str) -> Vec<String> {
    const PREFIX: &str = "leanprover/lean4:";
    text.match_indices(PREFIX)
        .map(|(at, _)| {
            let rest = &text[at + PREFIX.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+')))
                .unwrap_or(rest.len());
            format!("{PREFIX}{}", &rest[..end])
        })
        .collect()
}

fn check_env(key: &str, value: &str) -> std::result::Result<(), String> {
    let key_ok = !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !key_ok {
        return Err(format!("{key:?} is not a valid variable name"));
    }
    if value.contains('$') {
        return Err(format!(
            "{key}={value:?} refers to a variable; write the literal value (Modal does not expand `${{VAR}}`)"
        ));
    }
    if value.contains(['\n', '\r']) {
        return Err(format!("{key} has a multi-line value; use one line"));
    }
    if key == "PATH" {
        let dirs: Vec<&str> = value.split(':').collect();
        for needed in ["/usr/bin", "/bin"] {
            if !dirs.contains(&needed) {
                return Err(format!(
                    "PATH={value:?} lacks {needed}, so no shell could be found after this step; \
                     keep /usr/local/bin:/usr/bin:/bin in it"
                ));
            }
        }
    }
    Ok(())
}

fn check_abs_path(dir: &str) -> std::result::Result<(), String> {
    if !dir.starts_with('/') || dir.contains(['\n', '"', '\\']) || dir.split('/').any(|c| c == "..")
    {
        return Err(format!(
            "{dir:?} must be an absolute path without `..`, quotes or backslashes"
        ));
    }
    Ok(())
}

/// Paths whose removal leaves no shell: `/bin/sh` is what `RUN` and every exec start.
const VITAL_PATHS: &[&str] = &[
    "/",
    "/*",
    "/bin",
    "/bin/",
    "/bin/*",
    "/bin/sh",
    "/bin/bash",
    "/usr",
    "/usr/",
    "/usr/*",
    "/usr/bin",
    "/usr/bin/",
    "/usr/bin/*",
    "/usr/bin/sh",
    "/usr/bin/bash",
    "/lib",
    "/lib/",
    "/lib/*",
    "/lib64",
    "/usr/lib",
    "/usr/lib/",
    "/usr/lib/*",
];

fn check_command(command: &str) -> std::result::Result<(), String> {
    if command.trim().is_empty() {
        return Err("has an empty command".into());
    }
    if command.contains(['\n', '\r']) {
        return Err(
            "a command spans several lines; use one line per command (a list of commands)".into(),
        );
    }
    if command.trim_end().ends_with('\\') {
        return Err(format!(
            "`{command}` ends with a line continuation; split it into a list of commands"
        ));
    }
    // `rm` (or `unlink`) of a vital path: every later step and every exec needs `/bin/sh`.
    for segment in command.split(['&', ';', '|']) {
        let words: Vec<&str> = segment.split_whitespace().collect();
        let Some(pos) = words.iter().position(|w| matches!(*w, "rm" | "unlink")) else {
            continue;
        };
        for target in &words[pos + 1..] {
            let target = target.trim_matches(|c| c == '\'' || c == '"');
            if VITAL_PATHS.contains(&target) {
                return Err(format!(
                    "`{}` removes {target}; no command could run afterwards (RUN and every exec \
                     start /bin/sh); remove it",
                    segment.trim()
                ));
            }
        }
    }
    Ok(())
}

/// `line L, column C: <message>` for a TOML error, plus the offending line.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', " ");
    let Some(span) = e.span() else {
        return message;
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    let source_line = text.lines().nth(line - 1).unwrap_or("").trim();
    format!("line {line}, column {column}: {message} (at `{source_line}`)")
}
