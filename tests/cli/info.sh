#!/usr/bin/env bash
# `kiln info` end to end: real vocabulary files, files the repo ships, and
# bad paths, each with its exit code and message.
# usage: info.sh KILN SHARED_DATA_DIR TMP_DIR
set -u
kiln=$1 shared=$2 tmp=$3/cli-info
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$tmp"
. "$(dirname "$0")/../cli_lib.sh"


expect "no args" 2 "usage: kiln info" -- "$kiln" info
expect "unknown option" 2 "unknown option" -- "$kiln" info --bogus x
expect "missing file" 1 "No such file or directory" -- "$kiln" info "$tmp/absent.gguf"
head -c 4096 /dev/urandom >"$tmp/noise.dat"
expect "unknown format" 1 "unknown model file format" -- "$kiln" info "$tmp/noise.dat"
printf '\x80\x02}q\x00.' >"$tmp/model.ckpt"
expect "pickle refused" 1 "convert it to safetensors" -- "$kiln" info "$tmp/model.ckpt"
mkdir -p "$tmp/empty-folder"
expect "empty folder" 1 "not a model folder" -- "$kiln" info "$tmp/empty-folder"
expect "gguf fixture" 0 "gguf_version +3" -- "$kiln" info "$src/tests/data/gguf/reference.gguf"
expect "gguf fixture json" 0 '"tensors": 6' -- "$kiln" info --json "$src/tests/data/gguf/reference.gguf"
expect "safetensors fixture" 0 "format +safetensors" -- "$kiln" info "$src/tests/data/safetensors/mixed.safetensors"
expect "unknown architecture said" 0 "not a model architecture kiln supports" -- "$kiln" info "$src/tests/data/safetensors/mixed.safetensors"

if [ -d "$shared/vocab" ]; then
  expect "llama-spm vocab" 0 "tokens +32000" -- "$kiln" info "$shared/vocab/ggml-vocab-llama-spm.gguf"
  expect "llama-spm arch" 0 "architecture +llama" -- "$kiln" info "$shared/vocab/ggml-vocab-llama-spm.gguf"
  expect "gpt-2 vocab" 0 '"tokens": 50257' -- "$kiln" info --json "$shared/vocab/ggml-vocab-gpt-2.gguf"
  expect "gpt-2 not ours" 0 "file_architecture +gpt2" -- "$kiln" info "$shared/vocab/ggml-vocab-gpt-2.gguf"
  expect "deepseek pre" 0 "pre +deepseek-llm" -- "$kiln" info "$shared/vocab/ggml-vocab-deepseek-llm.gguf"
  expect "vocab only" 0 "contents +vocabulary only" -- "$kiln" info "$shared/vocab/ggml-vocab-deepseek-llm.gguf"
else
  echo "skipped: $shared/vocab absent (the shared vocabulary checks)"
fi

finish
