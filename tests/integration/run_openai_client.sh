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

. "$here/serve_lib.sh"
start_serve "$kiln" "integration-$$" "${serve_args[@]}"
rc=0
"$venv/bin/python" "$here/openai_client_test.py" "http://127.0.0.1:$port/v1" "integration-$$" || rc=$?
stop_serve
exit $rc
