/* src/image/samplers.h - the diffusion samplers (internal).
 *
 * Every sampler works in k-diffusion's space, x = x0 + sigma * eps, and
 * reaches the model through a denoiser callback D(x, sigma) -> x0 estimate
 * (denoiser.h wraps an epsilon or v model into one; tests plug in toy
 * functions). One call of kiln__img_sampler_step() takes one step; steps must
 * come in order, starting anywhere (img2img starts part way).
 *
 *   euler         k-diffusion sample_euler (no churn)
 *   euler_a       sample_euler_ancestral (eta, s_noise)
 *   heun          sample_heun (no churn): two model calls per step but the last
 *   dpmpp_2m      sample_dpmpp_2m
 *   dpmpp_2m_sde  sample_dpmpp_2m_sde, midpoint, with k-diffusion's default
 *                 noise as A1111 seeds it: a Brownian tree (brownian.h) over
 *                 [smallest nonzero sigma, sigma of the first step taken],
 *                 seeded with the kiln_rng's seed and drawing from its kind
 *                 of generator; or, with sde_noise_from_rng, plain randn
 *                 from the kiln_rng (diffusers' sde-dpmsolver++)
 *   ddim          diffusers' DDIMScheduler (timestep_spacing "leading",
 *                 steps_offset 1, set_alpha_to_one False, eta), rewritten in
 *                 k-diffusion's space: on its own timesteps, DDIM with eta 0
 *                 is an Euler step
 *   lcm           diffusers' LCMScheduler (original_inference_steps,
 *                 timestep_scaling 10, sigma_data 0.5)
 * The k-diffusion samplers use the noise levels of KILN_ALPHAS_LDM and a
 * schedule (schedules.h); DDIM and LCM use KILN_ALPHAS_DIFFUSERS and their
 * own timesteps. Noise comes from a kiln_rng, one randn call of the latent's
 * size per noisy step, as the references draw it.
 *
 * Precision: latents are float32, every coefficient is double; results
 * match the references (float32 torch) to about 1e-5 relative.
 */
#ifndef KILN_IMAGE_SAMPLERS_H
#define KILN_IMAGE_SAMPLERS_H

#include <stdbool.h>
#include <stddef.h>

#include "image/brownian.h"
#include "image/rng.h"
#include "image/schedules.h"
#include "kiln/status.h"

/* A sampler. */
typedef enum kiln_img_sampler_kind {
    KILN_SAMPLER_EULER,        /* "euler" */
    KILN_SAMPLER_EULER_A,      /* "euler_a" */
    KILN_SAMPLER_HEUN,         /* "heun" */
    KILN_SAMPLER_DPMPP_2M,     /* "dpmpp_2m" */
    KILN_SAMPLER_DPMPP_2M_SDE, /* "dpmpp_2m_sde" */
    KILN_SAMPLER_DDIM,         /* "ddim" */
    KILN_SAMPLER_LCM,          /* "lcm" */
} kiln_img_sampler_kind;

/* Number of samplers. */
#define KILN_SAMPLER_COUNT 7

/* The denoiser: write to denoised[0..n) the model's estimate of the clean
 * latent for x[0..n) at noise level sigma. t is the model timestep that
 * belongs to that step (k-diffusion's sigma_to_t(sigma), or DDIM's and
 * LCM's integer timestep). A status other than KILN_OK stops the sampler
 * and is returned (KILN_ERR_CANCELLED to cancel). */
typedef kiln_status (*kiln_denoise_fn)(void *user, const float *x, double sigma, double t, float *denoised,
                                       size_t n);

