#![allow(clippy::unwrap_used)]
//! The default spec's renderings (snapshots), the single source of the pins, validation, and
//! the image lock (round trip, staleness, pinned renderings).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atp_image::{
    ImageLock, ImagePins, ImageSpec, LockMode, LockSource, LockStatus, LockedBase, LockedTool,
    PinSource, Skeleton, SpecError, Step, ToolKind, LABEL_LEAN_TOOLCHAIN, LABEL_LOCK_HASH,
    LABEL_MATHLIB_REV, LABEL_SPEC_HASH, LABEL_TOOLS,
};

fn images_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images")
}

fn default_spec() -> ImageSpec {
    ImageSpec::load(&images_dir().join("open-atp.toml")).expect("default spec loads")
}

/// The default spec with the committed lock `images/open-atp.lock`, which must be fresh.
fn locked_default_spec() -> ImageSpec {
    let (spec, status) =
        ImageSpec::load_with_lock(&images_dir().join("open-atp.toml"), LockMode::Required)
            .expect("the committed lock is fresh (else run `atp image lock`)");
    assert!(matches!(status, LockStatus::Used { .. }), "{status:?}");
    spec
}

/// A copy of `images/` (spec + lock + skeleton) in a temp dir, to be edited by a test.
fn images_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = images_dir();
    std::fs::copy(src.join("open-atp.toml"), tmp.path().join("open-atp.toml")).expect("copy");
    std::fs::copy(src.join("open-atp.lock"), tmp.path().join("open-atp.lock")).expect("copy");
    std::fs::create_dir(tmp.path().join("lean")).expect("mkdir");
    for f in ["lean-toolchain", "lakefile.toml"] {
        std::fs::copy(src.join("lean").join(f), tmp.path().join("lean").join(f)).expect("copy");
    }
    std::fs::create_dir(tmp.path().join("checker")).expect("mkdir");
    for e in std::fs::read_dir(src.join("checker")).expect("checker") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), tmp.path().join("checker").join(e.file_name())).expect("copy");
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
    insta::assert_snapshot!(locked_default_spec().to_dockerfile().expect("render"));
}

#[test]
fn default_spec_modal_layers_snapshot() {
    insta::assert_json_snapshot!(locked_default_spec().to_modal_layers().expect("render"));
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

// ---- the image lock ----

/// A spec installing one tool of each kind, with versions given, latest and a dist-tag.
fn tool_spec() -> ImageSpec {
    small_spec()
        .step(Step::Npm(vec![
            "@scope/cli@1.2.3".into(),
            "plain".into(),
            "tagged@next".into(),
        ]))
        .step(Step::Elan("4.2.3".into()))
        .step(Step::Pipx(vec![
            "pinned-app==2.0.1".into(),
            "latest-app".into(),
        ]))
}

/// What a registry would answer for [`tool_spec`]'s requirements.
fn resolved_tools(spec: &ImageSpec) -> Vec<LockedTool> {
    spec.requirements()
        .unwrap()
        .iter()
        .filter(|r| r.kind != ToolKind::Elan)
        .map(|r| {
            let (version, source) = match r.name.as_str() {
                "@scope/cli" => ("1.2.3", LockSource::Spec),
                "plain" => ("4.5.6", LockSource::Registry),
                "tagged" => ("7.0.0-beta.1", LockSource::Registry),
                "pinned-app" => ("2.0.1", LockSource::Spec),
                _ => ("0.9.9", LockSource::Registry),
            };
            let mut tool = LockedTool::new(r, version, source);
            match r.kind {
                ToolKind::Npm => tool.integrity = Some(format!("sha512-{}==", r.name.len())),
                _ if r.name == "pinned-app" => {
                    tool.sha256 = Some("ab".repeat(32));
                    tool.file = Some("pinned_app-2.0.1-py3-none-any.whl".into());
                }
                _ => {}
            }
            tool
        })
        .collect()
}

fn tool_lock(spec: &ImageSpec) -> ImageLock {
    ImageLock::new(
        spec,
        LockedBase::unknown(&spec.base, "not present in the local engine"),
        resolved_tools(spec),
    )
    .expect("lock")
}

#[test]
fn lock_file_snapshot_and_round_trip() {
    let spec = tool_spec();
    let lock = tool_lock(&spec);
    let text = lock.to_toml().unwrap();
    insta::assert_snapshot!(text);
    let back = ImageLock::parse(&text, "<snapshot>").expect("parse back");
    assert_eq!(back, lock);
    assert_eq!(back.to_toml().unwrap(), text);
    assert_eq!(lock.spec_hash(), spec.spec_hash().unwrap());
    assert_eq!(lock.lock_hash().len(), 64);
    // Spec order, elan taken from the spec with its release URL.
    let names: Vec<&str> = lock.tools().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "@scope/cli",
            "plain",
            "tagged",
            "elan",
            "pinned-app",
            "latest-app"
        ]
    );
    let elan = lock.tool(ToolKind::Elan, "elan").unwrap();
    assert_eq!(elan.source, LockSource::Spec);
    assert!(elan.url.as_deref().unwrap().contains("/v4.2.3/"));
}

