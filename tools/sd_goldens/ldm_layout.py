"""Writing diffusers-named weights in the original latent-diffusion (ldm)
single-file layout (model.diffusion_model.*, first_stage_model.*,
cond_stage_model.model.* for OpenCLIP). make_sd_goldens.py checks the result
by converting it back with diffusers' own single-file converters."""

import re

import torch

UNET_RESNET = [("norm1.", "in_layers.0."), ("conv1.", "in_layers.2."), ("time_emb_proj.", "emb_layers.1."),
               ("norm2.", "out_layers.0."), ("conv2.", "out_layers.3."), ("conv_shortcut.", "skip_connection.")]


def _resnet(rest: str, table) -> str:
    for a, b in table:
        if rest.startswith(a):
            return b + rest[len(a):]
    raise KeyError(rest)


def unet_to_ldm(sd: dict, layers: int) -> dict:
    """UNet2DConditionModel state dict -> model.diffusion_model.* names."""
    L = layers
    up_attn = {int(m.group(1)) for k in sd for m in [re.match(r"up_blocks\.(\d+)\.attentions\.", k)] if m}
    fixed = {"conv_in.": "input_blocks.0.0.", "time_embedding.linear_1.": "time_embed.0.",
             "time_embedding.linear_2.": "time_embed.2.", "conv_norm_out.": "out.0.", "conv_out.": "out.2."}
    out = {}
    for k, v in sd.items():
        name = None
        for a, b in fixed.items():
            if k.startswith(a):
                name = b + k[len(a):]
        m = re.match(r"(down|up)_blocks\.(\d+)\.(resnets|attentions|downsamplers|upsamplers)\.(\d+)\.(.*)", k)
        if m:
            kind, i, what, j, rest = m.group(1), int(m.group(2)), m.group(3), int(m.group(4)), m.group(5)
            if kind == "down":
                blk = 1 + i * (L + 1) + (L if what == "downsamplers" else j)
                name = {"resnets": f"input_blocks.{blk}.0." + (_resnet(rest, UNET_RESNET) if what == "resnets" else ""),
                        "attentions": f"input_blocks.{blk}.1." + rest,
                        "downsamplers": f"input_blocks.{blk}.0.op." + rest.replace("conv.", "", 1)}[what]
            else:
                blk = i * (L + 1) + (L if what == "upsamplers" else j)
                idx = 2 if i in up_attn else 1
                name = {"resnets": f"output_blocks.{blk}.0." + (_resnet(rest, UNET_RESNET) if what == "resnets" else ""),
                        "attentions": f"output_blocks.{blk}.1." + rest,
                        "upsamplers": f"output_blocks.{blk}.{idx}." + rest}[what]
        m = re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.*)", k)
        if m:
            if m.group(1) == "resnets":
                name = f"middle_block.{2 * int(m.group(2))}." + _resnet(m.group(3), UNET_RESNET)
            else:
                name = "middle_block.1." + m.group(3)
        if name is None:
            raise KeyError(k)
        out["model.diffusion_model." + name] = v
    return out


def vae_to_ldm(sd: dict) -> dict:
    """AutoencoderKL state dict -> first_stage_model.* names (attention
    projections as 1x1 convolutions, as ldm stores them)."""
    n_up = 1 + max(int(m.group(1)) for k in sd for m in [re.match(r"decoder\.up_blocks\.(\d+)\.", k)] if m)
    res = [("conv_shortcut.", "nin_shortcut.")]
    out = {}
    for k, v in sd.items():
        name = k
        m = re.match(r"(encoder|decoder)\.(down|up)_blocks\.(\d+)\.(resnets|downsamplers|upsamplers)\.(\d+)\.(.*)", k)
        if m:
            coder, kind, i, what, j, rest = m.groups()
            lvl = int(i) if kind == "down" else n_up - 1 - int(i)
            if what == "resnets":
                rest = next((b + rest[len(a):] for a, b in res if rest.startswith(a)), rest)
                name = f"{coder}.{kind}.{lvl}.block.{j}.{rest}"
            else:
                name = f"{coder}.{kind}.{lvl}.{'downsample' if kind == 'down' else 'upsample'}.{rest}"
        m = re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d)\.(.*)", k)
        if m:
            rest = next((b + m.group(3)[len(a):] for a, b in res if m.group(3).startswith(a)), m.group(3))
            name = f"{m.group(1)}.mid.block_{int(m.group(2)) + 1}.{rest}"
        m = re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(group_norm|to_q|to_k|to_v|to_out\.0)\.(.*)", k)
        if m:
            part = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}[m.group(2)]
            name = f"{m.group(1)}.mid.attn_1.{part}.{m.group(3)}"
            if part != "norm" and v.dim() == 2:
                v = v[:, :, None, None]
        m = re.match(r"(encoder|decoder)\.conv_norm_out\.(.*)", k)
        if m:
            name = f"{m.group(1)}.norm_out.{m.group(2)}"
        out["first_stage_model." + name] = v
    return out


def openclip_to_ldm(sd: dict) -> dict:
    """CLIPTextModel state dict -> cond_stage_model.model.* (OpenCLIP) names,
    q/k/v fused into attn.in_proj."""
    pre = "cond_stage_model.model."
    out = {pre + "token_embedding.weight": sd["text_model.embeddings.token_embedding.weight"],
           pre + "positional_embedding": sd["text_model.embeddings.position_embedding.weight"],
           pre + "ln_final.weight": sd["text_model.final_layer_norm.weight"],
           pre + "ln_final.bias": sd["text_model.final_layer_norm.bias"]}
    n = 1 + max(int(m.group(1)) for k in sd for m in [re.match(r"text_model\.encoder\.layers\.(\d+)\.", k)] if m)
    parts = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "self_attn.out_proj": "attn.out_proj",
             "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}
    for i in range(n):
        src = f"text_model.encoder.layers.{i}."
        dst = f"{pre}transformer.resblocks.{i}."
        for a, b in parts.items():
            for t in ("weight", "bias"):
                out[f"{dst}{b}.{t}"] = sd[f"{src}{a}.{t}"]
        for t in ("weight", "bias"):
            out[f"{dst}attn.in_proj_{t}"] = torch.cat([sd[f"{src}self_attn.{p}_proj.{t}"] for p in "qkv"], 0)
    return out
