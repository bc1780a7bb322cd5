"""Tiny random-weight Stable Diffusion models and their reference outputs.

Run by make.sh inside tools/sd_goldens/.venv. Builds, from configs, with
transformers and diffusers themselves:
  tiny-sd15/   SD 1.x-shaped: CLIPTextModel (quick_gelu), UNet2DConditionModel
               (conv projections, 2 heads per level,
               channels 16 and 32), AutoencoderKL
  tiny-sd2/    SD 2.x-shaped: CLIPTextModel (gelu), UNet with linear
               projections, 8 channels per head, in_channels 9 (inpaint);
               a smaller VAE
  tiny-sd2v/   SD 2.x 768-v-shaped, smaller still: a 4-channel UNet and a
               scheduler/scheduler_config.json with prediction_type
               v_prediction (the whole-pipeline golden's v model). It
               follows the SD 2.x conventions kiln derives a single file's
               architecture by (docs/sd-networks.md): attention heads of
               64 channels, one head where a width is below 64 (text
               encoder and UNet here), GroupNorm with min(32, narrowest
               width / 2) groups
saved as diffusers folders (model_index.json + component folders, F32
safetensors, a tiny CLIP BPE tokenizer with dense ids below 1000), and records, in golden/ of each, raw little-endian float32
files with their shapes in index.json:
  clip ids -> last hidden state, and clip skip 2 (final LayerNorm of the
  penultimate layer's output, as diffusers' clip_skip=1 and AUTOMATIC1111's
  clip skip 2 compute it);
  UNet at timesteps 999 (8x8) and 500 (6x8) on random latents and context;
  VAE decode of a 4x6 latent, encode (mean, logvar) of an 8x12 image.
The tiny-sd2 weights are also written as tiny-sd2-ldm.safetensors in the
original ldm single-file layout (ldm_layout.py), verified by converting it
back with diffusers' converters; so are tiny-sd2v's (tiny-sd2v-ldm.
safetensors, with the OpenCLIP last layer that SD 2.x diffusers folders
leave out), the file of the three-layout image test.
  tiny-sd15-f16/  SD 1.x-shaped and tinier, in F16, following the SD 1.x
               conventions (8 heads per attention, one text head below a
               width of 64, min(32, narrowest / 2) groups), with its ldm
               single file tiny-sd15-f16-ldm.safetensors (the SD 1.x half of
               the three-layout test; F16 files give identical images too).
Every parameter is randomized (1-D ones around their init) so that norms
and biases are exercised.
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
from diffusers.loaders.single_file_utils import (convert_ldm_clip_checkpoint, convert_ldm_unet_checkpoint,
                                                 convert_ldm_vae_checkpoint, convert_open_clip_checkpoint)
from safetensors.torch import save_file

import ldm_layout
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
from transformers.models.clip.tokenization_clip import bytes_to_unicode

OUT = Path(sys.argv[1]).resolve()
VOCAB = 1000  # token ids of the goldens stay below this


def randomize(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Move every parameter off its initial value (norm scales around 1,
    biases around 0, matrices keep their init scale plus noise)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if p.dim() == 1:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.2 * noise)
            else:
                p.add_(0.2 * p.std().clamp(min=1e-3) * noise)


class Goldens:
    """Raw float32 files plus an index of their shapes."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.index = {}

    def add(self, name: str, t) -> None:
        a = np.ascontiguousarray(np.asarray(t, dtype=np.float32))
        (self.folder / (name + ".f32")).write_bytes(a.astype("<f4").tobytes())
        self.index[name] = list(a.shape)

    def add_ints(self, name: str, ids) -> None:
        self.index[name] = [int(i) for i in ids]

    def save(self) -> None:
        (self.folder / "index.json").write_text(json.dumps(self.index, indent=1) + "\n")


def text_encoder(gen, hidden_act, layers, heads):
    cfg = CLIPTextConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=37,
                         num_hidden_layers=layers, num_attention_heads=heads,
                         max_position_embeddings=77, hidden_act=hidden_act,
                         bos_token_id=BOS, eos_token_id=EOS, pad_token_id=EOS,
                         projection_dim=32)
    m = CLIPTextModel(cfg).eval()
    randomize(m, gen)
    return m


def unet(gen, in_channels, linear, head_dim, layers):
    m = UNet2DConditionModel(
        sample_size=8, in_channels=in_channels, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(16, 32), layers_per_block=layers, cross_attention_dim=32,
        attention_head_dim=head_dim, norm_num_groups=8, use_linear_projection=linear).eval()
    randomize(m, gen)
    return m


