//! The fake control plane (`modal.client.ModalClient`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use atp_modal::client::normalize_tag;
use atp_modal::proto::client as pb;
use atp_modal::proto::client::modal_client_server::ModalClient;
use sha2::Digest;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use crate::{engine, lock, now, success, FakeImage, FakeSandbox, SandboxView, State};

pub(crate) struct Control(pub Arc<State>);

type R<T> = Result<Response<T>, Status>;

/// `ENV A=1 B="x y"` → pairs (also `ENV A 1`).
fn parse_env(cmd: &str) -> Vec<(String, String)> {
    let Some(rest) = cmd.strip_prefix("ENV ") else {
        return Vec::new();
    };
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n)
                }
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    if words.len() >= 2 && !words[0].contains('=') {
        return vec![(words[0].clone(), words[1..].join(" "))];
    }
    words
        .into_iter()
        .filter_map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

impl Control {
    fn image_env(&self, image_id: &str) -> Option<BTreeMap<String, String>> {
        let t = lock(&self.0.t);
        let mut chain = Vec::new();
        let mut cur = Some(image_id.to_string());
        while let Some(id) = cur {
            let img = t.images.get(&id)?;
            chain.push(img.env.clone());
            cur = img.base.clone();
        }
        let mut env = BTreeMap::new();
        for e in chain.into_iter().rev() {
            env.extend(e);
        }
        Some(env)
    }
}

#[tonic::async_trait]
impl ModalClient for Control {
    async fn auth_token_get(
        &self,
        req: Request<pb::AuthTokenGetRequest>,
    ) -> R<pb::AuthTokenGetResponse> {
        self.0.enter("AuthTokenGet", req.metadata(), false)?;
        let (token, exp) = self.0.jwt(self.0.opts.token_ttl);
        lock(&self.0.t).auth_tokens.insert(token.clone(), exp);
        Ok(Response::new(pb::AuthTokenGetResponse { token }))
    }

    async fn app_get_or_create(
        &self,
        req: Request<pb::AppGetOrCreateRequest>,
    ) -> R<pb::AppGetOrCreateResponse> {
        self.0.enter("AppGetOrCreate", req.metadata(), false)?;
        let r = req.into_inner();
        if r.app_name.is_empty() {
            return Err(Status::invalid_argument("app_name is empty"));
        }
        let mut t = lock(&self.0.t);
        if let Some(id) = t.apps.get(&r.app_name) {
            return Ok(Response::new(pb::AppGetOrCreateResponse {
                app_id: id.clone(),
            }));
        }
        if r.object_creation_type == pb::ObjectCreationType::Unspecified as i32 {
            return Err(Status::not_found(format!("App '{}' not found", r.app_name)));
        }
        let id = self.0.next_id("ap");
        t.apps.insert(r.app_name, id.clone());
        Ok(Response::new(pb::AppGetOrCreateResponse { app_id: id }))
    }

    async fn secret_get_or_create(
        &self,
        req: Request<pb::SecretGetOrCreateRequest>,
    ) -> R<pb::SecretGetOrCreateResponse> {
        self.0.enter("SecretGetOrCreate", req.metadata(), false)?;
        let r = req.into_inner();
        if r.object_creation_type != pb::ObjectCreationType::Ephemeral as i32 {
            return Err(Status::invalid_argument(
                "the fake only supports ephemeral secrets",
            ));
        }
        let id = self.0.next_id("st");
        lock(&self.0.t)
            .secrets
            .insert(id.clone(), r.env_dict.into_iter().collect());
        Ok(Response::new(pb::SecretGetOrCreateResponse {
            secret_id: id,
        }))
    }

    async fn image_get_by_tag(
        &self,
        req: Request<pb::ImageGetByTagRequest>,
    ) -> R<pb::ImageGetByTagResponse> {
        self.0.enter("ImageGetByTag", req.metadata(), false)?;
        let tag = normalize_tag(&req.into_inner().tag);
        match lock(&self.0.t).tags.get(&tag) {
            Some(id) => Ok(Response::new(pb::ImageGetByTagResponse {
                image_id: id.clone(),
            })),
            None => Err(Status::not_found(format!("Image '{tag}' not found"))),
        }
    }

