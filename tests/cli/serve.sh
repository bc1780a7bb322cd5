#!/usr/bin/env bash
# `kiln serve` as a process: flags and their errors, a model that fails to
# load, the test backend over HTTP with curl (auth from the environment,
# JSON logs, a job and a chat completion), SIGTERM giving exit 0, a busy port
# giving exit 1, and the tiny golden llama model served for real.
# usage: serve.sh KILN SHARED_DATA_DIR TMP_DIR
set -u
kiln=$1 tmp=$3/cli-serve
mkdir -p "$tmp"
command -v curl >/dev/null || { echo "curl not installed: skipped"; exit 77; }
. "$(dirname "$0")/../cli_lib.sh"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; }
trap cleanup EXIT



expect "help" 0 "usage: kiln serve" -- "$kiln" serve --help
expect "listed in kiln help" 0 "serve" -- "$kiln" --help
expect "unknown flag" 2 "unknown option '--bogus'" -- "$kiln" serve --bogus
expect "bad port" 2 "--port: '99999'" -- "$kiln" serve --fake-model --port 99999
expect "bad env" 2 "KILN_QUEUE: 'many'" -- env KILN_QUEUE=many "$kiln" serve --fake-model
expect "no model" 2 "no model" -- "$kiln" serve
expect "both" 2 "not both" -- "$kiln" serve --fake-model -m x.gguf
expect "bad hive url" 1 "https is not supported" -- "$kiln" serve --fake-model --port 0 --hive-url https://hive
# A model that cannot be loaded: the port is bound first, then the load
# fails and the process exits 1 with the reason.
expect "missing model" 1 "model load failed: .*absent.gguf" -- "$kiln" serve -m "$tmp/absent.gguf" --port 0

