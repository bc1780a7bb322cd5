"""Hugging Face state dict <-> GGUF, with llama.cpp's conventions.

Writing follows what llama.cpp's convert_hf_to_gguf.py (tensor names, q/k
permutation, metadata keys) and llama-quantize --pure (quantized types, shape
fallbacks) produce. Reading is the exact inverse, so that the reference logits of
a file are computed by transformers on the weights that file really holds
(gguf.quants.dequantize of its bytes).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

import gguf
import gguf.quants
from gguf import GGMLQuantizationType as QT

import q4k
from specs import Spec
from vocab import Vocab

# Weight-file variants: name -> (default 2-D type, general.file_type).
VARIANTS = {
    "f32": (QT.F32, gguf.LlamaFileType.ALL_F32),
    "f16": (QT.F16, gguf.LlamaFileType.MOSTLY_F16),
    "q8_0": (QT.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
    "q4_0": (QT.Q4_0, gguf.LlamaFileType.MOSTLY_Q4_0),
    "q4_k": (QT.Q4_K, gguf.LlamaFileType.MOSTLY_Q4_K_S),
}

# Per-layer HF name suffix -> GGUF name suffix, per GGUF architecture family.
_LAYER_LLAMA = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
_LAYER_PHI3 = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.qkv_proj.weight": "attn_qkv.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
_LAYER_PHI2 = {
    "input_layernorm.weight": "attn_norm.weight",
    "input_layernorm.bias": "attn_norm.bias",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.dense.weight": "attn_output.weight",
    "self_attn.dense.bias": "attn_output.bias",
    "mlp.fc1.weight": "ffn_up.weight",
    "mlp.fc1.bias": "ffn_up.bias",
    "mlp.fc2.weight": "ffn_down.weight",
    "mlp.fc2.bias": "ffn_down.bias",
}
_GLOBAL = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "model.final_layernorm.weight": "output_norm.weight",
    "model.final_layernorm.bias": "output_norm.bias",
    "lm_head.weight": "output.weight",
    "lm_head.bias": "output.bias",
}


def layer_map(gguf_arch: str) -> dict[str, str]:
    return {"llama": _LAYER_LLAMA, "qwen2": _LAYER_LLAMA, "phi3": _LAYER_PHI3,
            "phi2": _LAYER_PHI2}[gguf_arch]


def gguf_name(gguf_arch: str, hf_name: str) -> str:
    """GGUF tensor name of a HF parameter name."""
    if hf_name in _GLOBAL:
        return _GLOBAL[hf_name]
    m = re.fullmatch(r"model\.layers\.(\d+)\.(.+)", hf_name)
    if not m or m.group(2) not in layer_map(gguf_arch):
        raise KeyError(f"no GGUF name for {hf_name} ({gguf_arch})")
    return f"blk.{m.group(1)}.{layer_map(gguf_arch)[m.group(2)]}"


def hf_name(gguf_arch: str, name: str) -> str:
    """HF parameter name of a GGUF tensor name (inverse of gguf_name)."""
    inv_global = {"token_embd.weight": "model.embed_tokens.weight",
                  "output.weight": "lm_head.weight", "output.bias": "lm_head.bias"}
    if gguf_arch == "phi2":
        inv_global.update({"output_norm.weight": "model.final_layernorm.weight",
                           "output_norm.bias": "model.final_layernorm.bias"})
    else:
        inv_global["output_norm.weight"] = "model.norm.weight"
    if name in inv_global:
        return inv_global[name]
    m = re.fullmatch(r"blk\.(\d+)\.(.+)", name)
    inv = {v: k for k, v in layer_map(gguf_arch).items()}
    if not m or m.group(2) not in inv:
        raise KeyError(f"no HF name for {name} ({gguf_arch})")
    return f"model.layers.{m.group(1)}.{inv[m.group(2)]}"


def permute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's LlamaModel.permute: HF's half-split rope rows -> interleaved pairs.

    Within each head the rows [x0..x(d/2-1), y0..y(d/2-1)] become [x0,y0,x1,y1,...].
    """
    d = w.shape[0] // n_head
    return w.reshape(n_head, 2, d // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of permute_qk."""
    d = w.shape[0] // n_head
    return w.reshape(n_head, d // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def tensor_type(name: str, shape: tuple[int, ...], variant: str) -> QT:
    """The GGUF type of one tensor in a variant file.

    1-D tensors, *_norm.weight and anything not named *.weight stay F32 (convert
    and llama-quantize both). A 2-D weight gets the variant's type when its row
    length ne[0] = shape[-1] is a multiple of the block; otherwise llama-quantize's
    fallback: Q4_K -> Q5_0, and F16 when even a 32-block does not fit.
    """
    if len(shape) < 2 or name.endswith("_norm.weight") or not name.endswith(".weight"):
        return QT.F32
    want = VARIANTS[variant][0]
    ncols = shape[-1]
    if want in (QT.F32, QT.F16):
        return want
    block = gguf.GGML_QUANT_SIZES[want][0]
    if ncols % block == 0:
        return want
    if want == QT.Q4_K and ncols % 32 == 0:
        return QT.Q5_0
    return QT.F16


def encode(data: np.ndarray, qtype: QT) -> np.ndarray:
    """The array to hand to GGUFWriter.add_tensor for `qtype`."""
    if qtype == QT.F32:
        return data.astype(np.float32)
    if qtype == QT.F16:
        return data.astype(np.float16)
    if qtype == QT.Q4_K:
        return q4k.quantize_q4_k(data)
    return gguf.quants.quantize(data.astype(np.float32), qtype)


def llama3_rope_factors(cfg) -> np.ndarray:
    """rope_freqs.weight as convert_hf_to_gguf computes it for rope_type llama3.

    One factor per frequency pair: 1 where the wavelength is below
    original_max/high_freq_factor, `factor` above original_max/low_freq_factor,
    and the smooth interpolation's reciprocal in between. llama.cpp divides the
    rope frequency by it.
    """
    rs = cfg.rope_scaling
    dim = cfg.head_dim
    base = cfg.rope_theta
    freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    old = rs["original_max_position_embeddings"]
    lo_f, hi_f, factor = rs["low_freq_factor"], rs["high_freq_factor"], rs["factor"]
    out = []
    for f in freqs:
        wavelen = 2 * np.pi / f
        if wavelen < old / hi_f:
            out.append(1.0)
        elif wavelen > old / lo_f:
            out.append(factor)
        else:
            smooth = (old / wavelen - lo_f) / (hi_f - lo_f)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def _add_metadata(w: gguf.GGUFWriter, spec: Spec, cfg, vocab: Vocab, variant: str) -> None:
    """Metadata keys as convert_hf_to_gguf.py writes them for each architecture."""
    arch = spec.gguf_arch
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(spec.name)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    ftype = VARIANTS[variant][1]
    if arch == "phi2":
        w.add_context_length(cfg.max_position_embeddings)
        w.add_embedding_length(cfg.hidden_size)
        w.add_feed_forward_length(4 * cfg.hidden_size)  # convert hard-codes 4*n_embd
        w.add_block_count(cfg.num_hidden_layers)
        w.add_head_count(cfg.num_attention_heads)
        w.add_head_count_kv(cfg.num_attention_heads)
        w.add_layer_norm_eps(cfg.layer_norm_eps)
        w.add_rope_dimension_count(int(cfg.partial_rotary_factor * cfg.hidden_size)
                                   // cfg.num_attention_heads)
        w.add_file_type(ftype)
        w.add_add_bos_token(False)
    elif arch == "phi3":
        w.add_context_length(cfg.max_position_embeddings)
        w.add_rope_scaling_orig_ctx_len(cfg.original_max_position_embeddings)
        w.add_embedding_length(cfg.hidden_size)
        w.add_feed_forward_length(cfg.intermediate_size)
        w.add_block_count(cfg.num_hidden_layers)
        w.add_head_count(cfg.num_attention_heads)
        w.add_head_count_kv(cfg.num_key_value_heads)
        w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
        w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
        w.add_rope_freq_base(cfg.rope_theta)
        if longrope_factors(cfg) is not None:
            w.add_rope_scaling_attn_factors(longrope_attn_factor(cfg))
        w.add_file_type(ftype)
        w.add_sliding_window(cfg.sliding_window or 0)
    else:  # llama (also mistral) and qwen2: TextModel.set_gguf_parameters
        w.add_block_count(cfg.num_hidden_layers)
        w.add_context_length(cfg.max_position_embeddings)
        w.add_embedding_length(cfg.hidden_size)
        w.add_feed_forward_length(cfg.intermediate_size)
        w.add_head_count(cfg.num_attention_heads)
        w.add_head_count_kv(cfg.num_key_value_heads)
        w.add_rope_freq_base(cfg.rope_theta)
        w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
        if "head_dim" in spec.config:     # config.json carries head_dim
            w.add_key_length(cfg.head_dim)
            w.add_value_length(cfg.head_dim)
        w.add_file_type(ftype)
        if arch == "llama":               # LlamaModel.set_gguf_parameters
            w.add_vocab_size(cfg.vocab_size)
            w.add_rope_dimension_count(cfg.head_dim)
            if getattr(cfg, "sliding_window", None):
                # Not written by convert_hf_to_gguf.py for Mistral (llama.cpp runs
                # it without a window); added here so that the GGUF says what the
                # HF config says. Key: llama.attention.sliding_window.
                w.add_sliding_window(cfg.sliding_window)

    # Tokenizer (convert's _set_vocab_sentencepiece / _set_vocab_gpt2 + SpecialVocab).
    w.add_tokenizer_model("llama" if vocab.kind == "spm" else "gpt2")
    w.add_tokenizer_pre(vocab.pre)
    w.add_token_list(vocab.tokens)
    if vocab.scores is not None:
        w.add_token_scores(vocab.scores)
    w.add_token_types(vocab.types)
    if vocab.merges is not None:
        w.add_token_merges(vocab.merges)
    if vocab.bos_id is not None:
        w.add_bos_token_id(vocab.bos_id)
    w.add_eos_token_id(vocab.eos_id)
    if vocab.unk_id is not None:
        w.add_unk_token_id(vocab.unk_id)
    if arch != "phi2":  # phi2's add_bos_token is set above, as convert does
        w.add_add_bos_token(vocab.add_bos)
        w.add_add_eos_token(False)


def longrope_factors(cfg) -> dict[str, np.ndarray] | None:
    """Phi-3 longrope: the GGUF tensors convert_hf_to_gguf.py writes for
    rope_scaling type "longrope" (the config's factor lists as float32)."""
    rs = getattr(cfg, "rope_scaling", None)
    if not rs or rs.get("type") != "longrope":
        return None
    return {"rope_factors_long.weight": np.asarray(rs["long_factor"], dtype=np.float32),
            "rope_factors_short.weight": np.asarray(rs["short_factor"], dtype=np.float32)}


def longrope_attn_factor(cfg) -> float:
    """The phi3.rope.scaling.attn_factor convert_hf_to_gguf.py writes:
    sqrt(1 + ln(max_pos / orig) / ln(orig)), 1 when not extended."""
    scale = cfg.max_position_embeddings / cfg.original_max_position_embeddings
    if scale <= 1.0:
        return 1.0
    return math.sqrt(1 + math.log(scale) / math.log(cfg.original_max_position_embeddings))


def export_gguf(spec: Spec, cfg, state: dict[str, np.ndarray], vocab: Vocab,
                path: Path, variant: str, fuse_qkv: bool = False) -> dict[str, str]:
    """Write one GGUF file; returns {gguf tensor name: type name} in file order.

    fuse_qkv writes attn_qkv = concat(q, k, v) rows (weights and biases), as
    convert_hf_to_gguf.py --fuse-qkv does (phi2 only here).
    """
    arch = spec.gguf_arch
    tensors: list[tuple[str, np.ndarray]] = [("token_embd.weight", state["model.embed_tokens.weight"])]
    if getattr(cfg, "rope_scaling", None) and cfg.rope_scaling.get("rope_type") == "llama3":
        tensors.append(("rope_freqs.weight", llama3_rope_factors(cfg)))
    tensors += list((longrope_factors(cfg) or {}).items())
    for i in range(cfg.num_hidden_layers):
        pre = f"model.layers.{i}."
        for suffix in layer_map(arch):
            if pre + suffix in state:
                t = state[pre + suffix]
                name = gguf_name(arch, pre + suffix)
                if arch == "llama" and suffix.endswith("q_proj.weight"):
                    t = permute_qk(t, cfg.num_attention_heads)
                elif arch == "llama" and suffix.endswith("k_proj.weight"):
                    t = permute_qk(t, cfg.num_key_value_heads)
                tensors.append((name, t))
        if fuse_qkv:
            tensors = _fuse_layer_qkv(tensors, i)
    for hf in ("model.norm.weight", "model.final_layernorm.weight",
               "model.final_layernorm.bias", "lm_head.weight", "lm_head.bias"):
        if hf in state:
            tensors.append((gguf_name(arch, hf), state[hf]))
    seen = set()
    for name, _ in tensors:
        assert name not in seen, name
        seen.add(name)

    w = gguf.GGUFWriter(str(path), arch)
    _add_metadata(w, spec, cfg, vocab, variant)
    types = {}
    for name, t in tensors:
        qt = tensor_type(name, t.shape, variant)
        w.add_tensor(name, encode(t, qt), raw_dtype=qt)
        types[name] = qt.name
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return types


def _fuse_layer_qkv(tensors: list[tuple[str, np.ndarray]], i: int) -> list[tuple[str, np.ndarray]]:
    """Replace blk.i.attn_{q,k,v}.{weight,bias} by blk.i.attn_qkv.{weight,bias}."""
    out = []
    parts: dict[str, np.ndarray] = {}
    for name, t in tensors:
        m = re.fullmatch(rf"blk\.{i}\.attn_([qkv])\.(weight|bias)", name)
        if m:
            parts[m.group(1) + m.group(2)] = t
        else:
            out.append((name, t))
    for kind in ("weight", "bias"):
        if "q" + kind in parts:
            out.append((f"blk.{i}.attn_qkv.{kind}",
                        np.concatenate([parts["q" + kind], parts["k" + kind], parts["v" + kind]])))
    return out


def read_gguf(path: Path) -> tuple[gguf.GGUFReader, dict[str, tuple[str, np.ndarray]]]:
    """{name: (type name, float32 array in HF/numpy row-major shape)} of a GGUF file.

    Values are gguf.quants.dequantize of the stored bytes; shapes are ggml's ne
    reversed (rows first).
    """
    r = gguf.GGUFReader(str(path))
    out = {}
    for t in r.tensors:
        shape = tuple(int(n) for n in reversed(t.shape))
        vals = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type)
        out[t.name] = (t.tensor_type.name, np.asarray(vals, dtype=np.float32).reshape(shape))
    return r, out


def import_gguf(spec: Spec, cfg, path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The HF state dict that a GGUF file holds (inverse of export_gguf)."""
    arch = spec.gguf_arch
    _, tensors = read_gguf(path)
    state: dict[str, np.ndarray] = {}
    types: dict[str, str] = {}
    hd = cfg.hidden_size // cfg.num_attention_heads if arch in ("phi2",) else None
    for name, (tname, v) in tensors.items():
        types[name] = tname
        if name == "rope_freqs.weight":
            expect = llama3_rope_factors(cfg)
            assert np.array_equal(v, expect), (v, expect)
            continue
        if name.startswith("rope_factors_"):
            expect = longrope_factors(cfg)[name]
            assert np.array_equal(v, expect), (name, v, expect)
            continue
        m = re.fullmatch(r"blk\.(\d+)\.attn_qkv\.(weight|bias)", name)
        if m and arch == "phi2":  # fused qkv: split back into q, k, v rows
            n_q = cfg.num_attention_heads * hd
            n_kv = cfg.num_key_value_heads * hd
            q, k, vv = np.split(v, [n_q, n_q + n_kv])
            pre = f"model.layers.{m.group(1)}.self_attn."
            state[pre + "q_proj." + m.group(2)] = q
            state[pre + "k_proj." + m.group(2)] = k
            state[pre + "v_proj." + m.group(2)] = vv
            continue
        hf = hf_name(arch, name)
        if arch == "llama" and hf.endswith("q_proj.weight"):
            v = unpermute_qk(v, cfg.num_attention_heads)
        elif arch == "llama" and hf.endswith("k_proj.weight"):
            v = unpermute_qk(v, cfg.num_key_value_heads)
        state[hf] = v
    return state, types
