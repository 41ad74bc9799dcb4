//! The image lock: the exact version of every tool a spec installs, beside the spec.
//!
//! A spec names what it installs as data (`npm`, `pipx`, `elan` steps, see [`Requirement`]);
//! `atp image lock` resolves each requirement against the registries (crate `atp-lock`, which
//! does the HTTP; this crate stays pure) and writes an [`ImageLock`] as TOML next to the spec
//! (`images/open-atp.lock` for `images/open-atp.toml`). A spec with a lock attached
//! ([`ImageSpec::with_lock`]) renders exactly the locked versions and labels the image with the
//! lock's hash and its tool versions.
//!
//! Invariants of an [`ImageLock`]: its `lock_hash` is the sha256 of its canonical content (so a
//! hand edit is detected on load); it has one entry per requirement of the spec it was made
//! from, in the spec's order, and a version given exactly in the spec is locked as given.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, SpecError};
use crate::pins::LeanPins;
use crate::spec::ImageSpec;
use crate::tools::{elan_release_url, Requirement, ToolKind, Wanted};

/// The `format` of lock files this crate reads and writes.
pub const LOCK_FORMAT: &str = "atp-lock/1";
/// Extension of a lock file; the lock of `x.toml` is `x.lock` in the same directory.
pub const LOCK_EXTENSION: &str = "lock";

/// The lock file that belongs to the spec at `spec_path` (same directory and stem, `.lock`).
pub fn lock_path_for(spec_path: &Path) -> PathBuf {
    spec_path.with_extension(LOCK_EXTENSION)
}

/// Where a locked version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockSource {
    /// Written exactly in the spec (and, for npm/PyPI, confirmed on the registry).
    Spec,
    /// Resolved on the registry (latest release or a dist-tag).
    Registry,
}

/// One locked tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedTool {
    pub kind: ToolKind,
    pub name: String,
    /// What the spec asked for: `latest`, an exact version or a dist-tag.
    pub requested: String,
    /// The exact version installed.
    pub version: String,
    pub source: LockSource,
    /// npm's `dist.integrity` of the tarball (Subresource Integrity, e.g. `sha512-…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<String>,
    /// PyPI's sha256 (hex) of `file`, the release's universal wheel, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The PyPI file `sha256` is of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Where the installer is downloaded from (elan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl LockedTool {
    /// A tool locked at `version` with no integrity data (the resolver adds what it knows).
    pub fn new(req: &Requirement, version: impl Into<String>, source: LockSource) -> Self {
        Self {
            kind: req.kind,
            name: req.name.clone(),
            requested: req.requested().to_string(),
            version: version.into(),
            source,
            integrity: None,
            sha256: None,
            file: None,
            url: None,
        }
    }

    /// The entry of a requirement no registry is asked about (elan, a GitHub release: its
    /// version is the spec's); `None` for npm and pipx requirements.
    pub fn from_spec(req: &Requirement) -> Option<Self> {
        (req.kind == ToolKind::Elan).then(|| Self {
            url: Some(elan_release_url(req.requested())),
            ..Self::new(req, req.requested(), LockSource::Spec)
        })
    }

    /// The install argument: `name@version` (npm) or `name==version` (pipx).
    pub(crate) fn install_arg(&self) -> String {
        match self.kind {
            ToolKind::Npm => format!("{}@{}", self.name, self.version),
            _ => format!("{}=={}", self.name, self.version),
        }
    }
}

/// A tool's kind, name and version, as the image's `atp.tools` label lists them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ToolVersion {
    pub kind: ToolKind,
    pub name: String,
    pub version: String,
}

