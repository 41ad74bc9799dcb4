//! The whole `aristotle` flow against a wiremock server on 127.0.0.1: submit, find the task,
//! poll, page events, download, map back — and every way it can go wrong.

use std::time::Duration;

use atp_prover::GenOutcome;
use serde_json::json;
use wiremock::matchers::{header, header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;

const API: &str = "/api/v3";

fn ok(v: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(v)
}

/// Mount the endpoints of a run that ends `COMPLETE` after one `IN_PROGRESS` poll, with
/// `result` as its archive (`None`: the project has no files).
async fn mount_run(server: &MockServer, result: Option<Vec<u8>>) {
    Mock::given(method("GET"))
        .and(path(format!("{API}/version")))
        .respond_with(ok(
            json!({"lean_toolchain_version": "leanprover/lean4:v4.28.0"}),
        ))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{API}/project")))
        .and(header("X-API-Key", KEY))
        .and(header_exists("Idempotency-Key"))
        .respond_with(ok(project_json(false)))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/project/p-1/tasks")))
        .and(query_param("limit", "1"))
        .and(query_param("ascending", "false"))
        .respond_with(ok(
            json!({"agent_tasks": [task_json("QUEUED")], "pagination_key": null}),
        ))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/task/t-1")))
        .respond_with(Sequence::new(vec![
            ok(task_json("IN_PROGRESS")),
            ok(task_json("COMPLETE")),
        ]))
        .mount(server)
        .await;
    mount_tail(server, result).await;
}

/// Project, events (two pages) and the result.
async fn mount_tail(server: &MockServer, result: Option<Vec<u8>>) {
    Mock::given(method("GET"))
        .and(path(format!("{API}/project/p-1")))
        .respond_with(ok(project_json(result.is_some())))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/task/t-1/events")))
        .and(query_param("pagination_key", "page-2"))
        .respond_with(ok(json!({"events": [
            {"event_id": "e3", "agent_task_id": "t-1", "event_type": 16, "created_at": "2026-07-01T10:04:00", "content": "Done: three proofs."}
        ], "pagination_key": null})))
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/task/t-1/events")))
        .and(query_param("ascending", "true"))
        .respond_with(ok(json!({"events": [
            {"event_id": "e1", "agent_task_id": "t-1", "event_type": 3, "created_at": "2026-07-01T10:01:00", "content": "", "explanation": "Looking at add_zero'"},
            {"event_id": "e2", "agent_task_id": "t-1", "event_type": 4, "created_at": "2026-07-01T10:02:00", "content": "", "file_path": "Fixture.lean"}
        ], "pagination_key": "page-2"})))
        .with_priority(2)
        .mount(server)
        .await;
    if let Some(bytes) = result {
        Mock::given(method("GET"))
            .and(path(format!("{API}/project/p-1/result")))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", "application/gzip")
                    .insert_header(
                        "content-disposition",
                        "attachment; filename=\"p-1-aristotle.tar.gz\"",
                    )
                    .set_body_bytes(bytes),
            )
            .mount(server)
            .await;
    }
}

fn result_archive() -> Vec<u8> {
    targz(&[
        ("wd_aristotle/Fixture.lean", SOLVED),
        ("wd_aristotle/lakefile.toml", "name = \"changed\"\n"),
        (
            "wd_aristotle/ARISTOTLE_SUMMARY.md",
            "# Summary\nAll three goals closed.\n",
        ),
    ])
}

