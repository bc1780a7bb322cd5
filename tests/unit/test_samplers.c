/* tests/unit/test_samplers.c - noise schedules, the samplers, the
 * epsilon/v denoiser and CFG.
 *
 * tests/data/image/samplers.json comes from k-diffusion (schedules, Euler,
 * Euler a, Heun, DPM++ 2M, DPM++ 2M SDE around CompVisDenoiser /
 * CompVisVDenoiser) and diffusers (DDIM, LCM), run by
 * tools/image_goldens/make_sampler_goldens.py on a toy model that this file
 * computes the same way:
 *     out = 0.8 * x_in + 0.1 * cos(0.01 * t + 0.37 * k)
 * with the initial latent and all noise from torch's CPU generator (kiln's
 * KILN_RNG_CPU gives the same numbers). Each step's latent must match to a
 * relative error (max |diff| / max |value|) below 1e-4.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>

#include "image/denoiser.h"
#include "image/rng.h"
#include "image/samplers.h"
#include "image/schedules.h"
#include "kiln/kiln.h"
#include "test.h"

#define GOLDEN KILN_SOURCE_DIR "/tests/data/image/samplers.json"
#define TOL 1e-4

static json_t *load_goldens(void) {
    json_error_t err;
    json_t *root = json_load_file(GOLDEN, 0, &err);
    if (!root) fprintf(stderr, "  %s: %s\n", GOLDEN, err.text);
    return root;
}

/* max |a - b| / max |b| over n values. */
static double rel_err(const float *a, const json_t *b, size_t n) {
    double num = 0, den = 0;
    for (size_t k = 0; k < n; k++) {
        double w = json_real_value(json_array_get(b, k));
        double d = fabs((double)a[k] - w);
        if (d > num) num = d;
        if (fabs(w) > den) den = fabs(w);
    }
    return den > 0 ? num / den : num;
}

static void test_model_sigmas(void) {
    json_t *root = load_goldens();
    REQUIRE(root != NULL);
    kiln_noise_levels l;
    kiln__noise_levels_sd(&l, KILN_ALPHAS_LDM);
    const json_t *ms = json_object_get(root, "model_sigmas");
    for (int i = 0; i < 3; i++) {
        CHECK_NEAR(l.sigmas[i], json_real_value(json_array_get(json_object_get(ms, "first"), (size_t)i)), 1e-6);
        CHECK_NEAR(l.sigmas[997 + i], json_real_value(json_array_get(json_object_get(ms, "last"), (size_t)i)), 1e-6);
    }
    /* sigma_to_t inverts t_to_sigma. */
    CHECK_NEAR(kiln__sigma_to_t(&l, kiln__t_to_sigma(&l, 123.25)), 123.25, 1e-9);
    CHECK_NEAR(kiln__sigma_to_t(&l, l.sigmas[999]), 999, 1e-9);
    CHECK_NEAR(kiln__sigma_to_t(&l, 1e-3), 0, 1e-12); /* below the range: clamped */
    json_decref(root);
}

static void test_schedule_goldens(void) {
    json_t *root = load_goldens();
    REQUIRE(root != NULL);
    kiln_noise_levels l;
    kiln__noise_levels_sd(&l, KILN_ALPHAS_LDM);
    size_t i;
    json_t *s;
    int count = 0;
    json_array_foreach(json_object_get(root, "schedules"), i, s) {
        kiln_schedule kind;
        REQUIRE(kiln__schedule_from_name(json_string_value(json_object_get(s, "schedule")), &kind));
        int steps = (int)json_integer_value(json_object_get(s, "steps"));
        const json_t *want = json_object_get(s, "sigmas");
        double got[32];
        REQUIRE(steps + 1 <= 32 && json_array_size(want) == (size_t)steps + 1);
        CHECK_EQ_INT(kiln__schedule_sigmas(&l, kind, steps, got), KILN_OK);
        for (int k = 0; k <= steps; k++) {
            double w = json_real_value(json_array_get(want, (size_t)k));
            if (!(fabs(got[k] - w) <= 2e-6 * fabs(w)))
                TEST_FAIL_AT_("%s %d steps, sigma %d: %.9g, k-diffusion %.9g", kiln__schedule_name(kind), steps, k,
                              got[k], w);
        }
        count++;
    }
    CHECK_EQ_INT(count, 16);
    double out[2];
    CHECK_EQ_INT(kiln__schedule_sigmas(&l, KILN_SCHEDULE_KARRAS, 0, out), KILN_ERR_INVALID_ARG);
    json_decref(root);
}