#[test]
fn locked_renderings_snapshot() {
    let spec = tool_spec().with_lock(tool_lock(&tool_spec())).unwrap();
    insta::assert_snapshot!(spec.to_dockerfile().unwrap());
    insta::assert_json_snapshot!(spec.to_modal_layers().unwrap());
}

#[test]
fn a_written_lock_is_read_back_and_renders_the_same() {
    let tmp = images_copy();
    let spec_path = tmp.path().join("tools.toml");
    std::fs::write(
        &spec_path,
        "base = \"ubuntu:24.04\"\n[[step]]\nnpm = [\"@scope/cli@1.2.3\", \"plain\", \"tagged@next\"]\n\
         [[step]]\nelan = \"4.2.3\"\n[[step]]\npipx = [\"pinned-app==2.0.1\", \"latest-app\"]\n\
         [[step]]\ncopy_skeleton = \"/workspace\"\n",
    )
    .unwrap();
    let spec = ImageSpec::load(&spec_path).unwrap();
    let lock = ImageLock::new(
        &spec,
        LockedBase::unknown("ubuntu:24.04", "n/a"),
        resolved_tools(&spec),
    )
    .unwrap();
    lock.write(&atp_image::lock_path_for(&spec_path)).unwrap();
    assert!(tmp.path().join("tools.lock").is_file());
    let (loaded, status) = ImageSpec::load_with_lock(&spec_path, LockMode::Required).unwrap();
    assert_eq!(
        status,
        LockStatus::Used {
            path: tmp.path().join("tools.lock")
        }
    );
    assert_eq!(loaded.lock(), Some(&lock));
    let direct = spec.with_lock(lock).unwrap();
    assert_eq!(
        loaded.to_dockerfile().unwrap(),
        direct.to_dockerfile().unwrap()
    );
    assert_eq!(
        loaded.to_modal_layers().unwrap(),
        direct.to_modal_layers().unwrap()
    );
}

#[test]
fn the_committed_lock_is_fresh_and_round_trips() {
    let path = images_dir().join("open-atp.lock");
    let text = std::fs::read_to_string(&path).unwrap();
    let lock = ImageLock::load(&path).expect("committed lock loads");
    assert_eq!(
        lock.to_toml().unwrap(),
        text,
        "the lock file is what atp writes"
    );
    let spec = default_spec();
    assert_eq!(lock.spec_hash(), spec.spec_hash().unwrap());
    assert_eq!(lock.lean_pins(), spec.pins().unwrap());
    // The agent CLIs atp's agent tests run, at exactly those versions.
    for (kind, name, version) in [
        (ToolKind::Npm, "@anthropic-ai/claude-code", "2.1.197"),
        (ToolKind::Npm, "@openai/codex", "0.171.0"),
        (ToolKind::Npm, "opencode-ai", "1.18.33"),
        (ToolKind::Pipx, "mistral-vibe", "3.0.3"),
        (ToolKind::Pipx, "ax-prover", "0.2.0"),
        (ToolKind::Pipx, "lean-lsp-mcp", "0.32.0"),
    ] {
        let tool = lock
            .tool(kind, name)
            .unwrap_or_else(|| panic!("{name} locked"));
        assert_eq!(tool.version, version, "{name}");
        assert_eq!(tool.source, LockSource::Spec, "{name}");
    }
    assert!(lock.tool(ToolKind::Pipx, "uv").is_some());
    assert!(lock.tool(ToolKind::Elan, "elan").is_some());
    // No digest is known for a base the engine did not have; the lock says why.
    let base = lock.base();
    assert_eq!(base.image, spec.base);
    assert!(base.digest.is_some() || base.note.is_some());
}