#[tokio::test]
async fn happy_path_submits_polls_pages_downloads_and_maps_back() {
    let server = MockServer::start().await;
    mount_run(&server, Some(result_archive())).await;
    let out = Out::new();
    let g = generate(&prover(&server.uri()), &out, Duration::from_secs(30), None).await;
    assert_eq!(g.outcome, GenOutcome::Finished, "{:?}", g.metadata);
    assert_eq!(out.wd_file(), SOLVED);
    let logs = out.layout.logs();
    assert_eq!(
        std::fs::read_to_string(logs.join("summary.md")).expect("summary"),
        "# Summary\nAll three goals closed.\n"
    );
    assert!(!out.layout.wd().join("ARISTOTLE_SUMMARY.md").exists());
    // The task's build configuration is kept.
    assert!(
        std::fs::read_to_string(out.layout.wd().join("lakefile.toml"))
            .expect("lakefile")
            .contains("name = \"fixture\"")
    );
    let events: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(logs.join("events.json")).expect("events"))
            .expect("json");
    assert_eq!(
        events.as_array().map(Vec::len),
        Some(3),
        "both pages, oldest first"
    );
    let transcript = std::fs::read_to_string(logs.join("transcript.txt")).expect("transcript");
    assert!(transcript.starts_with("[2026-07-01T10:01:00] THINKING: Looking at add_zero'\n\n[2026-07-01T10:02:00] EDITING_FILE: Fixture.lean"), "{transcript}");
    assert!(transcript.contains("SUMMARY: Done: three proofs."));
    assert!(logs.join("aristotle_result.tar.gz").is_file());
    for f in ["project.json", "task.json"] {
        assert!(logs.join(f).is_file(), "{f}");
    }
    let m = &g.metadata;
    assert_eq!(m["task_status"], "COMPLETE");
    assert_eq!(m["project_id"], "p-1");
    assert_eq!(m["task_id"], "t-1");
    assert_eq!(m["output_summary"], "All sorries filled.");
    assert_eq!(m["result_files"], json!(["Fixture.lean"]));
    assert_eq!(
        m["ignored_result_files"]["lakefile.toml"],
        "the task's build configuration is kept (the result changed it)"
    );
    assert_eq!(m["timed_out"], false);
    assert!(
        m.get("remote_cancel").is_none(),
        "a finished task is not cancelled"
    );
    // The upload: one multipart request with the JSON body and the gzip tar of the project.
    let reqs = server.received_requests().await.expect("recorded");
    let create = reqs
        .iter()
        .find(|r| r.method.as_str() == "POST")
        .expect("create");
    let body = String::from_utf8_lossy(&create.body);
    assert!(body.contains("name=\"body\""), "{body}");
    assert!(body.contains("\"agent_questions_setting\":1"), "{body}");
    assert!(
        body.contains("Complete") || body.contains("sorry"),
        "the prompt is sent"
    );
    assert!(body.contains("name=\"input\"; filename=\"wd.tar.gz\""));
    assert!(body.contains("Content-Type: application/x-tar"));
    // No request carried the key anywhere but its header, and nothing on disk holds it.
    assert!(
        server.uri().starts_with("http://127.0.0.1:"),
        "{}",
        server.uri()
    );
    for r in &reqs {
        assert!(!r.url.as_str().contains(KEY));
        assert_eq!(
            r.headers.get("x-api-key").and_then(|v| v.to_str().ok()),
            Some(KEY)
        );
    }
    assert!(
        !out.all_text().contains(KEY),
        "the key leaked to the run directory"
    );
    assert!(!serde_json::to_string(&g.metadata)
        .expect("json")
        .contains(KEY));
    // No event stream was ever opened.
    assert!(!reqs.iter().any(|r| r.url.path().ends_with("events-stream")));
}

#[tokio::test]
async fn a_connection_dropped_mid_poll_is_retried() {
    let server = MockServer::start().await;
    mount_run(&server, Some(result_archive())).await;
    // Priority over the normal poll: the first poll answers, the second has its connection
    // cut mid-body (declared length never sent), then the normal sequence resumes.
    Mock::given(method("GET"))
        .and(path(format!("{API}/task/t-1")))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/json")
                .insert_header("content-length", "5000")
                .set_body_string("{\"agent_task_id\": \"t-1\", \"sta"),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let out = Out::new();
    let g = generate(&prover(&server.uri()), &out, Duration::from_secs(30), None).await;
    assert_eq!(g.outcome, GenOutcome::Finished, "{:?}", g.metadata);
    assert_eq!(out.wd_file(), SOLVED);
    assert!(
        g.metadata["transient_errors"].as_u64().unwrap_or(0) >= 1,
        "{:?}",
        g.metadata
    );
}

