//! The image contract: what a sandbox image must provide, checked once per image id.
//!
//! Every command atp runs goes through [`crate::layout::exec_argv`], which needs `bash`, GNU
//! `timeout` with `--kill-after`, and a few coreutils ([`crate::layout::WRAPPER_COMMANDS`]).
//! Engines add what their own machinery runs (Modal's transfers need `tar` and `gzip`), callers
//! add what their commands run ([`crate::SessionOptions::requires`], e.g. the verifier's script
//! tools and the image's `/workspace` project). An image that lacks any of it would make every
//! exec fail in ways that look like answers (a usage text instead of compiler output), so the
//! engine checks the contract in the first sandbox it creates from an image id — before the
//! session is handed out — and refuses with one [`BackendError::ImageContract`] line naming
//! everything missing and the remedy. A passed check is remembered per image id and
//! requirement set by the backend's [`ContractCache`]; a failed one is not remembered.
//!
//! The check itself runs outside the layout's wrapping (it must work where the wrapping does
//! not): `bash -c <script>` with the engine's own deadline.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Mutex;

use crate::layout::{shell_quote, WRAPPER_COMMANDS};
use crate::{BackendError, CommandResult, Requirements, Result};

const TAG: &str = "atp-contract:";

/// The image an engine checks, and what to tell the user when it fails.
#[derive(Debug, Clone)]
pub struct ImageRef<'a> {
    /// `docker`, `modal`.
    pub backend: &'a str,
    /// The image's name as the user gave it.
    pub image: &'a str,
    /// The engine's id of the image (content-addressed; the cache key).
    pub id: &'a str,
    /// The remedy for a failed check, e.g. ``rebuild it with `atp build-image` ``.
    pub remedy: &'a str,
}

/// Everything a session needs from the image: the wrapping's baseline plus `extra`.
pub fn requirements(extra: &Requirements) -> Requirements {
    Requirements::commands(WRAPPER_COMMANDS.iter().copied()).union(extra)
}

/// The argv that checks `req` (run with `bash -c`, outside the layout's wrapping).
pub fn check_argv(req: &Requirements) -> Vec<String> {
    let mut s = String::new();
    let commands: Vec<String> = req.commands.iter().map(|c| shell_quote(c)).collect();
    if !commands.is_empty() {
        s.push_str(&format!(
            "for c in {}; do command -v \"$c\" >/dev/null 2>&1 || echo \"{TAG} missing-command $c\"; done\n",
            commands.join(" ")
        ));
    }
    // GNU timeout's long option; busybox's applet prints its usage and fails.
    s.push_str(&format!(
        "if command -v timeout >/dev/null 2>&1 && ! timeout --kill-after=1 10 bash -c : >/dev/null 2>&1; then echo \"{TAG} no-kill-after\"; fi\n"
    ));
    let paths: Vec<String> = req.paths.iter().map(|p| shell_quote(p)).collect();
    if !paths.is_empty() {
        s.push_str(&format!(
            "for p in {}; do [ -e \"$p\" ] || echo \"{TAG} missing-path $p\"; done\n",
            paths.join(" ")
        ));
    }
    s.push_str(&format!("echo \"{TAG} end\"\n"));
    vec!["bash".into(), "-c".into(), s]
}

