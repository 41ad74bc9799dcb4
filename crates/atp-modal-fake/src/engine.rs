//! The fake's sandboxes: containers of the local Docker engine.

use std::collections::HashMap;
use std::sync::Arc;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    WaitContainerOptions,
};
use bollard::Docker;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use atp_modal::proto::client as pb;

use crate::{lock, ExecEntry, State};

/// Connect to the local engine and check that `image` exists.
pub async fn docker_ready(image: &str) -> Result<Docker, String> {
    let docker = Docker::connect_with_local_defaults().map_err(|e| e.to_string())?;
    docker
        .ping()
        .await
        .map_err(|e| format!("no Docker engine reachable ({e})"))?;
    docker
        .inspect_image(image)
        .await
        .map_err(|e| format!("image {image} missing ({e}) — run `cargo xtask test-image`"))?;
    Ok(docker)
}

/// Create and start the container of a sandbox; returns its id.
pub(crate) async fn create_container(
    state: &State,
    sandbox_id: &str,
    env: &std::collections::BTreeMap<String, String>,
    timeout_secs: u32,
    network_open: bool,
) -> Result<String, String> {
    // Open-network sandboxes get the host's network when the fake is told so: "the internet"
    // of a loopback test is the host's 127.0.0.1 (e.g. a fake model API). Otherwise none.
    let host_net = network_open && state.opts.open_network_is_host;
    let labels = HashMap::from([
        ("atp.managed".to_string(), "true".to_string()),
        ("atp.run-id".to_string(), state.opts.run_id.clone()),
        ("atp.fake-modal-sandbox".to_string(), sandbox_id.to_string()),
    ]);
    let body = ContainerCreateBody {
        image: Some(state.opts.docker_image.clone()),
        entrypoint: Some(vec!["sleep".into(), timeout_secs.max(1).to_string()]),
        env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        network_disabled: Some(!host_net),
        host_config: Some(HostConfig {
            network_mode: Some(if host_net { "host" } else { "none" }.into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let name = format!("fake-modal-{sandbox_id}");
    let c = state
        .docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&name).build()),
            body,
        )
        .await
        .map_err(|e| e.to_string())?;
    state
        .docker
        .start_container(
            &c.id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(c.id)
}

/// When a sandbox's entrypoint ends by itself, record its result.
pub(crate) fn watch_container(state: Arc<State>, sandbox_id: String, container: String) {
    tokio::spawn(async move {
        let mut s = state
            .docker
            .wait_container(&container, None::<WaitContainerOptions>);
        let code = match s.next().await {
            Some(Ok(r)) => r.status_code,
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            _ => -1,
        };
        let mut t = lock(&state.t);
        if let Some(sb) = t.sandboxes.get_mut(&sandbox_id) {
            if sb.result.is_none() {
                sb.result = Some(pb::GenericResult {
                    status: if code == 0 {
                        pb::generic_result::GenericStatus::Timeout as i32
                    } else {
                        pb::generic_result::GenericStatus::Failure as i32
                    },
                    exitcode: code as i32,
                    exception: "sandbox entrypoint ended".into(),
                    ..Default::default()
                });
            }
        }
        drop(t);
        state.sandbox_changed.notify_waiters();
    });
}

/// Remove a container, retrying what the engine refuses under load; a removal that still fails
/// is recorded for [`crate::FakeModal::audit`]. Runs in its own task, so a caller that gives up
/// (a dropped request) does not abandon it half-way.
async fn remove(state: &Arc<State>, id: &str) {
    let (state2, id2) = (state.clone(), id.to_string());
    lock(&state.t)
        .removing
        .insert(id.to_string(), std::time::Instant::now());
    let job = tokio::spawn(async move {
        let done = |state: &State, id: &str| {
            lock(&state.t).removing.remove(id);
        };
        let opts = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        let mut last = String::new();
        for attempt in 0..4u32 {
            match state2
                .docker
                .remove_container(&id2, Some(opts.clone()))
                .await
            {
                Ok(()) => return done(&state2, &id2),
                Err(e) if status_of(&e) == Some(404) => return done(&state2, &id2),
                Err(e) => {
                    tracing::warn!("fake: removing {id2} (attempt {attempt}): {e}");
                    last = e.to_string();
                    tokio::time::sleep(std::time::Duration::from_millis(250 << attempt)).await;
                }
            }
        }
        done(&state2, &id2);
        lock(&state2.t).failed_removals.push((id2, last));
    });
    let _ = job.await;
}

fn status_of(e: &bollard::errors::Error) -> Option<u16> {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Sandboxes still running and this fake's containers left on the engine.
pub(crate) async fn audit(state: &Arc<State>) -> crate::Audit {
    type Live = HashMap<String, bool>;
    type Removing = HashMap<String, std::time::Instant>;
    let (created, running, live, removing): (usize, Vec<crate::SandboxView>, Live, Removing) = {
        let t = lock(&state.t);
        let running = t
            .sandboxes
            .values()
            .filter(|s| s.result.is_none())
            .map(|s| {
                let mut v = s.view.clone();
                v.name = s.name.clone();
                v
            })
            .collect();
        let live = t
            .sandboxes
            .iter()
            .map(|(id, s)| (id.clone(), s.result.is_none()))
            .collect();
        (t.sandboxes.len(), running, live, t.removing.clone())
    };
    let mut stray = Vec::new();
    let filter = HashMap::from([(
        "label".to_string(),
        vec![format!("atp.run-id={}", state.opts.run_id)],
    )]);
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filter)
        .build();
    match state.docker.list_containers(Some(opts)).await {
        Ok(list) => {
            for c in list {
                let sb = c
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("atp.fake-modal-sandbox"))
                    .cloned()
                    .unwrap_or_default();
                let id = c.id.unwrap_or_default();
                let why = match (live.get(&sb), removing.get(&id)) {
                    (Some(true), _) => continue,
                    (Some(false), Some(t)) => format!(
                        "its sandbox ended; the fake's removal has been under way for {:.1} s",
                        t.elapsed().as_secs_f64()
                    ),
                    (Some(false), None) => {
                        "its sandbox ended but nothing is removing the container".to_string()
                    }
                    (None, _) => "no sandbox of the fake owns it (a creation that never finished)"
                        .to_string(),
                };
                stray.push((id, sb, why));
            }
        }
        Err(e) => stray.push((String::new(), String::new(), format!("listing failed: {e}"))),
    }
    let failed_removals = lock(&state.t).failed_removals.clone();
    crate::Audit {
        created,
        running,
        stray_containers: stray,
        failed_removals,
    }
}

/// Mark a sandbox ended with `status` and remove its container.
pub(crate) async fn end_sandbox(
    state: &Arc<State>,
    sandbox_id: &str,
    status: pb::generic_result::GenericStatus,
    why: &str,
) -> Option<pb::GenericResult> {
    let (container, existing) = {
        let mut t = lock(&state.t);
        let sb = t.sandboxes.get_mut(sandbox_id)?;
        let existing = sb.result.clone();
        if existing.is_none() {
            sb.result = Some(pb::GenericResult {
                status: status as i32,
                exception: why.to_string(),
                ..Default::default()
            });
        }
        (sb.view.container.take(), existing)
    };
    state.sandbox_changed.notify_waiters();
    wake_execs(state);
    if let Some(c) = container {
        remove(state, &c).await;
    }
    existing
}

pub(crate) async fn kill_sandbox(state: &Arc<State>, sandbox_id: &str, why: &str) {
    end_sandbox(
        state,
        sandbox_id,
        pb::generic_result::GenericStatus::InternalFailure,
        why,
    )
    .await;
}

fn wake_execs(state: &State) {
    for e in lock(&state.execs).values() {
        e.changed.notify_waiters();
    }
}

pub(crate) async fn remove_all(state: &Arc<State>) {
    let filter = HashMap::from([(
        "label".to_string(),
        vec![format!("atp.run-id={}", state.opts.run_id)],
    )]);
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filter)
        .build();
    if let Ok(list) = state.docker.list_containers(Some(opts)).await {
        for c in list {
            if let Some(id) = c.id {
                remove(state, &id).await;
            }
        }
    }
}

