#!/bin/sh
# tools/sd_goldens/make_pipeline.sh - the whole-pipeline goldens of
# tests/data/sd/pipeline (make_pipeline_golden.py: txt2img;
# make_pipeline_cases.py: img2img, inpainting, v-prediction, long prompts)
# from the tiny models that make.sh builds: `make.sh --pipeline`, with the
# same venv (tools/sd_goldens/.venv).
set -eu
exec "$(cd "$(dirname "$0")" && pwd)/make.sh" --pipeline
