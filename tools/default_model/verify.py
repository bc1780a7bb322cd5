"""Check the exported default model against the PyTorch model that made it.

1. Hugging Face: transformers' LlamaForCausalLM.from_pretrained on the HF
   folder must give the same logits as model.py with the same (F16-rounded)
   weights, on held-out windows; transformers' LlamaTokenizer from the same
   folder must give the same ids as SentencePiece for the held-out stream;
   transformers' greedy generation must give the reference continuation.
   This checks the config, the tensor names, the tied output, and the RoPE
   convention (transformers implements HF's rotate_half itself).
2. GGUF: both files are read back with gguf's reader; metadata and tokenizer
   are checked, and an independent NumPy forward pass written from
   llama.cpp's conventions (adjacent-pair RoPE on the permuted attn_q /
   attn_k rows, GQA head h -> kv head h // group, tied output) runs on the
   file's tensors. Its logits must match model.py's: to float rounding for
   the F16 file, within a loose bound for Q8_0.

Writes <work>/verify.json with the measured differences; exits non-zero when
a check fails.

Usage: python3 verify.py --work DIR --hf DIR --gguf-prefix PREFIX --heldout FILE
"""

import argparse
import copy
import json
import os
import sys

import numpy as np
import sentencepiece as spm
import torch
import gguf
from transformers import LlamaForCausalLM, LlamaTokenizer

from evaluation import stream_tokens, windows
from model import Config, Llama
from reference import load_shipped_model, greedy


def check(ok, what, failures):
    """Record a failed check without stopping, so every result is shown."""
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)


# ---- NumPy forward pass with llama.cpp's conventions ----------------------

