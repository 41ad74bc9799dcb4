//! Resolves what an atp image spec installs to exact versions, from the registries' JSON APIs,
//! without building anything: the HTTP half of the image lock (`atp image lock`).
//!
//! - npm: `GET {registry}/{name}/{version-or-dist-tag}` (scoped names with `/` escaped as
//!   `%2F`) → `version` and `dist.integrity`. A bare name asks for the `latest` dist-tag.
//! - PyPI: `GET {index}/pypi/{name}/json` → `info.version` for a bare name; for `name==V` the
//!   release `V` must be among `releases`. The sha256 of the release's universal wheel
//!   (`*-none-any.whl`) is recorded when there is one.
//! - elan is not resolved: its releases live on GitHub; the spec's version is locked as given.
//!
//! Versions written exactly in the spec are kept as given, after checking the registry has
//! them. The lock itself ([`atp_image::ImageLock`]) is built and hashed by `atp-image`, which
//! stays pure; this crate only asks the registries. Every failure names the package and the URL
//! asked, in one line.

use std::time::Duration;

use atp_image::{ImageLock, ImageSpec, LockSource, LockedBase, LockedTool, Requirement};
use atp_image::{ToolKind, Wanted};
use serde::Deserialize;

/// npm's public registry.
pub const DEFAULT_NPM_REGISTRY: &str = "https://registry.npmjs.org";
/// PyPI's public index (its JSON API lives under `/pypi/`).
pub const DEFAULT_PYPI_INDEX: &str = "https://pypi.org";
/// Environment variable overriding the npm registry.
pub const ENV_NPM_REGISTRY: &str = "ATP_NPM_REGISTRY";
/// Environment variable overriding the PyPI index.
pub const ENV_PYPI_INDEX: &str = "ATP_PYPI_INDEX";

/// One failed lookup. Each message is one line naming the package and the URL.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The registry does not know the package, or the version asked for.
    #[error(
        "{kind} package {package}: {what} not found at {url} (404); check the name and version \
         in the image spec{hint}"
    )]
    NotFound {
        kind: ToolKind,
        package: String,
        what: String,
        url: String,
        hint: &'static str,
    },
    /// The registry answered with an error status.
    #[error(
        "{kind} package {package}: {url} answered HTTP {status}; retry later, or point atp at \
         another registry ({flag})"
    )]
    Status {
        kind: ToolKind,
        package: String,
        url: String,
        status: u16,
        flag: &'static str,
    },
    /// The registry could not be reached.
    #[error(
        "{kind} package {package}: cannot reach {url} ({reason}); check the network or the \
         registry URL ({flag})"
    )]
    Unreachable {
        kind: ToolKind,
        package: String,
        url: String,
        reason: String,
        flag: &'static str,
    },
    /// The registry's answer is not the metadata expected.
    #[error("{kind} package {package}: unexpected answer from {url}: {message}")]
    BadResponse {
        kind: ToolKind,
        package: String,
        url: String,
        message: String,
    },
    /// A registry URL is not an http(s) URL.
    #[error("registry URL {url:?} ({flag}) is not an http:// or https:// URL")]
    BadRegistry { url: String, flag: &'static str },
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// The spec or the lock assembled from the answers is invalid.
    #[error(transparent)]
    Spec(#[from] atp_image::SpecError),
}

/// The registries the resolver asks (base URLs, no trailing slash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registries {
    /// npm registry, e.g. `https://registry.npmjs.org`.
    pub npm: String,
    /// PyPI index root, e.g. `https://pypi.org` (the JSON API is `{index}/pypi/{name}/json`).
    pub pypi: String,
}

impl Default for Registries {
    fn default() -> Self {
        Self {
            npm: DEFAULT_NPM_REGISTRY.to_string(),
            pypi: DEFAULT_PYPI_INDEX.to_string(),
        }
    }
}

impl Registries {
    /// The public registries, overridden by `ATP_NPM_REGISTRY` / `ATP_PYPI_INDEX` when set.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let d = Self::default();
        Self {
            npm: var(ENV_NPM_REGISTRY).unwrap_or(d.npm),
            pypi: var(ENV_PYPI_INDEX).unwrap_or(d.pypi),
        }
    }
}

