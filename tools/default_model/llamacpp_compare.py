"""Compare llamacpp_check.sh's outputs with the PyTorch reference and record
the result in models/default-model.json (key "llamacpp_check").

- tokenization: llama-tokenize's ids for the held-out file must equal the
  SentencePiece stream (BOS + ids) used for the perplexity;
- generation: llama-simple's greedy text is compared with the reference
  continuation (same prompt, 64 tokens); the length of the common prefix
  is recorded (llama.cpp's CPU kernels round activations to F16 for F16
  weights, so a late divergence at a near tie is possible);
- llama-perplexity's final estimate is recorded (its protocol differs from
  ours: see docs/default-model.md), next to the perplexity model.py gets
  by that same protocol, which it must come close to.

Usage: python3 llamacpp_compare.py --out-dir DIR --work DIR --json FILE
       --heldout FILE --source "llama.cpp source description"
"""

import argparse
import ast
import json
import math
import os
import re
import sys

import sentencepiece as spm
import torch

from evaluation import stream_tokens
from reference import load_shipped_model


def common_prefix(a, b):
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


@torch.no_grad()
def llamacpp_protocol_ppl(model, ids, ctx, bos_id=1):
    """Perplexity by llama-perplexity's protocol, computed with model.py:
    chunks of ctx tokens (the incomplete tail dropped), the first token of
    each chunk replaced by BOS, only positions ctx/2 .. ctx-2 scored (each
    predicting the next token)."""
    first = ctx // 2
    total, count = 0.0, 0
    for c in range(len(ids) // ctx):
        chunk = list(ids[c * ctx:(c + 1) * ctx])
        chunk[0] = bos_id
        logp = torch.log_softmax(model(torch.tensor([chunk]))[0].double(), dim=-1)
        for j in range(first, ctx - 1):
            total -= logp[j, chunk[j + 1]].item()
            count += 1
    return math.exp(total / count)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--heldout", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--machine", required=True)
    args = ap.parse_args()

    sp = spm.SentencePieceProcessor(model_file=os.path.join(args.work, "tokenizer.model"))
    with open(args.heldout, encoding="utf-8") as f:
        ids = stream_tokens(sp, f.read())
    with open(args.json, encoding="utf-8") as f:
        card = json.load(f)
    ref = card["reference_generation"]
    ref_text = ref["text"]

    model, cfg = load_shipped_model(args.work)
    ours = llamacpp_protocol_ppl(model, ids, cfg.max_seq_len)
    print(f"model.py by llama-perplexity's protocol: {ours:.4f}")
    result = {"llama_cpp_source": args.source, "machine": args.machine,
              "model_py_ppl_by_llama_perplexity_protocol": round(ours, 4)}
    ok = True
    for q in ("f16", "q8_0"):
        with open(os.path.join(args.out_dir, f"tok-{q}.txt")) as f:
            their_ids = ast.literal_eval(f.read().strip())
        with open(os.path.join(args.out_dir, f"gen-{q}.txt"), encoding="utf-8",
                  errors="replace") as f:
            gen = f.read()
        with open(os.path.join(args.out_dir, f"ppl-{q}.txt"), encoding="utf-8",
                  errors="replace") as f:
            m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", f.read())
        # llama-simple prints every token of the prompt and the
        # continuation, BOS as "<s>" and the first word with its dummy-prefix
        # space; compare the text at the level of characters and of
        # re-tokenized pieces.
        gen = gen.strip("\n")
        if gen.startswith("<s>"):
            gen = gen[len("<s>"):]
        if gen.startswith(" "):
            gen = gen[1:]
        gen_ids = sp.encode(gen)
        ref_ids = sp.encode(ref_text)
        entry = {
            "heldout_tokens_equal": their_ids == ids,
            "heldout_tokens": len(their_ids),
            "greedy_text": gen,
            "greedy_text_equal": gen == ref_text,
            "greedy_common_prefix_chars": common_prefix(gen, ref_text),
            "greedy_common_prefix_pieces": common_prefix(gen_ids, ref_ids),
            "reference_pieces": len(ref_ids),
            "llama_perplexity_ctx256": float(m.group(1)) if m else None,
        }
        result[q] = entry
        # Hard checks: same tokens, and the same perplexity by the same
        # protocol to 1% (F16 activations in llama.cpp's kernels, Q8_0).
        theirs = entry["llama_perplexity_ctx256"]
        ok = ok and entry["heldout_tokens_equal"]
        ok = ok and theirs is not None and abs(theirs - ours) / ours < 0.01
        print(f"{q}: tokens equal {entry['heldout_tokens_equal']}, greedy equal "
              f"{entry['greedy_text_equal']} (common prefix {entry['greedy_common_prefix_pieces']}"
              f"/{len(ref_ids)} pieces), llama-perplexity {entry['llama_perplexity_ctx256']}")
    card["llamacpp_check"] = result
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(card, f, indent=1, ensure_ascii=False)
        f.write("\n")
    if not ok:
        sys.exit("llamacpp_compare: llama.cpp's tokens or perplexity differ")


if __name__ == "__main__":
    main()
