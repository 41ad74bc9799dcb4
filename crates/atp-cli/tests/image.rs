//! `atp image render` / `atp build-image` end to end. The engine test needs a Docker engine, the
//! `docker` CLI and the test image (`cargo xtask test-image`); it skips loudly without them
//! and fails instead when `ATP_REQUIRE_DOCKER=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use atp_test_support::test_image;

use crate::common::{engine_ready, stderr, stdout, ATP};

fn images_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images")
}

/// A temp dir with `spec.toml` (the given text) and a copy of the repo's Lean skeleton.
fn spec_dir(spec: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("lean")).expect("mkdir");
    for f in ["lean-toolchain", "lakefile.toml"] {
        std::fs::copy(
            images_dir().join("lean").join(f),
            dir.path().join("lean").join(f),
        )
        .expect("copy skeleton");
    }
    std::fs::write(dir.path().join("spec.toml"), spec).expect("write spec");
    dir
}

fn atp(args: &[&str]) -> Output {
    Command::new(ATP).args(args).output().expect("run atp")
}

#[test]
fn render_modal_json_of_the_default_spec() {
    let spec = images_dir().join("open-atp.toml");
    let out = atp(&[
        "image",
        "render",
        "--spec",
        spec.to_str().expect("utf8"),
        "--target",
        "modal",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["target"], "modal");
    assert_eq!(v["layers"][0]["base"], "ubuntu:24.04");
    let toolchain =
        std::fs::read_to_string(images_dir().join("lean/lean-toolchain")).unwrap_or_default();
    assert_eq!(v["env"]["ATP_LEAN_TOOLCHAIN"], toolchain.trim());
    assert_eq!(v["labels"]["atp.lean-toolchain"], toolchain.trim());
}

#[test]
fn render_dockerfile_text_is_the_spec_rendering() {
    let spec = images_dir().join("open-atp.toml");
    let out = atp(&[
        "image",
        "render",
        "--spec",
        spec.to_str().expect("utf8"),
        "--target",
        "dockerfile",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The committed lock is fresh, so the default rendering is the locked one.
    let (locked, status) =
        atp_image::ImageSpec::load_with_lock(&spec, atp_image::LockMode::Required)
            .expect("load with the committed lock");
    assert!(matches!(status, atp_image::LockStatus::Used { .. }));
    assert_eq!(stdout(&out), locked.to_dockerfile().expect("render"));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn a_bad_spec_is_one_line_naming_the_key() {
    let dir = spec_dir("base = \"x\"\nbsae = \"typo\"\n[[step]]\ncopy_skeleton = \"/workspace\"\n");
    let spec = dir.path().join("spec.toml");
    let out = atp(&[
        "image",
        "render",
        "--spec",
        spec.to_str().expect("utf8"),
        "--target",
        "dockerfile",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("bsae") && err.contains("spec.toml"), "{err}");
}

fn inspect(image: &str, format: &str) -> String {
    let out = Command::new("docker")
        .args(["image", "inspect", image, "--format", format])
        .output()
        .expect("docker inspect");
    assert!(out.status.success(), "inspect {image}: {}", stderr(&out));
    stdout(&out)
}

fn rmi(image: &str) {
    let _ = Command::new("docker").args(["rmi", "-f", image]).output();
}

#[test]
fn docker_cli_build_of_rendered_dockerfile_matches_atp_build_image() {
    if !engine_ready(module_path!()) {
        return;
    }
    let base = test_image();
    let dir = spec_dir(&format!(
        "base = \"{base}\"\n\
         [labels]\n\"org.example.purpose\" = \"cli equivalence\"\n\
         [[step]]\nenv = {{ MARK = \"one\" }}\n\
         [[step]]\nrun = [\"mkdir -p /opt/mark\", \"echo $MARK > /opt/mark/file\"]\n\
         [[step]]\nworkdir = \"/workspace\"\n\
         [[step]]\ncopy_skeleton = \"/workspace\"\n"
    ));
    let spec = dir.path().join("spec.toml");
    let spec_s = spec.to_str().expect("utf8");
    let suffix = format!("{:x}", std::process::id());
    let tag_cli = format!("atp-test-build-cli-{suffix}:latest");
    let tag_atp = format!("atp-test-build-atp-{suffix}:latest");

    let render = atp(&[
        "image",
        "render",
        "--spec",
        spec_s,
        "--target",
        "dockerfile",
    ]);
    assert!(render.status.success(), "{}", stderr(&render));
    let dockerfile = dir.path().join("Dockerfile");
    std::fs::write(&dockerfile, &render.stdout).expect("write Dockerfile");

    let cli = Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--network", "none", "-f"])
        .arg(&dockerfile)
        .args(["-t", &tag_cli])
        .arg(dir.path().join("lean"))
        .output()
        .expect("docker build");
    let built = atp(&[
        "build-image",
        "--spec",
        spec_s,
        "--tag",
        &tag_atp,
        "--network",
        "none",
        "--no-cache",
        "--quiet",
        "--json",
    ]);
    let result = std::panic::catch_unwind(|| {
        assert!(cli.status.success(), "docker build: {}", stderr(&cli));
        assert!(
            built.status.success(),
            "atp build-image: {}",
            stderr(&built)
        );
        assert!(
            stderr(&built).is_empty(),
            "--quiet printed: {}",
            stderr(&built)
        );
        let v: serde_json::Value = serde_json::from_slice(&built.stdout).expect("json");
        assert_eq!(v["tag"], tag_atp.as_str());
        assert_eq!(v["steps"], 7);

        let labels_cli = inspect(&tag_cli, "{{json .Config.Labels}}");
        let labels_atp = inspect(&tag_atp, "{{json .Config.Labels}}");
        assert_eq!(labels_cli, labels_atp);
        let labels: serde_json::Value = serde_json::from_str(&labels_atp).expect("labels json");
        let expected = atp_image::ImageSpec::load(&spec)
            .expect("load")
            .image_labels()
            .expect("labels");
        for (k, val) in &expected {
            assert_eq!(labels[k], val.as_str(), "label {k}");
        }
        assert_eq!(
            v["labels"],
            serde_json::to_value(&expected).expect("to json")
        );
        for format in ["{{json .Config.Env}}", "{{.Config.WorkingDir}}"] {
            assert_eq!(
                inspect(&tag_cli, format),
                inspect(&tag_atp, format),
                "{format}"
            );
        }
        // `atp image pins --image` reads them back from the labels.
        let pins = atp(&[
            "image", "pins", "--spec", spec_s, "--image", &tag_atp, "--json",
        ]);
        assert!(pins.status.success(), "{}", stderr(&pins));
        let p: serde_json::Value = serde_json::from_slice(&pins.stdout).expect("json");
        assert_eq!(p["pins"]["source"], "labels");
        assert_eq!(p["pins"]["spec_hash"], expected["atp.spec-hash"].as_str());
    });
    rmi(&tag_cli);
    rmi(&tag_atp);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn failing_build_names_the_step_and_shows_its_output() {
    if !engine_ready(module_path!()) {
        return;
    }
    let base = test_image();
    let dir = spec_dir(&format!(
        "base = \"{base}\"\n\
         [[step]]\nrun = [\"echo step-output-before-failure\", \"exit 42\"]\n\
         [[step]]\ncopy_skeleton = \"/workspace\"\n"
    ));
    let spec = dir.path().join("spec.toml");
    let tag = format!("atp-test-build-fail-{:x}:latest", std::process::id());
    let out = atp(&[
        "build-image",
        "--spec",
        spec.to_str().expect("utf8"),
        "--tag",
        &tag,
        "--network",
        "none",
        "--quiet",
        "--json",
    ]);
    rmi(&tag);
    // The failing step is the first after FROM, so no intermediate image is left behind.
    assert!(!out.status.success());
    let err = stderr(&out);
    let error_line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(
        error_line.contains("Step 2/5 : RUN echo step-output-before-failure"),
        "{err}"
    );
    assert!(error_line.contains("non-zero code: 42"), "{err}");
    assert!(err.contains("  | step-output-before-failure"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json failure report");
    assert!(
        v["step"]
            .as_str()
            .is_some_and(|s| s.starts_with("Step 2/5 : RUN echo")),
        "{v}"
    );
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("non-zero code: 42")),
        "{v}"
    );
    assert!(v["last_lines"]
        .as_array()
        .is_some_and(|l| l.iter().any(|x| x == "step-output-before-failure")));
}

#[test]
fn pins_of_an_unlabelled_image_fall_back_to_the_spec_flagged() {
    if !engine_ready(module_path!()) {
        return;
    }
    let base = test_image();
    let dir = tempfile::tempdir().expect("tempdir");
    // Blank the pin labels the test image inherits: an image without atp pins.
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {base}\nLABEL atp.lean-toolchain=\"\" atp.mathlib-rev=\"\"\n"),
    )
    .expect("write");
    let tag = format!("atp-test-build-nolabels-{:x}:latest", std::process::id());
    let build = Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "--network", "none", "-t", &tag])
        .arg(dir.path())
        .output()
        .expect("docker build");
    let spec = images_dir().join("open-atp.toml");
    let pins = atp(&[
        "image",
        "pins",
        "--spec",
        spec.to_str().expect("utf8"),
        "--image",
        &tag,
        "--json",
    ]);
    let labelled = atp(&[
        "image",
        "pins",
        "--image",
        &base,
        "--json",
        "--spec",
        spec.to_str().expect("utf8"),
    ]);
    rmi(&tag);
    assert!(build.status.success(), "{}", stderr(&build));
    assert!(pins.status.success(), "{}", stderr(&pins));
    let v: serde_json::Value = serde_json::from_slice(&pins.stdout).expect("json");
    let expected = atp_image::ImageSpec::load(&spec).expect("load");
    assert_eq!(v["pins"]["source"], "spec_defaults");
    assert_eq!(
        v["pins"]["lean_toolchain"],
        expected.pins().expect("pins").lean_toolchain.as_str()
    );
    assert_eq!(
        v["pins"]["spec_hash"],
        expected.spec_hash().expect("hash").as_str()
    );
    // The test image itself is labelled (by `cargo xtask test-image`), without a spec hash.
    let v: serde_json::Value = serde_json::from_slice(&labelled.stdout).expect("json");
    assert_eq!(v["pins"]["source"], "labels", "{v}");
    assert!(v["pins"]["spec_hash"].is_null(), "{v}");
}

// ---- the image lock: `atp image lock`, locked renders and builds ----

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A spec installing two npm packages (one pinned) and one pipx app; `pre` steps go first.
fn tools_spec(base: &str, pre: &str) -> String {
    format!(
        "base = \"{base}\"\n{pre}\
         [[step]]\nnpm = [\"@scope/cli@1.2.3\", \"plain\"]\n\
         [[step]]\npipx = [\"latest-app\"]\n\
         [[step]]\nworkdir = \"/workspace\"\n\
         [[step]]\ncopy_skeleton = \"/workspace\"\n"
    )
}

/// Fake npm and PyPI registries answering for [`tools_spec`], each package once.
async fn fake_registries() -> (MockServer, MockServer) {
    let npm = MockServer::start().await;
    let pypi = MockServer::start().await;
    for (at, name, version) in [
        ("/@scope%2Fcli/1.2.3", "@scope/cli", "1.2.3"),
        ("/plain/latest", "plain", "4.5.6"),
    ] {
        Mock::given(method("GET"))
            .and(path(at))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "name": name, "version": version,
                "dist": { "integrity": format!("sha512-{version}==") }
            })))
            .mount(&npm)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/pypi/latest-app/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "info": { "version": "0.9.9" },
            "releases": { "0.9.9": [{
                "filename": "latest_app-0.9.9-py3-none-any.whl", "packagetype": "bdist_wheel",
                "digests": { "sha256": "ab".repeat(32) }, "yanked": false
            }] }
        })))
        .mount(&pypi)
        .await;
    (npm, pypi)
}

