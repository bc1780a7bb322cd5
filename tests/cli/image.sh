#!/usr/bin/env bash
# `kiln image` end to end: argument errors (exit 2 with usage), bad input
# images (exit 1 with the decoder's message), a missing model (exit 1 saying
# why), txt2img on the tiny SD model of tests/data/sd writing a PNG with
# its A1111 parameters, and a tiny single file (derived architecture,
# --prediction).
# usage: image.sh KILN SHARED_DATA_DIR TMP_DIR
set -u
kiln=$1 tmp=$3/cli-image
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$tmp"
. "$(dirname "$0")/../cli_lib.sh"


base=(-m "$tmp/model.safetensors" -p "a fox" -o "$tmp/out.png")
expect "help" 0 "usage: kiln image" -- "$kiln" image --help
expect "no args" 2 "-m MODEL is required" -- "$kiln" image
expect "no prompt" 2 "-p PROMPT is required" -- "$kiln" image -m x -o y.png
expect "no output" 2 "-o OUT.png is required" -- "$kiln" image -m x -p y
expect "unknown option" 2 "unknown option --bogus" -- "$kiln" image "${base[@]}" --bogus 1
expect "missing value" 2 "needs a value" -- "$kiln" image "${base[@]}" --steps
expect "bad steps" 2 "--steps wants" -- "$kiln" image "${base[@]}" --steps 0
expect "bad cfg" 2 "--cfg wants" -- "$kiln" image "${base[@]}" --cfg abc
expect "bad seed" 2 "--seed wants" -- "$kiln" image "${base[@]}" --seed -1
expect "unknown sampler" 2 "unknown sampler 'plms'" -- "$kiln" image "${base[@]}" --sampler plms
expect "unknown schedule" 2 "unknown schedule" -- "$kiln" image "${base[@]}" --schedule linear
expect "bad prediction" 2 "--prediction wants auto, eps or v, not 'x0'" -- "$kiln" image "${base[@]}" --prediction x0
expect "bad rng" 2 "--rng wants cpu or cuda" -- "$kiln" image "${base[@]}" --rng tpu
expect "bad strength" 2 "--strength wants" -- "$kiln" image "${base[@]}" --strength 1.5
expect "bad batch" 2 "--batch wants" -- "$kiln" image "${base[@]}" --batch 65
expect "mask without init" 2 "--mask needs --init" -- "$kiln" image "${base[@]}" --mask "$src/tests/data/images/rgba.png"
expect "missing init" 1 "cannot open" -- "$kiln" image "${base[@]}" --init "$tmp/absent.png"
head -c 300 "$src/tests/data/images/rgb.png" | head -c 60 >"$tmp/truncated.png"
expect "truncated init" 1 "png: " -- "$kiln" image "${base[@]}" --init "$tmp/truncated.png"
printf 'not an image' >"$tmp/text.png"
expect "not an image" 1 "not a PNG, JPEG or WebP" -- "$kiln" image "${base[@]}" --init "$tmp/text.png"
expect "no model" 1 "not found" -- "$kiln" image "${base[@]}" --sampler "DPM++ 2M" --schedule karras

# The tiny random-weight SD 1.x model (its merges file as the vocabulary).
tiny=$src/tests/data/sd/tiny-sd15
rm -f "$tmp/tiny.png" "$tmp/tiny-2.png"
expect "tiny txt2img" 0 "sampling" -- "$kiln" image -m "$tiny" --clip-vocab "$tiny/tokenizer/merges.txt" \
  -p "a (red:1.2) fox" -n "blurry" -W 64 -H 64 --steps 2 --sampler "DPM++ 2M" --schedule karras --seed 7 \
  --batch 2 -o "$tmp/tiny.png"
for f in tiny.png tiny-2.png; do
  check "$f is a PNG" [ "$(head -c 8 "$tmp/$f" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]
done
# Each image's parameters chunk (tEXt, uncompressed) holds its own seed.
expect "parameters 1" 0 "Steps: 2, Sampler: DPM\+\+ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 7, Size: 64x64, Model: tiny-sd15" \
  -- grep -a -o "Steps: 2, .*Model: tiny-sd15" "$tmp/tiny.png"
expect "parameters 2" 0 "Seed: 8, Size: 64x64" -- grep -a -o "Seed: 8, Size: 64x64" "$tmp/tiny-2.png"
expect "prompt in parameters" 0 "a \(red:1.2\) fox" -- grep -a -o "a (red:1.2) fox" "$tmp/tiny.png"

# A prompt of two 75-token chunks against a one-chunk negative prompt: with
# --pad-conds on, the negative prompt is padded and the parameters say so.
long=$(printf 'red fox, %.0s' $(seq 40))
expect "bad --pad-conds" 2 "--pad-conds wants on or off" -- "$kiln" image -m "$tiny" -p x -o "$tmp/p.png" --pad-conds maybe
expect "padded" 0 "sampling" -- "$kiln" image -m "$tiny" -p "$long" -n "blurry" -W 64 -H 64 --steps 1 \
  --pad-conds on -o "$tmp/padded.png"
check "padding recorded" grep -aq "Pad conds: True" "$tmp/padded.png"
expect "not padded" 0 "sampling" -- "$kiln" image -m "$tiny" -p "$long" -n "blurry" -W 64 -H 64 --steps 1 \
  --pad-conds off -o "$tmp/unpadded.png"
check "no padding recorded" bash -c "! grep -aq 'Pad conds' '$tmp/unpadded.png'"

# tiny-sd2v as an ldm single file: no configs, its architecture derived from
# the tensors (kiln info shows it); with the folder's vocabulary and
# --prediction v it makes the folder's image (the pixels are compared by
# tests/model/test_sd_layouts.c; here the CLI path runs).
ldm=$src/tests/data/sd/tiny-sd2v-ldm.safetensors
expect "derived shapes" 0 "unet_heads +1, 1" -- "$kiln" info "$ldm"
expect "derived groups" 0 "unet_groups +4" -- "$kiln" info "$ldm"
expect "ldm single file" 0 "sampling" -- "$kiln" image -m "$ldm" --clip-vocab "$src/tests/data/sd/tiny-sd2v/tokenizer" \
  -p "a portrait of an astronaut" -W 64 -H 64 --steps 2 --prediction v -o "$tmp/ldm.png"
check "ldm image written" [ -s "$tmp/ldm.png" ]

finish
