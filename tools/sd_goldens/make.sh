#!/bin/sh
# tools/sd_goldens/make.sh - build the tiny random-weight Stable Diffusion
# models of tests/data/sd with diffusers and transformers, and record their
# outputs (docs/sd-networks.md). Creates tools/sd_goldens/.venv from
# Debian's python3 with --system-site-packages, so that Debian's
# python3-torch (1.13, CPU) is the torch used (apt-get install python3-torch
# python3-venv; not in scripts/install-deps.sh: only golden-making needs it).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
    /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
"$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
"$venv/bin/python" -m pip install --quiet --no-deps -r "$here/requirements-nodeps.txt"
# make.sh --full-size DIR: the 860M-parameter UNet check instead (see
# make_full_size.py); DIR is not part of the repository.
if [ "${1:-}" = "--full-size" ]; then
    exec "$venv/bin/python" "$here/make_full_size.py" "$2"
fi
# make.sh --pipeline: the whole-pipeline goldens of tests/data/sd/pipeline
# (make_pipeline_golden.py: txt2img; make_pipeline_cases.py: img2img,
# inpainting, v-prediction, long prompts) from the tiny models built before.
if [ "${1:-}" = "--pipeline" ]; then
    "$venv/bin/python" "$here/make_pipeline_golden.py" "$here/../../tests/data/sd"
    exec "$venv/bin/python" "$here/make_pipeline_cases.py" "$here/../../tests/data/sd"
fi
# make.sh --tiled: the tiled VAE decode golden of tiny-sd15 (make_tiled_golden.py).
if [ "${1:-}" = "--tiled" ]; then
    exec "$venv/bin/python" "$here/make_tiled_golden.py" "$here/../../tests/data/sd/tiny-sd15"
fi
# make.sh --bench-sd15 DIR [f16|f32]: the SD 1.5-shaped model of
# `kiln bench-image` (tools/bench_model/make_sd15.py); DIR is outside the
# repository (e.g. ~/kiln-bench-models/sd15-random-f16).
if [ "${1:-}" = "--bench-sd15" ]; then
    exec "$venv/bin/python" "$here/../bench_model/make_sd15.py" "$2" "${3:-f16}"
fi
exec "$venv/bin/python" "$here/make_sd_goldens.py" "$here/../../tests/data/sd"
