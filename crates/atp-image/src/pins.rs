//! The Lean skeleton baked into `/workspace`, and the pins an image carries.
//!
//! The pins have exactly one source: the skeleton's `lean-toolchain` file and the `rev` of the
//! `mathlib` requirement in its `lakefile.toml`. Images carry them as labels (Docker) and as
//! environment variables (both backends); [`ImagePins`] reads them back.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, SpecError};
use crate::lock::{parse_tools_label, ToolVersion};

/// Label holding the Lean toolchain the image's `/workspace` is pinned to.
pub const LABEL_LEAN_TOOLCHAIN: &str = "atp.lean-toolchain";
/// Label holding the Mathlib revision the image's `/workspace` is pinned to.
pub const LABEL_MATHLIB_REV: &str = "atp.mathlib-rev";
/// Label holding the sha256 of the spec the image was built from.
pub const LABEL_SPEC_HASH: &str = "atp.spec-hash";
/// Environment variable mirroring [`LABEL_LEAN_TOOLCHAIN`] (readable inside any sandbox).
pub const ENV_LEAN_TOOLCHAIN: &str = "ATP_LEAN_TOOLCHAIN";
/// Environment variable mirroring [`LABEL_MATHLIB_REV`].
pub const ENV_MATHLIB_REV: &str = "ATP_MATHLIB_REV";
/// Environment variable mirroring [`LABEL_SPEC_HASH`].
pub const ENV_SPEC_HASH: &str = "ATP_SPEC_HASH";
/// Label holding the `lock_hash` of the image lock the image was built with (locked builds).
pub const LABEL_LOCK_HASH: &str = "atp.lock-hash";
/// Label listing the locked tool versions, compact JSON `{"kind:name":"version",...}`.
pub const LABEL_TOOLS: &str = "atp.tools";
/// Environment variable mirroring [`LABEL_LOCK_HASH`].
pub const ENV_LOCK_HASH: &str = "ATP_LOCK_HASH";
/// Environment variable mirroring [`LABEL_TOOLS`].
pub const ENV_TOOLS: &str = "ATP_TOOLS";
/// Every `ATP_*` environment variable an image carries and the `atp.*` label it mirrors: the
/// one list both renderings and [`ImagePins`] use (Modal images have env, not labels).
pub const PIN_ENV_LABELS: [(&str, &str); 5] = [
    (ENV_LEAN_TOOLCHAIN, LABEL_LEAN_TOOLCHAIN),
    (ENV_MATHLIB_REV, LABEL_MATHLIB_REV),
    (ENV_SPEC_HASH, LABEL_SPEC_HASH),
    (ENV_LOCK_HASH, LABEL_LOCK_HASH),
    (ENV_TOOLS, LABEL_TOOLS),
];

/// The `atp.*` labels an image carrying `env` (its environment, as Modal images carry them)
/// would have, by [`PIN_ENV_LABELS`]: `ATP_MATHLIB_REV=x` → `atp.mathlib-rev=x`; other variables
/// are ignored.
pub fn pin_labels_from_env(env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    PIN_ENV_LABELS
        .iter()
        .filter_map(|(var, label)| env.get(*var).map(|v| (label.to_string(), v.clone())))
        .collect()
}

/// The `ATP_*` environment an image labelled `labels` carries: the inverse of
/// [`pin_labels_from_env`]; other labels are ignored.
pub fn pin_env_from_labels(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    PIN_ENV_LABELS
        .iter()
        .filter_map(|(var, label)| labels.get(*label).map(|v| (var.to_string(), v.clone())))
        .collect()
}

/// Skeleton file holding the toolchain pin.
pub const TOOLCHAIN_FILE: &str = "lean-toolchain";
/// Skeleton file holding the Mathlib requirement.
pub const LAKEFILE: &str = "lakefile.toml";

