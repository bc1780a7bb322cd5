"""Tiny tokenizers for the golden models, built with the reference libraries.

Two families, as the real models use them:

* "spm": a SentencePiece BPE model (Llama 1/2, Mistral, Phi-3). The model proto is
  written field by field (pieces, scores, types, byte fallback, dummy prefix), so
  the `sentencepiece` library itself is the reference tokenizer, and transformers'
  own slow->fast converter makes tokenizer.json from it. The GGUF metadata is what
  llama.cpp's convert_hf_to_gguf.py takes from such a tokenizer.model
  (tokenizer.ggml.model = "llama", pieces, scores, token types).
* "bpe": a byte-level BPE (GPT-2 for Phi-2, Qwen2, Llama 3) built with the
  `tokenizers` library: 256 byte tokens in GPT-2's byte-to-unicode order, a few
  merges, and the family's special tokens; the pre-tokenizer regex of the family
  ("gpt-2", "qwen2", "llama-bpe" in llama.cpp's tokenizer.ggml.pre).

Each builder returns a `Vocab` holding everything the later steps need.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

# llama.cpp / SentencePiece token types (tokenizer.ggml.token_type values).
TT_NORMAL, TT_UNKNOWN, TT_CONTROL, TT_USER_DEFINED, TT_UNUSED, TT_BYTE = 1, 2, 3, 4, 5, 6

SPM_SPACE = "\u2581"  # "▁", SentencePiece's visible space

# SentencePiece merges in priority order (first = highest score). Every piece made
# here becomes a vocabulary entry; the single characters they use are added too.
SPM_MERGES = [
    (SPM_SPACE, "t"), ("h", "e"), (SPM_SPACE + "t", "he"), ("i", "n"), ("e", "r"),
    (SPM_SPACE, "a"), ("o", "n"), ("r", "e"), ("a", "t"), ("e", "n"), ("o", "r"),
    (SPM_SPACE, "s"), ("i", "s"), ("a", "n"), (SPM_SPACE, "o"), (SPM_SPACE, "c"),
    ("e", "d"), ("in", "g"), (SPM_SPACE + "o", "n"), (SPM_SPACE + "c", "at"),
    (SPM_SPACE + "a", "n"), (SPM_SPACE + "an", "d"), (SPM_SPACE, "m"),
    (SPM_SPACE + "m", "at"),
]

# Byte-level merges in rank order, written in GPT-2's byte alphabet ("Ġ" = space).
BPE_MERGES = [
    ("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("e", "r"), ("Ġ", "a"),
    ("o", "n"), ("r", "e"), ("a", "t"), ("e", "n"), ("Ġ", "s"), ("i", "s"),
    ("Ġ", "o"), ("a", "n"), ("Ġa", "n"), ("Ġan", "d"), ("Ġo", "n"), ("in", "g"),
    ("Ġ", "c"), ("Ġc", "at"), ("2", "0"), ("Ġ", "2"), ("Ġ2", "0"), ("20", "2"),
    ("Ġ20", "2"),
]

# Pre-tokenizer regexes of the byte-level families (as in their tokenizer.json).
_RE_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_RE_QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
             r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_RE_LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
              r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# Prompt texts: chosen to mix merged pieces, plain characters, byte fallback
# (capitals, "é" in SPM), digits (split differently by each byte-level family).
SPM_TEXT = "the cat sat on the mat and ate. Été"
BPE_TEXT = "the cat sat on 2024 and ate. Été"


@dataclasses.dataclass
class Vocab:
    kind: str                 # "spm" or "bpe"
    pre: str                  # tokenizer.ggml.pre value
    tokens: list[str]         # token text by id (GGUF tokenizer.ggml.tokens)
    scores: list[float] | None  # SPM scores by id, None for byte-level BPE
    types: list[int]          # llama.cpp token types by id
    merges: list[str] | None  # "a b" merge strings (byte-level BPE only)
    bos_id: int | None        # begin-of-sequence id (None: the family has none)
    eos_id: int               # end-of-sequence id
    unk_id: int | None        # unknown-token id (SPM only)
    add_bos: bool             # whether the tokenizer prepends BOS to a prompt
    text: str                 # the prompt text
    prompt_ids: list[int]     # the reference tokenizer's ids for `text`
    hf_files: dict[str, bytes]  # file name -> content for the HF folder

    @property
    def size(self) -> int:
        return len(self.tokens)


def _spm_proto(pieces: list[tuple[str, float, int]]) -> bytes:
    """Serialise a SentencePiece BPE ModelProto with Llama's normaliser settings."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    m = pb.ModelProto()
    for text, score, ttype in pieces:
        p = m.pieces.add()
        p.piece = text
        p.score = score
        # SentencePiece's own type enum: NORMAL 1, UNKNOWN 2, CONTROL 3,
        # USER_DEFINED 4, BYTE 6, UNUSED 5 (the same numbers llama.cpp uses).
        p.type = ttype
    ts = m.trainer_spec
    ts.model_type = pb.TrainerSpec.BPE
    ts.vocab_size = len(pieces)
    ts.byte_fallback = True
    ts.unk_id, ts.bos_id, ts.eos_id, ts.pad_id = 0, 1, 2, -1
    ts.split_digits = True
    ns = m.normalizer_spec
    ns.name = "identity"
    ns.add_dummy_prefix = True
    ns.remove_extra_whitespaces = False
    ns.escape_whitespaces = True
    return m.SerializeToString()


