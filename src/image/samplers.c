/* src/image/samplers.c - the diffusion samplers (see samplers.h).
 *
 * References (read, not copied): k-diffusion 0.1.1 sampling.py
 * (sample_euler, sample_euler_ancestral and get_ancestral_step, sample_heun,
 * sample_dpmpp_2m, sample_dpmpp_2m_sde), diffusers 0.31 scheduling_ddim.py
 * and scheduling_lcm.py.
 *
 * DDIM and LCM in k-diffusion's space. diffusers' latent is
 * x_t = sqrt(a) x0 + sqrt(1 - a) eps with a = alphas_cumprod_t; ours is
 * x = x_t / sqrt(a) = x0 + sigma eps, sigma^2 = (1 - a) / a, so
 * a = 1 / (1 + sigma^2), and the model's input x_t = x / sqrt(1 + sigma^2)
 * is what a denoiser's c_in gives it. With x0 the denoiser's output and
 * eps = (x - x0) / sigma (the same as diffusers' pred_epsilon for epsilon
 * and v models alike):
 *   DDIM:  x_t' = sqrt(a') x0 + sqrt(1 - a' - s^2) eps + s z,
 *          s = eta sqrt((1 - a') / (1 - a) (1 - a / a')),
 *          so x' = x0 + sqrt((1 - a' - s^2) / a') eps + s / sqrt(a') z;
 *   LCM:   d = c_out x0 + c_skip x_t (boundary-condition scalings of the
 *          integer timestep), then x_t' = sqrt(a') d + sqrt(1 - a') z, so
 *          x' = d + sigma' z; the last step returns d.
 */
#include "image/samplers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static kiln_status oom(void) { return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "sampler: out of memory"); }

kiln_img_sampler_params kiln__img_sampler_default_params(kiln_img_sampler_kind kind) {
    kiln_img_sampler_params p = {kind, KILN_SCHEDULE_NORMAL, 20, 0.0, 1.0, 50, false};
    switch (kind) {
    case KILN_SAMPLER_EULER_A:
    case KILN_SAMPLER_DPMPP_2M_SDE:
        p.eta = 1.0;
        break;
    case KILN_SAMPLER_LCM:
        p.steps = 4;
        break;
    case KILN_SAMPLER_EULER:
    case KILN_SAMPLER_HEUN:
    case KILN_SAMPLER_DPMPP_2M:
    case KILN_SAMPLER_DDIM:
        break;
    }
    return p;
}

void kiln__img_sampler_free(kiln_img_sampler *s) {
    free(s->sigmas);
    free(s->timesteps);
    free(s->levels);
    free(s->denoised);
    free(s->old_denoised);
    free(s->tmp);
    kiln__brownian_free(&s->tree);
    memset(s, 0, sizeof *s);
}

/* Whether the sampler is one of k-diffusion's (a sigma schedule). */
static bool is_kdiff(kiln_img_sampler_kind k) {
    switch (k) {
    case KILN_SAMPLER_EULER:
    case KILN_SAMPLER_EULER_A:
    case KILN_SAMPLER_HEUN:
    case KILN_SAMPLER_DPMPP_2M:
    case KILN_SAMPLER_DPMPP_2M_SDE:
        return true;
    case KILN_SAMPLER_DDIM:
    case KILN_SAMPLER_LCM:
        return false;
    }
    return false;
}

/* DDIM's timesteps ("leading" spacing, steps_offset 1) and sigmas; the
 * last sigma is that of alphas_cumprod[0] (set_alpha_to_one False). */
static kiln_status plan_ddim(kiln_img_sampler *s) {
    int steps = s->p.steps, ratio = KILN_TRAIN_STEPS / steps;
    if (ratio < 1 || (steps - 1) * ratio + 1 > KILN_TRAIN_STEPS - 1)
        return kiln__fail(KILN_ERR_INVALID_ARG, "sampler: ddim takes at most %d steps", KILN_TRAIN_STEPS - 1);
    for (int i = 0; i < steps; i++) {
        int t = (steps - 1 - i) * ratio + 1;
        s->timesteps[i] = t;
        s->sigmas[i] = s->levels->sigmas[t];
    }
    s->sigmas[steps] = s->levels->sigmas[0];
    return KILN_OK;
}

