//! `atp doctor`: is the engine reachable, which version, is the configured image there?
//! `--self-test` also runs the verifier's canaries on the image (and records the outcome the
//! verifier consults before its first verdict on that image).

use std::collections::BTreeMap;
use std::process::ExitCode;

use atp_backend::{BackendError, Health, ImageInfo};
use atp_image::ImagePins;
use serde::Serialize;

use crate::backend::{self, BackendArgs};
use crate::cmd::{print_json, Global};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Run the verifier's self-test on the image now: an honest canary must verify and the
    /// cheats (axiom, sorry, weakened statement, native_decide, environment forgery) must be
    /// refused by Lean and the image's checker.
    #[arg(long)]
    pub self_test: bool,
}

/// The outcome of one check: what was found, or the one-line error.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum Check<T> {
    Ok(T),
    Failed { kind: &'static str, error: String },
    Skipped { reason: String },
}

impl<T> Check<T> {
    fn from_result(r: Result<T, BackendError>) -> Self {
        match r {
            Ok(v) => Check::Ok(v),
            Err(e) => Check::Failed {
                kind: e.kind(),
                error: e.to_string(),
            },
        }
    }

    fn ok(&self) -> bool {
        matches!(self, Check::Ok(_))
    }
}

#[derive(Debug, Serialize)]
struct Report {
    ok: bool,
    backend: String,
    image: String,
    engine: Check<Health>,
    image_check: Check<ImageInfo>,
    /// The image's pins, lock hash and tool versions as read from its `atp.*` labels; `None`
    /// when the image was not found or carries no pins.
    pins: Option<ImagePins>,
    #[serde(skip_serializing_if = "Option::is_none")]
    self_test: Option<SelfTestCheck>,
}

/// The self-test's outcome, or why it could not run.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum SelfTestCheck {
    Ran(atp_verify::SelfTestReport),
    Failed { kind: &'static str, error: String },
    Skipped { reason: String },
}

pub async fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let spec = args.backend.spec();
    let b = backend::make(&spec)?;
    let engine = Check::from_result(b.health().await);
    let image_check = if engine.ok() {
        Check::from_result(b.image_info().await)
    } else {
        Check::Skipped {
            reason: "engine not reachable".into(),
        }
    };
    let self_test = if !args.self_test {
        None
    } else if !image_check.ok() {
        Some(SelfTestCheck::Skipped {
            reason: "image not available".into(),
        })
    } else {
        // the verifier's own sandboxes have no network
        let mut spec = spec.clone();
        spec.network = atp_backend::NetworkMode::None;
        let verifier = atp_verify::Verifier::new(backend::make(&spec)?);
        Some(match verifier.self_test().await {
            Ok(r) => SelfTestCheck::Ran(r),
            Err(e) => SelfTestCheck::Failed {
                kind: e.kind(),
                error: e.to_string(),
            },
        })
    };
    let self_test_ok = match &self_test {
        None => true,
        Some(SelfTestCheck::Ran(r)) => r.passed,
        Some(_) => false,
    };
    let pins = match &image_check {
        Check::Ok(info) => ImagePins::from_labels(&info.labels),
        _ => None,
    };
    let report = Report {
        ok: engine.ok() && image_check.ok() && self_test_ok,
        pins,
        self_test,
        backend: b.name().to_string(),
        image: b.image().to_string(),
        engine,
        image_check,
    };
    if global.json {
        print_json(&report)?;
    } else {
        print!("{}", render(&report));
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn render(r: &Report) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<9} {v}\n"));
    line("backend", r.backend.clone());
    match &r.engine {
        Check::Ok(h) => {
            line("endpoint", h.endpoint.clone());
            line(
                "engine",
                format!(
                    "ok — version {}, API {}",
                    h.version.as_deref().unwrap_or("?"),
                    h.api_version.as_deref().unwrap_or("?")
                ),
            );
            for (k, v) in &h.details {
                line(k, v.clone());
            }
        }
        Check::Failed { error, .. } => line("engine", format!("FAILED — {error}")),
        Check::Skipped { reason } => line("engine", format!("not checked ({reason})")),
    }
    match &r.image_check {
        Check::Ok(i) => {
            let size = i
                .size_bytes
                .map(|s| format!(", {:.1} MB", s as f64 / 1e6))
                .unwrap_or_default();
            line(
                "image",
                format!("{} — present ({}{size})", i.name, short_id(&i.id)),
            );
            // The tool list is shown parsed, one line per tool, below.
            let pins: BTreeMap<_, _> = i
                .labels
                .iter()
                .filter(|(k, _)| k.starts_with("atp.") && k.as_str() != atp_image::LABEL_TOOLS)
                .collect();
            if pins.is_empty() {
                line("labels", "no atp.* labels".into());
            }
            for (k, v) in pins {
                line("label", format!("{k}={v}"));
            }
            match &r.pins {
                Some(p) if !p.tools.is_empty() => {
                    for t in &p.tools {
                        line("tool", format!("{} {} {}", t.kind, t.name, t.version));
                    }
                }
                _ => line("tools", "not locked (no atp.tools label)".into()),
            }
        }
        Check::Failed { error, .. } => line("image", format!("FAILED — {error}")),
        Check::Skipped { reason } => line("image", format!("{} not checked ({reason})", r.image)),
    }
    match &r.self_test {
        Some(SelfTestCheck::Ran(t)) => {
            for l in atp_verify::selftest::render_table(t).lines() {
                line("self-test", l.trim_start().to_string());
            }
        }
        Some(SelfTestCheck::Failed { error, .. }) => line("self-test", format!("FAILED — {error}")),
        Some(SelfTestCheck::Skipped { reason }) => line("self-test", format!("not run ({reason})")),
        None => {}
    }
    out.push_str(if r.ok {
        "all checks passed\n"
    } else {
        "some checks failed\n"
    });
    out
}

fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}
