//! Shared helpers: a run directory, the prover pointed at a wiremock server, archives (honest
//! and hostile), and a backend stub (Aristotle needs no sandbox: the stub refuses everything,
//! so a test would fail loudly if the prover tried to create one).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use atp_aristotle::{AristotleConfig, AristotleProver, ClientOptions};
use atp_backend::{
    BackendError, ComputeBackend, ComputeSession, GcEntry, GcFilter, Health, ImageInfo,
    SessionOptions,
};
use atp_lean::LeanProject;
use atp_prover::retry::Backoff;
use atp_prover::{
    no_progress, EnvSource, GenerateContext, Generation, PriceTable, ProofTask, Prover, RunLayout,
};
use atp_verify::Verifier;
use tokio_util::sync::CancellationToken;
use wiremock::{Request, Respond, ResponseTemplate};

pub const KEY: &str = "test-key-0123456789";

#[derive(Debug)]
pub struct NoSandbox;

#[async_trait]
impl ComputeBackend for NoSandbox {
    fn name(&self) -> &str {
        "none"
    }
    fn container_home(&self) -> &str {
        "/root"
    }
    fn image(&self) -> &str {
        "none"
    }
    async fn health(&self) -> atp_backend::Result<Health> {
        Err(BackendError::InvalidInput(
            "the aristotle tests use no sandbox".into(),
        ))
    }
    async fn image_info(&self) -> atp_backend::Result<ImageInfo> {
        Err(BackendError::InvalidInput(
            "the aristotle tests use no sandbox".into(),
        ))
    }
    async fn session(
        &self,
        _workdir: &Path,
        _opts: SessionOptions,
    ) -> atp_backend::Result<Box<dyn ComputeSession>> {
        Err(BackendError::InvalidInput(
            "the aristotle tests use no sandbox".into(),
        ))
    }
    async fn gc(&self, _filter: GcFilter) -> atp_backend::Result<Vec<GcEntry>> {
        Ok(Vec::new())
    }
}

/// A run directory: `OUT/task` and `OUT/wd` copies of `fixtures/original`, `OUT/logs`.
pub struct Out {
    pub dir: tempfile::TempDir,
    pub layout: RunLayout,
}

impl Out {
    pub fn new() -> Out {
        let dir = tempfile::tempdir().expect("tmp");
        let layout = RunLayout::new(dir.path().join("out"));
        layout.create().expect("logs");
        let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/original");
        atp_lean::walk::copy_project(&fixture, &layout.task()).expect("task");
        atp_lean::walk::copy_project(&fixture, &layout.wd()).expect("wd");
        Out { dir, layout }
    }

    pub fn wd_file(&self) -> String {
        std::fs::read_to_string(self.layout.wd().join("Fixture.lean")).expect("wd file")
    }

    /// Every file under the run directory, as text (to check the key is nowhere).
    pub fn all_text(&self) -> String {
        let mut s = String::new();
        let mut stack = vec![self.layout.root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("dir") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(b) = std::fs::read(&p) {
                    s.push_str(&String::from_utf8_lossy(&b));
                }
            }
        }
        s
    }
}

/// Fast timings for tests (the real ones are seconds).
pub fn config(uri: &str) -> AristotleConfig {
    AristotleConfig {
        api_base: Some(uri.to_string()),
        poll_interval: Duration::from_millis(50),
        max_poll_failures: 5,
        max_result_bytes: 1 << 20,
        unpack_limits: atp_aristotle::unpack::DEFAULT_LIMITS,
        client: ClientOptions {
            backoff: Backoff {
                first: Duration::from_millis(10),
                cap: Duration::from_millis(40),
                max_attempts: 5,
            },
            retry_window: Duration::from_secs(10),
            min_interval: Duration::ZERO,
            request_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(2),
        },
    }
}

pub fn prover(uri: &str) -> AristotleProver {
    prover_with(config(uri))
}

/// A prover over `config`, with the test key.
pub fn prover_with(config: AristotleConfig) -> AristotleProver {
    let env: BTreeMap<String, String> = [("ARISTOTLE_API_KEY".to_string(), KEY.to_string())].into();
    AristotleProver::new(config, EnvSource::fixed(env))
}

