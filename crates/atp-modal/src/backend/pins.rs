//! The image pins of a Modal image: read once per image id from the image's environment in a
//! short-lived probe sandbox, cached on disk (Modal image ids name immutable content, so an
//! entry never goes stale), reported as the `atp.*` labels of `atp_image`.

use std::collections::BTreeMap;
use std::time::Duration;

use atp_backend::{NetworkMode, Result, RunId};

use super::ModalBackend;
use crate::session::ExecCtx;

impl ModalBackend {
    /// The image's pins: from the cache, else probed and cached.
    pub(super) async fn pins_of(&self, image_id: &str) -> Result<BTreeMap<String, String>> {
        let safe = !image_id.is_empty()
            && image_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let file = self
            .cfg
            .pin_cache
            .as_ref()
            .filter(|_| safe)
            .map(|d| d.join(format!("{image_id}.json")));
        if let Some(f) = &file {
            if let Ok(text) = std::fs::read_to_string(f) {
                if let Ok(labels) = serde_json::from_str::<BTreeMap<String, String>>(&text) {
                    return Ok(labels);
                }
            }
        }
        let labels = self.probe_pins(image_id).await?;
        if let Some(f) = &file {
            let written = f
                .parent()
                .map(std::fs::create_dir_all)
                .transpose()
                .and_then(|_| {
                    let json =
                        serde_json::to_string_pretty(&labels).map_err(std::io::Error::other)?;
                    std::fs::write(f, json)
                });
            if let Err(e) = written {
                tracing::debug!("caching the pins of {image_id} in {}: {e}", f.display());
            }
        }
        Ok(labels)
    }

    /// Read the image's pin environment in a short-lived probe sandbox.
    async fn probe_pins(&self, image_id: &str) -> Result<BTreeMap<String, String>> {
        let run_id = RunId::new();
        let (id, router, mut guard) = self
            .provision(
                image_id,
                BTreeMap::new(),
                &run_id,
                &BTreeMap::from([("atp.purpose".to_string(), "image-probe".to_string())]),
                Duration::from_secs(120),
                NetworkMode::None,
                (0.25, 512),
            )
            .await?;
        let ctx = ExecCtx {
            client: self.client.clone(),
            router,
            sandbox_id: id.clone(),
            liveness: self.cfg.liveness_interval,
        };
        let mut out = Vec::new();
        let r = ctx
            .run_piped(
                vec!["env".into()],
                None,
                &mut |c: &[u8]| out.extend_from_slice(c),
                Duration::from_secs(120),
            )
            .await;
        if self.client.sandbox_terminate(&id).await.is_ok() {
            guard.disarm();
        }
        r?;
        let env: BTreeMap<String, String> = String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // Only the pins are kept (and cached): the rest of the environment is not reported.
        Ok(atp_image::pin_labels_from_env(&env))
    }
}
