"""The held-out evaluation protocol shared by train.py and evaluate.py.

Protocol (the one a C evaluator must reproduce to get the same number):
 1. Tokenize the whole held-out file as ONE stream: BOS (id 1) followed by
    SentencePiece's encoding of the file's text (dummy prefix on, no EOS).
 2. Cut the stream into consecutive non-overlapping windows of ctx tokens
    (ctx = the context length, 256); the last window may be shorter. A window
    of fewer than 2 tokens is skipped.
 3. Each window is run on its own, from position 0 with an empty cache; the
    token at position i predicts the token at position i+1, for i = 0 .. n-2.
    (The first token of each window is context only and is not scored.)
 4. NLL = mean over all scored tokens of -log softmax(logits)[next token],
    in nats; perplexity = exp(NLL).
"""

import math

import torch
import torch.nn.functional as F


def stream_tokens(sp, text, bos_id=1):
    """Step 1: the held-out text as one token stream with BOS first."""
    return [bos_id] + sp.encode(text)


def windows(ids, ctx):
    """Step 2: the non-overlapping windows (lists of ids) that get scored."""
    out = []
    for start in range(0, len(ids), ctx):
        w = ids[start:start + ctx]
        if len(w) >= 2:
            out.append(w)
    return out


@torch.no_grad()
def heldout_nll(model, ids, ctx, batch=16):
    """Steps 2-4: (mean NLL in nats, number of scored tokens)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    ws = windows(ids, ctx)
    full = [w for w in ws if len(w) == ctx]
    tail = [w for w in ws if len(w) != ctx]
    groups = [full[i:i + batch] for i in range(0, len(full), batch)]
    groups += [[w] for w in tail]
    for g in groups:
        x = torch.tensor(g, dtype=torch.long)
        logits = model(x[:, :-1]).float()
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                              x[:, 1:].reshape(-1), reduction="sum")
        total += nll.item()
        count += x.shape[0] * (x.shape[1] - 1)
    if was_training:
        model.train()
    return total / count, count


def unigram_nll(train_ids, eval_ids, vocab_size, ctx):
    """Mean NLL (nats) of the scored held-out tokens under a unigram model
    fitted on the training stream with add-one (Laplace) smoothing:
    p(t) = (count_train(t) + 1) / (N_train + vocab_size).

    The tokens scored are exactly those of the protocol above (every window
    position but the first), so the two perplexities compare like for like.
    Returns (mean NLL, number of scored tokens).
    """
    counts = [0] * vocab_size
    for t in train_ids:
        counts[t] += 1
    denom = len(train_ids) + vocab_size
    logp = [math.log((c + 1) / denom) for c in counts]
    total, count = 0.0, 0
    for w in windows(eval_ids, ctx):
        for t in w[1:]:
            total -= logp[t]
            count += 1
    return total / count, count
