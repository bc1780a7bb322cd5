#!/usr/bin/env bash
# `kiln bench` end to end on the tiny golden llama of tests/data/llm: usage
# errors (exit 2), load failures (exit 1), the markdown table's rows and
# footer, and the JSON report's shape, with its parameter count checked
# against the golden's config and its statistics recomputed here from the
# samples it lists.
# usage: bench.sh KILN SHARED_DATA_DIR TMP_DIR
set -u
kiln=$1 tmp=$3/cli-bench
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$tmp"
. "$(dirname "$0")/../cli_lib.sh"



expect "without args" 2 "-m MODEL is required" -- "$kiln" bench
expect "help" 0 "usage: kiln bench" -- "$kiln" bench --help
expect "bad flag" 2 "unknown option '--bogus'" -- "$kiln" bench -m x --bogus
expect "stray argument" 2 "unexpected argument 'extra'" -- "$kiln" bench -m x extra
expect "missing value" 2 "missing value after '-r'" -- "$kiln" bench -m x -r
expect "bad list" 2 "bad value for '-p'" -- "$kiln" bench -m x -p 8,,16
expect "bad number" 2 "bad value for '-n'" -- "$kiln" bench -m x -n four
expect "zero threads" 2 "bad value for '-t'" -- "$kiln" bench -m x -t 0
expect "zero reps" 2 "bad value for '-r'" -- "$kiln" bench -m x -r 0
expect "too many values" 2 "bad value for '-p'" -- "$kiln" bench -m x -p 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17
expect "bad kv" 2 "--kv takes f16 or f32, not 'f8'" -- "$kiln" bench -m x --kv f8
expect "nothing to measure" 2 "nothing to measure" -- "$kiln" bench -m x -p 0 -n 0
expect "missing model" 1 "cannot load .*absent" -- "$kiln" bench -m "$tmp/absent.gguf" -p 8 -n 4
expect "not a text model" 1 "cannot load .*not a text model" -- "$kiln" bench -m "$src/tests/data/gguf/reference.gguf"

llm=$src/tests/data/llm/llama
if [ ! -f "$llm/llama-f32.gguf" ]; then
  echo "skipping the model cases: $llm is absent"
  finish
  exit
fi
model=$llm/llama-f32.gguf

# The golden's parameter count from its config (untied output, llama blocks).
cfg() { grep -m1 -E "^ *\"$1\": " "$llm/golden.json" | sed -E 's/.*: ([0-9]+),?/\1/'; }
v=$(cfg vocab_size) d=$(cfg hidden_size) f=$(cfg intermediate_size) L=$(cfg num_hidden_layers)
hd=$(cfg head_dim) nh=$(cfg num_attention_heads) nkv=$(cfg num_key_value_heads)
per_layer=$((2 * d + d * nh * hd + 2 * d * nkv * hd + nh * hd * d + 3 * d * f))
params=$((2 * v * d + d + L * per_layer))
millions=$(awk -v p="$params" 'BEGIN { printf "%.2f M", p / 1e6 }')

# Markdown: header, one row per test and thread count, then the footer.
out=$("$kiln" bench -m "$model" -p 8 -n 4 -r 2 -t 1,2 --ttft 6 2>&1)
rc=$?
num='[0-9]+\.[0-9]{2}'
row() { grep -cE "^\| llama-f32\.gguf \| $num MiB \| $millions \| F32 \| $1 \| $2 \| $num ± $num \|$" <<<"$out"; }
check "markdown exit code" [ "$rc" -eq 0 ]
check "markdown header" grep -qx '| model | size | params | type | threads | test | t/s |' <<<"$out"
check "pp8 row, 1 thread" [ "$(row 1 pp8)" -eq 1 ]
check "tg4 row, 1 thread" [ "$(row 1 tg4)" -eq 1 ]
check "pp8 row, 2 threads" [ "$(row 2 pp8)" -eq 1 ]
check "tg4 row, 2 threads" [ "$(row 2 tg4)" -eq 1 ]
check "footer header" grep -qx '| threads | load (s) | ttft6 (ms) |' <<<"$out"
check "footer rows" [ "$(grep -cE "^\| [12] \| [0-9]+\.[0-9]{3} \| $num ± $num \|$" <<<"$out")" -eq 2 ]
check "footer settings" grep -qE "^peak RSS [0-9]+\.[0-9] MiB .*KV cache f16, context 8, .*2 repetitions" <<<"$out"
[ "$failed" -eq 0 ] || echo "$out"

