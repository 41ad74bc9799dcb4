#![allow(clippy::unwrap_used)]
//! The default spec's renderings (snapshots), the single source of the pins, and validation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atp_image::{
    ImagePins, ImageSpec, PinSource, Skeleton, SpecError, Step, LABEL_LEAN_TOOLCHAIN,
    LABEL_MATHLIB_REV, LABEL_SPEC_HASH,
};

fn images_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images")
}

fn default_spec() -> ImageSpec {
    ImageSpec::load(&images_dir().join("open-atp.toml")).expect("default spec loads")
}

/// A copy of `images/` (spec + skeleton) in a temp dir, to be edited by a test.
fn images_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = images_dir();
    std::fs::copy(src.join("open-atp.toml"), tmp.path().join("open-atp.toml")).expect("copy");
    std::fs::create_dir(tmp.path().join("lean")).expect("mkdir");
    for f in ["lean-toolchain", "lakefile.toml"] {
        std::fs::copy(src.join("lean").join(f), tmp.path().join("lean").join(f)).expect("copy");
    }
    tmp
}

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
    .expect("skeleton")
}

fn small_spec() -> ImageSpec {
    ImageSpec::new("<test>", "ubuntu:24.04", skeleton())
        .step(Step::Env(BTreeMap::from([("A".into(), "1".into())])))
        .step(Step::CopySkeleton("/workspace".into()))
}

#[test]
fn default_spec_dockerfile_snapshot() {
    insta::assert_snapshot!(default_spec().to_dockerfile().expect("render"));
}

#[test]
fn default_spec_modal_layers_snapshot() {
    insta::assert_json_snapshot!(default_spec().to_modal_layers().expect("render"));
}

#[test]
fn default_spec_pins_come_from_the_skeleton() {
    let spec = default_spec();
    let toolchain = std::fs::read_to_string(images_dir().join("lean/lean-toolchain")).unwrap();
    let pins = spec.pins().expect("pins");
    assert_eq!(pins.lean_toolchain, toolchain.trim());
    let lakefile = std::fs::read_to_string(images_dir().join("lean/lakefile.toml")).unwrap();
    let rev_line = lakefile
        .lines()
        .find(|l| l.trim_start().starts_with("rev"))
        .expect("a rev line");
    assert!(
        rev_line.contains(&format!("\"{}\"", pins.mathlib_rev)),
        "{rev_line}"
    );
    // The spec file itself repeats neither pin.
    let text = std::fs::read_to_string(images_dir().join("open-atp.toml")).unwrap();
    assert!(
        !text.contains(toolchain.trim()),
        "spec repeats the toolchain"
    );
    assert!(
        !text.contains(&format!("\"{}\"", pins.mathlib_rev)),
        "spec repeats the Mathlib rev"
    );
}

#[test]
fn modal_layers_have_no_copy_and_literal_env() {
    let layers = default_spec().to_modal_layers().expect("render");
    assert_eq!(layers[0].base.as_deref(), Some("ubuntu:24.04"));
    assert!(layers[1..].iter().all(|l| l.base.is_none()));
    for command in layers.iter().flat_map(|l| &l.dockerfile_commands) {
        assert!(!command.starts_with("COPY"), "{command}");
        if command.starts_with("ENV") {
            assert!(!command.contains('$'), "{command}");
        }
    }
    assert_eq!(layers[1].commands_with_from()[0], "FROM base");
    assert_eq!(layers[0].commands_with_from(), vec!["FROM ubuntu:24.04"]);
}

#[test]
fn changing_the_toolchain_file_changes_every_rendering() {
    let before = default_spec();
    let tmp = images_copy();
    std::fs::write(
        tmp.path().join("lean/lean-toolchain"),
        "leanprover/lean4:v4.99.0\n",
    )
    .unwrap();
    let after = ImageSpec::load(&tmp.path().join("open-atp.toml")).expect("load copy");

    assert_eq!(
        after.pins().unwrap().lean_toolchain,
        "leanprover/lean4:v4.99.0"
    );
    let labels = after.image_labels().unwrap();
    assert_eq!(labels[LABEL_LEAN_TOOLCHAIN], "leanprover/lean4:v4.99.0");
    assert_ne!(labels[LABEL_SPEC_HASH], before.spec_hash().unwrap());

    let dockerfile = after.to_dockerfile().unwrap();
    assert!(dockerfile.contains("\"atp.lean-toolchain\"=\"leanprover/lean4:v4.99.0\""));
    assert!(dockerfile.contains("ATP_LEAN_TOOLCHAIN=\"leanprover/lean4:v4.99.0\""));
    let old = before.pins().unwrap().lean_toolchain;
    assert!(!dockerfile.contains(&old), "old pin left in the Dockerfile");

    let modal = serde_json::to_string(&after.to_modal_layers().unwrap()).unwrap();
    assert!(modal.contains("ATP_LEAN_TOOLCHAIN=\\\"leanprover/lean4:v4.99.0\\\""));
    assert!(!modal.contains(&old), "old pin left in the Modal layers");
    // The skeleton file itself is written into the Modal image with the new content.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode("leanprover/lean4:v4.99.0\n");
    assert!(modal.contains(&b64));

    let defaults = ImagePins::spec_defaults(&after).unwrap();
    assert_eq!(defaults.lean_toolchain, "leanprover/lean4:v4.99.0");
    assert_eq!(defaults.source, PinSource::SpecDefaults);
}