/// The files of `images/lean/`, compiled in.
const BUILTIN_SKELETON: &[(&str, &str)] = &[
    (LAKEFILE, include_str!("../../../images/lean/lakefile.toml")),
    (
        TOOLCHAIN_FILE,
        include_str!("../../../images/lean/lean-toolchain"),
    ),
];

/// The Lean project copied to `/workspace`: top-level regular files, by name.
///
/// Invariant: holds [`TOOLCHAIN_FILE`] and [`LAKEFILE`]; names are plain (no `/`, not `.`/`..`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skeleton {
    /// Where the files came from, for messages (a directory, or a name for in-memory files).
    pub origin: String,
    files: BTreeMap<String, Vec<u8>>,
}

impl Skeleton {
    /// Read every top-level regular, non-hidden file of `dir`.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let read_err = |error| SpecError::Read {
            path: dir.to_path_buf(),
            error,
        };
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !path.is_file() {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|error| SpecError::Read {
                path: path.clone(),
                error,
            })?;
            files.insert(name, bytes);
        }
        Self::from_files(dir.display().to_string(), files)
    }

    /// A skeleton from in-memory files (`name -> contents`).
    pub fn from_files(
        origin: impl Into<String>,
        files: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> Result<Self> {
        let origin = origin.into();
        let files: BTreeMap<String, Vec<u8>> = files.into_iter().collect();
        for name in files.keys() {
            if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\n']) {
                return Err(SpecError::BadSkeletonFile {
                    dir: origin,
                    file: name.clone(),
                });
            }
        }
        for required in [TOOLCHAIN_FILE, LAKEFILE] {
            if !files.contains_key(required) {
                return Err(SpecError::MissingSkeletonFile {
                    dir: origin,
                    file: required.to_string(),
                });
            }
        }
        let skeleton = Self { origin, files };
        skeleton.pins()?;
        Ok(skeleton)
    }

    /// The skeleton compiled into atp (`images/lean/`): what bare `.lean` files are staged
    /// into, and the pins assumed for an image that carries no `atp.*` labels.
    pub fn builtin() -> Self {
        let files = BUILTIN_SKELETON
            .iter()
            .map(|(name, text)| (name.to_string(), text.as_bytes().to_vec()));
        match Self::from_files("atp's built-in skeleton (images/lean/)", files) {
            Ok(s) => s,
            // The files are compiled in and checked by this crate's tests.
            Err(e) => unreachable!("the built-in skeleton is invalid: {e}"),
        }
    }

    /// The files, sorted by name.
    pub fn files(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.files
    }

    /// The pins the skeleton declares.
    pub fn pins(&self) -> Result<LeanPins> {
        let bad = |message: String| SpecError::BadPin {
            dir: self.origin.clone(),
            message,
        };
        let toolchain = self.text(TOOLCHAIN_FILE).map_err(&bad)?;
        let lean_toolchain = toolchain.trim().to_string();
        if lean_toolchain.is_empty() || lean_toolchain.contains(char::is_whitespace) {
            return Err(bad(format!(
                "`{TOOLCHAIN_FILE}` must hold one toolchain such as \"leanprover/lean4:v4.28.0\", found {toolchain:?}"
            )));
        }
        let lakefile: toml::Table = toml::from_str(&self.text(LAKEFILE).map_err(&bad)?)
            .map_err(|e| bad(format!("`{LAKEFILE}` is not valid TOML: {}", one_line(&e))))?;
        let mathlib_rev = mathlib_rev_of_lakefile(&lakefile)
            .filter(|rev| !rev.trim().is_empty())
            .ok_or_else(|| {
                bad(format!(
                    "`{LAKEFILE}` has no `[[require]]` named \"mathlib\" with a `rev`; pin Mathlib there"
                ))
            })?;
        Ok(LeanPins {
            lean_toolchain,
            mathlib_rev,
        })
    }

    /// The same skeleton pinned to `lean_toolchain` and Mathlib `mathlib_rev` instead: the
    /// toolchain file is replaced and the `rev` of the `mathlib` requirement in the lakefile is
    /// set (the lakefile is re-serialised; its other keys are kept). Any other file (e.g. a
    /// `lake-manifest.json` pinning Mathlib at a commit) is dropped when it names Mathlib, so
    /// `lake update` resolves the new pin. Used for one build with overridden pins.
    pub fn with_pins(&self, lean_toolchain: &str, mathlib_rev: &str) -> Result<Self> {
        let bad = |message: String| SpecError::BadPin {
            dir: self.origin.clone(),
            message,
        };
        let toolchain = lean_toolchain.trim();
        if toolchain.is_empty() || toolchain.contains(char::is_whitespace) {
            return Err(bad(format!(
                "--lean-toolchain {lean_toolchain:?}: expected one toolchain such as \"leanprover/lean4:v4.27.0\""
            )));
        }
        let rev = mathlib_rev.trim();
        if rev.is_empty() || rev.contains(char::is_whitespace) || rev.contains('"') {
            return Err(bad(format!(
                "--mathlib-rev {mathlib_rev:?}: expected a Mathlib tag or commit such as \"v4.27.0\""
            )));
        }
        let mut lakefile: toml::Table = toml::from_str(&self.text(LAKEFILE).map_err(&bad)?)
            .map_err(|e| bad(format!("`{LAKEFILE}` is not valid TOML: {}", one_line(&e))))?;
        let require = lakefile
            .get_mut("require")
            .and_then(|r| r.as_array_mut())
            .and_then(|reqs| {
                reqs.iter_mut()
                    .filter_map(|r| r.as_table_mut())
                    .find(|r| r.get("name").and_then(|n| n.as_str()) == Some("mathlib"))
            })
            .ok_or_else(|| {
                bad(format!(
                    "`{LAKEFILE}` has no `[[require]]` named \"mathlib\""
                ))
            })?;
        require.insert("rev".into(), toml::Value::String(rev.to_string()));
        let lakefile_text = toml::to_string(&lakefile)
            .map_err(|e| bad(format!("cannot write `{LAKEFILE}`: {e}")))?;
        let mut files = self.files.clone();
        files.retain(|name, bytes| {
            name == TOOLCHAIN_FILE
                || name == LAKEFILE
                || !String::from_utf8_lossy(bytes).contains("mathlib")
        });
        files.insert(TOOLCHAIN_FILE.into(), format!("{toolchain}\n").into_bytes());
        files.insert(LAKEFILE.into(), lakefile_text.into_bytes());
        Self::from_files(
            format!(
                "{} (pins overridden: {toolchain}, Mathlib {rev})",
                self.origin
            ),
            files,
        )
    }

    fn text(&self, name: &str) -> std::result::Result<String, String> {
        let bytes = self
            .files
            .get(name)
            .ok_or_else(|| format!("`{name}` is missing"))?;
        String::from_utf8(bytes.clone()).map_err(|_| format!("`{name}` is not UTF-8"))
    }
}