    async fn image_publish(
        &self,
        req: Request<pb::ImagePublishRequest>,
    ) -> R<pb::ImagePublishResponse> {
        self.0.enter("ImagePublish", req.metadata(), false)?;
        let r = req.into_inner();
        let mut t = lock(&self.0.t);
        match t.images.get(&r.image_id) {
            Some(i)
                if i.result
                    .as_ref()
                    .is_some_and(|g| g.status == success().status) => {}
            Some(_) => return Err(Status::failed_precondition("image is not built")),
            None => {
                return Err(Status::not_found(format!(
                    "Could not find image with ID {}",
                    r.image_id
                )))
            }
        }
        t.tags.insert(normalize_tag(&r.tag), r.image_id.clone());
        let revision_id = self.0.next_id("rev");
        Ok(Response::new(pb::ImagePublishResponse {
            image_id: r.image_id,
            revision_id,
        }))
    }

    async fn image_get_or_create(
        &self,
        req: Request<pb::ImageGetOrCreateRequest>,
    ) -> R<pb::ImageGetOrCreateResponse> {
        self.0.enter("ImageGetOrCreate", req.metadata(), false)?;
        let r = req.into_inner();
        let image = r
            .image
            .ok_or_else(|| Status::invalid_argument("image missing"))?;
        let base = match image.base_images.as_slice() {
            [] => None,
            [b] => Some(b.image_id.clone()),
            _ => return Err(Status::invalid_argument("the fake supports one base image")),
        };
        let mut t = lock(&self.0.t);
        if let Some(b) = &base {
            match t.images.get(b) {
                Some(i)
                    if i.result
                        .as_ref()
                        .is_some_and(|g| g.status == success().status) => {}
                _ => {
                    return Err(Status::not_found(format!(
                        "base image {b} not found or not built"
                    )))
                }
            }
        }
        let mut h = sha2::Sha256::new();
        h.update(base.clone().unwrap_or_default());
        for c in &image.dockerfile_commands {
            h.update([0u8]);
            h.update(c);
        }
        let id = format!("im-{}", &hex::encode(h.finalize())[..20]);
        let built = t
            .images
            .get(&id)
            .and_then(|i| i.result.clone())
            .filter(|g| g.status == success().status);
        if let (Some(done), false) = (built, r.force_build) {
            return Ok(Response::new(pb::ImageGetOrCreateResponse {
                image_id: id,
                result: Some(done),
                metadata: None,
            }));
        }
        let mut logs = Vec::new();
        let n = image.dockerfile_commands.len();
        let mut env = BTreeMap::new();
        let mut failed = None;
        for (i, c) in image.dockerfile_commands.iter().enumerate() {
            logs.push(format!("Step {}/{n} : {c}\n", i + 1));
            env.extend(parse_env(c));
            if c.contains("atp-fake-fail") {
                logs.push("fake builder: command failed with exit code 1\n".into());
                failed = Some(format!("build step {} failed", i + 1));
                break;
            }
        }
        let result = match failed {
            None => success(),
            Some(e) => pb::GenericResult {
                status: pb::generic_result::GenericStatus::Failure as i32,
                exception: e,
                exitcode: 1,
                ..Default::default()
            },
        };
        let builds = t.images.get(&id).map(|i| i.builds).unwrap_or(0) + 1;
        logs.push(format!("Built image {id}\n"));
        t.images.insert(
            id.clone(),
            FakeImage {
                commands: image.dockerfile_commands,
                base,
                env,
                builds,
                logs,
                result: Some(result),
            },
        );
        Ok(Response::new(pb::ImageGetOrCreateResponse {
            image_id: id,
            result: None,
            metadata: None,
        }))
    }

