use super::*;

fn archive(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    let raw = b.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).expect("gz");
    gz.finish().expect("gz")
}

fn header(path: &str, kind: tar::EntryType, size: u64, link: Option<&str>) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_entry_type(kind);
    // set_path refuses `..`; write the raw name to build hostile archives.
    let name = path.as_bytes();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    if let Some(t) = link {
        let t = t.as_bytes();
        h.as_old_mut().linkname[..t.len()].copy_from_slice(t);
    }
    h.set_cksum();
    h
}

fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let h = header(path, tar::EntryType::Regular, data.len() as u64, None);
    b.append(&h, data).expect("append");
}

fn dir(b: &mut tar::Builder<Vec<u8>>, path: &str) {
    let h = header(path, tar::EntryType::Directory, 0, None);
    b.append(&h, &[][..]).expect("append");
}

fn symlink(b: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
    let h = header(path, tar::EntryType::Symlink, 0, Some(target));
    b.append(&h, &[][..]).expect("append");
}

fn hardlink(b: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
    let h = header(path, tar::EntryType::Link, 0, Some(target));
    b.append(&h, &[][..]).expect("append");
}

fn plain() -> UnpackOptions {
    UnpackOptions::default()
}

fn unwrap() -> UnpackOptions {
    UnpackOptions {
        unwrap_single_dir: true,
        ..Default::default()
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).expect("read")
}

#[test]
fn round_trip_keeps_files_hidden_entries_and_inner_symlinks_but_not_lake() {
    let src = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(src.path().join("a/b")).expect("mk");
    std::fs::write(
        src.path().join("a/b/x.lean"),
        "theorem x : True := trivial\n",
    )
    .expect("w");
    std::fs::create_dir_all(src.path().join(".claude")).expect("mk");
    std::fs::write(src.path().join(".claude/log.jsonl"), "{}\n").expect("w");
    std::fs::create_dir_all(src.path().join(".lake/build")).expect("mk");
    std::fs::write(src.path().join(".lake/build/big"), "skip me").expect("w");
    make_symlink(Path::new("a/b/x.lean"), &src.path().join("link")).expect("ln");
    let tgz = pack(src.path(), None, true, Vec::new()).expect("pack");
    let dst = tempfile::tempdir().expect("tmp");
    let seen = unpack_safe(&tgz[..], dst.path(), &plain()).expect("unpack");
    assert_eq!(
        read(&dst.path().join("a/b/x.lean")),
        "theorem x : True := trivial\n"
    );
    assert_eq!(read(&dst.path().join(".claude/log.jsonl")), "{}\n");
    assert_eq!(
        std::fs::read_link(dst.path().join("link")).expect("link"),
        Path::new("a/b/x.lean")
    );
    assert!(!dst.path().join(".lake").exists());
    assert!(seen.contains(Path::new("a/b/x.lean")));
}

#[test]
fn traversal_absolute_and_symlink_escapes_are_refused() {
    let outside = tempfile::tempdir().expect("tmp");
    let victim = outside.path().join("victim");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dotdot", archive(|b| file(b, "../victim", b"pwned"))),
        (
            "nested dotdot",
            archive(|b| file(b, "a/../../victim", b"pwned")),
        ),
        (
            "absolute",
            archive(|b| file(b, &victim.display().to_string(), b"pwned")),
        ),
        ("absolute symlink", archive(|b| symlink(b, "l", "/etc"))),
        (
            "escaping symlink",
            archive(|b| symlink(b, "a/l", "../../x")),
        ),
        (
            "write through symlink",
            archive(|b| {
                symlink(b, "l", ".");
                file(b, "l/f", b"x");
            }),
        ),
    ];
    for (name, tgz) in cases {
        for opts in [plain(), unwrap()] {
            let dst = tempfile::tempdir().expect("tmp");
            let err = unpack_safe(&tgz[..], dst.path(), &opts).expect_err(name);
            assert!(matches!(err, UnpackError::Unsafe { .. }), "{name}: {err}");
            assert!(!victim.exists(), "{name} wrote outside");
        }
    }
}

