//! atp's Docker backend: sessions are containers created over the Docker Engine API (bollard).
//!
//! A [`DockerBackend`] creates one container per session from its configured image, with the
//! host workdir bind-mounted at [`atp_backend::layout::WORKDIR`], the labels `atp.run-id` and
//! `atp.managed=true`, and `sleep infinity` keeping it alive. Each command is an Engine exec whose
//! demultiplexed stdout/stderr stream into the [`atp_backend::CommandHandle`]; `close` removes the
//! container by force, and a dropped session is removed by its teardown guard.
//!
//! Architecture invariant: the engine is reached only through the Engine API; missing images and
//! unreachable engines are reported before any container exists.

mod backend;
pub mod build;
mod engine;
mod error;
mod session;

pub use backend::{
    DockerBackend, DockerConfig, DEFAULT_CONTAINER_HOME, DEFAULT_DOCKER_HOST, DEFAULT_IMAGE,
};
pub use error::{image_remedy, ENGINE_REMEDY};
pub use session::DockerSession;
