"""The shipped model in PyTorch, and greedy decoding with it.

The exported files store the matrices in F16 (and Q8_0), so the numbers the
C engine will be compared with (held-out perplexity, the reference greedy
continuation) are computed with the trained weights rounded to F16 once and
then used in F32 arithmetic: exactly the weights in model.safetensors and
fortune-llama-f16.gguf.
"""

import os

import torch

from model import Config, Llama


def load_shipped_model(work, round_f16=True):
    """(model in eval mode, Config) from <work>/model.pt; weights rounded to
    F16 unless round_f16 is False (then the raw F32 training result)."""
    ckpt = torch.load(os.path.join(work, "model.pt"))
    cfg = Config(**ckpt["config"])
    model = Llama(cfg)
    sd = ckpt["state_dict"]
    if round_f16:
        sd = {k: v.to(torch.float16).to(torch.float32) for k, v in sd.items()}
    model.load_state_dict(sd)
    model.eval()
    return model, cfg


@torch.no_grad()
def greedy(model, prompt_ids, n_new):
    """The n_new ids that greedy (argmax, first index on ties) decoding adds
    after prompt_ids; the whole sequence is recomputed at every step and
    must fit in the context."""
    seq = list(prompt_ids)
    if len(seq) + n_new > model.cfg.max_seq_len:
        raise ValueError("prompt + continuation longer than the context")
    for _ in range(n_new):
        logits = model(torch.tensor([seq]))[0, -1]
        seq.append(int(torch.argmax(logits)))
    return seq[len(prompt_ids):]