#[test]
fn a_hard_link_to_an_earlier_file_of_the_archive_is_kept() {
    let tgz = archive(|b| {
        file(b, "a/orig.txt", b"same inode");
        hardlink(b, "b/copy.txt", "a/orig.txt");
    });
    let dst = tempfile::tempdir().expect("tmp");
    let seen = unpack_safe(&tgz[..], dst.path(), &plain()).expect("unpack");
    assert_eq!(read(&dst.path().join("b/copy.txt")), "same inode");
    assert!(seen.contains(Path::new("b/copy.txt")));
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let a = std::fs::metadata(dst.path().join("a/orig.txt")).expect("a");
        let b = std::fs::metadata(dst.path().join("b/copy.txt")).expect("b");
        assert_eq!(a.ino(), b.ino());
    }
}

#[test]
fn hard_links_out_of_the_root_or_to_unseen_files_are_refused() {
    let outside = tempfile::tempdir().expect("tmp");
    let secret = outside.path().join("secret");
    std::fs::write(&secret, "host secret").expect("w");
    let dst = tempfile::tempdir().expect("tmp");
    // A file already on the host side of the root, but not written by this archive.
    std::fs::write(dst.path().join("preexisting"), "host file").expect("w");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "absolute",
            archive(|b| hardlink(b, "l", &secret.display().to_string())),
        ),
        ("dotdot", archive(|b| hardlink(b, "l", "../secret"))),
        (
            "nested dotdot",
            archive(|b| hardlink(b, "a/l", "a/../../secret")),
        ),
        (
            "not in the archive",
            archive(|b| hardlink(b, "l", "preexisting")),
        ),
        ("missing", archive(|b| hardlink(b, "l", "nowhere"))),
        (
            "through a symlink",
            archive(|b| {
                symlink(b, "up", ".");
                file(b, "f", b"x");
                hardlink(b, "l", "up/f");
            }),
        ),
        (
            "to a directory",
            archive(|b| {
                dir(b, "d/");
                hardlink(b, "l", "d");
            }),
        ),
        (
            "to a symlink",
            archive(|b| {
                symlink(b, "s", "f");
                hardlink(b, "l", "s");
            }),
        ),
    ];
    for (name, tgz) in cases {
        let err = unpack_safe(&tgz[..], dst.path(), &plain()).expect_err(name);
        assert!(matches!(err, UnpackError::Unsafe { .. }), "{name}: {err}");
        assert!(!dst.path().join("l").exists(), "{name} linked");
        assert_eq!(read(&secret), "host secret", "{name}");
    }
}

#[test]
fn total_size_and_entry_count_are_bounded() {
    let big = archive(|b| {
        file(b, "a", &[b'x'; 600]);
        file(b, "b", &[b'y'; 600]);
    });
    let small = UnpackOptions {
        limits: Limits {
            max_total_bytes: 1000,
            max_entries: 100,
        },
        ..Default::default()
    };
    let dst = tempfile::tempdir().expect("tmp");
    let err = unpack_safe(&big[..], dst.path(), &small).expect_err("too large");
    assert!(
        matches!(err, UnpackError::TooLarge { limit: 1000 }),
        "{err}"
    );
    assert!(
        !dst.path().join("b").exists(),
        "the file over the limit is not kept"
    );
    let exact = UnpackOptions {
        limits: Limits {
            max_total_bytes: 1200,
            max_entries: 2,
        },
        ..Default::default()
    };
    let dst = tempfile::tempdir().expect("tmp");
    unpack_safe(&big[..], dst.path(), &exact).expect("exactly at the limits");

    let many = archive(|b| {
        for i in 0..5 {
            dir(b, &format!("d{i}/"));
        }
    });
    let few = UnpackOptions {
        limits: Limits {
            max_total_bytes: 1000,
            max_entries: 4,
        },
        ..Default::default()
    };
    let err = unpack_safe(&many[..], dst.path(), &few).expect_err("too many");
    assert!(
        matches!(err, UnpackError::TooManyEntries { limit: 4 }),
        "{err}"
    );
    assert!(!err.to_string().contains('\n'));
}

