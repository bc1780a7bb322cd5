#!/usr/bin/env bash
# Run tests/integration/openai_client_test.py against `kiln serve`.
# Makes a virtual environment with the openai package (from PyPI) on first
# use. Until the engine and a default model are wired in, it serves the test
# backend (--fake-model); pass extra serve arguments to change that.
# usage: run_openai_client.sh KILN [VENV_DIR] [-- SERVE_ARGS...]
set -euo pipefail
kiln=$1
venv=${2:-$(dirname "$kiln")/openai-venv}
shift $(( $# >= 2 ? 2 : 1 ))
[ "${1:-}" = "--" ] && shift
serve_args=("$@")
[ ${#serve_args[@]} -eq 0 ] && serve_args=(--fake-model)
here=$(cd "$(dirname "$0")" && pwd)

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'openai>=1.30,<2'
fi

log=$(mktemp)
key=integration-$$
KILN_API_KEY=$key "$kiln" serve "${serve_args[@]}" --port 0 >"$log" 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true; rm -f "$log"' EXIT
port=""
for _ in $(seq 600); do
  port=$(grep -oE 'listening on http://127\.0\.0\.1:[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
  [ -n "$port" ] && curl -sf -H "Authorization: Bearer $key" "http://127.0.0.1:$port/ready" >/dev/null && break
  kill -0 $pid 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
rc=0
"$venv/bin/python" "$here/openai_client_test.py" "http://127.0.0.1:$port/v1" "$key" || rc=$?
kill -TERM $pid
wait $pid
echo "kiln serve exited with $?"
exit $rc
