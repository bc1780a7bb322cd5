"""The small random-weight models: one entry per golden folder tests/data/llm/<name>/.

Sizes are chosen so that every 2-D weight row is a multiple of 32 (Q8_0/Q4_0/Q5_0
blocks), the llama feed-forward (256) also gives Q4_K blocks to ffn_down, and the
odd parts show up: GQA and MQA, head_dim 24 with hidden 32 (mistral), partial
rotary (phi2), fused qkv / gate_up (phi3), biases (qwen2, phi2), tied embeddings
(llama3, qwen2), llama3 rope scaling, sliding windows shorter than the sequence
(mistral 8, phi3 24), vocabulary sizes that are not multiples of 32.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

MAX_POS = 128   # max_position_embeddings of every model
N_NEW = 32      # greedy continuation length
LONGROPE_ORIG = 16  # original_max_position_embeddings of the longrope model (< every prompt)


@dataclasses.dataclass
class Spec:
    name: str            # folder name, also the GGUF file prefix
    arch: str            # kiln architecture name (llama, mistral, qwen2, phi2, phi3)
    gguf_arch: str       # general.architecture in the GGUF (mistral converts to llama)
    hf_class: str        # transformers class that is the reference
    vocab: str           # "spm", or "bpe:<pre>" for a byte-level BPE flavour
    config: dict         # transformers config keyword arguments (vocab_size added later)
    seed: int            # numpy seed of the weights
    notes: str           # what this model covers


SPECS = [
    Spec("llama", "llama", "llama", "LlamaForCausalLM", "spm", dict(
        hidden_size=64, intermediate_size=256, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
        hidden_act="silu", attention_bias=False, mlp_bias=False,
        bos_token_id=1, eos_token_id=2), 101,
        "Llama 2 style: GQA 4/2, interleaved rope after the q/k permutation, "
        "ffn 256 (ffn_down gets Q4_K blocks)"),
    Spec("llama3", "llama", "llama", "LlamaForCausalLM", "bpe:llama-bpe", dict(
        hidden_size=32, intermediate_size=96, num_hidden_layers=3,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16,
        rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
        hidden_act="silu", attention_bias=False, mlp_bias=False,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
        202,
        "Llama 3.2 style: 3 layers, MQA 2/1, tied embeddings, llama3 rope scaling "
        "(rope_freqs.weight: frequency 0 kept, 1 smoothed, 2..7 divided by 8), "
        "byte-level BPE with llama-bpe pre-tokenizer"),
    Spec("mistral", "mistral", "llama", "MistralForCausalLM", "spm", dict(
        hidden_size=32, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=24,
        rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
        hidden_act="silu", sliding_window=8, bos_token_id=1, eos_token_id=2), 303,
        "Mistral: head_dim 24 != hidden/heads = 8 (q is 96 rows), GQA 4/2, "
        "sliding window 8 (< prompt length)"),
    Spec("qwen2", "qwen2", "qwen2", "Qwen2ForCausalLM", "bpe:qwen2", dict(
        hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
        hidden_act="silu", use_sliding_window=False), 404,
        "Qwen2: q/k/v biases, NeoX rope, no permutation, tied embeddings, "
        "rms eps 1e-6, theta 1e6, qwen2 pre-tokenizer"),
    Spec("phi2", "phi2", "phi2", "PhiForCausalLM", "bpe:gpt-2", dict(
        hidden_size=32, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, partial_rotary_factor=0.5,
        rope_theta=10000.0, layer_norm_eps=1e-5, hidden_act="gelu_new",
        tie_word_embeddings=False, qk_layernorm=False,
        resid_pdrop=0.0, embd_pdrop=0.0, attention_dropout=0.0), 505,
        "Phi-2: LayerNorm with bias, parallel attention + MLP, partial rotary "
        "(8 of 16 dims, NeoX), gelu_new, biases everywhere incl. output"),
    Spec("phi3", "phi3", "phi3", "Phi3ForCausalLM", "spm", dict(
        hidden_size=32, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1,
        rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
        hidden_act="silu", sliding_window=24, original_max_position_embeddings=MAX_POS,
        bos_token_id=1, eos_token_id=2, pad_token_id=None,
        resid_pdrop=0.0, embd_pdrop=0.0, attention_dropout=0.0), 606,
        "Phi-3: fused qkv (attn_qkv: 32 q + 16 k + 16 v rows) and gate+up (ffn_up = "
        "[gate; up], 192 rows), GQA 2/1, "
        "sliding window 24 (< prompt + continuation)"),
    Spec("phi3-longrope", "phi3", "phi3", "Phi3ForCausalLM", "spm", dict(
        hidden_size=32, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1,
        rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
        hidden_act="silu", sliding_window=None, original_max_position_embeddings=LONGROPE_ORIG,
        rope_scaling={"type": "longrope",
                      "short_factor": [1.0, 1.05, 1.1, 1.3, 1.6, 2.0, 2.5, 3.0],
                      "long_factor": [1.0, 1.5, 2.5, 4.0, 6.0, 9.0, 12.0, 16.0]},
        bos_token_id=1, eos_token_id=2, pad_token_id=None,
        resid_pdrop=0.0, embd_pdrop=0.0, attention_dropout=0.0), 707,
        "Phi-3 128k style longrope: pretrained context 16 of 128 (attn_factor "
        "sqrt(1 + ln 8 / ln 16)); the prompt is longer than 16, so transformers uses "
        "the long factors throughout, as kiln does with a context over 16; "
        "longrope_short holds the logits of the first 16 tokens (short factors)"),
]


def build_config(spec: Spec, vocab_size: int):
    """The transformers config object of a spec, eager attention, float32."""
    import transformers

    cls = {"LlamaForCausalLM": transformers.LlamaConfig,
           "MistralForCausalLM": transformers.MistralConfig,
           "Qwen2ForCausalLM": transformers.Qwen2Config,
           "PhiForCausalLM": transformers.PhiConfig,
           "Phi3ForCausalLM": transformers.Phi3Config}[spec.hf_class]
    cfg = cls(vocab_size=vocab_size, max_position_embeddings=MAX_POS,
              torch_dtype="float32", attn_implementation="eager", **spec.config)
    cfg.architectures = [spec.hf_class]
    return cfg


def random_weights(model: torch.nn.Module, seed: int) -> None:
    """Overwrite every parameter with seeded values that make the archs differ.

    2-D weights ~ N(0, 0.2^2) (large enough that logits are far from uniform and
    greedy continuations do not collapse into one repeated token),
    norm weights ~ 1 + N(0, 0.1^2), biases ~ N(0, 0.05^2). Parameters are visited
    in sorted-name order so the values only depend on the seed and the names.
    """
    rng = np.random.default_rng(seed)
    named = dict(model.named_parameters())   # tied lm_head is not listed twice
    with torch.no_grad():
        for name in sorted(named):
            p = named[name]
            if p.dim() == 2:
                v = rng.normal(0.0, 0.2, size=tuple(p.shape))
            elif name.endswith(".bias"):
                v = rng.normal(0.0, 0.05, size=tuple(p.shape))
            else:
                v = 1.0 + rng.normal(0.0, 0.1, size=tuple(p.shape))
            p.copy_(torch.from_numpy(v.astype(np.float32)))
