//! The control-plane client against the fake: headers, idempotency keys, retries, JWT refresh,
//! image layer builds, publish and lookup, image pins.

use std::collections::BTreeMap;
use std::time::Duration;

use atp_backend::{BackendError, ComputeBackend};
use atp_image::ModalLayer;
use atp_modal::{ModalClient, ModalError, RetryPolicy};
use atp_modal_fake::FakeOptions;

use crate::common;

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        retries: 3,
        base: Duration::from_millis(10),
        max: Duration::from_millis(50),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_carries_modal_headers_and_one_idempotency_key_across_retries() {
    let fake = common::control_plane(FakeOptions::default()).await;
    let client = ModalClient::with_options(
        common::creds(&fake),
        fast_retries(),
        Duration::from_secs(300),
    )
    .expect("client");
    fake.inject_error("AppGetOrCreate", tonic::Code::Unavailable, 2);
    let app = client
        .app_get_or_create("hdr-app", true)
        .await
        .expect("retried to success");
    assert!(app.starts_with("ap-"));
    let calls = fake.recorded(Some("AppGetOrCreate"));
    assert_eq!(calls.len(), 3, "two UNAVAILABLE answers, then success");
    let key = calls[0]
        .metadata
        .get("x-idempotency-key")
        .expect("idempotency key")
        .clone();
    assert_eq!(key.len(), 36);
    for (i, c) in calls.iter().enumerate() {
        let m = &c.metadata;
        assert_eq!(
            m.get("x-idempotency-key"),
            Some(&key),
            "same key on attempt {i}"
        );
        assert_eq!(m.get("x-retry-attempt"), Some(&i.to_string()));
        assert!(m.contains_key("x-retry-delay"));
        assert_eq!(m.get("x-modal-client-type").map(String::as_str), Some("7"));
        assert_eq!(
            m.get("x-modal-client-version").map(String::as_str),
            Some("1.0.0")
        );
        assert!(m
            .get("x-modal-libmodal-version")
            .is_some_and(|v| v.starts_with("atp-modal/")));
        assert_eq!(
            m.get("x-modal-token-id").map(String::as_str),
            Some("ak-test-id")
        );
        assert_eq!(
            m.get("x-modal-token-secret").map(String::as_str),
            Some("as-test-secret")
        );
        assert!(m.contains_key("x-modal-auth-token"));
    }
    // A second logical call gets a new key.
    client
        .app_get_or_create("hdr-app", true)
        .await
        .expect("again");
    let calls = fake.recorded(Some("AppGetOrCreate"));
    assert_ne!(calls[3].metadata.get("x-idempotency-key"), Some(&key));
    // AuthTokenGet itself carries no auth token and was called once.
    let auth = fake.recorded(Some("AuthTokenGet"));
    assert_eq!(auth.len(), 1);
    assert!(!auth[0].metadata.contains_key("x-modal-auth-token"));
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_argument_is_not_retried_and_retries_are_bounded() {
    let fake = common::control_plane(FakeOptions::default()).await;
    let client = ModalClient::with_options(
        common::creds(&fake),
        fast_retries(),
        Duration::from_secs(300),
    )
    .expect("client");
    fake.inject_error("AppGetOrCreate", tonic::Code::InvalidArgument, 1);
    let err = client
        .app_get_or_create("x", true)
        .await
        .expect_err("invalid");
    assert_eq!(err.code(), Some(tonic::Code::InvalidArgument));
    assert_eq!(fake.calls("AppGetOrCreate"), 1);
    fake.inject_error("AppGetOrCreate", tonic::Code::Unavailable, 10);
    let err = client
        .app_get_or_create("x", true)
        .await
        .expect_err("gives up");
    assert_eq!(err.code(), Some(tonic::Code::Unavailable));
    assert_eq!(fake.calls("AppGetOrCreate"), 1 + 4, "1 try + 3 retries");
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auth_jwt_is_fetched_lazily_and_refreshed_before_expiry() {
    let opts = FakeOptions {
        token_ttl: Duration::from_secs(4),
        ..Default::default()
    };
    let fake = common::control_plane(opts).await;
    // Refresh window 2 s: a 4 s token is reused for at least its first second and renewed once
    // it is within 2 s of expiry (while the fake would still accept it).
    let client =
        ModalClient::with_options(common::creds(&fake), fast_retries(), Duration::from_secs(2))
            .expect("client");
    assert_eq!(
        fake.calls("AuthTokenGet"),
        0,
        "nothing is sent before the first call"
    );
    client.app_get_or_create("jwt-app", true).await.expect("1");
    client.app_get_or_create("jwt-app", true).await.expect("2");
    assert_eq!(fake.calls("AuthTokenGet"), 1, "token reused while fresh");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    client.app_get_or_create("jwt-app", true).await.expect("3");
    assert_eq!(fake.calls("AuthTokenGet"), 2, "token refreshed");
    let calls = fake.recorded(Some("AppGetOrCreate"));
    assert_ne!(
        calls[0].metadata.get("x-modal-auth-token"),
        calls[2].metadata.get("x-modal-auth-token")
    );
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_chain_by_base_image_id_force_build_rebuilds_and_publish_is_found_by_name() {
    let Some(fake) = common::fake(FakeOptions::default()).await else {
        return;
    };
    let client = ModalClient::new(common::creds(&fake)).expect("client");
    let app = client
        .app_get_or_create("img-app", true)
        .await
        .expect("app");
    let layers = vec![
        ModalLayer {
            base: Some("debian:bookworm-slim".into()),
            dockerfile_commands: vec![],
        },
        ModalLayer {
            base: None,
            dockerfile_commands: vec!["RUN apt-get install -y git".into()],
        },
        ModalLayer {
            base: None,
            dockerfile_commands: vec![
                "ENV ATP_LEAN_TOOLCHAIN=leanprover/lean4:v4.28.0 ATP_MATHLIB_REV=v4.28.0 ATP_SPEC_HASH=abc123".into(),
            ],
        },
    ];
    let mut log = String::new();
    let id = client
        .image_build(&app, &layers, false, &mut |l: &str| log.push_str(l))
        .await
        .expect("build");
    assert!(
        log.contains("Step 2/2 : RUN apt-get install -y git"),
        "{log}"
    );
    assert!(log.contains(&format!("Built image {id}")), "{log}");
    // Chaining: the last layer builds FROM base on the middle one, which builds on the first.
    let (cmds, base) = fake.image_layer(&id).expect("layer");
    assert_eq!(cmds[0], "FROM base");
    let mid = base.expect("has base");
    let (mid_cmds, first) = fake.image_layer(&mid).expect("mid");
    assert_eq!(mid_cmds, vec!["FROM base", "RUN apt-get install -y git"]);
    let (first_cmds, none) = fake
        .image_layer(&first.expect("first"))
        .expect("first layer");
    assert_eq!(first_cmds, vec!["FROM debian:bookworm-slim"]);
    assert!(none.is_none());
    assert!(
        fake.calls("ImageJoinStreaming") > 3,
        "long polls were re-issued"
    );
    // Cached rebuild is a no-op; force_build rebuilds every layer.
    let again = client
        .image_build(&app, &layers, false, &mut |_: &str| {})
        .await
        .expect("cached");
    assert_eq!(again, id);
    assert_eq!(fake.builds(&id), 1);
    client
        .image_build(&app, &layers, true, &mut |_: &str| {})
        .await
        .expect("forced");
    assert_eq!(fake.builds(&id), 2);
    assert_eq!(fake.builds(&mid), 2);
    // A failing layer is a Build error naming the image.
    let bad = vec![
        layers[0].clone(),
        ModalLayer {
            base: None,
            dockerfile_commands: vec!["RUN atp-fake-fail".into()],
        },
    ];
    let err = client
        .image_build(&app, &bad, false, &mut |_: &str| {})
        .await
        .expect_err("fails");
    assert!(matches!(err, ModalError::Build { .. }), "{err}");
    // Publish and look up by name.
    assert_eq!(
        client.image_get_by_tag("my-atp").await.expect("lookup"),
        None
    );
    client.image_publish(&id, "my-atp").await.expect("publish");
    assert_eq!(
        client.image_get_by_tag("my-atp").await.expect("lookup"),
        Some(id.clone())
    );
    assert_eq!(
        client
            .image_get_by_tag("my-atp:latest")
            .await
            .expect("lookup"),
        Some(id.clone())
    );
    // The backend resolves the name and reads the pins recorded in the image's environment.
    let cache = tempfile::tempdir().expect("tmp");
    let cfg = atp_modal::ModalConfig {
        image: "my-atp".into(),
        pin_cache: Some(cache.path().to_path_buf()),
        ..common::config()
    };
    let backend = atp_modal::ModalBackend::new(cfg.clone(), common::creds(&fake)).expect("backend");
    let creates = fake.calls("SandboxCreate");
    let info = backend.image_info().await.expect("image info");
    assert_eq!(
        fake.calls("SandboxCreate"),
        creates + 1,
        "pins probed in a sandbox"
    );
    assert_eq!(info.id, id);
    // A second backend (another atp process) reads them from the cache: no probe sandbox.
    let again = atp_modal::ModalBackend::new(cfg, common::creds(&fake))
        .expect("backend")
        .image_info()
        .await
        .expect("cached image info");
    assert_eq!(again, info);
    assert_eq!(fake.calls("SandboxCreate"), creates + 1, "no second probe");
    assert_eq!(
        info.labels,
        BTreeMap::from([
            (
                "atp.lean-toolchain".to_string(),
                "leanprover/lean4:v4.28.0".to_string()
            ),
            ("atp.mathlib-rev".to_string(), "v4.28.0".to_string()),
            ("atp.spec-hash".to_string(), "abc123".to_string()),
        ])
    );
    let missing = atp_modal::ModalBackend::new(
        atp_modal::ModalConfig {
            image: "nope".into(),
            ..common::config()
        },
        common::creds(&fake),
    )
    .expect("backend");
    match missing.image_info().await {
        Err(BackendError::ImageUnavailable { remedy, .. }) => {
            assert!(remedy.contains("build-modal-image"), "{remedy}")
        }
        other => panic!("expected ImageUnavailable, got {other:?}"),
    }
    assert_eq!(
        common::live_containers(&fake).await,
        0,
        "the pin probe sandbox is gone"
    );
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_calls_carry_only_the_bearer_jwt_and_refresh_it_when_refused() {
    let opts = FakeOptions {
        router_token_ttl: Duration::from_secs(1),
        ..Default::default()
    };
    let Some(fake) = common::fake(opts).await else {
        return;
    };
    let backend = common::backend(&fake);
    let wd = tempfile::tempdir().expect("tmp");
    let s = backend
        .session(wd.path(), atp_backend::SessionOptions::default())
        .await
        .expect("session");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = s
        .exec_wait("echo after-expiry", atp_backend::ExecOptions::default())
        .await
        .expect("exec after the router token expired");
    assert_eq!(r.stdout, "after-expiry\n");
    assert!(
        fake.calls("TaskGetCommandRouterAccess") >= 2,
        "router JWT refreshed"
    );
    let start = &fake.recorded(Some("TaskExecStart"))[0].metadata;
    assert!(start
        .get("authorization")
        .is_some_and(|a| a.starts_with("Bearer ")));
    assert!(
        !start.contains_key("x-modal-token-secret"),
        "no control-plane secrets to the router"
    );
    s.close().await.expect("close");
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_sandbox_create_after_a_lost_response_creates_one_sandbox() {
    let Some(fake) = common::fake(FakeOptions::default()).await else {
        return;
    };
    let client = ModalClient::with_options(
        common::creds(&fake),
        fast_retries(),
        Duration::from_secs(300),
    )
    .expect("client");
    let app = client
        .app_get_or_create("idem-app", true)
        .await
        .expect("app");
    let image = client
        .image_get_by_tag("open-atp")
        .await
        .expect("lookup")
        .expect("seeded");
    fake.lose_responses("SandboxCreate", tonic::Code::Unavailable, 1);
    let spec = atp_modal::SandboxSpec {
        image_id: image,
        timeout_secs: 60,
        ..Default::default()
    };
    let id = client
        .sandbox_create(&app, &spec)
        .await
        .expect("create after retry");
    assert_eq!(
        fake.calls("SandboxCreate"),
        2,
        "the lost answer was retried"
    );
    assert_eq!(
        fake.sandboxes().len(),
        1,
        "the idempotency key deduplicated the retry"
    );
    assert_eq!(fake.sandboxes()[0].id, id);
    client.sandbox_terminate(&id).await.expect("terminate");
    client
        .sandbox_terminate(&id)
        .await
        .expect("terminate is idempotent");
    assert_eq!(common::live_containers(&fake).await, 0);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_auth_token_is_dropped_and_the_call_repeated_with_a_fresh_one() {
    let fake = common::control_plane(FakeOptions::default()).await;
    let client = ModalClient::new(common::creds(&fake)).expect("client");
    client.app_get_or_create("a", true).await.expect("first");
    fake.revoke_auth_tokens();
    client.app_get_or_create("a", true).await.expect("recovers");
    assert_eq!(fake.calls("AuthTokenGet"), 2);
    let calls = fake.recorded(Some("AppGetOrCreate"));
    assert_eq!(calls.len(), 3, "refused once, then repeated");
    assert_ne!(
        calls[1].metadata.get("x-modal-auth-token"),
        calls[2].metadata.get("x-modal-auth-token")
    );
    fake.shutdown().await;
}
