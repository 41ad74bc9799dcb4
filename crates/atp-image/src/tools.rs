//! What a spec installs as data: `npm`, `pipx` and `elan` step entries parsed into
//! [`Requirement`]s, the form the lock resolves and the renderers pin.

use serde::{Deserialize, Serialize};

use crate::error::{Result, SpecError};
use crate::spec::{ImageSpec, Step};

/// How a tool is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolKind {
    /// A global npm package (`npm install -g name@version`), resolved on the npm registry.
    Npm,
    /// A Python application (`pipx install name==version`), resolved on PyPI.
    Pipx,
    /// The elan installer, a GitHub release; its version comes from the spec.
    Elan,
}

impl ToolKind {
    /// The spec key and lock spelling: `npm`, `pipx`, `elan`.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolKind::Npm => "npm",
            ToolKind::Pipx => "pipx",
            ToolKind::Elan => "elan",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        [ToolKind::Npm, ToolKind::Pipx, ToolKind::Elan]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for ToolKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a spec asks for of one tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// No version written: the registry's latest release (npm's `latest` dist-tag, PyPI's
    /// newest version).
    Latest,
    /// An exact version (`pkg@1.2.3`, `pkg==1.2.3`, `elan = "4.2.3"`): locked as given.
    Exact(String),
    /// An npm dist-tag (`pkg@next`), resolved on the registry.
    Tag(String),
}

/// One tool the spec installs, parsed from an `npm`, `pipx` or `elan` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub kind: ToolKind,
    /// Package name (npm names may be scoped: `@scope/name`).
    pub name: String,
    pub wanted: Wanted,
    /// 1-based index of the step that installs it.
    pub step: usize,
}

impl Requirement {
    /// What the spec asked for, as the lock records it: `latest`, a version, or a dist-tag.
    pub fn requested(&self) -> &str {
        match &self.wanted {
            Wanted::Latest => "latest",
            Wanted::Exact(v) | Wanted::Tag(v) => v,
        }
    }

    /// The install argument without a lock: the entry as written (`pkg`, `pkg@1.2.3`, ...).
    pub(crate) fn unlocked_arg(&self) -> String {
        match (&self.wanted, self.kind) {
            (Wanted::Latest, _) => self.name.clone(),
            (Wanted::Exact(v) | Wanted::Tag(v), ToolKind::Npm) => format!("{}@{v}", self.name),
            (Wanted::Exact(v) | Wanted::Tag(v), _) => format!("{}=={v}", self.name),
        }
    }
}

/// Parse one entry of an `npm = [...]` step: `name`, `name@1.2.3` or `name@dist-tag`
/// (scoped names `@scope/name` allowed). Ranges cannot be locked and are refused.
pub(crate) fn parse_npm(entry: &str, step: usize) -> std::result::Result<Requirement, String> {
    let (name, version) = match entry.strip_prefix('@') {
        Some(rest) => match rest.split_once('@') {
            Some((n, v)) => (format!("@{n}"), Some(v)),
            None => (entry.to_string(), None),
        },
        None => match entry.split_once('@') {
            Some((n, v)) => (n.to_string(), Some(v)),
            None => (entry.to_string(), None),
        },
    };
    if !npm_name_ok(&name) {
        return Err(format!(
            "{entry:?} is not an npm package name (lowercase letters, digits, `-._~`, optionally \
             `@scope/` first); write e.g. \"@anthropic-ai/claude-code@2.1.197\""
        ));
    }
    let wanted = match version {
        None => Wanted::Latest,
        Some(v) if is_exact_semver(v) => Wanted::Exact(v.to_string()),
        Some(v) if is_dist_tag(v) => Wanted::Tag(v.to_string()),
        Some(v) => {
            return Err(format!(
                "{entry:?}: {v:?} is neither an exact version (1.2.3) nor a dist-tag (latest, \
                 next); ranges cannot be locked, write the exact version"
            ))
        }
    };
    Ok(Requirement {
        kind: ToolKind::Npm,
        name,
        wanted,
        step,
    })
}

/// Parse one entry of a `pipx = [...]` step: `name` or `name==VERSION` (a PyPI release).
pub(crate) fn parse_pipx(entry: &str, step: usize) -> std::result::Result<Requirement, String> {
    let (name, version) = match entry.split_once("==") {
        Some((n, v)) => (n, Some(v)),
        None => (entry, None),
    };
    let remedy = "write `name` or `name==VERSION` (a PyPI release); URLs, extras and ranges \
                  cannot be locked";
    if !pypi_name_ok(name) {
        return Err(format!("{entry:?} is not a PyPI project name; {remedy}"));
    }
    let wanted = match version {
        None => Wanted::Latest,
        Some(v) if pypi_version_ok(v) => Wanted::Exact(v.to_string()),
        Some(v) => return Err(format!("{entry:?}: {v:?} is not a version; {remedy}")),
    };
    Ok(Requirement {
        kind: ToolKind::Pipx,
        name: name.to_string(),
        wanted,
        step,
    })
}

/// Parse an `elan = "X.Y.Z"` step: an elan release version.
pub(crate) fn parse_elan(version: &str, step: usize) -> std::result::Result<Requirement, String> {
    let parts: Vec<&str> = version.split('.').collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(format!(
            "{version:?} is not an elan release version; write it as X.Y.Z (e.g. \"4.2.3\", \
             without `v`)"
        ));
    }
    Ok(Requirement {
        kind: ToolKind::Elan,
        name: "elan".to_string(),
        wanted: Wanted::Exact(version.to_string()),
        step,
    })
}

