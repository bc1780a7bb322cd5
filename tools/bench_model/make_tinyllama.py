#!/usr/bin/env python3
"""Write TinyLlama-1.1B-shaped GGUF files with random weights, for `kiln bench`.

The benchmark models of docs/performance.md: the shape of TinyLlama-1.1B
(llama architecture, 22 blocks, 2048 wide, 32 query heads and 4 key/value
heads of 64, feed-forward 5632, vocabulary 32000, context 2048, untied
output) with normally distributed weights (std 0.02, like trained models, so
activations stay in a sane range) and a minimal but valid SentencePiece
vocabulary (<unk>, <s>, </s>, the 256 byte tokens, then filler pieces).
Speed does not depend on the values, only on the shapes and types, so these
files measure what a real TinyLlama would.

One pass draws every tensor once (seeded: the same seed gives the same
files) and writes it to the five variants at once:
    tinyllama-f16.gguf    2-D weights F16
    tinyllama-bf16.gguf   2-D weights BF16 (rounded to nearest even, as llama.cpp converts)
    tinyllama-q8_0.gguf   2-D weights Q8_0
    tinyllama-q4_0.gguf   2-D weights Q4_0
    tinyllama-q4_k.gguf   2-D weights Q4_K (every one, like llama-quantize --pure)
Norm weights stay F32 as llama.cpp writes them. Each tensor is streamed to
the files as soon as it is encoded, so memory stays around a few hundred MB.
After each tensor a few rows of every variant are decoded again (by the gguf
package) and compared with the drawn values, so a wrong encoding stops the run.

The files are GBs (about 2.2 + 2.2 + 1.2 + 0.6 + 0.6): they go to a folder outside
the repository (default ~/kiln-bench-models) and must never be committed.

Run with any python3: the first run creates the virtual environment
tools/.venv/bench (packages pinned in requirements.txt) and re-runs itself in it.
    python3 tools/bench_model/make_tinyllama.py [OUT_DIR] [--seed N] [--only f16,q4_k]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VENV = ROOT / "tools" / ".venv" / "bench"


def ensure_venv() -> None:
    """Re-run this script inside tools/.venv/bench, creating it first if needed."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "-r", str(HERE / "requirements.txt")], check=True)
    os.execv(str(py), [str(py), str(Path(__file__).resolve()), *sys.argv[1:]])


# ---- the shape (TinyLlama-1.1B's config.json) -----------------------------
N_LAYER = 22
N_EMBD = 2048
N_HEAD = 32
N_HEAD_KV = 4
HEAD_DIM = N_EMBD // N_HEAD
N_FF = 5632
N_VOCAB = 32000
N_CTX = 2048
RMS_EPS = 1e-5
ROPE_BASE = 10000.0
WEIGHT_STD = 0.02


