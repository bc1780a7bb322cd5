#!/usr/bin/env python3
"""Make the golden files for kiln's tokenizer.json loader (tests/unit/test_tokenizer_hf*.c).

For each style of Hugging Face tokenizer folder that kiln reads, this script
builds a small tokenizer.json and tokenizer_config.json laid out as the real
models' files are, and records what the reference (Hugging Face
`tokenizers`) makes of a list of test strings: the ids with and without the
special tokens of the post-processor, and the decoded text (with and
without special tokens). Nothing large is committed: the vocabularies are
trained here on the little corpus below.

Styles (tests/data/tokenizer_hf/<style>/):
  * llama2: a SentencePiece BPE model (trained by `sentencepiece` with
    Llama's settings: identity normalization, byte fallback, split digits)
    turned into a tokenizer.json the way transformers' converter does it:
    the pieces as the BPE vocabulary, every split of a piece into two pieces
    as a merge (pieces by score, then by the ids of the two halves), the
    normalizer Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer, the
    decoder Replace("▁", " ") + ByteFallback + Fuse + Strip, and the
    post-processor "<s> $A". Merges in the [left, right] form.
  * llama2-metaspace: the same vocabulary as transformers writes it for
    legacy=false: no normalizer, Metaspace(prepend_scheme="first",
    split=False).
  * metaspace-split: the same with Metaspace(prepend_scheme="always",
    split=True) (what older files' Metaspace with add_prefix_space meant).
  * gpt2: byte-level BPE trained by `tokenizers`, ByteLevel pre-tokenizer
    with its regex, merges in the old "left right" string form.
  * llama3: the same vocabulary with Llama 3's Split regex + ByteLevel,
    ignore_merges, and "<|begin_of_text|> $A".
  * qwen2: NFC + Qwen2's Split regex + ByteLevel.
  * deepseek-llm: DeepSeek LLM's six Split regexes + ByteLevel, "<｜begin▁of▁sentence｜> $A".
  * spm-rank: a handmade SentencePiece-style vocabulary whose merges are not
    every split of every piece ("abc" is made from "ab c" only) and that has
    no byte fallback (unknown characters become <unk>, one each): merging by
    rank and merging by piece score give different ids here.

Usage: python3 tools/make_tokenizer_hf_goldens.py
It creates tools/.venv (python3 -m venv) if needed, installs
tools/requirements-tokenizer.txt into it, re-runs itself inside it, and
rewrites tests/data/tokenizer_hf/. The output is deterministic.
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
OUT = ROOT / "tests" / "data" / "tokenizer_hf"


run_in_venv(VENV, [REQUIREMENTS])

import sentencepiece as spm  # noqa: E402  (only importable inside the venv)
import tokenizers  # noqa: E402
from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models,  # noqa: E402
                        normalizers, pre_tokenizers, processors, trainers)

# Training text: several scripts, code, numbers, punctuation.
CORPUS = [
    "A small corpus for a small tokenizer: it has to merge the common words of English text.",
    "They'll say it's theirs, we've heard it, I'd think you're right. THEY'LL SAY IT'S OURS!",
    "Counting 7, 42, 256, 1024, 65536 and 2.71828 or 10/05/2023 - numbers split in digits.",
    "def tokenize(text):\n    return [t for t in text.split()]\n\tif x == 1:\r\n        pass",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Ο Ζεύς και η Ήρα κάθονται στον Όλυμπο.",
    "日本語の文章と中文的句子，还有一些标点符号。",
    "한국어 문장도 조금 있습니다. 감사합니다!",
    "Tiếng Việt: chúng tôi đã đến Hà Nội.",
    "symbols → ← ✓ ★ and emoji 🎉🐍 together",
    "ｗｉｄｅ　ｃｈａｒｓ！ «guillemets» and “curly” quotes…",
    "नमस्ते दुनिया ১২৩ العربية",
] * 4


def corpus():
    """CORPUS plus the English text and Python of the pinned `tokenizers`
    package's type stubs (its normalizers' and pre-tokenizers' docs): the
    same on every machine, and enough to train a few hundred merges."""
    stubs = Path(tokenizers.__file__).parent
    text = []
    for name in ("normalizers", "pre_tokenizers"):
        text += (stubs / name / "__init__.pyi").read_text(encoding="utf-8").splitlines()
    return CORPUS + [line for line in text if line.strip()]

# Test strings. <|x|> is each style's special token (replaced below) and
# <tool> a non-special added token.
CASES = [
    "",
    " ",
    "  ",
    "\n",
    "\n\n",
    "\t \n",
    "\r\n",
    "Hello world",
    " Hello world",
    "   Hello   world   ",
    "Hello, world! How are you?",
    "They'll SAY it's I'D you'RE 'll",
    "can't won't",
    "7 42 256 1024 65536 12345678",
    "2.71828, 10/05/2023",
    "x³ ¾ Ⅸ ٤٥٦ ७८",
    "A small corpus for a small tokenizer.",
    "def f(x):\n    return x\n",
    "end   \n   start",
    "Съешь ещё булок",
    "Ζεύς Ήρα Ω",
    "日本語の文章。",
    "한국어 문장",
    "chúng tôi đã đến",
    "नमस्ते ১২৩",
    "emoji 🎉🐍 ✓!",
    "ｗｉｄｅ　ｃｈａｒｓ！«x»",
    "nbsp\u00a0x nel\u0085y",
    "e\u0301 vs é",
    "Ω \u2126 K \u212a",
    "▁literal ▁▁ marks",
    "<0x41> <s> </s> <unk>",
    "unseen ☃ ⛄ 𝔘 chars",
    "<|x|>",
    "Hello<|x|> world",
    "a<tool>b <tool> c",
    "<|x|><tool><|x|>",
    " <|x|> x",
    "!!!!!! ??? ......",
    "MixedCASE camelCase snake_case",
]

ADDED = "<tool>"  # a non-special added token, in every style


# ---- SentencePiece-style vocabulary ----

def train_spm():
    """(pieces, scores, types) of a SentencePiece BPE model with Llama's settings."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.txt"
        path.write_text("\n".join(corpus()) + "\n", encoding="utf-8")
        prefix = str(Path(tmp) / "m")
        spm.SentencePieceTrainer.train(
            input=str(path), model_prefix=prefix, model_type="bpe", vocab_size=1000,
            character_coverage=0.995, byte_fallback=True, split_digits=True,
            normalization_rule_name="identity", add_dummy_prefix=True,
            remove_extra_whitespaces=False, allow_whitespace_only_pieces=True,
            unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2)
        sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    scores = [sp.get_score(i) for i in range(sp.get_piece_size())]
    return pieces, scores