/// The release archive of elan `version` for the build machine's architecture (`uname -m` is
/// `x86_64` or `aarch64`, as elan's release names spell them).
pub fn elan_release_url(version: &str) -> String {
    format!(
        "https://github.com/leanprover/elan/releases/download/v{version}/elan-$(uname -m)-unknown-linux-gnu.tar.gz"
    )
}

fn npm_name_ok(name: &str) -> bool {
    let part_ok = |p: &str| {
        !p.is_empty()
            && !p.starts_with(['.', '_'])
            && p.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_' | '~')
            })
    };
    match name.strip_prefix('@') {
        Some(scoped) => match scoped.split_once('/') {
            Some((scope, pkg)) => part_ok(scope) && part_ok(pkg),
            None => false,
        },
        None => part_ok(name) && name.len() <= 214,
    }
}

/// `MAJOR.MINOR.PATCH` with an optional `-prerelease` and `+build`.
fn is_exact_semver(v: &str) -> bool {
    let core_end = v.find(['-', '+']).unwrap_or(v.len());
    let core: Vec<&str> = v[..core_end].split('.').collect();
    let numeric = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    let rest_ok = v[core_end..]
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
    core.len() == 3 && core.iter().all(numeric) && rest_ok && !v.ends_with(['-', '+', '.'])
}

/// npm dist-tags start with a letter and cannot look like a version or range.
fn is_dist_tag(v: &str) -> bool {
    v.starts_with(|c: char| c.is_ascii_alphabetic())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        && !matches!(v, "x" | "X")
}

fn pypi_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

fn pypi_version_ok(v: &str) -> bool {
    v.starts_with(|c: char| c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '!' | '-' | '_'))
}

impl ImageSpec {
    /// Every tool the spec installs through `npm`, `pipx` and `elan` steps, in order.
    pub fn requirements(&self) -> Result<Vec<Requirement>> {
        let mut out: Vec<Requirement> = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let index = i + 1;
            let bad = |message: String| SpecError::BadStep {
                origin: self.origin.clone(),
                step: index,
                kind: step.kind(),
                message,
            };
            let parsed: Vec<Requirement> = match step {
                Step::Npm(entries) => entries
                    .iter()
                    .map(|e| parse_npm(e, index))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(bad)?,
                Step::Pipx(entries) => entries
                    .iter()
                    .map(|e| parse_pipx(e, index))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(bad)?,
                Step::Elan(version) => vec![parse_elan(version, index).map_err(bad)?],
                _ => Vec::new(),
            };
            for req in parsed {
                if let Some(first) = out
                    .iter()
                    .find(|r| r.kind == req.kind && r.name == req.name)
                {
                    return Err(bad(format!(
                        "{} {} is already installed by step {}; install each tool once",
                        req.kind, req.name, first.step
                    )));
                }
                out.push(req);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn npm_entries() {
        let r = parse_npm("@anthropic-ai/claude-code@2.1.197", 1).unwrap();
        assert_eq!(r.name, "@anthropic-ai/claude-code");
        assert_eq!(r.wanted, Wanted::Exact("2.1.197".into()));
        assert_eq!(r.unlocked_arg(), "@anthropic-ai/claude-code@2.1.197");
        let r = parse_npm("@openai/codex", 1).unwrap();
        assert_eq!(
            (r.name.as_str(), r.requested()),
            ("@openai/codex", "latest")
        );
        assert_eq!(r.unlocked_arg(), "@openai/codex");
        let r = parse_npm("opencode-ai@next", 1).unwrap();
        assert_eq!(r.wanted, Wanted::Tag("next".into()));
        assert_eq!(
            parse_npm("x@1.0.0-rc.1+b5", 1).unwrap().wanted,
            Wanted::Exact("1.0.0-rc.1+b5".into())
        );
        for bad in [
            "x@^1.2.0",
            "x@1.2",
            "x@>=1",
            "x@1.x",
            "x@",
            "X",
            "@scope",
            "@scope/",
            "a b",
            "x@1.2.3 || 2",
            "x;rm",
            "",
        ] {
            let e = parse_npm(bad, 1).expect_err(bad);
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn pipx_entries() {
        let r = parse_pipx("lean-lsp-mcp==0.32.0", 2).unwrap();
        assert_eq!(r.wanted, Wanted::Exact("0.32.0".into()));
        assert_eq!(r.unlocked_arg(), "lean-lsp-mcp==0.32.0");
        assert_eq!(parse_pipx("uv", 2).unwrap().wanted, Wanted::Latest);
        for bad in [
            "uv>=0.1",
            "uv[extra]",
            "git+https://example.invalid/x@abc",
            "x==",
            "x==a1",
            "-e",
            "",
        ] {
            assert!(parse_pipx(bad, 2).is_err(), "{bad}");
        }
    }

    #[test]
    fn elan_versions() {
        assert_eq!(
            parse_elan("4.2.3", 3).unwrap().wanted,
            Wanted::Exact("4.2.3".into())
        );
        for bad in ["v4.2.3", "4.2", "latest", "4.2.3-rc1", ""] {
            assert!(parse_elan(bad, 3).is_err(), "{bad}");
        }
        assert!(elan_release_url("4.2.3").contains("/download/v4.2.3/elan-$(uname -m)-"));
    }
}
