//! The image contract on real images built FROM the test image: the exec wrapper runs under
//! bash whatever `/bin/sh` is, and an image lacking what atp needs is refused in one line before
//! any session is handed out — with nothing left behind.

use std::time::Duration;

use atp_backend::{BackendError, ComputeBackend, NetworkMode, Requirements, RunId};
use atp_docker::{DockerBackend, DockerConfig};
use atp_test_support::{assert_no_leak, variant_image};

use crate::common::{self, quick};

fn backend(image: &str) -> DockerBackend {
    DockerBackend::new(DockerConfig {
        network: NetworkMode::None,
        ..DockerConfig::for_image(image)
    })
}

/// Open a session on `image` requiring `req`; the contract error, asserting that nothing leaked.
async fn refused(image: &str, req: Requirements) -> String {
    let run = RunId::new();
    let wd = common::workdir();
    let mut o = common::opts(&run);
    o.requires = req;
    let err = backend(image)
        .session(wd.path(), o)
        .await
        .expect_err("the image breaks the contract");
    assert!(
        matches!(err, BackendError::ImageContract { .. }),
        "{image}: {err:?}"
    );
    assert_eq!(err.kind(), "image_contract");
    assert_no_leak(&run).await;
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "{msg}");
    assert!(msg.contains(image), "{msg}");
    msg
}

#[tokio::test]
async fn a_busybox_sh_image_still_runs_every_command_under_bash_and_gnu_timeout() {
    let Some(image) = variant_image(
        module_path!(),
        "busybox-sh",
        &["ln -sf busybox /usr/bin/sh"],
    )
    .await
    else {
        return;
    };
    let b = backend(&image);
    let (run, _wd, s) = common::open(&b).await;
    let r = s
        .exec_wait(
            "readlink /usr/bin/sh; echo $BASH_VERSION | cut -c1",
            quick(30),
        )
        .await
        .expect("exec");
    let mut lines = r.stdout.lines();
    assert_eq!(lines.next(), Some("busybox"), "{r:?}");
    assert!(lines.next().is_some_and(|l| !l.is_empty()), "{r:?}");
    // The budget is still enforced by GNU timeout with its kill-after grace.
    let err = s
        .exec_wait("echo started; sleep 60", quick(1))
        .await
        .expect_err("over budget");
    match err {
        BackendError::CommandTimeout { partial, budget } => {
            assert_eq!(budget, Duration::from_secs(1));
            assert_eq!(partial.stdout, "started\n");
        }
        other => panic!("expected CommandTimeout, got {other:?}"),
    }
    s.close().await.expect("close");
    assert_no_leak(&run).await;
}

#[tokio::test]
async fn a_busybox_timeout_is_refused_naming_gnu_timeout() {
    let Some(image) = variant_image(
        module_path!(),
        "busybox-timeout",
        &["ln -sf busybox /usr/bin/timeout"],
    )
    .await
    else {
        return;
    };
    let msg = refused(&image, Requirements::default()).await;
    assert!(msg.contains("`timeout` is not GNU timeout"), "{msg}");
    assert!(msg.contains("cargo xtask test-image"), "{msg}");
}

#[tokio::test]
async fn a_missing_required_command_or_path_is_refused_by_name() {
    let Some(image) = variant_image(module_path!(), "no-mktemp", &["rm /usr/bin/mktemp"]).await
    else {
        return;
    };
    // The wrapping itself needs no mktemp: a session that does not require it opens.
    let b = backend(&image);
    let (run, _wd, s) = common::open(&b).await;
    let r = s
        .exec_wait("command -v mktemp || echo none", quick(30))
        .await;
    assert_eq!(r.expect("exec").stdout, "none\n");
    s.close().await.expect("close");
    assert_no_leak(&run).await;

    let msg = refused(
        &image,
        Requirements::commands(["mktemp", "cat"]).with_paths(["/workspace/nope"]),
    )
    .await;
    assert!(msg.contains("`mktemp` not found"), "{msg}");
    assert!(msg.contains("/workspace/nope missing"), "{msg}");
    assert!(!msg.contains("`cat`"), "{msg}");
}

#[tokio::test]
async fn an_image_without_bash_is_refused() {
    let Some(image) = variant_image(module_path!(), "no-bash", &["rm /usr/bin/bash"]).await else {
        return;
    };
    let msg = refused(&image, Requirements::default()).await;
    assert!(msg.contains("`bash` could not run the check"), "{msg}");
}

#[tokio::test]
async fn the_test_image_meets_the_contract_with_the_verifier_layout() {
    let b = engine_or_skip!("the_test_image_meets_the_contract_with_the_verifier_layout");
    let run = RunId::new();
    let wd = common::workdir();
    let mut o = common::opts(&run);
    o.requires = Requirements::commands(["mktemp", "lake", "nproc"])
        .with_paths(["/workspace/.lake/ATP_TEST_MARKER"]);
    let s = b.session(wd.path(), o).await.expect("contract met");
    s.close().await.expect("close");
    assert_no_leak(&run).await;
}
