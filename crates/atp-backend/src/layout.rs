//! The sandbox layout every backend shares, and the wrapping of every command.
//!
//! Invariant: a command given to [`crate::ComputeSession::exec`] runs as
//! `timeout --kill-after=<grace> <budget> bash -lc '<prelude>; <command>'` where the prelude
//! enters [`WORKDIR`] and links the warm cache [`LAKE_CACHE`] as the workdir's `.lake` when the
//! image has one. The outer shell is `bash` too — never `sh`, whose `timeout` may be a builtin
//! applet without `--kill-after` (busybox) — and records its pid (the process group of
//! `timeout`) under [`PID_DIR`] so that [`cancel_script`] can kill the whole command tree from a
//! second exec. What an image must provide for this is [`crate::contract`]'s baseline.

use std::time::Duration;

/// Where the host working directory appears inside every sandbox.
pub const WORKDIR: &str = "/workspace/wd";
/// Where an image bakes its warm build cache (linked as `WORKDIR/.lake` before each command).
pub const LAKE_CACHE: &str = "/workspace/.lake";
/// Where the per-exec pid files live inside a sandbox.
pub const PID_DIR: &str = "/tmp/.atp-exec";
/// Label (Docker) / tag (Modal) carrying the run id of the atp process that created a sandbox.
pub const LABEL_RUN_ID: &str = "atp.run-id";
/// Label / tag present (value `true`) on every sandbox atp creates.
pub const LABEL_MANAGED: &str = "atp.managed";
/// Label / tag naming what a sandbox is for when it is not the run's main work (e.g.
/// `self-test` for the verifier's canaries), so tools and tests can tell them apart.
pub const LABEL_PURPOSE: &str = "atp.purpose";
/// Default grace between SIGTERM and SIGKILL when a command exceeds its budget.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(30);
/// Default command budget when neither the exec nor the session sets one.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(1800);
/// Client-side margin past budget + grace after which a silent exec is an infrastructure stall.
pub const DEFAULT_BACKSTOP_MARGIN: Duration = Duration::from_secs(60);
/// Exit status of GNU `timeout` when the budget elapsed and SIGTERM ended the command.
pub const TIMEOUT_EXIT: i64 = 124;
/// Exit status of GNU `timeout` when the command ignored SIGTERM and was killed after the grace.
pub const TIMEOUT_KILLED_EXIT: i64 = 137;

/// The commands [`exec_argv`], [`prelude`] and [`cancel_script`] run (besides bash builtins).
pub const WRAPPER_COMMANDS: &[&str] = &["bash", "timeout", "mkdir", "ln", "cat"];

/// Quote `s` for a POSIX shell as one word.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The prelude run before every command: enter the workdir, link the warm cache if present.
pub fn prelude() -> String {
    format!("cd {WORKDIR} && {{ [ -e {LAKE_CACHE} ] && ln -sfn {LAKE_CACHE} .lake || true; }}")
}

fn secs(d: Duration) -> String {
    // GNU timeout accepts fractional seconds; keep millisecond precision.
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}", ms / 1000)
    } else {
        format!("{}.{:03}", ms / 1000, ms % 1000)
    }
}

/// The argv a backend hands to its engine for one exec with id `exec_id`.
///
/// The outer `bash` writes its pid, then `exec`s GNU `timeout` (found on `PATH` by bash, so a
/// shell's own applet can never stand in for it), which makes itself a process group leader;
/// [`cancel_script`] kills that group.
pub fn exec_argv(exec_id: &str, command: &str, budget: Duration, grace: Duration) -> Vec<String> {
    let inner = format!("{}; {}", prelude(), command);
    let script = format!(
        "mkdir -p {PID_DIR} 2>/dev/null; echo $$ > {PID_DIR}/{exec_id}.pid 2>/dev/null; \
         exec timeout --kill-after={} {} bash -lc {}",
        secs(grace),
        secs(budget),
        shell_quote(&inner)
    );
    vec!["bash".into(), "-c".into(), script]
}

/// A script that kills the command tree of exec `exec_id` (run as a second exec).
pub fn cancel_script(exec_id: &str) -> Vec<String> {
    let script = format!(
        "p=$(cat {PID_DIR}/{exec_id}.pid 2>/dev/null) && [ -n \"$p\" ] && \
         {{ kill -KILL -- -$p 2>/dev/null; kill -KILL $p 2>/dev/null; }}; true"
    );
    vec!["bash".into(), "-c".into(), script]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trips_through_sh() {
        let cases = ["plain", "it's", "a b", "$HOME", "", "x'y'z", "ü"];
        for c in cases {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(c)))
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&out.stdout), c);
        }
    }

    #[test]
    fn argv_wraps_in_timeout_and_bash() {
        let argv = exec_argv(
            "e1",
            "echo hi",
            Duration::from_millis(2500),
            Duration::from_secs(3),
        );
        assert_eq!(argv[0], "bash");
        assert!(argv[2].contains("exec timeout --kill-after=3 2.500 bash -lc "));
        assert!(argv[2].contains("/tmp/.atp-exec/e1.pid"));
        assert!(argv[2].contains("ln -sfn /workspace/.lake .lake"));
        assert!(argv[2].ends_with("echo hi'"));
    }
}
