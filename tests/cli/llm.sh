#!/usr/bin/env bash
# The text-model subcommands end to end: usage errors (exit 2), load
# failures (exit 1), `kiln tokenize` on the shared vocabulary files against
# the reference ids, and generate / eval / perplexity on the tiny models of
# tests/data/llm when they are there.
# usage: llm.sh KILN SHARED_DATA_DIR TMP_DIR
set -u
kiln=$1 shared=$2 tmp=$3/cli-llm
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$tmp"
passed=0 failed=0

# expect NAME WANT_RC PATTERN -- CMD...: run CMD, check its exit code and that
# stdout+stderr contain PATTERN (grep -E).
expect() {
  local name=$1 want=$2 pattern=$3
  shift 4
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" -eq "$want" ] && grep -qE -- "$pattern" <<<"$out"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL $name: rc=$rc (want $want), pattern '$pattern' in:"
    echo "$out" | head -20
  fi
}

for cmd in generate tokenize perplexity eval; do
  expect "$cmd without args" 2 "usage: kiln $cmd" -- "$kiln" $cmd
  expect "$cmd bad flag" 2 "unknown option '--bogus'" -- "$kiln" $cmd -m x --bogus
  expect "$cmd help" 0 "usage: kiln $cmd" -- "$kiln" $cmd --help
done
expect "generate missing model" 1 "cannot load .*absent" -- "$kiln" generate -m "$tmp/absent.gguf" -p x
expect "tokenize missing model" 1 "cannot load .*absent" -- "$kiln" tokenize -m "$tmp/absent.gguf" -p x
expect "perplexity missing model" 1 "cannot load .*absent" -- "$kiln" perplexity -m "$tmp/absent.gguf" -f "$src/README.md"
expect "perplexity missing text" 1 "cannot open .*absent.txt" -- "$kiln" perplexity -m "$tmp/absent.gguf" -f "$tmp/absent.txt"
expect "eval missing model" 1 "cannot load .*absent" -- "$kiln" eval -m "$tmp/absent.gguf" -p x --logits "$tmp/x.f32"
expect "eval without --logits" 2 "--logits OUT are required" -- "$kiln" eval -m x -p hi
expect "generate bad number" 2 "bad number for '--temp'" -- "$kiln" generate -m x -p hi --temp warm
expect "generate missing value" 2 "missing value after '-n'" -- "$kiln" generate -m x -p hi -n
expect "generate bad kv" 2 "--kv takes f16 or f32" -- "$kiln" generate -m x -p hi --kv f8
expect "generate no prompt" 2 "-p PROMPT is required" -- "$kiln" generate -m x
expect "tokenize both inputs" 2 "exactly one of -p TEXT and -f FILE" -- "$kiln" tokenize -m x -p a -f b
expect "tokenize flag of another command" 2 "unknown option '--temp'" -- "$kiln" tokenize -m x -p a --temp 1
expect "not a text model" 1 "architecture .* is not a text model" -- "$kiln" generate -m "$src/tests/data/gguf/reference.gguf" -p hi

vocab=$shared/vocab
if [ -f "$vocab/ggml-vocab-llama-spm.gguf" ]; then
  # Each input case of the shared file against its reference ids (no BOS).
  for v in llama-spm gpt-2 deepseek-llm; do
    f=$vocab/ggml-vocab-$v.gguf
    n=0 bad=0
    # Cases are separated by "\n__ggml_vocab_test__\n" in .inp and by lines in .out.
    split_cases() { awk -v RS='\n__ggml_vocab_test__\n' -v dir="$tmp" -v tag="$v" \
      '{ f = sprintf("%s/%s.case%03d", dir, tag, NR); printf "%s", $0 > f; close(f) }' "$1"; }
    split_cases "$f.inp"
    mapfile -t want <"$f.out"
    for c in "$tmp/$v".case*; do
      i=$((10#${c##*case}))
      got=$("$kiln" tokenize -m "$f" -f "$c" --no-bos 2>&1)
      exp=$(sed 's/^ *//' <<<"${want[$((i - 1))]}")
      n=$((n + 1))
      [ "$got" = "$exp" ] || { bad=$((bad + 1)); [ $bad -le 3 ] && echo "  $v case $i: got '$got' want '$exp'"; }
    done
    if [ $bad -eq 0 ] && [ $n -gt 10 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL tokenize $v: $bad of $n cases differ"; fi
  done
  expect "tokenize adds BOS" 0 "^1 15043 3186$" -- "$kiln" tokenize -m "$vocab/ggml-vocab-llama-spm.gguf" -p "Hello world"
  expect "tokenize --no-bos" 0 "^15043 3186$" -- "$kiln" tokenize -m "$vocab/ggml-vocab-llama-spm.gguf" -p "Hello world" --no-bos
  expect "generate on a vocabulary file" 1 "has no weights" -- "$kiln" generate -m "$vocab/ggml-vocab-llama-spm.gguf" -p hi
  expect "generate on another family's vocabulary" 1 "architecture 'gpt2' is not a text model" -- "$kiln" generate -m "$vocab/ggml-vocab-gpt-2.gguf" -p hi
else
  echo "skipping the vocabulary cases: $vocab is absent"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
