//! Modal's official Python SDK (PyPI `modal`) against the fake: proves the fake speaks Modal's
//! protocol, not only atp's client dialect.
//!
//! The SDK's interpreter: `$ATP_MODAL_PYTHON`, else `/opt/atp-ci/modal-venv/bin/python`
//! (installed by `.ci/setup.d/python-modal.sh`). Skips loudly without it; fails instead with
//! `ATP_REQUIRE_MODAL_SDK=1`.

use std::path::PathBuf;
use std::time::Duration;

use atp_modal_fake::FakeOptions;

use crate::common;

fn sdk_python() -> Option<PathBuf> {
    let p = std::env::var_os("ATP_MODAL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/atp-ci/modal-venv/bin/python"));
    let ok = std::process::Command::new(&p)
        .args(["-c", "import modal"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Some(p);
    }
    let msg = format!(
        "Modal Python SDK not importable with {} — run .ci/setup.d/python-modal.sh or set ATP_MODAL_PYTHON",
        p.display()
    );
    if std::env::var("ATP_REQUIRE_MODAL_SDK").as_deref() == Ok("1") {
        panic!("ATP_REQUIRE_MODAL_SDK=1: {msg}");
    }
    {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "!!! SKIPPED: {msg}");
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_sdk_runs_a_sandbox_on_the_fake() {
    let Some(python) = sdk_python() else { return };
    let Some(fake) = common::fake(FakeOptions::default()).await else {
        return;
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/sdk_roundtrip.py");
    let home = tempfile::tempdir().expect("tmp");
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(&python)
            .arg(&script)
            .env("MODAL_SERVER_URL", fake.url())
            .env("MODAL_TOKEN_ID", "ak-dummy")
            .env("MODAL_TOKEN_SECRET", "as-dummy")
            .env("MODAL_SANDBOX_V2", "0")
            .env("HOME", home.path())
            .env_remove("MODAL_PROFILE")
            .env_remove("MODAL_CONFIG_PATH")
            .env_remove("MODAL_ENVIRONMENT")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the SDK script finished within 120 s")
    .expect("python runs");
    eprintln!(
        "RPCs the SDK sent that the fake does not serve: {:?}",
        fake.unknown_rpcs()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let methods: Vec<String> = fake.recorded(None).into_iter().map(|r| r.method).collect();
    assert!(
        out.status.success(),
        "SDK script failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}\nRPCs seen: {methods:?}",
        out.status
    );
    assert!(stdout.contains("exec 'hello\\n' 0"), "{stdout}");
    assert!(stdout.contains("exec3 'from sdk stdin\\n' 0"), "{stdout}");
    for m in [
        "AppGetOrCreate",
        "ImageGetByTag",
        "SandboxCreate",
        "SandboxGetTaskId",
        "TaskGetCommandRouterAccess",
        "TaskExecStart",
        "TaskExecStdioRead",
        "TaskExecWait",
        "TaskExecStdinWrite",
        "SandboxTerminate",
    ] {
        assert!(
            methods.iter().any(|x| x == m),
            "the SDK never called {m}: {methods:?}"
        );
    }
    let sdk_headers = &fake.recorded(Some("SandboxCreate"))[0].metadata;
    assert_eq!(
        sdk_headers.get("x-modal-token-id").map(String::as_str),
        Some("ak-dummy")
    );
    assert!(fake.sandboxes().iter().all(|s| s.terminated));
    assert_eq!(common::live_containers(&fake).await, 0);
    fake.shutdown().await;
}
