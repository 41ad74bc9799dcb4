//! The two renderers: a classic Dockerfile and Modal's ordered layers.
//!
//! Both walk the same validated steps and end with the same pin environment
//! (`ATP_LEAN_TOOLCHAIN`, `ATP_MATHLIB_REV`, `ATP_SPEC_HASH`); the Dockerfile also sets the
//! `atp.*` labels. Values are literal in both (the spec rejects `$` in env values).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Serialize;

use crate::error::{Result, SpecError};
use crate::spec::{ImageSpec, Step};
use crate::tools::elan_release_url;

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

/// One rendered instruction: what a step becomes, the same for both targets.
enum Instr {
    Env(BTreeMap<String, String>),
    Run(Vec<String>),
    Workdir(String),
    CopySkeleton(String),
    User(String),
    /// A spec directory (`from`) placed at `to`: its files.
    Copy {
        from: String,
        to: String,
        files: BTreeMap<String, Vec<u8>>,
    },
}

impl ImageSpec {
    /// Validate, then lower every step to the instruction both renderings write. `npm`, `pipx`
    /// and `elan` steps become their install commands here, at the locked versions when a lock
    /// is attached — the one place install lines are written.
    fn instructions(&self) -> Result<Vec<Instr>> {
        self.validate()?;
        let requirements = self.requirements()?;
        let arg = |step: usize, i: usize| -> Result<String> {
            let req = requirements
                .iter()
                .filter(|r| r.step == step)
                .nth(i)
                .ok_or_else(|| SpecError::BadLock {
                    path: self.origin.clone(),
                    message: format!("step {step} has no entry {i}"),
                })?;
            Ok(match &self.lock {
                None => req.unlocked_arg(),
                Some(lock) => lock
                    .tool(req.kind, &req.name)
                    .ok_or_else(|| SpecError::BadLock {
                        path: self.origin.clone(),
                        message: format!("no entry for {} {}", req.kind, req.name),
                    })?
                    .install_arg(),
            })
        };
        let mut out = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let index = i + 1;
            out.push(match step {
                Step::Env(vars) => Instr::Env(vars.clone()),
                Step::Run(commands) => Instr::Run(commands.as_slice().to_vec()),
                Step::Workdir(dir) => Instr::Workdir(dir.clone()),
                Step::CopySkeleton(dest) => Instr::CopySkeleton(dest.clone()),
                Step::User(user) => Instr::User(user.clone()),
                Step::Copy(copy) => Instr::Copy {
                    from: copy.from.clone(),
                    to: copy.to.clone(),
                    files: copy.files.clone(),
                },
                Step::Npm(entries) => {
                    let args = (0..entries.len())
                        .map(|k| arg(index, k))
                        .collect::<Result<Vec<_>>>()?;
                    Instr::Run(vec![
                        format!("npm install -g {}", args.join(" ")),
                        "npm cache clean --force".to_string(),
                    ])
                }
                Step::Pipx(entries) => Instr::Run(
                    (0..entries.len())
                        .map(|k| Ok(format!("pipx install {}", arg(index, k)?)))
                        .collect::<Result<Vec<_>>>()?,
                ),
                Step::Elan(version) => Instr::Run(vec![
                    format!(
                        "curl -fsSL \"{}\" -o /tmp/elan-init.tar.gz",
                        elan_release_url(version)
                    ),
                    "tar -xzf /tmp/elan-init.tar.gz -C /tmp".to_string(),
                    "/tmp/elan-init -y --no-modify-path --default-toolchain none".to_string(),
                    "rm -f /tmp/elan-init /tmp/elan-init.tar.gz".to_string(),
                ]),
            });
        }
        Ok(out)
    }

    /// The `FROM` reference: the base, at the locked digest when the lock knows it.
    fn base_reference(&self) -> String {
        match &self.lock {
            Some(lock) => lock.base().reference(),
            None => self.base.clone(),
        }
    }

    /// A complete classic-builder Dockerfile. Its build context is the skeleton's files
    /// ([`ImageSpec::build_context`]).
    pub fn to_dockerfile(&self) -> Result<String> {
        let instructions = self.instructions()?;
        let mut out = String::new();
        out.push_str("# Rendered by atp-image from an image spec: edit the spec, not this file.\n");
        out.push_str("# Build context: the Lean skeleton directory (images/lean/).\n");
        if let Some(lock) = &self.lock {
            out.push_str(&format!(
                "# Locked: every tool at the version of the image lock {}.\n",
                lock.lock_hash()
            ));
        }
        out.push_str(&format!("FROM {}\n", self.base_reference()));
        let skeleton: Vec<&String> = self.skeleton.files().keys().collect();
        for instr in instructions {
            let line = match instr {
                Instr::Env(vars) => docker_env(&vars),
                Instr::Run(commands) => format!("RUN {}", commands.join(" \\\n && ")),
                Instr::Workdir(dir) => format!("WORKDIR {dir}"),
                Instr::CopySkeleton(dest) => {
                    let mut args: Vec<String> = skeleton.iter().map(|f| json_str(f)).collect();
                    args.push(json_str(&format!("{}/", dest.trim_end_matches('/'))));
                    format!("COPY [{}]", args.join(", "))
                }
                Instr::User(user) => format!("USER {user}"),
                Instr::Copy { from, to, .. } => format!(
                    "COPY [{}, {}]",
                    json_str(&format!("{from}/")),
                    json_str(&format!("{}/", to.trim_end_matches('/')))
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
        let instructions = self.instructions()?;
        let mut layers = vec![ModalLayer {
            base: Some(self.base_reference()),
            dockerfile_commands: Vec::new(),
        }];
        for instr in instructions {
            let command = match instr {
                Instr::Env(vars) => docker_env_one_line(&vars),
                Instr::Run(commands) => format!("RUN {}", commands.join(" && ")),
                Instr::Workdir(dir) => format!("WORKDIR {dir}"),
                Instr::CopySkeleton(dest) => {
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
                Instr::User(user) => format!("USER {user}"),
                Instr::Copy { to, files, .. } => {
                    let dest = to.trim_end_matches('/');
                    let mut dirs: std::collections::BTreeSet<String> =
                        std::collections::BTreeSet::from([dest.to_string()]);
                    for rel in files.keys() {
                        if let Some((parent, _)) = rel.rsplit_once('/') {
                            dirs.insert(format!("{dest}/{parent}"));
                        }
                    }
                    let mut parts: Vec<String> = dirs
                        .iter()
                        .map(|d| format!("mkdir -p {}", shell_quote(d)))
                        .collect();
                    for (rel, bytes) in &files {
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
