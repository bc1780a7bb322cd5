"""A plain Llama decoder in PyTorch, written for the default model.

Architecture (as Llama 2): token embedding; n_layers blocks of
  x += Wo . attention(RoPE(Wq . rms(x)), RoPE(Wk . rms(x)), Wv . rms(x))
  x += W2 . (silu(W1 . rms(x)) * (W3 . rms(x)))          (SwiGLU)
then a final RMSNorm and the output projection. No biases anywhere.
- RMSNorm: x * rsqrt(mean(x^2) + eps) * weight, eps = 1e-5.
- Grouped-query attention: n_kv_heads key/value heads, each shared by
  n_heads / n_kv_heads query heads (query head h uses kv head h // group).
- RoPE, Hugging Face convention ("rotate_half"): within each head the
  dimensions are split into a first and a second half; dimension i of the
  first half and dimension i of the second half form the pair rotated by
  angle pos * theta^(-2i/head_dim). (Meta's and llama.cpp's convention pairs
  adjacent dimensions instead; the GGUF exporter permutes the rows of Wq and
  Wk to convert.)
- The output projection is tied to the token embedding (logits = h . E^T).

The parameter names follow Hugging Face's LlamaForCausalLM without the
'model.' prefix, so the export is a renaming.
"""

import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    vocab_size: int = 4096      # SentencePiece pieces
    dim: int = 256              # hidden size
    n_layers: int = 6           # decoder blocks
    n_heads: int = 8            # query heads
    n_kv_heads: int = 4         # key/value heads (GQA)
    ffn_dim: int = 576          # SwiGLU inner size
    max_seq_len: int = 256      # context length (training and evaluation)
    norm_eps: float = 1e-5      # RMSNorm epsilon
    rope_theta: float = 10000.0 # RoPE base

    @property
    def head_dim(self):
        return self.dim // self.n_heads

    def to_dict(self):
        return asdict(self)


class RMSNorm(nn.Module):
    """Root-mean-square norm with a learned per-channel scale."""

    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(cfg, seq_len):
    """cos and sin tables of shape (seq_len, head_dim), HF layout: the
    frequencies for the first half repeated for the second half."""
    inv_freq = 1.0 / (cfg.rope_theta ** (
        torch.arange(0, cfg.head_dim, 2, dtype=torch.float32) / cfg.head_dim))
    pos = torch.arange(seq_len, dtype=torch.float32)
    freqs = torch.outer(pos, inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    """(x1, x2) -> (-x2, x1) over the two halves of the last dimension."""
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


class Attention(nn.Module):
    """Causal grouped-query self-attention with RoPE."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        hd = cfg.head_dim
        self.q_proj = nn.Linear(cfg.dim, cfg.n_heads * hd, bias=False)
        self.k_proj = nn.Linear(cfg.dim, cfg.n_kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(cfg.dim, cfg.n_kv_heads * hd, bias=False)
        self.o_proj = nn.Linear(cfg.n_heads * hd, cfg.dim, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        cfg = self.cfg
        hd = cfg.head_dim
        q = self.q_proj(x).view(b, t, cfg.n_heads, hd).transpose(1, 2)
        k = self.k_proj(x).view(b, t, cfg.n_kv_heads, hd).transpose(1, 2)
        v = self.v_proj(x).view(b, t, cfg.n_kv_heads, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # Share each kv head with its group of query heads: (b, kv, g, t, hd).
        group = cfg.n_heads // cfg.n_kv_heads
        q = q.view(b, cfg.n_kv_heads, group, t, hd)
        k = k.unsqueeze(2)
        v = v.unsqueeze(2)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd)) + mask
        att = att.softmax(dim=-1)
        y = (att @ v).reshape(b, cfg.n_heads, t, hd)
        y = y.transpose(1, 2).reshape(b, t, cfg.n_heads * hd)
        return self.o_proj(y)


class MLP(nn.Module):
    """SwiGLU feed-forward: down(silu(gate(x)) * up(x))."""

    def __init__(self, cfg):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.up_proj = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.down_proj = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    """One pre-norm decoder block."""

    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    """The whole decoder; forward(tokens (b, t)) -> logits (b, t, vocab)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        cos, sin = rope_tables(cfg, cfg.max_seq_len)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        causal = torch.full((cfg.max_seq_len, cfg.max_seq_len), float("-inf")).triu(1)
        self.register_buffer("causal_mask", causal, persistent=False)

    def init_weights(self, generator):
        """GPT-2 style init: N(0, 0.02), the two projections that write into
        the residual stream scaled by 1/sqrt(2 n_layers); norms at 1."""
        std = 0.02
        resid_std = std / math.sqrt(2 * self.cfg.n_layers)
        for name, p in self.named_parameters():
            p = p.data
            if p.dim() == 1:
                nn.init.ones_(p)
            elif name.endswith("o_proj.weight") or name.endswith("down_proj.weight"):
                p.normal_(0.0, resid_std, generator=generator)
            else:
                p.normal_(0.0, std, generator=generator)

    def forward(self, tokens):
        t = tokens.shape[1]
        if t > self.cfg.max_seq_len:
            raise ValueError(f"sequence of {t} > context {self.cfg.max_seq_len}")
        cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        mask = self.causal_mask[:t, :t]
        x = self.embed_tokens(tokens)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.norm(x) @ self.embed_tokens.weight.t()
