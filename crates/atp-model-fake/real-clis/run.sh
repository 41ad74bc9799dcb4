#!/usr/bin/env bash
# Run ONE real agent CLI against atp-model-fake on loopback, in a fresh project holding a Lean
# file with `sorry`, and keep everything it printed.
#
#   real-clis/run.sh CLI SCENARIO OUTDIR
#
#   CLI       claude_code | codex | opencode | vibe | axprover | kimi
#   SCENARIO  solve | auth_401   (the fake script is fixtures/transcripts/scripts/<SCENARIO>.json,
#             axprover_<SCENARIO>.json for axprover when it exists)
#   OUTDIR    created; receives proj/ (the project after the run), home/, stdout.jsonl,
#             stderr.txt, exit_code, requests.jsonl (what the fake recorded), fake.log
#
# Where the CLIs are (not installed by this script; see real-clis/README.md):
#   ATP_AGENTS_NPM   npm prefix with @anthropic-ai/claude-code, @openai/codex, opencode-ai
#                    (default /tmp/agents-npm)
#   ATP_VIBE         the `vibe` executable (default /tmp/vibe-venv/bin/vibe)
#   ATP_AX_PYTHON    a python with ax-prover installed (default /tmp/ax-venv/bin/python)
#   ATP_KIMI_NPM     npm prefix with @moonshot-ai/kimi-code (default /tmp/kimi-npm)
#   ATP_NODE22       a Node >= 22.19 binary for Kimi Code (default /tmp/node22/package/bin/node)
#   ATP_MODEL_FAKE   the fake's binary (default target/debug/atp-model-fake of this workspace)
#
# Nothing here reaches beyond 127.0.0.1: every CLI is pointed at the fake, HOME is private to
# OUTDIR, and ax-prover's network tools are switched off.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cli="${1:?usage: run.sh CLI SCENARIO OUTDIR}"
scenario="${2:?usage: run.sh CLI SCENARIO OUTDIR}"
out="${3:?usage: run.sh CLI SCENARIO OUTDIR}"

npm_prefix="${ATP_AGENTS_NPM:-/tmp/agents-npm}"
vibe_bin="${ATP_VIBE:-/tmp/vibe-venv/bin/vibe}"
ax_python="${ATP_AX_PYTHON:-/tmp/ax-venv/bin/python}"
fake_bin="${ATP_MODEL_FAKE:-$root/target/debug/atp-model-fake}"
nm="$npm_prefix/node_modules"
claude="$nm/@anthropic-ai/claude-code-linux-x64/claude"
codex="$nm/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"
opencode="$nm/opencode-linux-x64/bin/opencode"
kimi_main="${ATP_KIMI_NPM:-/tmp/kimi-npm}/node_modules/@moonshot-ai/kimi-code/dist/main.mjs"
node22="${ATP_NODE22:-/tmp/node22/package/bin/node}"

script="$root/fixtures/transcripts/scripts/$scenario.json"
if [ "$cli" = axprover ] && [ -f "$root/fixtures/transcripts/scripts/axprover_$scenario.json" ]; then
  script="$root/fixtures/transcripts/scripts/axprover_$scenario.json"
fi
[ -f "$script" ] || { echo "run.sh: no fake script $script" >&2; exit 2; }
[ -x "$fake_bin" ] || { echo "run.sh: no fake binary $fake_bin; run cargo build -p atp-model-fake" >&2; exit 2; }

rm -rf "$out"
mkdir -p "$out/proj" "$out/home"
out="$(cd "$out" && pwd)"
proj="$out/proj"
printf 'theorem t : 1 + 1 = 2 := by\n  sorry\n' > "$proj/Main.lean"
prompt="Complete the proof in Main.lean"

"$fake_bin" --script "$script" --record "$out/requests.jsonl" > "$out/fake.url" 2> "$out/fake.log" &
fake_pid=$!
trap 'kill "$fake_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$out/fake.url" ] && break; sleep 0.05; done
url="$(head -1 "$out/fake.url")"
[ -n "$url" ] || { echo "run.sh: the fake did not start: $(cat "$out/fake.log")" >&2; exit 2; }

run() { # the CLI's command line; stdout/stderr/exit code kept
  set +e
  (cd "$proj" && env -i PATH="/usr/local/bin:/usr/bin:/bin" HOME="$out/home" LANG=C.UTF-8 "$@") \
    > "$out/stdout.jsonl" 2> "$out/stderr.txt" < /dev/null
  echo $? > "$out/exit_code"
  set -e
}