# start_server LOG ARGS...: start in the background; sets pid and port.
start_server() {
  local log=$1
  shift
  "$kiln" serve "$@" >"$log" 2>&1 &
  pid=$!
  pids+=("$pid")
  port=""
  for _ in $(seq 100); do
    port=$(grep -oE 'listening on http://127\.0\.0\.1:[0-9]+' "$log" | grep -oE '[0-9]+$')
    [ -n "$port" ] && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

export KILN_API_KEY=cli-secret
if ! start_server "$tmp/serve.log" --fake-model --port 0 --log-format json --fake-token-ms 1; then
  fail "server did not start"; cat "$tmp/serve.log"; exit 1
fi
unset KILN_API_KEY
base=http://127.0.0.1:$port
auth=(-H "Authorization: Bearer cli-secret")

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[ "$(code "$base/health")" = 200 ] && pass || fail "/health"
for _ in $(seq 100); do [ "$(code "${auth[@]}" "$base/ready")" = 200 ] && break; sleep 0.05; done
[ "$(code "${auth[@]}" "$base/ready")" = 200 ] && pass || fail "/ready with the key"
[ "$(code "$base/ready")" = 401 ] && pass || fail "/ready without the key must be 401"
[ "$(code -H "Authorization: Bearer nope" "$base/v1/models")" = 401 ] && pass || fail "wrong key must be 401"

job=$(curl -s "${auth[@]}" -d '{"operation":"infer","prompt":"hello","max_tokens":4}' "$base/v1/jobs")
id=$(grep -oE 'job-[0-9a-f]{32}' <<<"$job" | head -1)
[ -n "$id" ] && pass || fail "POST /v1/jobs: $job"
stream=$(curl -sN "${auth[@]}" "$base/v1/jobs/$id/stream")
[ "$(grep -c '"type":"token"' <<<"$stream")" = 4 ] && pass || fail "stream tokens: $stream"
grep -q '"stop_reason":"max_tokens"' <<<"$stream" && grep -q '^data: \[DONE\]' <<<"$stream" && pass || fail "stream end: $stream"
[ "$(code "${auth[@]}" "$base/v1/jobs/$id/stream")" = 409 ] && pass || fail "second reader must get 409"

chat=$(curl -s "${auth[@]}" -d '{"messages":[{"role":"user","content":"hi"}],"max_tokens":2}' "$base/v1/chat/completions")
grep -q '"object":"chat.completion"' <<<"$chat" && grep -q '"completion_tokens":2' <<<"$chat" && pass || fail "chat: $chat"
[ "$(code "${auth[@]}" -d '{"prompt":' "$base/v1/completions")" = 400 ] && pass || fail "malformed JSON must be 400"
curl -s "${auth[@]}" "$base/metrics" | grep -q 'kiln_http_requests_total{route="/v1/jobs",status="200"} 1' && pass || fail "metrics"

# The busy port: a second server fails to start.
expect "port in use" 1 "cannot listen" -- "$kiln" serve --fake-model --port "$port"

# SIGTERM: exit 0, promptly.
kill -TERM "$pid"
t0=$(date +%s%N)
wait "$pid"
rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$rc" -eq 0 ] && pass || fail "exit code after SIGTERM: $rc"
[ "$ms" -lt 5000 ] && pass || fail "stop took $ms ms"
# Every log line is JSON with ts, level and msg; each request was logged.
if grep -vqE '^\{"ts":"[^"]+","level":"[a-z]+","msg":".*"\}$' "$tmp/serve.log"; then
  fail "a log line is not JSON:"; grep -vE '^\{"ts":' "$tmp/serve.log" | head -3
else pass; fi
grep -q 'request id=[0-9]* POST /v1/jobs status=200 tokens_in=2' "$tmp/serve.log" && pass || fail "request log line"
grep -q 'stopped after' "$tmp/serve.log" && pass || fail "stop log line"

# A real (tiny, random) model from the repository's LLM goldens, if present.
model=$(cd "$(dirname "$0")/../.." && pwd)/tests/data/llm/llama/llama-q8_0.gguf
if [ -f "$model" ]; then
  if start_server "$tmp/serve-model.log" -m "$model" --port 0 --threads 2; then
    base=http://127.0.0.1:$port
    for _ in $(seq 200); do [ "$(code "$base/ready")" = 200 ] && break; sleep 0.05; done
    curl -s "$base/ready" | grep -q '"id":"llama-q8_0","family":"llama"' && pass || fail "model /ready: $(curl -s "$base/ready")"
    out=$(curl -s -d '{"prompt":"the cat sat","max_tokens":5,"temperature":0}' "$base/v1/completions")
    grep -q '"completion_tokens":5' <<<"$out" && pass || fail "model completion: $out"
    kill -TERM "$pid"
    wait "$pid" && pass || fail "model server exit code"
  else
    fail "model server did not start"; cat "$tmp/serve-model.log"
  fi
fi

# The bundled default model (models/): the rbee job protocol end to end, and
# a long job cancelled by DELETE.
model=$(cd "$(dirname "$0")/../.." && pwd)/models/fortune-llama-q8_0.gguf
if start_server "$tmp/serve-default.log" -m "$model" --port 0 --threads 2; then
  base=http://127.0.0.1:$port
  for _ in $(seq 200); do [ "$(code "$base/ready")" = 200 ] && break; sleep 0.05; done
  job=$(curl -s -d '{"operation":"infer","prompt":"A wise man once said","max_tokens":12,"temperature":0}' "$base/v1/jobs")
  url=$(grep -oE '"sse_url": *"[^"]*"' <<<"$job" | grep -oE '/v1/jobs/[^"]*')
  stream=$(curl -s -N --max-time 30 "$base$url")
  grep -q '"type":"started"' <<<"$stream" && pass || fail "default model: started event: $stream"
  [ "$(grep -c '"type":"token"' <<<"$stream")" -eq 12 ] && pass || fail "default model: 12 token events"
  grep -q '"stop_reason":"max_tokens"' <<<"$stream" && pass || fail "default model: end event"
  grep -q '^data: \[DONE\]' <<<"$stream" && pass || fail "default model: [DONE]"
  long=$(curl -s -d '{"operation":"infer","prompt":"Q:","max_tokens":200,"temperature":0.8,"seed":3}' "$base/v1/jobs")
  lid=$(grep -oE '"job_id": *"[^"]*"' <<<"$long" | grep -oE '"[^"]*"$' | tr -d '"')
  del=$(code -X DELETE "$base/v1/jobs/$lid") # 200 while queued, 202 while running
  [ "$del" = 200 ] || [ "$del" = 202 ] && pass || fail "default model: DELETE a job gave $del"
  for _ in $(seq 100); do grep -q '"state":"cancelled"' <<<"$(curl -s "$base/v1/jobs/$lid")" && break; sleep 0.05; done
  grep -q '"state":"cancelled"' <<<"$(curl -s "$base/v1/jobs/$lid")" && pass || fail "default model: job cancelled: $(curl -s "$base/v1/jobs/$lid")"
  kill -TERM "$pid"
  wait "$pid" && pass || fail "default model server exit code"
else
  fail "default model server did not start"; cat "$tmp/serve-default.log"
fi

finish
