#!/usr/bin/env bash
# The text-model subcommands end to end: usage errors (exit 2), load
# failures (exit 1), `kiln tokenize` on the shared vocabulary files against
# the reference ids, and tokenize / eval / generate / perplexity / chat on
# the golden models of tests/data/llm.
# usage: llm.sh KILN SHARED_DATA_DIR TMP_DIR
set -u
kiln=$1 shared=$2 tmp=$3/cli-llm
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$tmp"
. "$(dirname "$0")/../cli_lib.sh"


for cmd in generate tokenize perplexity eval chat; do
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
    if [ $bad -eq 0 ] && [ $n -gt 10 ]; then pass; else fail "tokenize $v: $bad of $n cases differ"; fi
  done
  expect "tokenize adds BOS" 0 "^1 15043 3186$" -- "$kiln" tokenize -m "$vocab/ggml-vocab-llama-spm.gguf" -p "Hello world"
  expect "tokenize --no-bos" 0 "^15043 3186$" -- "$kiln" tokenize -m "$vocab/ggml-vocab-llama-spm.gguf" -p "Hello world" --no-bos
  expect "generate on a vocabulary file" 1 "has no weights" -- "$kiln" generate -m "$vocab/ggml-vocab-llama-spm.gguf" -p hi
  expect "generate on another family's vocabulary" 1 "architecture 'gpt2' is not a text model" -- "$kiln" generate -m "$vocab/ggml-vocab-gpt-2.gguf" -p hi
else
  echo "skipping the vocabulary cases: $vocab is absent"
fi

