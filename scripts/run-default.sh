#!/usr/bin/env bash
# The main job on the default model: until the LLM engine lands, describe it.
set -euo pipefail
kiln=${1:-build/kiln}
"$kiln" version
