#!/usr/bin/env bash
# Run tests/integration/image_clients_test.py (the AUTOMATIC1111 client
# `webuiapi` and the official `openai` client) against `kiln serve` on the
# tiny random-weight SD model of tests/data/sd. Makes a virtual environment
# with both packages (from PyPI) on first use.
# usage: run_image_clients.sh KILN [VENV_DIR]
set -euo pipefail
kiln=$1
venv=${2:-$(dirname "$kiln")/image-clients-venv}
here=$(cd "$(dirname "$0")" && pwd)
model=$here/../data/sd/tiny-sd15

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import openai, webuiapi' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'openai>=1.30,<2' 'webuiapi>=0.9,<1'
fi

log=$(mktemp)
key=images-$$
KILN_API_KEY=$key "$kiln" serve -m "$model" --clip-vocab "$model/tokenizer/merges.txt" --port 0 >"$log" 2>&1 &
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
"$venv/bin/python" "$here/image_clients_test.py" "$port" "$key" || rc=$?
kill -TERM $pid
wait $pid || { echo "kiln serve exited with $?"; cat "$log"; exit 1; }
exit $rc
