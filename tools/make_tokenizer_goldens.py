#!/usr/bin/env python3
"""Make the golden files for kiln's LLM tokenizers (tests/unit/test_tokenizer_golden.c).

The expected token ids come from the reference implementations, run on small
vocabularies that this script trains itself (so nothing large is committed):

  * byte-level BPE: Hugging Face `tokenizers`. One BPE vocabulary is trained
    on the corpus below (GPT-2 byte alphabet), plus a few whole-word tokens
    that no merge reaches (they show Llama 3's ignore_merges), a special
    (control) token and a non-special added (user-defined) token. Then, for
    each pre-tokenizer kiln implements, a Tokenizer is assembled exactly as
    the model's tokenizer.json has it (normalizer, pre_tokenizer, BPE options)
    and encodes the test strings. The words of each string (the
    pre-tokenizer's cut, as byte offsets) are recorded too.
  * SentencePiece BPE: the `sentencepiece` library trains a BPE model with
    Llama's settings (identity normalization, dummy prefix, no whitespace
    removal, split digits, byte fallback) and encodes the test strings.

Usage: python3 tools/make_tokenizer_goldens.py
It creates tools/.venv (python3 -m venv) if needed, installs
tools/requirements-tokenizer.txt into it, re-runs itself inside it, and
rewrites tests/data/tokenizer/{bpe.json,spm.json,MANIFEST.txt}. The output is
deterministic, so a rerun leaves git clean unless the references changed.
"""

import hashlib
import json
import sys
import tempfile
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pretokenizer_patterns import DEEPSEEK_RES, LLAMA3_RE, QWEN2_RE  # noqa: E402
from venv_reexec import run_in_venv  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "tools" / ".venv"
REQUIREMENTS = ROOT / "tools" / "requirements-tokenizer.txt"
OUT = ROOT / "tests" / "data" / "tokenizer"


run_in_venv(VENV, [REQUIREMENTS])

import sentencepiece as spm  # noqa: E402  (only importable inside the venv)
import tokenizers  # noqa: E402
from tokenizers import (AddedToken, Regex, Tokenizer, models, normalizers,  # noqa: E402
                        pre_tokenizers, trainers)

# Training text: a little of many scripts, so that merges exist across them.
CORPUS = [
    "The quick brown fox jumps over the lazy dog. It's the dog's bone, isn't it?",
    "We'll see: they're here, you've got it, I'd say I'm sure. WE'LL SEE!",
    "Numbers: 1, 12, 123, 1234, 12345 and 3.14159; dates like 2024-05-17.",
    "    indented code() { return x + y; }\n\tand a tab\r\nwindows line end",
    "Привет, мир! Как дела? Это проверка токенизатора.",
    "Ελληνικά γράμματα: άλφα, βήτα, γάμμα.",
    "東京は日本の首都です。北京是中国的首都。",
    "서울은 한국의 수도입니다. 안녕하세요!",
    "Tiếng Việt có dấu: người, được, những.",
    "emoji 🚀🦙 and ✅ and 👩‍💻 mixed in text",
    "ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ！ “quotes” and ‘single’ ones…",
    "مرحبا بالعالم ١٢٣ हिन्दी पाठ ខ្មែរ",
] * 4

# Test strings (none of them from ../shared/data). "<|end|>" is the special
# token and "<tool>" the added one.
CASES = [
    "",
    " ",
    "   ",
    "\n",
    "\n\n\n",
    "\t\n",
    "\r\n",
    "Hello world",
    " Hello world",
    "  Hello  world  ",
    "Hello, world!",
    "It's WE'LL they'RE i'D you'Ve 'S",
    "don't stop",
    "1 12 123 1234 12345 1234567",
    "3.14159, 2024-05-17",
    "x² ½ Ⅻ ١٢٣ ४५",
    "The quick brown fox jumps over the lazy dog.",
    "    indented\n\tcode();\n",
    "trailing spaces   \n   next",
    "Привет, мир! Как дела?",
    "άλφα βήτα Ω",
    "東京は日本の首都です。",
    "서울 안녕하세요",
    "người được những",
    "ខ្មែរ हिन्दी",
    "emoji 🚀🦙 ✅ 👩‍💻!",
    "ｆｕｌｌ　ｗｉｄｔｈ！“quote”",
    "nbsp\u00a0here nel\u0085there",
    "cafe\u0301 vs café",
    "Ａｎｇｓｔｒｏｍ \u212b and \u00c5",
    "a zebra and quokka",
    "quokka zebra",
    "<|end|>",
    "Hello<|end|> world",
    "a<tool>b <tool> c",
    "<|end|><tool><|end|>",
    "!!!!!! ?????? ......",
    "'''''' \"\"\"\"",
    "a\u2028b\u3000c",
    "MixedCASE camelCase snake_case kebab-case",
]

SPECIAL = "<|end|>"   # a control token
ADDED = "<tool>"      # a user-defined (non-special added) token
# Whole-word tokens that no merge produces: with ignore_merges (Llama 3) a
# word equal to one of them is that token.
EXTRA_WORDS = ["Ġzebra", "quokka", "Ġquokka"]


