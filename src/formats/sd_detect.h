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

/* What detection found. */
struct kiln_sd_info {
    kiln_variant variant;  /* KILN_VARIANT_UNKNOWN when the weights match no known layout */
    const char *layout;    /* static: "ldm", "flux", "diffusers-flux", "diffusers" or "unknown" */
    int unet_in_channels;  /* UNet/transformer input channels (9 = inpainting UNet); 0 when unknown */
    int context_dim;       /* text width the UNet cross-attends to (768 SD1, 1024 SD2, 2048 SDXL); 0 unknown */
    bool has_text_encoder; /* the text encoder(s) are present (single files may hold the UNet alone) */
    bool has_vae;          /* the VAE is present */
    const char *note;      /* static caveat about the answer (e.g. SD2 prediction type), or NULL */
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