/// The compatibility pins of a Lean workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeanPins {
    /// e.g. `leanprover/lean4:v4.28.0`.
    pub lean_toolchain: String,
    /// e.g. `v4.28.0`.
    pub mathlib_rev: String,
}

impl LeanPins {
    /// The pins of the built-in skeleton ([`Skeleton::builtin`]).
    pub fn builtin() -> Self {
        match Skeleton::builtin().pins() {
            Ok(p) => p,
            Err(e) => unreachable!("the built-in skeleton has no pins: {e}"),
        }
    }
}

/// Where [`ImagePins`] were read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinSource {
    /// The image's own labels (or environment): what the image actually holds.
    Labels,
    /// The image has no atp labels; these are the spec's pins, assumed, not observed.
    SpecDefaults,
}

/// The pins of a sandbox image, and whether they were observed on the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagePins {
    pub lean_toolchain: String,
    pub mathlib_rev: String,
    /// The spec hash, when known.
    pub spec_hash: Option<String>,
    /// The image lock's hash, for an image built from a locked spec.
    #[serde(default)]
    pub lock_hash: Option<String>,
    /// The locked tool versions the image holds (empty for an unlocked image), sorted.
    #[serde(default)]
    pub tools: Vec<ToolVersion>,
    pub source: PinSource,
}