def split(pattern):
    return pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False)


def bytelevel_tail():
    return pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)


# name -> (normalizer or None, pre_tokenizer, ignore_merges)
PRETOKENIZERS = {
    "gpt-2": (None, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), False),
    "llama3": (None, pre_tokenizers.Sequence([split(LLAMA3_RE), bytelevel_tail()]), True),
    "qwen2": (normalizers.NFC(), pre_tokenizers.Sequence([split(QWEN2_RE), bytelevel_tail()]), False),
    "deepseek-llm": (None, pre_tokenizers.Sequence([split(r) for r in DEEPSEEK_RES] + [bytelevel_tail()]),
                     False),
}


def byte_offsets(text, char_spans):
    """Character spans of `text` as UTF-8 byte spans."""
    starts = [0]
    for ch in text:
        starts.append(starts[-1] + len(ch.encode("utf-8")))
    return [[starts[a], starts[b]] for a, b in char_spans]


def train_bpe():
    """The shared byte-level vocabulary: (tokens in id order, merges)."""
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=700, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    t.train_from_iterator(CORPUS, trainer)
    model = json.loads(t.to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    tokens = [tok for tok, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1])]
    tokens += [w for w in EXTRA_WORDS if w not in model["vocab"]]
    return tokens, merges


def bpe_goldens():
    tokens, merges = train_bpe()
    vocab = {tok: i for i, tok in enumerate(tokens)}
    result = {"tokens": tokens, "types": [1] * len(tokens), "merges": merges, "pretokenizers": {}}
    for name, (normalizer, pre, ignore_merges) in PRETOKENIZERS.items():
        t = Tokenizer(models.BPE(vocab=dict(vocab), merges=[tuple(m.split(" ")) for m in merges],
                                 ignore_merges=ignore_merges))
        if normalizer is not None:
            t.normalizer = normalizer
        t.pre_tokenizer = pre
        t.add_special_tokens([AddedToken(SPECIAL, special=True, normalized=False)])
        t.add_tokens([AddedToken(ADDED, special=False, normalized=False)])
        cases = []
        for text in CASES:
            ids = t.encode(text, add_special_tokens=False).ids
            case = {"text": text, "ids": ids}
            if SPECIAL not in text and ADDED not in text:
                norm = normalizer.normalize_str(text) if normalizer is not None else text
                words = pre.pre_tokenize_str(norm)
                case["norm"] = norm
                case["words"] = byte_offsets(norm, [span for _, span in words])
            cases.append(case)
        result["pretokenizers"][name] = cases
    # The added tokens got the ids after the vocabulary, in order.
    special_id = len(tokens)
    added_id = len(tokens) + 1
    t_check = Tokenizer(models.BPE(vocab=dict(vocab), merges=[tuple(m.split(" ")) for m in merges]))
    t_check.add_special_tokens([AddedToken(SPECIAL, special=True, normalized=False)])
    t_check.add_tokens([AddedToken(ADDED, special=False, normalized=False)])
    assert t_check.token_to_id(SPECIAL) == special_id and t_check.token_to_id(ADDED) == added_id
    result["tokens"] += [SPECIAL, ADDED]
    result["types"] += [3, 4]
    return result


def spm_goldens():
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
        prefix = str(Path(tmp) / "m")
        spm.SentencePieceTrainer.train(
            input=str(corpus), model_prefix=prefix, model_type="bpe", vocab_size=600,
            character_coverage=0.9995, byte_fallback=True, split_digits=True,
            normalization_rule_name="identity", add_dummy_prefix=True,
            remove_extra_whitespaces=False, allow_whitespace_only_pieces=True,
            unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2)
        sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    n = sp.get_piece_size()
    tokens, scores, types = [], [], []
    for i in range(n):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        if sp.is_unknown(i):
            types.append(2)
        elif sp.is_control(i):
            types.append(3)
        elif sp.is_byte(i):
            types.append(6)
        elif sp.is_unused(i):
            types.append(5)
        else:
            types.append(1)
    cases = [{"text": text, "ids": sp.encode(text)} for text in CASES]
    return {"tokens": tokens, "scores": scores, "types": types, "unk_id": 0, "bos_id": 1, "eos_id": 2,
            "cases": cases}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    files = {"bpe.json": bpe_goldens(), "spm.json": spm_goldens()}
    manifest = [
        "# Made by tools/make_tokenizer_goldens.py; do not edit.",
        f"tokenizers {tokenizers.__version__}",
        f"sentencepiece {spm.__version__}",
        f"python {sys.version.split()[0]}, unicodedata {unicodedata.unidata_version}",
    ]
    for name, data in files.items():
        blob = (json.dumps(data, ensure_ascii=True, separators=(",", ":")) + "\n").encode()
        (OUT / name).write_bytes(blob)
        manifest.append(f"{name} {len(blob)} sha256 {hashlib.sha256(blob).hexdigest()}")
    (OUT / "MANIFEST.txt").write_text("\n".join(manifest) + "\n")
    print("\n".join(manifest))


if __name__ == "__main__":
    main()
