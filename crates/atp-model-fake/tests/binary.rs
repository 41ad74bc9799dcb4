//! The `atp-model-fake` binary: URL on the first stdout line, record file, clean exit on
//! SIGTERM, one clear line for a bad script.

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_atp-model-fake");

#[tokio::test]
async fn prints_its_url_records_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tmp");
    let script = dir.path().join("script.json");
    std::fs::write(
        &script,
        r#"[{"kind": "shell", "command": "echo hi"}, {"kind": "text", "text": "done"}]"#,
    )
    .expect("write");
    let record = dir.path().join("requests.jsonl");
    let mut child = Command::new(BIN)
        .args(["--addr", "127.0.0.1:0", "--script"])
        .arg(&script)
        .arg("--record")
        .arg(&record)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    let url = line.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url:?}");

    let (status, _, text) = post(
        &format!("{url}/v1/chat/completions"),
        &json!({"model": "m", "messages": [{"role": "user", "content": "go"}], "tools": [chat_bash()]}),
    )
    .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "bash"
    );

    // The record file follows the requests.
    let mut lines = Vec::new();
    for _ in 0..50 {
        lines = std::fs::read_to_string(&record)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        if !lines.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(lines.len(), 1);
    let rec: atp_model_fake::Recorded = serde_json::from_str(&lines[0]).expect("recorded line");
    assert_eq!(rec.path, "/v1/chat/completions");
    assert_eq!(
        rec.auth,
        [
            atp_model_fake::AuthHeader::XApiKey,
            atp_model_fake::AuthHeader::AuthorizationBearer
        ]
    );
    assert!(!lines[0].contains("test-secret"));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 requests; usage reported: input 1000 output 50"),
        "{stderr}"
    );
}

#[test]
fn a_bad_script_is_one_clear_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let script = dir.path().join("bad.json");
    std::fs::write(&script, r#"{"turns": [{"kind": "shel", "command": "x"}]}"#).expect("write");
    let out = Command::new(BIN)
        .arg("--script")
        .arg(&script)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains("bad.json"),
        "{stderr}"
    );
    let good = dir.path().join("good.json");
    std::fs::write(&good, r#"[{"kind": "text", "text": "x"}]"#).expect("write");
    let out = Command::new(BIN)
        .args(["--addr", "10.1.2.3:0", "--script"])
        .arg(&good)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loopback only"), "{stderr}");
}
