//! The agents test image (`cargo xtask agents-image`) through the Docker backend: its labels, and
//! every agent CLI it lists answering its probe (`--version`, or `--help` for the CLIs without
//! one) with networking disabled.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use atp_backend::{ComputeBackend, ExecOptions, NetworkMode};

use crate::common;

/// The CLIs the image must hold, by command (= the `atp.agent.<command>` label).
const EXPECTED: &[&str] = &[
    "claude",
    "codex",
    "opencode",
    "node",
    "kimi",
    "vibe",
    "ax-prover",
    "lean-lsp-mcp",
    "uv",
];

fn opts() -> ExecOptions {
    ExecOptions {
        timeout: Some(Duration::from_secs(180)),
        kill_grace: Some(Duration::from_secs(2)),
        env: BTreeMap::from([("HOME".to_string(), "/root".to_string())]),
        ..Default::default()
    }
}

fn quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', "'\\''"))
}

#[tokio::test]
async fn every_agent_cli_of_the_agents_image_runs_at_its_labelled_version() {
    let name = "every_agent_cli_of_the_agents_image_runs_at_its_labelled_version";
    let image = atp_test_support::agents_image();
    let Some(b) = atp_test_support::docker_with(name, &image, NetworkMode::None).await else {
        return;
    };
    let info = b.image_info().await.expect("image info");
    let labels = &info.labels;
    for (k, v) in [("atp.agents-image", "true"), ("atp.test-image", "true")] {
        assert_eq!(labels.get(k).map(String::as_str), Some(v), "label {k}");
    }
    for k in ["atp.lean-toolchain", "atp.mathlib-rev"] {
        assert!(labels.get(k).is_some_and(|v| !v.is_empty()), "label {k}");
    }
    let hash = labels
        .get("atp.agents-inputs-hash")
        .expect("atp.agents-inputs-hash");
    assert!(
        hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "inputs hash {hash:?}"
    );
    let labelled: BTreeMap<&str, &str> = labels
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("atp.agent.")?, v.as_str())))
        .collect();
    let names: BTreeSet<&str> = labelled.keys().copied().collect();
    assert_eq!(
        names,
        EXPECTED.iter().copied().collect::<BTreeSet<_>>(),
        "atp.agent.* labels"
    );

    let (run, _wd, s) = common::open(&b).await;
    let manifest = s
        .exec_wait("cat /opt/atp-agents/agents.json", opts())
        .await
        .expect("manifest");
    assert_eq!(manifest.exit_code, 0, "{manifest:?}");
    let manifest: serde_json::Value =
        serde_json::from_str(&manifest.stdout).expect("agents.json is JSON");
    let agents = manifest["agents"].as_array().expect("agents list");
    assert_eq!(agents.len(), EXPECTED.len(), "{manifest}");
    for agent in agents {
        let command = agent["command"].as_str().expect("command");
        let version = agent["version"].as_str().expect("version");
        let package = agent["package"].as_str().expect("package");
        assert_eq!(
            labelled.get(command).copied(),
            Some(version),
            "label of {command} vs agents.json"
        );
        let probe: Vec<String> = agent["probe"]
            .as_array()
            .expect("probe")
            .iter()
            .map(|a| quote(a.as_str().expect("probe arg")))
            .collect();
        assert_eq!(probe[0], quote(command), "{command}'s probe runs {command}");
        let r = s
            .exec_wait(&format!("{} 2>&1", probe.join(" ")), opts())
            .await
            .expect("probe");
        assert_eq!(r.exit_code, 0, "{command} probe failed: {r:?}");
        if agent["probe_shows_version"].as_bool() == Some(true) {
            assert!(
                r.stdout.contains(version),
                "{command} is not {version}: {}",
                r.stdout
            );
        } else {
            // The probe only shows the CLI starts; the version is the installed distribution's.
            let venv = format!("/opt/atp-agents/venvs/{package}/bin/python");
            let v = s
                .exec_wait(
                    &format!(
                        "{venv} -c 'import importlib.metadata as m; print(m.version(\"{package}\"))'"
                    ),
                    opts(),
                )
                .await
                .expect("metadata");
            assert_eq!(v.stdout.trim(), version, "{package} in its venv: {v:?}");
        }
    }
    // The test layer is the test image's: the stand-in lake and the warm-cache marker.
    let r = s
        .exec_wait(
            "lake --version && cat /workspace/.lake/ATP_TEST_MARKER",
            opts(),
        )
        .await
        .expect("lake");
    assert_eq!(r.exit_code, 0, "{r:?}");
    assert!(r.stdout.contains("stand-in"), "{}", r.stdout);
    s.close().await.expect("close");
    atp_test_support::assert_no_leak(&run).await;
}
