//! The self-test: bundled canaries run through the full verification path of an image.
//!
//! No untested Lean reaches a verdict silently: before the first verification on an image id the
//! verifier runs [`CANARIES`] — an honest proof that must verify, and cheats (an axiom, a
//! `sorry`, a weakened statement, `native_decide`, an environment forgery that adds an unchecked
//! theorem) that must be refused *by Lean and the checker* (the source checks are switched off
//! for the canaries, so a broken checker cannot hide behind them). The outcome is cached per
//! image id (`$ATP_CACHE_DIR`, else `$XDG_CACHE_HOME/atp`, else `~/.cache/atp`, under
//! `self-test/`); a failed image makes every verification on it a
//! [`VerifyError::SelfTest`] naming the failed canary. A canary that errors (the engine, the
//! sandbox) fails the run but is not cached.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::report::ViolationKind;
use crate::verifier::{Prepared, Verifier, VerifyError};

/// What a canary must come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Verified,
    /// Refused with a violation found by Lean or the checker of one of these kinds.
    Refused(&'static [ViolationKind]),
}

/// One bundled canary: an original and a candidate file (`AtpCanary.lean`).
#[derive(Debug, Clone, Copy)]
pub struct Canary {
    pub name: &'static str,
    pub original: &'static str,
    pub candidate: &'static str,
    pub expect: Expect,
}

/// The canaries (plain Lean core: no Mathlib import, so they run in seconds). The `STANDIN_…`
/// comments let the test image's stand-in `lake` emulate what real Lean does with them.
pub const CANARIES: &[Canary] = &[
    Canary {
        name: "honest",
        original: "theorem atp_canary : 2 + 2 = 4 := sorry\n",
        candidate: "theorem atp_canary : 2 + 2 = 4 := rfl\n",
        expect: Expect::Verified,
    },
    Canary {
        name: "axiom",
        original: "theorem atp_canary : 2 + 2 = 5 := sorry\n",
        candidate:
            "axiom atp_canary_ax : 2 + 2 = 5\ntheorem atp_canary : 2 + 2 = 5 := atp_canary_ax\n",
        expect: Expect::Refused(&[ViolationKind::NonStandardAxiom]),
    },
    Canary {
        name: "sorry",
        original: "theorem atp_canary : 2 + 2 = 5 := sorry\n",
        candidate: "theorem atp_canary : 2 + 2 = 5 := sorry\n",
        expect: Expect::Refused(&[ViolationKind::NonStandardAxiom]),
    },
    Canary {
        name: "weakened_statement",
        original: "theorem atp_canary : 2 + 2 = 5 := sorry\n",
        candidate: "theorem atp_canary : True := trivial\n",
        expect: Expect::Refused(&[ViolationKind::StatementChanged]),
    },
    Canary {
        name: "native_decide",
        original: "theorem atp_canary : 2 + 2 = 4 := sorry\n",
        candidate: "theorem atp_canary : 2 + 2 = 4 := by native_decide\n",
        expect: Expect::Refused(&[
            ViolationKind::NonStandardAxiom,
            ViolationKind::KernelRejected,
        ]),
    },
    Canary {
        name: "environment_forgery",
        original: "theorem atp_canary : False := sorry\n",
        candidate: "import Lean\n\
            -- STANDIN_FORGE atp_canary : False\n\
            set_option debug.skipKernelTC true in\n\
            run_meta Lean.addDecl (.thmDecl { name := `atp_canary, levelParams := [], \
            type := .const ``False [], value := .const ``True.intro [] })\n",
        expect: Expect::Refused(&[ViolationKind::KernelRejected, ViolationKind::CompileError]),
    },
];

/// How one canary fared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryOutcome {
    pub name: String,
    pub passed: bool,
    /// One line: the verdict and its reason, or the error.
    pub detail: String,
}

/// A self-test of one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelfTestReport {
    pub image: String,
    pub image_id: String,
    pub passed: bool,
    pub canaries: Vec<CanaryOutcome>,
    /// Hash of the canaries and the verifier's scripts: a cache entry from another atp is stale.
    pub fingerprint: String,
    /// Whether every canary ran to a verdict (an errored run is not cached).
    #[serde(default)]
    pub conclusive: bool,
}

impl SelfTestReport {
    /// The first failed canary.
    pub fn failure(&self) -> Option<&CanaryOutcome> {
        self.canaries.iter().find(|c| !c.passed)
    }
}

/// The canaries' and scripts' fingerprint.
pub fn fingerprint() -> String {
    let mut h = Sha256::new();
    for c in CANARIES {
        h.update(c.name.as_bytes());
        h.update(c.original.as_bytes());
        h.update(c.candidate.as_bytes());
        h.update(format!("{:?}", c.expect).as_bytes());
    }
    h.update(crate::script::build_script(&BTreeMap::new(), Some(1)).as_bytes());
    h.update(crate::script::check_script(&BTreeMap::new(), &[], false).as_bytes());
    h.update([crate::protocol::PROTOCOL as u8]);
    hex::encode(h.finalize())
}

