"""tools/sd_goldens/make_pipeline_cases.py - whole-pipeline goldens beyond
plain txt2img (make_pipeline_golden.py): img2img, inpainting with a
4-channel and with a 9-channel UNet, an SD 2.x v-prediction model, and a
prompt longer than one 75-token chunk with the negative prompt padded to
its length. For tests/model/test_sd_pipeline_cases.c.

Each run is AUTOMATIC1111's, built from the reference pieces: the tiny
models' diffusers UNet2DConditionModel and AutoencoderKL, transformers'
CLIPTokenizer and CLIPTextModel, k-diffusion 0.1.1's CompVisDenoiser /
CompVisVDenoiser, get_sigmas / get_sigmas_karras and its sample_euler,
sample_euler_ancestral, sample_dpmpp_2m and sample_dpmpp_2m_sde loops (the
code A1111 calls; ancestral noise from the image's generator after the
initial noise, SDE noise from BrownianTreeNoiseSampler seeded with the
image seed, as A1111 passes them), and around them what A1111's
own modules add, written out here (A1111 is not on PyPI):

  CFG         (sd_samplers_cfg_denoiser.CFGDenoiser) the model on the
              prompt and on the negative prompt, uncond + (cond - uncond) *
              scale on the denoised estimates, then, when there is a mask,
              denoised * nmask + init_latent * (1 - nmask) (its
              apply_blend, for every model, 4 or 9 input channels);
  img2img     (sd_samplers_kdiffusion.sample_img2img) t_enc = int(min(
              strength, 0.999) * steps), sigmas[steps - t_enc - 1:], x =
              init_latent + noise * that first sigma;
  init latent the VAE posterior *sample* times the scaling factor, as
              A1111's get_first_stage_encoding and diffusers'
              retrieve_latents(sample_mode="sample") take it. A1111 draws
              that sample's noise from torch's global generator, which is not
              seeded from the image seed; kiln draws it from the image's
              generator right after the initial noise, and so does this
              script (torch.Generator().manual_seed(seed): randn of the
              latent's shape, then DiagonalGaussianDistribution.sample with
              the same generator);
  9 channels  (processing.inpainting_image_conditioning) UNet input
              [x * c_in, mask, latent of the image with the masked pixels
              set to 0]; kiln takes that image's posterior *mean* (not a
              sample: no hidden draw), and so does this script;
  mask        white (255) repaints; at latent size the mean of each block,
              rounded (A1111 resizes and rounds; equal on block-aligned
              masks, as here); the decoded image then gets the init image's
              pixels back outside the mask (A1111's apply_overlay);
  prompts     (sd_hijack_clip.tokenize_line) 75-token chunks, a full chunk
              broken after its last comma when that lies within 20 tokens of
              its end, each chunk start + tokens + end padding; each chunk
              through the text encoder, times the emphasis weights, rescaled
              to its unweighted mean; chunks concatenated. With A1111's "Pad
              prompt/negative prompt" option (pad_cond_uncond) the shorter
              conditioning gets the empty prompt's chunk appended until the
              lengths agree.

Writes into tests/data/sd/pipeline/:
  init.u8      the init image, uint8 [64][64][3];
  mask.u8      the mask, uint8 [64][64] (255 = repaint, a block-aligned
               rectangle);
  <case>.f32   each run's image, float32 [64][64][3] in 0..1;
  long_cond.f32, long_uncond.f32  the long prompt's conditioning and the
               padded negative prompt's, float32 [154][32];
  cases.json   the requests;
  v_probe.json A1111's v-prediction probe statistic of two tiny UNets.
Usage: python make_pipeline_cases.py TESTS_DATA_SD_DIR
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from k_diffusion_import import import_k_diffusion  # noqa: E402

SIZE = 64
CHUNK = 75

# The long prompt: 3 fragments (one weighted), more than 75 tokens, commas
# near the end of the first chunk.
LONG_FRAGMENTS = [
    ("a portrait of a woman in the forest, a red castle in the snow, a blue horse, "
     "an astronaut riding a horse, a painting of a man, a dog, ", 1.0),
    ("a photo of a cat", 1.2),
    (", the forest in the snow, a red castle, a blue dog, a portrait of an astronaut, "
     "a painting of the snow, a woman riding a horse", 1.0),
]
LONG_PROMPT = ("a portrait of a woman in the forest, a red castle in the snow, a blue horse, "
               "an astronaut riding a horse, a painting of a man, a dog, (a photo of a cat:1.2), "
               "the forest in the snow, a red castle, a blue dog, a portrait of an astronaut, "
               "a painting of the snow, a woman riding a horse")

CASES = [
    {"name": "img2img", "model": "tiny-sd15", "prompt": "a red castle in the forest",
     "negative_prompt": "a painting", "steps": 5, "guidance": 5.0, "seed": 21, "sampler": "euler",
     "schedule": "normal", "strength": 0.6, "init": True, "mask": False},
    {"name": "inpaint4", "model": "tiny-sd15", "prompt": "a blue horse", "negative_prompt": "",
     "steps": 4, "guidance": 6.0, "seed": 22, "sampler": "euler", "schedule": "normal",
     "strength": 0.75, "init": True, "mask": True},
    {"name": "inpaint9", "model": "tiny-sd2", "prompt": "a dog in the snow", "negative_prompt": "a cat",
     "steps": 4, "guidance": 6.0, "seed": 23, "sampler": "euler", "schedule": "normal",
     "strength": 1.0, "init": True, "mask": True},
    {"name": "vpred", "model": "tiny-sd2v", "prompt": "a portrait of an astronaut",
     "negative_prompt": "a dog", "steps": 4, "guidance": 7.0, "seed": 24, "sampler": "dpmpp_2m",
     "schedule": "karras", "strength": 0, "init": False, "mask": False},
    {"name": "long", "model": "tiny-sd15", "prompt": LONG_PROMPT, "negative_prompt": "a dog",
     "steps": 3, "guidance": 7.0, "seed": 25, "sampler": "euler", "schedule": "normal",
     "strength": 0, "init": False, "mask": False, "pad_cond_uncond": True},
    {"name": "euler_a", "model": "tiny-sd15", "prompt": "a cat in the snow", "negative_prompt": "a dog",
     "steps": 5, "guidance": 7.0, "seed": 26, "sampler": "euler_a", "schedule": "normal",
     "strength": 0, "init": False, "mask": False},
    {"name": "sde", "model": "tiny-sd15", "prompt": "a red horse in the forest", "negative_prompt": "",
     "steps": 6, "guidance": 7.0, "seed": 27, "sampler": "dpmpp_2m_sde", "schedule": "karras",
     "strength": 0, "init": False, "mask": False},
]


K, EXT = import_k_diffusion()


class Model:
    """A tiny diffusers folder as k-diffusion's CompVis wrappers want an ldm
    model: alphas_cumprod (SD's scaled-linear betas, float64 product stored
    as float32 as ldm does) and apply_model(x, t, cond), which appends the
    9-channel UNet's extra channels (A1111's c_concat)."""

    def __init__(self, folder: Path):
        self.tok = CLIPTokenizer.from_pretrained(folder / "tokenizer")
        self.te = CLIPTextModel.from_pretrained(folder / "text_encoder").eval()
        self.unet = UNet2DConditionModel.from_pretrained(folder / "unet").eval()
        self.vae = AutoencoderKL.from_pretrained(folder / "vae").eval()
        self.scale = 2 ** (len(self.vae.config.block_out_channels) - 1)
        betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
        self.alphas_cumprod = torch.cumprod(1.0 - betas, 0).float()
        sched = folder / "scheduler" / "scheduler_config.json"
        pred = json.loads(sched.read_text())["prediction_type"] if sched.exists() else "epsilon"
        self.v = pred == "v_prediction"
        self.extra = None  # [1, 5, h, w] of a 9-channel UNet, or None

    def apply_model(self, x, t, cond):
        if self.extra is not None:
            x = torch.cat([x, self.extra.expand(x.shape[0], -1, -1, -1)], 1)
        return self.unet(x, t, encoder_hidden_states=cond).sample

    def chunks(self, fragments):
        """A1111's tokenize_line: (ids, weights) per 77-token chunk."""
        comma = self.tok.get_vocab()[",</w>"]
        bos, eos = self.tok.bos_token_id, self.tok.eos_token_id
        done, cur, last_comma = [], [], -1

        def close():
            nonlocal cur, last_comma
            pad = [(eos, 1.0)] * (CHUNK - len(cur))
            done.append([(bos, 1.0)] + cur + pad + [(eos, 1.0)])
            cur, last_comma = [], -1

        for text, weight in fragments:
            for token in self.tok(text, add_special_tokens=False).input_ids:
                if token == comma:
                    last_comma = len(cur)
                elif len(cur) == CHUNK and last_comma != -1 and len(cur) - last_comma <= 20:
                    moved = cur[last_comma + 1:]
                    cur = cur[:last_comma + 1]
                    close()
                    cur = moved
                if len(cur) == CHUNK:
                    close()
                cur.append((token, weight))
        if cur or not done:
            close()
        return done

    def encode(self, fragments):
        """Conditioning [1, 77 * chunks, width] (sd_hijack_clip's weighting)."""
        zs = []
        for chunk in self.chunks(fragments):
            ids = torch.tensor([[i for i, _ in chunk]])
            w = torch.tensor([wt for _, wt in chunk], dtype=torch.float32)
            z = self.te(ids).last_hidden_state
            mean = z.mean()
            z = z * w[None, :, None]
            zs.append(z * (mean / z.mean()))
        return torch.cat(zs, 1)


