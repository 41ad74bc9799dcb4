//! Modal credentials and endpoint, resolved like Modal's own SDKs.
//!
//! Order: the profile file (`$MODAL_CONFIG_PATH`, else `~/.modal.toml`; profile `$MODAL_PROFILE`,
//! else the first with `active = true`), then environment overrides (`MODAL_TOKEN_ID`,
//! `MODAL_TOKEN_SECRET`, `MODAL_SERVER_URL`, `MODAL_ENVIRONMENT`).
//!
//! Invariant: token values never appear in `Debug` output, logs or error messages.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::ModalError;

/// Default control-plane URL.
pub const DEFAULT_SERVER_URL: &str = "https://api.modal.com:443";

/// A credential value that is never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The raw value (only for putting it on the wire).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where the credentials came from (reported by `atp doctor`; never the values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `MODAL_TOKEN_ID` / `MODAL_TOKEN_SECRET`.
    Env,
    /// A profile of the config file.
    Profile { path: PathBuf, profile: String },
    /// Given explicitly by the caller.
    Explicit,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Env => f.write_str("environment (MODAL_TOKEN_ID/MODAL_TOKEN_SECRET)"),
            CredentialSource::Profile { path, profile } => {
                write!(f, "profile [{profile}] of {}", path.display())
            }
            CredentialSource::Explicit => f.write_str("explicit"),
        }
    }
}

/// Everything needed to talk to a Modal control plane.
#[derive(Debug, Clone)]
pub struct ModalCredentials {
    pub server_url: String,
    pub token_id: Secret,
    pub token_secret: Secret,
    /// Sent as `environment_name`; empty means the workspace default.
    pub environment: String,
    pub source: CredentialSource,
}

impl ModalCredentials {
    /// Explicit credentials (tests, the fake).
    pub fn new(server_url: impl Into<String>, token_id: &str, token_secret: &str) -> Self {
        ModalCredentials {
            server_url: server_url.into(),
            token_id: Secret::new(token_id),
            token_secret: Secret::new(token_secret),
            environment: String::new(),
            source: CredentialSource::Explicit,
        }
    }

    /// Resolve from the process environment and the profile file.
    pub fn from_env() -> Result<Self, ModalError> {
        let env: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("MODAL_"))
            .collect();
        let home = std::env::var_os("HOME").map(PathBuf::from);
        Self::resolve(&env, home.as_deref())
    }

    /// Resolve from an explicit environment map and home directory (pure; unit-tested).
    pub fn resolve(
        env: &BTreeMap<String, String>,
        home: Option<&Path>,
    ) -> Result<Self, ModalError> {
        let get = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();
        let path = match get("MODAL_CONFIG_PATH") {
            Some(p) => Some(PathBuf::from(p)),
            None => home.map(|h| h.join(".modal.toml")),
        };
        let mut profile_name = None;
        let mut profile: BTreeMap<String, toml::Value> = BTreeMap::new();
        if let Some(path) = path.as_deref().filter(|p| p.exists()) {
            let text = std::fs::read_to_string(path).map_err(|e| ModalError::Config {
                detail: format!("cannot read {}: {e}", path.display()),
            })?;
            let doc: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ModalError::Config {
                        detail: format!(
                            "{} is not valid TOML ({}) — fix it or run `modal setup`",
                            path.display(),
                            e.message()
                        ),
                    })?;
            let chosen = match get("MODAL_PROFILE") {
                Some(p) => Some(p),
                None => doc
                    .iter()
                    .find(|(_, v)| v.get("active").and_then(|a| a.as_bool()) == Some(true))
                    .map(|(k, _)| k.clone()),
            };
            if let Some(name) = chosen {
                if let Some(t) = doc.get(&name).and_then(|v| v.as_table()) {
                    profile = t.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                }
                profile_name = Some(name);
            }
        }
        let from_file = |k: &str| {
            profile
                .get(k)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let (token_id, token_secret, source) =
            match (get("MODAL_TOKEN_ID"), get("MODAL_TOKEN_SECRET")) {
                (Some(id), Some(secret)) => (Some(id), Some(secret), CredentialSource::Env),
                (id, secret) => (
                    id.or_else(|| from_file("token_id")),
                    secret.or_else(|| from_file("token_secret")),
                    CredentialSource::Profile {
                        path: path.clone().unwrap_or_default(),
                        profile: profile_name.clone().unwrap_or_default(),
                    },
                ),
            };
        let (Some(token_id), Some(token_secret)) = (token_id, token_secret) else {
            return Err(ModalError::MissingCredentials);
        };
        let server_url = get("MODAL_SERVER_URL")
            .or_else(|| from_file("server_url"))
            .unwrap_or_else(|| DEFAULT_SERVER_URL.to_string());
        let environment = get("MODAL_ENVIRONMENT")
            .or_else(|| from_file("environment"))
            .unwrap_or_default();
        Ok(ModalCredentials {
            server_url,
            token_id: Secret(token_id),
            token_secret: Secret(token_secret),
            environment,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn first_active_profile_then_env_overrides() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join(".modal.toml");
        std::fs::write(
            &cfg,
            "[a]\ntoken_id = \"ak-a\"\ntoken_secret = \"as-a\"\n\n[b]\ntoken_id = \"ak-b\"\ntoken_secret = \"as-b\"\nactive = true\nenvironment = \"dev\"\n",
        )
        .expect("write");
        let c = ModalCredentials::resolve(&env(&[]), Some(dir.path())).expect("resolves");
        assert_eq!(c.token_id.expose(), "ak-b");
        assert_eq!(c.environment, "dev");
        assert_eq!(c.server_url, DEFAULT_SERVER_URL);
        let c = ModalCredentials::resolve(&env(&[("MODAL_PROFILE", "a")]), Some(dir.path()))
            .expect("resolves");
        assert_eq!(c.token_id.expose(), "ak-a");
        let c = ModalCredentials::resolve(
            &env(&[
                ("MODAL_TOKEN_ID", "ak-env"),
                ("MODAL_TOKEN_SECRET", "as-env"),
                ("MODAL_SERVER_URL", "http://127.0.0.1:1"),
            ]),
            Some(dir.path()),
        )
        .expect("resolves");
        assert_eq!(c.token_id.expose(), "ak-env");
        assert_eq!(c.source, CredentialSource::Env);
        assert_eq!(c.server_url, "http://127.0.0.1:1");
        assert_eq!(c.environment, "dev");
    }

    #[test]
    fn a_broken_config_file_is_one_line_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("cfg.toml");
        std::fs::write(&cfg, "[p\ntoken_id = ").expect("write");
        let err = ModalCredentials::resolve(
            &env(&[("MODAL_CONFIG_PATH", cfg.to_str().expect("utf8"))]),
            None,
        )
        .expect_err("bad toml");
        let msg = err.to_string();
        assert!(
            msg.contains("cfg.toml") && msg.contains("modal setup"),
            "{msg}"
        );
        assert!(!msg.contains('\n'), "{msg}");
    }

    #[test]
    fn missing_credentials_is_one_actionable_line_and_secrets_are_redacted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = ModalCredentials::resolve(&env(&[]), Some(dir.path())).expect_err("no creds");
        let msg = err.to_string();
        assert!(
            msg.contains("modal setup") && msg.contains("MODAL_TOKEN_ID"),
            "{msg}"
        );
        assert!(!msg.contains('\n'));
        let c = ModalCredentials::new("http://x", "ak-123", "as-456");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("ak-123") && !dbg.contains("as-456"), "{dbg}");
    }
}
