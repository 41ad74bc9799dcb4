//! The engine connection: opening a client for an endpoint and removing a container by force.
//!
//! Shared by the backend (sessions, gc, builds) and by a session's teardown guard, which must
//! reconnect on its own thread; neither of them owns it.

use bollard::query_parameters::RemoveContainerOptionsBuilder;
use bollard::Docker;

use atp_backend::Result;

use crate::error;

/// Request timeout of the engine client (for everything except streamed exec output).
const CLIENT_TIMEOUT_SECS: u64 = 120;

/// Open a client for `endpoint` without contacting it.
pub(crate) fn connect(endpoint: &str) -> std::result::Result<Docker, bollard::errors::Error> {
    if endpoint.starts_with("unix://") {
        Docker::connect_with_unix(endpoint, CLIENT_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
    } else {
        Docker::connect_with_host(endpoint)
    }
}

/// Open a client for `endpoint` and negotiate the API version with the engine.
pub(crate) async fn connect_negotiated(endpoint: &str) -> Result<Docker> {
    let docker = connect(endpoint).map_err(|e| error::unavailable(endpoint, &e))?;
    docker
        .negotiate_version()
        .await
        .map_err(|e| error::map(endpoint, "version negotiation", e))
}

/// Remove a container by force (kills it first); a container that is already gone is fine.
pub(crate) async fn force_remove(docker: &Docker, id: &str) -> std::result::Result<(), String> {
    let opts = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(opts)).await {
        Ok(()) => Ok(()),
        Err(e) if error::server_status(&e) == Some(404) => Ok(()),
        // "removal of container … is already in progress"
        Err(e) if error::server_status(&e) == Some(409) => Ok(()),
        Err(e) => Err(error::server_message(&e)),
    }
}
