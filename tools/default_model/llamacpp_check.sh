#!/usr/bin/env bash
# Cross-check the default model's GGUF files with llama.cpp itself.
#
#   bash tools/default_model/llamacpp_check.sh LLAMA_CPP_BIN OUT_DIR
#
# LLAMA_CPP_BIN is the bin/ folder of an existing llama.cpp CPU build (built
# by you, outside this repository: kiln never fetches or builds llama.cpp;
# the one used for the record was vendor/llama.cpp of PyPI's
# llama-cpp-python 0.3.36 sdist). Runs llama-simple, llama-tokenize and
# llama-perplexity and writes to OUT_DIR, for each of
# models/fortune-llama-{f16,q8_0}.gguf:
#   gen-<q>.txt    llama-simple's greedy 64-token continuation of
#                  "A wise man once said" (to compare with the reference in
#                  models/default-model.json)
#   tok-<q>.txt    llama-tokenize's ids for models/fortune-heldout.txt (BOS
#                  added), to compare with SentencePiece's
#   ppl-<q>.txt    llama-perplexity's output at context 256 (its own protocol:
#                  BOS at each chunk start, second half of each chunk scored)
set -euo pipefail
bin="$1"
out="$2"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mkdir -p "$out"
for q in f16 q8_0; do
  m="$root/models/fortune-llama-$q.gguf"
  "$bin/llama-simple" -m "$m" -n 64 "A wise man once said" > "$out/gen-$q.txt" 2> "$out/gen-$q.log"
  "$bin/llama-tokenize" -m "$m" -f "$root/models/fortune-heldout.txt" --ids --log-disable \
    > "$out/tok-$q.txt" 2> "$out/tok-$q.log"
  # llama.cpp's asynchronous logger sometimes loses the last line at exit:
  # rerun (up to 3 times) until the final estimate is there.
  for try in 1 2 3; do
    "$bin/llama-perplexity" -m "$m" -f "$root/models/fortune-heldout.txt" -c 256 -b 256 \
      > "$out/ppl-$q.txt" 2>&1
    grep -q "Final estimate" "$out/ppl-$q.txt" && break
    echo "llamacpp_check: no final estimate in try $try" >&2
  done
  echo "== $q"; cat "$out/gen-$q.txt"; echo; grep -E "Final estimate" "$out/ppl-$q.txt" || tail -3 "$out/ppl-$q.txt"
done