/// Every install command in `commands` whose packages are not all pinned to an exact version.
/// Written independently of the renderer: it reads the shell text as a user would.
fn unpinned_installs(commands: &[String]) -> Vec<String> {
    let exact = |v: &str| {
        let core = v.split(['-', '+']).next().unwrap_or("");
        let parts: Vec<&str> = core.split('.').collect();
        parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    };
    let npm_pinned = |arg: &str| {
        let rest = arg.strip_prefix('@').unwrap_or(arg);
        rest.split_once('@').is_some_and(|(_, v)| exact(v))
    };
    let py_pinned = |arg: &str| arg.split_once("==").is_some_and(|(_, v)| exact(v));
    let mut bad = Vec::new();
    for command in commands {
        let text = command.replace("\\\n", " ");
        for segment in text.split(['&', ';', '|', '\n']) {
            let words: Vec<&str> = segment.split_whitespace().collect();
            let positional = |from: usize| -> Vec<&str> {
                words[from..]
                    .iter()
                    .copied()
                    .filter(|w| !w.starts_with('-'))
                    .collect()
            };
            let (args, npm) = match words.as_slice() {
                ["npm", "install" | "i" | "add" | "install-global", ..] => (positional(2), true),
                ["pipx", "install" | "inject" | "upgrade" | "upgrade-all", ..] => {
                    (positional(2), false)
                }
                ["pip" | "pip3", "install", ..] => (positional(2), false),
                ["python3" | "python", "-m", "pip", "install", ..] => (positional(4), false),
                ["uv", "pip" | "tool", "install", ..] => (positional(3), false),
                _ => continue,
            };
            let pinned = |a: &&str| if npm { npm_pinned(a) } else { py_pinned(a) };
            if args.is_empty() || !args.iter().all(pinned) {
                bad.push(segment.trim().to_string());
            }
        }
    }
    bad
}

fn rendered_commands(spec: &ImageSpec) -> Vec<String> {
    let mut commands: Vec<String> = spec
        .to_dockerfile()
        .unwrap()
        .replace("\\\n", " ")
        .lines()
        .map(str::to_string)
        .collect();
    for layer in spec.to_modal_layers().unwrap() {
        commands.extend(layer.dockerfile_commands);
    }
    commands
}

#[test]
fn no_unpinned_install_in_the_locked_default_spec() {
    let spec = locked_default_spec();
    let commands = rendered_commands(&spec);
    let bad = unpinned_installs(&commands);
    assert!(bad.is_empty(), "unpinned installs: {bad:#?}");
    // The scan sees the installs: the default spec has npm and pipx lines in both renderings.
    let installs = commands
        .iter()
        .filter(|c| c.contains("npm install -g") || c.contains("pipx install"))
        .count();
    assert!(installs >= 4, "{commands:#?}");
}

#[test]
fn the_unpinned_scan_flags_an_unlocked_rendering() {
    // Without the lock, `uv` floats: the scan must catch it in both renderings.
    let bad = unpinned_installs(&rendered_commands(&default_spec()));
    assert!(!bad.is_empty());
    assert!(bad.iter().all(|b| b == "pipx install uv"), "{bad:#?}");
    assert_eq!(
        bad.len(),
        2,
        "once in the Dockerfile, once in the Modal layers"
    );
    // And installs hidden in `run` steps, whatever the spelling.
    for cmd in [
        "npm install -g foo",
        "npm i -g @a/b@^1.2.0",
        "pip install requests",
        "python3 -m pip install x==1.2",
        "uv tool install ruff",
        "pipx install git+https://example.invalid/x",
        "true && pipx install y==1.0.0 z",
    ] {
        assert_eq!(unpinned_installs(&[cmd.to_string()]).len(), 1, "{cmd}");
    }
    for cmd in [
        "npm install -g a@1.2.3 @s/b@0.1.0-rc.1",
        "pip3 install x==1.2.3",
    ] {
        assert!(unpinned_installs(&[cmd.to_string()]).is_empty(), "{cmd}");
    }
}

