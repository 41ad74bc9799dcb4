//! Image builds through the Engine API with the classic builder (`POST /build`, builder v1).
//!
//! Generic: takes a rendered Dockerfile and in-memory context files; knows nothing of specs.
//! The context is sent as an in-memory tar; build output is streamed line by line to a
//! progress callback; a failing step is reported with its `Step i/n : ...` line and its last
//! output lines. Intermediate containers are always removed (`forcerm`).

use std::collections::{BTreeMap, HashMap, VecDeque};

use bollard::query_parameters::{BuildImageOptions, BuilderVersion};
use bollard::Docker;
use futures::StreamExt;
use tracing::Instrument;

/// Where the Dockerfile is placed inside the build context tar.
pub const DOCKERFILE_PATH: &str = ".atp-build/Dockerfile";
/// How many output lines of the failing step an error keeps.
pub const KEPT_LINES: usize = 20;

/// One file of the build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    /// Relative path inside the context (`/`-separated, no `..`).
    pub path: String,
    pub contents: Vec<u8>,
    /// Unix permission bits, e.g. `0o644`.
    pub mode: u32,
}

impl ContextFile {
    /// A regular file with mode 0644.
    pub fn new(path: impl Into<String>, contents: impl Into<Vec<u8>>) -> Self {
        Self {
            path: path.into(),
            contents: contents.into(),
            mode: 0o644,
        }
    }
}

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The Dockerfile's text (classic builder syntax).
    pub dockerfile: String,
    /// Files the Dockerfile's `COPY`/`ADD` can see.
    pub context: Vec<ContextFile>,
    /// `name[:tag]` given to the result.
    pub tag: String,
    /// Labels added on top of the Dockerfile's own.
    pub labels: BTreeMap<String, String>,
    /// Rebuild every step instead of reusing cached layers.
    pub no_cache: bool,
    /// Network mode of the `RUN` containers (`"none"` to build offline); engine default if unset.
    pub network_mode: Option<String>,
}

/// Progress of a build, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A Dockerfile step started: `Step 3/7 : RUN ...` as `index=3, total=7`.
    Step {
        index: usize,
        total: usize,
        instruction: String,
    },
    /// One line of build output (command output or builder notes such as ` ---> abc`).
    Output(String),
}

/// A finished build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// Engine id (`sha256:...`).
    pub id: String,
    pub tag: String,
    /// How many Dockerfile steps ran.
    pub steps: usize,
}

/// Why a build failed. One line each; [`BuildError::StepFailed`] keeps the step's output.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("Docker engine unavailable: {0}; start Docker or set DOCKER_HOST")]
    EngineUnavailable(String),
    #[error("invalid build input: {0}")]
    InvalidInput(String),
    #[error("image build failed at {step}: {message}{}", last_lines_suffix(.last_lines))]
    StepFailed {
        /// The builder's step line, e.g. `Step 3/7 : RUN false`.
        step: String,
        /// The engine's error, e.g. `The command '/bin/sh -c false' returned a non-zero code: 1`.
        message: String,
        /// Up to [`KEPT_LINES`] last output lines of that step.
        last_lines: Vec<String>,
        /// The last intermediate image built before the failure (remove it to drop the
        /// untagged layers the failed build left behind).
        last_image: Option<String>,
    },
    #[error("image build failed: {0}")]
    Engine(String),
}

fn last_lines_suffix(lines: &[String]) -> String {
    let tail: Vec<&str> = lines
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(String::as_str)
        .collect();
    if tail.is_empty() {
        String::new()
    } else {
        format!(" (last output: {})", tail.join(" | "))
    }
}

