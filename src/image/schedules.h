/* src/image/schedules.h - Stable Diffusion's noise levels and the sigma
 * schedules of the samplers (internal).
 *
 * SD 1.x and 2.x were trained on 1000 timesteps with "scaled linear" betas:
 * beta_t = (sqrt(0.00085) + t (sqrt(0.012) - sqrt(0.00085)) / 999)^2, and
 * alphas_cumprod_t = prod_{s<=t} (1 - beta_s). A timestep's noise level is
 * sigma_t = sqrt((1 - alphas_cumprod_t) / alphas_cumprod_t) (0.0292 at t = 0,
 * 14.6146 at t = 999), in k-diffusion's parametrization x = x0 + sigma eps.
 *
 * Two references compute alphas_cumprod with different precision, and kiln
 * follows each where it mirrors it:
 *   KILN_ALPHAS_LDM       float64, then rounded to float32 (ldm's
 *                         register_schedule; k-diffusion and A1111 read it);
 *   KILN_ALPHAS_DIFFUSERS float32 throughout (diffusers' schedulers).
 * They differ by about 1e-6 relative.
 *
 * Schedules (k-diffusion's functions, as A1111 calls them; steps sigmas then
 * a final 0):
 *   normal       get_sigmas(n) of k-diffusion's DiscreteSchedule: n model
 *                timesteps evenly from 999 to 0, each turned into a sigma by
 *                interpolating log sigma (A1111's "Automatic" for these
 *                samplers; its "Normal" and "Uniform" give the same sigmas up
 *                to float rounding);
 *   karras       Karras et al. (2022), rho 7, between the model's smallest
 *                and largest sigma;
 *   exponential  evenly spaced in log sigma between the same two;
 *   sgm_uniform  A1111's "SGM Uniform": n + 1 timesteps evenly from the
 *                largest sigma's to the smallest's, the last dropped.
 */
#ifndef KILN_IMAGE_SCHEDULES_H
#define KILN_IMAGE_SCHEDULES_H

#include <stdbool.h>

#include "kiln/status.h"

/* Training timesteps of SD 1.x / 2.x. */
#define KILN_TRAIN_STEPS 1000

/* Most sampling steps a schedule may have. */
#define KILN_MAX_STEPS 10000

/* How alphas_cumprod is computed (see above). */
typedef enum kiln_alphas_kind {
    KILN_ALPHAS_LDM,       /* float64, stored as float32 */
    KILN_ALPHAS_DIFFUSERS, /* float32 */
} kiln_alphas_kind;

/* The noise levels of the 1000 training timesteps. */
typedef struct kiln_noise_levels {
    double alphas_cumprod[KILN_TRAIN_STEPS]; /* as the reference stores them */
    double sigmas[KILN_TRAIN_STEPS];         /* sqrt((1 - a) / a), increasing with t */
    double log_sigmas[KILN_TRAIN_STEPS];     /* their natural logs */
} kiln_noise_levels;

/* A sigma schedule. */
typedef enum kiln_schedule {
    KILN_SCHEDULE_NORMAL,      /* "normal" */
    KILN_SCHEDULE_KARRAS,      /* "karras" */
    KILN_SCHEDULE_EXPONENTIAL, /* "exponential" */
    KILN_SCHEDULE_SGM_UNIFORM, /* "sgm_uniform" */
} kiln_schedule;

/* Number of schedules. */
#define KILN_SCHEDULE_COUNT 4

/* Fill the noise levels of SD's scaled-linear schedule. */
void kiln__noise_levels_sd(kiln_noise_levels *l, kiln_alphas_kind kind);

/* k-diffusion's DiscreteSchedule.sigma_to_t (not quantized): the continuous
 * timestep of a sigma, interpolating linearly in log sigma between the two
 * training timesteps around it (clamped to 0..999). */
double kiln__sigma_to_t(const kiln_noise_levels *l, double sigma);

/* DiscreteSchedule.t_to_sigma: the sigma of a continuous timestep t in
 * [0, 999]. */
double kiln__t_to_sigma(const kiln_noise_levels *l, double t);

/* The steps + 1 sigmas of a schedule (the last is 0) into out. steps must be
 * 1..KILN_MAX_STEPS (KILN_ERR_INVALID_ARG otherwise). */
kiln_status kiln__schedule_sigmas(const kiln_noise_levels *l, kiln_schedule s, int steps, double *out);

/* The name of a schedule ("normal", "karras", ...); static string. */
const char *kiln__schedule_name(kiln_schedule s);

/* The schedule called `name`; false when there is none. */
bool kiln__schedule_from_name(const char *name, kiln_schedule *out);

#endif /* KILN_IMAGE_SCHEDULES_H */
