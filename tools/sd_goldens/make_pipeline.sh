#!/bin/sh
# tools/sd_goldens/make_pipeline.sh - the whole-pipeline goldens of
# tests/data/sd/pipeline (make_pipeline_golden.py: txt2img;
# make_pipeline_cases.py: img2img, inpainting, v-prediction, long prompts)
# from the tiny models that make.sh builds; same venv as make.sh
# (tools/sd_goldens/.venv).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
    /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
"$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
"$venv/bin/python" -m pip install --quiet --no-deps -r "$here/requirements-nodeps.txt"
"$venv/bin/python" "$here/make_pipeline_golden.py" "$here/../../tests/data/sd"
exec "$venv/bin/python" "$here/make_pipeline_cases.py" "$here/../../tests/data/sd"