#[test]
fn locked_and_unlocked_renderings_differ_only_in_versions_and_lock_metadata() {
    let locked = locked_default_spec();
    let unlocked = default_spec();
    let lock = locked.lock().unwrap().clone();
    // Pinned install arguments collapse to bare names (the spec pins some itself).
    let bare = |text: &str| {
        let mut text = text.to_string();
        for t in lock.tools() {
            for pinned in [
                format!("{}@{}", t.name, t.version),
                format!("{}=={}", t.name, t.version),
            ] {
                text = text.replace(&pinned, &t.name);
            }
        }
        text
    };
    let (l, u) = (
        locked.to_modal_layers().unwrap(),
        unlocked.to_modal_layers().unwrap(),
    );
    assert_eq!(l.len(), u.len());
    let (l_last, u_last) = (l.last().unwrap(), u.last().unwrap());
    for (a, b) in l.iter().zip(&u).take(l.len() - 1) {
        assert_eq!(
            bare(&a.dockerfile_commands.join("\n")),
            bare(&b.dockerfile_commands.join("\n"))
        );
    }
    // The last layer is the pin env: the same plus ATP_LOCK_HASH and ATP_TOOLS.
    let env = locked.pin_env().unwrap();
    assert_eq!(env.len(), unlocked.pin_env().unwrap().len() + 2);
    assert!(l_last.dockerfile_commands[0].contains(lock.lock_hash()));
    assert!(!u_last.dockerfile_commands[0].contains("ATP_LOCK_HASH"));
    // What actually changes: the floating tool gets its locked version.
    let uv = lock.tool(ToolKind::Pipx, "uv").unwrap();
    let pinned_uv = format!("pipx install uv=={}", uv.version);
    assert!(locked.to_dockerfile().unwrap().contains(&pinned_uv));
    assert!(!unlocked.to_dockerfile().unwrap().contains(&pinned_uv));
}

#[test]
fn the_lock_is_labelled_and_read_back_from_labels_and_env() {
    let spec = tool_spec().with_lock(tool_lock(&tool_spec())).unwrap();
    let lock = spec.lock().unwrap().clone();
    let labels = spec.image_labels().unwrap();
    assert_eq!(labels[LABEL_LOCK_HASH], lock.lock_hash());
    assert!(
        labels[LABEL_TOOLS].contains("\"npm:plain\":\"4.5.6\""),
        "{labels:?}"
    );
    let pins = ImagePins::from_labels(&labels).unwrap();
    assert_eq!(pins.lock_hash.as_deref(), Some(lock.lock_hash()));
    let mut expected = lock.tool_versions();
    expected.sort();
    assert_eq!(pins.tools, expected);
    assert_eq!(
        ImagePins::from_env(&spec.pin_env().unwrap()),
        Some(pins.clone())
    );
    let defaults = ImagePins::spec_defaults(&spec).unwrap();
    assert_eq!(defaults.source, PinSource::SpecDefaults);
    assert_eq!(defaults.tools, pins.tools);
    // Unlocked: no lock labels, no tools.
    let unlocked = ImagePins::from_labels(&tool_spec().image_labels().unwrap()).unwrap();
    assert_eq!(unlocked.lock_hash, None);
    assert!(unlocked.tools.is_empty());
    assert!(!tool_spec()
        .image_labels()
        .unwrap()
        .contains_key(LABEL_TOOLS));
}

#[test]
fn a_known_base_digest_pins_from_in_both_renderings() {
    let spec = tool_spec();
    let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
    let lock = ImageLock::new(
        &spec,
        LockedBase::with_digest("ubuntu:24.04", &digest),
        resolved_tools(&spec),
    )
    .unwrap();
    let spec = spec.with_lock(lock).unwrap();
    let from = format!("FROM ubuntu:24.04@{digest}");
    assert!(spec.to_dockerfile().unwrap().contains(&format!("{from}\n")));
    let layers = spec.to_modal_layers().unwrap();
    assert_eq!(layers[0].commands_with_from(), vec![from]);
}

