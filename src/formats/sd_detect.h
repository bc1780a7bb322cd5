/* src/formats/sd_detect.h - which image model a set of weights is (internal).
 *
 * Works from tensor names and shapes (single-file checkpoints in the ldm
 * layout, Flux transformers; safetensors or GGUF through kiln_tensor_lookup)
 * or from the config files of a diffusers folder. Used by `kiln info` and by
 * the image loader to pick a kiln_variant.
 */
#ifndef KILN_FORMATS_SD_DETECT_H
#define KILN_FORMATS_SD_DETECT_H

#include <stdbool.h>

#include "formats/tensor_lookup.h"
#include "kiln/arch.h"
#include "kiln/status.h"

struct kiln_model_path;

/* Most UNet levels the derivation reads. */
#define KILN_SD_ARCH_MAX_LEVELS 8

/* The architecture of an SD 1.x / 2.x single file (ldm names), derived from
 * its tensors: shapes give widths, levels, block counts and depths; what no
 * shape says (attention heads, GroupNorm groups) follows the family's
 * convention, extended to widths below the real models' (docs/sd-networks.md):
 *   text heads   width / 64 (CLIP ViT-L 12, OpenCLIP ViT-H 16); 1 below 64
 *   UNet heads   SD 1.x: 8 per attention; SD 2.x: channels / 64, 1 below 64
 *   groups       32; min(32, narrowest width / 2) for models narrower than 64
 * family is 0 when something could not be derived (`why` says what). */
struct kiln_sd_arch {
    int family;        /* 1: SD 1.x (CLIP names), 2: SD 2.x (OpenCLIP names); 0 not derived */
    bool standard;     /* the real models' widths (text 768 / 1024, UNet 320.., VAE 128..) */
    int text_width;    /* text encoder width; 0 when the file holds none */
    int text_layers;   /* its transformer layers (all of them; SD 2.x conditions on the penultimate) */
    int text_heads;    /* its attention heads */
    int in_channels;   /* UNet input channels (4, or 9 for inpainting) */
    int context_dim;   /* the UNet's cross-attention width */
    int levels;        /* UNet resolution levels */
    int channels[KILN_SD_ARCH_MAX_LEVELS]; /* UNet channels per level */
    int heads[KILN_SD_ARCH_MAX_LEVELS];    /* attention heads per level (the top level's also serve the
                                              middle block); 0 where a non-attending level has none */
    unsigned attn_levels; /* bit l set: level l has spatial transformers */
    int resnets;       /* resnets per down level */
    int depth;         /* transformer blocks per spatial transformer */
    int unet_groups;   /* the UNet's GroupNorm groups */
    int vae_width;     /* the VAE's narrowest width (its first encoder / last decoder level) */
    int vae_groups;    /* the VAE's GroupNorm groups */
    const char *why;   /* static: what could not be derived when family is 0, else NULL */
};

/* What detection found. */
struct kiln_sd_info {
    kiln_variant variant;  /* KILN_VARIANT_UNKNOWN when the weights match no known layout */
    const char *layout;    /* static: "ldm", "flux", "diffusers-flux", "diffusers" or "unknown" */
    int unet_in_channels;  /* UNet/transformer input channels (9 = inpainting UNet); 0 when unknown */
    int context_dim;       /* text width the UNet cross-attends to (768 SD1, 1024 SD2, 2048 SDXL); 0 unknown */
    bool has_text_encoder; /* the text encoder(s) are present (single files may hold the UNet alone) */
    bool has_vae;          /* the VAE is present */
    const char *note;      /* static caveat about the answer (e.g. SD2 prediction type), or NULL */
    struct kiln_sd_arch arch; /* ldm SD 1.x / 2.x files: the derived architecture */
};

/* Detect from tensor names and shapes. Never fails: unknown layouts give
 * KILN_VARIANT_UNKNOWN with a note. Returns info->variant. */
kiln_variant kiln__sd_detect_tensors(const struct kiln_tensor_lookup *lk, struct kiln_sd_info *info);

/* Detect from a diffusers folder found by kiln__model_path_detect: the
 * pipeline class in model_index.json, unet/config.json (in_channels,
 * cross_attention_dim), transformer/config.json (guidance_embeds). Fails only
 * when a config file exists but cannot be read or has a wrongly typed value. */
kiln_status kiln__sd_detect_diffusers(const struct kiln_model_path *mp, struct kiln_sd_info *info);

#endif /* KILN_FORMATS_SD_DETECT_H */
