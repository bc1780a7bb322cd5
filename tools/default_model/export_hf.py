"""Export the trained default model as a Hugging Face Llama folder.

Writes <out>/config.json (LlamaForCausalLM), <out>/model.safetensors (F16,
HF tensor names; the output projection is tied to the embedding, so there is
no lm_head.weight, as HF itself saves tied models), <out>/tokenizer.model
(the SentencePiece model), <out>/tokenizer_config.json,
<out>/special_tokens_map.json and <out>/generation_config.json.

Usage: python3 export_hf.py --work DIR --out DIR
"""

import argparse
import json
import os
import shutil

import torch
from safetensors.torch import save_file

from model import Config


def hf_config(cfg):
    """config.json for transformers' LlamaForCausalLM."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.dim,
        "intermediate_size": cfg.ffn_dim,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads,
        "head_dim": cfg.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": cfg.max_seq_len,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,
        "rope_scaling": None,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "initializer_range": 0.02,
        "pretraining_tp": 1,
        "tie_word_embeddings": True,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": "float16",
        "use_cache": True,
    }


def hf_state_dict(state_dict):
    """Our parameter names plus HF's 'model.' prefix, as F16 tensors."""
    return {"model." + k: v.detach().to(torch.float16).contiguous()
            for k, v in state_dict.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    ckpt = torch.load(os.path.join(args.work, "model.pt"))
    cfg = Config(**ckpt["config"])
    os.makedirs(args.out, exist_ok=True)

    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(hf_config(cfg), f, indent=2)
        f.write("\n")
    save_file(hf_state_dict(ckpt["state_dict"]),
              os.path.join(args.out, "model.safetensors"),
              metadata={"format": "pt"})
    shutil.copyfile(os.path.join(args.work, "tokenizer.model"),
                    os.path.join(args.out, "tokenizer.model"))

    # The slow, SentencePiece-backed LlamaTokenizer: BOS added, no EOS.
    # legacy=True keeps Llama 2's original handling of text after special
    # tokens, which is what SentencePiece itself does.
    tok_cfg = {
        "tokenizer_class": "LlamaTokenizer",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": None,
        "add_bos_token": True,
        "add_eos_token": False,
        "legacy": True,
        "clean_up_tokenization_spaces": False,
        "model_max_length": cfg.max_seq_len,
        "sp_model_kwargs": {},
    }
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump(tok_cfg, f, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
                  f, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": 2}, f, indent=2)
        f.write("\n")
    print(f"export_hf: wrote {args.out}")


if __name__ == "__main__":
    main()
