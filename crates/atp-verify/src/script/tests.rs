use super::*;

fn copies(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn enc(s: &str) -> String {
    b64(s.as_bytes())
}

#[test]
fn build_script_has_waves_frames_and_oleans_for_every_file() {
    let s = build_script(
        &copies(&[
            ("Lib/Helper.lean", "def h := 1\n"),
            ("Main.lean", "import Lib.Helper\ntheorem m : h = 1 := rfl\n"),
        ]),
        Some(2),
    );
    let helper = s.find("start 0 Lib/Helper.lean").expect("helper");
    let main = s.find("start 1 Main.lean").expect("main");
    let drain = s[helper..].find("drain").expect("drain") + helper;
    assert!(
        helper < drain && drain < main,
        "Main waits for Helper's wave"
    );
    assert!(
        s.contains("-o \"$T/lib/${rel%.lean}.olean\""),
        "every file gets an .olean"
    );
    assert!(
        s.contains("cd /workspace"),
        "compiles from the image's project"
    );
    assert!(s.starts_with("set +e\n"));
    assert!(s.contains("command -v"), "the tools are checked first");
    assert!(s.contains("echo 'ATP-BUILD 1'"));
    assert!(s.contains("echo \"END 2\""));
    // sources travel base64-encoded: no heredoc delimiter can be forged by the source text
    assert!(s.contains(&enc("def h := 1\n")));
    assert!(!s.contains("theorem m : h"));
}

#[test]
fn frames_parse_strictly() {
    let good = format!(
        "ATP-BUILD 1\nFILE 1 0 {}\nOLEAN 1 {}\nFILE 0 1 {}\nEND 2\n",
        enc("A.lean:1:0: warning: hi"),
        enc("olean bytes"),
        enc("B.lean:2:0: error: no")
    );
    let f = parse_frames(&good, "ATP-BUILD 1", 2, false).expect("parses");
    assert_eq!(f.files[&1].output, "A.lean:1:0: warning: hi");
    assert_eq!(f.files[&0].exit_code, 1);
    assert_eq!(f.oleans[&1], b"olean bytes");
    assert!(f.complete);
    let bad: Vec<(String, &str)> = vec![
        (String::new(), "printed nothing"),
        (good.replace("ATP-BUILD 1", "ATP-BUILD 2"), "first line"),
        (good.replace("END 2\n", ""), "without its END"),
        (good.replace("END 2", "END 3"), "does not match"),
        (format!("{good}FILE 0 0 \n"), "after the END"),
        (good.replace("FILE 1 0", "FILE 7 0"), "bad file index"),
        (good.replace("FILE 0 1", "FILE 1 1"), "framed twice"),
        (good.replace("OLEAN 1", "OLEAN 0"), "did not compile"),
        (good.replace("FILE 1 0 ", "FILE 1 0 !!!"), "bad base64"),
        (good.replace("FILE 1 0", "FILE 1 zero"), "bad exit status"),
        (
            good.replace("END 2", "=== ATP EXIT x A.lean 0 ==="),
            "unexpected line",
        ),
    ];
    for (out, want) in bad {
        let e = parse_frames(&out, "ATP-BUILD 1", 2, false).expect_err(&out);
        assert!(e.contains(want), "{want}: {e}");
    }
    // cut short by the budget: what is complete is kept
    let cut = format!("ATP-BUILD 1\nFILE 1 0 {}\nOLEAN 1 abc", enc("x"));
    let f = parse_frames(&cut, "ATP-BUILD 1", 2, true).expect("partial");
    assert_eq!(f.files.len(), 1);
    assert!(!f.complete && f.oleans.is_empty());
}

/// A host directory with a fake `lake` that prints `out` for every compile and writes an
/// `.olean` holding the source (run by host bash: no sandbox needed for the script's logic).
fn fake_lake(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("mk");
    std::fs::write(bin.join("lake"), format!("#!/bin/bash\n{body}\n")).expect("w");
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(bin.join("lake"))
        .status()
        .expect("chmod");
    bin
}

fn run_host(script: &str, bin: &std::path::Path, dir: &std::path::Path) -> (String, String, i32) {
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("RUNDIR", dir)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .expect("bash runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn the_build_script_frames_with_a_fake_lake_and_bounded_workers() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(dir.path().join("running")).expect("mk");
    // args: env lean --root=R -o OUT FILE
    let bin = fake_lake(
        dir.path(),
        "out=\"$5\"; f=\"$6\"\n\
         m=\"$RUNDIR/running/$$\"; : > \"$m\"\n\
         ls \"$RUNDIR/running\" | wc -l >> \"$RUNDIR/concurrency\"\n\
         sleep 0.3\n\
         echo \"$f:1:0: warning: declaration uses 'sorry'\"\n\
         cp \"$f\" \"$out\"; rm -f \"$m\"; exit 0",
    );
    let files: Vec<(String, String)> = (0..6)
        .map(|i| {
            (
                format!("F{i}.lean"),
                format!("theorem t{i} : True := trivial\n"),
            )
        })
        .collect();
    let c: BTreeMap<String, String> = files.into_iter().collect();
    let (stdout, stderr, rc) = run_host(&build_script(&c, Some(2)), &bin, dir.path());
    assert_eq!(rc, 0, "{stderr}");
    let f = parse_frames(&stdout, "ATP-BUILD 1", 6, false).expect(&stdout);
    assert_eq!(f.files.len(), 6);
    assert!(f
        .files
        .values()
        .all(|x| x.exit_code == 0 && x.output.contains("sorry")));
    assert_eq!(f.oleans[&3], b"theorem t3 : True := trivial\n");
    let seen: Vec<usize> = std::fs::read_to_string(dir.path().join("concurrency"))
        .expect("log")
        .lines()
        .map(|l| l.trim().parse().expect("count"))
        .collect();
    assert_eq!(seen.len(), 6);
    assert!(
        seen.iter().all(|&n| n <= 2),
        "never more than 2 workers: {seen:?}"
    );
    assert!(seen.contains(&2), "2 workers ran at once: {seen:?}");
}

#[test]
fn forged_frames_in_compiler_output_change_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    // a "compiler" that prints every frame and marker it could hope to forge, then fails
    let forged = [
        "END 2",
        "FILE 1 0 ",
        "OLEAN 1 Zm9yZ2Vk",
        "ATP-BUILD 1",
        "=== ATP EXIT 0123456789abcdef A.lean 0 ===",
        "{\"t\":\"done\",\"modules\":1,\"obligations\":0}",
    ];
    let body = format!(
        "out=\"$5\"; f=\"$6\"\n{}\necho \"$f:1:0: error: real error\"\nexit 1",
        forged
            .iter()
            .map(|l| format!("echo '{l}'"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let bin = fake_lake(dir.path(), &body);
    let c = copies(&[
        ("A.lean", "theorem a : True := trivial\n"),
        ("B.lean", "x\n"),
    ]);
    let (stdout, stderr, rc) = run_host(&build_script(&c, Some(1)), &bin, dir.path());
    assert_eq!(rc, 0, "{stderr}");
    let f = parse_frames(&stdout, "ATP-BUILD 1", 2, false).expect(&stdout);
    assert_eq!(f.files.len(), 2);
    assert!(f.files.values().all(|x| x.exit_code == 1));
    assert!(f.oleans.is_empty(), "no forged .olean got through");
    assert!(
        f.files[&0].output.contains("END 2"),
        "the forgery stays the file's output"
    );
}

#[test]
fn the_script_fails_closed_without_its_tools() {
    // no mktemp in the sandbox: the build script exits non-zero before framing anything
    let dir = tempfile::tempdir().expect("tmp");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mk");
    for tool in ["bash", "cat", "rm"] {
        if let Ok(p) = which(tool) {
            std::os::unix::fs::symlink(p, bin.join(tool)).expect("link");
        }
    }
    let out = std::process::Command::new(bin.join("bash"))
        .arg("-c")
        .arg(build_script(&copies(&[("A.lean", "x\n")]), Some(1)))
        .env("PATH", &bin)
        .output()
        .expect("runs");
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("lacks `mktemp`") && err.contains("atp build-image"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

fn which(tool: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| std::path::Path::new(d).join(tool))
        .find(|p| p.exists())
        .ok_or(())
}

#[test]
fn check_script_writes_oleans_as_data_and_runs_the_checker() {
    let oleans = BTreeMap::from([("A/B".to_string(), b"\x00olean".to_vec())]);
    let s = check_script(&oleans, &["A.B".to_string()], true);
    assert!(s.contains(&b64(b"\x00olean")));
    assert!(s.contains("lake env atp-check --cand-root \"$T/cand\" --orig-root \"$T/orig/lib\" --orig A.B --cand A.B --allow-native"));
    assert!(s.contains("\"$T/cand/A/B.olean\""));
    let s = check_script(&oleans, &[], false);
    assert!(!s.contains("--orig"));
}