/* LCM's timesteps: steps of the original_inference_steps timesteps
 * k - 1, 2k - 1, ..., 999 (k = 1000 / original), taken from the top at
 * evenly spaced indices as numpy.linspace(0, original, steps, endpoint=False)
 * floors them. */
static kiln_status plan_lcm(kiln_img_sampler *s) {
    int steps = s->p.steps, orig = s->p.lcm_original_steps;
    if (orig < 1 || orig > KILN_TRAIN_STEPS)
        return kiln__fail(KILN_ERR_INVALID_ARG, "sampler: lcm original steps %d (1..%d)", orig, KILN_TRAIN_STEPS);
    if (steps > orig)
        return kiln__fail(KILN_ERR_INVALID_ARG, "sampler: lcm takes at most %d steps (its original steps)", orig);
    int k = KILN_TRAIN_STEPS / orig;
    double spacing = (double)orig / steps;
    for (int i = 0; i < steps; i++) {
        int idx = (int)floor(i * spacing); /* into the timesteps from the top */
        int t = (orig - idx) * k - 1;
        s->timesteps[i] = t;
        s->sigmas[i] = s->levels->sigmas[t];
    }
    s->sigmas[steps] = 0.0;
    return KILN_OK;
}

kiln_status kiln__img_sampler_init(kiln_img_sampler *s, const kiln_img_sampler_params *p, size_t n) {
    memset(s, 0, sizeof *s);
    s->last_step = -1;
    if ((unsigned)p->kind >= KILN_SAMPLER_COUNT)
        return kiln__fail(KILN_ERR_INVALID_ARG, "sampler: unknown sampler %d", (int)p->kind);
    if ((unsigned)p->schedule >= KILN_SCHEDULE_COUNT)
        return kiln__fail(KILN_ERR_INVALID_ARG, "sampler: unknown schedule %d", (int)p->schedule);
    if (p->steps < 1 || p->steps > KILN_MAX_STEPS)
        return kiln__fail(KILN_ERR_INVALID_ARG, "sampler: %d steps (1..%d)", p->steps, KILN_MAX_STEPS);
    if (!(p->eta >= 0 && p->eta <= 100) || !(p->s_noise >= 0 && p->s_noise <= 100))
        return kiln__fail(KILN_ERR_INVALID_ARG, "sampler: eta %g and s_noise %g must be in 0..100", p->eta,
                          p->s_noise);
    if (n == 0 || n > ((size_t)1 << 32))
        return kiln__fail(KILN_ERR_INVALID_ARG, "sampler: latent of %zu elements", n);
    s->p = *p;
    s->n = n;
    s->sigmas = malloc(((size_t)p->steps + 1) * sizeof *s->sigmas);
    s->timesteps = malloc((size_t)p->steps * sizeof *s->timesteps);
    s->levels = malloc(sizeof *s->levels);
    s->denoised = malloc(n * sizeof *s->denoised);
    s->tmp = malloc(n * sizeof *s->tmp);
    bool two = p->kind == KILN_SAMPLER_DPMPP_2M || p->kind == KILN_SAMPLER_DPMPP_2M_SDE ||
               p->kind == KILN_SAMPLER_HEUN;
    if (two) s->old_denoised = malloc(n * sizeof *s->old_denoised);
    if (!s->sigmas || !s->timesteps || !s->levels || !s->denoised || !s->tmp || (two && !s->old_denoised)) {
        kiln__img_sampler_free(s);
        return oom();
    }
    kiln_status st = KILN_OK;
    if (is_kdiff(p->kind)) {
        kiln__noise_levels_sd(s->levels, KILN_ALPHAS_LDM);
        st = kiln__schedule_sigmas(s->levels, p->schedule, p->steps, s->sigmas);
        for (int i = 0; st == KILN_OK && i < p->steps; i++) s->timesteps[i] = kiln__sigma_to_t(s->levels, s->sigmas[i]);
    } else {
        kiln__noise_levels_sd(s->levels, KILN_ALPHAS_DIFFUSERS);
        st = p->kind == KILN_SAMPLER_DDIM ? plan_ddim(s) : plan_lcm(s);
    }
    if (st != KILN_OK) {
        kiln__img_sampler_free(s);
        s->last_step = -1;
    }
    return st;
}

