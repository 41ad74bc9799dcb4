//! The two renderers: a classic Dockerfile and Modal's ordered layers.
//!
//! Both walk the same validated steps and end with the same pin environment
//! (`ATP_LEAN_TOOLCHAIN`, `ATP_MATHLIB_REV`, `ATP_SPEC_HASH`); the Dockerfile also sets the
//! `atp.*` labels. Values are literal in both (the spec rejects `$` in env values).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Serialize;

use crate::error::Result;
use crate::spec::{ImageSpec, Step};

/// One layer of a Modal image: what one `DockerfileCommands` call (or the registry base) adds.
///
/// Invariant: only the first layer has a `base`; no command is a `COPY` from a build context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModalLayer {
    /// Registry reference of the first layer (`FROM <base>`); `None` for every later layer,
    /// which builds `FROM base` on the previous one.
    pub base: Option<String>,
    /// The layer's Dockerfile commands, without the `FROM` line.
    pub dockerfile_commands: Vec<String>,
}

impl ModalLayer {
    /// The commands as Modal's builder takes them: `FROM <base>` (first layer) or `FROM base`
    /// (later layers), then the layer's commands.
    pub fn commands_with_from(&self) -> Vec<String> {
        let from = match &self.base {
            Some(base) => format!("FROM {base}"),
            None => "FROM base".to_string(),
        };
        std::iter::once(from)
            .chain(self.dockerfile_commands.iter().cloned())
            .collect()
    }
}

impl ImageSpec {
    /// A complete classic-builder Dockerfile. Its build context is the skeleton's files
    /// ([`ImageSpec::build_context`]).
    pub fn to_dockerfile(&self) -> Result<String> {
        self.validate()?;
        let mut out = String::new();
        out.push_str("# Rendered by atp-image from an image spec: edit the spec, not this file.\n");
        out.push_str("# Build context: the Lean skeleton directory (images/lean/).\n");
        out.push_str(&format!("FROM {}\n", self.base));
        let skeleton: Vec<&String> = self.skeleton.files().keys().collect();
        for step in &self.steps {
            let line = match step {
                Step::Env(vars) => docker_env(vars),
                Step::Run(commands) => format!("RUN {}", commands.as_slice().join(" \\\n && ")),
                Step::Workdir(dir) => format!("WORKDIR {dir}"),
                Step::CopySkeleton(dest) => {
                    let mut args: Vec<String> = skeleton.iter().map(|f| json_str(f)).collect();
                    args.push(json_str(&format!("{}/", dest.trim_end_matches('/'))));
                    format!("COPY [{}]", args.join(", "))
                }
                Step::User(user) => format!("USER {user}"),
                Step::Copy(copy) => format!(
                    "COPY [{}, {}]",
                    json_str(&format!("{}/", copy.from)),
                    json_str(&format!("{}/", copy.to.trim_end_matches('/')))
                ),
            };
            out.push_str(&line);
            out.push('\n');
        }
        out.push_str(&docker_env(&self.pin_env()?));
        out.push('\n');
        let labels: Vec<String> = self
            .image_labels()?
            .iter()
            .map(|(k, v)| format!("{}={}", docker_quote(k), docker_quote(v)))
            .collect();
        out.push_str(&format!("LABEL {}\n", labels.join(" \\\n      ")));
        Ok(out)
    }

    /// The files of the Dockerfile's build context: `(name, contents)`: the skeleton's files,
    /// then each copied directory's under its `from` path.
    pub fn build_context(&self) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = self
            .skeleton
            .files()
            .iter()
            .map(|(name, bytes)| (name.clone(), bytes.clone()))
            .collect();
        for step in &self.steps {
            if let Step::Copy(copy) = step {
                for (rel, bytes) in &copy.files {
                    out.push((format!("{}/{rel}", copy.from), bytes.clone()));
                }
            }
        }
        out
    }

    /// Modal's ordered layers: the registry base, one layer per step, and a last layer with the
    /// pin environment. Skeleton files are written by `base64 -d` commands (Modal has no build
    /// context); `PATH` and every other variable are literal.
    pub fn to_modal_layers(&self) -> Result<Vec<ModalLayer>> {
        self.validate()?;
        let mut layers = vec![ModalLayer {
            base: Some(self.base.clone()),
            dockerfile_commands: Vec::new(),
        }];
        for step in &self.steps {
            let command = match step {
                Step::Env(vars) => docker_env_one_line(vars),
                Step::Run(commands) => format!("RUN {}", commands.as_slice().join(" && ")),
                Step::Workdir(dir) => format!("WORKDIR {dir}"),
                Step::CopySkeleton(dest) => {
                    let dest = dest.trim_end_matches('/');
                    let dest = if dest.is_empty() { "/" } else { dest };
                    let mut parts = vec![format!("mkdir -p {}", shell_quote(dest))];
                    for (name, bytes) in self.skeleton.files() {
                        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
                        let path = format!("{}/{name}", dest.trim_end_matches('/'));
                        parts.push(format!(
                            "printf '%s' {b64} | base64 -d > {}",
                            shell_quote(&path)
                        ));
                    }
                    format!("RUN {}", parts.join(" && "))
                }
                Step::User(user) => format!("USER {user}"),
                Step::Copy(copy) => {
                    let dest = copy.to.trim_end_matches('/');
                    let mut dirs: std::collections::BTreeSet<String> =
                        std::collections::BTreeSet::from([dest.to_string()]);
                    for rel in copy.files.keys() {
                        if let Some((parent, _)) = rel.rsplit_once('/') {
                            dirs.insert(format!("{dest}/{parent}"));
                        }
                    }
                    let mut parts: Vec<String> = dirs
                        .iter()
                        .map(|d| format!("mkdir -p {}", shell_quote(d)))
                        .collect();
                    for (rel, bytes) in &copy.files {
                        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
                        parts.push(format!(
                            "printf '%s' {b64} | base64 -d > {}",
                            shell_quote(&format!("{dest}/{rel}"))
                        ));
                    }
                    format!("RUN {}", parts.join(" && "))
                }
            };
            layers.push(ModalLayer {
                base: None,
                dockerfile_commands: vec![command],
            });
        }
        layers.push(ModalLayer {
            base: None,
            dockerfile_commands: vec![docker_env_one_line(&self.pin_env()?)],
        });
        Ok(layers)
    }
}

fn docker_env(vars: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = vars
        .iter()
        .map(|(k, v)| format!("{k}={}", docker_quote(v)))
        .collect();
    format!("ENV {}", pairs.join(" \\\n    "))
}

fn docker_env_one_line(vars: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = vars
        .iter()
        .map(|(k, v)| format!("{k}={}", docker_quote(v)))
        .collect();
    format!("ENV {}", pairs.join(" "))
}

/// A double-quoted Dockerfile word: `\`, `"` and `$` escaped, so the value stays literal.
fn docker_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '\\' | '"' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn json_str(value: &str) -> String {
    serde_json::Value::String(value.to_string()).to_string()
}

/// Single-quote for `/bin/sh`.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}