/// Build `req` with the classic builder, streaming progress to `progress` (the public entry is
/// [`crate::DockerBackend::build_image`]).
///
/// Invariant: no intermediate container is left behind, failed or not.
pub(crate) async fn build_image<F>(
    docker: &Docker,
    req: BuildRequest,
    mut progress: F,
) -> Result<BuiltImage, BuildError>
where
    F: FnMut(&BuildEvent) + Send,
{
    if req.tag.trim().is_empty() {
        return Err(BuildError::InvalidInput(
            "empty image tag; pass a name such as atp-image:latest".into(),
        ));
    }
    let context = context_tar(&req)?;
    let labels: HashMap<String, String> = req.labels.clone().into_iter().collect();
    let options = BuildImageOptions {
        dockerfile: DOCKERFILE_PATH.to_string(),
        t: Some(req.tag.clone()),
        nocache: req.no_cache,
        rm: true,
        forcerm: true,
        labels: (!labels.is_empty()).then_some(labels),
        networkmode: req.network_mode.clone(),
        version: BuilderVersion::BuilderV1,
        ..Default::default()
    };
    let span = tracing::info_span!("image_build", tag = %req.tag);
    run_build(docker, options, context, req.tag, &mut progress)
        .instrument(span)
        .await
}

async fn run_build<F>(
    docker: &Docker,
    options: BuildImageOptions,
    context: Vec<u8>,
    tag: String,
    progress: &mut F,
) -> Result<BuiltImage, BuildError>
where
    F: FnMut(&BuildEvent) + Send,
{
    let mut stream = docker.build_image(
        options,
        None,
        Some(bollard::body_full(bytes::Bytes::from(context))),
    );
    let mut state = BuildState::default();
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(text) = info.stream.as_deref() {
                    state.feed(text, progress);
                }
                if let Some(status) = info.status.as_deref() {
                    state.feed(&format!("{status}\n"), progress);
                }
                if let Some(id) = info.aux.and_then(|a| a.id) {
                    state.image_id = Some(id);
                }
            }
            Err(e) => {
                state.flush(progress);
                return Err(state.failure(e));
            }
        }
    }
    state.flush(progress);
    let id = state.image_id.clone().or_else(|| state.last_image.clone());
    match id {
        Some(id) => Ok(BuiltImage {
            id,
            tag,
            steps: state.steps,
        }),
        None => Err(BuildError::Engine(
            "the engine ended the build without an image id".into(),
        )),
    }
}

fn context_tar(req: &BuildRequest) -> Result<Vec<u8>, BuildError> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut append = |path: &str, contents: &[u8], mode: u32| -> Result<(), BuildError> {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, contents)
            .map_err(|e| BuildError::InvalidInput(format!("context file {path:?}: {e}")))
    };
    append(DOCKERFILE_PATH, req.dockerfile.as_bytes(), 0o644)?;
    for file in &req.context {
        let p = file.path.as_str();
        if p.is_empty()
            || p.starts_with('/')
            || p.split('/').any(|c| c == ".." || c.is_empty())
            || p == DOCKERFILE_PATH
        {
            return Err(BuildError::InvalidInput(format!(
                "context path {p:?} must be relative, without `..`, and not {DOCKERFILE_PATH}"
            )));
        }
        append(p, &file.contents, file.mode)?;
    }
    builder
        .into_inner()
        .map_err(|e| BuildError::InvalidInput(format!("cannot assemble the build context: {e}")))
}

/// Line assembly and step tracking over the classic builder's `stream` messages.
#[derive(Default)]
struct BuildState {
    partial: String,
    step: Option<String>,
    steps: usize,
    step_lines: VecDeque<String>,
    last_image: Option<String>,
    image_id: Option<String>,
}

