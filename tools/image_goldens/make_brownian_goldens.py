#!/usr/bin/env python3
"""Make tests/data/image/brownian.json: k-diffusion's Brownian tree noise.

References, run here: numpy's SeedSequence (the splittable seeds torchsde
uses), k-diffusion 0.1.1.post1's BrownianTreeNoiseSampler (torchsde 0.2.6's
BrownianTree underneath) and sample_dpmpp_2m_sde with that noise sampler,
seeded as AUTOMATIC1111's create_noise_sampler seeds it (seed=[image seed],
over sigmas[sigmas > 0].min() .. sigmas.max() of the sigmas handed to the
sampler).
Recorded:
  seed_sequences  SeedSequence(entropy, spawn_key, pool_size=24)
                  .generate_state(4) for a few entropies and keys;
  noises          per case (seed, latent shape, Karras sigmas of the toy
                  CompVis model, first step): the sampler's noise for each
                  step (sigma_i -> sigma_{i+1}, the last nonzero), float32
                  written with 9 significant digits (exact);
  runs            sample_dpmpp_2m_sde (eta 1, midpoint) on the toy model of
                  make_sampler_goldens.py with that noise: the latent after
                  every step. A run with "first" > 0 starts part way, as
                  A1111's img2img does (sigmas[first:] to sampler and tree).
Usage: python3 tools/image_goldens/make_brownian_goldens.py
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from goldens_env import ROOT, ensure_venv  # noqa: E402

ensure_venv(__file__)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import make_sampler_goldens as msg  # noqa: E402  (its k-diffusion import and toy model)

K, EXT = msg.K, msg.EXT
OUT = ROOT / "tests" / "data" / "image" / "brownian.json"


def flat(t):
    return [float("%.9g" % v) for v in t.flatten().tolist()]


def karras(wrap, n):
    return K.get_sigmas_karras(n, wrap.sigmas[0].item(), wrap.sigmas[-1].item(), rho=7.0)


def noise_case(wrap, seed, shape, steps, first):
    sig = karras(wrap, steps)[first:]
    x = torch.zeros(shape)
    smin, smax = sig[sig > 0].min(), sig.max()
    ns = K.BrownianTreeNoiseSampler(x, smin, smax, seed=[seed])
    noise = [flat(ns(sig[i], sig[i + 1])) for i in range(len(sig) - 2)]
    return {"seed": seed, "shape": list(shape), "steps": steps, "first": first, "sigmas": flat(sig),
            "noise": noise}


def run_case(model, pred, seed, steps, first):
    wrap = EXT.CompVisDenoiser(model) if pred == "eps" else EXT.CompVisVDenoiser(model)
    sig = karras(wrap, steps)
    torch.manual_seed(seed)
    x = torch.randn(msg.SHAPE) * sig[first]
    sig = sig[first:]
    smin, smax = sig[sig > 0].min(), sig.max()
    ns = K.BrownianTreeNoiseSampler(x, smin, smax, seed=[seed])
    xs = []
    cb = lambda d: xs.append(d["x"].clone()) if d["i"] > 0 else None  # noqa: E731
    out = K.sample_dpmpp_2m_sde(lambda xx, s, **kw: wrap(xx, s, cond=None), x, sig, callback=cb, disable=True,
                                noise_sampler=ns)
    xs.append(out)
    return {"pred": pred, "seed": seed, "steps": steps, "first": first, "x0": flat(x),
            "x": [flat(v) for v in xs]}


def main():
    model = msg.ToyCompVisModel()
    wrap = EXT.CompVisDenoiser(model)
    seqs = []
    for ent, key in ((0, None), (42, None), (2 ** 40 + 5, None), (42, (0, 0)), (42, (5, 3)),
                     (2 ** 63 - 1, (123456, 17))):
        kw = {} if key is None else {"spawn_key": key}
        st = np.random.SeedSequence(entropy=ent, pool_size=24, **kw).generate_state(4)
        seqs.append({"entropy": str(ent), "spawn_key": key, "state": [int(v) for v in st]})
    noises = [noise_case(wrap, 42, (1, 4, 4, 4), 8, 0), noise_case(wrap, 7, (1, 4, 5, 3), 6, 0),
              noise_case(wrap, 3000000000, (1, 4, 8, 8), 10, 3), noise_case(wrap, 5, (1, 2, 2, 2), 5, 0)]
    runs = [run_case(model, "eps", 11, 8, 0), run_case(model, "v", 12, 6, 2)]
    doc = {"k_diffusion": "0.1.1.post1", "torchsde": __import__("torchsde").__version__,
           "torch": torch.__version__, "seed_sequences": seqs, "noises": noises, "runs": runs}
    OUT.write_text(json.dumps(doc) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
