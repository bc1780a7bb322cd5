# tests/integration/serve_lib.sh - `kiln serve` for the client tests:
# sourced by run_*.sh, which start it, point a real client at it, and stop it.

# start_serve KILN KEY SERVE_ARGS...: start `kiln serve SERVE_ARGS` on a free
# loopback port with API key KEY and wait until it is ready. Sets pid, port
# and log (its output file); kills it on exit. Exits 1 with its log when it
# dies or never gets ready.
start_serve() {
  local kiln=$1 key=$2
  shift 2
  log=$(mktemp)
  KILN_API_KEY=$key "$kiln" serve "$@" --port 0 >"$log" 2>&1 &
  pid=$!
  trap 'kill -9 $pid 2>/dev/null || true; rm -f "$log"' EXIT
  port=""
  for _ in $(seq 600); do
    port=$(grep -oE 'listening on http://127\.0\.0\.1:[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
    [ -n "$port" ] && curl -sf -H "Authorization: Bearer $key" "http://127.0.0.1:$port/ready" >/dev/null && return 0
    kill -0 $pid 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.1
  done
  echo "kiln serve did not get ready in 60 s"
  cat "$log"
  exit 1
}

# stop_serve: SIGTERM, then 0 when it exited cleanly, else 1 with its log.
stop_serve() {
  kill -TERM $pid
  local rc=0
  wait $pid || rc=$?
  [ $rc -eq 0 ] && return 0
  echo "kiln serve exited with $rc"
  cat "$log"
  return 1
}
