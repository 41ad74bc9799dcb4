#![allow(clippy::unwrap_used)]
//! The resolver against fake npm and PyPI registries (wiremock on loopback): what it asks, what
//! it locks, and the one-line errors.

use std::collections::BTreeMap;

use atp_image::{ImageSpec, LockSource, LockedBase, Requirement, Skeleton, Step, ToolKind};
use atp_lock::{LockError, Registries, Resolver};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn skeleton() -> Skeleton {
    Skeleton::from_files(
        "<test>",
        [
            (
                "lean-toolchain".to_string(),
                b"leanprover/lean4:v4.28.0\n".to_vec(),
            ),
            (
                "lakefile.toml".to_string(),
                b"name = \"w\"\n[[require]]\nname = \"mathlib\"\nrev = \"v4.28.0\"\n".to_vec(),
            ),
        ],
    )
    .unwrap()
}

fn spec(npm: &[&str], pipx: &[&str]) -> ImageSpec {
    let mut spec = ImageSpec::new("<test>", "ubuntu:24.04", skeleton())
        .step(Step::Env(BTreeMap::from([("A".into(), "1".into())])));
    if !npm.is_empty() {
        spec = spec.step(Step::Npm(npm.iter().map(|s| s.to_string()).collect()));
    }
    spec = spec.step(Step::Elan("4.2.3".into()));
    if !pipx.is_empty() {
        spec = spec.step(Step::Pipx(pipx.iter().map(|s| s.to_string()).collect()));
    }
    spec.step(Step::CopySkeleton("/workspace".into()))
}

fn requirement(spec: &ImageSpec, name: &str) -> Requirement {
    spec.requirements()
        .unwrap()
        .into_iter()
        .find(|r| r.name == name)
        .unwrap()
}

fn npm_doc(name: &str, version: &str) -> Value {
    json!({
        "name": name,
        "version": version,
        "dist": { "integrity": format!("sha512-{name}-{version}=="), "tarball": "http://x/t.tgz" },
        "dependencies": { "left-pad": "^1.0.0" }
    })
}

fn pypi_file(filename: &str, sha: &str) -> Value {
    json!({
        "filename": filename,
        "packagetype": if filename.ends_with(".whl") { "bdist_wheel" } else { "sdist" },
        "digests": { "sha256": sha, "md5": "00" },
        "yanked": false
    })
}

async fn registries() -> (MockServer, MockServer, Resolver) {
    let npm = MockServer::start().await;
    let pypi = MockServer::start().await;
    let resolver = Resolver::new(Registries {
        npm: format!("{}/", npm.uri()),
        pypi: pypi.uri(),
    })
    .unwrap();
    (npm, pypi, resolver)
}