#[test]
fn a_stale_lock_is_reported_in_auto_mode_and_refused_when_required() {
    let tmp = images_copy();
    let spec_path = tmp.path().join("open-atp.toml");
    let text = std::fs::read_to_string(&spec_path).unwrap();
    std::fs::write(
        &spec_path,
        text.replace("\"mistral-vibe==3.0.3\"", "\"mistral-vibe==3.0.2\""),
    )
    .unwrap();
    let (spec, status) = ImageSpec::load_with_lock(&spec_path, LockMode::Auto).unwrap();
    assert!(spec.lock().is_none());
    let LockStatus::Stale { path, .. } = &status else {
        panic!("{status:?}")
    };
    assert_eq!(path, &tmp.path().join("open-atp.lock"));
    let warning = status.warning().unwrap();
    assert!(
        !warning.contains('\n') && warning.contains("atp image lock"),
        "{warning}"
    );
    // Unlocked rendering: the edited pin as written.
    assert!(spec
        .to_dockerfile()
        .unwrap()
        .contains("pipx install mistral-vibe==3.0.2"));

    let err = ImageSpec::load_with_lock(&spec_path, LockMode::Required).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SpecError::StaleLock { .. }), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    assert!(
        msg.contains("stale") && msg.contains("atp image lock --spec"),
        "{msg}"
    );
    assert!(msg.contains("open-atp.lock"), "{msg}");

    let (spec, status) = ImageSpec::load_with_lock(&spec_path, LockMode::Ignore).unwrap();
    assert_eq!(status, LockStatus::Ignored);
    assert!(spec.lock().is_none());
}

#[test]
fn a_missing_lock_is_fine_unless_required() {
    let tmp = images_copy();
    std::fs::remove_file(tmp.path().join("open-atp.lock")).unwrap();
    let spec_path = tmp.path().join("open-atp.toml");
    let (_, status) = ImageSpec::load_with_lock(&spec_path, LockMode::Auto).unwrap();
    assert!(matches!(status, LockStatus::Missing { .. }), "{status:?}");
    assert_eq!(status.warning(), None);
    let err = ImageSpec::load_with_lock(&spec_path, LockMode::Required).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SpecError::MissingLock { .. }), "{msg}");
    assert!(
        msg.contains("atp image lock") && !msg.contains('\n'),
        "{msg}"
    );
}

#[test]
fn a_hand_edited_lock_is_refused_even_in_auto_mode() {
    let tmp = images_copy();
    let lock_path = tmp.path().join("open-atp.lock");
    let text = std::fs::read_to_string(&lock_path).unwrap();
    std::fs::write(
        &lock_path,
        text.replace("version = \"0.171.0\"", "version = \"0.172.0\""),
    )
    .unwrap();
    let err =
        ImageSpec::load_with_lock(&tmp.path().join("open-atp.toml"), LockMode::Auto).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SpecError::BadLock { .. }), "{msg}");
    assert!(
        msg.contains("lock_hash") && msg.contains("atp image lock"),
        "{msg}"
    );
    // A lock of another format version, and garbage, are one line each too.
    for bad in ["format = \"atp-lock/9\"\n", "not toml ["] {
        let e = ImageLock::parse(bad, "x.lock").unwrap_err().to_string();
        assert!(e.contains("x.lock") && !e.contains('\n'), "{e}");
    }
}

#[test]
fn a_lock_attached_to_a_spec_edited_afterwards_stops_rendering() {
    let mut spec = tool_spec().with_lock(tool_lock(&tool_spec())).unwrap();
    spec.steps.push(Step::Run("true".into()));
    let err = spec.to_dockerfile().unwrap_err();
    assert!(matches!(err, SpecError::StaleLock { .. }), "{err}");
    // And a lock of another spec cannot be attached.
    let err = small_spec().with_lock(tool_lock(&tool_spec())).unwrap_err();
    assert!(matches!(err, SpecError::StaleLock { .. }), "{err}");
}

#[test]
fn a_lock_that_changes_a_spec_pin_or_misses_a_tool_is_refused() {
    let spec = tool_spec();
    let mut tools = resolved_tools(&spec);
    tools
        .iter_mut()
        .find(|t| t.name == "@scope/cli")
        .unwrap()
        .version = "1.2.4".into();
    let err = ImageLock::new(&spec, LockedBase::unknown("ubuntu:24.04", "n"), tools)
        .unwrap_err()
        .to_string();
    assert!(err.contains("@scope/cli") && err.contains("1.2.3"), "{err}");
    let mut tools = resolved_tools(&spec);
    tools.pop();
    let err = ImageLock::new(&spec, LockedBase::unknown("ubuntu:24.04", "n"), tools)
        .unwrap_err()
        .to_string();
    assert!(err.contains("latest-app"), "{err}");
    let err = ImageLock::new(
        &spec,
        LockedBase::unknown("debian:12", "n"),
        resolved_tools(&spec),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("debian:12"), "{err}");
}