/// Judge the output of [`check_argv`]: `Ok` when nothing is missing.
pub fn judge(image: &ImageRef<'_>, out: &CommandResult) -> Result<()> {
    let mut missing = Vec::new();
    let mut ended = false;
    for line in out.stdout.lines() {
        let Some(rest) = line.strip_prefix(TAG) else {
            continue;
        };
        let mut words = rest.trim().splitn(2, ' ');
        match (words.next(), words.next()) {
            (Some("end"), _) => ended = true,
            (Some("missing-command"), Some(c)) => missing.push(format!("`{c}` not found")),
            (Some("no-kill-after"), _) => missing.push(
                "`timeout` is not GNU timeout (`timeout --kill-after` fails; busybox's lacks it)"
                    .to_string(),
            ),
            (Some("missing-path"), Some(p)) => missing.push(format!("{p} missing")),
            _ => {}
        }
    }
    if !ended {
        let why = out
            .stderr
            .lines()
            .chain(out.stdout.lines())
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no output");
        missing.insert(
            0,
            format!(
                "`bash` could not run the check (exit {}: {})",
                out.exit_code,
                crate::one_line(why)
            ),
        );
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(BackendError::ImageContract {
        backend: image.backend.to_string(),
        image: image.image.to_string(),
        missing: missing.join(", "),
        remedy: image.remedy.to_string(),
    })
}

/// The (image id, requirements) pairs that passed the check, per backend.
#[derive(Debug, Default)]
pub struct ContractCache {
    passed: Mutex<HashSet<String>>,
}

impl ContractCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Check `image` against the baseline plus `extra` unless that passed before; `run` executes
    /// the check's argv in a sandbox of the image and returns its result.
    pub async fn ensure<F, Fut>(
        &self,
        image: &ImageRef<'_>,
        extra: &Requirements,
        run: F,
    ) -> Result<()>
    where
        F: FnOnce(Vec<String>) -> Fut,
        Fut: Future<Output = Result<CommandResult>>,
    {
        let req = requirements(extra);
        let key = format!(
            "{}\n{}\n{}",
            image.id,
            req.commands.iter().cloned().collect::<Vec<_>>().join(" "),
            req.paths.iter().cloned().collect::<Vec<_>>().join(" ")
        );
        if self.lock().contains(&key) {
            return Ok(());
        }
        let out = run(check_argv(&req)).await?;
        judge(image, &out)?;
        tracing::debug!(image = image.image, id = image.id, "image contract checked");
        self.lock().insert(key);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.passed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn image() -> ImageRef<'static> {
        ImageRef {
            backend: "docker",
            image: "img:latest",
            id: "sha256:1",
            remedy: "rebuild it with `atp build-image`",
        }
    }

    /// Run the check with the host's bash, PATH limited to `dir` (bash itself is exec'd by
    /// absolute path, as an engine's PATH lookup would find it).
    fn run_in(dir: &std::path::Path, req: &Requirements) -> CommandResult {
        let argv = check_argv(req);
        let out = std::process::Command::new("bash")
            .args(&argv[1..])
            .env("PATH", dir)
            .output()
            .expect("bash runs");
        CommandResult {
            exit_code: i64::from(out.status.code().unwrap_or(-1)),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            duration: Duration::ZERO,
        }
    }

    fn link(dir: &std::path::Path, name: &str, to: &str) {
        std::os::unix::fs::symlink(to, dir.join(name)).expect("symlink");
    }

    fn which(name: &str) -> String {
        let out = std::process::Command::new("bash")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .expect("bash");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[test]
    fn a_complete_image_passes_and_each_gap_is_named_on_one_line() {
        let bin = tempfile::tempdir().expect("tmp");
        for c in ["timeout", "mkdir", "ln", "cat", "bash"] {
            link(bin.path(), c, &which(c));
        }
        let req =
            requirements(&Requirements::commands(["mktemp"]).with_paths(["/", "/nonexistent/x"]));
        let out = run_in(bin.path(), &req);
        let err = judge(&image(), &out).expect_err("gaps");
        let msg = err.to_string();
        assert_eq!(err.kind(), "image_contract");
        assert!(!msg.contains('\n'), "{msg}");
        assert!(msg.contains("`mktemp` not found"), "{msg}");
        assert!(msg.contains("/nonexistent/x missing"), "{msg}");
        assert!(!msg.contains("timeout"), "{msg}");
        assert!(
            msg.contains("img:latest") && msg.contains("atp build-image"),
            "{msg}"
        );

        link(bin.path(), "mktemp", &which("mktemp"));
        let req = requirements(&Requirements::commands(["mktemp"]).with_paths(["/"]));
        judge(&image(), &run_in(bin.path(), &req)).expect("complete");
    }

    #[test]
    fn a_timeout_without_kill_after_is_refused() {
        let bin = tempfile::tempdir().expect("tmp");
        for c in ["mkdir", "ln", "cat", "bash"] {
            link(bin.path(), c, &which(c));
        }
        // A `timeout` that, like busybox's, knows no long options.
        let fake = bin.path().join("timeout");
        std::fs::write(
            &fake,
            "#!/bin/sh\ncase \"$1\" in --*) echo 'Usage: timeout [-s SIG] [-k KILL_SECS] SECS PROG ARGS' >&2; exit 1;; esac\n",
        )
        .expect("w");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let msg = judge(
            &image(),
            &run_in(bin.path(), &requirements(&Requirements::default())),
        )
        .expect_err("busybox timeout")
        .to_string();
        assert!(msg.contains("not GNU timeout"), "{msg}");
    }

    #[test]
    fn a_check_that_did_not_run_is_a_contract_failure_not_a_pass() {
        let out = CommandResult {
            exit_code: 127,
            stdout: String::new(),
            stderr: "OCI runtime exec failed: exec: \"bash\": executable file not found in $PATH\n"
                .into(),
            duration: Duration::ZERO,
        };
        let msg = judge(&image(), &out).expect_err("no bash").to_string();
        assert!(
            msg.contains("`bash` could not run the check (exit 127"),
            "{msg}"
        );
        assert!(msg.contains("executable file not found"), "{msg}");
    }

    #[tokio::test]
    async fn passes_are_cached_per_image_id_and_requirements_failures_are_not() {
        let cache = ContractCache::new();
        let runs = AtomicUsize::new(0);
        let ok = |argv: Vec<String>| {
            runs.fetch_add(1, Ordering::SeqCst);
            assert_eq!(argv[0], "bash");
            async {
                Ok(CommandResult {
                    exit_code: 0,
                    stdout: format!("{TAG} end\n"),
                    stderr: String::new(),
                    duration: Duration::ZERO,
                })
            }
        };
        let none = Requirements::default();
        cache.ensure(&image(), &none, ok).await.expect("pass");
        cache.ensure(&image(), &none, ok).await.expect("cached");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let more = Requirements::commands(["lake"]);
        cache.ensure(&image(), &more, ok).await.expect("pass");
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "new requirements are checked"
        );
        let other = ImageRef {
            id: "sha256:2",
            ..image()
        };
        cache.ensure(&other, &none, ok).await.expect("pass");
        assert_eq!(runs.load(Ordering::SeqCst), 3, "a new image id is checked");

        let fails = AtomicUsize::new(0);
        let bad = |_argv: Vec<String>| {
            fails.fetch_add(1, Ordering::SeqCst);
            async {
                Ok(CommandResult {
                    exit_code: 0,
                    stdout: format!("{TAG} missing-command mktemp\n{TAG} end\n"),
                    stderr: String::new(),
                    duration: Duration::ZERO,
                })
            }
        };
        let third = ImageRef {
            id: "sha256:3",
            ..image()
        };
        assert!(cache.ensure(&third, &none, bad).await.is_err());
        assert!(cache.ensure(&third, &none, bad).await.is_err());
        assert_eq!(
            fails.load(Ordering::SeqCst),
            2,
            "a failure is checked again"
        );
    }
}
