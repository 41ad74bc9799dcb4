//! Credential status: which credential a prover would use, whether it is there, and whether it
//! is about to expire — checked before anything is created.
//!
//! Invariant: an [`AuthStatus`] names where a credential comes from (an environment variable's
//! name, a file's path), never its value.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// How long before its expiry a credential counts as expiring.
pub const EXPIRING_WINDOW_S: i64 = 15 * 60;

/// What kind of credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// A static API key (billed per token).
    ApiKey,
    /// A subscription / OAuth token or login file (may expire).
    Oauth,
    /// The prover needs no credential.
    None,
}

/// The state of a credential now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthState {
    Ok,
    /// Present, but expires within [`EXPIRING_WINDOW_S`].
    Expiring,
    Expired,
    Missing,
    /// Not needed.
    NotRequired,
}

impl AuthState {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthState::Ok => "ok",
            AuthState::Expiring => "expiring",
            AuthState::Expired => "expired",
            AuthState::Missing => "missing",
            AuthState::NotRequired => "not required",
        }
    }

    /// Whether a run must not start.
    pub fn blocks(self) -> bool {
        matches!(self, AuthState::Missing | AuthState::Expired)
    }
}

/// What a prover would authenticate with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthStatus {
    pub kind: AuthKind,
    /// Where it comes from, e.g. `env ANTHROPIC_API_KEY` or `file ~/.codex/auth.json`.
    pub source: Option<String>,
    pub present: bool,
    /// Expiry, seconds since the Unix epoch, when the credential carries one.
    pub expires_at: Option<i64>,
    /// Whether the CLI can refresh it by itself (a refresh token is present).
    pub refreshable: bool,
    pub state: AuthState,
    /// How to fix a missing/expired credential (names a command or variable the user has).
    pub remedy: Option<String>,
}

impl AuthStatus {
    /// A prover that needs no credential.
    pub fn not_required() -> Self {
        AuthStatus {
            kind: AuthKind::None,
            source: None,
            present: true,
            expires_at: None,
            refreshable: false,
            state: AuthState::NotRequired,
            remedy: None,
        }
    }

    /// A missing credential with `remedy`.
    pub fn missing(kind: AuthKind, remedy: impl Into<String>) -> Self {
        AuthStatus {
            kind,
            source: None,
            present: false,
            expires_at: None,
            refreshable: false,
            state: AuthState::Missing,
            remedy: Some(remedy.into()),
        }
    }

    /// A present credential from `source`, with its expiry when known; the state is computed
    /// against the clock.
    pub fn present(
        kind: AuthKind,
        source: impl Into<String>,
        expires_at: Option<i64>,
        refreshable: bool,
        remedy_if_expired: impl Into<String>,
    ) -> Self {
        let state = state_at(expires_at, refreshable, now_unix());
        let remedy = matches!(state, AuthState::Expired | AuthState::Expiring)
            .then(|| remedy_if_expired.into());
        AuthStatus {
            kind,
            source: Some(source.into()),
            present: true,
            expires_at,
            refreshable,
            state,
            remedy,
        }
    }

    /// The line a blocked run prints, e.g. `claude: credential missing — set ANTHROPIC_API_KEY …`.
    pub fn problem(&self, prover: &str) -> Option<String> {
        match self.state {
            AuthState::Missing => Some(format!(
                "{prover}: no credential found — {}",
                self.remedy.as_deref().unwrap_or("see `atp auth-status`")
            )),
            AuthState::Expired => Some(format!(
                "{prover}: the credential from {} has expired — {}",
                self.source.as_deref().unwrap_or("its source"),
                self.remedy.as_deref().unwrap_or("log in again")
            )),
            _ => None,
        }
    }
}

fn state_at(expires_at: Option<i64>, refreshable: bool, now: i64) -> AuthState {
    match expires_at {
        None => AuthState::Ok,
        // A CLI with a refresh token renews an expired access token itself.
        Some(_) if refreshable => AuthState::Ok,
        Some(t) if t <= now => AuthState::Expired,
        Some(t) if t - now < EXPIRING_WINDOW_S => AuthState::Expiring,
        Some(_) => AuthState::Ok,
    }
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The `exp` claim of a JWT (unverified: only for telling the user when it expires).
pub fn jwt_expiry(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("exp")?.as_i64()
}

/// Where a prover reads its credentials from: the process environment (with `.env` merged by
/// the CLI) or, in tests, a fixed map. Values never leave this type except into an exec's env.
#[derive(Clone, Default)]
pub struct EnvSource {
    fixed: Option<BTreeMap<String, String>>,
}

impl std::fmt::Debug for EnvSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: values are secrets.
        let names: Vec<&String> = self.fixed.iter().flat_map(|m| m.keys()).collect();
        f.debug_struct("EnvSource")
            .field("fixed_names", &names)
            .finish()
    }
}

impl EnvSource {
    /// The process environment.
    pub fn process() -> Self {
        EnvSource { fixed: None }
    }

    /// A fixed map (tests).
    pub fn fixed(vars: BTreeMap<String, String>) -> Self {
        EnvSource { fixed: Some(vars) }
    }

    /// A non-empty value of `name`.
    pub fn get(&self, name: &str) -> Option<String> {
        let v = match &self.fixed {
            Some(m) => m.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        v.filter(|v| !v.trim().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_states() {
        let now = 1_000_000;
        assert_eq!(state_at(None, false, now), AuthState::Ok);
        assert_eq!(state_at(Some(now - 1), false, now), AuthState::Expired);
        assert_eq!(state_at(Some(now - 1), true, now), AuthState::Ok);
        assert_eq!(state_at(Some(now + 60), false, now), AuthState::Expiring);
        assert_eq!(state_at(Some(now + 3600), false, now), AuthState::Ok);
    }

    #[test]
    fn jwt_exp_is_read_without_verification() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"exp":1234}"#);
        assert_eq!(jwt_expiry(&format!("h.{payload}.s")), Some(1234));
        assert_eq!(jwt_expiry("not-a-jwt"), None);
    }

    #[test]
    fn debug_never_shows_values() {
        let e = EnvSource::fixed([("K".to_string(), "secret-value".to_string())].into());
        assert!(!format!("{e:?}").contains("secret-value"));
        assert_eq!(e.get("K").as_deref(), Some("secret-value"));
    }
}
