"""A full-size SD 1.5-shaped UNet (diffusers' default UNet2DConditionModel
config with a 768-wide context: 860M parameters) with random weights, for a
check of the engine at the real structure (8 heads, 32 groups, four levels,
two resnets per level). Too big to commit: make.sh --full-size DIR writes
DIR/unet/ (config.json, F32 safetensors, 3.4 GB) and DIR/golden/ (latent
x [4][32][32], context [77][768], output at timestep 700), which
tests/slow/test_sd_unet_full.c reads from $KILN_SD_FULL_DIR."""

import sys
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel

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