/* ---- the toy model ---- */

/* 0.8 x_in + 0.1 cos(0.01 t + 0.37 k), in float32 as torch computes it. */
static kiln_status toy_model(void *user, const float *x_in, double t, float *out, size_t n) {
    (void)user;
    float tf = (float)t;
    for (size_t k = 0; k < n; k++) {
        float arg = tf * 0.01f + (float)k * 0.37f;
        out[k] = x_in[k] * 0.8f + 0.1f * cosf(arg);
    }
    return KILN_OK;
}

/* Run one golden sampler run; returns the worst relative error. */
static double run_golden(const json_t *run, int *failed) {
    const char *name = json_string_value(json_object_get(run, "sampler"));
    kiln_img_sampler_kind kind;
    if (!kiln__img_sampler_from_name(name, &kind)) {
        (*failed)++;
        return INFINITY;
    }
    kiln_img_sampler_params p = kiln__img_sampler_default_params(kind);
    p.sde_noise_from_rng = true; /* the golden's dpmpp_2m_sde draws torch.randn_like (test_brownian.c: the tree) */
    p.steps = (int)json_integer_value(json_object_get(run, "steps"));
    const json_t *sched = json_object_get(run, "schedule");
    if (sched && !kiln__schedule_from_name(json_string_value(sched), &p.schedule)) (*failed)++;
    if (json_object_get(run, "eta")) p.eta = json_real_value(json_object_get(run, "eta"));
    bool v = strcmp(json_string_value(json_object_get(run, "pred")), "v") == 0;
    const size_t n = 64;

    kiln_img_sampler s;
    kiln_compvis_denoiser d;
    if (kiln__img_sampler_init(&s, &p, n) != KILN_OK ||
        kiln__compvis_init(&d, v ? KILN_PRED_V : KILN_PRED_EPS, toy_model, NULL, n) != KILN_OK) {
        fprintf(stderr, "  %s: %s\n", name, kiln_last_error());
        (*failed)++;
        return INFINITY;
    }
    /* The plan: sigmas (k-diffusion) or timesteps (diffusers). */
    const json_t *sig = json_object_get(run, "sigmas"), *ts = json_object_get(run, "timesteps");
    for (int i = 0; sig && i <= p.steps; i++) {
        double w = json_real_value(json_array_get(sig, (size_t)i));
        if (!(fabs(s.sigmas[i] - w) <= 2e-6 * fabs(w))) {
            fprintf(stderr, "  %s: sigma %d is %.9g, k-diffusion's %.9g\n", name, i, s.sigmas[i], w);
            (*failed)++;
        }
    }
    for (int i = 0; ts && i < p.steps; i++) {
        if (s.timesteps[i] != (double)json_integer_value(json_array_get(ts, (size_t)i))) {
            fprintf(stderr, "  %s: timestep %d is %g\n", name, i, s.timesteps[i]);
            (*failed)++;
        }
    }
    kiln_rng rng;
    kiln__rng_init(&rng, KILN_RNG_CPU, (uint64_t)json_integer_value(json_object_get(run, "seed")));
    float x[64], scaled[64];
    kiln__rng_randn(&rng, x, n);
    double scale = kiln__img_sampler_noise_scale(&s, 0);
    for (size_t k = 0; k < n; k++) x[k] = (float)(x[k] * scale);
    double worst = 0;
    const json_t *xs = json_object_get(run, "x");
    if (json_array_size(xs) != (size_t)p.steps) (*failed)++;
    for (int i = 0; i < p.steps; i++) {
        if (kiln__img_sampler_step(&s, i, x, kiln__compvis_denoise, &d, &rng) != KILN_OK) {
            fprintf(stderr, "  %s step %d: %s\n", name, i, kiln_last_error());
            (*failed)++;
            break;
        }
        /* diffusers records its latents x_t; k-diffusion its x. */
        double ls = ts ? kiln__img_sampler_latent_scale(&s, i) : 1.0;
        for (size_t k = 0; k < n; k++) scaled[k] = (float)(x[k] * ls);
        double e = rel_err(scaled, json_array_get(xs, (size_t)i), n);
        if (e > worst) worst = e;
        if (!(e < TOL)) {
            fprintf(stderr, "  %s (%s, %s) step %d: relative error %.3g\n", name,
                    sched ? json_string_value(sched) : "-", v ? "v" : "eps", i, e);
            (*failed)++;
        }
    }
    kiln__compvis_free(&d);
    kiln__img_sampler_free(&s);
    return worst;
}

