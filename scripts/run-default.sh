#!/usr/bin/env bash
# The main job on the default model (models/, see docs/default-model.md):
# describe the model, then continue a prompt with it.
# usage: run-default.sh [KILN_BINARY]
set -euo pipefail
kiln=${1:-build/kiln}
cd "$(dirname "$0")/.."
model=models/fortune-llama-q8_0.gguf
prompt=${KILN_PROMPT:-"A wise man once said"}

"$kiln" info "$model"
echo
echo "=== kiln generate -m $model -p \"$prompt\" -n 96 --seed 42"
# Timings go to stderr; keep them until the text is out so they don't interleave.
stats=$(mktemp)
trap 'rm -f "$stats"' EXIT
printf '%s' "$prompt"
"$kiln" generate -m "$model" -p "$prompt" -n 96 --seed 42 2>"$stats" || { cat "$stats" >&2; exit 1; }
echo
echo
cat "$stats"