/// Run `generate` with `budget`, cancelling after `cancel_after` when given.
pub async fn generate(
    p: &AristotleProver,
    out: &Out,
    budget: Duration,
    cancel_after: Option<Duration>,
) -> Generation {
    let task = ProofTask::new(LeanProject::open(out.layout.task()).expect("task"));
    let backend: Arc<dyn ComputeBackend> = Arc::new(NoSandbox);
    let verifier = Verifier::new(backend);
    let prices = PriceTable::builtin();
    let cancel = CancellationToken::new();
    if let Some(after) = cancel_after {
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            c.cancel();
        });
    }
    let wd = out.layout.wd();
    let cx = GenerateContext {
        task: &task,
        layout: &out.layout,
        wd: &wd,
        session: None,
        container_home: "/root",
        budget,
        deadline: tokio::time::Instant::now() + budget,
        cancel,
        progress: no_progress(),
        prices: &prices,
        verifier: &verifier,
        private: None,
    };
    p.generate(cx).await
}

/// Answers in turn, the last one repeated.
pub struct Sequence {
    pub replies: Vec<ResponseTemplate>,
    pub count: AtomicUsize,
}

impl Sequence {
    pub fn new(replies: Vec<ResponseTemplate>) -> Self {
        Sequence {
            replies,
            count: AtomicUsize::new(0),
        }
    }
}

impl Respond for Sequence {
    fn respond(&self, _r: &Request) -> ResponseTemplate {
        let i = self.count.fetch_add(1, Ordering::SeqCst);
        self.replies[i.min(self.replies.len() - 1)].clone()
    }
}

/// `before` until the flag is set, then `after`; a responder with `set` raises the flag.
pub struct Flagged {
    pub flag: Arc<std::sync::atomic::AtomicBool>,
    pub set: bool,
    pub before: ResponseTemplate,
    pub after: ResponseTemplate,
}

impl Respond for Flagged {
    fn respond(&self, _r: &Request) -> ResponseTemplate {
        if self.set {
            self.flag.store(true, Ordering::SeqCst);
            return self.after.clone();
        }
        if self.flag.load(Ordering::SeqCst) {
            self.after.clone()
        } else {
            self.before.clone()
        }
    }
}

pub fn task_json(status: &str) -> serde_json::Value {
    serde_json::json!({
        "project_id": "p-1", "agent_task_id": "t-1", "status": status,
        "created_at": "2026-07-01T10:00:01", "last_updated_at": "2026-07-01T10:04:00",
        "started_at": null, "percent_complete": null, "file_name": "wd.tar.gz",
        "description": "wd", "output_summary": if status == "COMPLETE" { serde_json::json!("All sorries filled.") } else { serde_json::Value::Null },
    })
}

pub fn project_json(has_files: bool) -> serde_json::Value {
    serde_json::json!({
        "project_id": "p-1", "created_at": "2026-07-01T10:00:00.123456",
        "last_updated": "2026-07-01T10:05:00", "description": "wd",
        "status": 2, "has_input": true, "has_files": has_files,
    })
}

/// A tar.gz of `(path, text)` regular files.
pub fn targz(files: &[(&str, &str)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut t = tar::Builder::new(gz);
    for (p, text) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        t.append_data(&mut h, p, text.as_bytes()).expect("append");
    }
    t.into_inner().expect("tar").finish().expect("gz")
}

/// One raw entry of a hostile archive: the name is written as given (no checks).
pub struct Raw<'a> {
    pub path: &'a str,
    pub kind: tar::EntryType,
    pub link: Option<&'a str>,
    pub data: &'a str,
}

/// A tar.gz whose entries bypass the tar crate's path checks.
pub fn hostile_targz(entries: &[Raw]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut t = tar::Builder::new(gz);
    for e in entries {
        let mut h = tar::Header::new_old();
        {
            let old = h.as_old_mut();
            old.name[..e.path.len()].copy_from_slice(e.path.as_bytes());
            if let Some(l) = e.link {
                old.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_entry_type(e.kind);
        h.set_mode(0o644);
        h.set_size(e.data.len() as u64);
        h.set_cksum();
        t.append(&h, e.data.as_bytes()).expect("append");
    }
    t.into_inner().expect("tar").finish().expect("gz")
}

pub const SOLVED: &str = "import Mathlib\n\nnamespace Fixture\n\ntheorem add_zero' (n : ℕ) : n + 0 = n := by\n  simp\n\ntheorem two_mul' (n : ℕ) : 2 * n = n + n := by\n  omega\n\nexample : (2 : ℕ) + 2 = 4 := by\n  norm_num\n\nend Fixture\n";