def rms(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def rope_adjacent(x, theta):
    """RoPE on adjacent pairs (x[2i], x[2i+1]), positions 0..t-1.
    x: (t, heads, head_dim)."""
    t, _, hd = x.shape
    inv = theta ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
    ang = np.arange(t, dtype=np.float64)[:, None] * inv[None, :]
    cos = np.cos(ang)[:, None, :]
    sin = np.sin(ang)[:, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * cos - x1 * sin
    out[..., 1::2] = x0 * sin + x1 * cos
    return out


def gguf_forward(t, meta, tokens):
    """Logits (len(tokens), vocab) from GGUF tensors t (name -> float64 array
    in GGUF row-major (rows, cols) layout) and hyperparameters meta."""
    n_head, n_kv = meta["head_count"], meta["head_count_kv"]
    eps, theta = meta["eps"], meta["rope_base"]
    emb = t["token_embd.weight"]
    x = emb[tokens]
    n = len(tokens)
    hd = x.shape[1] // n_head
    group = n_head // n_kv
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for i in range(meta["blocks"]):
        b = f"blk.{i}."
        h = rms(x, t[b + "attn_norm.weight"], eps)
        q = rope_adjacent((h @ t[b + "attn_q.weight"].T).reshape(n, n_head, hd), theta)
        k = rope_adjacent((h @ t[b + "attn_k.weight"].T).reshape(n, n_kv, hd), theta)
        v = (h @ t[b + "attn_v.weight"].T).reshape(n, n_kv, hd)
        out = np.empty((n, n_head, hd))
        for hh in range(n_head):
            kv = hh // group
            s = q[:, hh, :] @ k[:, kv, :].T / np.sqrt(hd) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            out[:, hh, :] = s @ v[:, kv, :]
        x = x + out.reshape(n, n_head * hd) @ t[b + "attn_output.weight"].T
        h = rms(x, t[b + "ffn_norm.weight"], eps)
        g = h @ t[b + "ffn_gate.weight"].T
        u = h @ t[b + "ffn_up.weight"].T
        x = x + ((g / (1.0 + np.exp(-g))) * u) @ t[b + "ffn_down.weight"].T
    return rms(x, t["output_norm.weight"], eps) @ emb.T


def read_gguf(path):
    """(metadata dict, tensor dict name -> float64 array, type dict)."""
    r = gguf.GGUFReader(path)

    def field(name):
        f = r.fields[name]
        return f.contents()

    meta = {
        "arch": field("general.architecture"),
        "context": field("llama.context_length"),
        "embd": field("llama.embedding_length"),
        "blocks": field("llama.block_count"),
        "ffn": field("llama.feed_forward_length"),
        "head_count": field("llama.attention.head_count"),
        "head_count_kv": field("llama.attention.head_count_kv"),
        "eps": field("llama.attention.layer_norm_rms_epsilon"),
        "rope_base": field("llama.rope.freq_base"),
        "rope_dims": field("llama.rope.dimension_count"),
        "vocab": field("llama.vocab_size"),
        "tok_model": field("tokenizer.ggml.model"),
        "tokens": field("tokenizer.ggml.tokens"),
        "scores": field("tokenizer.ggml.scores"),
        "types": field("tokenizer.ggml.token_type"),
        "bos": field("tokenizer.ggml.bos_token_id"),
        "eos": field("tokenizer.ggml.eos_token_id"),
        "unk": field("tokenizer.ggml.unknown_token_id"),
        "add_bos": field("tokenizer.ggml.add_bos_token"),
        "add_eos": field("tokenizer.ggml.add_eos_token"),
        "has_pre": "tokenizer.ggml.pre" in r.fields,
    }
    tensors, types = {}, {}
    for ti in r.tensors:
        arr = gguf.quants.dequantize(ti.data, ti.tensor_type)
        tensors[ti.name] = np.asarray(arr, dtype=np.float64)
        types[ti.name] = ti.tensor_type.name
    return meta, tensors, types


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--hf", required=True)
    ap.add_argument("--gguf-prefix", required=True)
    ap.add_argument("--heldout", required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    failures = []
    report = {}
    model, cfg = load_shipped_model(args.work)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(args.work, "tokenizer.model"))
    with open(args.heldout, encoding="utf-8") as f:
        heldout_text = f.read()
    ids = stream_tokens(sp, heldout_text)
    # Two full held-out windows (the first starts with BOS) are the test input.
    test = torch.tensor(windows(ids, cfg.max_seq_len)[:2], dtype=torch.long)
    with torch.no_grad():
        ours = model(test).double()

    # ---- 1. transformers ----
    hf = LlamaForCausalLM.from_pretrained(args.hf, torch_dtype=torch.float32)
    hf.eval()
    with torch.no_grad():
        theirs = hf(test).logits.double()
    d = (ours - theirs).abs().max().item()
    report["hf_logits_max_abs_diff"] = d
    report["logits_max_abs"] = ours.abs().max().item()
    check(d < 1e-3, f"transformers logits match model.py (max |diff| {d:.2e})", failures)

    tok = LlamaTokenizer.from_pretrained(args.hf)
    hf_ids = tok(heldout_text)["input_ids"]
    check(hf_ids == ids, f"transformers LlamaTokenizer ids == SentencePiece stream "
                         f"({len(ids)} tokens)", failures)

    prompt_ids = stream_tokens(sp, "A wise man once said")
    ref = greedy(model, prompt_ids, 64)
    with torch.no_grad():
        gen = hf.generate(torch.tensor([prompt_ids]), max_new_tokens=64, do_sample=False,
                          num_beams=1, eos_token_id=None, pad_token_id=0,
                          min_new_tokens=64)
    hf_new = gen[0, len(prompt_ids):].tolist()
    check(hf_new == ref, "transformers greedy generation == model.py greedy", failures)

    # ---- 2. GGUF ----
    # The NumPy forward runs in float64; compare it with model.py in float64
    # too, so that for the F16 file only summation order and model.py's
    # float32 RoPE tables differ (about 1e-5 on logits of magnitude ~20).
    model64 = copy.deepcopy(model).double()
    for suffix, tol in (("f16", 1e-4), ("q8_0", 0.25)):
        path = f"{args.gguf_prefix}-{suffix}.gguf"
        meta, t, types = read_gguf(path)
        good_meta = (
            meta["arch"] == "llama" and meta["context"] == cfg.max_seq_len
            and meta["embd"] == cfg.dim and meta["blocks"] == cfg.n_layers
            and meta["ffn"] == cfg.ffn_dim and meta["head_count"] == cfg.n_heads
            and meta["head_count_kv"] == cfg.n_kv_heads
            and abs(meta["eps"] - cfg.norm_eps) < 1e-12
            and meta["rope_base"] == cfg.rope_theta and meta["rope_dims"] == cfg.head_dim
            and meta["vocab"] == cfg.vocab_size and meta["tok_model"] == "llama"
            and meta["bos"] == 1 and meta["eos"] == 2 and meta["unk"] == 0
            and meta["add_bos"] is True and meta["add_eos"] is False
            and not meta["has_pre"])
        check(good_meta, f"{suffix}: llama.* and tokenizer metadata", failures)
        good_vocab = (
            meta["tokens"] == [sp.id_to_piece(i) for i in range(sp.vocab_size())]
            and all(abs(a - sp.get_score(i)) < 1e-6 for i, a in enumerate(meta["scores"]))
            and meta["types"][:3] == [2, 3, 3]
            and all(x == 6 for x in meta["types"][3:259])
            and all(x == 1 for x in meta["types"][259:]))
        check(good_vocab, f"{suffix}: tokens, scores and token types", failures)
        check("output.weight" not in t, f"{suffix}: tied output (no output.weight)", failures)
        with torch.no_grad():
            worst = 0.0
            for row in test.tolist():
                g = gguf_forward(t, meta, row)
                o = model64(torch.tensor([row]))[0].numpy()
                worst = max(worst, float(np.abs(g - o).max()))
        report[f"gguf_{suffix}_logits_max_abs_diff"] = worst
        report[f"gguf_{suffix}_tensor_types"] = sorted(set(types.values()))
        check(worst < tol, f"{suffix}: NumPy llama.cpp-convention forward matches "
                           f"model.py (max |diff| {worst:.2e}, bound {tol})", failures)
        if suffix == "f16":
            # Negative control: with attn_q / attn_k rows put back in HF order
            # the llama.cpp-convention forward must NOT match, which shows the
            # check above can fail and the permutation is needed.
            unperm = dict(t)
            for name, heads in (("attn_q", cfg.n_heads), ("attn_k", cfg.n_kv_heads)):
                for i in range(cfg.n_layers):
                    w = t[f"blk.{i}.{name}.weight"]
                    unperm[f"blk.{i}.{name}.weight"] = (
                        w.reshape(heads, cfg.head_dim // 2, 2, w.shape[1])
                         .swapaxes(1, 2).reshape(w.shape))
            row = test.tolist()[0]
            with torch.no_grad():
                o = model64(torch.tensor([row]))[0].numpy()
            bad = float(np.abs(gguf_forward(unperm, meta, row) - o).max())
            report["gguf_f16_unpermuted_logits_max_abs_diff"] = bad
            check(bad > 100 * max(worst, 1e-6),
                  f"f16: without the q/k permutation the forward differs "
                  f"(max |diff| {bad:.2e})", failures)
        if suffix == "q8_0":
            # Greedy continuation from the Q8_0 weights, for the record.
            seq = list(prompt_ids)
            for _ in range(64):
                seq.append(int(np.argmax(gguf_forward(t, meta, seq)[-1])))
            same = sum(a == b for a, b in zip(seq[len(prompt_ids):], ref))
            report["gguf_q8_0_greedy_tokens_equal_to_reference"] = same
            print(f"info  q8_0 greedy: {same}/64 tokens equal to the F16 reference")

    report["failures"] = failures
    with open(os.path.join(args.work, "verify.json"), "w") as f:
        json.dump(report, f, indent=1)
    if failures:
        sys.exit(f"verify: {len(failures)} check(s) failed")
    print("verify: all checks passed")


if __name__ == "__main__":
    main()
