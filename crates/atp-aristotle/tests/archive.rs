//! Hostile result archives through the whole flow: `../x`, an absolute path, a symlink escape
//! and a hard link are each refused; nothing is written outside the run's private staging
//! directory, and `OUT/wd` is left as it was.

use std::time::Duration;

use atp_prover::GenOutcome;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;

const API: &str = "/api/v3";

async fn serve(result: Vec<u8>) -> MockServer {
    let server = MockServer::start().await;
    let ok = |v: serde_json::Value| ResponseTemplate::new(200).set_body_json(v);
    Mock::given(method("POST"))
        .and(path(format!("{API}/project")))
        .respond_with(ok(project_json(false)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/project/p-1/tasks")))
        .respond_with(ok(json!({"agent_tasks": [task_json("COMPLETE")]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/project/p-1")))
        .respond_with(ok(project_json(true)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/task/t-1/events")))
        .respond_with(ok(json!({"events": []})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/project/p-1/result")))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(result))
        .mount(&server)
        .await;
    server
}

/// Run the flow over `archive`; it must be refused with the workdir untouched.
async fn refused(archive: Vec<u8>, out: &Out, why: &str) -> String {
    refused_within(archive, out, why, atp_aristotle::unpack::DEFAULT_LIMITS).await
}

/// As [`refused`], the unpacked result bounded by `limits`.
async fn refused_within(
    archive: Vec<u8>,
    out: &Out,
    why: &str,
    limits: atp_aristotle::unpack::UnpackLimits,
) -> String {
    let server = serve(archive).await;
    let before = out.wd_file();
    let mut cfg = config(&server.uri());
    cfg.unpack_limits = limits;
    let g = generate(&prover_with(cfg), out, Duration::from_secs(30), None).await;
    let GenOutcome::Failed { error, message } = &g.outcome else {
        panic!("{why}: {:?}", g.outcome)
    };
    assert_eq!(error, "aristotle_unsafe_archive", "{why}: {message}");
    assert!(
        message.starts_with("Aristotle's result archive was refused: "),
        "{message}"
    );
    assert_eq!(out.wd_file(), before, "{why}: the workdir changed");
    assert!(!out.layout.wd().join("pwned.txt").exists());
    // The staging directory is gone; the archive as received is kept for the record.
    let leftovers: Vec<String> = std::fs::read_dir(&out.layout.root)
        .expect("out")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".aristotle-result-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(out.layout.logs().join("aristotle_result.tar.gz").is_file());
    message.clone()
}

#[tokio::test]
async fn dot_dot_is_refused() {
    let out = Out::new();
    let archive = hostile_targz(&[
        Raw {
            path: "wd_aristotle/Fixture.lean",
            kind: tar::EntryType::Regular,
            link: None,
            data: SOLVED,
        },
        Raw {
            path: "wd_aristotle/../../pwned.txt",
            kind: tar::EntryType::Regular,
            link: None,
            data: "x",
        },
    ]);
    let m = refused(archive, &out, "..").await;
    assert!(m.contains(".."), "{m}");
    assert!(!out.layout.root.join("pwned.txt").exists());
    assert!(!out.dir.path().join("pwned.txt").exists());
}

#[tokio::test]
async fn an_absolute_path_is_refused() {
    let out = Out::new();
    let target = out.dir.path().join("abs-pwned.txt");
    let p = target.to_str().expect("utf8").to_string();
    let archive = hostile_targz(&[Raw {
        path: &p,
        kind: tar::EntryType::Regular,
        link: None,
        data: "x",
    }]);
    let m = refused(archive, &out, "absolute").await;
    assert!(m.contains("absolute"), "{m}");
    assert!(!target.exists());
}

#[tokio::test]
async fn a_symlink_escape_is_refused() {
    let out = Out::new();
    let outside = out.dir.path().join("outside");
    std::fs::create_dir_all(&outside).expect("mk");
    let o = outside.to_str().expect("utf8").to_string();
    let archive = hostile_targz(&[
        Raw {
            path: "wd_aristotle/esc",
            kind: tar::EntryType::Symlink,
            link: Some(&o),
            data: "",
        },
        Raw {
            path: "wd_aristotle/esc/pwned.txt",
            kind: tar::EntryType::Regular,
            link: None,
            data: "x",
        },
    ]);
    let m = refused(archive, &out, "symlink").await;
    assert!(m.contains("symlink"), "{m}");
    assert!(!outside.join("pwned.txt").exists());
    // A relative link climbing out is refused the same way.
    let out = Out::new();
    let archive = hostile_targz(&[Raw {
        path: "wd_aristotle/up",
        kind: tar::EntryType::Symlink,
        link: Some("../../.."),
        data: "",
    }]);
    refused(archive, &out, "relative symlink").await;
}

#[tokio::test]
async fn a_hard_link_out_of_the_archive_is_refused() {
    let out = Out::new();
    let secret = out.dir.path().join("secret.txt");
    std::fs::write(&secret, "host secret").expect("w");
    let s = secret.to_str().expect("utf8").to_string();
    let archive = hostile_targz(&[
        Raw {
            path: "wd_aristotle/Fixture.lean",
            kind: tar::EntryType::Link,
            link: Some(&s),
            data: "",
        },
        Raw {
            path: "wd_aristotle/Fixture.lean",
            kind: tar::EntryType::Regular,
            link: None,
            data: "overwritten",
        },
    ]);
    let m = refused(archive, &out, "hard link").await;
    assert!(m.contains("hard link"), "{m}");
    assert_eq!(std::fs::read_to_string(&secret).expect("r"), "host secret");
}

#[tokio::test]
async fn an_oversized_download_is_refused_before_unpacking() {
    let out = Out::new();
    let big = vec![b'x'; (1 << 20) + 1];
    let server = serve(big).await;
    let g = generate(&prover(&server.uri()), &out, Duration::from_secs(30), None).await;
    let GenOutcome::Failed { error, .. } = &g.outcome else {
        panic!("{:?}", g.outcome)
    };
    assert_eq!(error, "aristotle_result_too_large");
    assert!(!out.layout.logs().join("aristotle_result.tar.gz").exists());
    assert!(!out.layout.logs().join("aristotle_result.part").exists());
}

#[tokio::test]
async fn an_archive_over_the_entry_limit_is_refused() {
    let out = Out::new();
    let names: Vec<String> = (0..20).map(|i| format!("wd_aristotle/F{i}.lean")).collect();
    let files: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "-- x\n")).collect();
    let m = refused_within(
        targz(&files),
        &out,
        "too many entries",
        atp_aristotle::unpack::UnpackLimits {
            max_total_bytes: 1 << 20,
            max_entries: 10,
        },
    )
    .await;
    assert!(m.contains("more than 10 entries"), "{m}");
    assert!(!out.layout.wd().join("F0.lean").exists());
}

#[tokio::test]
async fn an_archive_over_the_size_limit_is_refused() {
    let out = Out::new();
    // Compresses to a few hundred bytes (under the download cap), unpacks to 64 KiB.
    let big = "x".repeat(64 * 1024);
    let m = refused_within(
        targz(&[("wd_aristotle/Fixture.lean", big.as_str())]),
        &out,
        "too many bytes",
        atp_aristotle::unpack::UnpackLimits {
            max_total_bytes: 16 * 1024,
            max_entries: 1000,
        },
    )
    .await;
    assert!(m.contains("more than 16384 bytes"), "{m}");
}
