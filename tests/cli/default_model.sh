#!/usr/bin/env bash
# The default model through the CLI, as `make run` uses it: sampled text is
# valid UTF-8, the same seed gives the same text, greedy output is the same
# across two runs, and the run script itself works.
# usage: default_model.sh KILN SHARED_DATA_DIR TMP_DIR
set -u
kiln=$1 tmp=$3/cli-default-model
src=$(cd "$(dirname "$0")/../.." && pwd)
model=$src/models/fortune-llama-q8_0.gguf
mkdir -p "$tmp"
. "$(dirname "$0")/../cli_lib.sh"

"$kiln" generate -m "$model" -p "A wise man once said" -n 48 --seed 7 >"$tmp/s1.txt" 2>"$tmp/s1.err"
check_rc "sampled run exits 0" $?
[ -s "$tmp/s1.txt" ]; check_rc "sampled run printed text" $?
iconv -f UTF-8 -t UTF-8 "$tmp/s1.txt" >/dev/null 2>&1; check_rc "sampled text is valid UTF-8" $?
"$kiln" generate -m "$model" -p "A wise man once said" -n 48 --seed 7 >"$tmp/s2.txt" 2>/dev/null
cmp -s "$tmp/s1.txt" "$tmp/s2.txt"; check_rc "same seed, same text" $?
"$kiln" generate -m "$model" -p "Q: Why" -n 48 --temp 0 >"$tmp/g1.txt" 2>/dev/null
"$kiln" generate -m "$model" -p "Q: Why" -n 48 --temp 0 -t 1 >"$tmp/g2.txt" 2>/dev/null
cmp -s "$tmp/g1.txt" "$tmp/g2.txt"; check_rc "greedy output identical across runs and thread counts" $?
grep -q "tokens/s" "$tmp/s1.err"; check_rc "speed reported on stderr" $?
bash "$src/scripts/run-default.sh" "$kiln" >"$tmp/run.txt" 2>&1
check_rc "run-default.sh exits 0" $?
grep -q "architecture       llama" "$tmp/run.txt" && grep -q "A wise man once said" "$tmp/run.txt"
check_rc "run-default.sh describes the model and continues the prompt" $?

finish