/// The `atp.tools` label / `ATP_TOOLS` value: compact JSON `{"kind:name":"version",...}`.
pub(crate) fn tools_label(tools: &[LockedTool]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = tools
        .iter()
        .map(|t| {
            (
                format!("{}:{}", t.kind, t.name),
                serde_json::Value::String(t.version.clone()),
            )
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// Parse an `atp.tools` label; `None` if it is not such a label. Entries of unknown kinds are
/// skipped (an image made by a newer atp).
pub(crate) fn parse_tools_label(text: &str) -> Option<Vec<ToolVersion>> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
    let mut tools = Vec::new();
    for (key, version) in map {
        let (kind, name) = key.split_once(':')?;
        let version = version.as_str()?.to_string();
        if let Some(kind) = ToolKind::parse(kind) {
            tools.push(ToolVersion {
                kind,
                name: name.to_string(),
                version,
            });
        }
    }
    tools.sort();
    Some(tools)
}

/// The base image as locked: its registry digest when it was known at lock time.
///
/// Invariant: exactly one of `digest` and `note` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedBase {
    /// The spec's `base`.
    pub image: String,
    /// The registry digest (`sha256:…`) the local engine had for `image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Why the digest is not recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl LockedBase {
    /// A base pinned to a registry digest (`sha256:<64 hex>`).
    pub fn with_digest(image: impl Into<String>, digest: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            digest: Some(digest.into()),
            note: None,
        }
    }

    /// A base whose digest is unknown, and why.
    pub fn unknown(image: impl Into<String>, note: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            digest: None,
            note: Some(note.into()),
        }
    }

    /// The reference to build `FROM`: `image@digest` when the digest is known.
    pub(crate) fn reference(&self) -> String {
        match &self.digest {
            Some(d) if !self.image.contains('@') => format!("{}@{d}", self.image),
            _ => self.image.clone(),
        }
    }

    fn check(&self) -> std::result::Result<(), String> {
        match (&self.digest, &self.note) {
            (Some(d), None) => {
                let hex = d.strip_prefix("sha256:").unwrap_or("");
                if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    Ok(())
                } else {
                    Err(format!("[base] digest {d:?} is not sha256:<64 hex digits>"))
                }
            }
            (None, Some(_)) => Ok(()),
            _ => Err("[base] must hold exactly one of `digest` and `note`".into()),
        }
    }
}

/// The Lean pins as locked (from the skeleton; the spec hash covers them too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedLean {
    pub toolchain: String,
    pub mathlib_rev: String,
}

/// An image lock; see the module docs for its invariants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageLock {
    format: String,
    spec_hash: String,
    lock_hash: String,
    lean: LockedLean,
    base: LockedBase,
    #[serde(default, rename = "tool")]
    tools: Vec<LockedTool>,
}

impl ImageLock {
    /// The lock of `spec`: `resolved` holds the npm/pipx tools as the registries answered (any
    /// order); elan is taken from the spec. Fails if a requirement is missing from `resolved`,
    /// an exact pin was changed, or `base` is not the spec's base.
    pub fn new(spec: &ImageSpec, base: LockedBase, resolved: Vec<LockedTool>) -> Result<Self> {
        let bad = |message: String| SpecError::BadLock {
            path: spec.origin.clone(),
            message,
        };
        if base.image != spec.base {
            return Err(bad(format!(
                "base {:?} is not the spec's base {:?}",
                base.image, spec.base
            )));
        }
        base.check().map_err(bad)?;
        let mut resolved = resolved;
        let mut tools = Vec::new();
        for req in spec.requirements()? {
            let tool = if let Some(tool) = LockedTool::from_spec(&req) {
                tool
            } else {
                let at = resolved
                    .iter()
                    .position(|t| t.kind == req.kind && t.name == req.name)
                    .ok_or_else(|| {
                        bad(format!("no version resolved for {} {}", req.kind, req.name))
                    })?;
                resolved.swap_remove(at)
            };
            tools.push(tool);
        }
        if let Some(extra) = resolved.first() {
            return Err(bad(format!(
                "{} {} is not installed by the spec",
                extra.kind, extra.name
            )));
        }
        let pins = spec.pins()?;
        let mut lock = Self {
            format: LOCK_FORMAT.to_string(),
            spec_hash: spec.spec_hash()?,
            lock_hash: String::new(),
            lean: LockedLean {
                toolchain: pins.lean_toolchain,
                mathlib_rev: pins.mathlib_rev,
            },
            base,
            tools,
        };
        lock.check_against(spec, &spec.origin)?;
        lock.lock_hash = lock.compute_hash()?;
        Ok(lock)
    }

