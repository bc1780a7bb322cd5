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
    int sample_size; /* diffusers' sample_size in pixels (512): tiled decoding uses tiles of
                        sample_size / scale latent pixels, as AutoencoderKL's tiling */
};

struct kiln_vae; /* a loaded VAE (decoder and, when present, encoder) */

/* Options from a diffusers vae/config.json (norm_num_groups, sample_size). */
kiln_status kiln__vae_opts_json(const char *config_path, struct kiln_vae_opts *out);
/* The SD defaults (32 groups, 1e-6, sample size 512). */
void kiln__vae_opts_sd(struct kiln_vae_opts *out);

/* Bind the VAE whose tensors are named prefix + "decoder.conv_in.weight"
 * etc. The encoder is optional (decode-only files). */
kiln_status kiln__vae_load(const struct kiln_weights *w, const char *prefix,
                           const struct kiln_vae_opts *opts, struct kiln_vae **out);
void kiln__vae_free(struct kiln_vae *v);

int kiln__vae_latent_channels(const struct kiln_vae *v); /* 4 */
int kiln__vae_scale(const struct kiln_vae *v);           /* image pixels per latent pixel (8) */
int kiln__vae_has_encoder(const struct kiln_vae *v);

/* latent [C][h][w] -> rgb [3][h*scale][w*scale]. Tiled (below) when the
 * latent is larger than one tile and either the environment says
 * KILN_VAE_TILE=on, or (KILN_VAE_TILE unset or "auto") the latent has more
 * than 128 x 128 pixels (SD: images above 1024 x 1024, whose whole decode
 * needs several GiB); KILN_VAE_TILE=off never tiles. Another value is
 * KILN_ERR_INVALID_ARG. */
kiln_status kiln__vae_decode(const struct kiln_vae *v, kiln_pool *pool, const float *latent,
                             int h, int w, float *rgb);
/* The same decode in overlapping tiles of tile x tile latent pixels, as
 * diffusers' AutoencoderKL.tiled_decode: tiles start every tile * 3/4
 * latent pixels; each decoded tile is blended linearly with the (blended)
 * tile above and the one to its left over tile * scale / 4 pixels, and its
 * first tile * scale * 3/4 rows and columns are kept. Memory: a decode of
 * one tile plus two rows of decoded tiles, whatever the image size. The
 * result differs from the whole decode (GroupNorm statistics are per tile);
 * it matches diffusers' tiled decode. */
kiln_status kiln__vae_decode_tiled(const struct kiln_vae *v, kiln_pool *pool, const float *latent, int h,
                                   int w, int tile, float *rgb);
/* Latent pixels per side of the tiles of kiln__vae_decode: sample_size / scale. */
int kiln__vae_tile(const struct kiln_vae *v);
/* rgb [3][h][w] (h, w multiples of the scale) -> mean and logvar (clamped
 * to [-30, 20] as diffusers does), each [C][h/scale][w/scale].
 * KILN_ERR_UNSUPPORTED without an encoder. */
kiln_status kiln__vae_encode(const struct kiln_vae *v, kiln_pool *pool, const float *rgb, int h,
                             int w, float *mean, float *logvar);

#endif /* KILN_IMAGE_VAE_H */