static void test_sampler_goldens(void) {
    json_t *root = load_goldens();
    REQUIRE(root != NULL);
    size_t i;
    json_t *run;
    int failed = 0, seen[KILN_SAMPLER_COUNT] = {0};
    json_array_foreach(json_object_get(root, "runs"), i, run) {
        kiln_img_sampler_kind kind;
        if (kiln__img_sampler_from_name(json_string_value(json_object_get(run, "sampler")), &kind)) seen[kind]++;
        double worst = run_golden(run, &failed);
        fprintf(stderr, "  %-13s %-12s %-3s worst relative error %.2g\n",
                json_string_value(json_object_get(run, "sampler")),
                json_object_get(run, "schedule") ? json_string_value(json_object_get(run, "schedule")) : "-",
                json_string_value(json_object_get(run, "pred")), worst);
    }
    CHECK_EQ_INT(failed, 0);
    for (int k = 0; k < KILN_SAMPLER_COUNT; k++)
        if (!seen[k]) TEST_FAIL_AT_("no golden run for %s", kiln__img_sampler_name((kiln_img_sampler_kind)k));
    json_decref(root);
}

/* ---- errors and the small helpers ---- */

static int calls;

static kiln_status cancel_on_second(void *user, const float *x, double sigma, double t, float *den, size_t n) {
    (void)user;
    (void)sigma;
    (void)t;
    memcpy(den, x, n * sizeof *x);
    return ++calls == 2 ? KILN_ERR_CANCELLED : KILN_OK;
}

static void test_errors(void) {
    kiln_img_sampler s;
    kiln_img_sampler_params p = kiln__img_sampler_default_params(KILN_SAMPLER_EULER);
    p.steps = 0;
    CHECK_EQ_INT(kiln__img_sampler_init(&s, &p, 16), KILN_ERR_INVALID_ARG);
    p = kiln__img_sampler_default_params(KILN_SAMPLER_LCM);
    p.steps = 51;
    CHECK_EQ_INT(kiln__img_sampler_init(&s, &p, 16), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "at most 50");
    p = kiln__img_sampler_default_params(KILN_SAMPLER_DDIM);
    p.steps = 1000;
    CHECK_EQ_INT(kiln__img_sampler_init(&s, &p, 16), KILN_ERR_INVALID_ARG);
    p = kiln__img_sampler_default_params(KILN_SAMPLER_EULER_A);
    p.eta = -1;
    CHECK_EQ_INT(kiln__img_sampler_init(&s, &p, 16), KILN_ERR_INVALID_ARG);
    CHECK_EQ_INT(kiln__img_sampler_init(&s, &(kiln_img_sampler_params){p.kind, p.schedule, 5, 1, 1, 50, false}, 0),
                 KILN_ERR_INVALID_ARG);

    /* Steps go in order; noisy samplers need a generator; a denoiser's
     * failure comes back. */
    p = kiln__img_sampler_default_params(KILN_SAMPLER_EULER_A);
    p.steps = 4;
    REQUIRE(kiln__img_sampler_init(&s, &p, 16) == KILN_OK);
    float x[16] = {0};
    CHECK_EQ_INT(kiln__img_sampler_step(&s, 0, x, cancel_on_second, NULL, NULL), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "random number generator");
    kiln_rng rng;
    kiln__rng_init(&rng, KILN_RNG_CPU, 1);
    calls = 0;
    CHECK_EQ_INT(kiln__img_sampler_step(&s, 1, x, cancel_on_second, NULL, &rng), KILN_OK); /* img2img: start at 1 */
    CHECK_EQ_INT(kiln__img_sampler_step(&s, 3, x, cancel_on_second, NULL, &rng), KILN_ERR_INVALID_ARG);
    CHECK_EQ_INT(kiln__img_sampler_step(&s, 2, x, cancel_on_second, NULL, &rng), KILN_ERR_CANCELLED);
    CHECK_EQ_INT(kiln__img_sampler_step(&s, 4, x, cancel_on_second, NULL, &rng), KILN_ERR_INVALID_ARG);
    kiln__img_sampler_free(&s);
    kiln__img_sampler_free(&s); /* twice is fine */

    /* Heun calls the denoiser twice per step but the last; Euler once. */
    p = kiln__img_sampler_default_params(KILN_SAMPLER_HEUN);
    p.steps = 3;
    REQUIRE(kiln__img_sampler_init(&s, &p, 16) == KILN_OK);
    calls = -100;
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(kiln__img_sampler_step(&s, i, x, cancel_on_second, NULL, NULL), KILN_OK);
    CHECK_EQ_INT(calls, -100 + 5);
    kiln__img_sampler_free(&s);
}