    /// Read and check a lock file (format, `lock_hash`, base).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|error| SpecError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parse lock TOML; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let bad = |message: String| SpecError::BadLock {
            path: origin.to_string(),
            message,
        };
        let lock: Self =
            toml::from_str(text).map_err(|e| bad(crate::pins::one_line(&e.message())))?;
        if lock.format != LOCK_FORMAT {
            return Err(bad(format!(
                "format {:?} is not {LOCK_FORMAT:?} (made by another atp version?)",
                lock.format
            )));
        }
        lock.base.check().map_err(bad)?;
        if lock.compute_hash()? != lock.lock_hash {
            return Err(bad(
                "lock_hash does not match the content (edited by hand?)".into(),
            ));
        }
        Ok(lock)
    }

    /// The lock file text: a header comment and the TOML.
    pub fn to_toml(&self) -> Result<String> {
        let body = toml::to_string(self).map_err(|e| SpecError::BadLock {
            path: "<lock>".into(),
            message: format!("cannot serialise: {e}"),
        })?;
        Ok(format!(
            "# atp image lock: the exact versions the image spec beside it (same name, .toml)\n\
             # installs. Written by `atp image lock`; do not edit (lock_hash covers the content).\n\n\
             {body}"
        ))
    }

    /// Write [`ImageLock::to_toml`] to `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_toml()?).map_err(|error| SpecError::Read {
            path: path.to_path_buf(),
            error,
        })
    }

    /// The hash of the spec this lock was made from.
    pub fn spec_hash(&self) -> &str {
        &self.spec_hash
    }

    /// sha256 (hex) of the lock's canonical content (everything but this field).
    pub fn lock_hash(&self) -> &str {
        &self.lock_hash
    }

    /// The Lean pins at lock time.
    pub fn lean(&self) -> &LockedLean {
        &self.lean
    }

    /// The base image and its digest, if known.
    pub fn base(&self) -> &LockedBase {
        &self.base
    }

    /// Every locked tool, in the spec's order.
    pub fn tools(&self) -> &[LockedTool] {
        &self.tools
    }

    /// The locked tools' kinds, names and versions.
    pub fn tool_versions(&self) -> Vec<ToolVersion> {
        self.tools
            .iter()
            .map(|t| ToolVersion {
                kind: t.kind,
                name: t.name.clone(),
                version: t.version.clone(),
            })
            .collect()
    }

    /// The locked entry of a tool.
    pub fn tool(&self, kind: ToolKind, name: &str) -> Option<&LockedTool> {
        self.tools.iter().find(|t| t.kind == kind && t.name == name)
    }

    /// The lock's Lean pins as the skeleton's pin type.
    pub fn lean_pins(&self) -> LeanPins {
        LeanPins {
            lean_toolchain: self.lean.toolchain.clone(),
            mathlib_rev: self.lean.mathlib_rev.clone(),
        }
    }

    /// `Ok` iff this lock was made from `spec` as it is now: same spec hash, same base, an
    /// entry for every requirement, exact pins kept. `lock_path` names the lock in messages.
    pub(crate) fn check_against(&self, spec: &ImageSpec, lock_path: &str) -> Result<()> {
        let actual = spec.spec_hash()?;
        if self.spec_hash != actual {
            return Err(SpecError::StaleLock {
                lock: lock_path.to_string(),
                spec: spec.origin.clone(),
                locked: short(&self.spec_hash),
                actual: short(&actual),
            });
        }
        let bad = |message: String| SpecError::BadLock {
            path: lock_path.to_string(),
            message,
        };
        if self.base.image != spec.base {
            return Err(bad(format!(
                "[base] image {:?} is not the spec's base {:?}",
                self.base.image, spec.base
            )));
        }
        let requirements = spec.requirements()?;
        if requirements.len() != self.tools.len() {
            return Err(bad(format!(
                "{} tools locked, the spec installs {}",
                self.tools.len(),
                requirements.len()
            )));
        }
        for req in &requirements {
            let tool = self
                .tool(req.kind, &req.name)
                .ok_or_else(|| bad(format!("no entry for {} {}", req.kind, req.name)))?;
            if let Wanted::Exact(v) = &req.wanted {
                if &tool.version != v {
                    return Err(bad(format!(
                        "{} {} is locked at {} but the spec pins {v}",
                        req.kind, req.name, tool.version
                    )));
                }
            }
        }
        Ok(())
    }

    fn compute_hash(&self) -> Result<String> {
        #[derive(Serialize)]
        struct Canonical<'a> {
            format: &'a str,
            spec_hash: &'a str,
            lean: &'a LockedLean,
            base: &'a LockedBase,
            tools: &'a [LockedTool],
        }
        let bytes = serde_json::to_vec(&Canonical {
            format: &self.format,
            spec_hash: &self.spec_hash,
            lean: &self.lean,
            base: &self.base,
            tools: &self.tools,
        })
        .map_err(|e| SpecError::BadLock {
            path: "<lock>".into(),
            message: format!("cannot serialise: {e}"),
        })?;
        Ok(hex::encode(Sha256::digest(bytes)))
    }
}

fn short(hash: &str) -> String {
    hash.chars().take(12).collect()
}

/// Whether renderings use the lock beside the spec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LockMode {
    /// Use the lock when it exists and is fresh; a stale lock is reported and not used, a
    /// missing one is not an error. A corrupt lock is an error.
    #[default]
    Auto,
    /// The lock must exist and be fresh (`--locked`).
    Required,
    /// Do not read the lock (`--unlocked`).
    Ignore,
}

impl LockMode {
    /// The mode of the `--locked` / `--unlocked` flags (`--locked` wins; neither: `Auto`).
    pub fn from_flags(locked: bool, unlocked: bool) -> Self {
        match (locked, unlocked) {
            (true, _) => LockMode::Required,
            (_, true) => LockMode::Ignore,
            _ => LockMode::Auto,
        }
    }
}