def vae(gen, channels, layers, groups):
    m = AutoencoderKL(in_channels=3, out_channels=3,
                      down_block_types=("DownEncoderBlock2D",) * len(channels),
                      up_block_types=("UpDecoderBlock2D",) * len(channels),
                      block_out_channels=channels, layers_per_block=layers, latent_channels=4,
                      norm_num_groups=groups, sample_size=16).eval()
    randomize(m, gen)
    return m


# Words the tiny tokenizer knows whole (built from merges left to right).
WORDS = ["a", "photo", "of", "an", "astronaut", "riding", "horse", "cat", "dog", "red", "blue",
         "painting", "castle", "in", "the", "snow", "forest", "portrait", "woman", "man"]


def tiny_vocab():
    """The tiny CLIP BPE vocabulary, dense as simple_tokenizer.py lays one
    out from its merges: the 256 byte symbols, the same with "</w>", one
    token per merge spelling WORDS, then <|startoftext|> and <|endoftext|>
    right after the last merge. Returns (vocab, merges)."""
    symbols = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(symbols)}
    for c in symbols:
        vocab[c + "</w>"] = len(vocab)
    merges = []
    for word in WORDS:
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            pair = (parts[0], parts[1])
            joined = parts[0] + parts[1]
            if joined not in vocab:
                merges.append(pair)
                vocab[joined] = len(vocab)
            parts = [joined] + parts[2:]
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    assert len(vocab) <= VOCAB and sorted(vocab.values()) == list(range(len(vocab)))
    return vocab, merges


BOS = len(tiny_vocab()[0]) - 2  # <|startoftext|>
EOS = BOS + 1                   # <|endoftext|>, also the padding token


def tokenizer(folder: Path) -> None:
    """The tiny tokenizer as a diffusers tokenizer/ folder (vocab.json with
    dense ids consistent with merges.txt)."""
    vocab, merges = tiny_vocab()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token="<|endoftext|>")
    tok.save_pretrained(folder)
    assert tok("a photo of a cat").input_ids == [BOS, vocab["a</w>"], vocab["photo</w>"],
                                                 vocab["of</w>"], vocab["a</w>"], vocab["cat</w>"], EOS]


def save_folder(folder: Path, te, un, va, pipeline: str, scheduler=None) -> None:
    te.save_pretrained(folder / "text_encoder", safe_serialization=True)
    un.save_pretrained(folder / "unet", safe_serialization=True)
    va.save_pretrained(folder / "vae", safe_serialization=True)
    tokenizer(folder / "tokenizer")
    index = {"_class_name": pipeline, "_diffusers_version": "0.31.0",
             "text_encoder": ["transformers", "CLIPTextModel"],
             "tokenizer": ["transformers", "CLIPTokenizer"],
             "unet": ["diffusers", "UNet2DConditionModel"],
             "vae": ["diffusers", "AutoencoderKL"]}
    if scheduler is not None:
        scheduler.save_pretrained(folder / "scheduler")
        index["scheduler"] = ["diffusers", type(scheduler).__name__]
    (folder / "model_index.json").write_text(json.dumps(index, indent=1) + "\n")


def record(folder: Path, te, un, va, gen) -> None:
    g = Goldens(folder / "golden")
    with torch.no_grad():
        body = torch.randint(0, VOCAB - 2, (20,), generator=gen).tolist()
        ids = [VOCAB - 2] + body + [VOCAB - 1] * (77 - 1 - len(body))
        g.add_ints("clip_ids", ids)
        out = te(torch.tensor([ids]), output_hidden_states=True)
        g.add("clip_last", out.last_hidden_state[0])
        g.add("clip_skip2", te.text_model.final_layer_norm(out.hidden_states[-2])[0])

        ctx = torch.randn(1, 77, 32, generator=gen)
        g.add("unet_context", ctx[0])
        cin = un.config.in_channels
        for t, (h, w) in ((999, (8, 8)), (500, (6, 8))):
            x = torch.randn(1, cin, h, w, generator=gen)
            g.add(f"unet_x_{t}", x[0])
            g.add(f"unet_out_{t}", un(x, torch.tensor([t]), encoder_hidden_states=ctx).sample[0])

        lat = torch.randn(1, 4, 4, 6, generator=gen)
        g.add("vae_latent", lat[0])
        g.add("vae_decoded", va.decode(lat).sample[0])
        img = torch.rand(1, 3, 8, 12, generator=gen) * 2 - 1
        g.add("vae_image", img[0])
        dist = va.encode(img).latent_dist
        g.add("vae_mean", dist.mean[0])
        g.add("vae_logvar", dist.logvar[0])
    g.save()