def spm_merges(pieces, scores):
    """Every split of a piece into two pieces, as transformers' converter
    lists them: by the piece's score (highest first, ties by id), then by the
    ids of the left and right halves."""
    vocab = {p: i for i, p in enumerate(pieces)}
    merges = []
    for i in sorted(range(len(pieces)), key=lambda i: (-scores[i], i)):
        p = pieces[i]
        local = []
        for k in range(1, len(p)):
            left, right = p[:k], p[k:]
            if left in vocab and right in vocab:
                local.append((vocab[left], vocab[right], left, right))
        merges += [(left, right) for _, _, left, right in sorted(local)]
    return merges


def spm_decoder(strip, byte_fallback):
    parts = [decoders.Replace("▁", " ")] + ([decoders.ByteFallback()] if byte_fallback else []) + [decoders.Fuse()]
    if strip:
        parts.append(decoders.Strip(" ", 1, 0))
    return decoders.Sequence(parts)


def rank_tokenizer():
    """The spm-rank style (see the docstring at the top)."""
    pieces = ["<unk>", "<s>", "</s>", "▁", "a", "b", "c", "ab", "bc", "abc", "▁a", "▁b"]
    merges = [("b", "c"), ("a", "b"), ("ab", "c"), ("▁", "a"), ("▁", "b")]
    t, config, special = spm_tokenizer(pieces, merges, "llama2", byte_fallback=False)
    return t, config, special


