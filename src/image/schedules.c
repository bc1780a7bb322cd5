/* src/image/schedules.c - noise levels and sigma schedules (see
 * schedules.h). References (read, not copied): k-diffusion's external.py
 * (DiscreteSchedule) and sampling.py (get_sigmas_karras,
 * get_sigmas_exponential), AUTOMATIC1111's modules/sd_schedulers.py
 * (sgm_uniform), ldm's DDPM.register_schedule and diffusers'
 * scheduling_ddim.py (betas_for "scaled_linear").
 */
#include "image/schedules.h"

#include <math.h>
#include <string.h>

#include "core/error.h"

void kiln__noise_levels_sd(kiln_noise_levels *l, kiln_alphas_kind kind) {
    const double lo = sqrt(0.00085), hi = sqrt(0.012);
    double ac = 1.0;
    float ac_f = 1.0f;
    for (int t = 0; t < KILN_TRAIN_STEPS; t++) {
        /* linspace(sqrt(beta_start), sqrt(beta_end), 1000) ** 2 */
        double root = lo + (hi - lo) * t / (KILN_TRAIN_STEPS - 1);
        switch (kind) {
        case KILN_ALPHAS_LDM:
            ac *= 1.0 - root * root;
            l->alphas_cumprod[t] = (double)(float)ac;
            break;
        case KILN_ALPHAS_DIFFUSERS: {
            float r = (float)root;
            float beta = r * r;
            ac_f = ac_f * (1.0f - beta);
            l->alphas_cumprod[t] = ac_f;
            break;
        }
        }
        double a = l->alphas_cumprod[t];
        l->sigmas[t] = sqrt((1.0 - a) / a);
        l->log_sigmas[t] = log(l->sigmas[t]);
    }
}

double kiln__sigma_to_t(const kiln_noise_levels *l, double sigma) {
    double ls = log(sigma);
    /* The last training timestep whose log sigma is <= ls (0 if none), at
     * most 998 so that a timestep above it exists. */
    int low = 0;
    for (int t = 0; t < KILN_TRAIN_STEPS; t++)
        if (ls - l->log_sigmas[t] >= 0) low = t;
    if (low > KILN_TRAIN_STEPS - 2) low = KILN_TRAIN_STEPS - 2;
    double a = l->log_sigmas[low], b = l->log_sigmas[low + 1];
    double w = (a - ls) / (a - b);
    if (w < 0) w = 0;
    if (w > 1) w = 1;
    return (1 - w) * low + w * (low + 1);
}

double kiln__t_to_sigma(const kiln_noise_levels *l, double t) {
    if (t < 0) t = 0;
    if (t > KILN_TRAIN_STEPS - 1) t = KILN_TRAIN_STEPS - 1;
    int low = (int)floor(t), high = (int)ceil(t);
    double w = t - low;
    return exp((1 - w) * l->log_sigmas[low] + w * l->log_sigmas[high]);
}

/* torch.linspace(a, b, n)[i] (for n == 1, a). */
static double linspace(double a, double b, int n, int i) {
    return n == 1 ? a : a + (b - a) * i / (n - 1);
}

kiln_status kiln__schedule_sigmas(const kiln_noise_levels *l, kiln_schedule s, int steps, double *out) {
    if (steps < 1 || steps > KILN_MAX_STEPS)
        return kiln__fail(KILN_ERR_INVALID_ARG, "schedule: %d steps (1..%d)", steps, KILN_MAX_STEPS);
    const double smin = l->sigmas[0], smax = l->sigmas[KILN_TRAIN_STEPS - 1];
    switch (s) {
    case KILN_SCHEDULE_NORMAL:
        for (int i = 0; i < steps; i++) out[i] = kiln__t_to_sigma(l, linspace(KILN_TRAIN_STEPS - 1, 0, steps, i));
        break;
    case KILN_SCHEDULE_KARRAS: {
        const double rho = 7.0, min_inv = pow(smin, 1 / rho), max_inv = pow(smax, 1 / rho);
        for (int i = 0; i < steps; i++) out[i] = pow(max_inv + linspace(0, 1, steps, i) * (min_inv - max_inv), rho);
        break;
    }
    case KILN_SCHEDULE_EXPONENTIAL:
        for (int i = 0; i < steps; i++) out[i] = exp(linspace(log(smax), log(smin), steps, i));
        break;
    case KILN_SCHEDULE_SGM_UNIFORM: {
        double start = kiln__sigma_to_t(l, smax), end = kiln__sigma_to_t(l, smin);
        for (int i = 0; i < steps; i++) out[i] = kiln__t_to_sigma(l, linspace(start, end, steps + 1, i));
        break;
    }
    }
    out[steps] = 0.0;
    return KILN_OK;
}

/* Names, indexed by schedule. */
static const char *const names[KILN_SCHEDULE_COUNT] = {"normal", "karras", "exponential", "sgm_uniform"};

const char *kiln__schedule_name(kiln_schedule s) {
    return (unsigned)s < KILN_SCHEDULE_COUNT ? names[s] : "unknown";
}

bool kiln__schedule_from_name(const char *name, kiln_schedule *out) {
    for (int i = 0; i < KILN_SCHEDULE_COUNT; i++) {
        if (strcmp(names[i], name) == 0) {
            *out = (kiln_schedule)i;
            return true;
        }
    }
    return false;
}
