#!/usr/bin/env bash
# Regenerate tests/data/llm (the LLM goldens) and check them.
#
# Creates tools/.venv/llm (Debian's python3 with its system torch visible, plus the
# pinned packages of requirements.txt), runs make_goldens.py into a scratch
# folder, checks the result with check_hf_vs_gguf.py, then replaces
# tests/data/llm. Deterministic: the same package versions give the same files.
# Usage: tools/llm_goldens/make.sh            (regenerate + check)
#        tools/llm_goldens/make.sh --check    (only check the committed goldens)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# its own venv (Debian's python3 and system torch), apart from the other tools' ones
venv="$root/tools/.venv/llm"
data="$root/tests/data/llm"

# Debian's torch matches Debian's python 3.11; another process may hold the
# dpkg lock for a while, so retry the install instead of failing at once.
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
    for try in $(seq 1 60); do
        if apt-get install -y python3-torch; then
            break
        fi
        echo "make.sh: apt-get install python3-torch failed (try $try), retrying in 10 s" >&2
        sleep 10
    done
    /usr/bin/python3 -c "import torch"
fi

if [ ! -x "$venv/bin/python" ]; then
    /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"

cd "$here"
export PYTHONHASHSEED=0
if [ "${1:-}" = "--check" ]; then
    "$venv/bin/python" check_hf_vs_gguf.py "$data"
    exit 0
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$venv/bin/python" make_goldens.py "$scratch/llm"
"$venv/bin/python" check_hf_vs_gguf.py "$scratch/llm"
rm -rf "$data"
mkdir -p "$(dirname "$data")"
cp -r "$scratch/llm" "$data"
echo "make.sh: wrote $data ($(du -sh --apparent-size "$data" | cut -f1))"
