//! Backend selection: which engine sessions come from, and how the CLI builds it — the only place
//! that constructs a session backend. (The image *builds* are engine-specific by nature:
//! `build-image` drives Docker's builder, `build-modal-image` Modal's.)

use std::sync::Arc;

use atp_backend::{BackendError, ComputeBackend, NetworkMode};
use atp_docker::{DockerBackend, DockerConfig};
use atp_modal::{ModalBackend, ModalConfig};

/// The engines atp can run sandboxes on.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Local containers through the Docker Engine API.
    #[default]
    Docker,
    /// Modal Sandboxes (`modal setup` or MODAL_TOKEN_ID/MODAL_TOKEN_SECRET; app: ATP_MODAL_APP)
    Modal,
}

impl BackendKind {
    /// The image used when none is given.
    pub fn default_image(self) -> &'static str {
        match self {
            BackendKind::Docker => atp_docker::DEFAULT_IMAGE,
            BackendKind::Modal => "open-atp",
        }
    }
}

/// The `--backend` / `--image` flags shared by every command that talks to an engine.
#[derive(Debug, Clone, clap::Args, serde::Serialize, serde::Deserialize)]
pub struct BackendArgs {
    /// Where sandboxes run.
    #[arg(long, value_enum, default_value_t = BackendKind::Docker, env = "ATP_BACKEND", hide_env_values = true)]
    pub backend: BackendKind,
    /// Sandbox image (default: open-atp:latest).
    #[arg(long, value_name = "NAME", env = "ATP_IMAGE", hide_env_values = true)]
    pub image: Option<String>,
}

/// Everything needed to build a backend.
#[derive(Debug, Clone)]
pub struct BackendSpec {
    pub kind: BackendKind,
    pub image: String,
    pub network: NetworkMode,
}

impl BackendArgs {
    /// The spec these flags describe, with the engine's default network.
    pub fn spec(&self) -> BackendSpec {
        BackendSpec {
            kind: self.backend,
            image: self
                .image
                .clone()
                .unwrap_or_else(|| self.backend.default_image().to_string()),
            network: NetworkMode::Default,
        }
    }
}

/// Build the backend `spec` describes. Nothing is contacted yet. The error keeps its kind (Modal
/// credentials are `credentials`), so result.json can say what went wrong.
pub fn make(spec: &BackendSpec) -> Result<Arc<dyn ComputeBackend>, BackendError> {
    match spec.kind {
        BackendKind::Docker => Ok(Arc::new(DockerBackend::new(DockerConfig {
            network: spec.network,
            ..DockerConfig::for_image(spec.image.clone())
        }))),
        BackendKind::Modal => {
            let app = std::env::var("ATP_MODAL_APP")
                .ok()
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| ModalConfig::default().app);
            let cfg = ModalConfig {
                image: spec.image.clone(),
                app,
                network: spec.network,
                ..ModalConfig::default()
            };
            Ok(Arc::new(ModalBackend::from_env(cfg)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_is_the_default_with_the_open_atp_image() {
        let args = BackendArgs {
            backend: BackendKind::default(),
            image: None,
        };
        let b = make(&args.spec()).expect("backend");
        assert_eq!(b.name(), "docker");
        assert_eq!(b.image(), "open-atp:latest");
        assert_eq!(b.container_home(), "/root");
    }
}
