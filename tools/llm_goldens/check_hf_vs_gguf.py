"""Check the committed goldens in tests/data/llm against the reference libraries.

For every model folder (golden.json):
  * transformers' from_pretrained of hf/ reproduces logits-f32.f32 exactly;
  * every GGUF file reads back with gguf.GGUFReader: tensor names agree with
    gguf-py's own HF->GGUF name table, types with golden.json and with the
    llama-quantize --pure rules, shapes with the config, metadata keys with the
    config and the tokenizer;
  * the f32 GGUF (and phi2's fused-qkv file), loaded back into transformers (q/k
    un-permuted), gives exactly logits-f32.f32: this guards the converter;
  * each quantized GGUF, dequantized by gguf.quants and loaded the same way,
    reproduces its stored logits exactly;
  * llama.cpp's interleaved rope on the permuted q/k rows equals transformers'
    half-split rope on the original rows (the permutation goes the right way);
  * the Q4_K quantizer round-trips through gguf.quants.dequantize.
Usage: python check_hf_vs_gguf.py DATA_DIR   (exit status 0 when all checks pass)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

import gguf
import transformers

import gguf_io
import make_goldens
import q4k
import specs


def check_names(spec: specs.Spec, cfg, hf_names: list[str]) -> None:
    """Our HF->GGUF names must be gguf-py's (the table convert_hf_to_gguf.py uses)."""
    arch = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2,
            "phi2": gguf.MODEL_ARCH.PHI2, "phi3": gguf.MODEL_ARCH.PHI3}[spec.gguf_arch]
    table = gguf.get_tensor_name_map(arch, cfg.num_hidden_layers)
    for n in hf_names:
        theirs = table.get_name(n, try_suffixes=(".weight", ".bias"))
        assert theirs == gguf_io.gguf_name(spec.gguf_arch, n), (n, theirs)


def check_metadata(reader: gguf.GGUFReader, spec: specs.Spec, cfg, golden: dict, variant: str) -> None:
    """A few keys an engine must find, compared with the config."""
    def val(key):
        f = reader.fields.get(key)
        assert f is not None, f"missing key {key}"
        return f.contents()

    a = spec.gguf_arch
    assert val("general.architecture") == a
    assert val(f"{a}.block_count") == cfg.num_hidden_layers
    assert val(f"{a}.embedding_length") == cfg.hidden_size
    assert val(f"{a}.context_length") == cfg.max_position_embeddings
    assert val(f"{a}.attention.head_count") == cfg.num_attention_heads
    assert val(f"{a}.feed_forward_length") == cfg.intermediate_size
    assert val("general.file_type") == int(gguf_io.VARIANTS[variant][1])
    tokens = val("tokenizer.ggml.tokens")
    assert len(tokens) == cfg.vocab_size == golden["n_vocab"]
    assert val("tokenizer.ggml.model") == golden["tokenizer"]["ggml_model"]
    assert val("tokenizer.ggml.pre") == golden["tokenizer"]["ggml_pre"]
    assert val("tokenizer.ggml.eos_token_id") == golden["tokenizer"]["eos_id"]
    if a == "phi2":
        assert val("phi2.attention.layer_norm_epsilon") == np.float32(cfg.layer_norm_eps)
        hd = cfg.hidden_size // cfg.num_attention_heads
        assert val("phi2.rope.dimension_count") == int(hd * cfg.partial_rotary_factor)
    else:
        assert val(f"{a}.attention.layer_norm_rms_epsilon") == np.float32(cfg.rms_norm_eps)
        assert val(f"{a}.rope.freq_base") == np.float32(cfg.rope_theta)
        assert val(f"{a}.attention.head_count_kv") == cfg.num_key_value_heads
    if getattr(cfg, "sliding_window", None) and spec.arch in ("mistral", "phi3"):
        assert val(f"{a}.attention.sliding_window") == cfg.sliding_window
    if spec.arch in ("llama", "mistral"):
        assert val("llama.rope.dimension_count") == cfg.head_dim
        assert val("llama.attention.key_length") == cfg.head_dim


