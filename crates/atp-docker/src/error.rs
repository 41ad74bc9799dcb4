//! Mapping of bollard errors onto [`BackendError`].

use atp_backend::{one_line, BackendError};
use bollard::errors::Error as DockerError;

/// Backend name used in errors and health reports.
pub(crate) const BACKEND: &str = "docker";

/// The one-line remedy for an unreachable engine.
pub const ENGINE_REMEDY: &str =
    "start the daemon: `sudo systemctl start docker` or `dockerd &`; or set DOCKER_HOST";

/// The command that builds `image`: `atp build-image` (with `--tag` unless it is the default
/// image). atp's development test images exist only in a checkout and are built there:
/// `atp-agents-test` by `cargo xtask agents-image`, `atp-test…` (and its variants) by `cargo
/// xtask test-image`.
pub fn image_remedy(image: &str) -> String {
    let repo = image.split(':').next().unwrap_or(image);
    if repo == "atp-agents-test" {
        "cargo xtask agents-image".to_string()
    } else if repo.starts_with("atp-test") {
        "cargo xtask test-image".to_string()
    } else if image == crate::DEFAULT_IMAGE || image == "open-atp" {
        "atp build-image".to_string()
    } else {
        format!("atp build-image --tag {image}")
    }
}

/// What to do about an image that fails the sandbox contract.
pub(crate) fn contract_remedy(image: &str) -> String {
    format!(
        "rebuild it with `{}` (atp's images provide bash, GNU coreutils and tar)",
        image_remedy(image)
    )
}

/// Whether the engine answered with an HTTP status (as opposed to not answering at all).
pub(crate) fn server_status(e: &DockerError) -> Option<u16> {
    match e {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Whether `e` means the engine could not be reached (socket missing, refused, timed out).
pub(crate) fn is_unreachable(e: &DockerError) -> bool {
    !matches!(
        e,
        DockerError::DockerResponseServerError { .. }
            | DockerError::JsonDataError { .. }
            | DockerError::JsonSerdeError { .. }
            | DockerError::APIVersionParseError { .. }
            | DockerError::DockerStreamError { .. }
            | DockerError::DockerContainerWaitError { .. }
    )
}

/// The engine is not reachable at `endpoint`.
pub(crate) fn unavailable(endpoint: &str, e: &DockerError) -> BackendError {
    BackendError::EngineUnavailable {
        backend: BACKEND.into(),
        endpoint: endpoint.into(),
        detail: one_line(&e.to_string()),
        remedy: ENGINE_REMEDY.into(),
    }
}

/// `image` does not exist on the engine.
pub(crate) fn image_missing(image: &str) -> BackendError {
    BackendError::ImageUnavailable {
        backend: BACKEND.into(),
        image: image.into(),
        remedy: image_remedy(image),
    }
}

/// Generic mapping: unreachable engine → `EngineUnavailable`, anything else → `Engine`.
pub(crate) fn map(endpoint: &str, operation: &str, e: DockerError) -> BackendError {
    if is_unreachable(&e) {
        unavailable(endpoint, &e)
    } else {
        BackendError::engine(BACKEND, operation, server_message(&e))
    }
}

/// The engine's message without bollard's wrapping.
pub(crate) fn server_message(e: &DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError {
            status_code,
            message,
        } => one_line(&format!("{message} (HTTP {status_code})")),
        other => one_line(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remedies_name_the_right_builder() {
        assert_eq!(image_remedy("atp-test:latest"), "cargo xtask test-image");
        assert_eq!(image_remedy("open-atp:latest"), "atp build-image");
        assert_eq!(image_remedy("atp-test"), "cargo xtask test-image");
        assert_eq!(
            image_remedy("atp-agents-test:latest"),
            "cargo xtask agents-image"
        );
        assert_eq!(
            image_remedy("lab/prover:v2"),
            "atp build-image --tag lab/prover:v2"
        );
        assert!(contract_remedy("open-atp:latest").contains("`atp build-image`"));
    }

    #[test]
    fn server_errors_are_not_unreachable() {
        let e = DockerError::DockerResponseServerError {
            status_code: 404,
            message: "No such image: x\n".into(),
        };
        assert!(!is_unreachable(&e));
        assert_eq!(server_status(&e), Some(404));
        assert_eq!(server_message(&e), "No such image: x (HTTP 404)");
        assert!(is_unreachable(&DockerError::RequestTimeoutError));
    }

    #[test]
    fn unavailable_message_is_one_actionable_line() {
        let msg = unavailable("unix:///x.sock", &DockerError::RequestTimeoutError).to_string();
        assert!(!msg.contains('\n'));
        assert!(msg.contains("unix:///x.sock"));
        assert!(msg.contains("systemctl start docker"));
    }
}
