#!/usr/bin/env bash
# Load on `kiln serve` with wrk (Debian package `wrk`): short completions
# from C keep-alive connections for S seconds; prints wrk's requests/s and
# latency percentiles, and the server's own request counts from /metrics.
# A benchmark, never run in CI.
# usage: bench/worker-wrk.sh KILN MODEL [CONNECTIONS=16] [SECONDS=30] [MAX_TOKENS=8]
set -euo pipefail
kiln=$1 model=$2 conns=${3:-16} secs=${4:-30} max_tokens=${5:-8}
command -v wrk >/dev/null || { echo "worker-wrk: install wrk (apt-get install wrk)" >&2; exit 1; }
log=$(mktemp) lua=$(mktemp --suffix=.lua)
"$kiln" serve -m "$model" --port 0 --queue 64 >"$log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$log" "$lua"' EXIT
port=""
for _ in $(seq 300); do
  port=$(grep -oE 'listening on http://127\.0\.0\.1:[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
  [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$log"; exit 1; }
cat >"$lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"prompt": "A wise man once said", "max_tokens": $max_tokens, "temperature": 0}'
done = function(summary, latency, requests)
  io.write(string.format("non-2xx (429 when the queue is full): %d\n", summary.errors.status))
  for _, p in ipairs({50, 90, 99}) do
    io.write(string.format("p%d latency: %.1f ms\n", p, latency:percentile(p) / 1000))
  end
end
LUA
echo "kiln serve -m $model; wrk -c $conns -t 2 -d ${secs}s; completions of $max_tokens tokens; load $(cut -d' ' -f1-3 /proc/loadavg)"
wrk -c "$conns" -t 2 -d "${secs}s" --latency -s "$lua" "http://127.0.0.1:$port/v1/completions"
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^kiln_(requests|tokens)' | head -12
