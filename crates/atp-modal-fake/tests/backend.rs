//! ModalBackend against the fake Modal, whose sandboxes are real local containers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use atp_backend::{BackendError, ComputeBackend, ExecOptions, GcFilter, RunId, SessionOptions};
use atp_modal_fake::FakeOptions;

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workdir_edits_in_the_sandbox_land_on_the_host() {
    let Some(fake) = common::fake(FakeOptions::default()).await else {
        return;
    };
    let backend = common::backend(&fake);
    let wd = tempfile::tempdir().expect("tmp");
    std::fs::write(wd.path().join("a.txt"), "from host\n").expect("w");
    std::fs::write(wd.path().join("gone.txt"), "delete me\n").expect("w");
    std::fs::create_dir_all(wd.path().join("src/deep")).expect("mk");
    std::fs::write(
        wd.path().join("src/deep/x.lean"),
        "theorem x : True := trivial\n",
    )
    .expect("w");
    let run_id = RunId::new();
    let opts = SessionOptions {
        env: BTreeMap::from([("SESSION_VAR".to_string(), "s1".to_string())]),
        run_id: Some(run_id.clone()),
        ..Default::default()
    };
    let s = backend.session(wd.path(), opts).await.expect("session");
    let r = s
        .exec_wait(
            "cat a.txt src/deep/x.lean; echo \"$IS_SANDBOX $LEAN_NUM_THREADS $SESSION_VAR $CALL_VAR\"; \
             echo new > b.txt; rm gone.txt; mkdir -p sub && printf 'ü∀' > sub/u; pwd",
            ExecOptions {
                env: BTreeMap::from([("CALL_VAR".to_string(), "c1".to_string())]),
                ..Default::default()
            },
        )
        .await
        .expect("exec");
    assert_eq!(r.exit_code, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "from host\ntheorem x : True := trivial\n1 2 s1 c1\n/workspace/wd\n"
    );
    let sb = fake
        .sandboxes()
        .into_iter()
        .find(|v| v.id == s.id())
        .expect("sandbox");
    assert_eq!(sb.tags.get("atp.run-id"), Some(&run_id.to_string()));
    assert_eq!(sb.tags.get("atp.managed").map(String::as_str), Some("true"));
    assert_eq!(sb.milli_cpu, 2000);
    assert_eq!(sb.memory_mb, 4096);
    s.close().await.expect("close");
    s.close().await.expect("close is idempotent");
    assert_eq!(
        std::fs::read_to_string(wd.path().join("b.txt")).expect("b"),
        "new\n"
    );
    assert_eq!(
        std::fs::read_to_string(wd.path().join("sub/u")).expect("u"),
        "ü∀"
    );
    assert!(
        !wd.path().join("gone.txt").exists(),
        "deletion in the sandbox reaches the host"
    );
    assert!(wd.path().join("src/deep/x.lean").exists());
    assert!(matches!(
        s.exec("true", ExecOptions::default()).await,
        Err(BackendError::Closed { .. })
    ));
    assert!(fake.sandboxes().iter().all(|v| v.terminated));
    assert_eq!(common::live_containers(&fake).await, 0);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_lines_survive_odd_chunk_and_utf8_boundaries() {
    let opts = FakeOptions {
        chunk_size: 3,
        ..Default::default()
    };
    let Some(fake) = common::fake(opts).await else {
        return;
    };
    let (_backend, _wd, s) = common::open(&fake).await;
    let mut h = s
        .exec(
            "printf 'héllo wörld\\n∀ x, x = x\\n✓ done\\nno newline ∎'; printf 'err ü' >&2; exit 3",
            ExecOptions::default(),
        )
        .await
        .expect("exec");
    let mut lines = Vec::new();
    while let Some(l) = h.next_line().await {
        lines.push(l);
    }
    assert_eq!(
        lines,
        vec!["héllo wörld", "∀ x, x = x", "✓ done", "no newline ∎"]
    );
    let r = h.wait().await.expect("result");
    assert_eq!(r.exit_code, 3);
    assert_eq!(r.stderr, "err ü");
    // Stdin is fed and closed: a stdin-reading command ends.
    let r = s
        .exec_wait(
            "wc -c",
            ExecOptions {
                stdin: Some(bytes::Bytes::from_static(b"12345")),
                ..Default::default()
            },
        )
        .await
        .expect("wc");
    assert_eq!(r.stdout.trim(), "5");
    let r = s
        .exec_wait("cat; echo eof-seen", ExecOptions::default())
        .await
        .expect("cat");
    assert_eq!(
        r.stdout, "eof-seen\n",
        "stdin is closed when no input is given"
    );
    s.close().await.expect("close");
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_signals_and_command_timeouts() {
    let Some(fake) = common::fake(FakeOptions::default()).await else {
        return;
    };
    let (_backend, _wd, s) = common::open(&fake).await;
    let r = s
        .exec_wait("exit 42", ExecOptions::default())
        .await
        .expect("exit");
    assert_eq!(r.exit_code, 42);
    let r = s
        .exec_wait("kill -KILL $$", ExecOptions::default())
        .await
        .expect("signal");
    assert_eq!(r.exit_code, 137);
    let before = fake.calls("TaskExecWait");
    let r = s
        .exec_wait(
            "echo started; sleep 30",
            ExecOptions {
                timeout: Some(Duration::from_secs(1)),
                kill_grace: Some(Duration::from_secs(1)),
                ..Default::default()
            },
        )
        .await;
    match r {
        Err(BackendError::CommandTimeout { partial, .. }) => {
            assert_eq!(partial.stdout, "started\n")
        }
        other => panic!("expected CommandTimeout, got {other:?}"),
    }
    assert!(fake.calls("TaskExecWait") > before);
    s.close().await.expect("close");
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_killed_mid_exec_is_sandbox_dead_not_a_hang() {
    let Some(fake) = common::fake(FakeOptions::default()).await else {
        return;
    };
    let (_backend, _wd, s) = common::open(&fake).await;
    let h = s
        .exec("echo up; sleep 60", ExecOptions::default())
        .await
        .expect("exec");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let started = Instant::now();
    fake.kill_sandbox(s.id()).await;
    let r = tokio::time::timeout(Duration::from_secs(20), h.wait())
        .await
        .expect("no hang");
    assert!(matches!(r, Err(BackendError::SandboxDead { .. })), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(15));
    // Closing a dead session does not hang either and leaves nothing behind.
    let _ = tokio::time::timeout(Duration::from_secs(20), s.close())
        .await
        .expect("close returns");
    assert_eq!(common::live_containers(&fake).await, 0);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_is_exec_timeout() {
    let Some(fake) = common::fake(FakeOptions::default()).await else {
        return;
    };
    let (_backend, _wd, s) = common::open(&fake).await;
    fake.stall_execs(true);
    let started = Instant::now();
    let r = s
        .exec_wait(
            "echo hi",
            ExecOptions {
                timeout: Some(Duration::from_secs(1)),
                kill_grace: Some(Duration::from_secs(1)),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(r, Err(BackendError::ExecTimeout { .. })), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    fake.stall_execs(false);
    s.close().await.expect("close");
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_provision_terminates_the_sandbox() {
    let Some(fake) = common::fake(FakeOptions::default()).await else {
        return;
    };
    let backend = common::backend(&fake);
    let wd = tempfile::tempdir().expect("tmp");
    fake.inject_error("SandboxGetTaskId", tonic::Code::InvalidArgument, 1);
    let r = backend.session(wd.path(), SessionOptions::default()).await;
    assert!(matches!(r, Err(BackendError::Provision { .. })), "{r:?}");
    let all = fake.sandboxes();
    assert_eq!(all.len(), 1);
    assert!(all[0].terminated, "the half-made sandbox was terminated");
    // A push that fails (unwritable destination) also terminates.
    let opts = SessionOptions {
        mounts: vec![atp_backend::Mount::read_only(
            wd.path(),
            "/proc/atp-cannot-write",
        )],
        ..Default::default()
    };
    let r = backend.session(wd.path(), opts).await;
    assert!(matches!(r, Err(BackendError::Provision { .. })), "{r:?}");
    assert!(fake.sandboxes().iter().all(|v| v.terminated));
    assert_eq!(common::live_containers(&fake).await, 0);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_session_is_terminated_by_its_guard() {
    let Some(fake) = common::fake(FakeOptions::default()).await else {
        return;
    };
    let (_backend, _wd, s) = common::open(&fake).await;
    let id = s.id().to_string();
    drop(s);
    let v = fake
        .sandboxes()
        .into_iter()
        .find(|v| v.id == id)
        .expect("sandbox");
    assert!(v.terminated);
    assert_eq!(common::live_containers(&fake).await, 0);
    fake.shutdown().await;
}

/// A caller that stops waiting while `SandboxCreate` is in flight must not leave the sandbox
/// running: the creation runs to its end and the sandbox it made is terminated. Attempts are
/// dropped after growing delays until some were dropped after the service had made a sandbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_future_dropped_during_creation_leaves_no_sandbox() {
    use atp_backend::ComputeBackend as _;
    let Some(fake) = common::fake(FakeOptions::default()).await else {
        return;
    };
    let backend = common::backend(&fake);
    let wd = tempfile::tempdir().expect("tmp");
    let (mut opened, mut dropped) = (0usize, 0usize);
    let mut delay_ms = 0u64;
    while delay_ms <= 600 {
        match tokio::time::timeout(
            std::time::Duration::from_millis(delay_ms),
            backend.session(wd.path(), SessionOptions::default()),
        )
        .await
        {
            Ok(s) => {
                opened += 1;
                s.expect("session").close().await.expect("close");
            }
            Err(_) => dropped += 1,
        }
        delay_ms += 6;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !fake.audit().await.is_clean() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let created = fake.sandboxes().len();
    assert!(dropped > 0, "no attempt was dropped");
    assert!(
        created > opened,
        "no dropped attempt reached SandboxCreate ({created} created, {opened} opened): the test did not exercise the window"
    );
    let audit = fake.audit().await;
    assert!(audit.is_clean(), "{}", audit.summary());
    assert_eq!(common::live_containers(&fake).await, 0);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_finds_and_terminates_sandboxes_by_tag() {
    let Some(fake) = common::fake(FakeOptions::default()).await else {
        return;
    };
    let backend = common::backend(&fake);
    let client = backend.client().clone();
    let app = client
        .app_get_or_create("atp-test", true)
        .await
        .expect("app");
    let image = client
        .image_get_by_tag("open-atp")
        .await
        .expect("lookup")
        .expect("seeded");
    let mine = RunId::new();
    let other = RunId::new();
    let mut ids = Vec::new();
    for run in [&mine, &mine, &mine, &other] {
        let id = client
            .sandbox_create(
                &app,
                &atp_modal::SandboxSpec {
                    image_id: image.clone(),
                    timeout_secs: 120,
                    ..Default::default()
                },
            )
            .await
            .expect("create");
        let tags = BTreeMap::from([
            ("atp.run-id".to_string(), run.to_string()),
            ("atp.managed".to_string(), "true".to_string()),
        ]);
        client.sandbox_tags_set(&id, &tags).await.expect("tags");
        ids.push(id);
    }
    let listed = backend
        .gc(GcFilter {
            run_id: Some(mine.clone()),
            dry_run: true,
            ..Default::default()
        })
        .await
        .expect("gc dry");
    assert_eq!(listed.len(), 3, "three sandboxes across list pages of 2");
    assert!(listed.iter().all(|e| !e.removed));
    let removed = backend
        .gc(GcFilter {
            run_id: Some(mine.clone()),
            ..Default::default()
        })
        .await
        .expect("gc");
    assert_eq!(removed.len(), 3);
    assert!(removed
        .iter()
        .all(|e| e.removed && e.run_id.as_deref() == Some(mine.as_str())));
    let views = fake.sandboxes();
    let other_view = views.iter().find(|v| v.id == ids[3]).expect("other");
    assert!(!other_view.terminated, "other runs are untouched");
    let rest = backend.gc(GcFilter::default()).await.expect("gc all");
    assert_eq!(rest.len(), 1);
    assert_eq!(common::live_containers(&fake).await, 0);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_carrying_an_escaping_symlink_is_refused_and_the_link_not_written() {
    let Some(fake) = common::fake(FakeOptions::default()).await else {
        return;
    };
    let backend = common::backend(&fake);
    let wd = tempfile::tempdir().expect("tmp");
    std::fs::write(wd.path().join("keep.txt"), "host\n").expect("w");
    let s = backend
        .session(wd.path(), SessionOptions::default())
        .await
        .expect("session");
    let r = s
        .exec_wait(
            "ln -s /etc/passwd evil && echo changed > keep.txt",
            ExecOptions::default(),
        )
        .await
        .expect("exec");
    assert_eq!(r.exit_code, 0, "{r:?}");
    let err = s.sync_out().await.expect_err("refused");
    match &err {
        BackendError::Transfer { detail, .. } => {
            assert!(
                detail.contains("evil") && detail.contains("outside"),
                "{detail}"
            )
        }
        other => panic!("expected Transfer, got {other:?}"),
    }
    assert!(
        std::fs::symlink_metadata(wd.path().join("evil")).is_err(),
        "no link on the host"
    );
    let closed = s.close().await;
    assert!(closed.is_err(), "close reports the refused pull");
    assert!(
        fake.sandboxes().iter().all(|v| v.terminated),
        "and still terminates"
    );
    assert_eq!(common::live_containers(&fake).await, 0);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_output_streams_resume_at_the_byte_offset() {
    let opts = FakeOptions {
        chunk_size: 5,
        break_stdio_after: Some(3),
        ..Default::default()
    };
    let Some(fake) = common::fake(opts).await else {
        return;
    };
    let (_backend, _wd, s) = common::open(&fake).await;
    let r = s
        .exec_wait(
            "for i in $(seq 1 40); do echo \"line $i ∀\"; done",
            ExecOptions::default(),
        )
        .await
        .expect("exec");
    let want: String = (1..=40).map(|i| format!("line {i} ∀\n")).collect();
    assert_eq!(
        r.stdout, want,
        "no byte lost or repeated across stream resets"
    );
    assert!(
        fake.calls("TaskExecStdioRead") > 10,
        "the stream was re-opened many times"
    );
    s.close().await.expect("close");
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounts_are_pushed_and_only_writable_ones_pulled_back() {
    let Some(fake) = common::fake(FakeOptions::default()).await else {
        return;
    };
    let backend = common::backend(&fake);
    let wd = tempfile::tempdir().expect("tmp");
    let ro = tempfile::tempdir().expect("tmp");
    let rw = tempfile::tempdir().expect("tmp");
    let file = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(ro.path().join("cred.json"), "{\"k\":1}").expect("w");
    std::fs::write(rw.path().join("in.txt"), "in").expect("w");
    std::fs::write(file.path(), "single file").expect("w");
    let opts = SessionOptions {
        mounts: vec![
            atp_backend::Mount::read_only(ro.path(), "/root/.config/agent"),
            atp_backend::Mount::writable(rw.path(), "/workspace/out"),
            atp_backend::Mount::read_only(file.path(), "/root/.agent.json"),
        ],
        ..Default::default()
    };
    let s = backend.session(wd.path(), opts).await.expect("session");
    let r = s
        .exec_wait(
            "cat /root/.config/agent/cred.json /workspace/out/in.txt /root/.agent.json; \
             echo x > /root/.config/agent/new; echo out > /workspace/out/result.txt",
            ExecOptions::default(),
        )
        .await
        .expect("exec");
    assert_eq!(r.stdout, "{\"k\":1}insingle file");
    s.close().await.expect("close");
    assert_eq!(
        std::fs::read_to_string(rw.path().join("result.txt")).expect("pulled"),
        "out\n"
    );
    assert!(
        !ro.path().join("new").exists(),
        "read-only mounts are not pulled"
    );
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_open_abandoned_mid_provision_leaves_nothing_behind() {
    let opts = FakeOptions {
        task_id_pending_polls: 10_000,
        ..Default::default()
    };
    let Some(fake) = common::fake(opts).await else {
        return;
    };
    let backend = common::backend(&fake);
    let wd = tempfile::tempdir().expect("tmp");
    let r = tokio::time::timeout(
        Duration::from_secs(3),
        backend.session(wd.path(), SessionOptions::default()),
    )
    .await;
    assert!(r.is_err(), "still waiting for the task when abandoned");
    let all = fake.sandboxes();
    assert_eq!(all.len(), 1);
    assert!(
        all[0].terminated,
        "the dropped provision terminated its sandbox"
    );
    assert_eq!(common::live_containers(&fake).await, 0);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_kills_the_command_tree_in_the_sandbox() {
    let Some(fake) = common::fake(FakeOptions::default()).await else {
        return;
    };
    let (_backend, _wd, s) = common::open(&fake).await;
    let mut h = s
        .exec(
            "echo started; sleep 60; echo not-reached",
            ExecOptions::default(),
        )
        .await
        .expect("exec");
    assert_eq!(h.next_line().await.as_deref(), Some("started"));
    let t = Instant::now();
    h.cancel().await.expect("cancel");
    let r = tokio::time::timeout(Duration::from_secs(20), h.wait())
        .await
        .expect("returns");
    match r {
        Err(BackendError::Cancelled { partial }) => assert_eq!(partial.stdout, "started\n"),
        other => panic!("expected Cancelled, got {other:?}"),
    }
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "the sleep was killed, not waited out"
    );
    s.close().await.expect("close");
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_breaking_the_contract_is_refused_before_the_push_and_terminated() {
    let Some(image) = atp_test_support::variant_image(
        "modal contract",
        "no-mktemp-busybox-sh",
        &["rm /usr/bin/mktemp", "ln -sf busybox /usr/bin/sh"],
    )
    .await
    else {
        return;
    };
    let opts = FakeOptions {
        docker_image: image,
        ..FakeOptions::default()
    };
    let Some(fake) = common::fake(opts).await else {
        return;
    };
    let backend = common::backend(&fake);
    let wd = tempfile::tempdir().expect("tmp");
    std::fs::write(wd.path().join("in.txt"), "pushed\n").expect("w");
    // A busybox /bin/sh does not matter (pushes, pulls and commands run under bash) …
    let s = backend
        .session(wd.path(), SessionOptions::default())
        .await
        .expect("session on a busybox-sh image");
    let r = s
        .exec_wait(
            "cat in.txt; readlink /usr/bin/sh",
            ExecOptions::with_timeout(Duration::from_secs(30)),
        )
        .await
        .expect("exec");
    assert_eq!(r.stdout, "pushed\nbusybox\n");
    s.close().await.expect("close");
    // … but a session whose commands need mktemp is refused in one line.
    let err = backend
        .session(
            wd.path(),
            SessionOptions {
                requires: atp_backend::Requirements::commands(["mktemp"]),
                ..Default::default()
            },
        )
        .await
        .expect_err("no mktemp");
    assert_eq!(err.kind(), "image_contract", "{err}");
    let msg = err.to_string();
    assert!(msg.contains("`mktemp` not found"), "{msg}");
    assert!(msg.contains("atp build-modal-image"), "{msg}");
    assert!(!msg.contains('\n'));
    assert!(fake.sandboxes().iter().all(|s| s.terminated));
    assert_eq!(common::live_containers(&fake).await, 0);
    fake.shutdown().await;
}