#[test]
fn tool_steps_are_validated_at_load() {
    for (step, needle) in [
        ("npm = [\"x@^1.0.0\"]", "ranges cannot be locked"),
        ("npm = []", "installs nothing"),
        (
            "pipx = [\"git+https://example.invalid/x\"]",
            "cannot be locked",
        ),
        ("pipx = [\"uv>=0.1\"]", "name==VERSION"),
        ("elan = \"v4.2.3\"", "X.Y.Z"),
        ("npm = [\"a\", \"a@1.0.0\"]", "already installed by step 1"),
        ("npm = [\"a\"]\nrun = \"true\"", "exactly one"),
    ] {
        let (err, msg) = load_err(&format!("base = \"b\"\n[[step]]\n{step}\n{OK_TAIL}"));
        assert!(
            matches!(err, SpecError::BadStep { step: 1, .. }),
            "{step}: {msg}"
        );
        assert!(msg.contains(needle), "{step}: {msg}");
    }
}

#[test]
fn the_builtin_spec_is_the_repositorys_default_spec() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (on_disk, _) = atp_image::ImageSpec::load_with_lock(
        &root.join(atp_image::default_spec_path()),
        LockMode::Required,
    )
    .expect("load with the committed lock");
    // The built-in spec carries the committed lock too, so both build the same locked image.
    let builtin = atp_image::ImageSpec::builtin().expect("builtin");
    assert_eq!(builtin.lock(), on_disk.lock());
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
    let e = spec
        .with_pins("leanprover/lean4 v4", "v4.27.0")
        .unwrap_err();
    assert!(e.to_string().contains("--lean-toolchain"), "{e}");
}

#[test]
fn the_checker_is_copied_and_built_by_the_default_spec() {
    let spec = default_spec();
    let dockerfile = spec.to_dockerfile().unwrap();
    let copy = dockerfile
        .find("COPY [\"checker/\", \"/opt/atp-checker/\"]")
        .expect("the checker's source is copied");
    let build = dockerfile
        .find("cd /opt/atp-checker && lake build")
        .expect("and built");
    let toolchain = dockerfile
        .find("cp /workspace/lean-toolchain /opt/atp-checker/lean-toolchain")
        .expect("with the skeleton's toolchain");
    assert!(copy < toolchain && toolchain < build);
    let context: Vec<String> = spec.build_context().into_iter().map(|(n, _)| n).collect();
    assert!(
        context.contains(&"checker/AtpCheck.lean".to_string()),
        "{context:?}"
    );
    assert!(context.contains(&"checker/lakefile.toml".to_string()));
    // Modal has no build context: the files are written by the layer itself
    let modal = serde_json::to_string(&spec.to_modal_layers().unwrap()).unwrap();
    assert!(modal.contains("/opt/atp-checker/AtpCheck.lean"));
    // the compiled-in spec carries the same checker
    assert_eq!(
        ImageSpec::builtin().unwrap().spec_hash().unwrap(),
        spec.spec_hash().unwrap()
    );
    // a change to the checker's source changes the spec hash (a new image id)
    let tmp = images_copy();
    let f = tmp.path().join("checker/AtpCheck.lean");
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, text + "\n-- changed\n").unwrap();
    let changed = ImageSpec::load(&tmp.path().join("open-atp.toml")).unwrap();
    assert_ne!(changed.spec_hash().unwrap(), spec.spec_hash().unwrap());
    // hidden entries (a local `.lake` build) are never copied
    std::fs::create_dir_all(tmp.path().join("checker/.lake/build")).unwrap();
    std::fs::write(tmp.path().join("checker/.lake/build/x"), "x").unwrap();
    let again = ImageSpec::load(&tmp.path().join("open-atp.toml")).unwrap();
    assert_eq!(again.spec_hash().unwrap(), changed.spec_hash().unwrap());
}
