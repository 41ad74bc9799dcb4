//! The reports of a small synthetic run (two provers, two tasks, two attempts, a definition
//! hole), rendered from the store alone: snapshots of results.jsonl, results.csv, report.md and
//! report.html, and the escaping of hostile prover output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use atp_bench::provenance::{
    DatasetInfo, ImageInfo, ProverEntry, RunInfo, RunState, Sampling, RUN_SCHEMA,
};
use atp_bench::store::{Plan, Store};
use atp_bench::CellId;
use atp_prover::{
    Cost, CostSource, Durations, EntryKind, ProofResult, ProverRecord, Status, Transcript, Usage,
};
use atp_verify::{DefinitionHole, HoleCheck, VerificationReport, Violation, ViolationKind};

fn info() -> RunInfo {
    RunInfo {
        schema: RUN_SCHEMA.into(),
        atp_version: "0.1.0".into(),
        run_id: "run-1".into(),
        host: "host".into(),
        started: "2026-07-23T09:00:00Z".into(),
        ended: Some("2026-07-23T09:10:00Z".into()),
        state: RunState::Complete,
        command: vec!["atp".into(), "benchmark".into()],
        dataset: DatasetInfo {
            name: "putnam".into(),
            dir: "data".into(),
            repo: Some("file:///repo".into()),
            commit: Some("abc123".into()),
            lean_toolchain: Some("leanprover/lean4:v4.28.0".into()),
            mathlib_rev: Some("v4.28.0".into()),
            tasks: 2,
            filters: vec![],
            answers: Some("data/answers.toml".into()),
            answer_count: 1,
        },
        image: ImageInfo {
            backend: "docker".into(),
            name: "atp-test:latest".into(),
            id: "sha256:0123456789abcdef0123".into(),
            lean_toolchain: "leanprover/lean4:v4.28.0".into(),
            mathlib_rev: "v4.28.0".into(),
            spec_hash: None,
        },
        sampling: Sampling {
            attempts: 2,
            workers: 2,
            per_prover: 1,
            generation_timeout_s: 60.0,
            verify_timeout_s: 60.0,
            cell_ceiling_s: 420.0,
            network: "none".into(),
        },
        provers: vec![
            ProverEntry {
                label: "agent".into(),
                name: "claude".into(),
                kind: "agent".into(),
                model: Some("claude-opus-4-8".into()),
                effort: Some("high".into()),
                config: "{\"max_turns\":null}".into(),
            },
            ProverEntry {
                label: "tactics".into(),
                name: "tactics".into(),
                kind: "tactics".into(),
                model: None,
                effort: None,
                config: "{}".into(),
            },
        ],
        cells: BTreeMap::new(),
    }
}

fn result(status: Status, prover: &str, cost: Option<f64>, total: f64) -> ProofResult {
    let mut r = ProofResult::new(status, "run-1", Path::new("/out"));
    r.prover = Some(ProverRecord {
        name: prover.into(),
        kind: "agent".into(),
        model: Some("claude-opus-4-8".into()),
        ..Default::default()
    });
    r.usage = Some(Usage {
        input_tokens: 1000,
        cached_input_tokens: 200,
        output_tokens: 50,
        turns: Some(2),
        tool_calls: Some(1),
        stop_reason: None,
    });
    r.set_cost(cost.map(|usd| Cost {
        usd: Some(usd),
        source: CostSource::Reported,
        note: None,
    }));
    r.durations = Durations {
        provision_s: 1.0,
        generation_s: total - 2.0,
        verification_s: 1.0,
        total_s: total,
    };
    let mut v = VerificationReport {
        compiles: true,
        sorry_free: true,
        statements_intact: true,
        ..Default::default()
    };
    if status == Status::Unverified {
        v.violations.push(Violation::source(
            ViolationKind::Sorry,
            "B.lean",
            Some(3),
            None,
            "`sorry` <left> & \"quoted\"",
        ));
    }
    v.finalize();
    r.verification = Some(v);
    r
}

fn with_hole(mut r: ProofResult, check: HoleCheck) -> ProofResult {
    let v = r.verification.as_mut().unwrap();
    v.definition_holes.push(DefinitionHole {
        file: "A.lean".into(),
        line: 3,
        name: "a_solution".into(),
        kind: "abbrev".into(),
        body: Some("0".into()),
        answer: Some("2".into()),
        check,
        note: None,
    });
    if check == HoleCheck::Wrong {
        v.violations.push(Violation {
            kind: ViolationKind::WrongAnswer,
            file: "A.lean".into(),
            line: Some(3),
            decl: Some("a_solution".into()),
            message: "`a_solution` := 0 differs from the official answer 2".into(),
            from_lean: true,
        });
        r.status = Status::Unverified;
    }
    v.finalize();
    r
}