#[test]
fn changing_the_mathlib_rev_changes_labels() {
    let tmp = images_copy();
    let lakefile = tmp.path().join("lean/lakefile.toml");
    let text = std::fs::read_to_string(&lakefile).unwrap();
    std::fs::write(
        &lakefile,
        text.replace(
            &format!("rev = \"{}\"", default_spec().pins().unwrap().mathlib_rev),
            "rev = \"abc123\"",
        ),
    )
    .unwrap();
    let spec = ImageSpec::load(&tmp.path().join("open-atp.toml")).unwrap();
    assert_eq!(spec.image_labels().unwrap()[LABEL_MATHLIB_REV], "abc123");
    assert!(spec
        .to_dockerfile()
        .unwrap()
        .contains("ATP_MATHLIB_REV=\"abc123\""));
}

#[test]
fn spec_hash_is_stable_and_content_sensitive() {
    let a = small_spec();
    assert_eq!(a.spec_hash().unwrap(), small_spec().spec_hash().unwrap());
    assert_eq!(a.spec_hash().unwrap().len(), 64);
    let mut moved = small_spec();
    moved.origin = "elsewhere.toml".into();
    moved.tag = "other:tag".into();
    assert_eq!(a.spec_hash().unwrap(), moved.spec_hash().unwrap());
    let b = small_spec().step(Step::Run("true".into()));
    assert_ne!(a.spec_hash().unwrap(), b.spec_hash().unwrap());
    // Same hash in both renderings.
    let hash = a.spec_hash().unwrap();
    assert!(a.to_dockerfile().unwrap().contains(&hash));
    assert!(serde_json::to_string(&a.to_modal_layers().unwrap())
        .unwrap()
        .contains(&hash));
}

#[test]
fn pins_from_labels_or_spec_defaults() {
    let spec = small_spec();
    let labels = spec.image_labels().unwrap();
    let pins = ImagePins::from_labels(&labels).expect("labelled");
    assert_eq!(pins.source, PinSource::Labels);
    assert_eq!(pins.lean_toolchain, "leanprover/lean4:v4.28.0");
    assert_eq!(pins.spec_hash, Some(spec.spec_hash().unwrap()));

    let foreign = BTreeMap::from([(LABEL_LEAN_TOOLCHAIN.to_string(), "x".to_string())]);
    assert_eq!(
        ImagePins::from_labels(&foreign),
        None,
        "half-labelled image"
    );
    let fallback = ImagePins::from_labels_or_spec(&BTreeMap::new(), &spec).unwrap();
    assert_eq!(fallback.source, PinSource::SpecDefaults);
    assert_eq!(fallback.mathlib_rev, "v4.28.0");

    let env = spec.pin_env().unwrap();
    let from_env = ImagePins::from_env(&env).expect("env pins");
    assert_eq!(from_env, pins);
}

// ---- validation ----

fn load_err(spec_toml: &str) -> (SpecError, String) {
    let tmp = images_copy();
    let path = tmp.path().join("bad.toml");
    std::fs::write(&path, spec_toml).unwrap();
    let err = ImageSpec::load(&path).expect_err("must be rejected");
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "multi-line message: {msg}");
    (err, msg)
}

const OK_TAIL: &str = "[[step]]\ncopy_skeleton = \"/workspace\"\n";

#[test]
fn unknown_top_level_key_names_key_line_and_file() {
    let (err, msg) = load_err(&format!("base = \"b\"\nbaes = \"typo\"\n{OK_TAIL}"));
    assert!(matches!(err, SpecError::Parse { .. }), "{err:?}");
    assert!(msg.contains("bad.toml"), "{msg}");
    assert!(msg.contains("baes"), "{msg}");
    assert!(msg.contains("line 2"), "{msg}");
}

