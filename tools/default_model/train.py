"""Train the default model (model.py) on the fortune corpus, on the CPU.

Data: the training text is tokenized as one stream (BOS first, as the
held-out protocol does); each epoch cuts it into non-overlapping windows of
ctx+1 tokens starting at a seeded random offset in [0, ctx), shuffles the
windows with the seeded generator, and feeds them in batches (input = the
first ctx tokens, target = the last ctx). Everything random comes from
--seed (torch for the initial weights, numpy for the data order), the thread
count is fixed and torch's deterministic mode is on, so a rerun with the same
seed, steps and threads on the same machine gives the same weights.

Optimiser: AdamW (betas 0.9/0.95, weight decay 0.1 on matrices only), linear
warmup then cosine decay to lr/10, gradient norm clipped at 1.0.

Writes <work>/model.pt (weights + config) and <work>/train-log.json (the
loss curve: train loss every step, held-out loss at a few points).

Usage: python3 train.py --work DIR --heldout FILE [--steps N] [--batch N] ...
"""

import argparse
import json
import math
import os
import time

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F

from evaluation import heldout_nll, stream_tokens
from model import Config, Llama


def lr_at(step, steps, warmup, lr, min_lr):
    """Learning rate at step (0-based): linear warmup, cosine decay."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def batches(ids, ctx, batch, rng):
    """Endless batches of (batch, ctx+1) windows, epoch after epoch."""
    data = np.asarray(ids, dtype=np.int64)
    epoch = 0
    while True:
        offset = int(rng.integers(0, ctx))
        n = (len(data) - offset) // (ctx + 1)
        starts = offset + (ctx + 1) * rng.permutation(n)
        for i in range(0, n - batch + 1, batch):
            rows = [data[s:s + ctx + 1] for s in starts[i:i + batch]]
            yield epoch, torch.from_numpy(np.stack(rows))
        epoch += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--heldout", required=True)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--evals", type=int, default=4,
                    help="held-out evaluations during training (last at the end)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    sp = spm.SentencePieceProcessor(model_file=os.path.join(args.work, "tokenizer.model"))
    with open(os.path.join(args.work, "train.txt"), encoding="utf-8") as f:
        train_ids = stream_tokens(sp, f.read())
    with open(args.heldout, encoding="utf-8") as f:
        heldout_ids = stream_tokens(sp, f.read())

    cfg = Config(vocab_size=sp.vocab_size())
    model = Llama(cfg)
    model.init_weights(torch.Generator().manual_seed(args.seed))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"train: {n_params} parameters, {len(train_ids)} training tokens, "
          f"{len(heldout_ids)} held-out tokens, {args.steps} steps of "
          f"{args.batch}x{cfg.max_seq_len} tokens, {args.threads} threads", flush=True)

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    min_lr = args.lr / 10
    eval_steps = {round(args.steps * (k + 1) / args.evals) for k in range(args.evals)}

    log = {"train_loss": [], "heldout_loss": [], "lr": []}
    data = batches(train_ids, cfg.max_seq_len, args.batch, rng)
    t0 = time.time()
    window = []
    epoch = 0
    for step in range(args.steps):
        lr = lr_at(step, args.steps, args.warmup, args.lr, min_lr)
        for g in opt.param_groups:
            g["lr"] = lr
        epoch, xb = next(data)
        logits = model(xb[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, cfg.vocab_size), xb[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

        log["train_loss"].append(round(loss.item(), 4))
        log["lr"].append(lr)
        window.append(loss.item())
        done = step + 1
        if done % 10 == 0 or done == args.steps:
            el = time.time() - t0
            tok_s = done * args.batch * cfg.max_seq_len / el
            print(f"step {done:5d}/{args.steps} epoch {epoch} loss {sum(window)/len(window):.4f} "
                  f"lr {lr:.2e} {el/60:.1f} min {tok_s:.0f} tok/s", flush=True)
            window = []
        if done in eval_steps:
            nll, n = heldout_nll(model, heldout_ids, cfg.max_seq_len)
            log["heldout_loss"].append({"step": done, "loss": round(nll, 4)})
            print(f"step {done:5d} held-out loss {nll:.4f} (ppl {math.exp(nll):.2f}, "
                  f"{n} tokens)", flush=True)

    log.update({
        "seed": args.seed, "steps": args.steps, "batch": args.batch,
        "tokens_per_step": args.batch * cfg.max_seq_len, "lr_max": args.lr,
        "lr_min": min_lr, "warmup": args.warmup, "threads": args.threads,
        "epochs_seen": round(args.steps * args.batch * (cfg.max_seq_len + 1)
                             / len(train_ids), 3),
        "train_tokens": len(train_ids), "parameters": n_params,
        "train_seconds": round(time.time() - t0, 1),
        "torch_version": torch.__version__,
    })
    torch.save({"config": cfg.to_dict(), "state_dict": model.state_dict()},
               os.path.join(args.work, "model.pt"))
    with open(os.path.join(args.work, "train-log.json"), "w") as f:
        json.dump(log, f)
    print(f"train: done in {log['train_seconds'] / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
