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
    let expected = atp_image::ImageSpec::load(&spec)
        .expect("load")
        .to_dockerfile()
        .expect("render");
    assert_eq!(stdout(&out), expected);
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