def save_ldm(path: Path, te, un, va, layers: int) -> None:
    """The three components in one ldm-layout safetensors file, checked by
    converting it back with diffusers' single-file converters."""
    ckpt = {**ldm_layout.unet_to_ldm(un.state_dict(), layers), **ldm_layout.vae_to_ldm(va.state_dict()),
            **ldm_layout.openclip_to_ldm(te.state_dict())}
    ckpt = {k: v.detach().contiguous().clone() for k, v in ckpt.items()}
    back = [(convert_ldm_unet_checkpoint(ckpt, dict(un.config)), un.state_dict()),
            (convert_ldm_vae_checkpoint(ckpt, dict(va.config)), va.state_dict()),
            (convert_open_clip_checkpoint(te, ckpt), te.state_dict())]
    for got, want in back:
        for k, v in want.items():
            if k.endswith("position_ids"):
                continue
            assert k in got, k
            assert torch.equal(got[k].reshape(v.shape), v), k
    save_file(ckpt, str(path))


def micro_seed(path: Path, gen) -> None:
    """A micro SD model (widths 4, one layer of everything) in the ldm layout,
    F16, small enough (< 64 KiB) to seed fuzz/fuzz_sd_load."""
    te = CLIPTextModel(CLIPTextConfig(vocab_size=8, hidden_size=4, intermediate_size=5, num_hidden_layers=1,
                                      num_attention_heads=1, max_position_embeddings=4, hidden_act="gelu",
                                      projection_dim=4)).eval()
    un = UNet2DConditionModel(sample_size=4, in_channels=4, out_channels=4,
                              down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                              up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), block_out_channels=(4, 4),
                              layers_per_block=1, cross_attention_dim=4, attention_head_dim=1,
                              norm_num_groups=2, use_linear_projection=True).eval()
    va = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                       block_out_channels=(4, 4), layers_per_block=1, latent_channels=4,
                       norm_num_groups=2).eval()
    for m in (te, un, va):
        randomize(m, gen)
    ckpt = {**ldm_layout.unet_to_ldm(un.state_dict(), 1), **ldm_layout.vae_to_ldm(va.state_dict()),
            **ldm_layout.openclip_to_ldm(te.state_dict())}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().half().contiguous() for k, v in ckpt.items()}, str(path))
    assert path.stat().st_size < 65536, path.stat().st_size


def sd2v(gen):
    """SD 2.x 768-v shape, smaller: gelu text encoder (2 layers, one head:
    width 32 is below SD 2.x's 64 channels per head; a diffusers SD 2
    folder stores OpenCLIP without its last layer, so the pipeline uses the
    last hidden state), a 4-channel UNet with linear projections and one
    head per level (widths 8 and 16, below 64), 4 groups; the scheduler
    config says v_prediction, as stabilityai/stable-diffusion-2-1's does.
    Head counts do not change parameter shapes, so the weights are the
    same draws as before they followed the convention."""
    te = text_encoder(gen, "gelu", 2, 1)
    un = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(8, 16), layers_per_block=1, cross_attention_dim=32,
        attention_head_dim=(1, 1), norm_num_groups=4, use_linear_projection=True).eval()
    randomize(un, gen)
    va = vae(gen, (8, 8), 1, 4)
    sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                   prediction_type="v_prediction", steps_offset=1,
                                   timestep_spacing="linspace")
    return te, un, va, sched


def save_sd2v_ldm(path: Path, te, un, va) -> None:
    """tiny-sd2v as an ldm single file. An SD 2.x checkpoint holds all of
    OpenCLIP while its diffusers folder drops the last layer (the model
    conditions on the penultimate one): the file gets te's layers, its final
    LayerNorm, and one more random layer that the penultimate choice skips.
    Checked by converting back with diffusers' converters, and by the
    penultimate layer + final LayerNorm of the full encoder equalling the
    folder's last hidden state."""
    gen = torch.Generator().manual_seed(4321)  # its own draws: tiny-sd2v's stay as they were
    cfg = te.config.to_dict()
    cfg["num_hidden_layers"] += 1
    full = CLIPTextModel(CLIPTextConfig(**cfg)).eval()
    randomize(full, gen)
    missing, unexpected = full.load_state_dict(te.state_dict(), strict=False)
    assert not unexpected and all(".layers.%d." % (cfg["num_hidden_layers"] - 1) in k for k in missing), missing
    with torch.no_grad():
        ids = torch.randint(0, VOCAB, (1, 77), generator=gen)
        want = te(ids).last_hidden_state
        out = full(ids, output_hidden_states=True)
        got = full.text_model.final_layer_norm(out.hidden_states[-2])
        assert torch.allclose(got, want, atol=1e-6), (got - want).abs().max()
    save_ldm(path, full, un, va, 1)


