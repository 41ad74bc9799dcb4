//! Building an image spec's Modal layers and publishing the result under a name.

use atp_image::ModalLayer;

use crate::client::{normalize_tag, ModalClient};
use crate::config::ModalCredentials;
use crate::error::ModalError;

/// An image built on Modal and published under a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedImage {
    /// Modal's id of the last layer (`im-…`).
    pub image_id: String,
    /// The name it was published as, `name:tag`.
    pub tag: String,
    /// How many layers were built (or found in Modal's cache).
    pub layers: usize,
}

/// Build `layers` (`atp_image::ImageSpec::to_modal_layers`) in `app` (created if missing), each
/// on the previous one, streaming build logs to `log`, then publish the last as `name`
/// (`name[:tag]`, tag `latest` by default) — what the backend's `ModalConfig::image` looks up.
pub async fn build_and_publish(
    creds: ModalCredentials,
    app: &str,
    name: &str,
    layers: &[ModalLayer],
    force_build: bool,
    log: &mut (dyn FnMut(&str) + Send),
) -> Result<PublishedImage, ModalError> {
    let client = ModalClient::new(creds)?;
    let app_id = client.app_get_or_create(app, true).await?;
    let image_id = client
        .image_build(&app_id, layers, force_build, log)
        .await?;
    client.image_publish(&image_id, name).await?;
    Ok(PublishedImage {
        image_id,
        tag: normalize_tag(name),
        layers: layers.len(),
    })
}
