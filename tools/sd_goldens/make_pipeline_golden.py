"""tools/sd_goldens/make_pipeline_golden.py - a whole txt2img run on the tiny
SD 1.x model of tests/data/sd/tiny-sd15, computed with its diffusers and
transformers components and k-diffusion's Euler loop as AUTOMATIC1111 runs
it, for tests/model/test_sd_pipeline_golden.c to compare kiln's image with.

Writes into tests/data/sd/pipeline/:
  cond.f32     the prompt's conditioning after the emphasis weighting,
               float32 [77][32] (the tiny image hardly reacts to it);
  image.f32    the decoded image, float32 [64][64][3] in 0..1 (diffusers'
               output_type="np");
  index.json   the request (prompt, negative prompt, steps, guidance, seed,
               size).

The run: latents = torch.randn([1, 4, 32, 32], generator=torch.Generator()
.manual_seed(seed)) * sigma_max; k-diffusion's CompVisDenoiser sigmas for the
"normal" schedule (timesteps linspace(999, 0, steps), log-sigma
interpolation, then 0); each Euler step x += (x - denoised) / sigma *
(sigma_next - sigma), denoised = x - sigma * eps(x / sqrt(sigma^2 + 1), t)
with classifier-free guidance on the denoised estimates; the prompt's
emphasis weights applied as A1111's sd_hijack_clip does (hidden states times
the weights, rescaled to the original mean); the VAE decodes
latents / 0.18215 and the image is clamp((x + 1) / 2).
Usage: python make_pipeline_golden.py TESTS_DATA_SD_DIR
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

# The prompt in AUTOMATIC1111's emphasis syntax, and as its parser splits it:
# fragments with their weights ("(x:1.3)" is 1.3, "[x]" is 1 / 1.1).
PROMPT = "a photo of a (cat:1.3) in the [snow]"
FRAGMENTS = [("a photo of a ", 1.0), ("cat", 1.3), (" in the ", 1.0), ("snow", 1 / 1.1)]
NEGATIVE = "a dog"
STEPS = 3
GUIDANCE = 7.0
SEED = 11
SIZE = 64


def main() -> None:
    root = Path(sys.argv[1])
    model = root / "tiny-sd15"
    out = root / "pipeline"
    out.mkdir(parents=True, exist_ok=True)
    tok = CLIPTokenizer.from_pretrained(model / "tokenizer")
    te = CLIPTextModel.from_pretrained(model / "text_encoder").eval()
    unet = UNet2DConditionModel.from_pretrained(model / "unet").eval()
    vae = AutoencoderKL.from_pretrained(model / "vae").eval()
    scale = 2 ** (len(vae.config.block_out_channels) - 1)

    def encode(fragments):
        """A1111's conditioning: each fragment tokenized on its own, start and
        end tokens, end-token padding to 77; hidden states times the weights,
        then rescaled to the unweighted mean (sd_hijack_clip)."""
        ids, weights = [tok.bos_token_id], [1.0]
        for text, weight in fragments:
            frag = tok(text, add_special_tokens=False).input_ids
            ids += frag
            weights += [weight] * len(frag)
        ids += [tok.eos_token_id] * (77 - len(ids))
        weights += [1.0] * (77 - len(weights))
        z = te(torch.tensor([ids])).last_hidden_state.double()
        mean = z.mean()
        z = z * torch.tensor(weights, dtype=torch.float64)[None, :, None]
        return (z * (mean / z.mean())).float()

    # SD's schedule: scaled-linear betas 0.00085..0.012 over 1000 steps.
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    ac = torch.cumprod(1.0 - betas, 0)
    log_sigmas = (((1 - ac) / ac) ** 0.5).log()

    def t_to_sigma(t):
        lo = int(np.floor(t))
        hi = min(lo + 1, 999)
        w = t - lo
        return float(((1 - w) * log_sigmas[lo] + w * log_sigmas[hi]).exp())

    def sigma_to_t(sigma):
        ls = np.log(sigma)
        dists = ls - log_sigmas.numpy()
        lo = int(np.clip(np.nonzero(dists >= 0)[0].max(), 0, 998))
        l0, l1 = float(log_sigmas[lo]), float(log_sigmas[lo + 1])
        w = np.clip((l0 - ls) / (l0 - l1), 0, 1)
        return (1 - w) * lo + w * (lo + 1)

    sigmas = [t_to_sigma(t) for t in np.linspace(999, 0, STEPS)] + [0.0]
    with torch.no_grad():
        cond, uncond = encode(FRAGMENTS), encode([(NEGATIVE, 1.0)])
        h = SIZE // scale
        gen = torch.Generator().manual_seed(SEED)
        x = torch.randn([1, 4, h, h], generator=gen).double() * sigmas[0]
        for i in range(STEPS):
            s = sigmas[i]
            t = torch.tensor([sigma_to_t(s)], dtype=torch.float32)
            xin = (x / (s * s + 1) ** 0.5).float()
            eps_c = unet(xin, t, encoder_hidden_states=cond).sample.double()
            eps_u = unet(xin, t, encoder_hidden_states=uncond).sample.double()
            den_c, den_u = x - s * eps_c, x - s * eps_u
            den = den_u + (den_c - den_u) * GUIDANCE
            x = x + (x - den) / s * (sigmas[i + 1] - s)
        img = vae.decode((x / vae.config.scaling_factor).float()).sample
        img = ((img + 1) / 2).clamp(0, 1)[0].permute(1, 2, 0).numpy().astype("<f4")
    img.tofile(out / "image.f32")
    cond.numpy().astype("<f4").tofile(out / "cond.f32")
    index = {"prompt": PROMPT, "negative_prompt": NEGATIVE, "steps": STEPS, "guidance": GUIDANCE,
             "seed": SEED, "width": SIZE, "height": SIZE, "sampler": "euler", "schedule": "normal",
             "image": "image.f32: float32 [64][64][3] in 0..1",
             "cond": "cond.f32: float32 [77][32], the prompt's weighted conditioning"}
    (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")


if __name__ == "__main__":
    main()