def build_spm(tmp_dir: Path) -> Vocab:
    """SentencePiece-BPE vocabulary: <unk> <s> </s>, 256 byte pieces, merges, chars."""
    import sentencepiece as spm
    from transformers import LlamaTokenizer, LlamaTokenizerFast

    pieces: list[tuple[str, float, int]] = [
        ("<unk>", 0.0, TT_UNKNOWN), ("<s>", 0.0, TT_CONTROL), ("</s>", 0.0, TT_CONTROL)]
    pieces += [(f"<0x{b:02X}>", 0.0, TT_BYTE) for b in range(256)]
    merged = [a + b for a, b in SPM_MERGES]
    assert len(set(merged)) == len(merged), "duplicate SPM merge result"
    chars: list[str] = []
    for a, b in SPM_MERGES:
        for s in (a, b):
            if len(s) == 1 and s not in chars:
                chars.append(s)
    for a, b in SPM_MERGES:  # every merge input must be a piece
        assert (len(a) == 1 or a in merged) and (len(b) == 1 or b in merged), (a, b)
    # Scores: merged pieces by priority, then the single characters below them.
    pieces += [(p, -float(i), TT_NORMAL) for i, p in enumerate(merged)]
    pieces += [(c, -float(len(merged) + i), TT_NORMAL) for i, c in enumerate(chars)]

    proto = _spm_proto(pieces)
    sp = spm.SentencePieceProcessor(model_proto=proto)
    ids = [1] + sp.encode(SPM_TEXT)  # BOS + pieces, as LlamaTokenizer adds it

    model_path = tmp_dir / "tokenizer.model"
    model_path.write_bytes(proto)
    slow = LlamaTokenizer(vocab_file=str(model_path), legacy=True, add_bos_token=True,
                          add_eos_token=False)
    fast = LlamaTokenizerFast(vocab_file=str(model_path), legacy=True, add_prefix_space=True,
                              add_bos_token=True, add_eos_token=False, from_slow=True)
    assert slow(SPM_TEXT).input_ids == ids, (slow(SPM_TEXT).input_ids, ids)
    assert fast(SPM_TEXT).input_ids == ids, (fast(SPM_TEXT).input_ids, ids)
    out = tmp_dir / "spm_fast"
    fast.save_pretrained(str(out))
    files = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}
    files["tokenizer.model"] = proto

    return Vocab(kind="spm", pre="default", tokens=[p[0] for p in pieces],
                 scores=[p[1] for p in pieces], types=[p[2] for p in pieces],
                 merges=None, bos_id=1, eos_id=2, unk_id=0, add_bos=True,
                 text=SPM_TEXT, prompt_ids=ids, hf_files=files)