# No TTFT column unless asked for or -p includes 512; --kv f32 is reported.
out=$("$kiln" bench -m "$model" -p 8 -n 0 -r 1 -t 1 --kv f32 2>&1)
check "no ttft column" grep -qx '| threads | load (s) |' <<<"$out"
check "only pp rows" [ "$(grep -c '| pp8 |' <<<"$out")" -eq 1 ] && [ "$(grep -c '| tg' <<<"$out")" -eq 0 ]
check "kv f32 reported" grep -qE "KV cache f32" <<<"$out"
check "default matmul reported" grep -qE "matmul default, weights copied into memory;" <<<"$out"
out=$("$kiln" bench -m "$model" -p 8 -n 2 -r 1 -t 1 --mmap 2>&1)
check "mmap runs and is reported" grep -qE "weights file mapping;" <<<"$out"
out=$("$kiln" bench -m "$llm/llama-f16.gguf" -p 8 -n 2 -r 1 -t 1 --f16-as-bf16 2>&1)
check "f16-as-bf16 runs and is reported" grep -qE "matmul default, F16 as bf16," <<<"$out"
out=$("$kiln" bench -m "$model" -p 8 -n 0 -r 1 -t 1 --exact-matmul 2>&1)
check "exact matmul reported" grep -qE "matmul exact f32," <<<"$out"
out=$("$kiln" bench -m "$model" -p 512 -n 0 -r 1 -t 1 2>&1)
check "ttft512 by default with pp512" grep -qx '| threads | load (s) | ttft512 (ms) |' <<<"$out"

# JSON: stdout is one object; the counts and statistics are checked here.
"$kiln" bench -m "$model" -p 8,5 -n 4 -r 3 -t 2 --ttft 6 --json >"$tmp/bench.json" 2>"$tmp/bench.err"
rc=$?
json=$(cat "$tmp/bench.json")
check "json exit code" [ "$rc" -eq 0 ]
check "json is one object" [ "$(head -c1 <<<"$json")" = "{" ] && [ "$(tail -n1 <<<"$json")" = "}" ]
check "json params" grep -qE "\"n_params\": $params\$" <<<"$json"
check "json size (f32)" grep -q "\"size_bytes\": $((params * 4))," <<<"$json"
check "json type" grep -q '"type": "F32",' <<<"$json"
check "json settings" grep -q '"kv_type": "f16",' <<<"$json"
check "json tests in order" [ "$(grep -oE '"test": "[a-z0-9]+"' <<<"$json" | tr '\n' ' ')" = \
  '"test": "pp8" "test": "pp5" "test": "tg4" "test": "ttft6" ' ]
check "json load" [ "$(grep -cE '"seconds": [0-9.e-]+$' <<<"$json")" -eq 1 ]
check "json peak rss" grep -qE '"peak_rss_bytes": [1-9][0-9]+$' <<<"$json"
# Each test's mean and sample standard deviation recomputed from samples_s
# (tokens/s for pp and tg, milliseconds for ttft).
stats=$(bench_stats tokens 3 <<<"$json")
check "json statistics ($stats)" [ "$stats" = "pp8:ok pp5:ok tg4:ok ttft6:ok " ]
[ "$failed" -eq 0 ] || { echo "$json"; cat "$tmp/bench.err"; }

finish
