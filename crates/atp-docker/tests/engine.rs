//! The Docker backend against the real engine and the test image (networking disabled).
//!
//! Every test uses its own run id and ends by asserting that no container of that run is left.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use atp_backend::{BackendError, ComputeBackend, GcFilter, Mount, Resources, RunId};
use atp_docker::{DockerBackend, DockerConfig};
use atp_test_support::{assert_no_leak, count_managed, raw_docker};

use crate::common::{self, quick};
use bytes::Bytes;

#[tokio::test]
async fn lines_arrive_while_the_command_still_runs() {
    let b = engine_or_skip!("lines_arrive_while_the_command_still_runs");
    let (run, _wd, s) = common::open(&b).await;
    let start = Instant::now();
    let mut h = s
        .exec("echo a; sleep 3; echo b", quick(30))
        .await
        .expect("exec");
    assert_eq!(h.next_line().await.as_deref(), Some("a"));
    let first = start.elapsed();
    assert_eq!(h.next_line().await.as_deref(), Some("b"));
    let second = start.elapsed();
    let r = h.wait().await.expect("result");
    assert_eq!(r.exit_code, 0);
    assert_eq!(r.stdout, "a\nb\n");
    assert!(
        first + Duration::from_millis(1500) < second && first < Duration::from_secs(2),
        "first line at {first:?}, second at {second:?}: output was buffered"
    );
    s.close().await.expect("close");
    assert_no_leak(&run).await;
}

#[tokio::test]
async fn stdout_and_stderr_are_kept_apart_with_exit_codes() {
    let b = engine_or_skip!("stdout_and_stderr_are_kept_apart_with_exit_codes");
    let (run, _wd, s) = common::open(&b).await;
    let r = s
        .exec_wait("echo out; echo err >&2; echo out2; exit 3", quick(30))
        .await
        .expect("result");
    assert_eq!(r.exit_code, 3);
    assert_eq!(r.stdout, "out\nout2\n");
    assert_eq!(r.stderr, "err\n");
    let ok = s.exec_wait("true", quick(30)).await.expect("true");
    assert_eq!(ok.exit_code, 0);
    assert!(ok.success());
    let sig = s
        .exec_wait("kill -TERM $$", quick(30))
        .await
        .expect("signalled");
    assert_eq!(sig.exit_code, 143, "128+SIGTERM expected: {sig:?}");
    s.close().await.expect("close");
    assert_no_leak(&run).await;
}

#[tokio::test]
async fn env_labels_and_extra_mounts_are_visible() {
    let b = engine_or_skip!("env_labels_and_extra_mounts_are_visible");
    let run = RunId::new();
    let wd = common::workdir();
    let ro = common::workdir();
    let rw = common::workdir();
    std::fs::write(ro.path().join("creds.json"), "{\"k\":1}").expect("write");
    let mut opts = common::opts(&run);
    opts.env = BTreeMap::from([("SESSION_VAR".into(), "from session".into())]);
    opts.labels = BTreeMap::from([("atp.test".into(), "env".into())]);
    opts.mounts = vec![
        Mount::read_only(ro.path(), "/root/.creds"),
        Mount::writable(rw.path(), "/scratch"),
    ];
    opts.resources = Resources {
        cpus: Some(0.5),
        memory_mib: Some(256),
    };
    let s = b.session(wd.path(), opts).await.expect("session");
    let mut eo = quick(30);
    eo.env = BTreeMap::from([("EXEC_VAR".into(), "it's exec".into())]);
    let r = s
        .exec_wait(
            "echo \"$SESSION_VAR|$EXEC_VAR\"; cat /root/.creds/creds.json; echo; \
             touch /root/.creds/x 2>/dev/null && echo ro-writable || echo ro-refused; \
             echo hi > /scratch/out && echo rw-ok",
            eo,
        )
        .await
        .expect("result");
    assert_eq!(
        r.stdout, "from session|it's exec\n{\"k\":1}\nro-refused\nrw-ok\n",
        "{r:?}"
    );
    assert_eq!(
        std::fs::read_to_string(rw.path().join("out")).expect("rw"),
        "hi\n"
    );
    // Labels and limits as the engine sees them.
    let docker = raw_docker();
    let info = docker
        .inspect_container(s.id(), None)
        .await
        .expect("inspect");
    let labels = info.config.and_then(|c| c.labels).expect("labels");
    assert_eq!(labels.get("atp.managed").map(String::as_str), Some("true"));
    assert_eq!(labels.get("atp.run-id"), Some(&run.to_string()));
    assert_eq!(labels.get("atp.test").map(String::as_str), Some("env"));
    let hc = info.host_config.expect("host config");
    assert_eq!(hc.nano_cpus, Some(500_000_000));
    assert_eq!(hc.memory, Some(256 * 1024 * 1024));
    assert_eq!(hc.network_mode.as_deref(), Some("none"));
    s.close().await.expect("close");
    assert_no_leak(&run).await;
}