impl ImagePins {
    /// Pins from an image's labels; `None` unless both the toolchain and the Mathlib labels are
    /// present and non-empty. An `atp.tools` label that does not parse yields no tools.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Option<Self> {
        Self::from_map(labels, |(_, label)| label)
    }

    /// Pins from a sandbox's environment (`ATP_LEAN_TOOLCHAIN`, ...), as Modal images carry them.
    pub fn from_env(env: &BTreeMap<String, String>) -> Option<Self> {
        Self::from_map(env, |(var, _)| var)
    }

    /// The pins a spec would give an image (with its attached lock's hash and tools), flagged
    /// [`PinSource::SpecDefaults`].
    pub fn spec_defaults(spec: &crate::ImageSpec) -> Result<Self> {
        let mut pins = Self::from_env(&spec.pin_env()?).ok_or_else(|| SpecError::BadPin {
            dir: spec.skeleton.origin.clone(),
            message: "the skeleton yields no pins".into(),
        })?;
        pins.source = PinSource::SpecDefaults;
        Ok(pins)
    }

    /// The pins of atp's built-in skeleton, flagged [`PinSource::SpecDefaults`] (assumed for an
    /// image without labels).
    pub fn builtin() -> Self {
        let pins = LeanPins::builtin();
        Self {
            lean_toolchain: pins.lean_toolchain,
            mathlib_rev: pins.mathlib_rev,
            spec_hash: None,
            lock_hash: None,
            tools: Vec::new(),
            source: PinSource::SpecDefaults,
        }
    }

    /// The toolchain and Mathlib pins alone.
    pub fn lean(&self) -> LeanPins {
        LeanPins {
            lean_toolchain: self.lean_toolchain.clone(),
            mathlib_rev: self.mathlib_rev.clone(),
        }
    }

    /// The image's labelled pins, or else the spec's pins flagged as assumed.
    pub fn from_labels_or_spec(
        labels: &BTreeMap<String, String>,
        spec: &crate::ImageSpec,
    ) -> Result<Self> {
        match Self::from_labels(labels) {
            Some(pins) => Ok(pins),
            None => Self::spec_defaults(spec),
        }
    }

    /// Read the pins from `map`, whose keys are picked from [`PIN_ENV_LABELS`] by `key`.
    fn from_map(
        map: &BTreeMap<String, String>,
        key: fn((&'static str, &'static str)) -> &'static str,
    ) -> Option<Self> {
        let [toolchain, rev, hash, lock_hash, tools] = PIN_ENV_LABELS.map(key);
        let get = |k: &str| {
            map.get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        Some(Self {
            lean_toolchain: get(toolchain)?,
            mathlib_rev: get(rev)?,
            spec_hash: get(hash),
            lock_hash: get(lock_hash),
            tools: get(tools)
                .and_then(|t| parse_tools_label(&t))
                .unwrap_or_default(),
            source: PinSource::Labels,
        })
    }
}

/// A TOML parser diagnostic as one line: its caret diagram lines (`|`, `^`) dropped, the rest
/// joined. Not `atp_backend::one_line` (atp-image depends on no atp crate, and that rule keeps
/// every character).
pub(crate) fn one_line(e: &impl std::fmt::Display) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '|' || c == '^' || c == ' '))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `rev` of the `[[require]]` named `mathlib` in a parsed `lakefile.toml`.
pub fn mathlib_rev_of_lakefile(lakefile: &toml::Table) -> Option<String> {
    lakefile
        .get("require")
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_table())
        .find(|r| r.get("name").and_then(|n| n.as_str()) == Some("mathlib"))
        .and_then(|r| r.get("rev"))
        .and_then(|rev| rev.as_str())
        .map(str::to_string)
}
