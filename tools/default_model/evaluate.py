"""Measure the shipped default model and write models/default-model.json.

Computes, with the F16-rounded weights (reference.py):
- the held-out perplexity by the protocol in evaluation.py,
  and the same for the raw F32 training weights, for comparison;
- the perplexity of a unigram model (training-token counts, add-one
  smoothing) on the same scored held-out tokens;
- the reference greedy continuation: 64 tokens after BOS + "A wise man once
  said", with every id (for a future C engine test);
- a few samples (temperature 0.8, seeded) for the model card.
and gathers the training log, the corpus counts, the export checks
(verify.json), and the size and SHA-256 of every shipped file.

Usage: python3 evaluate.py --work DIR --models DIR --heldout FILE --out JSON
"""

import argparse
import hashlib
import json
import math
import os

import sentencepiece as spm
import torch

from evaluation import heldout_nll, stream_tokens, unigram_nll, windows
from reference import greedy, load_shipped_model

PROMPT = "A wise man once said"
N_NEW = 64
SAMPLE_PROMPTS = ["A wise man once said", "Linux is", "Love is", "The computer"]


@torch.no_grad()
def sample(model, prompt_ids, n_new, temperature, generator):
    """Temperature sampling (for the model card only)."""
    seq = list(prompt_ids)
    for _ in range(n_new):
        logits = model(torch.tensor([seq[-model.cfg.max_seq_len:]]))[0, -1]
        probs = torch.softmax(logits / temperature, dim=-1)
        seq.append(int(torch.multinomial(probs, 1, generator=generator)))
    return seq[len(prompt_ids):]


def file_entry(path, root):
    """Relative path, size and SHA-256 of one shipped file."""
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {"path": os.path.relpath(path, root), "bytes": os.path.getsize(path),
            "sha256": digest}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--models", required=True, help="the models/ folder")
    ap.add_argument("--heldout", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    sp = spm.SentencePieceProcessor(model_file=os.path.join(args.work, "tokenizer.model"))
    with open(os.path.join(args.work, "train.txt"), encoding="utf-8") as f:
        train_ids = stream_tokens(sp, f.read())
    with open(args.heldout, encoding="utf-8") as f:
        heldout_ids = stream_tokens(sp, f.read())
    with open(os.path.join(args.work, "train-log.json")) as f:
        log = json.load(f)
    with open(os.path.join(args.work, "corpus-stats.json")) as f:
        corpus = json.load(f)
    with open(os.path.join(args.work, "verify.json")) as f:
        verify = json.load(f)

    model, cfg = load_shipped_model(args.work)
    ctx = cfg.max_seq_len
    nll, n_scored = heldout_nll(model, heldout_ids, ctx)
    raw_model, _ = load_shipped_model(args.work, round_f16=False)
    nll_f32, _ = heldout_nll(raw_model, heldout_ids, ctx)
    uni, n_uni = unigram_nll(train_ids, heldout_ids, cfg.vocab_size, ctx)
    assert n_uni == n_scored
    print(f"evaluate: held-out NLL {nll:.4f} ppl {math.exp(nll):.2f} "
          f"(F32 weights {math.exp(nll_f32):.2f}); unigram ppl {math.exp(uni):.2f}; "
          f"{n_scored} scored tokens in {len(windows(heldout_ids, ctx))} windows")

    prompt_ids = stream_tokens(sp, PROMPT)
    gen = greedy(model, prompt_ids, N_NEW)
    full_text = sp.decode(prompt_ids[1:] + gen)
    print(f"evaluate: greedy: {full_text!r}")
    g = torch.Generator().manual_seed(args.seed)
    samples = []
    for p in SAMPLE_PROMPTS:
        ids = sample(model, stream_tokens(sp, p), 80, 0.8, g)
        samples.append({"prompt": p, "text": sp.decode(stream_tokens(sp, p)[1:] + ids)})
        print(f"evaluate: sample: {samples[-1]['text']!r}")

    shipped = []
    for dirpath, _, names in os.walk(args.models):
        for name in sorted(names):
            path = os.path.join(dirpath, name)
            if os.path.abspath(path) != os.path.abspath(args.out):
                shipped.append(file_entry(path, args.models))
    shipped.sort(key=lambda e: e["path"])

    every = 10
    curve = [{"step": s + every,
              "loss": round(sum(log["train_loss"][s:s + every]) /
                            len(log["train_loss"][s:s + every]), 4)}
             for s in range(0, len(log["train_loss"]), every)]
    result = {
        "name": "fortune-llama",
        "description": "kiln's default model: a tiny Llama trained from scratch on "
                       "Debian's fortune cookie files (packages fortunes, fortunes-min)",
        "config": cfg.to_dict() | {"head_dim": cfg.head_dim, "tied_embeddings": True,
                                   "rope_convention": "hf_rotate_half (GGUF: permuted "
                                                      "for llama.cpp adjacent pairs)"},
        "tokenizer": {"type": "sentencepiece_bpe", "vocab_size": sp.vocab_size(),
                      "byte_fallback": True, "add_dummy_prefix": True,
                      "unk_id": 0, "bos_id": 1, "eos_id": 2,
                      "add_bos": True, "add_eos": False},
        "corpus": {k: v for k, v in corpus.items() if k != "files"}
                  | {"files": [e["name"] for e in corpus["files"]]},
        "training": {k: log[k] for k in (
            "seed", "steps", "batch", "tokens_per_step", "lr_max", "lr_min", "warmup",
            "threads", "epochs_seen", "train_tokens", "parameters", "train_seconds",
            "torch_version")}
                    | {"optimizer": "AdamW(0.9, 0.95), wd 0.1 on matrices, clip 1.0, "
                                    "linear warmup + cosine"},
        "loss_curve": {"train_loss_mean_per_10_steps": curve,
                       "train_loss_per_step": log["train_loss"],
                       "heldout_loss": log["heldout_loss"]},
        "evaluation": {
            "protocol": "held-out text tokenized as one stream with BOS first; "
                        "non-overlapping windows of ctx tokens (last may be shorter); "
                        "each window run alone from position 0, tokens 0..n-2 predict "
                        "1..n-1; mean NLL (nats) over all scored tokens; ppl = exp",
            "heldout_file": "fortune-heldout.txt",
            "ctx": ctx,
            "heldout_stream_tokens": len(heldout_ids),
            "scored_tokens": n_scored,
            "windows": len(windows(heldout_ids, ctx)),
            "weights": "F16-rounded (as shipped), F32 arithmetic",
            "heldout_nll": round(nll, 6),
            "heldout_ppl": round(math.exp(nll), 4),
            "heldout_ppl_f32_weights": round(math.exp(nll_f32), 4),
            "unigram_nll": round(uni, 6),
            "unigram_ppl": round(math.exp(uni), 4),
            "unigram": "fitted on the training stream (BOS + tokens), add-one smoothing "
                       "over the whole vocabulary",
        },
        "reference_generation": {
            "prompt": PROMPT,
            "prompt_ids": prompt_ids,
            "mode": "greedy (argmax), F16-rounded weights, F32 arithmetic, no EOS stop",
            "n_new": N_NEW,
            "generated_ids": gen,
            "text": full_text,
        },
        "samples_temperature_0.8": samples,
        "verification": verify,
        "files": shipped,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"evaluate: wrote {args.out}")


if __name__ == "__main__":
    main()