#[tokio::test]
async fn a_file_written_in_the_sandbox_appears_on_the_host() {
    let b = engine_or_skip!("a_file_written_in_the_sandbox_appears_on_the_host");
    let run = RunId::new();
    let wd = common::workdir();
    std::fs::write(wd.path().join("input.txt"), "from host\n").expect("write");
    let s = b
        .session(wd.path(), common::opts(&run))
        .await
        .expect("session");
    let r = s
        .exec_wait(
            "pwd; cat input.txt; mkdir -p sub && printf 'proof\\n' > sub/Out.lean",
            quick(30),
        )
        .await
        .expect("result");
    assert_eq!(r.stdout, "/workspace/wd\nfrom host\n");
    s.sync_out().await.expect("sync_out is a no-op");
    assert_eq!(
        std::fs::read_to_string(wd.path().join("sub/Out.lean")).expect("written"),
        "proof\n"
    );
    s.close().await.expect("close");
    assert_no_leak(&run).await;
}

#[tokio::test]
async fn lake_is_linked_to_the_baked_cache_marker() {
    let b = engine_or_skip!("lake_is_linked_to_the_baked_cache_marker");
    let (run, wd, s) = common::open(&b).await;
    let r = s
        .exec_wait("readlink .lake; cat .lake/ATP_TEST_MARKER", quick(30))
        .await
        .expect("result");
    let mut lines = r.stdout.lines();
    assert_eq!(lines.next(), Some("/workspace/.lake"));
    assert!(
        lines.next().is_some_and(|l| l.contains("marker")),
        "marker not readable through .lake: {r:?}"
    );
    let host_link = std::fs::read_link(wd.path().join(".lake")).expect("symlink on host");
    assert_eq!(host_link, std::path::Path::new("/workspace/.lake"));
    s.close().await.expect("close");
    assert_no_leak(&run).await;
}

#[tokio::test]
async fn a_command_over_budget_is_a_command_timeout_with_partial_output() {
    let b = engine_or_skip!("a_command_over_budget_is_a_command_timeout_with_partial_output");
    let (run, _wd, s) = common::open(&b).await;
    let start = Instant::now();
    let err = s
        .exec_wait(
            "echo started; echo warn >&2; sleep 60; echo never",
            quick(1),
        )
        .await
        .expect_err("must time out");
    let took = start.elapsed();
    match &err {
        BackendError::CommandTimeout { budget, partial } => {
            assert_eq!(*budget, Duration::from_secs(1));
            assert_eq!(partial.stdout, "started\n");
            assert_eq!(partial.stderr, "warn\n");
        }
        other => panic!("expected CommandTimeout, got {other:?}"),
    }
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // The session survives a timed-out command.
    let r = s.exec_wait("echo alive", quick(30)).await.expect("alive");
    assert_eq!(r.stdout, "alive\n");
    s.close().await.expect("close");
    assert_no_leak(&run).await;
}