def test_inputs():
    """A smooth colour pattern with some texture, and a block-aligned mask."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    rs = np.random.RandomState(7)
    img = np.stack([128 + 90 * np.sin(xx / 9.0 + 0.3), 128 + 90 * np.cos(yy / 7.0),
                    128 + 60 * np.sin((xx + yy) / 11.0)], -1) + rs.uniform(-20, 20, (SIZE, SIZE, 3))
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[16:48, 8:40] = 255
    return img, mask


def run(m: Model, case, init_u8, mask_u8, out: Path):
    fragments = LONG_FRAGMENTS if case["prompt"] == LONG_PROMPT else [(case["prompt"], 1.0)]
    cond = m.encode(fragments)
    uncond = m.encode([(case["negative_prompt"], 1.0)])
    if case.get("pad_cond_uncond"):
        empty = m.encode([("", 1.0)])
        while uncond.shape[1] < cond.shape[1]:
            uncond = torch.cat([uncond, empty], 1)
        while cond.shape[1] < uncond.shape[1]:
            cond = torch.cat([cond, empty], 1)
        cond.numpy().astype("<f4").tofile(out / "long_cond.f32")
        uncond.numpy().astype("<f4").tofile(out / "long_uncond.f32")
    wrap = EXT.CompVisVDenoiser(m) if m.v else EXT.CompVisDenoiser(m)
    steps = case["steps"]
    if case["schedule"] == "karras":
        sigmas = K.get_sigmas_karras(steps, wrap.sigmas[0].item(), wrap.sigmas[-1].item(), rho=7.0)
    else:
        sigmas = wrap.get_sigmas(steps)
    h = SIZE // m.scale
    gen = torch.Generator().manual_seed(case["seed"])
    noise = torch.randn([1, 4, h, h], generator=gen)
    sf = m.vae.config.scaling_factor
    init_px = torch.from_numpy(init_u8).permute(2, 0, 1)[None].float() / 127.5 - 1
    latmask = None
    if case["mask"]:
        mk = torch.from_numpy(mask_u8)[None, None].float() / 255
        latmask = torch.nn.functional.avg_pool2d(mk, m.scale).round()
    if case["init"]:
        init_latent = m.vae.encode(init_px).latent_dist.sample(generator=gen) * sf
        t_enc = int(min(case["strength"], 0.999) * steps)
        sigmas = sigmas[steps - t_enc - 1:]
        x = init_latent + noise * sigmas[0]
    else:
        x = noise * sigmas[0]
    if m.unet.config.in_channels == 9:
        masked = init_px * (1 - (torch.from_numpy(mask_u8)[None, None].float() / 255).round())
        m.extra = torch.cat([latmask, m.vae.encode(masked).latent_dist.mean * sf], 1)
    g = case["guidance"]

    def denoiser(xx, sigma):
        dc = wrap(xx, sigma, cond=cond)
        du = wrap(xx, sigma, cond=uncond)
        d = du + (dc - du) * g
        if latmask is not None:
            d = d * latmask + init_latent * (1 - latmask)
        return d

    if case["sampler"] == "euler_a":
        # A1111's sampler noise: the image's generator, after the initial noise.
        x = K.sample_euler_ancestral(denoiser, x, sigmas, disable=True,
                                     noise_sampler=lambda s, sn: torch.randn(x.shape, generator=gen))
    elif case["sampler"] == "dpmpp_2m_sde":
        # A1111's create_noise_sampler: the Brownian tree seeded with the image seed.
        pos = sigmas[sigmas > 0]
        ns = K.BrownianTreeNoiseSampler(x, pos.min(), sigmas.max(), seed=[case["seed"]])
        x = K.sample_dpmpp_2m_sde(denoiser, x, sigmas, disable=True, noise_sampler=ns)
    else:
        sampler = {"euler": K.sample_euler, "dpmpp_2m": K.sample_dpmpp_2m}[case["sampler"]]
        x = sampler(denoiser, x, sigmas, disable=True)
    img = ((m.vae.decode(x / sf).sample + 1) / 2).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    if case["mask"]:
        keep = (mask_u8 < 128)[..., None]
        img = np.where(keep, init_u8 / 255.0, img)
    img.astype("<f4").tofile(out / (case["name"] + ".f32"))
    m.extra = None


def main() -> None:
    root = Path(sys.argv[1])
    out = root / "pipeline"
    out.mkdir(parents=True, exist_ok=True)
    init_u8, mask_u8 = test_inputs()
    init_u8.tofile(out / "init.u8")
    mask_u8.tofile(out / "mask.u8")
    models = {}
    with torch.no_grad():
        for case in CASES:
            if case["model"] not in models:
                models[case["model"]] = Model(root / case["model"])
            run(models[case["model"]], case, init_u8, mask_u8, out)
    (out / "cases.json").write_text(json.dumps(CASES, indent=1) + "\n")
    # A1111's v-prediction probe for SD 2.x single files
    # (sd_models_config.is_using_v_parameterization_for_sd2): the mean of
    # unet(0.5, t=999, context of two tokens of 0.5) - 0.5 on an 8x8 latent.
    probe = {}
    with torch.no_grad():
        for name in ("tiny-sd15", "tiny-sd2v"):
            m = models[name]
            x = torch.ones(1, 4, 8, 8) * 0.5
            ctx = torch.ones(1, 2, m.unet.config.cross_attention_dim) * 0.5
            probe[name] = float((m.unet(x, torch.tensor([999]), encoder_hidden_states=ctx).sample - x).mean())
    (out / "v_probe.json").write_text(json.dumps(probe, indent=1) + "\n")


if __name__ == "__main__":
    main()