/// Run `atp` without the registry/engine variables of the developer's environment; `env` is
/// applied on top. Killed after two minutes.
async fn atp_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(ATP);
    cmd.args(args)
        .env_remove("ATP_NPM_REGISTRY")
        .env_remove("ATP_PYPI_INDEX")
        .env_remove("ATP_LOG")
        .env("DOCKER_HOST", "unix:///nonexistent/atp-test.sock")
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
        .await
        .expect("atp finished within 2 minutes")
        .expect("atp runs")
}

/// The expected lock of [`tools_spec`] against [`fake_registries`], with `base` as recorded.
fn expected_lock(spec: &atp_image::ImageSpec, base: atp_image::LockedBase) -> atp_image::ImageLock {
    use atp_image::{LockSource, LockedTool};
    let tools = spec
        .requirements()
        .expect("requirements")
        .iter()
        .map(|r| {
            let (version, source) = match r.name.as_str() {
                "@scope/cli" => ("1.2.3", LockSource::Spec),
                "plain" => ("4.5.6", LockSource::Registry),
                _ => ("0.9.9", LockSource::Registry),
            };
            let mut t = LockedTool::new(r, version, source);
            if r.kind == atp_image::ToolKind::Npm {
                t.integrity = Some(format!("sha512-{version}=="));
            } else {
                t.sha256 = Some("ab".repeat(32));
                t.file = Some("latest_app-0.9.9-py3-none-any.whl".into());
            }
            t
        })
        .collect();
    atp_image::ImageLock::new(spec, base, tools).expect("expected lock")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_lock_against_fake_registries_writes_the_expected_lock() {
    let (npm, pypi) = fake_registries().await;
    let dir = spec_dir(&tools_spec("ubuntu:24.04", ""));
    let spec = dir.path().join("spec.toml");
    let spec_s = spec.to_str().expect("utf8");
    let out = atp_with(
        &[
            "image",
            "lock",
            "--spec",
            spec_s,
            "--npm-registry",
            &npm.uri(),
            "--pypi-index",
            &pypi.uri(),
            "--json",
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let lock_path = dir.path().join("spec.lock");
    assert_eq!(v["lock"], lock_path.to_str().expect("utf8"));
    assert_eq!(v["changed"], true);

    let written = atp_image::ImageLock::load(&lock_path).expect("the lock written parses");
    // No engine at DOCKER_HOST: the base digest is absent and the lock says why.
    let base = written.base().clone();
    assert_eq!(base.digest, None);
    assert!(
        base.note
            .as_deref()
            .is_some_and(|n| n.contains("not reachable")),
        "{base:?}"
    );
    let loaded = atp_image::ImageSpec::load(&spec).expect("spec");
    assert_eq!(written, expected_lock(&loaded, base));
    assert_eq!(v["lock_hash"], written.lock_hash());
    assert_eq!(v["tools"][1]["version"], "4.5.6");
    let text = stdout(&out);
    assert!(!text.contains("sha512") || text.contains("integrity"));

    // A locked render installs exactly those versions and carries the lock hash.
    let render = atp_with(
        &[
            "image", "render", "--spec", spec_s, "--target", "modal", "--locked", "--json",
        ],
        &[],
    )
    .await;
    assert!(render.status.success(), "{}", stderr(&render));
    let r: serde_json::Value = serde_json::from_slice(&render.stdout).expect("json");
    assert_eq!(r["lock"]["status"], "used");
    assert_eq!(r["env"]["ATP_LOCK_HASH"], written.lock_hash());
    let layers = r["layers"].to_string();
    assert!(
        layers.contains("npm install -g @scope/cli@1.2.3 plain@4.5.6"),
        "{layers}"
    );
    assert!(
        layers.contains("pipx install latest-app==0.9.9"),
        "{layers}"
    );
    // `--unlocked` renders the spec as written.
    let unlocked = atp_with(
        &[
            "image",
            "render",
            "--spec",
            spec_s,
            "--target",
            "dockerfile",
            "--unlocked",
        ],
        &[],
    )
    .await;
    assert!(stdout(&unlocked).contains("pipx install latest-app\n"));

    // Locking again through the environment variables changes nothing.
    let again = atp_with(
        &["image", "lock", "--spec", spec_s],
        &[
            ("ATP_NPM_REGISTRY", &npm.uri()),
            ("ATP_PYPI_INDEX", &pypi.uri()),
        ],
    )
    .await;
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).starts_with("unchanged:"),
        "{}",
        stdout(&again)
    );
    // `--output` writes elsewhere and leaves the lock beside the spec alone.
    let other = dir.path().join("elsewhere.lock");
    let out = atp_with(
        &[
            "image",
            "lock",
            "--spec",
            spec_s,
            "--output",
            other.to_str().expect("utf8"),
        ],
        &[
            ("ATP_NPM_REGISTRY", &npm.uri()),
            ("ATP_PYPI_INDEX", &pypi.uri()),
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&other).expect("written"),
        std::fs::read_to_string(&lock_path).expect("kept")
    );
}

/// Run `atp image lock` on [`tools_spec`] against the given registries; its one error line.
async fn lock_error(npm: &str, pypi: &str) -> (String, tempfile::TempDir) {
    let dir = spec_dir(&tools_spec("ubuntu:24.04", ""));
    let spec = dir.path().join("spec.toml");
    let out = atp_with(
        &[
            "image",
            "lock",
            "--spec",
            spec.to_str().expect("utf8"),
            "--npm-registry",
            npm,
            "--pypi-index",
            pypi,
        ],
        &[],
    )
    .await;
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(!dir.path().join("spec.lock").exists(), "no lock on failure");
    (err, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_lock_registry_errors_are_one_line_naming_package_and_url() {
    let (npm, pypi) = fake_registries().await;
    // 404: a registry that knows nothing.
    let empty = MockServer::start().await;
    let (err, _d) = lock_error(&empty.uri(), &pypi.uri()).await;
    assert!(err.contains("404"), "{err}");
    assert!(
        err.contains(&format!("{}/@scope%2Fcli/1.2.3", empty.uri()))
            || err.contains(&format!("{}/plain/latest", empty.uri())),
        "{err}"
    );
    // 500 from PyPI.
    let broken = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&broken)
        .await;
    let (err, _d) = lock_error(&npm.uri(), &broken.uri()).await;
    assert!(
        err.contains("latest-app") && err.contains("HTTP 500"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}/pypi/latest-app/json", broken.uri())),
        "{err}"
    );
    // Unreachable: nothing listens on the port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let dead = format!("http://127.0.0.1:{port}");
    let (err, _d) = lock_error(&npm.uri(), &dead).await;
    assert!(
        err.contains("latest-app") && err.contains("cannot reach"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{dead}/pypi/latest-app/json")),
        "{err}"
    );
}

/// Counts TCP connections to a loopback port (accepting and dropping each) until dropped.
struct ConnectionCounter {
    addr: String,
    count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl ConnectionCounter {
    fn start() -> Self {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr").to_string();
        let count = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (count.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        c.fetch_add(1, Ordering::SeqCst);
                        drop(stream);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
        });
        Self { addr, count, stop }
    }

    fn connections(&self) -> usize {
        // Let a connection made just before the process exited be accepted.
        std::thread::sleep(std::time::Duration::from_millis(100));
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for ConnectionCounter {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A copy of the default spec and its lock in a temp dir, the spec edited so the lock is stale.
fn stale_default_spec() -> (tempfile::TempDir, PathBuf) {
    let dir = spec_dir("");
    let text = std::fs::read_to_string(images_dir().join("open-atp.toml")).expect("spec");
    let spec = dir.path().join("open-atp.toml");
    std::fs::write(&spec, text.replace("\"uv\"", "\"uv==0.1.0\"")).expect("write");
    std::fs::copy(
        images_dir().join("open-atp.lock"),
        dir.path().join("open-atp.lock"),
    )
    .expect("copy lock");
    // the spec's copy step (atp's checker sources) travels with it
    let checker = dir.path().join("checker");
    std::fs::create_dir(&checker).expect("mkdir checker");
    for e in std::fs::read_dir(images_dir().join("checker")).expect("checker sources") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), checker.join(e.file_name())).expect("copy checker source");
    }
    (dir, spec)
}

fn assert_one_stale_line(out: &Output) {
    assert!(!out.status.success());
    let err = stderr(out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: image lock ") && err.contains("is stale"),
        "{err}"
    );
    assert!(
        err.contains("atp image lock --spec"),
        "names the remedy: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_image_locked_refuses_a_stale_lock_before_contacting_the_engine() {
    let (_dir, spec) = stale_default_spec();
    let spec_s = spec.to_str().expect("utf8");
    let engine = ConnectionCounter::start();
    let docker_host = format!("tcp://{}", engine.addr);
    let env = [("DOCKER_HOST", docker_host.as_str())];

    let out = atp_with(&["build-image", "--locked", "--spec", spec_s], &env).await;
    assert_one_stale_line(&out);
    assert_eq!(engine.connections(), 0, "the engine was contacted");

    // Modal: refused before any credential or control-plane use.
    let modal_env = [
        ("MODAL_SERVER_URL", format!("http://{}", engine.addr)),
        ("MODAL_TOKEN_ID", "ak-lock-test".to_string()),
        ("MODAL_TOKEN_SECRET", "as-lock-test".to_string()),
        ("MODAL_CONFIG_PATH", "/nonexistent/modal.toml".to_string()),
    ];
    let modal_env: Vec<(&str, &str)> = modal_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = atp_with(
        &["build-modal-image", "--locked", "--spec", spec_s],
        &modal_env,
    )
    .await;
    assert_one_stale_line(&out);
    assert_eq!(engine.connections(), 0, "Modal was contacted");

    // A missing lock with --locked: one line with the remedy, still nothing contacted.
    std::fs::remove_file(spec.with_extension("lock")).expect("rm lock");
    let out = atp_with(&["build-image", "--locked", "--spec", spec_s], &env).await;
    let err = stderr(&out);
    assert!(!out.status.success());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("has no lock") && err.contains("atp image lock"),
        "{err}"
    );
    assert_eq!(engine.connections(), 0);

    // --locked and --unlocked together are a usage error.
    let out = atp_with(
        &["build-image", "--locked", "--unlocked", "--spec", spec_s],
        &env,
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_locked_a_stale_lock_is_a_warning_and_the_build_goes_on_unlocked() {
    let (_dir, spec) = stale_default_spec();
    let engine = ConnectionCounter::start();
    let docker_host = format!("tcp://{}", engine.addr);
    let out = atp_with(
        &[
            "build-image",
            "--quiet",
            "--spec",
            spec.to_str().expect("utf8"),
        ],
        &[("DOCKER_HOST", docker_host.as_str())],
    )
    .await;
    let err = stderr(&out);
    assert!(
        err.lines()
            .next()
            .is_some_and(|l| l.starts_with("warning: image lock ") && l.contains("unlocked")),
        "{err}"
    );
    // It went on to the engine (which hangs up on it), so the build fails there.
    assert!(!out.status.success());
    assert!(engine.connections() >= 1, "{err}");
}

#[test]
fn image_pins_of_the_locked_default_spec_lists_the_tools() {
    let spec = images_dir().join("open-atp.toml");
    let spec_s = spec.to_str().expect("utf8");
    let out = atp(&["image", "pins", "--spec", spec_s, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let lock = atp_image::ImageLock::load(&images_dir().join("open-atp.lock")).expect("lock");
    assert_eq!(v["pins"]["lock_hash"], lock.lock_hash());
    assert_eq!(v["lock"]["status"], "used");
    let tools = v["pins"]["tools"].as_array().expect("tools");
    assert_eq!(tools.len(), lock.tools().len());
    assert!(tools
        .iter()
        .any(|t| t["name"] == "@anthropic-ai/claude-code"
            && t["version"] == "2.1.197"
            && t["kind"] == "npm"));
    let text = atp(&["image", "pins", "--spec", spec_s]);
    let text = stdout(&text);
    assert!(
        text.contains(&format!("lock-hash       {}", lock.lock_hash())),
        "{text}"
    );
    assert!(
        text.contains("tool            npm @openai/codex 0.171.0"),
        "{text}"
    );
    let unlocked = atp(&["image", "pins", "--spec", spec_s, "--unlocked"]);
    assert!(
        stdout(&unlocked).contains("lock-hash       (none"),
        "{}",
        stdout(&unlocked)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_build_installs_the_locked_versions_and_doctor_shows_them() {
    if crate::common::engine(module_path!()).await.is_none() {
        return;
    }
    let base = test_image();
    let (npm, pypi) = fake_registries().await;
    // Stand-in `npm` and `pipx` that print what they are asked to install: the test image has
    // neither, and builds run offline.
    let stand_ins = "[[step]]\nrun = [\"mkdir -p /usr/local/bin\", \
        \"printf '#!/bin/sh\\\\necho \\\"stand-in npm: $*\\\"\\\\n' > /usr/local/bin/npm\", \
        \"printf '#!/bin/sh\\\\necho \\\"stand-in pipx: $*\\\"\\\\n' > /usr/local/bin/pipx\", \
        \"chmod +x /usr/local/bin/npm /usr/local/bin/pipx\"]\n";
    let dir = spec_dir(&tools_spec(&base, stand_ins));
    let spec = dir.path().join("spec.toml");
    let spec_s = spec.to_str().expect("utf8");
    let docker_host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let env = [("DOCKER_HOST", docker_host.as_str())];
    let lock = atp_with(
        &[
            "image",
            "lock",
            "--spec",
            spec_s,
            "--npm-registry",
            &npm.uri(),
            "--pypi-index",
            &pypi.uri(),
        ],
        &env,
    )
    .await;
    assert!(lock.status.success(), "{}", stderr(&lock));
    let written = atp_image::ImageLock::load(&dir.path().join("spec.lock")).expect("lock");
    // The test image is present but was imported, so it has no registry digest.
    assert!(
        written
            .base()
            .note
            .as_deref()
            .is_some_and(|n| n.contains("no registry digest")),
        "{:?}",
        written.base()
    );

    let tag = format!("atp-test-build-locked-{:x}:latest", std::process::id());
    let built = atp_with(
        &[
            "build-image",
            "--locked",
            "--spec",
            spec_s,
            "--tag",
            &tag,
            "--network",
            "none",
            "--no-cache",
            "--json",
        ],
        &env,
    )
    .await;
    let pins = atp_with(
        &["image", "pins", "--image", &tag, "--spec", spec_s, "--json"],
        &env,
    )
    .await;
    let doctor_json = atp_with(&["doctor", "--image", &tag, "--json"], &env).await;
    let doctor_text = atp_with(&["doctor", "--image", &tag], &env).await;
    let labels = Command::new("docker")
        .args([
            "image",
            "inspect",
            &tag,
            "--format",
            "{{json .Config.Labels}}",
        ])
        .output()
        .expect("docker inspect");
    rmi(&tag);

    assert!(built.status.success(), "{}", stderr(&built));
    let log = stderr(&built);
    assert!(
        log.contains("stand-in npm: install -g @scope/cli@1.2.3 plain@4.5.6"),
        "{log}"
    );
    assert!(
        log.contains("stand-in pipx: install latest-app==0.9.9"),
        "{log}"
    );
    let b: serde_json::Value = serde_json::from_slice(&built.stdout).expect("json");
    assert_eq!(b["lock"]["status"], "used");
    assert_eq!(b["labels"]["atp.lock-hash"], written.lock_hash());

    let labels: serde_json::Value = serde_json::from_slice(&labels.stdout).expect("labels");
    assert_eq!(labels["atp.lock-hash"], written.lock_hash());
    let tools: serde_json::Value =
        serde_json::from_str(labels["atp.tools"].as_str().expect("atp.tools label")).expect("json");
    assert_eq!(tools["npm:plain"], "4.5.6");
    assert_eq!(tools["pipx:latest-app"], "0.9.9");

    assert!(pins.status.success(), "{}", stderr(&pins));
    let p: serde_json::Value = serde_json::from_slice(&pins.stdout).expect("json");
    assert_eq!(p["pins"]["source"], "labels");
    assert_eq!(p["pins"]["lock_hash"], written.lock_hash());
    assert_eq!(p["pins"]["tools"].as_array().map(Vec::len), Some(3));

    assert!(doctor_json.status.success(), "{}", stderr(&doctor_json));
    let d: serde_json::Value = serde_json::from_slice(&doctor_json.stdout).expect("json");
    assert_eq!(d["pins"]["lock_hash"], written.lock_hash());
    assert!(d["pins"]["tools"].as_array().is_some_and(|t| t
        .iter()
        .any(|t| t["name"] == "@scope/cli" && t["version"] == "1.2.3")));
    let text = stdout(&doctor_text);
    assert!(text.contains("tool      npm plain 4.5.6"), "{text}");
    assert!(text.contains("tool      pipx latest-app 0.9.9"), "{text}");
    assert!(
        text.contains(&format!("label     atp.lock-hash={}", written.lock_hash())),
        "{text}"
    );
    assert!(!text.contains("atp.tools="), "{text}");
}