#[tokio::test]
async fn cancel_kills_the_command_tree() {
    let b = engine_or_skip!("cancel_kills_the_command_tree");
    let (run, _wd, s) = common::open(&b).await;
    let mut h = s
        .exec("sleep 313 & echo go; wait", quick(600))
        .await
        .expect("exec");
    assert_eq!(h.next_line().await.as_deref(), Some("go"));
    let before = s
        .exec_wait("ps -o args | grep -c '^[s]leep 313'", quick(30))
        .await
        .expect("ps");
    assert_eq!(before.stdout.trim(), "1", "the child should be running");
    let start = Instant::now();
    h.cancel().await.expect("cancel");
    match h.wait().await {
        Err(BackendError::Cancelled { partial }) => assert_eq!(partial.stdout, "go\n"),
        other => panic!("expected Cancelled, got {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(10));
    // Neither the sleep nor the shells that ran it are left (zombies included: `init` reaps).
    let after = s
        .exec_wait(
            "ps -o stat,args | grep -c -e '[s]leep 313' -e '^Z'",
            quick(30),
        )
        .await
        .expect("ps");
    assert_eq!(
        after.stdout.trim(),
        "0",
        "process survived cancel: {after:?}"
    );
    s.close().await.expect("close");
    assert_no_leak(&run).await;
}

#[tokio::test]
async fn stdin_is_fed_then_closed_and_absent_stdin_does_not_hang() {
    let b = engine_or_skip!("stdin_is_fed_then_closed_and_absent_stdin_does_not_hang");
    let (run, _wd, s) = common::open(&b).await;
    let mut eo = quick(20);
    eo.stdin = Some(Bytes::from_static(b"hello\nworld\n"));
    let r = s.exec_wait("cat | wc -l", eo).await.expect("stdin");
    assert_eq!(r.stdout.trim(), "2");
    let r = s
        .exec_wait("cat; echo eof", quick(20))
        .await
        .expect("no stdin");
    assert_eq!(r.stdout, "eof\n");
    s.close().await.expect("close");
    assert_no_leak(&run).await;
}

#[tokio::test]
async fn many_lines_stream_complete_and_in_order() {
    let b = engine_or_skip!("many_lines_stream_complete_and_in_order");
    let (run, _wd, s) = common::open(&b).await;
    let mut h = s.exec("seq 1 20000", quick(60)).await.expect("exec");
    let mut n = 0u32;
    while let Some(line) = h.next_line().await {
        n += 1;
        assert_eq!(line, n.to_string());
    }
    assert_eq!(n, 20000);
    let r = h.wait().await.expect("result");
    assert_eq!(r.stdout.lines().count(), 20000);
    s.close().await.expect("close");
    assert_no_leak(&run).await;
}

#[tokio::test]
async fn close_is_idempotent_and_exec_after_close_is_refused() {
    let b = engine_or_skip!("close_is_idempotent_and_exec_after_close_is_refused");
    let (run, _wd, s) = common::open(&b).await;
    assert_eq!(count_managed(Some(run.as_str())).await, 1);
    s.close().await.expect("first close");
    assert_no_leak(&run).await;
    s.close().await.expect("second close");
    match s.exec("true", quick(5)).await {
        Err(BackendError::Closed { .. }) => {}
        other => panic!("expected Closed, got {other:?}"),
    }
    assert_no_leak(&run).await;
}

#[tokio::test]
async fn a_missing_image_is_reported_before_any_container_exists() {
    let _b = engine_or_skip!("a_missing_image_is_reported_before_any_container_exists");
    let run = RunId::new();
    let wd = common::workdir();
    let missing = DockerBackend::new(DockerConfig {
        network: atp_backend::NetworkMode::None,
        ..DockerConfig::for_image("atp-test:no-such-tag")
    });
    let err = missing
        .session(wd.path(), common::opts(&run))
        .await
        .expect_err("missing image");
    assert_eq!(err.kind(), "image_unavailable", "{err}");
    assert!(err.to_string().contains("atp-test:no-such-tag"), "{err}");
    assert!(err.to_string().contains("cargo xtask test-image"), "{err}");
    let info = missing.image_info().await.expect_err("image_info");
    assert_eq!(info.kind(), "image_unavailable");
    assert_no_leak(&run).await;
}

#[tokio::test]
async fn a_dead_docker_host_is_engine_unavailable() {
    // Needs no engine: the point is that there is none at this address.
    let b = DockerBackend::new(DockerConfig {
        host: Some("unix:///nonexistent.sock".into()),
        ..DockerConfig::for_image(atp_test_support::test_image())
    });
    let wd = common::workdir();
    let err = b
        .session(wd.path(), common::opts(&RunId::new()))
        .await
        .expect_err("dead host");
    assert_eq!(err.kind(), "engine_unavailable", "{err}");
    let msg = err.to_string();
    assert!(msg.contains("unix:///nonexistent.sock"), "{msg}");
    assert!(msg.contains("dockerd"), "{msg}");
    assert!(!msg.contains('\n'));
    assert_eq!(
        b.health().await.expect_err("health").kind(),
        "engine_unavailable"
    );
    // A TCP endpoint nobody listens on (loopback only).
    let tcp = DockerBackend::new(DockerConfig {
        host: Some("tcp://127.0.0.1:9".into()),
        ..DockerConfig::for_image(atp_test_support::test_image())
    });
    assert_eq!(
        tcp.health().await.expect_err("tcp").kind(),
        "engine_unavailable"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_dropped_by_a_panic_leaves_no_container() {
    let b = engine_or_skip!("a_session_dropped_by_a_panic_leaves_no_container");
    let run = RunId::new();
    let wd = common::workdir();
    let (b2, run2, path) = (b.clone(), run.clone(), wd.path().to_path_buf());
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let s = b2
            .session(&path, common::opts(&run2))
            .await
            .expect("session");
        let _ = tx.send(s.id().to_string());
        let _running = s.exec("sleep 300", quick(600)).await.expect("exec");
        panic!("deliberate panic with a live session");
    });
    let id = rx.await.expect("session opened");
    let joined = task.await;
    assert!(joined.is_err_and(|e| e.is_panic()));
    assert_eq!(
        count_managed(Some(run.as_str())).await,
        0,
        "container {id} leaked"
    );

    // Plain drop without close, inside the runtime.
    let s = b
        .session(wd.path(), common::opts(&run))
        .await
        .expect("session");
    assert_eq!(count_managed(Some(run.as_str())).await, 1);
    drop(s);
    assert_no_leak(&run).await;
}

/// A caller that stops waiting while `session()` is creating the container (a cancelled
/// future, a wall-clock ceiling) must not leave the container behind: the creation runs to its
/// end and what it made is removed. Attempts are dropped after growing delays until some of
/// them were dropped after the engine had created a container.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_future_dropped_during_creation_leaves_no_container() {
    let b = engine_or_skip!("a_session_future_dropped_during_creation_leaves_no_container");
    let run = RunId::new();
    let wd = common::workdir();
    let recorder = atp_test_support::CreationRecorder::start(run.as_str()).await;
    let (mut opened, mut dropped) = (0usize, 0usize);
    let mut delay_ms = 0u64;
    while delay_ms <= 400 {
        match tokio::time::timeout(
            Duration::from_millis(delay_ms),
            b.session(wd.path(), common::opts(&run)),
        )
        .await
        {
            Ok(s) => {
                opened += 1;
                s.expect("session").close().await.expect("close");
            }
            Err(_) => dropped += 1,
        }
        delay_ms += 4;
    }
    // Everything settles: what dropped attempts created is removed by the creation task.
    let deadline = Instant::now() + Duration::from_secs(30);
    while count_managed(Some(run.as_str())).await > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let created = recorder.stop().await.len();
    assert!(dropped > 0, "no attempt was dropped");
    assert!(
        created > opened,
        "no dropped attempt reached the engine ({created} created, {opened} opened): the test did not exercise the window"
    );
    assert_no_leak(&run).await;
}

#[tokio::test]
async fn gc_lists_in_dry_run_and_removes_for_real() {
    let b = engine_or_skip!("gc_lists_in_dry_run_and_removes_for_real");
    let run = RunId::new();
    let wd = common::workdir();
    for _ in 0..2 {
        let s = b
            .session(wd.path(), common::opts(&run))
            .await
            .expect("session");
        // Simulate a crashed atp process: the container outlives its session.
        std::mem::forget(s);
    }
    assert_eq!(count_managed(Some(run.as_str())).await, 2);
    let only_run = |dry_run, older_than| GcFilter {
        run_id: Some(run.clone()),
        older_than,
        dry_run,
    };
    let listed = b.gc(only_run(true, None)).await.expect("dry run");
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|e| !e.removed));
    assert!(listed
        .iter()
        .all(|e| e.run_id.as_deref() == Some(run.as_str())));
    assert!(listed
        .iter()
        .all(|e| e.name.as_deref().is_some_and(|n| n.starts_with("atp-"))));
    assert_eq!(count_managed(Some(run.as_str())).await, 2);
    let old = b
        .gc(only_run(false, Some(Duration::from_secs(3600))))
        .await
        .expect("older than an hour");
    assert!(
        old.is_empty(),
        "fresh containers are not an hour old: {old:?}"
    );
    assert_eq!(count_managed(Some(run.as_str())).await, 2);
    let removed = b.gc(only_run(false, None)).await.expect("gc");
    assert_eq!(removed.len(), 2);
    assert!(removed.iter().all(|e| e.removed));
    assert_no_leak(&run).await;
}

