#!/usr/bin/env bash
# `kiln serve` with an image model (the tiny random-weight SD model of
# tests/data/sd): for each rbee image operation (image_generation,
# image_transform, image_inpaint) the PNG of the stream's `complete` event
# must be byte-identical to the file `kiln image` writes with the same
# settings; `infer` is refused on an image model; SIGTERM exits 0.
# usage: serve_image.sh KILN SHARED_DATA_DIR TMP_DIR
set -u
kiln=$1 tmp=$3/cli-serve-image
src=$(cd "$(dirname "$0")/../.." && pwd)
model=$src/tests/data/sd/tiny-sd15
vocab=$model/tokenizer/merges.txt
mkdir -p "$tmp"
command -v curl >/dev/null || { echo "curl not installed: skipped"; exit 77; }
command -v python3 >/dev/null || { echo "python3 not installed: skipped"; exit 77; }
# Six generations take seconds in a Release build but minutes under the
# sanitizers (unoptimized convolutions); that build runs the parsers' tests
# (tests/unit/test_worker_images_bad.c) and skips this one.
if grep -qa __asan_init "$kiln"; then echo "sanitizer build: skipped (the Release build runs it)"; exit 77; fi
. "$(dirname "$0")/../cli_lib.sh"
pid=
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null' EXIT

"$kiln" serve -m "$model" --clip-vocab "$vocab" --port 0 >"$tmp/serve.log" 2>&1 &
pid=$!
port=
for _ in $(seq 300); do
  port=$(grep -oE 'listening on http://127\.0\.0\.1:[0-9]+' "$tmp/serve.log" | grep -oE '[0-9]+$')
  [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/serve.log"; exit 1; }
base=http://127.0.0.1:$port

# job NAME JSON: run an rbee job, write the complete event's first image to $tmp/NAME-served.png.
job() {
  local id
  id=$(curl -s "$base/v1/jobs" -d "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["job_id"])')
  curl -sN "$base/v1/jobs/$id/stream" | python3 -c '
import base64, json, sys
name = None
for line in sys.stdin:
    line = line.rstrip("\n")
    if not line:
        name = None
    elif line.startswith("event: "):
        name = line[7:]
    elif line.startswith("data: ") and name == "complete":
        open(sys.argv[1], "wb").write(base64.b64decode(json.loads(line[6:])["images"][0]))
' "$tmp/$1-served.png"
}

# compare NAME: the served PNG and the CLI's must be the same bytes.
compare() {
  if [ -s "$tmp/$1-served.png" ] && cmp -s "$tmp/$1-served.png" "$tmp/$1-cli.png"; then pass; else
    fail "$1: served image differs from kiln image's"; fi
}

common=(-m "$model" --clip-vocab "$vocab" -n blurry --steps 3 --cfg 6 --sampler euler)
"$kiln" image "${common[@]}" -p "a red fox" --seed 11 -W 64 -H 64 -o "$tmp/gen-cli.png" >/dev/null 2>&1
job gen '{"operation":"image_generation","prompt":"a red fox","negative_prompt":"blurry","steps":3,
  "guidance_scale":6,"sampler":"euler","seed":11,"width":64,"height":64}'
compare gen

b64=$(base64 -w0 "$tmp/gen-cli.png")
"$kiln" image "${common[@]}" -p "a blue fox" --seed 3 --init "$tmp/gen-cli.png" --strength 0.6 \
  -o "$tmp/transform-cli.png" >/dev/null 2>&1
job transform "{\"operation\":\"image_transform\",\"prompt\":\"a blue fox\",\"negative_prompt\":\"blurry\",
  \"steps\":3,\"guidance_scale\":6,\"sampler\":\"euler\",\"seed\":3,\"strength\":0.6,\"input_image\":\"$b64\"}"
compare transform

# A mask: white (repaint) left half, black right half.
python3 -c '
import struct, sys, zlib
w = h = 64
raw = b"".join(b"\0" + bytes(255 if x < 32 else 0 for x in range(w)) for _ in range(h))
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                              + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))' "$tmp/mask.png"
mb64=$(base64 -w0 "$tmp/mask.png")
"$kiln" image "${common[@]}" -p "a cat" --seed 5 --init "$tmp/gen-cli.png" --mask "$tmp/mask.png" --strength 1 \
  -o "$tmp/inpaint-cli.png" >/dev/null 2>&1
job inpaint "{\"operation\":\"image_inpaint\",\"prompt\":\"a cat\",\"negative_prompt\":\"blurry\",\"steps\":3,
  \"guidance_scale\":6,\"sampler\":\"euler\",\"seed\":5,\"strength\":1,\"init_image\":\"$b64\",\"mask_image\":\"$mb64\"}"
compare inpaint

code=$(curl -s -o /dev/null -w '%{http_code}' "$base/v1/jobs" -d '{"operation":"infer","prompt":"x"}')
[ "$code" = 400 ] && pass || fail "infer on an image model: $code"

kill -TERM $pid
wait $pid
rc=$?
pid=
[ $rc -eq 0 ] && pass || fail "SIGTERM: exit $rc"
finish
