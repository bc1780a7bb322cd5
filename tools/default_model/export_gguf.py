"""Export the trained default model as GGUF files for llama.cpp-style engines.

Writes two files with the `gguf` package:
  <prefix>-f16.gguf   norms F32 (holding F16-rounded values), every matrix F16
  <prefix>-q8_0.gguf  norms F32, token_embd F16, the other matrices Q8_0
                      (token_embd stays F16: it is both the row table looked
                      up per token and, tied, the output projection)

Metadata: general.architecture=llama, the llama.* hyperparameters, and a
SentencePiece ('llama') tokenizer: tokens, scores, token types (normal 1,
unknown 2, control 3, byte 6), BOS/EOS/UNK ids, add_bos_token=true,
add_eos_token=false; no tokenizer.ggml.pre and no chat template.

Tensor names are llama.cpp's. The output projection is tied to the
embedding, so there is no output.weight (llama.cpp then uses token_embd).
llama.cpp applies RoPE to adjacent pairs of dimensions (x[2i], x[2i+1]),
while the model (HF convention) pairs x[i] with x[i + head_dim/2]; as
llama.cpp's own converter does, the rows of attn_q and attn_k are permuted
within each head so that the adjacent-pair rotation computes the same thing:
new row 2i   = old row i
new row 2i+1 = old row i + head_dim/2.

Usage: python3 export_gguf.py --work DIR --prefix models/fortune-llama
"""

import argparse
import os

import numpy as np
import sentencepiece as spm
import torch
import gguf

from model import Config


def permute_rope_rows(w, n_heads):
    """HF half-split rows -> llama.cpp adjacent-pair rows, per head.

    w has shape (n_heads * head_dim, in). Within a head, row r of the half
    (r < head_dim/2) and row r of the other half end up next to each other.
    """
    rows, cols = w.shape
    head_dim = rows // n_heads
    return (w.reshape(n_heads, 2, head_dim // 2, cols)
             .swapaxes(1, 2)
             .reshape(rows, cols))


def gguf_tensors(state_dict, cfg):
    """(gguf name, float32 numpy array) pairs in llama.cpp order."""
    def get(name):
        # Every value is rounded to F16 once, norms included (stored as F32
        # all the same), so the GGUF files hold exactly the weights of
        # model.safetensors, which the reference numbers are computed with.
        return state_dict[name].detach().to(torch.float16).to(torch.float32).numpy()

    out = [("token_embd.weight", get("embed_tokens.weight"))]
    for i in range(cfg.n_layers):
        p = f"layers.{i}."
        b = f"blk.{i}."
        out += [
            (b + "attn_norm.weight", get(p + "input_layernorm.weight")),
            (b + "attn_q.weight",
             permute_rope_rows(get(p + "self_attn.q_proj.weight"), cfg.n_heads)),
            (b + "attn_k.weight",
             permute_rope_rows(get(p + "self_attn.k_proj.weight"), cfg.n_kv_heads)),
            (b + "attn_v.weight", get(p + "self_attn.v_proj.weight")),
            (b + "attn_output.weight", get(p + "self_attn.o_proj.weight")),
            (b + "ffn_norm.weight", get(p + "post_attention_layernorm.weight")),
            (b + "ffn_gate.weight", get(p + "mlp.gate_proj.weight")),
            (b + "ffn_up.weight", get(p + "mlp.up_proj.weight")),
            (b + "ffn_down.weight", get(p + "mlp.down_proj.weight")),
        ]
    out.append(("output_norm.weight", get("norm.weight")))
    return out


def token_type(sp, i):
    """GGUF token type of piece i (gguf.TokenType values)."""
    if sp.is_unknown(i):
        return gguf.TokenType.UNKNOWN
    if sp.is_control(i):
        return gguf.TokenType.CONTROL
    if sp.is_byte(i):
        return gguf.TokenType.BYTE
    if sp.is_unused(i):
        return gguf.TokenType.UNUSED
    return gguf.TokenType.NORMAL


def write(path, cfg, sp, tensors, quantize):
    """Write one GGUF file; quantize=True stores 2-D tensors (but token_embd)
    as Q8_0."""
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("fortune-llama")
    w.add_description("Tiny Llama trained on Debian's fortune cookies "
                      "(kiln's default model)")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if quantize
                    else gguf.LlamaFileType.MOSTLY_F16)
    w.add_context_length(cfg.max_seq_len)
    w.add_embedding_length(cfg.dim)
    w.add_block_count(cfg.n_layers)
    w.add_feed_forward_length(cfg.ffn_dim)
    w.add_head_count(cfg.n_heads)
    w.add_head_count_kv(cfg.n_kv_heads)
    w.add_layer_norm_rms_eps(cfg.norm_eps)
    w.add_rope_freq_base(cfg.rope_theta)
    w.add_rope_dimension_count(cfg.head_dim)
    w.add_vocab_size(cfg.vocab_size)

    w.add_tokenizer_model("llama")
    w.add_token_list([sp.id_to_piece(i).encode("utf-8") for i in range(sp.vocab_size())])
    w.add_token_scores([float(sp.get_score(i)) for i in range(sp.vocab_size())])
    w.add_token_types([int(token_type(sp, i)) for i in range(sp.vocab_size())])
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_unk_token_id(sp.unk_id())
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)

    for name, arr in tensors:
        if arr.ndim == 1:
            w.add_tensor(name, arr.astype(np.float32))
        elif quantize and name != "token_embd.weight":
            q = gguf.quants.quantize(arr.astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(name, arr.astype(np.float16))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--prefix", required=True)
    args = ap.parse_args()

    ckpt = torch.load(os.path.join(args.work, "model.pt"))
    cfg = Config(**ckpt["config"])
    sp = spm.SentencePieceProcessor(model_file=os.path.join(args.work, "tokenizer.model"))
    tensors = gguf_tensors(ckpt["state_dict"], cfg)
    for suffix, quantize in (("f16", False), ("q8_0", True)):
        path = f"{args.prefix}-{suffix}.gguf"
        write(path, cfg, sp, tensors, quantize)
        print(f"export_gguf: wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