/// What [`ImageSpec::load_with_lock`] did with the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockStatus {
    /// The fresh lock at `path` is attached to the spec.
    Used { path: PathBuf },
    /// The lock at `path` was made from another version of the spec; not used.
    Stale { path: PathBuf, reason: String },
    /// There is no lock at `path`.
    Missing { path: PathBuf },
    /// The lock was not read ([`LockMode::Ignore`]).
    Ignored,
}

impl LockStatus {
    /// A one-line warning for the user, when the status deserves one (a stale lock).
    pub fn warning(&self) -> Option<String> {
        match self {
            LockStatus::Stale { reason, .. } => Some(format!(
                "{reason}; rendering the spec unlocked (pass --locked to make this an error)"
            )),
            _ => None,
        }
    }

    /// `used`, `stale`, `missing` or `ignored`.
    pub fn as_str(&self) -> &'static str {
        match self {
            LockStatus::Used { .. } => "used",
            LockStatus::Stale { .. } => "stale",
            LockStatus::Missing { .. } => "missing",
            LockStatus::Ignored => "ignored",
        }
    }

    /// The lock file considered, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            LockStatus::Used { path }
            | LockStatus::Stale { path, .. }
            | LockStatus::Missing { path } => Some(path),
            LockStatus::Ignored => None,
        }
    }
}

impl ImageSpec {
    /// Attach `lock`: renderings then install exactly its versions and label the image with
    /// its hash. Fails unless the lock was made from this spec as it is now.
    pub fn with_lock(mut self, lock: ImageLock) -> Result<Self> {
        let lock_path = lock_path_for(Path::new(&self.origin));
        lock.check_against(&self, &lock_path.display().to_string())?;
        self.lock = Some(lock);
        Ok(self)
    }

    /// The attached lock, if any.
    pub fn lock(&self) -> Option<&ImageLock> {
        self.lock.as_ref()
    }

    /// Load the spec at `path` and, per `mode`, the lock beside it ([`lock_path_for`]).
    ///
    /// `Auto`: a fresh lock is attached, a stale or missing one reported in the status.
    /// `Required`: a stale or missing lock is an error naming the remedy. `Ignore`: the lock is
    /// not read. A lock that exists but cannot be read or parsed is an error unless ignored.
    pub fn load_with_lock(path: &Path, mode: LockMode) -> Result<(Self, LockStatus)> {
        let spec = Self::load(path)?;
        if mode == LockMode::Ignore {
            return Ok((spec, LockStatus::Ignored));
        }
        let lock_path = lock_path_for(path);
        if !lock_path.exists() {
            if mode == LockMode::Required {
                return Err(SpecError::MissingLock {
                    spec: path.display().to_string(),
                    lock: lock_path.display().to_string(),
                });
            }
            return Ok((spec, LockStatus::Missing { path: lock_path }));
        }
        let lock = ImageLock::load(&lock_path)?;
        match lock.check_against(&spec, &lock_path.display().to_string()) {
            Ok(()) => {
                let spec = spec.with_lock(lock)?;
                Ok((spec, LockStatus::Used { path: lock_path }))
            }
            Err(e @ SpecError::StaleLock { .. }) if mode == LockMode::Auto => Ok((
                spec,
                LockStatus::Stale {
                    path: lock_path,
                    reason: e.to_string(),
                },
            )),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tools::{parse_npm, parse_pipx};

    #[test]
    fn tools_label_round_trips() {
        let req = parse_npm("@a/b@1.0.0", 1).unwrap();
        let tools = vec![
            LockedTool::new(&req, "1.0.0", LockSource::Spec),
            LockedTool::new(&parse_pipx("uv", 2).unwrap(), "0.9.0", LockSource::Registry),
        ];
        let label = tools_label(&tools);
        assert_eq!(label, r#"{"npm:@a/b":"1.0.0","pipx:uv":"0.9.0"}"#);
        let parsed = parse_tools_label(&label).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].name, "@a/b");
        assert_eq!(parsed[1].kind, ToolKind::Pipx);
        assert_eq!(parse_tools_label("not json"), None);
        assert_eq!(
            parse_tools_label(r#"{"future:x":"1","npm:y":"2"}"#)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn base_reference_and_invariant() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            LockedBase::with_digest("ubuntu:24.04", &d).reference(),
            format!("ubuntu:24.04@{d}")
        );
        assert_eq!(
            LockedBase::unknown("ubuntu:24.04", "n").reference(),
            "ubuntu:24.04"
        );
        assert!(LockedBase::with_digest("u", "sha256:zz").check().is_err());
        let mut both = LockedBase::with_digest("u", &d);
        both.note = Some("x".into());
        assert!(both.check().is_err());
    }
}
