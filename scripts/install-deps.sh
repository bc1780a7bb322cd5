#!/usr/bin/env bash
# Install the Debian 12 packages kiln needs to build and test, if missing.
# Idempotent: does nothing (and needs no network) when all are present.
set -euo pipefail

packages=(
  build-essential   # gcc, make, libc headers
  cmake             # the build
  pkg-config        # finds the libraries below
  clang             # the second compiler and libFuzzer
  libclang-rt-14-dev # libFuzzer and sanitizer runtimes for clang
  libjansson-dev    # JSON (safetensors headers, config.json, the daemon)
  libpcre2-dev      # PCRE2: the tokenizers' pre-tokenizer regexes (Unicode classes, JIT)
  libutf8proc-dev   # utf8proc: Unicode normalization (NFC) for the tokenizers
  zlib1g-dev        # zlib: reads the gzip-compressed CLIP merges file
  libmicrohttpd-dev # HTTP server of the worker daemon (kiln serve)
  curl              # the kiln serve CLI test talks to the daemon with it
  python3-venv      # make test: a venv for the official openai client test
  libpng-dev        # libpng 1.6: PNG input images and output with the parameters chunk
  libturbojpeg0-dev # libjpeg-turbo's TurboJPEG API: JPEG input images
  libwebp-dev       # libwebp: WebP input images
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