/* Options of a sampler. */
typedef struct kiln_img_sampler_params {
    kiln_img_sampler_kind kind;  /* which sampler */
    kiln_schedule schedule;  /* the sigmas of the k-diffusion samplers (DDIM and LCM
                                have their own timesteps) */
    int steps;               /* sampling steps, 1..KILN_MAX_STEPS (LCM: at most
                                lcm_original_steps) */
    double eta;              /* noise of euler_a and dpmpp_2m_sde (1 by default) and of
                                ddim (0 by default); others ignore it */
    double s_noise;          /* multiplier of the added noise (1) */
    int lcm_original_steps;  /* LCM's original_inference_steps (50) */
    bool sde_noise_from_rng; /* dpmpp_2m_sde: noise from randn of the kiln_rng instead of
                                k-diffusion's Brownian tree (false: the tree, as A1111) */
} kiln_img_sampler_params;

/* Defaults for a sampler: the normal schedule, 20 steps (LCM: 4), eta 1 for
 * euler_a and dpmpp_2m_sde and 0 for ddim, s_noise 1, 50 LCM steps. */
kiln_img_sampler_params kiln__img_sampler_default_params(kiln_img_sampler_kind kind);

/* A sampler's plan and scratch memory. */
typedef struct kiln_img_sampler {
    kiln_img_sampler_params p;     /* the options */
    size_t n;                  /* latent elements */
    double *sigmas;            /* [steps + 1] the noise level before each step, then after
                                  the last (0, except DDIM: the sigma of alphas_cumprod[0]) */
    double *timesteps;         /* [steps] the model timestep of each step */
    kiln_noise_levels *levels; /* the noise levels the plan came from */
    float *denoised;           /* [n] the current denoiser output */
    float *old_denoised;       /* [n] DPM++: the previous step's; Heun: the second
                                  evaluation's */
    float *tmp;                /* [n] Heun's midpoint, or noise */
    bool has_old;              /* DPM++: old_denoised and h_last are from the step before */
    double h_last;             /* DPM++ 2M SDE: that step's h */
    kiln_brownian tree;        /* DPM++ 2M SDE: its Brownian tree (set up at the first noisy
                                  step, from the rng's seed and kind) */
    bool has_tree;             /* tree is set up */
    int last_step;             /* the step taken last, or -1 before the first */
} kiln_img_sampler;

/* Plan a sampler for latents of n elements. Release with
 * kiln__img_sampler_free(). KILN_ERR_INVALID_ARG for bad options. */
kiln_status kiln__img_sampler_init(kiln_img_sampler *s, const kiln_img_sampler_params *p, size_t n);

/* Release a sampler's memory; a zeroed or failed sampler is fine. */
void kiln__img_sampler_free(kiln_img_sampler *s);

/* What to multiply unit noise by to make the starting latent of step
 * `first` in the sampler's space: sigmas[first] for the k-diffusion
 * samplers (A1111), sqrt(1 + sigmas[first]^2) for DDIM and LCM (diffusers'
 * latents times init_noise_sigma 1, in k-diffusion's space). */
double kiln__img_sampler_noise_scale(const kiln_img_sampler *s, int first);

/* Take step i (0..steps-1) on x[0..n): the first step taken may be any,
 * later ones must follow in order. Noise comes from rng (which the noisy
 * samplers need; NULL is allowed for the others). */
kiln_status kiln__img_sampler_step(kiln_img_sampler *s, int i, float *x, kiln_denoise_fn denoise, void *user,
                               kiln_rng *rng);

/* The factor that turns the sampler's latent after step i into the model's
 * latent space (what the VAE decodes, and diffusers' latents):
 * 1 / sqrt(1 + sigmas[i + 1]^2); 1 when that sigma is 0. */
double kiln__img_sampler_latent_scale(const kiln_img_sampler *s, int i);

/* The name of a sampler ("euler", "euler_a", ...); static string. */
const char *kiln__img_sampler_name(kiln_img_sampler_kind k);

/* The sampler called `name`; false when there is none. */
bool kiln__img_sampler_from_name(const char *name, kiln_img_sampler_kind *out);

#endif /* KILN_IMAGE_SAMPLERS_H */
