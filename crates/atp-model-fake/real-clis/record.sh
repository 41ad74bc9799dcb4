#!/usr/bin/env bash
# Record the real CLIs' transcripts into fixtures/transcripts/<cli>/<scenario>.jsonl (stdout)
# and <scenario>.stderr.txt (stderr, when not empty), for every CLI that is installed.
#
#   real-clis/record.sh [CLI...]      (default: all of claude_code codex opencode vibe axprover kimi)
#
# Same environment variables as run.sh. Work directories go to ${ATP_REAL_CLI_WORK:-/tmp/atp-real-cli}.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
work="${ATP_REAL_CLI_WORK:-/tmp/atp-real-cli}"
clis=("$@")
[ ${#clis[@]} -gt 0 ] || clis=(claude_code codex opencode vibe axprover kimi)
for cli in "${clis[@]}"; do
  for scenario in solve auth_401; do
    out="$work/$cli/$scenario"
    "$here/run.sh" "$cli" "$scenario" "$out"
    dest="$root/fixtures/transcripts/$cli"
    mkdir -p "$dest"
    cp "$out/stdout.jsonl" "$dest/$scenario.jsonl"
    if [ -s "$out/stderr.txt" ]; then
      cp "$out/stderr.txt" "$dest/$scenario.stderr.txt"
    else
      rm -f "$dest/$scenario.stderr.txt"
    fi
    if [ -s "$out/wire.jsonl" ]; then
      cp "$out/wire.jsonl" "$dest/$scenario.wire.jsonl"
    fi
  done
done
