#!/usr/bin/env python3
"""Make tests/data/image/samplers.json: noise schedules and sampler steps.

References, run here:
  * k-diffusion 0.1.1.post1 (what AUTOMATIC1111 calls): CompVisDenoiser /
    CompVisVDenoiser around a model with Stable Diffusion's alphas_cumprod
    (scaled-linear betas 0.00085..0.012 over 1000 steps, computed in float64
    and stored as float32 as ldm does), its get_sigmas (kiln's "normal"
    schedule, A1111's "Automatic"), get_sigmas_karras, get_sigmas_exponential,
    and the samplers sample_euler, sample_euler_ancestral, sample_heun,
    sample_dpmpp_2m and sample_dpmpp_2m_sde (with noise from torch.randn_like
    on the global generator instead of its default Brownian tree: see
    docs/image-foundations.md);
  * A1111's "SGM Uniform" schedule (modules/sd_schedulers.py, sgm_uniform:
    n + 1 evenly spaced model timesteps between sigma_max and sigma_min, the
    last dropped, each turned into a sigma; not on PyPI, so its three lines
    are transcribed below around k-diffusion's sigma_to_t / t_to_sigma);
  * diffusers 0.31.0: DDIMScheduler (SD's config: scaled_linear, steps_offset
    1, set_alpha_to_one False, clip_sample False) and LCMScheduler (LCM
    Dreamshaper's config: set_alpha_to_one True, steps_offset 1,
    original_inference_steps 50).
The "model" is a toy that both sides compute elementwise in float32:
    out = 0.8 * x_in + 0.1 * cos(0.01 * t + 0.37 * k)      (k = flat index)
read as epsilon or as v. Latents are 1x4x4x4 from torch.manual_seed(seed);
torch.randn (the initial noise times sigma_0, or times init_noise_sigma for
diffusers), and every later draw (ancestral and SDE noise, LCM noise) comes
from the same global generator, as kiln's samplers draw from one kiln_rng.
Recorded: the sigmas of each schedule; per run, the sampler's sigmas (and
timesteps for DDIM/LCM) and the latents after every step (diffusers: its
latents x_t; k-diffusion: x).

Usage: python3 tools/image_goldens/make_sampler_goldens.py
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
from goldens_env import ROOT, ensure_venv  # noqa: E402
from k_diffusion_import import import_k_diffusion  # noqa: E402

ensure_venv(__file__)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from diffusers import DDIMScheduler, LCMScheduler  # noqa: E402  (before the k_diffusion stand-in)

K, EXT = import_k_diffusion()

OUT = ROOT / "tests" / "data" / "image" / "samplers.json"
SHAPE = (1, 4, 4, 4)


def toy(x_in, t):
    k = torch.arange(x_in.numel(), dtype=torch.float32).reshape(x_in.shape)
    t = torch.as_tensor(t).to(torch.float32).reshape(-1, *([1] * (x_in.ndim - 1)))
    return x_in * 0.8 + 0.1 * torch.cos(t * 0.01 + k * 0.37)


class ToyCompVisModel:
    """What CompVisDenoiser needs of an ldm model: alphas_cumprod and apply_model."""

    def __init__(self):
        betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
        self.alphas_cumprod = torch.tensor(np.cumprod(1.0 - betas.numpy(), axis=0), dtype=torch.float32)

    def apply_model(self, x, t, cond=None):
        return toy(x, t)


def flat(t):
    return [float("%.9g" % v) for v in t.flatten().tolist()]


def schedule(wrap, name, n):
    smin, smax = wrap.sigmas[0].item(), wrap.sigmas[-1].item()
    if name == "normal":
        return wrap.get_sigmas(n)
    if name == "karras":
        return K.get_sigmas_karras(n, smin, smax, rho=7.0)
    if name == "exponential":
        return K.get_sigmas_exponential(n, smin, smax)
    if name == "sgm_uniform":  # A1111's sgm_uniform, transcribed
        start = wrap.sigma_to_t(torch.tensor(smax))
        end = wrap.sigma_to_t(torch.tensor(smin))
        sigs = [wrap.t_to_sigma(ts) for ts in torch.linspace(start, end, n + 1)[:-1]]
        sigs += [0.0]
        return torch.FloatTensor(sigs)
    raise ValueError(name)


SAMPLERS = {
    "euler": lambda m, x, s, cb: K.sample_euler(m, x, s, callback=cb, disable=True),
    "euler_a": lambda m, x, s, cb: K.sample_euler_ancestral(m, x, s, callback=cb, disable=True),
    "heun": lambda m, x, s, cb: K.sample_heun(m, x, s, callback=cb, disable=True),
    "dpmpp_2m": lambda m, x, s, cb: K.sample_dpmpp_2m(m, x, s, callback=cb, disable=True),
    "dpmpp_2m_sde": lambda m, x, s, cb: K.sample_dpmpp_2m_sde(
        m, x, s, callback=cb, disable=True, noise_sampler=K.default_noise_sampler(x)),
}

# (sampler, schedule, prediction, steps, seed)
K_RUNS = [
    ("euler", "normal", "eps", 8, 1),
    ("euler", "sgm_uniform", "v", 5, 2),
    ("euler_a", "normal", "eps", 6, 3),
    ("euler_a", "karras", "v", 5, 4),
    ("heun", "karras", "eps", 5, 5),
    ("heun", "exponential", "v", 4, 6),
    ("dpmpp_2m", "karras", "eps", 10, 7),
    ("dpmpp_2m", "normal", "v", 6, 8),
    ("dpmpp_2m", "exponential", "eps", 4, 9),
    ("dpmpp_2m_sde", "karras", "eps", 8, 10),
    ("dpmpp_2m_sde", "sgm_uniform", "v", 6, 11),
]

# (scheduler, prediction, steps, seed, eta)
D_RUNS = [
    ("ddim", "eps", 10, 12, 0.0),
    ("ddim", "v", 7, 13, 0.0),
    ("ddim", "eps", 5, 14, 1.0),
    ("lcm", "eps", 4, 15, 0.0),
    ("lcm", "v", 6, 16, 0.0),
]


def k_run(model, sampler, sched, pred, steps, seed):
    wrap = EXT.CompVisDenoiser(model) if pred == "eps" else EXT.CompVisVDenoiser(model)
    sigmas = schedule(wrap, sched, steps)
    torch.manual_seed(seed)
    x = torch.randn(SHAPE) * sigmas[0]
    xs = []
    cb = lambda d: xs.append(d["x"].clone()) if d["i"] > 0 else None  # x before step i = after i - 1
    out = SAMPLERS[sampler](lambda xx, s, **kw: wrap(xx, s, cond=None), x, sigmas, cb)
    xs.append(out)
    return {"sampler": sampler, "schedule": sched, "pred": pred, "steps": steps, "seed": seed,
            "sigmas": flat(sigmas), "x": [flat(v) for v in xs]}


def d_run(kind, pred, steps, seed, eta):
    common = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
                  prediction_type="epsilon" if pred == "eps" else "v_prediction")
    if kind == "ddim":
        sch = DDIMScheduler(clip_sample=False, set_alpha_to_one=False, **common)
    else:
        sch = LCMScheduler(set_alpha_to_one=True, original_inference_steps=50, **common)
    sch.set_timesteps(steps)
    torch.manual_seed(seed)
    x = torch.randn(SHAPE) * sch.init_noise_sigma
    xs = []
    for t in sch.timesteps:
        out = toy(sch.scale_model_input(x, t), t)
        x = sch.step(out, t, x, eta=eta).prev_sample if kind == "ddim" else sch.step(out, t, x).prev_sample
        xs.append(x)
    return {"sampler": kind, "pred": pred, "steps": steps, "seed": seed, "eta": eta,
            "timesteps": [int(t) for t in sch.timesteps], "x": [flat(v) for v in xs]}


def main():
    model = ToyCompVisModel()
    wrap = EXT.CompVisDenoiser(model)
    doc = {"k_diffusion": "0.1.1.post1", "diffusers": __import__("diffusers").__version__,
           "torch": torch.__version__, "shape": list(SHAPE),
           "model_sigmas": {"first": flat(wrap.sigmas[:3]), "last": flat(wrap.sigmas[-3:])},
           "schedules": [], "runs": []}
    for name in ("normal", "karras", "exponential", "sgm_uniform"):
        for n in (1, 4, 7, 20):
            doc["schedules"].append({"schedule": name, "steps": n, "sigmas": flat(schedule(wrap, name, n))})
    for r in K_RUNS:
        doc["runs"].append(k_run(model, *r))
    for r in D_RUNS:
        doc["runs"].append(d_run(*r))
    OUT.write_text(json.dumps(doc) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