    async fn image_join_streaming(
        &self,
        req: Request<pb::ImageJoinStreamingRequest>,
    ) -> R<BoxStream<pb::ImageJoinStreamingResponse>> {
        self.0.enter("ImageJoinStreaming", req.metadata(), false)?;
        let r = req.into_inner();
        let (logs, result) = {
            let t = lock(&self.0.t);
            let img = t.images.get(&r.image_id).ok_or_else(|| {
                Status::not_found(format!("Could not find image with ID {}", r.image_id))
            })?;
            (img.logs.clone(), img.result.clone())
        };
        let start: usize = r
            .last_entry_id
            .split('-')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let batch = self.0.opts.build_log_batch.max(1);
        let end = (start + batch).min(logs.len());
        let mut items: Vec<Result<pb::ImageJoinStreamingResponse, Status>> = logs
            [start.min(end)..end]
            .iter()
            .enumerate()
            .map(|(i, l)| {
                Ok(pb::ImageJoinStreamingResponse {
                    task_logs: vec![pb::TaskLogs {
                        data: l.clone(),
                        timestamp: now(),
                    }],
                    entry_id: format!("{}-0", start + i + 1),
                    ..Default::default()
                })
            })
            .collect();
        if end >= logs.len() {
            items.push(Ok(pb::ImageJoinStreamingResponse {
                result,
                eof: true,
                ..Default::default()
            }));
        }
        // Otherwise the long poll "expires": the stream ends without a result.
        Ok(Response::new(Box::pin(futures::stream::iter(items))))
    }