impl BuildState {
    fn feed<F: FnMut(&BuildEvent)>(&mut self, text: &str, progress: &mut F) {
        self.partial.push_str(text);
        while let Some(pos) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=pos).collect();
            self.line(&strip_ansi(line.trim_end_matches(['\n', '\r'])), progress);
        }
    }

    fn flush<F: FnMut(&BuildEvent)>(&mut self, progress: &mut F) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&strip_ansi(line.trim_end_matches('\r')), progress);
        }
    }

    fn line<F: FnMut(&BuildEvent)>(&mut self, line: &str, progress: &mut F) {
        if let Some((index, total, instruction)) = parse_step(line) {
            self.step = Some(line.to_string());
            self.steps = index;
            self.step_lines.clear();
            progress(&BuildEvent::Step {
                index,
                total,
                instruction,
            });
            return;
        }
        if let Some(id) = line.trim().strip_prefix("---> ") {
            let id = id.trim();
            if !id.is_empty() && !id.contains(' ') && id.chars().all(|c| c.is_ascii_hexdigit()) {
                self.last_image = Some(id.to_string());
            }
        }
        if self.step_lines.len() == KEPT_LINES {
            self.step_lines.pop_front();
        }
        // Builder notes (` ---> Running in ...`) are progress, not the step's output.
        let note = line.trim_start().starts_with("--->")
            || line.starts_with("Removing intermediate container ");
        if !note && !line.trim().is_empty() {
            self.step_lines.push_back(line.to_string());
        }
        progress(&BuildEvent::Output(line.to_string()));
    }

    fn failure(&self, e: bollard::errors::Error) -> BuildError {
        match e {
            bollard::errors::Error::DockerStreamError { error } => match &self.step {
                Some(step) => BuildError::StepFailed {
                    step: step.clone(),
                    message: if parse_step(step).is_some_and(|(_, _, i)| i.starts_with("FROM ")) {
                        format!(
                            "{}; the base image is neither local nor pullable (load or build it first)",
                            error.trim()
                        )
                    } else {
                        error.trim().to_string()
                    },
                    last_lines: self.step_lines.iter().cloned().collect(),
                    last_image: self.last_image.clone(),
                },
                None => BuildError::Engine(error.trim().to_string()),
            },
            e @ (bollard::errors::Error::SocketNotFoundError(_)
            | bollard::errors::Error::HyperResponseError { .. }
            | bollard::errors::Error::HyperLegacyError { .. }
            | bollard::errors::Error::RequestTimeoutError
            | bollard::errors::Error::IOError { .. }) => {
                BuildError::EngineUnavailable(e.to_string())
            }
            e => BuildError::Engine(e.to_string()),
        }
    }
}

/// The line without ANSI escape sequences (the classic builder colours a step's stderr).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `Step 3/7 : RUN x` → `(3, 7, "RUN x")`.
fn parse_step(line: &str) -> Option<(usize, usize, String)> {
    let rest = line.strip_prefix("Step ")?;
    let (counts, instruction) = rest.split_once(" : ")?;
    let (index, total) = counts.split_once('/')?;
    Some((
        index.trim().parse().ok()?,
        total.trim().parse().ok()?,
        instruction.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_step_lines() {
        assert_eq!(
            parse_step("Step 3/7 : RUN echo a : b"),
            Some((3, 7, "RUN echo a : b".to_string()))
        );
        assert_eq!(parse_step(" ---> Running in abc"), None);
        assert_eq!(parse_step("Step x/7 : RUN"), None);
    }

    #[test]
    fn assembles_lines_across_chunks_and_tracks_steps() {
        let mut state = BuildState::default();
        let mut events = Vec::new();
        let mut sink = |e: &BuildEvent| events.push(e.clone());
        state.feed("Step 1/2 : FROM x\n ---> 0123abcd", &mut sink);
        state.feed(
            "ef\nStep 2/2 : RUN false\n ---> Running in 99\nhel",
            &mut sink,
        );
        state.feed(
            "lo\n\u{1b}[91mred\u{1b}[0m\nRemoving intermediate container 99\n",
            &mut sink,
        );
        assert_eq!(state.steps, 2);
        assert_eq!(state.last_image.as_deref(), Some("0123abcdef"));
        assert_eq!(
            state.step_lines,
            vec!["hello".to_string(), "red".to_string()]
        );
        let err = state.failure(bollard::errors::Error::DockerStreamError {
            error: "The command '/bin/sh -c false' returned a non-zero code: 1".into(),
        });
        let msg = err.to_string();
        assert!(msg.contains("Step 2/2 : RUN false"), "{msg}");
        assert!(msg.contains("non-zero code: 1"), "{msg}");
        assert!(msg.contains("hello"), "{msg}");
        assert!(events.contains(&BuildEvent::Output("hello".into())));
    }

    #[test]
    fn rejects_escaping_context_paths() {
        for path in ["/etc/passwd", "../x", "a//b", "", DOCKERFILE_PATH] {
            let req = BuildRequest {
                dockerfile: "FROM x\n".into(),
                context: vec![ContextFile::new(path, "x")],
                tag: "t".into(),
                ..Default::default()
            };
            assert!(
                matches!(context_tar(&req), Err(BuildError::InvalidInput(_))),
                "{path}"
            );
        }
    }
}