#[test]
fn unknown_step_kind_is_rejected() {
    let (_, msg) = load_err(&format!(
        "base = \"b\"\n[[step]]\nexpose = \"80\"\n{OK_TAIL}"
    ));
    assert!(msg.contains("expose"), "{msg}");
    assert!(msg.contains("line "), "{msg}");
}

#[test]
fn unknown_pin_key_is_rejected() {
    let (_, msg) = load_err(&format!("base = \"b\"\n[pins]\nlean = \"x\"\n{OK_TAIL}"));
    assert!(msg.contains("lean"), "{msg}");
}

#[test]
fn empty_base_is_rejected() {
    let (err, msg) = load_err(&format!("base = \" \"\n{OK_TAIL}"));
    assert!(matches!(err, SpecError::EmptyBase { .. }), "{msg}");
    assert!(ImageSpec::new("x", "", skeleton())
        .step(Step::CopySkeleton("/w".into()))
        .to_dockerfile()
        .is_err());
}

#[test]
fn removing_the_shell_is_rejected() {
    for cmd in [
        "rm -f /bin/sh",
        "true && rm -rf /usr/bin",
        "rm -rf /",
        "unlink /bin/bash",
    ] {
        let err = small_spec()
            .step(Step::Run(cmd.into()))
            .validate()
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                SpecError::BadStep {
                    step: 3,
                    kind: "run",
                    ..
                }
            ),
            "{cmd}: {msg}"
        );
        assert!(msg.contains("no command could run"), "{msg}");
    }
    // Removing ordinary files is fine.
    small_spec()
        .step(Step::Run("rm -rf /var/lib/apt/lists/* /tmp/x".into()))
        .validate()
        .expect("harmless rm");
}