def spm_tokenizer(pieces, merges, style, byte_fallback=True):
    vocab = {p: i for i, p in enumerate(pieces)}
    t = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=byte_fallback,
                             byte_fallback=byte_fallback))
    if style == "llama2":
        t.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    elif style == "llama2-metaspace":
        t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    else:
        t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    t.decoder = spm_decoder(True, byte_fallback)
    t.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in ("<unk>", "<s>", "</s>")])
    t.add_special_tokens([AddedToken("<|x|>", special=True, normalized=False)])
    t.add_tokens([AddedToken(ADDED, special=False, normalized=False)])
    t.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                     special_tokens=[("<s>", vocab["<s>"])])
    config = {
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": False, "normalized": False,
                      "rstrip": False, "single_word": False},
        "eos_token": {"__type": "AddedToken", "content": "</s>", "lstrip": False, "normalized": False,
                      "rstrip": False, "single_word": False},
        "unk_token": {"__type": "AddedToken", "content": "<unk>", "lstrip": False, "normalized": False,
                      "rstrip": False, "single_word": False},
        "pad_token": None,
        "legacy": style == "llama2",
        "tokenizer_class": "LlamaTokenizer",
    }
    return t, config, "<|x|>"


# ---- byte-level vocabulary ----

# Whole-word tokens that no merge produces (Llama 3's ignore_merges uses them).
EXTRA_WORDS = ["Ġzebra", "quokka", "Ġquokka"]


def split(pattern):
    return pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False)


def bytelevel_tail():
    return pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)


def train_bytelevel():
    """(vocab text -> id, merges) of a byte-level BPE trained by `tokenizers`."""
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=900, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    t.train_from_iterator(corpus(), trainer)
    model = json.loads(t.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    vocab = dict(model["vocab"])
    for w in EXTRA_WORDS:
        vocab.setdefault(w, len(vocab))
    return vocab, merges


def bytelevel_tokenizer(vocab, merges, style):
    t = Tokenizer(models.BPE(vocab=dict(vocab), merges=list(merges), ignore_merges=style == "llama3"))
    t.decoder = decoders.ByteLevel()
    if style == "gpt2":
        t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
        t.post_processor = processors.ByteLevel(trim_offsets=False)
        special = ["<|endoftext|>"]
        # GPT-2's file has its one special token with normalized: true.
        t.add_special_tokens([AddedToken(special[0], special=True, normalized=True)])
        config = {"add_prefix_space": False, "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                  "unk_token": "<|endoftext|>", "model_max_length": 1024, "tokenizer_class": "GPT2Tokenizer"}
    elif style == "llama3":
        t.pre_tokenizer = pre_tokenizers.Sequence([split(LLAMA3_RE), bytelevel_tail()])
        special = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
        t.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in special])
        bos_id = t.token_to_id("<|begin_of_text|>")
        t.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                          pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                                          special_tokens=[("<|begin_of_text|>", bos_id)])])
        config = {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
                  "clean_up_tokenization_spaces": True, "tokenizer_class": "PreTrainedTokenizerFast"}
    elif style == "qwen2":
        t.normalizer = normalizers.NFC()
        t.pre_tokenizer = pre_tokenizers.Sequence([split(QWEN2_RE), bytelevel_tail()])
        t.post_processor = processors.ByteLevel(trim_offsets=False)
        special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        t.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in special])
        config = {"add_prefix_space": False, "bos_token": None, "eos_token": "<|im_end|>",
                  "pad_token": "<|endoftext|>", "errors": "replace", "tokenizer_class": "Qwen2Tokenizer"}
    else:  # deepseek-llm
        t.pre_tokenizer = pre_tokenizers.Sequence([split(r) for r in DEEPSEEK_RES] + [bytelevel_tail()])
        special = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"]
        t.add_special_tokens([AddedToken(s, special=True, normalized=True) for s in special])
        bos_id = t.token_to_id(special[0])
        t.post_processor = processors.TemplateProcessing(single=special[0] + " $A",
                                                         pair=special[0] + " $A " + special[0] + " $B",
                                                         special_tokens=[(special[0], bos_id)])
        config = {"add_bos_token": True, "add_eos_token": False,
                  "bos_token": {"__type": "AddedToken", "content": special[0], "lstrip": False,
                                "normalized": True, "rstrip": False, "single_word": False},
                  "eos_token": {"__type": "AddedToken", "content": special[1], "lstrip": False,
                                "normalized": True, "rstrip": False, "single_word": False},
                  "pad_token": None, "tokenizer_class": "LlamaTokenizerFast"}
    t.add_tokens([AddedToken(ADDED, special=False, normalized=False)])
    return t, config, special[-1]