def tensor_plan() -> list[tuple[str, tuple[int, ...]]]:
    """Every tensor in llama.cpp's order: name and numpy shape (rows, row length)."""
    plan = [("token_embd.weight", (N_VOCAB, N_EMBD))]
    kv = N_HEAD_KV * HEAD_DIM
    for i in range(N_LAYER):
        b = f"blk.{i}."
        plan += [
            (b + "attn_norm.weight", (N_EMBD,)),
            (b + "attn_q.weight", (N_EMBD, N_EMBD)),
            (b + "attn_k.weight", (kv, N_EMBD)),
            (b + "attn_v.weight", (kv, N_EMBD)),
            (b + "attn_output.weight", (N_EMBD, N_EMBD)),
            (b + "ffn_norm.weight", (N_EMBD,)),
            (b + "ffn_gate.weight", (N_FF, N_EMBD)),
            (b + "ffn_up.weight", (N_FF, N_EMBD)),
            (b + "ffn_down.weight", (N_EMBD, N_FF)),
        ]
    plan += [("output_norm.weight", (N_EMBD,)), ("output.weight", (N_VOCAB, N_EMBD))]
    return plan


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    """A 32000-piece SentencePiece vocabulary: specials, bytes, then filler.

    The filler is "▁" followed by the lowercase words of one, two and three
    letters, each also without the "▁", in that order; scores fall with the
    index so shorter pieces merge first, as in a trained model. Every prefix
    of a piece is itself a piece, so the BPE merges reach every filler piece.
    """
    import gguf

    T = gguf.TokenType
    tokens = ["<unk>", "<s>", "</s>"]
    types = [T.UNKNOWN, T.CONTROL, T.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [T.BYTE] * 256
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = list(letters)
    words += [a + b for a in letters for b in letters]
    words += [a + b + c for a in letters for b in letters for c in letters]
    filler = ["\u2581"]
    for w in words:
        filler += ["\u2581" + w, w]
    need = N_VOCAB - len(tokens)
    tokens += filler[:need]
    types += [T.NORMAL] * need
    scores = [0.0] * 259 + [-float(i) for i in range(need)]
    assert len(tokens) == N_VOCAB and len(set(tokens)) == N_VOCAB
    return tokens, scores, [int(t) for t in types]


# ---- encodings -----------------------------------------------------------------

def variants():
    """Variant name -> (ggml type of 2-D weights, general.file_type)."""
    import gguf
    from gguf import GGMLQuantizationType as QT

    F = gguf.LlamaFileType
    return {
        "f16": (QT.F16, F.MOSTLY_F16),
        "bf16": (QT.BF16, F.MOSTLY_BF16),
        "q8_0": (QT.Q8_0, F.MOSTLY_Q8_0),
        "q4_0": (QT.Q4_0, F.MOSTLY_Q4_0),
        "q4_k": (QT.Q4_K, F.MOSTLY_Q4_K_S),
    }


def encode(x, qtype):
    """float32 rows -> the array GGUFWriter stores for qtype (F16 values or raw bytes)."""
    import numpy as np
    import gguf.quants
    from gguf import GGMLQuantizationType as QT

    if qtype == QT.F32:
        return x
    if qtype == QT.F16:
        return x.astype(np.float16)
    if qtype == QT.Q4_K:
        sys.path.insert(0, str(ROOT / "tools" / "llm_goldens"))
        import q4k  # the project's Q4_K quantizer (gguf can only decode Q4_K)
        return q4k.quantize_q4_k(x)
    return gguf.quants.quantize(x, qtype)


def encoded_nbytes(shape, qtype) -> int:
    """Bytes of one tensor of `shape` stored as qtype."""
    import gguf

    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n = 1
    for d in shape:
        n *= d
    return n // block * size


def check_rows(x, enc, qtype, name: str) -> None:
    """Decode the first rows again and compare with the drawn floats."""
    import numpy as np
    import gguf.quants

    rows = min(4, x.shape[0]) if x.ndim == 2 else 1
    got = gguf.quants.dequantize(enc[:rows] if x.ndim == 2 else enc, qtype).reshape(rows, -1)
    want = x[:rows].reshape(rows, -1)
    # 4-bit steps of a min/max fit over +-4 sigma are about 8/15 sigma; half
    # a step is the most a correct encoding can be off (plus scale rounding).
    bound = {"F32": 0.0, "F16": 1e-3, "BF16": 8e-3, "Q8_0": 0.01, "Q4_0": 0.5, "Q4_K": 0.5}[qtype.name]
    err = float(np.abs(got - want).max()) / float(np.abs(want).max() or 1.0)
    if err > bound:
        raise SystemExit(f"make_tinyllama: {name} as {qtype.name} decodes {err:.3g} off (bound {bound})")


# ---- writing -------------------------------------------------------------------

def open_writer(path: Path, ftype, tokens, scores, types):
    """A GGUFWriter for one variant, metadata written, tensor infos still to add."""
    import gguf

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name("TinyLlama-1.1B-shaped random weights (kiln bench)")
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_feed_forward_length(N_FF)
    w.add_block_count(N_LAYER)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_layer_norm_rms_eps(RMS_EPS)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(ROPE_BASE)
    w.add_vocab_size(N_VOCAB)
    w.add_file_type(ftype)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    return w


def main() -> None:
    ensure_venv()
    import numpy as np
    import gguf
    from gguf import GGMLQuantizationType as QT

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", nargs="?", default=str(Path.home() / "kiln-bench-models"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", default="", help="comma-separated variants (default: all five)")
    args = ap.parse_args()
    out = Path(args.out_dir).expanduser().resolve()
    if out == ROOT or ROOT in out.parents:
        raise SystemExit(f"make_tinyllama: {out} is inside the repository; pick a folder outside it")
    out.mkdir(parents=True, exist_ok=True)
    chosen = {k: v for k, v in variants().items() if not args.only or k in args.only.split(",")}
    if not chosen:
        raise SystemExit(f"make_tinyllama: --only names none of {', '.join(variants())}")

    plan = tensor_plan()
    tokens, scores, types = vocabulary()
    writers = {}
    for name, (qtype, ftype) in chosen.items():
        path = out / f"tinyllama-{name}.gguf"
        w = open_writer(path.with_suffix(".gguf.part"), ftype, tokens, scores, types)
        for tname, shape in plan:
            qt = qtype if len(shape) == 2 else QT.F32
            nbytes = encoded_nbytes(shape, qt)
            if qt in (QT.F32, QT.F16):
                w.add_tensor_info(tname, shape, np.float32 if qt == QT.F32 else np.float16, nbytes)
            else:
                block, size = gguf.GGML_QUANT_SIZES[qt]
                w.add_tensor_info(tname, (shape[0], shape[1] // block * size), np.uint8, nbytes, raw_dtype=qt)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        writers[name] = (w, qtype, path)

    t0 = time.time()
    chunk = 2048  # rows encoded at a time (bounds the quantizers' temporaries)
    for i, (tname, shape) in enumerate(plan):
        rng = np.random.default_rng([args.seed, i])
        if len(shape) == 1:
            x = np.ones(shape, dtype=np.float32)  # RMSNorm gains, as initialised
        else:
            x = rng.standard_normal(shape, dtype=np.float32)
            x *= np.float32(WEIGHT_STD)
        for name, (w, qtype, _) in writers.items():
            qt = qtype if len(shape) == 2 else QT.F32
            if len(shape) == 2:
                enc = np.concatenate([encode(x[r:r + chunk], qt) for r in range(0, shape[0], chunk)])
            else:
                enc = encode(x, qt)
            check_rows(x, enc, qt, tname)
            w.write_tensor_data(enc)
        print(f"\r[{i + 1}/{len(plan)}] {tname:<28} {time.time() - t0:6.0f} s", end="", flush=True)
    print()
    for name, (w, _, path) in writers.items():
        w.close()
        path.with_suffix(".gguf.part").rename(path)
        print(f"wrote {path} ({path.stat().st_size / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