double kiln__img_sampler_noise_scale(const kiln_img_sampler *s, int first) {
    double sigma = s->sigmas[first];
    return is_kdiff(s->p.kind) ? sigma : sqrt(1.0 + sigma * sigma);
}

double kiln__img_sampler_latent_scale(const kiln_img_sampler *s, int i) {
    double sigma = s->sigmas[i + 1];
    return 1.0 / sqrt(1.0 + sigma * sigma);
}

/* ---- the steps ---- */

/* Whether step i draws noise. */
static bool needs_noise(const kiln_img_sampler *s, int i) {
    switch (s->p.kind) {
    case KILN_SAMPLER_EULER_A:
    case KILN_SAMPLER_DPMPP_2M_SDE:
        return s->p.eta > 0 && s->sigmas[i + 1] > 0;
    case KILN_SAMPLER_DDIM:
        return s->p.eta > 0;
    case KILN_SAMPLER_LCM:
        return i != s->p.steps - 1;
    case KILN_SAMPLER_EULER:
    case KILN_SAMPLER_HEUN:
    case KILN_SAMPLER_DPMPP_2M:
        return false;
    }
    return false;
}

/* x += (x - den) / sigma * dt, the Euler step of the probability-flow ODE. */
static void euler(float *x, const float *den, size_t n, double sigma, double dt) {
    for (size_t k = 0; k < n; k++) x[k] = (float)(x[k] + (x[k] - (double)den[k]) / sigma * dt);
}

static kiln_status step_heun(kiln_img_sampler *s, int i, float *x, kiln_denoise_fn fn, void *user) {
    double sigma = s->sigmas[i], next = s->sigmas[i + 1], dt = next - sigma;
    if (next == 0) {
        euler(x, s->denoised, s->n, sigma, dt);
        return KILN_OK;
    }
    /* x2 = the Euler step's result; then the derivative there, and the
     * average of the two derivatives over the whole step. */
    float *x2 = s->tmp, *den2 = s->old_denoised;
    for (size_t k = 0; k < s->n; k++) x2[k] = (float)(x[k] + (x[k] - (double)s->denoised[k]) / sigma * dt);
    kiln_status st = fn(user, x2, next, kiln__sigma_to_t(s->levels, next), den2, s->n);
    if (st != KILN_OK) return st;
    for (size_t k = 0; k < s->n; k++) {
        double d = (x[k] - (double)s->denoised[k]) / sigma;
        double d2 = (x2[k] - (double)den2[k]) / next;
        x[k] = (float)(x[k] + (d + d2) / 2 * dt);
    }
    return KILN_OK;
}

static void step_dpmpp_2m(kiln_img_sampler *s, int i, float *x) {
    double sigma = s->sigmas[i], next = s->sigmas[i + 1];
    const float *den = s->denoised;
    if (next == 0) {
        memcpy(x, den, s->n * sizeof *x);
    } else {
        double h = log(sigma) - log(next); /* t_next - t, t = -log sigma */
        double ratio = next / sigma, c = -expm1(-h);
        if (!s->has_old) {
            for (size_t k = 0; k < s->n; k++) x[k] = (float)(ratio * x[k] + c * den[k]);
        } else {
            double h_last = log(s->sigmas[i - 1]) - log(sigma), r = h_last / h;
            double a = 1 + 1 / (2 * r), b = 1 / (2 * r);
            for (size_t k = 0; k < s->n; k++)
                x[k] = (float)(ratio * x[k] + c * (a * den[k] - b * (double)s->old_denoised[k]));
        }
    }
    memcpy(s->old_denoised, den, s->n * sizeof *den);
    s->has_old = true;
}

