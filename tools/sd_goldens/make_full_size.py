"""A full-size SD 1.5-shaped UNet (diffusers' default UNet2DConditionModel
config with a 768-wide context: 860M parameters) and KL-f8 VAE (SD's
config: channels 128/256/512/512, two resnets per level, 32 groups) with
random weights, for a check of the engine at the real structure (8 heads,
32 groups, four levels, scale 8). Too big to commit: make.sh --full-size DIR
writes DIR/unet/, DIR/vae/ (config.json, F32 safetensors, 3.4 GB and
330 MB) and DIR/golden/ (UNet latent x [4][32][32], context [77][768],
output at timestep 700; VAE decode of a 16x16 latent, encode of a 128x128
image), which tests/slow/test_sd_*_full.c read from $KILN_SD_FULL_DIR."""

import sys
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

from make_sd_goldens import randomize

out = Path(sys.argv[1]).resolve()
torch.manual_seed(0)
gen = torch.Generator().manual_seed(99)
unet = UNet2DConditionModel(cross_attention_dim=768).eval()
randomize(unet, gen)
unet.save_pretrained(out / "unet", safe_serialization=True)
x = torch.randn(1, 4, 32, 32, generator=gen)
ctx = torch.randn(1, 77, 768, generator=gen)
with torch.no_grad():
    y = unet(x, torch.tensor([700]), encoder_hidden_states=ctx).sample
(out / "golden").mkdir(parents=True, exist_ok=True)
for name, t in (("x", x), ("context", ctx), ("out_700", y)):
    (out / "golden" / (name + ".f32")).write_bytes(t[0].numpy().astype("<f4").tobytes())

vae = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                    block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                    norm_num_groups=32, sample_size=512).eval()
randomize(vae, gen)
vae.save_pretrained(out / "vae", safe_serialization=True)
lat = torch.randn(1, 4, 16, 16, generator=gen)
img = torch.rand(1, 3, 128, 128, generator=gen) * 2 - 1
with torch.no_grad():
    dec = vae.decode(lat).sample
    dist = vae.encode(img).latent_dist
for name, t in (("vae_latent", lat), ("vae_decoded", dec), ("vae_image", img), ("vae_mean", dist.mean)):
    (out / "golden" / (name + ".f32")).write_bytes(t[0].numpy().astype("<f4").tobytes())