static kiln_status constant_model(void *user, const float *x_in, double t, float *out, size_t n) {
    (void)t;
    for (size_t k = 0; k < n; k++) out[k] = *(const float *)user + 0.0f * x_in[k];
    return KILN_OK;
}

static void test_denoiser_and_cfg(void) {
    /* sigma 2: c_in = 1/sqrt(5); eps: x - 2 eps; v: x/5 - 2 v/sqrt(5). */
    float value = 0.5f, x[3] = {1, -2, 4}, den[3];
    kiln_compvis_denoiser d;
    REQUIRE(kiln__compvis_init(&d, KILN_PRED_EPS, constant_model, &value, 3) == KILN_OK);
    CHECK_EQ_INT(kiln__compvis_denoise(&d, x, 2.0, 500, den, 3), KILN_OK);
    CHECK_NEAR(den[0], 0.0, 1e-7);
    CHECK_NEAR(den[1], -3.0, 1e-7);
    CHECK_NEAR(den[2], 3.0, 1e-7);
    CHECK_NEAR(d.x_in[2], 4 / sqrt(5.0), 1e-7);
    CHECK_EQ_INT(kiln__compvis_denoise(&d, x, 2.0, 500, den, 4), KILN_ERR_INVALID_ARG);
    kiln__compvis_free(&d);
    REQUIRE(kiln__compvis_init(&d, KILN_PRED_V, constant_model, &value, 3) == KILN_OK);
    CHECK_EQ_INT(kiln__compvis_denoise(&d, x, 2.0, 500, den, 3), KILN_OK);
    CHECK_NEAR(den[0], 1.0 / 5 - 2 * 0.5 / sqrt(5.0), 1e-7);
    CHECK_NEAR(den[2], 4.0 / 5 - 2 * 0.5 / sqrt(5.0), 1e-7);
    kiln__compvis_free(&d);
    CHECK_EQ_INT(kiln__compvis_init(&d, KILN_PRED_EPS, constant_model, &value, 0), KILN_ERR_INVALID_ARG);

    float cond[2] = {1, 2}, uncond[2] = {0.5f, 3}, out[2];
    kiln__cfg_combine(out, cond, uncond, 7.5f, 2);
    CHECK_NEAR(out[0], 0.5 + 0.5 * 7.5, 1e-6);
    CHECK_NEAR(out[1], 3 - 1 * 7.5, 1e-6);
    kiln__cfg_combine(cond, cond, uncond, 1.0f, 2); /* scale 1: the conditional output */
    CHECK(cond[0] == 1.0f && cond[1] == 2.0f);
}

static void test_names(void) {
    for (int i = 0; i < KILN_SAMPLER_COUNT; i++) {
        kiln_img_sampler_kind k;
        CHECK(kiln__img_sampler_from_name(kiln__img_sampler_name((kiln_img_sampler_kind)i), &k) && (int)k == i);
    }
    for (int i = 0; i < KILN_SCHEDULE_COUNT; i++) {
        kiln_schedule k;
        CHECK(kiln__schedule_from_name(kiln__schedule_name((kiln_schedule)i), &k) && (int)k == i);
    }
    kiln_schedule k;
    CHECK(!kiln__schedule_from_name("linear", &k));
    CHECK_EQ_STR(kiln__img_sampler_name(KILN_SAMPLER_DPMPP_2M_SDE), "dpmpp_2m_sde");
}

int main(void) {
    RUN(test_model_sigmas);
    RUN(test_schedule_goldens);
    RUN(test_sampler_goldens);
    RUN(test_errors);
    RUN(test_denoiser_and_cfg);
    RUN(test_names);
    return TEST_REPORT();
}