def byte_to_unicode() -> list[tuple[int, str]]:
    """GPT-2's reversible byte -> printable character table, in GPT-2's id order.

    Printable Latin-1 bytes map to themselves and come first; the other bytes
    (controls, space, ...) map to U+0100 onwards in byte order and come after.
    """
    keep = (list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100)))
    table = [(b, chr(b)) for b in keep]
    extra = 0
    for b in range(256):
        if b not in keep:
            table.append((b, chr(256 + extra)))
            extra += 1
    return table


def build_bpe(tmp_dir: Path, flavour: str) -> Vocab:
    """Byte-level BPE vocabulary for flavour "gpt-2" (Phi-2), "qwen2", "llama-bpe"."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tokens = [ch for _, ch in byte_to_unicode()]
    for a, b in BPE_MERGES:
        assert a in tokens and b in tokens, (a, b)
        assert a + b not in tokens, a + b
        tokens.append(a + b)
    n_normal = len(tokens)
    if flavour == "llama-bpe":
        specials = ["<|begin_of_text|>", "<|end_of_text|>"]
    else:
        specials = ["<|endoftext|>"]
    tokens += specials
    vocab = {t: i for i, t in enumerate(tokens[:n_normal])}

    # Llama 3's tokenizer.json sets ignore_merges (a pre-token that is a
    # whole vocabulary entry is taken as it is); Qwen2's normalizes to NFC.
    model = models.BPE(vocab=vocab, merges=list(BPE_MERGES), fuse_unk=False,
                       byte_fallback=False, ignore_merges=flavour == "llama-bpe")
    tok = Tokenizer(model)
    if flavour == "qwen2":
        tok.normalizer = normalizers.NFC()
    if flavour == "gpt-2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        regex = _RE_QWEN2 if flavour == "qwen2" else _RE_LLAMA3
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    bos_id = eos_id = n_normal  # <|endoftext|> for gpt-2 / qwen2
    add_bos = False
    if flavour == "llama-bpe":
        bos_id, eos_id, add_bos = n_normal, n_normal + 1, True
        tok.post_processor = processors.TemplateProcessing(
            single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
            special_tokens=[("<|begin_of_text|>", bos_id)])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    assert tok.get_vocab_size() == len(tokens)

    ids = tok.encode(BPE_TEXT).ids
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=tokens[bos_id],
                                   eos_token=tokens[eos_id], unk_token=None)
    assert fast(BPE_TEXT).input_ids == ids
    out = tmp_dir / f"bpe_{flavour}"
    fast.save_pretrained(str(out))
    files = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}

    types = [TT_NORMAL] * n_normal + [TT_CONTROL] * len(specials)
    return Vocab(kind="bpe", pre=flavour, tokens=tokens, scores=None, types=types,
                 merges=[f"{a} {b}" for a, b in BPE_MERGES],
                 bos_id=bos_id, eos_id=eos_id, unk_id=None, add_bos=add_bos,
                 text=BPE_TEXT, prompt_ids=ids, hf_files=files)


def describe(v: Vocab) -> dict:
    """The tokenizer facts recorded in golden.json."""
    return {"kind": v.kind, "ggml_model": "llama" if v.kind == "spm" else "gpt2",
            "ggml_pre": v.pre, "n_tokens": v.size, "bos_id": v.bos_id,
            "eos_id": v.eos_id, "unk_id": v.unk_id, "add_bos": v.add_bos,
            "text": v.text, "text_ids": v.prompt_ids}


if __name__ == "__main__":  # quick look: python vocab.py
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        for v in (build_spm(Path(d)), build_bpe(Path(d), "gpt-2"),
                  build_bpe(Path(d), "qwen2"), build_bpe(Path(d), "llama-bpe")):
            print(json.dumps(describe(v), ensure_ascii=False))
            print("  ", [v.tokens[i] for i in v.prompt_ids], sorted(v.hf_files))