async fn serve(server: &MockServer, at: &str, body: Value) {
    Mock::given(method("GET"))
        .and(path(at))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn npm_latest_tag_and_exact_versions_with_integrity() {
    let (npm, _pypi, resolver) = registries().await;
    // A scoped name travels with its `/` escaped, as npm's clients send it.
    serve(&npm, "/@scope%2Fcli/1.2.3", npm_doc("@scope/cli", "1.2.3")).await;
    serve(&npm, "/plain/latest", npm_doc("plain", "4.5.6")).await;
    serve(&npm, "/tagged/next", npm_doc("tagged", "7.0.0-beta.1")).await;
    let spec = spec(&["@scope/cli@1.2.3", "plain", "tagged@next"], &[]);

    let exact = resolver
        .resolve(&requirement(&spec, "@scope/cli"))
        .await
        .unwrap();
    assert_eq!(
        (exact.version.as_str(), exact.source),
        ("1.2.3", LockSource::Spec)
    );
    assert_eq!(
        exact.integrity.as_deref(),
        Some("sha512-@scope/cli-1.2.3==")
    );
    let latest = resolver
        .resolve(&requirement(&spec, "plain"))
        .await
        .unwrap();
    assert_eq!(
        (latest.version.as_str(), latest.requested.as_str()),
        ("4.5.6", "latest")
    );
    assert_eq!(latest.source, LockSource::Registry);
    let tagged = resolver
        .resolve(&requirement(&spec, "tagged"))
        .await
        .unwrap();
    assert_eq!(
        (tagged.version.as_str(), tagged.requested.as_str()),
        ("7.0.0-beta.1", "next")
    );
    // `expect(1)` on every mock: each package asked exactly once.
    npm.verify().await;
}

#[tokio::test]
async fn pypi_latest_and_exact_versions_with_the_universal_wheel_hash() {
    let (_npm, pypi, resolver) = registries().await;
    serve(
        &pypi,
        "/pypi/pinned-app/json",
        json!({
            "info": { "name": "pinned-app", "version": "2.1.0" },
            "releases": {
                "2.0.1": [
                    pypi_file("pinned_app-2.0.1.tar.gz", &"1".repeat(64)),
                    pypi_file("pinned_app-2.0.1-py3-none-any.whl", &"2".repeat(64)),
                ],
                "2.1.0": [pypi_file("pinned_app-2.1.0-py3-none-any.whl", &"3".repeat(64))]
            }
        }),
    )
    .await;
    serve(
        &pypi,
        "/pypi/native-app/json",
        json!({
            "info": { "name": "native-app", "version": "0.9.9" },
            "releases": { "0.9.9": [
                pypi_file("native_app-0.9.9-py3-none-manylinux_2_17_x86_64.whl", &"4".repeat(64)),
                pypi_file("native_app-0.9.9-py3-none-macosx_11_0_arm64.whl", &"5".repeat(64)),
            ] }
        }),
    )
    .await;
    let spec = spec(&[], &["pinned-app==2.0.1", "native-app"]);

    let pinned = resolver
        .resolve(&requirement(&spec, "pinned-app"))
        .await
        .unwrap();
    // Kept as the spec gives it, although the registry's latest is newer.
    assert_eq!(
        (pinned.version.as_str(), pinned.source),
        ("2.0.1", LockSource::Spec)
    );
    assert_eq!(pinned.sha256.as_deref(), Some("2".repeat(64).as_str()));
    assert_eq!(
        pinned.file.as_deref(),
        Some("pinned_app-2.0.1-py3-none-any.whl")
    );
    let native = resolver
        .resolve(&requirement(&spec, "native-app"))
        .await
        .unwrap();
    assert_eq!(
        (native.version.as_str(), native.source),
        ("0.9.9", LockSource::Registry)
    );
    // Platform wheels only: pipx picks one per machine, so no hash is claimed.
    assert_eq!((native.sha256, native.file), (None, None));
    pypi.verify().await;
}

#[tokio::test]
async fn a_whole_spec_is_locked_in_its_order_with_elan_from_the_spec() {
    let (npm, pypi, resolver) = registries().await;
    serve(&npm, "/plain/latest", npm_doc("plain", "4.5.6")).await;
    serve(
        &pypi,
        "/pypi/uv/json",
        json!({ "info": { "version": "0.13.9" }, "releases": { "0.13.9": [] } }),
    )
    .await;
    let spec = spec(&["plain"], &["uv"]);
    let lock = resolver
        .lock(&spec, LockedBase::unknown("ubuntu:24.04", "test"))
        .await
        .unwrap();
    let got: Vec<(ToolKind, &str, &str)> = lock
        .tools()
        .iter()
        .map(|t| (t.kind, t.name.as_str(), t.version.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (ToolKind::Npm, "plain", "4.5.6"),
            (ToolKind::Elan, "elan", "4.2.3"),
            (ToolKind::Pipx, "uv", "0.13.9"),
        ]
    );
    assert_eq!(lock.spec_hash(), spec.spec_hash().unwrap());
    // The lock attaches to the spec it was made from and pins every install line.
    let locked = spec.with_lock(lock).unwrap();
    let dockerfile = locked.to_dockerfile().unwrap();
    assert!(
        dockerfile.contains("npm install -g plain@4.5.6"),
        "{dockerfile}"
    );
    assert!(
        dockerfile.contains("pipx install uv==0.13.9"),
        "{dockerfile}"
    );
    npm.verify().await;
    pypi.verify().await;
}

/// The error of resolving `name` of `spec`, checked to be one line naming the package and URL.
async fn one_line_error(resolver: &Resolver, spec: &ImageSpec, name: &str, url: &str) -> String {
    let err = resolver
        .resolve(&requirement(spec, name))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "{msg}");
    assert!(msg.contains(name), "names the package: {msg}");
    assert!(msg.contains(url), "names the URL {url}: {msg}");
    msg
}

