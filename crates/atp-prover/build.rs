//! Records the git commit atp is built from (when built from a checkout) as `ATP_GIT_COMMIT`.

use std::process::Command;

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if let Some(commit) = git(&["rev-parse", "HEAD"]) {
        let dirty =
            git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        let value = if dirty {
            format!("{commit}-dirty")
        } else {
            commit
        };
        println!("cargo:rustc-env=ATP_GIT_COMMIT={value}");
    }
    if let Some(head) = git(&["rev-parse", "--git-dir"]) {
        let head_file = dir.join(&head).join("HEAD");
        println!("cargo:rerun-if-changed={}", head_file.display());
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!(
                "cargo:rerun-if-changed={}",
                dir.join(&head).join(r).display()
            );
        }
    }
}