/// The `atp.purpose` label of the canaries' sandboxes.
pub const SELF_TEST_PURPOSE: &str = "self-test";

/// Where cached outcomes live.
pub fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("ATP_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("atp")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/atp")))?;
    Some(base.join("self-test"))
}

fn cache_file(image_id: &str) -> Option<PathBuf> {
    let safe: String = image_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    Some(cache_dir()?.join(format!("{safe}.json")))
}

fn read_cache(image_id: &str) -> Option<SelfTestReport> {
    let text = std::fs::read_to_string(cache_file(image_id)?).ok()?;
    let r: SelfTestReport = serde_json::from_str(&text).ok()?;
    (r.fingerprint == fingerprint() && r.image_id == image_id && r.conclusive).then_some(r)
}

fn write_cache(r: &SelfTestReport) {
    let Some(path) = cache_file(&r.image_id) else {
        return;
    };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(text) = serde_json::to_string_pretty(r) {
        let tmp = path.with_extension("json.tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
}

/// One lock per image id, so concurrent verifications run one self-test.
fn image_lock(image_id: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let mut m = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    m.entry(image_id.to_string()).or_default().clone()
}

impl Verifier {
    /// Run the canaries now (ignoring the cache) and record the outcome for the image.
    pub async fn self_test(&self) -> Result<SelfTestReport, VerifyError> {
        let info = self.backend().image_info().await?;
        let mut canaries = Vec::new();
        for c in CANARIES {
            let sources = BTreeMap::from([("AtpCanary.lean".to_string(), c.candidate.to_string())]);
            let original = BTreeMap::from([("AtpCanary.lean".to_string(), c.original.to_string())]);
            let p = Prepared::from_sources(sources, Some(&original), &self.options().policy, false);
            let outcome = match self.verify_prepared(p, Some(SELF_TEST_PURPOSE)).await {
                Ok(v) => {
                    let r = &v.report;
                    let passed = match c.expect {
                        Expect::Verified => r.verified,
                        Expect::Refused(kinds) => {
                            !r.verified
                                && r.violations
                                    .iter()
                                    .any(|x| x.from_lean && kinds.contains(&x.kind))
                        }
                    };
                    let verdict = if r.verified { "verified" } else { "refused" };
                    CanaryOutcome {
                        name: c.name.into(),
                        passed,
                        detail: format!("{verdict}: {}", r.reason()),
                    }
                }
                // the image's fault: a failed canary; anything else (engine, credentials) is
                // the caller's error, not a property of the image
                Err(
                    e @ (VerifyError::Checker(_)
                    | VerifyError::Script { .. }
                    | VerifyError::Original(_)),
                ) => CanaryOutcome {
                    name: c.name.into(),
                    passed: false,
                    detail: format!("error ({}): {e}", e.kind()),
                },
                Err(e) => return Err(e),
            };
            canaries.push(outcome);
        }
        let report = SelfTestReport {
            image: self.backend().image().to_string(),
            image_id: info.id.clone(),
            passed: canaries.iter().all(|c| c.passed),
            canaries,
            fingerprint: fingerprint(),
            conclusive: true,
        };
        if !info.id.is_empty() {
            write_cache(&report);
        }
        Ok(report)
    }

    /// The cached self-test of the image, run when missing; an error when it failed.
    pub(crate) async fn ensure_self_test(&self) -> Result<(), VerifyError> {
        let info = self.backend().image_info().await?;
        let lock = image_lock(&info.id);
        let _held = lock.lock().await;
        let report = match read_cache(&info.id).filter(|_| !info.id.is_empty()) {
            Some(r) => r,
            None => self.self_test().await?,
        };
        match report.failure() {
            None => Ok(()),
            Some(f) => Err(VerifyError::SelfTest {
                image: report.image.clone(),
                canary: f.name.clone(),
                message: f.detail.clone(),
            }),
        }
    }
}

/// The report as a table (for `atp doctor --self-test`).
pub fn render_table(r: &SelfTestReport) -> String {
    let mut out = format!("self-test of {} ({})\n", r.image, short(&r.image_id));
    for c in &r.canaries {
        out.push_str(&format!(
            "  {:<20} {:<4} {}\n",
            c.name,
            if c.passed { "ok" } else { "FAIL" },
            c.detail
        ));
    }
    out.push_str(if r.passed {
        "self-test passed\n"
    } else {
        "self-test FAILED: verifications on this image are errors\n"
    });
    out
}

fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}
