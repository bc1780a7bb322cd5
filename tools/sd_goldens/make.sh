#!/bin/sh
# tools/sd_goldens/make.sh - build the tiny random-weight Stable Diffusion
# models of tests/data/sd with diffusers and transformers, and record their
# outputs (docs/sd-networks.md). Creates tools/sd_goldens/.venv from
# Debian's python3 with --system-site-packages, so that Debian's
# python3-torch (1.13, CPU) is the torch used (scripts/install-deps.sh).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
    /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
"$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
exec "$venv/bin/python" "$here/make_sd_goldens.py" "$here/../../tests/data/sd"
