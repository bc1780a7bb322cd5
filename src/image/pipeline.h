/* src/image/pipeline.h - the Stable Diffusion pipeline: txt2img, img2img and
 * inpainting over a small component interface (internal).
 *
 * The pipeline knows nothing of the networks' weights: it drives a text
 * encoder, a UNet and a VAE through the function pointers of
 * kiln_sd_components. kiln_image_load binds the real networks to it; tests
 * bind toy components. What it does, in AUTOMATIC1111's terms:
 *
 *   noise      image i of a batch: a kiln_rng seeded with seed + i draws the
 *              initial latent as torch.randn([1, 4, H/8, W/8]), then
 *              (img2img) the noise of the VAE posterior sample, then the
 *              samplers' noise;
 *   txt2img    x = noise * noise_scale(step 0), all steps;
 *   img2img    t_enc = int(min(strength, 0.999) * steps), sampling starts at
 *              step steps - t_enc - 1 with x = init + noise * sigma there
 *              (A1111's sample_img2img); strength 0 runs no step and decodes
 *              the encoded init image;
 *   inpaint    the mask (255 = repaint) goes to latent size by averaging each
 *              8x8 block and rounding; the denoised estimate is blended with
 *              the init latent outside the mask after every model call
 *              (A1111's CFGDenoiser apply_blend, for 4- and 9-channel UNets);
 *              a 9-channel UNet also gets [x, mask, latent of the image with
 *              the masked area set to 0] as input; the decoded image then
 *              takes the init image's pixels back where the mask is 0
 *              (A1111's overlay);
 *   CFG        guidance > 1: uncond + (cond - uncond) * guidance on the
 *              denoised estimates (the negative prompt as uncond); with
 *              pad_cond_uncond the shorter conditioning is padded with the
 *              empty prompt's chunks (A1111's pad_cond_uncond option);
 *   preview    every preview_every steps and after the last: A1111's "Approx
 *              cheap" linear map of the denoised latent to RGB at 1/8 size.
 */
#ifndef KILN_IMAGE_PIPELINE_H
#define KILN_IMAGE_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "image/denoiser.h"
#include "kiln/arch.h"
#include "kiln/image.h"
#include "kiln/status.h"

/* Channels of SD's latent space. */
#define KILN_SD_LATENT_CHANNELS 4
/* Pixels per latent pixel (KL-f8). */
#define KILN_SD_VAE_SCALE 8
/* Most images in one batch. */
#define KILN_SD_MAX_BATCH 64

/* The networks, as the pipeline calls them. Arrays are PyTorch's
 * channel-first layout; h, w are latent sizes unless said otherwise. */
typedef struct kiln_sd_components {
    void *user; /* passed to every function below */
    /* The conditioning of a prompt (A1111 emphasis applied): *ctx gets a
     * malloc'ed [*n_ctx][ctx_width] array (the pipeline frees it). */
    kiln_status (*encode_text)(void *user, const char *prompt, uint32_t clip_skip, float **ctx, int *n_ctx);
    /* One UNet evaluation: x [unet_in_channels][h][w] (latent channels
     * already scaled by c_in), timestep t, context [n_ctx][ctx_width];
     * out [4][h][w] (epsilon or v, as `prediction` says). */
    kiln_status (*unet_eval)(void *user, const float *x, int h, int w, float t, const float *ctx, int n_ctx,
                             float *out);
    /* Two evaluations of unet_eval on the same x as one batch, with
     * contexts ctx_a and ctx_b of n_ctx rows each, into out_a and out_b:
     * the same results, bit for bit. NULL: the pipeline calls unet_eval
     * twice. */
    kiln_status (*unet_eval_pair)(void *user, const float *x, int h, int w, float t, const float *ctx_a,
                                  const float *ctx_b, int n_ctx, float *out_a, float *out_b);
    /* latent [4][h][w] (already divided by latent_scale) -> rgb
     * [3][s*h][s*w] (s = vae_scale), about -1..1 (clamped by the pipeline). */
    kiln_status (*vae_decode)(void *user, const float *latent, int h, int w, float *rgb);
    /* rgb [3][H][W] in -1..1 (H, W pixels) -> posterior mean and log
     * variance, each [4][H/s][W/s]. NULL: no img2img or inpainting. */
    kiln_status (*vae_encode)(void *user, const float *rgb, int height, int width, float *mean, float *logvar);
    int ctx_width;            /* values per conditioning token (the text encoder's width);
                                 needed only by pad_cond_uncond, 0 = unknown */
    int unet_in_channels;     /* 4, or 9 for an inpainting UNet */
    kiln_prediction prediction; /* what the UNet predicts (epsilon or v) */
    float latent_scale;       /* the VAE's scaling factor (0.18215 for SD 1.x/2.x) */
    int vae_scale;            /* image pixels per latent pixel; 0 means KILN_SD_VAE_SCALE
                                 (the tiny test VAEs have 2) */
    kiln_image_caps caps;     /* defaults and size limits */
    const char *model_name;   /* the "Model:" of the parameters text (may be NULL) */
} kiln_sd_components;

/* Pixels per latent pixel of c (its vae_scale, KILN_SD_VAE_SCALE when 0). */
static inline int kiln__sd_vae_scale(const kiln_sd_components *c) {
    return c->vae_scale > 0 ? c->vae_scale : KILN_SD_VAE_SCALE;
}

/* Run a generation with the given components (what kiln_image_generate
 * does for a loaded model). On failure *out is zeroed. */
kiln_status kiln__sd_generate(const kiln_sd_components *c, const kiln_image_params *p, kiln_image_result *out);

/* AUTOMATIC1111's infotext for image `index` of a request whose defaults
 * have been resolved (width, height, steps, guidance set), as a malloc'ed
 * string: prompt, "Negative prompt: ..." when there is one, then "Steps: 20,
 * Sampler: Euler a, Schedule type: Karras, CFG scale: 7, Seed: 42, Size:
 * 512x512, Model: name" with "Denoising strength", "Clip skip" and "RNG:
 * CPU" where they apply (A1111 leaves out its defaults: the automatic
 * schedule, clip skip 1 and the GPU generator). */
kiln_status kiln__sd_parameters_text(const kiln_image_params *p, const char *model_name, uint32_t index,
                                     char **out);

/* A1111's "Approx cheap" preview: latent [4][h][w] (the model's latent
 * space) -> RGB8 [h][w][3], clamp((M^T z + 1) / 2) * 255 with SD 1.x's
 * 4x3 latent-to-RGB matrix. */
void kiln__sd_latent_preview(const float *latent, int h, int w, uint8_t *rgb);

#endif /* KILN_IMAGE_PIPELINE_H */