def sd15_f16():
    """SD 1.x shape in F16 for the layout test: quick_gelu text encoder of
    width 32 with one head (2 layers, a vocabulary just the tiny tokenizer's
    size), a 4-channel UNet with conv projections and 8 heads per attention
    (widths 8 and 16), 4 groups, one resnet per level; a VAE of width 8.
    Its own generator: the models above keep their draws."""
    gen = torch.Generator().manual_seed(5678)
    te = CLIPTextModel(CLIPTextConfig(vocab_size=EOS + 1, hidden_size=32, intermediate_size=37,
                                      num_hidden_layers=2, num_attention_heads=1, max_position_embeddings=77,
                                      hidden_act="quick_gelu", bos_token_id=BOS, eos_token_id=EOS,
                                      pad_token_id=EOS, projection_dim=32)).eval()
    randomize(te, gen)
    un = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(8, 16), layers_per_block=1, cross_attention_dim=32,
        attention_head_dim=8, norm_num_groups=4, use_linear_projection=False).eval()
    randomize(un, gen)
    va = vae(gen, (8, 8), 1, 4)
    return te.half(), un.half(), va.half()


def save_sd15_ldm(path: Path, te, un, va) -> None:
    """An SD 1.x ldm single file: the UNet and VAE as ldm_layout writes
    them, the text encoder under cond_stage_model.transformer. with
    transformers' own names (as SD 1.x checkpoints hold it); checked by
    converting back with diffusers' converters."""
    ckpt = {**ldm_layout.unet_to_ldm(un.state_dict(), 1), **ldm_layout.vae_to_ldm(va.state_dict()),
            **{"cond_stage_model.transformer." + k: v for k, v in te.state_dict().items()
               if not k.endswith("position_ids")}}
    ckpt = {k: v.detach().contiguous().clone() for k, v in ckpt.items()}
    back = [(convert_ldm_unet_checkpoint(ckpt, dict(un.config)), un.state_dict()),
            (convert_ldm_vae_checkpoint(ckpt, dict(va.config)), va.state_dict()),
            (convert_ldm_clip_checkpoint(ckpt), te.state_dict())]
    for got, want in back:
        for k, v in want.items():
            if k.endswith("position_ids"):
                continue
            assert k in got, k
            assert torch.equal(got[k].reshape(v.shape), v), k
    save_file(ckpt, str(path))


def main() -> None:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    # SD 1.x shape: quick_gelu text encoder, conv projections, 2 heads per level.
    te, un, va = text_encoder(gen, "quick_gelu", 2, 2), unet(gen, 4, False, 2, 2), vae(gen, (16, 32), 2, 8)
    save_folder(OUT / "tiny-sd15", te, un, va, "StableDiffusionPipeline")
    record(OUT / "tiny-sd15", te, un, va, gen)
    # SD 2.x inpaint shape: gelu text encoder (3 layers), linear projections,
    # 8 channels per head (diffusers' attention_head_dim lists heads per level),
    # one resnet per level; a smaller VAE (8 channels, 4 groups, one resnet).
    te, un = text_encoder(gen, "gelu", 3, 2), unet(gen, 9, True, (2, 4), 1)
    va = vae(gen, (8, 8), 1, 4)
    save_folder(OUT / "tiny-sd2", te, un, va, "StableDiffusionInpaintPipeline")
    record(OUT / "tiny-sd2", te, un, va, gen)
    # The same SD 2.x weights as one ldm single file (OpenCLIP text names).
    save_ldm(OUT / "tiny-sd2-ldm.safetensors", te, un, va, 1)
    micro_seed(OUT.parent.parent.parent / "fuzz" / "corpus" / "fuzz_sd_load" / "micro-ldm-f16.safetensors", gen)
    # Added last, so that the generator's earlier draws (the models above) stay as they were.
    te, un, va, sched = sd2v(gen)
    save_folder(OUT / "tiny-sd2v", te, un, va, "StableDiffusionPipeline", sched)
    save_sd2v_ldm(OUT / "tiny-sd2v-ldm.safetensors", te, un, va)
    te, un, va = sd15_f16()
    save_folder(OUT / "tiny-sd15-f16", te, un, va, "StableDiffusionPipeline")
    save_sd15_ldm(OUT / "tiny-sd15-f16-ldm.safetensors", te, un, va)


if __name__ == "__main__":
    main()