#[test]
fn non_root_user_is_rejected() {
    let (err, msg) = load_err(&format!(
        "base = \"b\"\n[[step]]\nuser = \"agent\"\n{OK_TAIL}"
    ));
    assert!(
        matches!(
            err,
            SpecError::BadStep {
                step: 1,
                kind: "user",
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("root"), "{msg}");
    small_spec()
        .step(Step::User("root".into()))
        .validate()
        .expect("root ok");
}

#[test]
fn path_without_bin_and_variable_references_are_rejected() {
    let e = small_spec()
        .step(Step::Env(BTreeMap::from([(
            "PATH".into(),
            "/opt/x".into(),
        )])))
        .validate()
        .unwrap_err();
    assert!(e.to_string().contains("/usr/bin"), "{e}");
    let e = small_spec()
        .step(Step::Env(BTreeMap::from([(
            "PATH".into(),
            "/opt/x:${PATH}".into(),
        )])))
        .validate()
        .unwrap_err();
    assert!(e.to_string().contains("literal"), "{e}");
}

#[test]
fn multi_line_command_is_rejected() {
    let e = small_spec()
        .step(Step::Run("echo a\necho b".into()))
        .validate()
        .unwrap_err();
    assert!(e.to_string().contains("one line"), "{e}");
    let e = small_spec()
        .step(Step::Run("echo a \\".into()))
        .validate()
        .unwrap_err();
    assert!(e.to_string().contains("continuation"), "{e}");
}

#[test]
fn missing_skeleton_file_is_rejected() {
    let tmp = images_copy();
    std::fs::remove_file(tmp.path().join("lean/lean-toolchain")).unwrap();
    let err = ImageSpec::load(&tmp.path().join("open-atp.toml")).unwrap_err();
    assert!(
        matches!(&err, SpecError::MissingSkeletonFile { file, .. } if file == "lean-toolchain"),
        "{err}"
    );
    let tmp = images_copy();
    std::fs::write(tmp.path().join("lean/lakefile.toml"), "name = \"w\"\n").unwrap();
    let err = ImageSpec::load(&tmp.path().join("open-atp.toml")).unwrap_err();
    assert!(err.to_string().contains("mathlib"), "{err}");
}

#[test]
fn missing_skeleton_copy_is_rejected() {
    let (err, _) = load_err("base = \"b\"\n[[step]]\nrun = \"true\"\n");
    assert!(matches!(err, SpecError::NoSkeletonCopy { .. }), "{err}");
}

#[test]
fn disagreeing_pins_are_rejected() {
    let (err, msg) = load_err(&format!(
        "base = \"b\"\n[pins]\nlean_toolchain = \"leanprover/lean4:v4.27.0\"\n{OK_TAIL}"
    ));
    assert!(matches!(err, SpecError::PinMismatch { .. }), "{msg}");
    let pins = default_spec().pins().unwrap();
    assert!(
        msg.contains("v4.27.0") && msg.contains(&pins.lean_toolchain),
        "{msg}"
    );

    let (err, msg) = load_err(&format!(
        "base = \"b\"\n[[step]]\nrun = \"elan toolchain install leanprover/lean4:v4.27.0\"\n{OK_TAIL}"
    ));
    assert!(matches!(err, SpecError::PinMismatch { .. }), "{msg}");
    assert!(msg.contains("step 1"), "{msg}");

    // Restating the pins correctly, or using the pinned toolchain, is allowed.
    let tmp = images_copy();
    let path = tmp.path().join("ok.toml");
    std::fs::write(
        &path,
        format!(
            "base = \"b\"\n[pins]\nlean_toolchain = \"{t}\"\nmathlib_rev = \"{r}\"\n\
             [[step]]\nrun = \"elan toolchain install {t}\"\n{OK_TAIL}",
            t = pins.lean_toolchain,
            r = pins.mathlib_rev
        ),
    )
    .unwrap();
    ImageSpec::load(&path).expect("agreeing pins");
}

#[test]
fn reserved_labels_are_rejected() {
    let e = small_spec()
        .label("atp.lean-toolchain", "x")
        .validate()
        .unwrap_err();
    assert!(matches!(e, SpecError::BadLabel { .. }), "{e}");
}

#[test]
fn a_step_with_two_instructions_or_a_bad_run_is_rejected() {
    let (err, msg) = load_err(&format!(
        "base = \"b\"\n[[step]]\nrun = \"x\"\nworkdir = \"/y\"\n{OK_TAIL}"
    ));
    assert!(matches!(err, SpecError::BadStep { step: 1, .. }), "{msg}");
    assert!(
        msg.contains("run, workdir") && msg.contains("exactly one"),
        "{msg}"
    );
    let (_, msg) = load_err(&format!("base = \"b\"\n[[step]]\nrun = 3\n{OK_TAIL}"));
    assert!(
        msg.contains("line 3") && msg.contains("command string"),
        "{msg}"
    );
}

#[test]
fn a_missing_skeleton_directory_is_one_clear_line() {
    let (err, msg) = load_err(&format!("base = \"b\"\nskeleton = \"nope\"\n{OK_TAIL}"));
    assert!(matches!(err, SpecError::Read { .. }), "{msg}");
    assert!(msg.contains("nope") && msg.contains("skeleton"), "{msg}");
}

#[test]
fn the_builtin_spec_is_the_repositorys_default_spec() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let on_disk =
        atp_image::ImageSpec::load(&root.join(atp_image::default_spec_path())).expect("load");
    let builtin = atp_image::ImageSpec::builtin().expect("builtin");
    assert_eq!(
        builtin.to_dockerfile().expect("df"),
        on_disk.to_dockerfile().expect("df")
    );
    assert_eq!(
        builtin.spec_hash().expect("h"),
        on_disk.spec_hash().expect("h")
    );
}

#[test]
fn pins_can_be_overridden_for_one_build_and_the_labels_carry_them() {
    let spec = default_spec();
    let over = spec
        .with_pins("leanprover/lean4:v4.27.0", "v4.27.0")
        .expect("override");
    let labels = over.image_labels().expect("labels");
    assert_eq!(labels[LABEL_LEAN_TOOLCHAIN], "leanprover/lean4:v4.27.0");
    assert_eq!(labels[LABEL_MATHLIB_REV], "v4.27.0");
    assert_ne!(
        labels[LABEL_SPEC_HASH],
        spec.image_labels().expect("labels")[LABEL_SPEC_HASH]
    );
    let ctx: BTreeMap<String, Vec<u8>> = over.build_context().into_iter().collect();
    assert_eq!(ctx["lean-toolchain"], b"leanprover/lean4:v4.27.0\n");
    let lakefile = String::from_utf8(ctx["lakefile.toml"].clone()).expect("utf8");
    assert!(lakefile.contains("rev = \"v4.27.0\""), "{lakefile}");
    assert!(lakefile.contains("mathlib4"), "{lakefile}");
    // The spec itself is unchanged (the override is for one build).
    assert_eq!(
        spec.pins().expect("pins").lean_toolchain,
        "leanprover/lean4:v4.28.0"
    );
    let e = spec.with_pins("leanprover/lean4 v4", "v4.27.0").unwrap_err();
    assert!(e.to_string().contains("--lean-toolchain"), "{e}");
}