#[tokio::test]
async fn health_and_image_info_report_the_engine_and_labels() {
    let b = engine_or_skip!("health_and_image_info_report_the_engine_and_labels");
    let h = b.health().await.expect("health");
    assert_eq!(h.backend, "docker");
    assert!(h.version.is_some());
    assert!(h.api_version.is_some());
    let info = b.image_info().await.expect("image");
    assert_eq!(info.name, atp_test_support::test_image());
    assert!(info.id.starts_with("sha256:"));
    assert_eq!(
        info.labels.get("atp.test-image").map(String::as_str),
        Some("true")
    );
    assert!(info.labels.contains_key("atp.lean-toolchain"));
    let dynb = atp_test_support::dyn_backend(&b);
    assert_eq!(dynb.name(), "docker");
    assert_eq!(dynb.container_home(), "/root");
}

#[tokio::test]
async fn run_opens_executes_and_closes() {
    let b = engine_or_skip!("run_opens_executes_and_closes");
    let run = RunId::new();
    let wd = common::workdir();
    let r = b
        .run(wd.path(), "echo via run", common::opts(&run), quick(30))
        .await
        .expect("run");
    assert_eq!(r.stdout, "via run\n");
    assert_no_leak(&run).await;
}

#[tokio::test]
async fn concurrent_execs_in_one_session_keep_their_outputs_apart() {
    let b = engine_or_skip!("concurrent_execs_in_one_session_keep_their_outputs_apart");
    let (run, _wd, s) = common::open(&b).await;
    let runs = (0..4).map(|i| {
        let s = &s;
        async move {
            s.exec_wait(
                &format!("for j in 1 2 3; do echo {i}-$j; sleep 0.1; done"),
                quick(30),
            )
            .await
        }
    });
    let results = futures::future::join_all(runs).await;
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.expect("exec").stdout, format!("{i}-1\n{i}-2\n{i}-3\n"));
    }
    s.close().await.expect("close");
    assert_no_leak(&run).await;
}

#[tokio::test]
async fn a_container_killed_under_the_session_is_sandbox_dead() {
    let b = engine_or_skip!("a_container_killed_under_the_session_is_sandbox_dead");
    let (run, _wd, s) = common::open(&b).await;
    let docker = raw_docker();
    let mut running = s
        .exec("echo up; sleep 100", quick(300))
        .await
        .expect("exec");
    assert_eq!(running.next_line().await.as_deref(), Some("up"));
    let start = Instant::now();
    docker
        .kill_container(
            s.id(),
            None::<bollard::query_parameters::KillContainerOptions>,
        )
        .await
        .expect("kill");
    // The running command ends as SIGKILLed with its output kept; the next exec says why.
    let killed = running.wait().await.expect("killed command result");
    assert_eq!(killed.exit_code, 137);
    assert_eq!(killed.stdout, "up\n");
    assert!(start.elapsed() < Duration::from_secs(15));
    match s.exec("true", quick(10)).await {
        Err(BackendError::SandboxDead { .. }) => {}
        other => panic!("expected SandboxDead, got {other:?}"),
    }
    s.close().await.expect("close after death");
    assert_no_leak(&run).await;
}