#[tokio::test]
async fn server_errors_are_retried_then_the_run_goes_on() {
    let server = MockServer::start().await;
    mount_run(&server, Some(result_archive())).await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/project/p-1/tasks")))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"detail": "overloaded"})))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    let out = Out::new();
    let g = generate(&prover(&server.uri()), &out, Duration::from_secs(30), None).await;
    assert_eq!(g.outcome, GenOutcome::Finished, "{:?}", g.metadata);
    assert_eq!(g.metadata["transient_errors"], 2);
}

#[tokio::test]
async fn client_errors_fail_fast_with_the_servers_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{API}/project")))
        .respond_with(
            ResponseTemplate::new(422)
                .set_body_json(json!({"detail": "The archive has no Lean project"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let out = Out::new();
    let g = generate(&prover(&server.uri()), &out, Duration::from_secs(30), None).await;
    let GenOutcome::Failed { error, message } = &g.outcome else {
        panic!("{:?}", g.outcome)
    };
    assert_eq!(error, "aristotle_http");
    assert_eq!(
        message,
        "Aristotle (creating the project): HTTP 422: The archive has no Lean project"
    );
}

#[tokio::test]
async fn a_rejected_key_is_a_credentials_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{API}/project")))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"detail": "Invalid API key"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let out = Out::new();
    let g = generate(&prover(&server.uri()), &out, Duration::from_secs(30), None).await;
    let GenOutcome::Failed { error, message } = &g.outcome else {
        panic!("{:?}", g.outcome)
    };
    assert_eq!(error, "credentials_rejected");
    assert!(
        message.contains("ARISTOTLE_API_KEY") && message.contains("aristotle login"),
        "{message}"
    );
    assert!(!message.contains(KEY));
}

#[tokio::test]
async fn the_project_limit_429_is_not_retried_but_the_rate_limit_429_is() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{API}/project")))
        .respond_with(
            ResponseTemplate::new(429)
                .set_body_json(json!({"detail": "Too many runs in progress (3 of 3)"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let out = Out::new();
    let g = generate(&prover(&server.uri()), &out, Duration::from_secs(30), None).await;
    let GenOutcome::Failed { error, message } = &g.outcome else {
        panic!("{:?}", g.outcome)
    };
    assert_eq!(error, "aristotle_project_limit");
    assert!(
        message.contains("Too many runs in progress (3 of 3)"),
        "{message}"
    );
    drop(server);

    // The per-second limit: the request never reached a handler, so even a create is resent,
    // after the server's Retry-After.
    let server = MockServer::start().await;
    mount_run(&server, Some(result_archive())).await;
    Mock::given(method("POST"))
        .and(path(format!("{API}/project")))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "0")
                .set_body_json(json!({"detail": "Rate limit exceeded"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let out = Out::new();
    let g = generate(&prover(&server.uri()), &out, Duration::from_secs(30), None).await;
    assert_eq!(g.outcome, GenOutcome::Finished, "{:?}", g.metadata);
    let creates = server
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == format!("{API}/project"))
        .map(|r| {
            r.headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .collect::<Vec<_>>();
    assert_eq!(creates.len(), 2);
    assert_eq!(
        creates[0], creates[1],
        "a resent create carries the same Idempotency-Key"
    );
}

#[tokio::test]
async fn no_task_to_wait_on_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{API}/project")))
        .respond_with(ok(project_json(false)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/project/p-1/tasks")))
        .respond_with(ok(json!({"agent_tasks": [], "pagination_key": null})))
        .mount(&server)
        .await;
    let out = Out::new();
    let g = generate(&prover(&server.uri()), &out, Duration::from_secs(30), None).await;
    assert_eq!(
        g.outcome,
        GenOutcome::Failed {
            error: "aristotle_no_task".into(),
            message: "Aristotle returned no task to wait on (project p-1)".into()
        }
    );
}

#[tokio::test]
async fn no_archive_is_an_error_and_the_workdir_is_untouched() {
    let server = MockServer::start().await;
    mount_run(&server, None).await;
    let out = Out::new();
    let before = out.wd_file();
    let g = generate(&prover(&server.uri()), &out, Duration::from_secs(30), None).await;
    assert_eq!(
        g.outcome,
        GenOutcome::Failed {
            error: "aristotle_no_output".into(),
            message: "Aristotle produced no output files (task COMPLETE)".into()
        }
    );
    assert_eq!(out.wd_file(), before);
    assert!(
        out.layout.logs().join("events.json").is_file(),
        "events are saved anyway"
    );
}

#[tokio::test]
async fn on_timeout_the_remote_task_is_cancelled_and_the_cancel_recorded() {
    let server = MockServer::start().await;
    mount_run(&server, None).await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/task/t-1")))
        .respond_with(ok(task_json("IN_PROGRESS")))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{API}/task/t-1/cancel")))
        .and(header("X-API-Key", KEY))
        .respond_with(ok(task_json("CANCELED")))
        .expect(1)
        .mount(&server)
        .await;
    let out = Out::new();
    let g = generate(
        &prover(&server.uri()),
        &out,
        Duration::from_millis(600),
        None,
    )
    .await;
    assert_eq!(g.outcome, GenOutcome::TimedOut);
    assert_eq!(g.metadata["timed_out"], true);
    assert_eq!(
        g.metadata["remote_cancel"],
        json!({"attempted": true, "landed": true, "status": "CANCELED"})
    );
    assert_eq!(g.metadata["task_status"], "IN_PROGRESS");
}

#[tokio::test]
async fn a_cancel_answered_404_lands_when_the_task_shows_canceled() {
    let server = MockServer::start().await;
    mount_run(&server, None).await;
    // The task runs until the cancel arrives; the cancel answers 404 (no longer live).
    let cancelled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    Mock::given(method("GET"))
        .and(path(format!("{API}/task/t-1")))
        .respond_with(Flagged {
            flag: cancelled.clone(),
            set: false,
            before: ok(task_json("IN_PROGRESS")),
            after: ok(task_json("CANCELED")),
        })
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{API}/task/t-1/cancel")))
        .respond_with(Flagged {
            flag: cancelled.clone(),
            set: true,
            before: ResponseTemplate::new(404)
                .set_body_json(json!({"detail": "Task is not running"})),
            after: ResponseTemplate::new(404)
                .set_body_json(json!({"detail": "Task is not running"})),
        })
        .expect(1)
        .mount(&server)
        .await;
    let out = Out::new();
    // Ctrl-C while the task runs.
    let g = generate(
        &prover(&server.uri()),
        &out,
        Duration::from_secs(30),
        Some(Duration::from_millis(120)),
    )
    .await;
    assert_eq!(g.outcome, GenOutcome::Cancelled);
    assert_eq!(
        g.metadata["remote_cancel"]["landed"], true,
        "{:?}",
        g.metadata
    );
    assert_eq!(g.metadata["remote_cancel"]["status"], "CANCELED");
}

#[tokio::test]
async fn a_cancel_that_fails_says_so() {
    let server = MockServer::start().await;
    mount_run(&server, None).await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/task/t-1")))
        .respond_with(ok(task_json("IN_PROGRESS")))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{API}/task/t-1/cancel")))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let out = Out::new();
    let g = generate(
        &prover(&server.uri()),
        &out,
        Duration::from_millis(400),
        None,
    )
    .await;
    assert_eq!(g.outcome, GenOutcome::TimedOut);
    assert_eq!(g.metadata["remote_cancel"]["landed"], false);
    assert!(
        g.metadata["remote_cancel"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("HTTP 500"),
        "{:?}",
        g.metadata
    );
}