const NPM_FLAG: &str = "--npm-registry or ATP_NPM_REGISTRY";
const PYPI_FLAG: &str = "--pypi-index or ATP_PYPI_INDEX";

/// Asks the registries for versions. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Resolver {
    client: reqwest::Client,
    npm: String,
    pypi: String,
}

impl Resolver {
    /// A resolver for `registries` (30 s per request, 10 s to connect, no retries). Installs
    /// rustls' ring provider as the process default unless one is installed already (reqwest is
    /// built without a provider of its own, as tonic's TLS is).
    pub fn new(registries: Registries) -> Result<Self, LockError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = |url: &str, flag| {
            let url = url.trim().trim_end_matches('/').to_string();
            if url.starts_with("http://") || url.starts_with("https://") {
                Ok(url)
            } else {
                Err(LockError::BadRegistry { url, flag })
            }
        };
        let client = reqwest::Client::builder()
            .user_agent(concat!("atp-lock/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| LockError::Client(root_cause(&e)))?;
        Ok(Self {
            client,
            npm: base(&registries.npm, NPM_FLAG)?,
            pypi: base(&registries.pypi, PYPI_FLAG)?,
        })
    }

    /// Resolve every npm/pipx requirement of `spec` (concurrently) and assemble its lock with
    /// `base` (the base image's digest, when the caller could find it).
    pub async fn lock(&self, spec: &ImageSpec, base: LockedBase) -> Result<ImageLock, LockError> {
        let requirements: Vec<Requirement> = spec
            .requirements()?
            .into_iter()
            .filter(|r| LockedTool::from_spec(r).is_none())
            .collect();
        let resolved =
            futures::future::try_join_all(requirements.iter().map(|r| self.resolve(r))).await?;
        Ok(ImageLock::new(spec, base, resolved)?)
    }

    /// Resolve one npm or pipx requirement.
    pub async fn resolve(&self, req: &Requirement) -> Result<LockedTool, LockError> {
        match req.kind {
            ToolKind::Npm => self.resolve_npm(req).await,
            ToolKind::Pipx => self.resolve_pypi(req).await,
            ToolKind::Elan => LockedTool::from_spec(req)
                .ok_or_else(|| bad_response(req, "-", "elan is not resolved on a registry".into())),
        }
    }

    async fn resolve_npm(&self, req: &Requirement) -> Result<LockedTool, LockError> {
        #[derive(Deserialize)]
        struct Dist {
            integrity: Option<String>,
        }
        #[derive(Deserialize)]
        struct VersionDoc {
            name: Option<String>,
            version: String,
            dist: Option<Dist>,
        }
        let url = format!(
            "{}/{}/{}",
            self.npm,
            req.name.replace('/', "%2F"),
            req.requested()
        );
        let what = match &req.wanted {
            Wanted::Latest => "the `latest` dist-tag".to_string(),
            Wanted::Tag(t) => format!("dist-tag {t}"),
            Wanted::Exact(v) => format!("version {v}"),
        };
        let body = self.get(req, &url, &what, NPM_FLAG, "").await?;
        let doc: VersionDoc = serde_json::from_slice(&body)
            .map_err(|e| bad_response(req, &url, format!("not npm version metadata ({e})")))?;
        if doc.name.as_deref().is_some_and(|n| n != req.name) {
            return Err(bad_response(
                req,
                &url,
                format!("metadata is for package {:?}", doc.name.unwrap_or_default()),
            ));
        }
        let source = match &req.wanted {
            Wanted::Exact(v) if *v != doc.version => {
                return Err(bad_response(
                    req,
                    &url,
                    format!("asked for version {v}, got {}", doc.version),
                ))
            }
            Wanted::Exact(_) => LockSource::Spec,
            _ => LockSource::Registry,
        };
        check_version(req, &url, &doc.version)?;
        Ok(LockedTool {
            integrity: doc.dist.and_then(|d| d.integrity),
            ..LockedTool::new(req, doc.version, source)
        })
    }

    async fn resolve_pypi(&self, req: &Requirement) -> Result<LockedTool, LockError> {
        #[derive(Deserialize)]
        struct Info {
            version: String,
        }
        #[derive(Deserialize)]
        struct File {
            filename: String,
            packagetype: Option<String>,
            #[serde(default)]
            digests: std::collections::BTreeMap<String, String>,
            #[serde(default)]
            yanked: bool,
        }
        #[derive(Deserialize)]
        struct Project {
            info: Info,
            #[serde(default)]
            releases: std::collections::BTreeMap<String, Vec<File>>,
        }
        let url = format!("{}/pypi/{}/json", self.pypi, req.name);
        let body = self
            .get(
                req,
                &url,
                "the project",
                PYPI_FLAG,
                " (pipx entries are PyPI project names)",
            )
            .await?;
        let project: Project = serde_json::from_slice(&body)
            .map_err(|e| bad_response(req, &url, format!("not PyPI project metadata ({e})")))?;
        let (version, source) = match &req.wanted {
            Wanted::Exact(v) => (v.clone(), LockSource::Spec),
            _ => (project.info.version.clone(), LockSource::Registry),
        };
        check_version(req, &url, &version)?;
        let Some(files) = project.releases.get(&version) else {
            if matches!(req.wanted, Wanted::Exact(_)) {
                return Err(LockError::NotFound {
                    kind: req.kind,
                    package: req.name.clone(),
                    what: format!("release {version}"),
                    url,
                    hint: "",
                });
            }
            // Some indexes omit `releases`; the latest version is still `info.version`.
            return Ok(LockedTool::new(req, version, source));
        };
        if matches!(req.wanted, Wanted::Exact(_)) && files.is_empty() {
            return Err(LockError::NotFound {
                kind: req.kind,
                package: req.name.clone(),
                what: format!("any file of release {version}"),
                url,
                hint: "",
            });
        }
        let universal: Vec<&File> = files
            .iter()
            .filter(|f| {
                !f.yanked
                    && f.packagetype.as_deref().unwrap_or("bdist_wheel") == "bdist_wheel"
                    && f.filename.ends_with("-none-any.whl")
            })
            .collect();
        let mut tool = LockedTool::new(req, version, source);
        if let [wheel] = universal.as_slice() {
            if let Some(sha) = wheel.digests.get("sha256") {
                tool.sha256 = Some(sha.clone());
                tool.file = Some(wheel.filename.clone());
            }
        }
        Ok(tool)
    }

    /// GET `url` and return the body of a 2xx answer; map every failure to one line.
    async fn get(
        &self,
        req: &Requirement,
        url: &str,
        what: &str,
        flag: &'static str,
        hint: &'static str,
    ) -> Result<Vec<u8>, LockError> {
        tracing::debug!(package = %req.name, %url, "registry lookup");
        let unreachable = |e: reqwest::Error| LockError::Unreachable {
            kind: req.kind,
            package: req.name.clone(),
            url: url.to_string(),
            reason: root_cause(&e),
            flag,
        };
        let response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(LockError::NotFound {
                kind: req.kind,
                package: req.name.clone(),
                what: what.to_string(),
                url: url.to_string(),
                hint,
            });
        }
        if !status.is_success() {
            return Err(LockError::Status {
                kind: req.kind,
                package: req.name.clone(),
                url: url.to_string(),
                status: status.as_u16(),
                flag,
            });
        }
        let body = response.bytes().await.map_err(unreachable)?;
        Ok(body.to_vec())
    }
}

/// A resolved version must be renderable on an install line as-is.
fn check_version(req: &Requirement, url: &str, version: &str) -> Result<(), LockError> {
    let ok = !version.is_empty()
        && version.starts_with(|c: char| c.is_ascii_digit())
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '!' | '_'));
    if ok {
        Ok(())
    } else {
        Err(bad_response(
            req,
            url,
            format!("version {version:?} is not a plain version"),
        ))
    }
}

fn bad_response(req: &Requirement, url: &str, message: String) -> LockError {
    LockError::BadResponse {
        kind: req.kind,
        package: req.name.clone(),
        url: url.to_string(),
        message,
    }
}

/// The innermost cause of an error, on one line (e.g. "Connection refused (os error 111)").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    let text = if text.is_empty() { e.to_string() } else { text };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
