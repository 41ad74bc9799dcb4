//! The bash scripts the verifier runs in its sandboxes, and the framing of what they print.
//!
//! Three scripts, each fed through stdin and run by `bash`:
//! - the **build** script (in the build sandbox, where the candidate's code runs when Lean
//!   elaborates it): compiles every file's [compile copy](crate::staging) to an `.olean`;
//! - the **original** script (in the check sandbox, before any candidate byte is there):
//!   compiles the trusted original the same way;
//! - the **check** script (same check sandbox): writes the candidate's `.olean`s as data and runs
//!   the checker (`atp-check`, built into the image) over both.
//!
//! Framing: each compile's output goes to its own file; only after that compiler has exited does
//! the script print one line for it, `FILE <i> <exit> <base64 of the output>` (then
//! `OLEAN <i> <base64>` when it compiled). A script prints a header line first (`ATP-BUILD 1`,
//! `ATP-ORIG 1`, `ATP-CHECK 1`) and `END <count>` last, and exits 0. No nonce exists: the framing
//! is structural and whatever a compiled file prints stays inside its base64 field, so a
//! candidate cannot forge a frame through its compiler output, and nothing a candidate could
//! write into the build sandbox can reach the check sandbox except its `.olean` bytes, which the
//! checker treats as untrusted data. See [`parse_frames`].

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;

use crate::check::module_name;
use atp_lean::source::parse;

/// The image's Lean project (skeleton + warm Mathlib cache) every compile runs in.
pub const SKELETON_DIR: &str = "/workspace";
/// The checker's command inside the image (on `PATH`; `images/open-atp.toml` installs it).
pub const CHECKER: &str = "atp-check";
/// Tools the scripts need in the image, besides `bash` and `lake`.
pub const SCRIPT_TOOLS: &[&str] = &[
    "mktemp", "base64", "tr", "cat", "mkdir", "dirname", "mv", "rm", "sleep", "nproc",
];
/// The script's first lines: stop with one line naming a missing tool before anything runs.
fn preamble() -> String {
    format!(
        "set +e\nfor t in {tools} lake; do command -v \"$t\" >/dev/null 2>&1 || {{ echo \"atp: the sandbox image lacks \\`$t\\` (the verifier needs {tools}, lake, bash) — rebuild it with \\`atp build-image\\`\" >&2; exit 3; }}; done\n",
        tools = SCRIPT_TOOLS.join(" ")
    )
}

/// Working directory of the check sandbox (fresh, ours alone).
const CHECK_DIR: &str = "/tmp/atp-check";

const B64_END: &str = "ATP_B64_END";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A heredoc that writes `bytes` to `path` (a shell word).
fn write_file(path: &str, bytes: &[u8]) -> String {
    let enc = b64(bytes);
    let mut s =
        format!("mkdir -p \"$(dirname \"{path}\")\"\nbase64 -d > \"{path}\" <<'{B64_END}'\n");
    for chunk in enc.as_bytes().chunks(76) {
        s.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        s.push('\n');
    }
    s.push_str(B64_END);
    s.push('\n');
    s
}

/// Dependency waves: files whose project-local imports are all in earlier waves.
pub fn waves(sources: &BTreeMap<String, String>) -> Vec<Vec<String>> {
    let modules: BTreeMap<String, String> = sources
        .keys()
        .map(|k| (module_name(k), k.clone()))
        .collect();
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, src) in sources {
        let d: BTreeSet<String> = parse(src)
            .imports
            .into_iter()
            .filter_map(|m| modules.get(&m).cloned())
            .filter(|r| r != rel)
            .collect();
        deps.insert(rel.clone(), d);
    }
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    while done.len() < sources.len() {
        let wave: Vec<String> = sources
            .keys()
            .filter(|r| !done.contains(*r))
            .filter(|r| deps[*r].iter().all(|d| done.contains(d)))
            .cloned()
            .collect();
        let wave = if wave.is_empty() {
            // an import cycle: Lean reports it; compile the rest together
            sources
                .keys()
                .filter(|r| !done.contains(*r))
                .cloned()
                .collect()
        } else {
            wave
        };
        done.extend(wave.iter().cloned());
        out.push(wave);
    }
    out
}

