/* src/image/registry.c - the sealed table of image implementations, indexed
 * by kiln_variant; its length is tied to KILN_VARIANT_LIST at compile time. */
#include "image/image_impl.h"

static const struct kiln_image_impl image_impls[] = {
    /* SD 1.x: CLIP ViT-L/14 (768 wide), last layer, epsilon. */
    [KILN_VARIANT_SD15] = {KILN_VARIANT_SD15, "StableDiffusionPipeline",
                           {4, 768, 0, false, KILN_PREDICT_EPSILON}, NULL, NULL},
    /* SD 1.5 inpainting: 9 input channels (latent, mask, masked-image latent). */
    [KILN_VARIANT_SD15_INPAINT] = {KILN_VARIANT_SD15_INPAINT, "StableDiffusionInpaintPipeline",
                                   {9, 768, 0, false, KILN_PREDICT_EPSILON}, NULL, NULL},
    /* SD 2.1 (768-v): OpenCLIP ViT-H (1024 wide) penultimate layer, v-prediction
     * (the 512-base checkpoint is epsilon: set from config or flag). */
    [KILN_VARIANT_SD21] = {KILN_VARIANT_SD21, "StableDiffusionPipeline",
                           {4, 1024, 0, true, KILN_PREDICT_V}, NULL, NULL},
    /* SD 2 inpainting: 512 base, epsilon, 9 channels. */
    [KILN_VARIANT_SD2_INPAINT] = {KILN_VARIANT_SD2_INPAINT, "StableDiffusionInpaintPipeline",
                                  {9, 1024, 0, true, KILN_PREDICT_EPSILON}, NULL, NULL},
    /* SDXL: CLIP ViT-L (768) and OpenCLIP bigG (1280), both penultimate. */
    [KILN_VARIANT_SDXL] = {KILN_VARIANT_SDXL, "StableDiffusionXLPipeline",
                           {4, 768, 1280, true, KILN_PREDICT_EPSILON}, NULL, NULL},
    [KILN_VARIANT_SDXL_INPAINT] = {KILN_VARIANT_SDXL_INPAINT, "StableDiffusionXLInpaintPipeline",
                                   {9, 768, 1280, true, KILN_PREDICT_EPSILON}, NULL, NULL},
    /* SDXL-Turbo: the SDXL layout, distilled for 1-4 steps without CFG. */
    [KILN_VARIANT_SDXL_TURBO] = {KILN_VARIANT_SDXL_TURBO, "StableDiffusionXLPipeline",
                                 {4, 768, 1280, true, KILN_PREDICT_EPSILON}, NULL, NULL},
    /* Flux.1: CLIP-L pooled (768) plus T5-XXL (4096); 2x2-patched 16-channel
     * latents give 64 input features; rectified flow. */
    [KILN_VARIANT_FLUX_DEV] = {KILN_VARIANT_FLUX_DEV, "FluxPipeline",
                               {64, 768, 4096, false, KILN_PREDICT_FLOW}, NULL, NULL},
    [KILN_VARIANT_FLUX_SCHNELL] = {KILN_VARIANT_FLUX_SCHNELL, "FluxPipeline",
                                   {64, 768, 4096, false, KILN_PREDICT_FLOW}, NULL, NULL},
};

_Static_assert(sizeof image_impls / sizeof image_impls[0] == KILN_VARIANT_UNKNOWN,
               "one image implementation per variant in KILN_VARIANT_LIST");

const struct kiln_image_impl *kiln__image_impl(kiln_variant variant) {
    if ((unsigned)variant >= KILN_VARIANT_UNKNOWN) return NULL;
    return &image_impls[variant];
}