/* The SDE noise of step i into s->tmp: randn from the rng, or the
 * Brownian tree's increment from sigmas[i] to sigmas[i + 1] (the tree made
 * at the first call: A1111's create_noise_sampler over the sigmas handed
 * to the sampler, whose largest is the first step's, seeded with the
 * image's seed). */
static kiln_status sde_noise(kiln_img_sampler *s, int i, kiln_rng *rng) {
    if (s->p.sde_noise_from_rng) {
        kiln__rng_randn(rng, s->tmp, s->n);
        return KILN_OK;
    }
    if (!s->has_tree) {
        float lo = 0.0f;
        for (int k = i; k <= s->p.steps; k++)
            if (s->sigmas[k] > 0 && (lo == 0.0f || (float)s->sigmas[k] < lo)) lo = (float)s->sigmas[k];
        kiln_status st = kiln__brownian_init(&s->tree, rng->seed, rng->kind, lo, (float)s->sigmas[i], s->n);
        if (st != KILN_OK) return st;
        s->has_tree = true;
    }
    return kiln__brownian_noise(&s->tree, (float)s->sigmas[i], (float)s->sigmas[i + 1], s->tmp);
}

static kiln_status step_dpmpp_2m_sde(kiln_img_sampler *s, int i, float *x, kiln_rng *rng) {
    double sigma = s->sigmas[i], next = s->sigmas[i + 1];
    const float *den = s->denoised;
    double h = s->h_last; /* k-diffusion keeps the last h through the final step */
    if (next == 0) {
        memcpy(x, den, s->n * sizeof *x);
    } else {
        h = log(sigma) - log(next);
        double eta_h = s->p.eta * h;
        double a = next / sigma * exp(-eta_h), b = -expm1(-h - eta_h);
        for (size_t k = 0; k < s->n; k++) x[k] = (float)(a * x[k] + b * den[k]);
        if (s->has_old) {
            double c = 0.5 * b * (1 / (s->h_last / h)); /* midpoint correction */
            for (size_t k = 0; k < s->n; k++) x[k] = (float)(x[k] + c * ((double)den[k] - s->old_denoised[k]));
        }
        if (s->p.eta > 0) {
            kiln_status st = sde_noise(s, i, rng);
            if (st != KILN_OK) return st;
            double c = next * sqrt(-expm1(-2 * eta_h)) * s->p.s_noise;
            for (size_t k = 0; k < s->n; k++) x[k] = (float)(x[k] + s->tmp[k] * c);
        }
    }
    memcpy(s->old_denoised, den, s->n * sizeof *den);
    s->has_old = true;
    s->h_last = h;
    return KILN_OK;
}

static void step_euler_a(kiln_img_sampler *s, int i, float *x, kiln_rng *rng) {
    double sigma = s->sigmas[i], next = s->sigmas[i + 1];
    double down = next, up = 0;
    if (s->p.eta > 0) { /* get_ancestral_step */
        up = s->p.eta * sqrt(next * next * (sigma * sigma - next * next) / (sigma * sigma));
        if (up > next) up = next;
        down = sqrt(next * next - up * up);
    }
    euler(x, s->denoised, s->n, sigma, down - sigma);
    if (next > 0) {
        kiln__rng_randn(rng, s->tmp, s->n);
        double c = s->p.s_noise * up;
        for (size_t k = 0; k < s->n; k++) x[k] = (float)(x[k] + s->tmp[k] * c);
    }
}

