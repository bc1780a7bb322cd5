#!/usr/bin/env bash
# `kiln bench-image` end to end on the tiny SD 1.x model of tests/data/sd:
# usage errors (exit 2), load failures (exit 1), the markdown table's rows
# and footer, and the JSON report's shape, with each test's mean and
# standard deviation recomputed here from the samples it lists. No timing
# is asserted.
# usage: bench_image.sh KILN SHARED_DATA_DIR TMP_DIR
set -u
kiln=$1 tmp=$3/cli-bench-image
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$tmp"
. "$(dirname "$0")/../cli_lib.sh"



tiny=$src/tests/data/sd/tiny-sd15
vocab=(--clip-vocab "$tiny/tokenizer/merges.txt")
expect "without args" 2 "-m MODEL is required" -- "$kiln" bench-image
expect "help" 0 "usage: kiln bench-image" -- "$kiln" bench-image --help
expect "listed by kiln" 0 "bench-image" -- "$kiln" --help
expect "bad flag" 2 "unknown option '--bogus'" -- "$kiln" bench-image -m x --bogus
expect "stray argument" 2 "unexpected argument 'extra'" -- "$kiln" bench-image -m x extra
expect "missing value" 2 "missing value after '-r'" -- "$kiln" bench-image -m x -r
expect "bad size list" 2 "bad value for '-s'" -- "$kiln" bench-image -m x -s 64,,32
expect "size too small" 2 "bad value for '-s'" -- "$kiln" bench-image -m x -s 4
expect "zero reps" 2 "bad value for '-r'" -- "$kiln" bench-image -m x -r 0
expect "bad warm-up" 2 "bad value for '-w'" -- "$kiln" bench-image -m x -w -1
expect "bad tile mode" 2 "--vae-tile takes auto, on or off, not 'maybe'" -- "$kiln" bench-image -m x --vae-tile maybe
expect "missing model" 1 "cannot load .*absent" -- "$kiln" bench-image -m "$tmp/absent"
expect "size off the VAE scale" 2 "size 33 is not a multiple of the VAE's scale 2" -- \
  "$kiln" bench-image -m "$tiny" "${vocab[@]}" -s 33 -r 1

# Markdown: header, one row per test in order, then the footer.
out=$("$kiln" bench-image -m "$tiny" "${vocab[@]}" -s 32,16 -r 2 -w 0 2>&1)
rc=$?
num='[0-9]+\.[0-9]{3}'
check "markdown exit code" [ "$rc" -eq 0 ]
check "markdown header" grep -qx '| test | what | size | seconds | reps |' <<<"$out"
check "rows in order" [ "$(grep -oE '^\| [a-z0-9]+ \|' <<<"$out" | tr -d '| ' | tr '\n' ' ')" = \
  "test text unet32 unet16 vae32 vae16 " ]
check "text row" grep -qE "^\| text \| text encoder, 77 tokens \| - \| $num ± $num \| 2 \|$" <<<"$out"
check "unet row" grep -qE "^\| unet32 \| UNet step, CFG \(2 evaluations, batched\) \| 32x32 \| $num ± $num \| 2 \|$" <<<"$out"
check "vae row" grep -qE "^\| vae16 \| VAE decode \| 16x16 \| $num ± $num \| 2 \|$" <<<"$out"
check "footer" grep -qE "^load [0-9.]+ s; peak RSS [0-9]+\.[0-9] MiB .* 2 repetitions after 0 warm-up" <<<"$out"
[ "$failed" -eq 0 ] || echo "$out"

# --no-cfg, --no-cfg-batch, --no-text, --no-unet, --no-vae and forced tiling change what runs.
out=$("$kiln" bench-image -m "$tiny" "${vocab[@]}" -s 32 -r 1 --no-cfg --no-text --vae-tile on 2>&1)
check "no-cfg row" grep -qE "^\| unet32 \| UNet step \(1 evaluation\) \|" <<<"$out"
check "no text row" [ "$(grep -c '^| text |' <<<"$out")" -eq 0 ]
check "tiled vae row" grep -qE "^\| vae32 \| VAE decode \|" <<<"$out"
out=$("$kiln" bench-image -m "$tiny" "${vocab[@]}" -s 32 -r 1 --no-cfg-batch --no-text --no-vae 2>&1)
check "no-cfg-batch row" grep -qE "^\| unet32 \| UNet step, CFG \(2 evaluations\) \|" <<<"$out"
out=$("$kiln" bench-image -m "$tiny" "${vocab[@]}" -s 32 -r 1 --no-vae --no-unet 2>&1)
check "no vae row" [ "$(grep -c '^| vae' <<<"$out")" -eq 0 ]
check "no unet row" [ "$(grep -c '^| unet' <<<"$out")" -eq 0 ] && [ "$(grep -c '^| text' <<<"$out")" -eq 1 ]

# JSON: stdout is one object; statistics recomputed from samples_s.
"$kiln" bench-image -m "$tiny" "${vocab[@]}" -s 32 -r 3 --json >"$tmp/b.json" 2>"$tmp/b.err"
rc=$?
json=$(cat "$tmp/b.json")
check "json exit code" [ "$rc" -eq 0 ]
check "json is one object" [ "$(head -c1 <<<"$json")" = "{" ] && [ "$(tail -n1 <<<"$json")" = "}" ]
check "json tests in order" [ "$(grep -oE '"test": "[a-z0-9]+"' <<<"$json" | tr '\n' ' ')" = \
  '"test": "text" "test": "unet32" "test": "vae32" ' ]
check "json unet evaluations" grep -q '"unet_evals": 2,' <<<"$json"
check "json cfg" grep -q '"cfg": true,' <<<"$json"
check "json cfg batch" grep -q '"cfg_batch": true,' <<<"$json"
check "json load" grep -qE '"load_s": [0-9.e-]+,$' <<<"$json"
check "json peak rss" grep -qE '"peak_rss_bytes": [1-9][0-9]+$' <<<"$json"
stats=$(bench_stats seconds 3 <<<"$json")
check "json statistics ($stats)" [ "$stats" = "text:ok unet32:ok vae32:ok " ]
[ "$failed" -eq 0 ] || { echo "$json"; cat "$tmp/b.err"; }

finish