/// The shared compile machinery: write the copies under `$T/src`, compile them in waves with at
/// most `$W` processes into `$T/lib`, print a frame (tag `tag`) per file as its compiler exits.
fn compile_body(
    copies: &BTreeMap<String, String>,
    workers: Option<usize>,
    tag: &str,
    ship_oleans: bool,
) -> String {
    let mut s = String::new();
    let w = workers
        .map(|w| w.max(1).to_string())
        .unwrap_or_else(|| "0".into());
    s.push_str(&format!(
        "W={w}\nif [ \"$W\" = 0 ]; then W=$(nproc 2>/dev/null || echo 1); fi\n"
    ));
    s.push_str("mkdir -p \"$T/src\" \"$T/lib\" \"$T/out\" || exit 3\n");
    let index: BTreeMap<&String, usize> = copies.keys().enumerate().map(|(i, k)| (k, i)).collect();
    for (rel, text) in copies {
        s.push_str(&write_file(&format!("$T/src/{rel}"), text.as_bytes()));
    }
    let olean_line = if ship_oleans {
        "    if [ \"$rc\" = 0 ] && [ -f \"$T/lib/${rel%.lean}.olean\" ]; then\n      echo \"OLEAN $i $(base64 < \"$T/lib/${rel%.lean}.olean\" | tr -d '\\n')\"\n    fi\n"
    } else {
        ""
    };
    s.push_str(&format!(
        r#"run_one() {{
  i=$1; rel=$2
  mkdir -p "$(dirname "$T/lib/$rel")"
  ( cd {SKELETON_DIR} 2>/dev/null; LEAN_PATH="$T/lib${{LEAN_PATH:+:$LEAN_PATH}}" lake env lean --root="$T/src" -o "$T/lib/${{rel%.lean}}.olean" "$T/src/$rel" ) < /dev/null > "$T/out/$i.log" 2>&1
  echo $? > "$T/out/$i.rc.tmp"; mv "$T/out/$i.rc.tmp" "$T/out/$i.rc"
}}
RUNNING=""
flush() {{
  keep=""
  for e in $RUNNING; do
    i=${{e%%:*}}; rel=${{e#*:}}
    if [ -f "$T/out/$i.rc" ]; then
      rc=$(cat "$T/out/$i.rc")
      echo "{tag} $i $rc $(base64 < "$T/out/$i.log" | tr -d '\n')"
{olean_line}    else
      keep="$keep $e"
    fi
  done
  RUNNING=$keep
}}
count() {{ set -- $RUNNING; echo $#; }}
start() {{
  while [ "$(count)" -ge "$W" ]; do wait -n 2>/dev/null || sleep 0.05; flush; done
  run_one "$1" "$2" &
  RUNNING="$RUNNING $1:$2"
}}
drain() {{
  while [ "$(count)" -gt 0 ]; do wait -n 2>/dev/null || sleep 0.05; flush; done
}}
"#
    ));
    for wave in waves(copies) {
        for rel in wave {
            s.push_str(&format!(
                "start {} {}\n",
                index[&rel],
                atp_backend::layout::shell_quote(&rel)
            ));
        }
        s.push_str("drain\n");
    }
    s.push_str(&format!("echo \"END {}\"\nexit 0\n", copies.len()));
    s
}

/// The build script over the candidate's compile copies (`rel → text`).
pub fn build_script(copies: &BTreeMap<String, String>, workers: Option<usize>) -> String {
    let mut s = preamble();
    s.push_str(
        "T=$(mktemp -d /tmp/atp-build-XXXXXX) || { echo 'atp: mktemp failed in the sandbox' >&2; exit 3; }\n",
    );
    s.push_str("trap 'rm -rf \"$T\"' EXIT\n");
    s.push_str("echo 'ATP-BUILD 1'\n");
    s.push_str(&compile_body(copies, workers, "FILE", true));
    s
}

/// The original script: compiles the original's copies into the check sandbox's `$T/lib`,
/// where the check script finds them.
pub fn original_script(copies: &BTreeMap<String, String>, workers: Option<usize>) -> String {
    let mut s = preamble();
    s.push_str(&format!(
        "T={CHECK_DIR}/orig\nrm -rf \"$T\"; mkdir -p \"$T\" || {{ echo 'atp: cannot create {CHECK_DIR}' >&2; exit 3; }}\n"
    ));
    s.push_str("echo 'ATP-ORIG 1'\n");
    s.push_str(&compile_body(copies, workers, "ORIG", false));
    s
}

/// The check script: the candidate's `.olean`s (`module path → bytes`, `A/B` for `A.B`) as data,
/// then the checker over the given modules.
pub fn check_script(
    cand_oleans: &BTreeMap<String, Vec<u8>>,
    orig_modules: &[String],
    allow_native: bool,
) -> String {
    let mut s = preamble();
    s.push_str(&format!(
        "T={CHECK_DIR}\nrm -rf \"$T/cand\"; mkdir -p \"$T/cand\" || {{ echo 'atp: cannot create {CHECK_DIR}' >&2; exit 3; }}\n"
    ));
    s.push_str("echo 'ATP-CHECK 1'\n");
    for (path, bytes) in cand_oleans {
        s.push_str(&write_file(&format!("$T/cand/{path}.olean"), bytes));
    }
    let mut args = "--cand-root \"$T/cand\"".to_string();
    if !orig_modules.is_empty() {
        args.push_str(" --orig-root \"$T/orig/lib\"");
        for m in orig_modules {
            args.push_str(&format!(" --orig {}", atp_backend::layout::shell_quote(m)));
        }
    }
    for path in cand_oleans.keys() {
        let m = path.replace('/', ".");
        args.push_str(&format!(" --cand {}", atp_backend::layout::shell_quote(&m)));
    }
    if allow_native {
        args.push_str(" --allow-native");
    }
    s.push_str(&format!(
        "( cd {SKELETON_DIR} 2>/dev/null; lake env {CHECKER} {args} ) < /dev/null > \"$T/check.out\" 2> \"$T/check.err\"\nrc=$?\n"
    ));
    s.push_str("echo \"CHECKER $rc $(base64 < \"$T/check.out\" | tr -d '\\n') $(base64 < \"$T/check.err\" | tr -d '\\n')\"\n");
    s.push_str("echo 'END 1'\nexit 0\n");
    s
}

/// The command that runs a script fed through stdin (no temporary-file tool needed).
pub const RUN_STDIN_SCRIPT: &str =
    "f=/tmp/atp-verify-$$.sh; cat > \"$f\" && bash \"$f\"; rc=$?; rm -f \"$f\"; exit $rc";

/// One `FILE`/`ORIG` frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileFrame {
    pub exit_code: i64,
    /// The compiler's output, as printed.
    pub output: String,
}

/// What one script printed, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frames {
    /// Per file index.
    pub files: BTreeMap<usize, FileFrame>,
    /// `.olean` bytes per file index (build script only).
    pub oleans: BTreeMap<usize, Vec<u8>>,
    /// `CHECKER <exit> <stdout> <stderr>` (check script only).
    pub checker: Option<(i64, String, String)>,
    /// Whether the `END` line came (the script ran to its end).
    pub complete: bool,
}