def check_tensors(reader: gguf.GGUFReader, spec: specs.Spec, cfg, st: dict, types: dict,
                  variant: str) -> None:
    """Types and shapes of every tensor."""
    seen = {}
    for t in reader.tensors:
        seen[t.name] = t.tensor_type.name
        shape = tuple(int(n) for n in reversed(t.shape))
        if t.name == "rope_freqs.weight":
            assert shape == (cfg.head_dim // 2,)
        elif t.name.startswith("rope_factors_"):
            assert shape == gguf_io.longrope_factors(cfg)[t.name].shape, (t.name, shape)
        elif ".attn_qkv." in t.name and spec.gguf_arch == "phi2":
            q = st[gguf_io.hf_name("phi2", t.name.replace("attn_qkv", "attn_q"))].shape
            assert shape[0] == q[0] * 3 and shape[1:] == q[1:], (t.name, shape)
        else:
            assert shape == st[gguf_io.hf_name(spec.gguf_arch, t.name)].shape, (t.name, shape)
        assert t.tensor_type.name == gguf_io.tensor_type(t.name, shape, variant).name, t.name
    assert seen == types, (seen, types)


def check_rope_permutation() -> None:
    """Interleaved rope (llama.cpp rope type 0) on permuted rows == HF rope on HF rows."""
    rng = np.random.default_rng(7)
    n_head, d, pos = 3, 8, 5.0
    x = rng.normal(size=(n_head * d,))
    theta = pos * 10000.0 ** (-np.arange(0, d, 2) / d)
    c, s = np.cos(theta), np.sin(theta)
    # transformers: per head, rotate (x[i], x[i + d/2]) by theta[i].
    hf = x.reshape(n_head, d).copy()
    a, b = hf[:, : d // 2].copy(), hf[:, d // 2:].copy()
    hf[:, : d // 2], hf[:, d // 2:] = a * c - b * s, a * s + b * c
    # llama.cpp: per head, rotate adjacent pairs (x[2i], x[2i+1]) by theta[i].
    g = gguf_io.permute_qk(x[:, None], n_head)[:, 0].reshape(n_head, d).copy()
    a, b = g[:, 0::2].copy(), g[:, 1::2].copy()
    g[:, 0::2], g[:, 1::2] = a * c - b * s, a * s + b * c
    back = gguf_io.unpermute_qk(g.reshape(-1, 1), n_head)[:, 0]
    assert np.allclose(back, hf.reshape(-1), atol=1e-12)
    w = rng.normal(size=(n_head * d, 5))
    assert np.array_equal(gguf_io.unpermute_qk(gguf_io.permute_qk(w, n_head), n_head), w)


def load_logits(folder: Path, info: dict) -> np.ndarray:
    return np.fromfile(folder / info["logits_file"], dtype="<f4").reshape(info["logits_shape"])


def check_model(folder: Path) -> None:
    golden = json.loads((folder / "golden.json").read_text())
    spec = next(s for s in specs.SPECS if s.name == golden["name"])
    hf = folder / "hf"
    cfg = transformers.AutoConfig.from_pretrained(str(hf), attn_implementation="eager")
    import safetensors.numpy
    st = safetensors.numpy.load_file(str(hf / "model.safetensors"))
    check_names(spec, cfg, list(st))

    f32 = golden["variants"]["f32"]
    ref = load_logits(folder, f32)
    model = getattr(transformers, spec.hf_class).from_pretrained(
        str(hf), attn_implementation="eager", torch_dtype=torch.float32).eval()
    got = make_goldens.forward_logits(model, f32["sequence_ids"])
    assert np.array_equal(got, ref), ("hf folder", np.abs(got - ref).max())

    files = [(v, info["gguf"], info) for v, info in golden["variants"].items()]
    files += [("f32", name, dict(f32, tensor_types=extra["tensor_types"]))
              for name, extra in golden["extra_files"].items()]
    for variant, fname, info in files:
        reader = gguf.GGUFReader(str(folder / fname))
        check_metadata(reader, spec, cfg, golden, variant)
        check_tensors(reader, spec, cfg, st, info["tensor_types"], variant)
        state, _ = gguf_io.import_gguf(spec, cfg, folder / fname)
        m = make_goldens.hf_model(spec, cfg, state)
        if variant == "f32":
            for k in st:
                assert np.array_equal(state[k], st[k]), (fname, k)
            got = make_goldens.forward_logits(m, info["sequence_ids"])
        else:
            got = make_goldens.forward_logits(m, golden["prompt_ids"])
        want = load_logits(folder, info)
        assert np.array_equal(got, want), (fname, np.abs(got - want).max())
        new, _ = make_goldens.greedy(m, golden["prompt_ids"], golden["n_new"])
        assert new == info["greedy_ids"], (fname, new, info["greedy_ids"])
        print(f"   {fname}: ok", flush=True)


def main() -> None:
    root = Path(sys.argv[1])
    torch.set_num_threads(1)
    q4k.self_test()
    check_rope_permutation()
    names = json.loads((root / "index.json").read_text())["models"]
    assert sorted(names) == sorted(s.name for s in specs.SPECS)
    for name in names:
        print(f"== {name}", flush=True)
        check_model(root / name)
    print("all goldens check out")


if __name__ == "__main__":
    main()
