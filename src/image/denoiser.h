/* src/image/denoiser.h - from a diffusion model's output to the denoised
 * estimate the samplers want, and classifier-free guidance (internal).
 *
 * SD's UNet predicts the noise eps (SD 1.x, SD 2.x base) or v (SD 2.x 768);
 * it takes the latent scaled to unit variance, x_in = x c_in, and a
 * timestep. As k-diffusion's CompVisDenoiser and CompVisVDenoiser (what
 * AUTOMATIC1111 wraps around the model), with sigma_data 1:
 *   eps: c_in = 1 / sqrt(sigma^2 + 1),  denoised = x - sigma eps
 *   v:   c_in = 1 / sqrt(sigma^2 + 1),  denoised = x / (sigma^2 + 1)
 *                                                  - v sigma / sqrt(sigma^2 + 1)
 */
#ifndef KILN_IMAGE_DENOISER_H
#define KILN_IMAGE_DENOISER_H

#include <stddef.h>

#include "kiln/status.h"

/* What the model predicts. */
typedef enum kiln_prediction {
    KILN_PRED_EPS, /* the noise */
    KILN_PRED_V,   /* v = sqrt(a) eps - sqrt(1 - a) x0 */
} kiln_prediction;

/* The model: out[0..n) = its prediction for the input x_in[0..n) (already
 * scaled by c_in) at timestep t. Any status but KILN_OK stops sampling. */
typedef kiln_status (*kiln_model_fn)(void *user, const float *x_in, double t, float *out, size_t n);

/* A model wrapped into a denoiser (pass kiln__compvis_denoise with a
 * pointer to this as the samplers' callback). */
typedef struct kiln_compvis_denoiser {
    kiln_prediction pred; /* what the model predicts */
    kiln_model_fn model;  /* the model */
    void *user;           /* its argument */
    float *x_in;          /* [n] scratch: the scaled input */
    float *out;           /* [n] scratch: the model's output */
    size_t n;             /* latent elements */
} kiln_compvis_denoiser;

/* Wrap a model for latents of n elements; release with kiln__compvis_free. */
kiln_status kiln__compvis_init(kiln_compvis_denoiser *d, kiln_prediction pred, kiln_model_fn model, void *user,
                               size_t n);

/* Release the scratch memory; a zeroed struct is fine. */
void kiln__compvis_free(kiln_compvis_denoiser *d);

/* The denoiser callback (kiln_denoise_fn): `self` is a kiln_compvis_denoiser. */
kiln_status kiln__compvis_denoise(void *self, const float *x, double sigma, double t, float *denoised, size_t n);

/* Two models on the same input at once (the prompt and the negative
 * prompt of CFG as one batch): out_a and out_b [0..n) get what model a and
 * model b of the pair give for x_in at timestep t. */
typedef kiln_status (*kiln_model_pair_fn)(void *user, const float *x_in, double t, float *out_a, float *out_b,
                                          size_t n);

/* What kiln__compvis_denoise gives through a and through b, bit for bit,
 * for one call of pair (which stands for a's and b's models; a and b are
 * used for their prediction type and scratch only): den_a and den_b [n]. */
kiln_status kiln__compvis_denoise_pair(kiln_compvis_denoiser *a, kiln_compvis_denoiser *b, kiln_model_pair_fn pair,
                                       void *user, const float *x, double sigma, double t, float *den_a,
                                       float *den_b, size_t n);

/* Classifier-free guidance: out = uncond + (cond - uncond) * scale, as
 * A1111's CFGDenoiser combines (diffusers: on the noise prediction; the
 * same result, the denoised estimate being affine in it). out may alias
 * either input. */
void kiln__cfg_combine(float *out, const float *cond, const float *uncond, float scale, size_t n);

#endif /* KILN_IMAGE_DENOISER_H */