#[test]
fn a_single_top_level_folder_is_unwrapped_when_asked() {
    let tgz = archive(|b| {
        dir(b, "wd_aristotle/");
        file(b, "wd_aristotle/Main.lean", b"proved");
        file(b, "wd_aristotle/ARISTOTLE_SUMMARY.md", b"# summary");
        dir(b, "wd_aristotle/Sub/");
        file(b, "wd_aristotle/Sub/A.lean", b"a");
        symlink(b, "wd_aristotle/Sub/l", "../Main.lean");
    });
    let dst = tempfile::tempdir().expect("tmp");
    std::fs::write(dst.path().join("Main.lean"), "sorry").expect("w");
    std::fs::write(dst.path().join("keep.txt"), "kept").expect("w");
    let seen = unpack_safe(&tgz[..], dst.path(), &unwrap()).expect("unpack");
    assert_eq!(
        read(&dst.path().join("Main.lean")),
        "proved",
        "completed files win"
    );
    assert_eq!(read(&dst.path().join("Sub/A.lean")), "a");
    assert_eq!(read(&dst.path().join("Sub/l")), "proved");
    assert_eq!(read(&dst.path().join("keep.txt")), "kept");
    assert!(!dst.path().join("wd_aristotle").exists());
    let names: Vec<String> = seen.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(
        names,
        [
            "ARISTOTLE_SUMMARY.md",
            "Main.lean",
            "Sub",
            "Sub/A.lean",
            "Sub/l"
        ]
    );
    let left: Vec<_> = std::fs::read_dir(dst.path())
        .expect("ls")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".atp-unpack"))
        .collect();
    assert!(left.is_empty(), "staging left behind: {left:?}");

    // Without the option the folder stays.
    let dst = tempfile::tempdir().expect("tmp");
    unpack_safe(&tgz[..], dst.path(), &plain()).expect("unpack");
    assert!(dst.path().join("wd_aristotle/Main.lean").is_file());
}

#[test]
fn anything_but_one_folder_is_unpacked_as_it_is() {
    let two = archive(|b| {
        file(b, "a/x", b"1");
        file(b, "b/y", b"2");
    });
    let dst = tempfile::tempdir().expect("tmp");
    unpack_safe(&two[..], dst.path(), &unwrap()).expect("unpack");
    assert!(dst.path().join("a/x").is_file() && dst.path().join("b/y").is_file());
    let one_file = archive(|b| file(b, "only.lean", b"x"));
    let dst = tempfile::tempdir().expect("tmp");
    unpack_safe(&one_file[..], dst.path(), &unwrap()).expect("unpack");
    assert!(dst.path().join("only.lean").is_file());
    let link_only = archive(|b| symlink(b, "l", "."));
    let dst = tempfile::tempdir().expect("tmp");
    unpack_safe(&link_only[..], dst.path(), &unwrap()).expect("unpack");
    assert!(std::fs::symlink_metadata(dst.path().join("l")).is_ok_and(|m| m.is_symlink()));
}

#[test]
fn unwrapping_never_lets_a_link_or_an_existing_symlink_escape() {
    // Inside the folder, `top/l -> ../x` stays in the archive root — but not once unwrapped.
    let tgz = archive(|b| {
        file(b, "top/f", b"x");
        symlink(b, "top/l", "../x");
    });
    let dst = tempfile::tempdir().expect("tmp");
    let err = unpack_safe(&tgz[..], dst.path(), &unwrap()).expect_err("escape after unwrap");
    assert!(matches!(err, UnpackError::Unsafe { .. }), "{err}");
    assert!(
        !dst.path().join("f").exists(),
        "nothing moved after a refusal"
    );

    // A symlink already in the root is replaced, never written through.
    let outside = tempfile::tempdir().expect("tmp");
    let dst = tempfile::tempdir().expect("tmp");
    make_symlink(outside.path(), &dst.path().join("Sub")).expect("ln");
    let tgz = archive(|b| file(b, "top/Sub/A.lean", b"a"));
    unpack_safe(&tgz[..], dst.path(), &unwrap()).expect("unpack");
    assert!(dst.path().join("Sub").is_dir());
    assert!(!std::fs::symlink_metadata(dst.path().join("Sub"))
        .expect("m")
        .is_symlink());
    assert_eq!(std::fs::read_dir(outside.path()).expect("ls").count(), 0);
}

#[test]
fn prune_removes_what_the_sandbox_deleted_but_keeps_lake() {
    let root = tempfile::tempdir().expect("tmp");
    std::fs::write(root.path().join("keep"), "k").expect("w");
    std::fs::write(root.path().join("gone"), "g").expect("w");
    std::fs::create_dir_all(root.path().join(".lake")).expect("mk");
    let keep: BTreeSet<PathBuf> = [PathBuf::from("keep")].into_iter().collect();
    prune(root.path(), &keep).expect("prune");
    assert!(root.path().join("keep").exists());
    assert!(!root.path().join("gone").exists());
    assert!(root.path().join(".lake").exists());
}