fn decode(field: &str, what: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(field.trim())
        .map_err(|e| format!("{what}: bad base64 ({e})"))
}

/// Parse a script's stdout strictly: the header `header`, then only `FILE`/`ORIG`/`OLEAN`/
/// `CHECKER` lines with well-formed fields, each file index at most once and below `files`, then
/// `END <n>` as the last line. When `cut_short` (the budget elapsed), a missing `END` and a
/// truncated last line are accepted. Any other deviation is an error: the output was not what
/// the script prints.
pub fn parse_frames(
    stdout: &str,
    header: &str,
    files: usize,
    cut_short: bool,
) -> Result<Frames, String> {
    let mut out = Frames::default();
    let lines: Vec<&str> = stdout.lines().collect();
    let Some(first) = lines.first() else {
        return if cut_short {
            Ok(out)
        } else {
            Err("the script printed nothing".into())
        };
    };
    if *first != header {
        return Err(format!("the script's first line is not `{header}`"));
    }
    for (n, line) in lines.iter().enumerate().skip(1) {
        let last = n + 1 == lines.len();
        if out.complete {
            return Err("output after the END line".into());
        }
        let parts: Vec<&str> = line.splitn(4, ' ').collect();
        let idx = |s: &str| -> Result<usize, String> {
            s.parse::<usize>()
                .ok()
                .filter(|&i| i < files)
                .ok_or_else(|| format!("bad file index `{s}`"))
        };
        let res: Result<(), String> = match parts.as_slice() {
            ["FILE" | "ORIG", i, rc, log] => (|| {
                let i = idx(i)?;
                let exit_code = rc.parse().map_err(|_| format!("bad exit status `{rc}`"))?;
                let output = String::from_utf8_lossy(&decode(log, "compiler output")?).into_owned();
                if out
                    .files
                    .insert(i, FileFrame { exit_code, output })
                    .is_some()
                {
                    return Err(format!("file {i} framed twice"));
                }
                Ok(())
            })(),
            ["OLEAN", i, data] => (|| {
                let i = idx(i)?;
                if out.files.get(&i).is_none_or(|f| f.exit_code != 0) {
                    return Err(format!("an .olean for file {i}, which did not compile"));
                }
                if out.oleans.insert(i, decode(data, ".olean")?).is_some() {
                    return Err(format!("file {i}'s .olean framed twice"));
                }
                Ok(())
            })(),
            ["CHECKER", rc, o, e] => (|| {
                let rc = rc
                    .parse()
                    .map_err(|_| format!("bad checker status `{rc}`"))?;
                let o = String::from_utf8_lossy(&decode(o, "checker stdout")?).into_owned();
                let e = String::from_utf8_lossy(&decode(e, "checker stderr")?).into_owned();
                if out.checker.replace((rc, o, e)).is_some() {
                    return Err("the checker framed twice".into());
                }
                Ok(())
            })(),
            ["END", n] => {
                if n.parse::<usize>().ok() == Some(if header == "ATP-CHECK 1" { 1 } else { files })
                {
                    out.complete = true;
                    Ok(())
                } else {
                    Err(format!("END {n} does not match"))
                }
            }
            _ => Err(format!("unexpected line {}", n + 1)),
        };
        if let Err(e) = res {
            if cut_short && last {
                break;
            }
            return Err(e);
        }
    }
    if !out.complete && !cut_short {
        return Err("the output ends without its END line".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
