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

. "$here/serve_lib.sh"
start_serve "$kiln" "images-$$" -m "$model" --clip-vocab "$model/tokenizer/merges.txt"
rc=0
"$venv/bin/python" "$here/image_clients_test.py" "$port" "images-$$" || rc=$?
stop_serve
exit $rc
