//! Shared helpers: a session-counting backend over the engine gate, projects from files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use atp_backend::{
    ComputeBackend, ComputeSession, GcEntry, GcFilter, Health, ImageInfo, RunId, SessionOptions,
};
use atp_docker::DockerBackend;
use atp_lean::LeanProject;
use atp_verify::{Verification, Verifier, VerifyError, VerifyOptions, ViolationKind};

/// Counts sessions opened through it.
#[derive(Debug)]
pub struct Counting {
    pub inner: DockerBackend,
    pub sessions: AtomicUsize,
}

impl Counting {
    pub fn sessions(&self) -> usize {
        self.sessions.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ComputeBackend for Counting {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn container_home(&self) -> &str {
        self.inner.container_home()
    }
    fn image(&self) -> &str {
        self.inner.image()
    }
    async fn health(&self) -> atp_backend::Result<Health> {
        self.inner.health().await
    }
    async fn image_info(&self) -> atp_backend::Result<ImageInfo> {
        self.inner.image_info().await
    }
    async fn session(
        &self,
        workdir: &Path,
        opts: SessionOptions,
    ) -> atp_backend::Result<Box<dyn ComputeSession>> {
        self.sessions.fetch_add(1, Ordering::SeqCst);
        self.inner.session(workdir, opts).await
    }
    async fn gc(&self, filter: GcFilter) -> atp_backend::Result<Vec<GcEntry>> {
        self.inner.gc(filter).await
    }
}

/// The test image's backend, or `None` after a loud skip.
pub async fn backend(test: &str) -> Option<Arc<Counting>> {
    wrap(atp_test_support::docker(test).await)
}

/// A backend on another image.
pub async fn backend_on(test: &str, image: &str) -> Option<Arc<Counting>> {
    wrap(atp_test_support::docker_with(test, image, atp_backend::NetworkMode::None).await)
}

fn wrap(b: Option<DockerBackend>) -> Option<Arc<Counting>> {
    b.map(|inner| {
        Arc::new(Counting {
            inner,
            sessions: AtomicUsize::new(0),
        })
    })
}

/// A private copy of a fixture (never verify a fixture in place).
pub fn copy_fixture(name: &str, into: &Path) -> LeanProject {
    let dest = into.join(name);
    std::fs::create_dir_all(&dest).expect("mkdir");
    for e in std::fs::read_dir(atp_test_support::fixture(name)).expect("fixture") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), dest.join(e.file_name())).expect("copy");
    }
    LeanProject::open(dest).expect("fixture opens")
}

/// A lake project in `dir` (the built-in skeleton plus `files`).
pub fn project(dir: &Path, files: &BTreeMap<String, String>) -> LeanProject {
    std::fs::create_dir_all(dir).expect("mkdir");
    for (name, text) in atp_image::Skeleton::builtin().files() {
        std::fs::write(dir.join(name), text).expect("skeleton");
    }
    for (rel, text) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    LeanProject::open(dir).expect("project")
}

pub fn one(text: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("Main.lean".to_string(), text.to_string())])
}

pub fn opts(run: &RunId) -> VerifyOptions {
    VerifyOptions {
        timeout: Duration::from_secs(120),
        run_id: Some(run.clone()),
        workers: Some(2),
        ..Default::default()
    }
}

/// Verify `candidate` against `original` (when given) with `options` (run id set), and check
/// that the run left no sandbox.
pub async fn verify_with(
    b: &Arc<Counting>,
    candidate: &BTreeMap<String, String>,
    original: Option<&BTreeMap<String, String>>,
    options: impl FnOnce(VerifyOptions) -> VerifyOptions,
) -> Result<Verification, VerifyError> {
    let tmp = tempfile::tempdir().expect("tmp");
    let cand = project(&tmp.path().join("cand"), candidate);
    let orig = original.map(|o| project(&tmp.path().join("orig"), o));
    let run = RunId::new();
    let v = Verifier::new(b.clone() as Arc<dyn ComputeBackend>).with_options(options(opts(&run)));
    let out = v.verify(&cand, orig.as_ref()).await;
    atp_test_support::assert_no_leak(&run).await;
    out
}

pub async fn verify(
    b: &Arc<Counting>,
    candidate: &BTreeMap<String, String>,
    original: Option<&BTreeMap<String, String>>,
) -> Verification {
    verify_with(b, candidate, original, |o| o)
        .await
        .expect("a verdict")
}

pub fn kinds(v: &Verification) -> Vec<(ViolationKind, bool)> {
    v.report
        .violations
        .iter()
        .map(|x| (x.kind, x.from_lean))
        .collect()
}

/// The exploit corpus directory, if `ATP_EXPLOIT_CORPUS` is set (relative paths from the
/// workspace root).
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var("ATP_EXPLOIT_CORPUS").ok()?;
    let mut path = PathBuf::from(&dir);
    if path.is_relative() && !path.exists() {
        path = atp_test_support::repo_root().join(&dir);
    }
    Some(path)
}