#[tokio::test]
async fn registry_errors_are_one_line_naming_package_and_url() {
    let (npm, pypi, resolver) = registries().await;
    Mock::given(method("GET"))
        .and(path("/ghost/latest"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&npm)
        .await;
    Mock::given(method("GET"))
        .and(path("/pypi/flaky/json"))
        .respond_with(ResponseTemplate::new(500).set_body_string("oops"))
        .mount(&pypi)
        .await;
    Mock::given(method("GET"))
        .and(path("/garbled/latest"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>"))
        .mount(&npm)
        .await;
    Mock::given(method("GET"))
        .and(path("/liar/1.0.0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(npm_doc("liar", "1.0.1")))
        .mount(&npm)
        .await;
    Mock::given(method("GET"))
        .and(path("/pypi/old-app/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "info": { "version": "2.0.0" },
            "releases": { "2.0.0": [pypi_file("old_app-2.0.0.tar.gz", &"6".repeat(64))] }
        })))
        .mount(&pypi)
        .await;
    let spec = spec(
        &["ghost", "garbled", "liar@1.0.0"],
        &["flaky", "old-app==1.0.0"],
    );

    let url = format!("{}/ghost/latest", npm.uri());
    let msg = one_line_error(&resolver, &spec, "ghost", &url).await;
    assert!(msg.contains("404") && msg.contains("not found"), "{msg}");

    let url = format!("{}/pypi/flaky/json", pypi.uri());
    let msg = one_line_error(&resolver, &spec, "flaky", &url).await;
    assert!(
        msg.contains("HTTP 500") && msg.contains("--pypi-index"),
        "{msg}"
    );

    let url = format!("{}/garbled/latest", npm.uri());
    let msg = one_line_error(&resolver, &spec, "garbled", &url).await;
    assert!(msg.contains("not npm version metadata"), "{msg}");

    let url = format!("{}/liar/1.0.0", npm.uri());
    let msg = one_line_error(&resolver, &spec, "liar", &url).await;
    assert!(msg.contains("asked for version 1.0.0, got 1.0.1"), "{msg}");

    let url = format!("{}/pypi/old-app/json", pypi.uri());
    let msg = one_line_error(&resolver, &spec, "old-app", &url).await;
    assert!(
        msg.contains("release 1.0.0") && msg.contains("not found"),
        "{msg}"
    );

    // A whole-spec lock fails with the first such error, and nothing is returned.
    let err = resolver
        .lock(&spec, LockedBase::unknown("ubuntu:24.04", "t"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            LockError::NotFound { .. } | LockError::Status { .. } | LockError::BadResponse { .. }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_registry_is_one_line_naming_package_and_url() {
    // A port that was just free: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let resolver = Resolver::new(Registries {
        npm: format!("http://127.0.0.1:{port}"),
        pypi: format!("http://127.0.0.1:{port}"),
    })
    .unwrap();
    let spec = spec(&["@scope/cli"], &["uv"]);
    let url = format!("http://127.0.0.1:{port}/@scope%2Fcli/latest");
    let msg = one_line_error(&resolver, &spec, "@scope/cli", &url).await;
    assert!(
        msg.contains("cannot reach") && msg.contains("--npm-registry"),
        "{msg}"
    );
    let url = format!("http://127.0.0.1:{port}/pypi/uv/json");
    let msg = one_line_error(&resolver, &spec, "uv", &url).await;
    assert!(msg.contains("cannot reach"), "{msg}");
}

#[test]
fn a_registry_url_must_be_http() {
    let err = Resolver::new(Registries {
        npm: "registry.npmjs.org".into(),
        ..Registries::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("--npm-registry"), "{err}");
    assert_eq!(
        Registries::default().npm,
        atp_lock::DEFAULT_NPM_REGISTRY.to_string()
    );
}
