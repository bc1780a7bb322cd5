#!/usr/bin/env python3
"""Make tests/data/image/clip/clean.json: CLIP tokenizer goldens for text cleanup.

For each test string, records what openai/CLIP's simple_tokenizer.py (as
packaged by clip-anytorch, with the real ftfy and regex modules) makes of it:
  "clean": whitespace_clean(basic_clean(text)).lower(), the text BPE sees;
  "ids":   SimpleTokenizer().encode(text), with the merges file the package
           ships (the same bytes as ../shared/data/clip/bpe_simple_vocab_16e6.txt.gz).
The strings exercise what kiln's cleanup reimplements (clip_clean.h): HTML
entities, ftfy's C1, ligature, width, quote and control-character fixes, NFC,
white space, lower-casing (final sigma, dotted I), the special tokens.

Usage: python3 tools/image_goldens/make_clip_goldens.py
(creates tools/image_goldens/.venv on first use; output is deterministic).
"""

import importlib.util
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from goldens_env import ROOT, ensure_venv  # noqa: E402

ensure_venv(__file__)

OUT = ROOT / "tests" / "data" / "image" / "clip" / "clean.json"

CASES = [
    "\u201cCurly\u201d \u2018quotes\u2019 and \u02bcapostrophes\u02bc \u201e\u201f\u201b",
    "\ufb01ne \ufb02ower \ufb00 \ufb03 \ufb04 \ufb05 \ufb06 \u0132ssel \u0149 \u01c5emal \u01c4 \u01f2",
    "\uff26\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48\u3000\uff54\uff45\uff58\uff54\uff01 "
    "\uff76\uff80\uff76\uff85 \uffe3 \uffe5100 \uff5f\uff60",
    "&amp;amp; &lt;b&gt; &#39;quote&#39; &#x41;&#66; &eacute; &EACUTE; &SZLIG; &hellip; "
    "&copy2023 &ampx &notin; &notit; &#0; &#x110000; &#128; &#xD800; &#59; &#12ab; &FRAC12;",
    "&amp;amp;amp; first\n<second> &amp;amp;amp;",
    "no lt: &amp;amp;amp;amp; &AMP; &ETHER; &Eacute &eacute",
    "ESC \x1b[31mred\x1b[0m text \x1b[1;2x",
    "control\x00\x07\x0b\x1f\x7f chars\u200b\ufeff zero\u2060width \u206a\ufff9",
    "C1 \x93quoted\x94 \x85 \x80 \x81 \x9f",
    "NFC: e\u0301 a\u0308 A\u030a \u1100\u1161 \u00c5",
    "\u03a3 \u039f\u0394\u039f\u03a3 \u03a3\u0391\u03a3 \u03a3. \u038c\u03a3\u039f\u03a3's "
    "\u0130stanbul \u01c5 \u03a3\u0301\u03a3 a\u03a3'",
    "tabs\tand\u00a0nbsp\u2003em\u3000ideo\u2028sep\r\nwin  \u0085nel",
    "<|startoftext|>a<|endoftext|> <|StartOfText|> <|ENDOFTEXT|>x",
    "It's I'LL we'VE 'S they'd '  s",
    "\U0001f469\u200d\U0001f469\u200d\U0001f467 \u2764\ufe0f \U0001f1eb\U0001f1f7",
    "\u0661\u0662\u0663 \u00b2 \u00bd \u216b 10\u00b0C",
    "\u0390 \u1e9e \u00df \u0149 \u01f0",
    "   ",
    "a\u00ad-soft hyphen\u00a0&nbsp;&nbsp x&lt;y &#X263a;",
]


def load_simple_tokenizer():
    """clip/simple_tokenizer.py by path: the clip package's __init__ imports
    torchvision, which the tokenizer does not need."""
    spec = importlib.util.find_spec("clip")
    path = Path(spec.submodule_search_locations[0]) / "simple_tokenizer.py"
    mspec = importlib.util.spec_from_file_location("clip_simple_tokenizer", path)
    mod = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(mod)
    return mod


def main() -> None:
    st = load_simple_tokenizer()
    tok = st.SimpleTokenizer()
    out = []
    for text in CASES:
        clean = st.whitespace_clean(st.basic_clean(text)).lower()
        out.append({"text": text, "clean": clean, "ids": tok.encode(text)})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, ensure_ascii=True, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)} ({len(out)} cases)")


if __name__ == "__main__":
    main()