static void step_ddim(kiln_img_sampler *s, int i, float *x, kiln_rng *rng) {
    double sigma = s->sigmas[i], next = s->sigmas[i + 1];
    double a = 1 / (1 + sigma * sigma), ap = 1 / (1 + next * next);
    double var = (1 - ap) / (1 - a) * (1 - a / ap);
    double std = s->p.eta * sqrt(var);
    double c_eps = sqrt((1 - ap - std * std) / ap) / sigma, c_z = std / sqrt(ap);
    if (s->p.eta > 0) kiln__rng_randn(rng, s->tmp, s->n);
    for (size_t k = 0; k < s->n; k++) {
        double x0 = s->denoised[k];
        double v = x0 + c_eps * (x[k] - x0);
        if (s->p.eta > 0) v += c_z * s->tmp[k];
        x[k] = (float)v;
    }
}

static void step_lcm(kiln_img_sampler *s, int i, float *x, kiln_rng *rng) {
    double sigma = s->sigmas[i], next = s->sigmas[i + 1];
    double scaled = s->timesteps[i] * 10.0; /* timestep_scaling 10 */
    double c_skip = 0.25 / (scaled * scaled + 0.25), c_out = scaled / sqrt(scaled * scaled + 0.25);
    double to_xt = 1 / sqrt(1 + sigma * sigma);
    bool noisy = i != s->p.steps - 1;
    if (noisy) kiln__rng_randn(rng, s->tmp, s->n);
    for (size_t k = 0; k < s->n; k++) {
        double d = c_out * s->denoised[k] + c_skip * (x[k] * to_xt);
        x[k] = (float)(noisy ? d + next * s->tmp[k] : d);
    }
}

kiln_status kiln__img_sampler_step(kiln_img_sampler *s, int i, float *x, kiln_denoise_fn denoise, void *user,
                               kiln_rng *rng) {
    if (!s->sigmas) return kiln__fail(KILN_ERR_INVALID_ARG, "sampler: not initialized");
    if (i < 0 || i >= s->p.steps) return kiln__fail(KILN_ERR_INVALID_ARG, "sampler: step %d of %d", i, s->p.steps);
    if (s->last_step >= 0 && i != s->last_step + 1)
        return kiln__fail(KILN_ERR_INVALID_ARG, "sampler: step %d after step %d (steps go in order)", i,
                          s->last_step);
    if (!rng && needs_noise(s, i))
        return kiln__fail(KILN_ERR_INVALID_ARG, "sampler: %s needs a random number generator",
                          kiln__img_sampler_name(s->p.kind));
    kiln_status st = denoise(user, x, s->sigmas[i], s->timesteps[i], s->denoised, s->n);
    if (st != KILN_OK) return st;
    switch (s->p.kind) {
    case KILN_SAMPLER_EULER:
        euler(x, s->denoised, s->n, s->sigmas[i], s->sigmas[i + 1] - s->sigmas[i]);
        break;
    case KILN_SAMPLER_EULER_A:
        step_euler_a(s, i, x, rng);
        break;
    case KILN_SAMPLER_HEUN:
        st = step_heun(s, i, x, denoise, user);
        break;
    case KILN_SAMPLER_DPMPP_2M:
        step_dpmpp_2m(s, i, x);
        break;
    case KILN_SAMPLER_DPMPP_2M_SDE:
        st = step_dpmpp_2m_sde(s, i, x, rng);
        break;
    case KILN_SAMPLER_DDIM:
        step_ddim(s, i, x, rng);
        break;
    case KILN_SAMPLER_LCM:
        step_lcm(s, i, x, rng);
        break;
    }
    if (st == KILN_OK) s->last_step = i;
    return st;
}

/* Names, indexed by sampler. */
static const char *const names[KILN_SAMPLER_COUNT] = {"euler",        "euler_a", "heun", "dpmpp_2m",
                                                      "dpmpp_2m_sde", "ddim",    "lcm"};

const char *kiln__img_sampler_name(kiln_img_sampler_kind k) {
    return (unsigned)k < KILN_SAMPLER_COUNT ? names[k] : "unknown";
}

bool kiln__img_sampler_from_name(const char *name, kiln_img_sampler_kind *out) {
    for (int i = 0; i < KILN_SAMPLER_COUNT; i++) {
        if (strcmp(names[i], name) == 0) {
            *out = (kiln_img_sampler_kind)i;
            return true;
        }
    }
    return false;
}
