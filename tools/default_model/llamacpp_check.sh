#!/usr/bin/env bash
# Cross-check the default model's GGUF files with llama.cpp itself.
#
#   bash tools/default_model/llamacpp_check.sh LLAMA_CPP_SRC OUT_DIR
#
# LLAMA_CPP_SRC is a llama.cpp source tree (the one used for the record was
# vendor/llama.cpp of PyPI's llama-cpp-python 0.3.36 sdist). Builds the CPU
# tools llama-simple, llama-tokenize and llama-perplexity, then writes to
# OUT_DIR, for each of models/fortune-llama-{f16,q8_0}.gguf:
#   gen-<q>.txt    llama-simple's greedy 64-token continuation of
#                  "A wise man once said" (to compare with the reference in
#                  models/default-model.json)
#   tok-<q>.txt    llama-tokenize's ids for models/fortune-heldout.txt (BOS
#                  added), to compare with SentencePiece's
#   ppl-<q>.txt    llama-perplexity's output at context 256 (its own protocol:
#                  BOS at each chunk start, second half of each chunk scored)
# Needs cmake and a C++ compiler; nothing is downloaded.
set -euo pipefail
src="$1"
out="$2"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$root/tools/default_model/work/llama.cpp-build"
mkdir -p "$out"
cmake --version | head -1
c++ --version | head -1
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_SERVER=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF \
  -DGGML_CCACHE=OFF > "$out/cmake-configure.log" 2>&1
cmake --build "$build" -j "$(nproc)" --target llama-simple llama-tokenize llama-perplexity \
  > "$out/cmake-build.log" 2>&1
bin="$build/bin"
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
