"""Estimate how far an engine that rounds activations like ggml lands from the reference.

The reference logits of a quantized variant use the dequantized weights with f32
activations. ggml instead rounds the input vector of each matrix product to the
weight's "vec_dot_type": F16 for F16 weights, Q8_0 blocks of 32 for Q8_0/Q4_0/Q5_0
weights, Q8_K blocks of 256 for Q4_K weights. This module hooks every nn.Linear of
a transformers model to do the same rounding, so make_goldens.py can record the
error such an engine should expect (tolerance guidance only; nothing in the goldens
depends on it). Not emulated: llama.cpp's F16 KV cache.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

import gguf.quants
from gguf import GGMLQuantizationType as QT

import gguf_io


def _q8_0_round(x: np.ndarray) -> np.ndarray:
    """Round rows to Q8_0 and back (gguf's own quantizer)."""
    return gguf.quants.dequantize(gguf.quants.quantize(x, QT.Q8_0), QT.Q8_0)


def _q8_k_round(x: np.ndarray) -> np.ndarray:
    """Round rows to Q8_K and back, as ggml's quantize_row_q8_K_ref: per 256 values,
    scale -127/x_maxabs (signed), quants clamped to 127."""
    b = x.reshape(-1, 256).astype(np.float32)
    idx = np.abs(b).argmax(axis=1)
    mx = b[np.arange(b.shape[0]), idx]
    out = np.zeros_like(b)
    nz = mx != 0
    iscale = np.where(nz, -127.0 / np.where(nz, mx, 1.0), 0.0).astype(np.float32)
    q = np.minimum(np.rint(iscale[:, None] * b), 127.0)
    out[nz] = q[nz] * (1.0 / iscale[nz])[:, None]
    return out.reshape(x.shape)


def _rounder(tname: str):
    t = QT[tname]
    if t == QT.F32:
        return None
    if t == QT.F16:
        return lambda x: x.astype(np.float16).astype(np.float32)
    if t in (QT.Q8_0, QT.Q4_0, QT.Q5_0):
        return _q8_0_round
    if t == QT.Q4_K:
        return _q8_k_round
    raise ValueError(f"no activation rounding known for {tname}")


@contextlib.contextmanager
def ggml_like(model: torch.nn.Module, gguf_arch: str, types: dict[str, str], tied: bool):
    """Within the block, every Linear rounds its input as ggml would for its weight."""
    handles = []
    for name, mod in model.named_modules():
        if not isinstance(mod, torch.nn.Linear):
            continue
        hf = name + ".weight"
        if name == "lm_head" and tied:
            g = "token_embd.weight"
        else:
            g = gguf_io.gguf_name(gguf_arch, hf)
            if g not in types:  # phi2 fused file: q/k/v live in attn_qkv
                g = g.rsplit(".", 2)[0] + ".attn_qkv.weight"
        fn = _rounder(types[g])
        if fn is None:
            continue

        def hook(_mod, args, fn=fn):
            x = args[0]
            shape = x.shape
            y = fn(x.detach().reshape(-1, shape[-1]).numpy())
            return (torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)).reshape(shape),)
        handles.append(mod.register_forward_pre_hook(hook))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