/// Start `argv` in `container` with stdin attached; output and exit land in `entry`.
pub(crate) async fn start_exec(
    state: &Arc<State>,
    container: &str,
    argv: Vec<String>,
    workdir: Option<String>,
    entry: Arc<ExecEntry>,
) -> Result<(), String> {
    let docker = state.docker.clone();
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(false),
                cmd: Some(argv),
                working_dir: workdir,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    let started = docker
        .start_exec(
            &created.id,
            Some(StartExecOptions {
                detach: false,
                tty: false,
                output_capacity: Some(64 * 1024),
            }),
        )
        .await
        .map_err(|e| e.to_string())?;
    let StartExecResults::Attached {
        mut output,
        mut input,
    } = started
    else {
        return Err("engine detached the exec".into());
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Option<bytes::Bytes>>();
    lock(&entry.state).stdin_tx = Some(tx);
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            match msg {
                Some(b) => {
                    if input.write_all(&b).await.is_err() {
                        break;
                    }
                }
                None => break,
            }
        }
        let _ = input.shutdown().await;
    });
    let exec_id = created.id;
    tokio::spawn(async move {
        while let Some(item) = output.next().await {
            let mut st = lock(&entry.state);
            match item {
                Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                    st.stdout.extend_from_slice(&message)
                }
                Ok(LogOutput::StdErr { message }) => st.stderr.extend_from_slice(&message),
                Ok(_) => {}
                Err(_) => break,
            }
            drop(st);
            entry.changed.notify_waiters();
        }
        lock(&entry.state).output_done = true;
        entry.changed.notify_waiters();
        let mut code = None;
        for _ in 0..100 {
            match docker.inspect_exec(&exec_id).await {
                Ok(i) if i.running != Some(true) && i.exit_code.is_some() => {
                    code = i.exit_code;
                    break;
                }
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                Err(_) => break,
            }
        }
        lock(&entry.state).exit = Some(code.unwrap_or(137));
        entry.changed.notify_waiters();
    });
    Ok(())
}