    async fn sandbox_create(
        &self,
        req: Request<pb::SandboxCreateRequest>,
    ) -> R<pb::SandboxCreateResponse> {
        self.0.enter("SandboxCreate", req.metadata(), false)?;
        let key = req
            .metadata()
            .get("x-idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let r = req.into_inner();
        // As a server does, the creation runs to its end even when the client stops waiting (a
        // dropped request, a lost connection), and a retry with the same idempotency key waits
        // for that creation instead of making a second sandbox.
        let mut rx = {
            let mut t = lock(&self.0.t);
            match key.as_ref().and_then(|k| t.idempotent_creates.get(k)) {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = tokio::sync::watch::channel(None);
                    if let Some(k) = &key {
                        t.idempotent_creates.insert(k.clone(), rx.clone());
                    }
                    drop(t);
                    let state = self.0.clone();
                    tokio::spawn(async move {
                        let out = create_sandbox(&state, r).await;
                        if out.is_err() {
                            if let Some(k) = key {
                                lock(&state.t).idempotent_creates.remove(&k);
                            }
                        }
                        let _ = tx.send(Some(out));
                    });
                    rx
                }
            }
        };
        let outcome = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| Status::internal("fake: the creation task ended without an outcome"))?
            .clone();
        let id = outcome.unwrap_or_else(|| Err(Status::internal("fake: no outcome")))?;
        self.0.lost("SandboxCreate")?;
        Ok(Response::new(pb::SandboxCreateResponse { sandbox_id: id }))
    }

    async fn sandbox_tags_set(&self, req: Request<pb::SandboxTagsSetRequest>) -> R<()> {
        self.0.enter("SandboxTagsSet", req.metadata(), false)?;
        let r = req.into_inner();
        let mut t = lock(&self.0.t);
        let sb = t
            .sandboxes
            .get_mut(&r.sandbox_id)
            .ok_or_else(|| Status::not_found("sandbox not found"))?;
        if r.tags.iter().any(|t| t.tag_name.is_empty()) {
            return Err(Status::invalid_argument("empty tag name"));
        }
        sb.view.tags = r
            .tags
            .into_iter()
            .map(|t| (t.tag_name, t.tag_value))
            .collect();
        Ok(Response::new(()))
    }

    async fn sandbox_get_task_id(
        &self,
        req: Request<pb::SandboxGetTaskIdRequest>,
    ) -> R<pb::SandboxGetTaskIdResponse> {
        self.0.enter("SandboxGetTaskId", req.metadata(), false)?;
        let r = req.into_inner();
        let mut t = lock(&self.0.t);
        let pending = self.0.opts.task_id_pending_polls;
        let sb = t
            .sandboxes
            .get_mut(&r.sandbox_id)
            .ok_or_else(|| Status::not_found("sandbox not found"))?;
        if let Some(res) = &sb.result {
            return Ok(Response::new(pb::SandboxGetTaskIdResponse {
                task_id: None,
                task_result: Some(res.clone()),
            }));
        }
        sb.task_polls += 1;
        let ready = sb.task_polls > pending;
        Ok(Response::new(pb::SandboxGetTaskIdResponse {
            task_id: ready.then(|| sb.task_id.clone()),
            task_result: None,
        }))
    }

    async fn sandbox_wait(
        &self,
        req: Request<pb::SandboxWaitRequest>,
    ) -> R<pb::SandboxWaitResponse> {
        self.0.enter("SandboxWait", req.metadata(), false)?;
        let r = req.into_inner();
        let wait = Duration::from_secs_f32(r.timeout.max(0.0)).min(self.0.opts.long_poll_max);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.0.sandbox_changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let t = lock(&self.0.t);
                let sb = t
                    .sandboxes
                    .get(&r.sandbox_id)
                    .ok_or_else(|| Status::not_found("sandbox not found"))?;
                if sb.result.is_some() {
                    return Ok(Response::new(pb::SandboxWaitResponse {
                        result: sb.result.clone(),
                    }));
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Response::new(pb::SandboxWaitResponse { result: None }));
            }
        }
    }

    async fn sandbox_terminate(
        &self,
        req: Request<pb::SandboxTerminateRequest>,
    ) -> R<pb::SandboxTerminateResponse> {
        self.0.enter("SandboxTerminate", req.metadata(), false)?;
        let id = req.into_inner().sandbox_id;
        if !lock(&self.0.t).sandboxes.contains_key(&id) {
            return Err(Status::not_found("sandbox not found"));
        }
        let existing = engine::end_sandbox(
            &self.0,
            &id,
            pb::generic_result::GenericStatus::Terminated,
            "terminated by request",
        )
        .await;
        Ok(Response::new(pb::SandboxTerminateResponse {
            existing_result: existing,
        }))
    }

    async fn sandbox_list(
        &self,
        req: Request<pb::SandboxListRequest>,
    ) -> R<pb::SandboxListResponse> {
        self.0.enter("SandboxList", req.metadata(), false)?;
        let r = req.into_inner();
        let t = lock(&self.0.t);
        let mut v: Vec<&FakeSandbox> = t
            .sandboxes
            .values()
            .filter(|s| r.app_id.is_empty() || s.view.app_id == r.app_id)
            .filter(|s| r.include_finished || s.result.is_none())
            .filter(|s| r.before_timestamp == 0.0 || s.created_at < r.before_timestamp)
            .filter(|s| {
                r.tags
                    .iter()
                    .all(|tag| s.view.tags.get(&tag.tag_name) == Some(&tag.tag_value))
            })
            .collect();
        v.sort_by(|a, b| b.created_at.total_cmp(&a.created_at));
        let sandboxes = v
            .into_iter()
            .take(self.0.opts.list_page.max(1))
            .map(|s| pb::SandboxInfo {
                id: s.view.id.clone(),
                created_at: s.created_at,
                app_id: s.view.app_id.clone(),
                tags: s
                    .view
                    .tags
                    .iter()
                    .map(|(k, v)| pb::SandboxTag {
                        tag_name: k.clone(),
                        tag_value: v.clone(),
                    })
                    .collect(),
                name: s.name.clone().unwrap_or_default(),
                image_id: s.view.image_id.clone(),
                timeout_secs: s.view.timeout_secs,
            })
            .collect();
        Ok(Response::new(pb::SandboxListResponse { sandboxes }))
    }

    async fn task_get_command_router_access(
        &self,
        req: Request<pb::TaskGetCommandRouterAccessRequest>,
    ) -> R<pb::TaskGetCommandRouterAccessResponse> {
        self.0
            .enter("TaskGetCommandRouterAccess", req.metadata(), false)?;
        let r = req.into_inner();
        let mut t = lock(&self.0.t);
        let sb_id = t
            .tasks
            .get(&r.task_id)
            .cloned()
            .ok_or_else(|| Status::not_found("task not found"))?;
        if t.sandboxes.get(&sb_id).is_some_and(|s| s.result.is_some()) {
            return Err(Status::failed_precondition("task already completed"));
        }
        let (jwt, exp) = self.0.jwt(self.0.opts.router_token_ttl);
        t.router_tokens.insert(jwt.clone(), exp);
        let url = lock(&self.0.router_url).clone();
        Ok(Response::new(pb::TaskGetCommandRouterAccessResponse {
            jwt,
            url,
        }))
    }
}