pub fn store() -> (tempfile::TempDir, Store) {
    let d = tempfile::tempdir().unwrap();
    let s = Store::new(d.path());
    info().write(&s.run_toml()).unwrap();
    Plan {
        schema: Plan::SCHEMA.into(),
        tasks: vec!["A".into(), "B".into()],
        provers: vec!["agent".into(), "tactics".into()],
        attempts: 2,
    }
    .write(&s.plan_json())
    .unwrap();
    let id = |t: &str, p: &str, a: u32| CellId {
        task: t.into(),
        prover: p.into(),
        attempt: a,
    };
    let put = |id: &CellId, mut r: ProofResult| {
        r.task = Some(id.task.clone());
        s.write_stamped(id, &mut r, "hash").unwrap();
    };
    put(
        &id("A", "agent", 1),
        with_hole(
            result(Status::Verified, "claude", Some(0.5), 10.0),
            HoleCheck::Equal,
        ),
    );
    put(
        &id("A", "agent", 2),
        with_hole(
            result(Status::Verified, "claude", Some(0.25), 12.0),
            HoleCheck::Wrong,
        ),
    );
    put(
        &id("B", "agent", 1),
        result(Status::Unverified, "claude", Some(1.0), 20.0),
    );
    put(
        &id("B", "agent", 2),
        result(Status::Verified, "claude", None, 14.0),
    );
    put(
        &id("A", "tactics", 1),
        with_hole(
            result(Status::Verified, "tactics", Some(0.0), 4.0),
            HoleCheck::Undecided,
        ),
    );
    put(
        &id("A", "tactics", 2),
        result(Status::Timeout, "tactics", Some(0.0), 60.0),
    );
    put(
        &id("B", "tactics", 1),
        result(Status::Error, "tactics", Some(0.0), 3.0),
    );
    // B/tactics/2 never ran.
    // A transcript with hostile text, and a raw stdout for another cell.
    let mut t = Transcript::new("test");
    t.push(
        EntryKind::Assistant,
        "I will </pre><script>alert(1)</script> now",
        None,
        false,
    );
    t.push(
        EntryKind::ToolCall,
        "sed -i s/sorry/simp/ A.lean",
        Some("Bash".into()),
        false,
    );
    t.push(EntryKind::ToolResult, "ok", None, false);
    t.push(EntryKind::Final, "result: success", None, false);
    std::fs::write(
        s.layout(&id("A", "agent", 1))
            .logs()
            .join("transcript.json"),
        serde_json::to_string(&t).unwrap(),
    )
    .unwrap();
    std::fs::write(
        s.layout(&id("B", "tactics", 1)).stdout(),
        "line 1\n<b>line 2</b>\n",
    )
    .unwrap();
    (d, s)
}

#[test]
fn the_reports_are_rendered_from_the_store() {
    let (d, s) = store();
    let r = atp_bench::report::render(&s).expect("render");
    assert_eq!(r.files.len(), 4);
    let read = |n: &str| std::fs::read_to_string(d.path().join(n)).unwrap();
    insta::assert_snapshot!("report_md", read("report.md"));
    insta::assert_snapshot!("results_csv", read("results.csv"));
    insta::assert_snapshot!("results_jsonl", read("results.jsonl"));
    insta::assert_snapshot!("report_html", read("report.html"));
}

#[test]
fn solved_needs_every_hole_equal_and_pass_at_k_is_reported() {
    let (_d, s) = store();
    let data = atp_bench::report::ReportData::load(&s).unwrap();
    let agent = &data.summaries[0];
    // A: attempt 1 solved, attempt 2 hole_wrong; B: unverified, hole-free verified.
    assert_eq!(agent.tasks_solved, 2);
    assert_eq!(agent.pass_at_1, Some(0.5));
    assert_eq!(agent.pass_at_n, Some(1.0));
    let tactics = &data.summaries[1];
    assert_eq!(tactics.tasks_solved, 0);
    assert_eq!(tactics.outcomes[&atp_bench::Outcome::HoleUnchecked], 1);
    assert_eq!(tactics.outcomes[&atp_bench::Outcome::NotRun], 1);
    // B has one attempt done of two: not counted in pass@2.
    assert_eq!(tactics.pass_at_n, Some(0.0));
}

#[test]
fn prover_output_is_escaped_in_the_html() {
    let (d, s) = store();
    atp_bench::report::render(&s).unwrap();
    let html = std::fs::read_to_string(d.path().join("report.html")).unwrap();
    assert!(!html.contains("<script>alert(1)"));
    assert!(html.contains("&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&lt;b&gt;line 2&lt;/b&gt;"));
    assert_eq!(html.matches("<script>").count(), 1, "only atp's own script");
    assert!(html.contains("default-src 'none'"));
    // Nothing is loaded from anywhere: no src, no <link>, every href an anchor on the page.
    assert!(!html.contains(" src="));
    assert!(!html.contains("<link"));
    assert_eq!(
        html.matches("href=\"").count(),
        html.matches("href=\"#").count()
    );
    for needle in [
        "id=\"grid\"",
        "id=\"chart-solved\"",
        "id=\"chart-cost\"",
        "id=\"chart-time\"",
    ] {
        assert!(html.contains(needle), "{needle}");
    }
}
