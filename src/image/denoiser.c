/* src/image/denoiser.c - model output to denoised estimate, and CFG (see
 * denoiser.h). Reference (read, not copied): k-diffusion's external.py
 * (DiscreteEpsDDPMDenoiser, DiscreteVDDPMDenoiser). */
#include "image/denoiser.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

kiln_status kiln__compvis_init(kiln_compvis_denoiser *d, kiln_prediction pred, kiln_model_fn model, void *user,
                               size_t n) {
    memset(d, 0, sizeof *d);
    if (n == 0) return kiln__fail(KILN_ERR_INVALID_ARG, "denoiser: empty latent");
    d->x_in = malloc(n * sizeof *d->x_in);
    d->out = malloc(n * sizeof *d->out);
    if (!d->x_in || !d->out) {
        kiln__compvis_free(d);
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "denoiser: out of memory");
    }
    d->pred = pred;
    d->model = model;
    d->user = user;
    d->n = n;
    return KILN_OK;
}

void kiln__compvis_free(kiln_compvis_denoiser *d) {
    free(d->x_in);
    free(d->out);
    memset(d, 0, sizeof *d);
}

/* x_in = x c_in for sigma (into d->x_in). */
static void scale_input(kiln_compvis_denoiser *d, const float *x, double sigma, size_t n) {
    double c_in = 1 / sqrt(sigma * sigma + 1);
    for (size_t k = 0; k < n; k++) d->x_in[k] = (float)(x[k] * c_in);
}

/* denoised from x and the model's output in d->out. */
static void to_denoised(const kiln_compvis_denoiser *d, const float *x, double sigma, float *denoised, size_t n) {
    switch (d->pred) {
    case KILN_PRED_EPS:
        for (size_t k = 0; k < n; k++) denoised[k] = (float)(x[k] - sigma * d->out[k]);
        break;
    case KILN_PRED_V: {
        double c_in = 1 / sqrt(sigma * sigma + 1);
        double c_skip = 1 / (sigma * sigma + 1), c_out = -sigma * c_in;
        for (size_t k = 0; k < n; k++) denoised[k] = (float)(d->out[k] * c_out + x[k] * c_skip);
        break;
    }
    }
}

kiln_status kiln__compvis_denoise(void *self, const float *x, double sigma, double t, float *denoised, size_t n) {
    kiln_compvis_denoiser *d = self;
    if (n != d->n) return kiln__fail(KILN_ERR_INVALID_ARG, "denoiser: %zu elements, made for %zu", n, d->n);
    scale_input(d, x, sigma, n);
    kiln_status st = d->model(d->user, d->x_in, t, d->out, n);
    if (st != KILN_OK) return st;
    to_denoised(d, x, sigma, denoised, n);
    return KILN_OK;
}

kiln_status kiln__compvis_denoise_pair(kiln_compvis_denoiser *a, kiln_compvis_denoiser *b, kiln_model_pair_fn pair,
                                       void *user, const float *x, double sigma, double t, float *den_a,
                                       float *den_b, size_t n) {
    if (n != a->n || n != b->n || a->pred != b->pred)
        return kiln__fail(KILN_ERR_INVALID_ARG, "denoiser: %zu elements for a pair made for %zu and %zu", n, a->n,
                          b->n);
    scale_input(a, x, sigma, n);
    kiln_status st = pair(user, a->x_in, t, a->out, b->out, n);
    if (st != KILN_OK) return st;
    to_denoised(a, x, sigma, den_a, n);
    to_denoised(b, x, sigma, den_b, n);
    return KILN_OK;
}

void kiln__cfg_combine(float *out, const float *cond, const float *uncond, float scale, size_t n) {
    for (size_t k = 0; k < n; k++) out[k] = uncond[k] + (cond[k] - uncond[k]) * scale;
}
