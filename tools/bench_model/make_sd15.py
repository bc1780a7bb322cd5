"""An SD 1.5-shaped diffusers folder with random weights, for `kiln
bench-image` (docs/performance.md, "Image engine"): the real 860M-parameter
UNet (diffusers' default UNet2DConditionModel with a 768-wide context), the
KL-f8 VAE of SD (channels 128/256/512/512, two resnets per level, 32
groups) and the 123M-parameter CLIP ViT-L/14 text encoder (12 layers, width
768, quick_gelu), with the tiny test tokenizer of tests/data/sd/tiny-sd15
(its ids stay below 1000, so the embedding table is 1000 rows: the timing
of the encoder does not depend on it). Nothing here is compared with
anything: the weights only need the right shapes and sane magnitudes.

usage: make.sh --bench-sd15 DIR [f16|f32]   (writes DIR, about 4 GB in F32)
"""

import json
import shutil
import sys
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here.parent / "sd_goldens"))
from make_sd_goldens import randomize  # noqa: E402

out = Path(sys.argv[1]).resolve()
dtype = sys.argv[2] if len(sys.argv) > 2 else "f16"
if dtype not in ("f16", "f32"):
    sys.exit("dtype must be f16 or f32")
torch.manual_seed(0)
gen = torch.Generator().manual_seed(1234)


def save(model, sub):
    if dtype == "f16":
        model = model.half()
    model.save_pretrained(out / sub, safe_serialization=True)


text = CLIPTextModel(CLIPTextConfig(vocab_size=1000, hidden_size=768, intermediate_size=3072,
                                    num_hidden_layers=12, num_attention_heads=12,
                                    max_position_embeddings=77, hidden_act="quick_gelu",
                                    bos_token_id=998, eos_token_id=999, pad_token_id=999)).eval()
randomize(text, gen)
save(text, "text_encoder")
del text
unet = UNet2DConditionModel(cross_attention_dim=768).eval()
randomize(unet, gen)
save(unet, "unet")
del unet
vae = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                    block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                    norm_num_groups=32, sample_size=512).eval()
randomize(vae, gen)
save(vae, "vae")
tiny = here.parent.parent / "tests" / "data" / "sd" / "tiny-sd15"
shutil.copytree(tiny / "tokenizer", out / "tokenizer", dirs_exist_ok=True)
index = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.31.0",
         "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
         "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}
(out / "model_index.json").write_text(json.dumps(index, indent=1) + "\n")
print("wrote", out)