case "$cli" in
  claude_code)
    # CLAUDE_CODE_MAX_RETRIES=1: a refused key is retried 10 times with backoff (~2.5 min)
    # by default; one retry keeps the auth scenario short and shows the same events.
    run timeout 300 env ANTHROPIC_BASE_URL="$url" ANTHROPIC_API_KEY=fake-key IS_SANDBOX=1 \
      CLAUDE_CODE_MAX_RETRIES=1 \
      "$claude" -p "$prompt" --output-format stream-json --verbose \
      --permission-mode bypassPermissions --model claude-opus-4-8
    ;;
  codex)
    mkdir -p "$out/home/.codex"
    run timeout 300 env OPENAI_API_KEY=fake-key CODEX_HOME="$out/home/.codex" \
      "$codex" exec --json --skip-git-repo-check --sandbox danger-full-access --model gpt-5.5 \
      -c 'model_provider="fake"' -c 'model_providers.fake.name="fake"' \
      -c "model_providers.fake.base_url=\"$url/v1\"" \
      -c 'model_providers.fake.env_key="OPENAI_API_KEY"' \
      -c 'model_providers.fake.wire_api="responses"' "$prompt"
    ;;
  opencode)
    cat > "$proj/opencode.json" <<EOF
{"\$schema": "https://opencode.ai/config.json",
 "provider": {"anthropic": {"options": {"baseURL": "$url/v1", "apiKey": "fake-key"}}}}
EOF
    run timeout 300 "$opencode" run --dir "$proj" --format json \
      --model anthropic/claude-opus-4-8 "$prompt"
    ;;
  vibe)
    mkdir -p "$proj/.vibe"
    cat > "$proj/.vibe/config.toml" <<EOF
active_model = "fake"
bypass_tool_permissions = true
enable_telemetry = false

[[providers]]
name = "mistral"
api_base = "$url/v1"
api_key_env_var = "MISTRAL_API_KEY"
backend = "mistral"

[[models]]
name = "magistral-medium-latest"
provider = "mistral"
alias = "fake"
EOF
    run timeout 300 env VIBE_HOME="$proj/.vibe" MISTRAL_API_KEY=fake-key \
      "$vibe_bin" -p "$prompt" --output streaming --workdir "$proj" --trust
    ;;
  axprover)
    # ax-prover's CLI needs Lean and the Lean REPL before its first model call; its LLM layer
    # is driven directly, once per provider (Anthropic Messages, OpenAI Responses).
    set +e
    : > "$out/stdout.jsonl"; : > "$out/stderr.txt"; code=0
    for model in anthropic:claude-opus-4-8 openai:gpt-5.5; do
      (cd "$proj" && env -i PATH="/usr/local/bin:/usr/bin:/bin" HOME="$out/home" \
        ANTHROPIC_API_KEY=fake-key OPENAI_API_KEY=fake-key \
        ANTHROPIC_BASE_URL="$url" OPENAI_BASE_URL="$url/v1" \
        timeout 120 "$ax_python" "$here/axprover_llm.py" "$model") \
        >> "$out/stdout.jsonl" 2>> "$out/stderr.txt" < /dev/null || code=$?
    done
    echo "$code" > "$out/exit_code"
    set -e
    ;;
  kimi)
    # Logged in as `KIMI_CODE_BASE_URL=<fake>/coding/v1 KIMI_CODE_OAUTH_HOST=<fake> kimi login`
    # leaves it: the token file scoped to that endpoint (kimi-code-env-<sha256(host, base)[:16]>),
    # config.toml with the managed provider and its kimi-code/k3 alias. Telemetry off; a refused
    # token is refreshed at the fake's /api/oauth/token (404), never on the internet.
    kh="$out/home/.kimi-code"
    mkdir -p "$kh/credentials"
    base="$url/coding/v1"
    token="kimi-code-env-$(printf '{"oauthHost":"%s","baseUrl":"%s"}' "$url" "$base" | sha256sum | cut -c1-16)"
    printf '{"access_token":"fake-access","refresh_token":"fake-refresh","expires_at":4102444800,"scope":"","token_type":"Bearer","expires_in":900}\n' \
      > "$kh/credentials/$token.json"
    cat > "$kh/config.toml" <<EOF
default_model = "kimi-code/k3"

[providers."managed:kimi-code"]
type = "kimi"
base_url = "$base"
api_key = ""

[providers."managed:kimi-code".oauth]
storage = "file"
key = "oauth/kimi-code"

[models."kimi-code/k3"]
provider = "managed:kimi-code"
model = "k3"
max_context_size = 262144
capabilities = ["thinking"]
EOF
    run timeout 300 env KIMI_CODE_HOME="$kh" KIMI_CODE_BASE_URL="$base" KIMI_CODE_OAUTH_HOST="$url" \
      KIMI_DISABLE_TELEMETRY=1 KIMI_DISABLE_CRON=1 KIMI_CODE_NO_AUTO_UPDATE=1 \
      KIMI_MODEL_THINKING_EFFORT=high \
      "$node22" "$kimi_main" -p "$prompt" --model kimi-code/k3 --output-format stream-json
    wire="$(find "$kh/sessions" -path '*/agents/main/wire.jsonl' 2>/dev/null | head -1)"
    [ -z "$wire" ] || cp "$wire" "$out/wire.jsonl"
    ;;
  *) echo "run.sh: unknown CLI $cli (claude_code, codex, opencode, vibe, axprover, kimi)" >&2; exit 2 ;;
esac

kill -TERM "$fake_pid" 2>/dev/null || true
wait "$fake_pid" 2>/dev/null || true
trap - EXIT
echo "$cli/$scenario: exit $(cat "$out/exit_code"), $(grep -c '' "$out/requests.jsonl" || true) requests"
