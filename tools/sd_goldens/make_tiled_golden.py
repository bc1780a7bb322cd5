"""The golden of kiln's tiled VAE decode: diffusers' AutoencoderKL.tiled_decode
(the tiles, overlap and linear blending of enable_tiling) run on the committed
tiny SD 1.x VAE of tests/data/sd/tiny-sd15 (sample_size 16, scale 2: 8x8 latent
tiles, 6-latent stride, 4-pixel blends, 12-pixel crops) for a 13x20 latent,
which has partial tiles at the bottom and the right. Writes
golden/vae_tiled_latent.f32 ([4][13][20]) and golden/vae_tiled_decoded.f32
([3][26][40]) and adds their shapes to golden/index.json; the other goldens
are left as they are.

usage: make.sh --tiled   (or this script with the tiny-sd15 folder)"""

import json
import sys
from pathlib import Path

import torch
from diffusers import AutoencoderKL

folder = Path(sys.argv[1]).resolve()
vae = AutoencoderKL.from_pretrained(folder / "vae").eval()
gen = torch.Generator().manual_seed(4242)
lat = torch.randn(1, 4, 13, 20, generator=gen)
with torch.no_grad():
    dec = vae.tiled_decode(lat).sample
assert dec.shape == (1, 3, 26, 40), dec.shape
golden = folder / "golden"
index_path = golden / "index.json"
index = json.loads(index_path.read_text())
for name, t in (("vae_tiled_latent", lat), ("vae_tiled_decoded", dec)):
    (golden / (name + ".f32")).write_bytes(t[0].numpy().astype("<f4").tobytes())
    index[name] = list(t[0].shape)
index_path.write_text(json.dumps(index, indent=1) + "\n")
print("wrote", golden)