# ---- output ----

def config_token(config, key):
    v = config.get(key)
    return v["content"] if isinstance(v, dict) else v


# More cases for spm-rank, where its few pieces make a difference.
RANK_CASES = ["abc", "abcabc", "aabc", "a bc", "bca b", "cab abc"]


def run_cases(t, config, special, extra):
    """The reference's ids and decoded texts for every case."""
    cases = []
    for text in CASES + extra:
        text = text.replace("<|x|>", special)
        ids = t.encode(text, add_special_tokens=True).ids
        plain = t.encode(text, add_special_tokens=False).ids
        cases.append({"text": text, "ids": ids, "ids_plain": plain,
                      "decoded": t.decode(ids, skip_special_tokens=True),
                      "decoded_special": t.decode(ids, skip_special_tokens=False)})
    ids = {}
    for key in ("bos_token", "eos_token", "pad_token"):
        name = config_token(config, key)
        ids[key] = t.token_to_id(name) if name is not None else None
    model = json.loads(t.to_str())["model"]
    ids["unk_token"] = t.token_to_id(model["unk_token"]) if model.get("unk_token") else None
    return {"special": special, "ids": ids, "cases": cases}


def dump(data):
    return (json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def main() -> None:
    styles = {}
    pieces, scores = train_spm()
    merges = spm_merges(pieces, scores)
    for style in ("llama2", "llama2-metaspace", "metaspace-split"):
        styles[style] = spm_tokenizer(pieces, merges, style)
    vocab, bmerges = train_bytelevel()
    for style in ("gpt2", "llama3", "qwen2", "deepseek-llm"):
        styles[style] = bytelevel_tokenizer(vocab, bmerges, style)
    styles["spm-rank"] = rank_tokenizer()

    goldens, files = {}, {}
    for style, (t, config, special) in styles.items():
        doc = json.loads(t.to_str())
        if style == "gpt2":
            # GPT-2's file predates the [left, right] form.
            doc["model"]["merges"] = [" ".join(m) for m in doc["model"]["merges"]]
        blob = dump(doc)
        # The reference encodes with the file exactly as committed.
        t = Tokenizer.from_str(blob.decode())
        goldens[style] = run_cases(t, config, special, RANK_CASES if style == "spm-rank" else [])
        files[f"{style}/tokenizer.json"] = blob
        files[f"{style}/tokenizer_config.json"] = dump(config)
    files["cases.json"] = dump(goldens)

    manifest = [
        "# Made by tools/make_tokenizer_hf_goldens.py; do not edit.",
        f"tokenizers {tokenizers.__version__}",
        f"sentencepiece {spm.__version__}",
        f"python {sys.version.split()[0]}, unicodedata {unicodedata.unidata_version}",
    ]
    for name, blob in sorted(files.items()):
        path = OUT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
        manifest.append(f"{name} {len(blob)} sha256 {hashlib.sha256(blob).hexdigest()}")
    (OUT / "MANIFEST.txt").write_text("\n".join(manifest) + "\n")
    print("\n".join(manifest))


if __name__ == "__main__":
    main()