/// Create a sandbox and its container; the sandbox id.
async fn create_sandbox(state: &Arc<State>, r: pb::SandboxCreateRequest) -> Result<String, Status> {
    let def = r
        .definition
        .ok_or_else(|| Status::invalid_argument("definition missing"))?;
    let mut env = Control(state.clone())
        .image_env(&def.image_id)
        .ok_or_else(|| {
            Status::not_found(format!("Could not find image with ID {}", def.image_id))
        })?;
    {
        let t = lock(&state.t);
        if !t.apps.values().any(|a| *a == r.app_id) {
            return Err(Status::not_found(format!("App {} not found", r.app_id)));
        }
        for s in &def.secret_ids {
            let e = t
                .secrets
                .get(s)
                .ok_or_else(|| Status::not_found(format!("Secret {s} not found")))?;
            env.extend(e.clone());
        }
        if let Some(n) = &def.name {
            if t.sandboxes
                .values()
                .any(|s| s.name.as_deref() == Some(n) && s.result.is_none())
            {
                return Err(Status::already_exists(format!("sandbox named {n} exists")));
            }
        }
    }
    let timeout = if def.timeout_secs == 0 {
        300
    } else {
        def.timeout_secs
    };
    let id = state.next_id("sb");
    let blocked = def.network_access.is_some_and(|n| {
        n.network_access_type == pb::network_access::NetworkAccessType::Blocked as i32
    });
    let container = engine::create_container(state, &id, &env, timeout, !blocked)
        .await
        .map_err(|e| Status::internal(format!("fake could not start a container: {e}")))?;
    let resources = def.resources.unwrap_or_default();
    let view = SandboxView {
        id: id.clone(),
        name: def.name.clone(),
        app_id: r.app_id,
        image_id: def.image_id,
        tags: BTreeMap::new(),
        env,
        milli_cpu: resources.milli_cpu,
        memory_mb: resources.memory_mb,
        timeout_secs: timeout,
        network_blocked: blocked,
        terminated: false,
        container: Some(container.clone()),
    };
    let task_id = state.next_id("ta");
    {
        let mut t = lock(&state.t);
        t.tasks.insert(task_id.clone(), id.clone());
        t.sandboxes.insert(
            id.clone(),
            FakeSandbox {
                view,
                task_id,
                created_at: now()
                    + state.seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst) as f64 * 1e-6,
                name: def.name,
                result: None,
                task_polls: 0,
            },
        );
    }
    engine::watch_container(state.clone(), id.clone(), container);
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::parse_env;

    #[test]
    fn env_commands_parse() {
        assert_eq!(
            parse_env(r#"ENV A=1 B="x y""#),
            vec![
                ("A".to_string(), "1".to_string()),
                ("B".to_string(), "x y".to_string()),
            ]
        );
        assert_eq!(
            parse_env("ENV A 1 2"),
            vec![("A".to_string(), "1 2".to_string())]
        );
        assert!(parse_env("RUN x").is_empty());
    }
}
