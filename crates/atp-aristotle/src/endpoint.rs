//! Where Aristotle is and which key to send, found the way Harmonic's own client (aristotlelib
//! 3.0.0) finds them, so a user who ran `aristotle login` needs nothing more.
//!
//! - The endpoint is an origin (scheme, host, optional port; nothing else): `--api-base`, else
//!   `ARISTOTLE_WEB_URL`, else [`DEFAULT_ORIGIN`]; `https` unless the host is loopback. Default
//!   ports are dropped and IPv6 hosts bracketed, so one server has one spelling.
//! - The key is `ARISTOTLE_API_KEY`, else the stored credentials file
//!   `$XDG_CONFIG_HOME/aristotle/credentials.json` (default `~/.config/…`), or
//!   `credentials-<sha256(origin)>.json` for a non-default origin; whitespace around it is
//!   stripped, and a key with a space, a non-ASCII or a control character is refused.
//!
//! Invariant: a [`Secret`] never shows its value (`Debug` prints `<redacted>`); errors and
//! statuses name where a key comes from, never what it is.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use atp_prover::{AuthKind, AuthStatus, EnvSource};
use sha2::{Digest, Sha256};

/// Harmonic's service.
pub const DEFAULT_ORIGIN: &str = "https://aristotle.harmonic.fun";
/// The API version path appended to the origin.
pub const API_PATH: &str = "/api/v3";
/// The variable naming another origin.
pub const WEB_URL_VAR: &str = "ARISTOTLE_WEB_URL";
/// The variable holding a key.
pub const KEY_VAR: &str = "ARISTOTLE_API_KEY";

const REMEDY: &str = "run `aristotle login` (pip install aristotlelib) or set ARISTOTLE_API_KEY, in the environment or in .env";

/// A credential value. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value, for the request header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Normalise an origin: `scheme://host[:port]`, `https` unless loopback. The error is one line
/// naming `what` (the flag or variable it came from).
pub fn parse_origin(value: &str, what: &str) -> Result<String, String> {
    let v = value.trim();
    let bad = || {
        format!("{what} `{v}`: must be an http(s) origin without credentials, a path, a query or a fragment, e.g. {DEFAULT_ORIGIN}")
    };
    if v.chars().any(|c| c.is_whitespace() || c.is_control())
        || v.contains('?')
        || v.contains('#')
        || v.contains('\\')
        || v.contains('%')
    {
        return Err(bad());
    }
    let url = reqwest::Url::parse(v).map_err(|_| bad())?;
    let scheme = url.scheme();
    if !matches!(scheme, "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
        || !matches!(url.path(), "" | "/")
        || v.trim_end_matches('/').ends_with(':')
    {
        return Err(bad());
    }
    let Some(raw_host) = url.host_str().filter(|h| !h.is_empty()) else {
        return Err(bad());
    };
    let (host, loopback) = match raw_host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(IpAddr::V6(a)) => (format!("[{a}]"), a.is_loopback()),
        Ok(a) => (a.to_string(), a.is_loopback()),
        Err(_) => {
            let d = raw_host.to_ascii_lowercase();
            let lo = d == "localhost";
            (d, lo)
        }
    };
    if scheme == "http" && !loopback {
        return Err(format!(
            "{what} `{v}`: must use https unless its host is loopback (localhost, 127.0.0.1, ::1)"
        ));
    }
    // `port()` is `None` for the scheme's default port.
    Ok(match url.port() {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    })
}

/// The origin to use: `--api-base` first, then `ARISTOTLE_WEB_URL`, then the default.
pub fn resolve_origin(api_base: Option<&str>, env: &EnvSource) -> Result<String, String> {
    match api_base {
        Some(b) => parse_origin(b, "--api-base"),
        None => match env.get(WEB_URL_VAR) {
            Some(v) => parse_origin(&v, WEB_URL_VAR),
            None => Ok(DEFAULT_ORIGIN.to_string()),
        },
    }
}

/// Whether an origin's host is loopback (its client then bypasses proxies).
pub fn is_loopback(origin: &str) -> bool {
    let host = origin.split("://").nth(1).unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

/// The credentials file Harmonic's CLI writes for `origin`.
pub fn credentials_path(origin: &str, env: &EnvSource) -> Option<PathBuf> {
    let dir = match env.get("XDG_CONFIG_HOME") {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(env.get("HOME")?).join(".config"),
    }
    .join("aristotle");
    Some(if origin == DEFAULT_ORIGIN {
        dir.join("credentials.json")
    } else {
        dir.join(format!(
            "credentials-{}.json",
            hex::encode(Sha256::digest(origin.as_bytes()))
        ))
    })
}

/// Why a key cannot go into a header, if it cannot.
fn key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        Some("is blank")
    } else if key.contains(' ') {
        Some("contains a space")
    } else if !key.is_ascii() {
        Some("contains a non-ASCII character")
    } else if key.chars().any(|c| c.is_control()) {
        Some("contains a control character")
    } else {
        None
    }
}

/// A key found, or why none can be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A usable key and where it came from (`env ARISTOTLE_API_KEY`, `file …`).
    Key {
        key: Secret,
        source: String,
    },
    /// A key was found but is malformed (one line naming its source and the problem).
    Malformed(String),
    Missing,
}

/// Find the key for `origin`: the environment, then the stored credentials file.
pub fn find_key(origin: &str, env: &EnvSource) -> Found {
    let (raw, source) = if let Some(v) = env.get(KEY_VAR) {
        (v, format!("env {KEY_VAR}"))
    } else {
        let Some(path) = credentials_path(origin, env) else {
            return Found::Missing;
        };
        let stored = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("api_key")?.as_str().map(str::to_string))
            .filter(|k| !k.is_empty());
        match stored {
            Some(k) => (k, format!("file {}", path.display())),
            None => return Found::Missing,
        }
    };
    let key = raw.trim().to_string();
    match key_problem(&key) {
        Some(p) => Found::Malformed(format!(
            "the Aristotle API key from {source} {p} — {REMEDY}"
        )),
        None => Found::Key {
            key: Secret(key),
            source,
        },
    }
}