llm=$src/tests/data/llm
if [ -f "$llm/llama/llama-f32.gguf" ]; then
  model=$llm/llama/llama-f32.gguf
  # The golden prompt text and its reference ids (BOS first) from golden.json.
  text=$(sed -n 's/.*"text": "\([^"]*\)".*/\1/p' "$llm/llama/golden.json" | head -1)
  ids=$(sed -n 's/.*"text_ids": \[\([^]]*\)\].*/\1/p' "$llm/llama/golden.json" | head -1 | tr -d ',')
  n_ids=$(wc -w <<<"$ids")
  expect "tokenize golden prompt" 0 "^$ids\$" -- "$kiln" tokenize -m "$model" -p "$text"
  expect "eval writes logits" 0 "$n_ids tokens x 297 logits written" -- "$kiln" eval -m "$model" -p "$text" --logits "$tmp/l.f32" --kv f32
  size=$(stat -c %s "$tmp/l.f32" 2>/dev/null || echo 0)
  if [ "$size" -eq $((n_ids * 297 * 4)) ]; then pass; else fail "eval file size $size"; fi
  expect "eval prints the ids" 0 "^$ids\$" -- "$kiln" eval -m "$model" -p "$text" --logits "$tmp/l.f32"
  expect "generate greedy" 0 "generation: 8 tokens in .* tokens/s\), stop: max_tokens" -- "$kiln" generate -m "$model" -p "$text" -n 8 --temp 0 -t 2
  expect "generate prompt speed" 0 "prompt: $n_ids tokens in .* tokens/s" -- "$kiln" generate -m "$model" -p "$text" -n 2 --temp 0
  # the file mapping (--mmap) and the default copy give the same greedy text
  "$kiln" generate -m "$model" -p "$text" -n 8 --temp 0 >"$tmp/copy.txt" 2>/dev/null
  "$kiln" generate -m "$model" -p "$text" -n 8 --temp 0 --mmap >"$tmp/mmap.txt" 2>/dev/null
  check "--mmap gives the same text" cmp -s "$tmp/copy.txt" "$tmp/mmap.txt"
  check "--mmap generated text" [ -s "$tmp/mmap.txt" ]
  expect "generate load report" 0 "loaded .*llama-f32.gguf: llama, F32 weights, .* MiB in .* s, context 128" -- "$kiln" generate -m "$model" -p "$text" -n 1
  expect "generate context full" 1 "context full" -- "$kiln" generate -m "$model" -p "$text" -n 0 -c 24 --temp 0
  expect "generate from an HF folder" 0 "generation: 3 tokens" -- "$kiln" generate -m "$llm/llama/hf" -p "$text" -n 3 --temp 0
  # a Qwen2 folder whose tokenizer.json lost its NFC normalizer: the model
  # loads (ids work) but text is refused with the reason
  rm -rf "$tmp/qwen2-no-nfc" && cp -r "$llm/qwen2/hf" "$tmp/qwen2-no-nfc"
  sed -z -i 's/"normalizer": *{[^{}]*"NFC"[^{}]*}/"normalizer": null/' "$tmp/qwen2-no-nfc/tokenizer.json"
  check "normalizer removed from the copy" [ "$(grep -c NFC "$tmp/qwen2-no-nfc/tokenizer.json")" -eq 0 ]
  expect "generate with an unusable tokenizer.json" 1 "tokenizer cannot be used: .*NFC" -- "$kiln" generate -m "$tmp/qwen2-no-nfc" -p hi
  expect "tokenize with an unusable tokenizer.json" 1 "tokenizer cannot be used: .*NFC" -- "$kiln" tokenize -m "$tmp/qwen2-no-nfc" -p hi
  expect "tokenize from Qwen2's tokenizer.json" 0 "^[0-9 ]+\$" -- "$kiln" tokenize -m "$llm/qwen2/hf" -p hi
  expect "tokenize from tokenizer.json" 0 "^$ids\$" -- "$kiln" tokenize -m "$llm/llama/hf" -p "$text"
  expect "generate ctx too small for the prompt" 1 "context full" -- "$kiln" generate -m "$model" -p "$text" -c 8
  # perplexity: windows of 32 over this script; each window scores all its tokens but the first
  n_file=$("$kiln" tokenize -m "$model" -f "$0" --no-bos | wc -w)
  n_all=$((n_file + 1))
  windows=$(((n_all + 31) / 32))
  scored=$((n_all - windows)) # a last window of one token scores none
  expect "perplexity" 0 "perplexity: [0-9.]+ over $scored tokens \($n_all in the file, windows of 32\)" -- "$kiln" perplexity -m "$model" -f "$0" -c 32
  : >"$tmp/empty.txt"
  expect "perplexity too short" 1 "fewer than 2 tokens" -- "$kiln" perplexity -m "$model" -f "$tmp/empty.txt"
  # chat keeps the conversation: the second turn reuses the cached first one
  out=$(printf 'the cat\nand the mat\n/clear\nhi\n' | "$kiln" chat -m "$llm/qwen2/qwen2-f32.gguf" -n 4 --temp 0 2>&1)
  turn2=$(grep -E '^\[prompt' <<<"$out" | sed -n 2p)
  p2=$(sed -E 's/^\[prompt ([0-9]+) tokens, ([0-9]+) evaluated.*/\1/' <<<"$turn2")
  e2=$(sed -E 's/^\[prompt ([0-9]+) tokens, ([0-9]+) evaluated.*/\2/' <<<"$turn2")
  if grep -q "chat format: plain" <<<"$out" && grep -q "conversation cleared" <<<"$out" &&
     [ "$(grep -cE '^\[prompt' <<<"$out")" -eq 3 ] && [ "${e2:-99}" -lt "${p2:-0}" ]; then
    pass
  else
    fail "chat:"; echo "$out" | head
  fi
  expect "chat bad template name" 2 "llama3" -- "$kiln" chat -m "$model" --chat-template nope
  expect "chat forced template" 0 "chat format: chatml \(--chat-template\)" -- bash -c "printf 'hi\n' | '$kiln' chat -m '$model' -n 2 --chat-template chatml"
else
  echo "skipping the model cases: $llm is absent"
fi

finish
