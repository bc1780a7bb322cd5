"""Build the default model's text corpus from Debian's fortune cookie files.

Reads every fortune file under /usr/share/games/fortunes (packages `fortunes`
and `fortunes-min`), cleans each fortune, drops duplicates, and splits the
fortunes into a training part and a held-out part by a seeded hash of each
fortune's text, so the split does not depend on file order and training never
sees a held-out fortune.

Outputs (both UTF-8, fortunes separated by one blank line, final newline):
  <work>/train.txt             the training text (git-ignored work folder)
  models/fortune-heldout.txt   the held-out text (committed, small)
  <work>/corpus-stats.json     counts, for the model card

Usage: python3 prepare_corpus.py --work DIR --heldout FILE [--seed N]
"""

import argparse
import hashlib
import json
import os
import re
import sys
import unicodedata

FORTUNE_DIR = "/usr/share/games/fortunes"

# Files left out on purpose: ascii-art is pictures drawn with spaces, which
# the whitespace normalisation below would turn into noise.
SKIP_FILES = {"ascii-art"}

# Fraction of fortunes kept out of training.
HELDOUT_FRACTION = 0.05


def fortune_files(root):
    """Sorted paths of the fortune text files below root.

    Skips the index files (.dat), the .u8 symlinks (they point at the same
    text), any 'off' directory (offensive fortunes, ROT13-encoded upstream)
    and the files in SKIP_FILES.
    """
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "off")
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if name.endswith(".dat") or os.path.islink(path):
                continue
            if name in SKIP_FILES:
                continue
            paths.append(path)
    return sorted(paths)


def split_fortunes(data):
    """Split one fortune file's bytes into the raw fortunes (bytes).

    A line holding only '%' ends a fortune; the separators are dropped.
    """
    fortunes, current = [], []
    for line in data.split(b"\n"):
        if line.rstrip(b"\r") == b"%":
            fortunes.append(b"\n".join(current))
            current = []
        else:
            current.append(line)
    fortunes.append(b"\n".join(current))
    return fortunes


_OVERSTRIKE = re.compile(r".\x08")  # 'c<BS>' pairs: old terminal bold/underline
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")  # controls except newline
_SPACES = re.compile(r"[ \t\u00a0]+")


def clean(raw):
    """Clean one fortune; returns the text, or None when nothing is left or
    the bytes are not valid UTF-8.

    Steps: decode UTF-8 strictly; Unicode NFC; resolve backspace overstrikes
    to the final character; tabs and runs of spaces become one space; other
    control characters are dropped; each line is stripped at both ends; empty
    lines are dropped, so a fortune never holds a blank line (a blank line is
    the boundary between fortunes in the output files).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n")
    while _OVERSTRIKE.search(text):
        text = _OVERSTRIKE.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _CONTROL.sub("", text)
    lines = [ln.strip() for ln in text.split("\n")]
    lines = [ln for ln in lines if ln]
    if not lines:
        return None
    return "\n".join(lines)


def is_heldout(text, seed):
    """Deterministic split: a fortune is held out when the first 8 bytes of
    SHA-256(seed, text), read as a fraction of 2^64, fall below
    HELDOUT_FRACTION."""
    digest = hashlib.sha256(f"{seed}\n{text}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") < HELDOUT_FRACTION * 2**64


def write_text(path, fortunes):
    """Write fortunes separated by one blank line, with a final newline."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n\n".join(fortunes))
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, help="work folder (git-ignored)")
    ap.add_argument("--heldout", required=True, help="held-out text to write")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()

    files = fortune_files(FORTUNE_DIR)
    if not files:
        sys.exit(f"prepare_corpus: no fortune files under {FORTUNE_DIR}")

    seen = set()
    train, heldout = [], []
    stats = {"files": [], "raw_fortunes": 0, "dropped_empty_or_invalid": 0,
             "dropped_duplicates": 0}
    for path in files:
        with open(path, "rb") as f:
            raw_list = split_fortunes(f.read())
        kept = 0
        for raw in raw_list:
            if not raw.strip():
                continue  # the empty piece after a trailing '%'
            stats["raw_fortunes"] += 1
            text = clean(raw)
            if text is None:
                stats["dropped_empty_or_invalid"] += 1
                continue
            if text in seen:
                stats["dropped_duplicates"] += 1
                continue
            seen.add(text)
            kept += 1
            (heldout if is_heldout(text, args.seed) else train).append(text)
        stats["files"].append({"name": os.path.relpath(path, FORTUNE_DIR),
                               "fortunes": kept})

    os.makedirs(args.work, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.heldout)), exist_ok=True)
    write_text(os.path.join(args.work, "train.txt"), train)
    write_text(args.heldout, heldout)

    stats.update({
        "seed": args.seed,
        "heldout_fraction": HELDOUT_FRACTION,
        "train_fortunes": len(train),
        "heldout_fortunes": len(heldout),
        "train_chars": sum(len(t) for t in train) + 2 * len(train) - 1,
        "heldout_chars": sum(len(t) for t in heldout) + 2 * len(heldout) - 1,
    })
    with open(os.path.join(args.work, "corpus-stats.json"), "w") as f:
        json.dump(stats, f, indent=1)
    print(f"prepare_corpus: {len(files)} files, {stats['raw_fortunes']} "
          f"fortunes, {len(train)} train, {len(heldout)} held out, "
          f"{stats['dropped_duplicates']} duplicates and "
          f"{stats['dropped_empty_or_invalid']} empty/invalid dropped")


if __name__ == "__main__":
    main()