/// The credential status `atp auth-status` shows for `origin`.
pub fn auth_status(origin: Result<&str, &str>, env: &EnvSource) -> AuthStatus {
    let origin = match origin {
        Ok(o) => o,
        Err(e) => return AuthStatus::missing(AuthKind::ApiKey, e.to_string()),
    };
    match find_key(origin, env) {
        Found::Key { source, .. } => {
            AuthStatus::present(AuthKind::ApiKey, source, None, false, REMEDY)
        }
        Found::Malformed(line) => AuthStatus::missing(AuthKind::ApiKey, line),
        Found::Missing => AuthStatus::missing(AuthKind::ApiKey, REMEDY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(pairs: &[(&str, &str)]) -> EnvSource {
        EnvSource::fixed(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    #[test]
    fn origins_are_normalised_and_https_is_required_off_loopback() {
        let ok = |v: &str| parse_origin(v, "X").expect(v);
        assert_eq!(ok("https://aristotle.harmonic.fun/"), DEFAULT_ORIGIN);
        assert_eq!(ok("https://Aristotle.Harmonic.fun:443"), DEFAULT_ORIGIN);
        assert_eq!(ok("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(ok("http://localhost:80"), "http://localhost");
        assert_eq!(ok("http://[::1]:9000"), "http://[::1]:9000");
        assert_eq!(ok("https://example.org:8443"), "https://example.org:8443");
        for bad in [
            "http://example.org",
            "https://example.org/api",
            "https://example.org?x=1",
            "https://example.org#f",
            "https://user:pw@example.org",
            "ftp://example.org",
            "example.org",
            "https://",
            "https://exa mple.org",
        ] {
            assert!(parse_origin(bad, "X").is_err(), "{bad}");
        }
        let e = parse_origin("http://example.org", "ARISTOTLE_WEB_URL").expect_err("http");
        assert!(
            e.starts_with("ARISTOTLE_WEB_URL `http://example.org`: must use https"),
            "{e}"
        );
    }

    #[test]
    fn the_flag_wins_over_the_variable() {
        let e = env(&[(WEB_URL_VAR, "http://127.0.0.1:1")]);
        assert_eq!(resolve_origin(None, &e).expect("env"), "http://127.0.0.1:1");
        assert_eq!(
            resolve_origin(Some("http://127.0.0.1:2"), &e).expect("flag"),
            "http://127.0.0.1:2"
        );
        assert_eq!(
            resolve_origin(None, &env(&[])).expect("default"),
            DEFAULT_ORIGIN
        );
        assert!(is_loopback("http://127.0.0.1:1"));
        assert!(is_loopback("http://[::1]:9"));
        assert!(is_loopback("http://localhost"));
        assert!(!is_loopback(DEFAULT_ORIGIN));
    }

    #[test]
    fn the_key_comes_from_the_environment_then_the_stored_file() {
        let d = tempfile::tempdir().expect("tmp");
        let cfg = d.path().to_str().expect("utf8");
        std::fs::create_dir_all(d.path().join("aristotle")).expect("mk");
        std::fs::write(
            d.path().join("aristotle/credentials.json"),
            r#"{"api_key": "  stored-key\n", "name": "me", "device_login": true, "created_at": "x"}"#,
        )
        .expect("w");
        let from_file = find_key(DEFAULT_ORIGIN, &env(&[("XDG_CONFIG_HOME", cfg)]));
        assert_eq!(
            from_file,
            Found::Key {
                key: Secret::new("stored-key"),
                source: format!("file {}/aristotle/credentials.json", cfg)
            }
        );
        let from_env = find_key(
            DEFAULT_ORIGIN,
            &env(&[("XDG_CONFIG_HOME", cfg), (KEY_VAR, "env-key")]),
        );
        assert!(
            matches!(from_env, Found::Key { ref source, .. } if source == "env ARISTOTLE_API_KEY")
        );
        // Another origin has its own file.
        let other = "http://127.0.0.1:9";
        assert_eq!(
            find_key(other, &env(&[("XDG_CONFIG_HOME", cfg)])),
            Found::Missing
        );
        let p = credentials_path(other, &env(&[("XDG_CONFIG_HOME", cfg)])).expect("path");
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        assert_eq!(
            name,
            format!(
                "credentials-{}.json",
                hex::encode(Sha256::digest(other.as_bytes()))
            )
        );
        // HOME/.config when XDG_CONFIG_HOME is unset.
        let home = credentials_path(DEFAULT_ORIGIN, &env(&[("HOME", "/h")])).expect("home");
        assert_eq!(home, PathBuf::from("/h/.config/aristotle/credentials.json"));
    }

    #[test]
    fn malformed_keys_are_refused_naming_the_source_not_the_value() {
        let f = find_key(DEFAULT_ORIGIN, &env(&[(KEY_VAR, "sk secret")]));
        let Found::Malformed(line) = f else {
            panic!("{f:?}")
        };
        assert!(
            line.contains("env ARISTOTLE_API_KEY contains a space"),
            "{line}"
        );
        assert!(!line.contains("secret"), "{line}");
        let st = auth_status(Ok(DEFAULT_ORIGIN), &env(&[(KEY_VAR, "sk-é")]));
        assert!(st.state.blocks());
        assert!(format!("{:?}", Secret::new("value-x")).contains("redacted"));
        assert!(!format!("{:?}", Secret::new("value-x")).contains("value-x"));
    }
}
