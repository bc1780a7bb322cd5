/* src/image/vae.h - the Stable Diffusion VAE (internal): diffusers'
 * AutoencoderKL (KL-f8 in SD; any number of levels, read from the tensors).
 *
 * Decode runs post_quant_conv then the decoder; encode runs the encoder then
 * quant_conv and returns the mean and log-variance of the latent
 * distribution. The latent scaling factor (0.18215 in SD 1.x/2.x) is NOT
 * applied here: the pipeline divides latents by it before decoding and
 * multiplies encoded means by it. Images are [3][H][W] in [-1, 1] (decode
 * does not clamp).
 */
#ifndef KILN_IMAGE_VAE_H
#define KILN_IMAGE_VAE_H

#include "core/threadpool.h"
#include "kiln/status.h"

struct kiln_weights;

/* What the tensors do not say. */
struct kiln_vae_opts {
    int norm_groups; /* GroupNorm groups (32) */
    float norm_eps;  /* GroupNorm epsilon (1e-6) */
};

struct kiln_vae; /* a loaded VAE (decoder and, when present, encoder) */

/* Options from a diffusers vae/config.json (norm_num_groups). */
kiln_status kiln__vae_opts_json(const char *config_path, struct kiln_vae_opts *out);
/* The SD defaults (32 groups, 1e-6). */
void kiln__vae_opts_sd(struct kiln_vae_opts *out);

/* Bind the VAE whose tensors are named prefix + "decoder.conv_in.weight"
 * etc. The encoder is optional (decode-only files). */
kiln_status kiln__vae_load(const struct kiln_weights *w, const char *prefix,
                           const struct kiln_vae_opts *opts, struct kiln_vae **out);
void kiln__vae_free(struct kiln_vae *v);

int kiln__vae_latent_channels(const struct kiln_vae *v); /* 4 */
int kiln__vae_scale(const struct kiln_vae *v);           /* image pixels per latent pixel (8) */
int kiln__vae_has_encoder(const struct kiln_vae *v);

/* latent [C][h][w] -> rgb [3][h*scale][w*scale]. */
kiln_status kiln__vae_decode(const struct kiln_vae *v, kiln_pool *pool, const float *latent,
                             int h, int w, float *rgb);
/* rgb [3][h][w] (h, w multiples of the scale) -> mean and logvar (clamped
 * to [-30, 20] as diffusers does), each [C][h/scale][w/scale].
 * KILN_ERR_UNSUPPORTED without an encoder. */
kiln_status kiln__vae_encode(const struct kiln_vae *v, kiln_pool *pool, const float *rgb, int h,
                             int w, float *mean, float *logvar);

#endif /* KILN_IMAGE_VAE_H */
