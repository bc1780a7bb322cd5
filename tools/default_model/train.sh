#!/usr/bin/env bash
# Build kiln's default model from scratch: fortune corpus -> SentencePiece
# vocabulary -> tiny Llama trained on the CPU -> HF folder + GGUF files ->
# checks against transformers and a NumPy llama.cpp-convention forward ->
# models/default-model.json. See docs/default-model.md.
#
#   bash tools/default_model/train.sh                # everything (~30 min)
#   bash tools/default_model/train.sh --export-only  # reuse work/model.pt
#   LLAMA_CPP_BIN=DIR bash tools/default_model/train.sh  # also check with a llama.cpp build
#
# Installs what it needs when missing (Debian packages with apt-get, Python
# packages into tools/default_model/.venv). Run as root or with sudo.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$here/work"            # git-ignored: corpus copy, tokenizer, checkpoint
venv="$here/.venv"           # git-ignored
models="$root/models"
heldout="$models/fortune-heldout.txt"
hf="$models/fortune-llama-hf"
seed=1234
steps=500
batch=8
threads=2

# LLAMA_CPP_BIN may be relative to where the script was started from.
[ -z "${LLAMA_CPP_BIN:-}" ] || LLAMA_CPP_BIN="$(cd "$LLAMA_CPP_BIN" && pwd)"

export_only=0
case "${1:-}" in
  --export-only) export_only=1 ;;
  "") ;;
  *) echo "usage: $0 [--export-only]" >&2; exit 2 ;;
esac

# ---- Debian packages ------------------------------------------------------
packages=(
  fortunes fortunes-min   # the corpus: /usr/share/games/fortunes
  sentencepiece           # spm_train
  python3-sentencepiece   # encoding in Python
  python3-torch           # training (Debian's CPU build)
  python3-numpy
  python3-venv            # the venv for gguf / transformers
  libopenblas0-pthread    # fast BLAS for torch (the default libblas is the slow reference one)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "train.sh: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Debian's torch calls whatever libblas.so.3 the alternatives system points
# at; use OpenBLAS explicitly whatever that is.
export LD_LIBRARY_PATH="/usr/lib/x86_64-linux-gnu/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads

# ---- Python venv (sees Debian's torch, numpy, sentencepiece) --------------
stamp="$venv/.requirements"
if ! cmp -s "$here/requirements.txt" "$stamp" 2>/dev/null; then
  echo "train.sh: creating $venv"
  rm -rf "$venv"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$stamp"
fi
py="$venv/bin/python"

mkdir -p "$work" "$models"
cd "$here"

if [ $export_only -eq 0 ]; then
  # ---- corpus and vocabulary ----
  /usr/bin/python3 prepare_corpus.py --work "$work" --heldout "$heldout" --seed $seed
  /usr/bin/python3 train_tokenizer.py --input "$work/train.txt" --prefix "$work/tokenizer" --vocab 4096
  # ---- training: low priority, the machine is shared ----
  nice -n 10 /usr/bin/python3 train.py --work "$work" --heldout "$heldout" \
    --seed $seed --steps $steps --batch $batch --threads $threads 2>&1 | tee "$work/train.out"
fi
[ -f "$work/model.pt" ] || { echo "train.sh: no $work/model.pt; run without --export-only" >&2; exit 1; }

# ---- export, checks, model card data ----
cp /usr/share/doc/fortunes/copyright "$models/fortunes-copyright.txt"
"$py" export_hf.py --work "$work" --out "$hf"
"$py" export_gguf.py --work "$work" --prefix "$models/fortune-llama"
chmod 644 "$hf"/* "$models"/*.gguf
nice -n 10 "$py" verify.py --work "$work" --hf "$hf" --gguf-prefix "$models/fortune-llama" \
  --heldout "$heldout" --threads $threads
nice -n 10 "$py" evaluate.py --work "$work" --models "$models" --heldout "$heldout" \
  --out "$models/default-model.json" --seed $seed --threads $threads
# ---- optional: the same checks with llama.cpp itself ----
# LLAMA_CPP_BIN=/path/to/llama.cpp/build/bin (an existing build of yours;
# nothing is fetched or built here); LLAMA_CPP_NAME, optional, says where
# that build came from, for the record.
if [ -n "${LLAMA_CPP_BIN:-}" ]; then
  bash "$here/llamacpp_check.sh" "$LLAMA_CPP_BIN" "$work/llamacpp-out"
  "$py" llamacpp_compare.py --out-dir "$work/llamacpp-out" --work "$work" \
    --json "$models/default-model.json" --heldout "$heldout" \
    --source "${LLAMA_CPP_NAME:-$LLAMA_CPP_BIN}" --machine "$(uname -m), $(nproc) cores"
fi
echo "train.sh: done; files in $models"
