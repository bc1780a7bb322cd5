#!/usr/bin/env bash
# The kiln numbers of docs/performance.md: `kiln bench` on the four
# TinyLlama-shaped files (F16, Q8_0, Q4_0, Q4_K) at 1 and 2 threads, pp512,
# tg128, TTFT for 512 tokens, load time and peak RSS, each run preceded by
# the machine's load average (the machine may be shared).
#
# usage: bench/tinyllama.sh [MODEL_DIR] [extra kiln bench flags...]
#   MODEL_DIR  where tools/bench_model/make_tinyllama.py wrote the files
#              (default ~/kiln-bench-models)
# Environment: KILN (default build/kiln), REPS (default 3).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$HOME/kiln-bench-models}
[ $# -gt 0 ] && shift
kiln=${KILN:-$root/build/kiln}
reps=${REPS:-3}

[ -x "$kiln" ] || { echo "tinyllama.sh: no kiln binary at $kiln (build first or set KILN)" >&2; exit 1; }
echo "# kiln bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $("$kiln" version | head -1)"
echo "# cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
for type in f16 q8_0 q4_0 q4_k; do
  model=$dir/tinyllama-$type.gguf
  [ -f "$model" ] || { echo "tinyllama.sh: $model is missing (run tools/bench_model/make_tinyllama.py)" >&2; exit 1; }
  echo
  echo "## $type (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
  echo "\$ kiln bench -m $model -p 512 -n 128 -t 1,2 -r $reps $*"
  "$kiln" bench -m "$model" -p 512 -n 128 -t 1,2 -r "$reps" "$@"
  echo "(load average after: $(cut -d' ' -f1-3 /proc/loadavg))"
done
