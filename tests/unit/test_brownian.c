/* tests/unit/test_brownian.c - k-diffusion's Brownian tree noise for DPM++
 * 2M SDE (src/image/brownian.c) against tests/data/image/brownian.json,
 * made by tools/image_goldens/make_brownian_goldens.py with numpy,
 * k-diffusion 0.1.1 and torchsde 0.2.6 on Debian's PyTorch 1.13:
 * numpy's SeedSequence states exactly; the noise of every step of several
 * trees (seeds below and above 2^32, latents of 8..256 values, a tree that
 * starts part way as A1111's img2img makes it) bit for bit; whole
 * sample_dpmpp_2m_sde runs on the toy model of test_samplers.c with that
 * noise, to RUN_TOL: kiln's sigmas are computed in double and differ from
 * k-diffusion's float32 ones in the last bits, which moves a query time
 * across the tree's 1e-6 grid now and then; the Brownian path is
 * continuous, so the noise then differs by about sqrt(1e-6) of W, 1e-3
 * relative (a wrong seed, key or bridge gives O(1) differences). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image/brownian.h"
#include "image/denoiser.h"
#include "image/rng.h"
#include "image/samplers.h"
#include "kiln/kiln.h"
#include "test.h"

#define GOLDEN KILN_SOURCE_DIR "/tests/data/image/brownian.json"
#define RUN_TOL 2e-3

static json_t *load(void) {
    json_error_t err;
    json_t *root = json_load_file(GOLDEN, 0, &err);
    if (!root) fprintf(stderr, "  %s: %s\n", GOLDEN, err.text);
    return root;
}

/* Float array of a JSON list (n values expected). */
static int floats(const json_t *a, float *out, size_t n) {
    if (!json_is_array(a) || json_array_size(a) != n) return 0;
    for (size_t i = 0; i < n; i++) out[i] = (float)json_number_value(json_array_get(a, i));
    return 1;
}

static void test_seed_sequence(void) {
    json_t *root = load();
    REQUIRE(root != NULL);
    size_t i;
    const json_t *c;
    int checked = 0;
    json_array_foreach(json_object_get(root, "seed_sequences"), i, c) {
        uint64_t ent = strtoull(json_string_value(json_object_get(c, "entropy")), NULL, 10);
        const json_t *key = json_object_get(c, "spawn_key");
        uint32_t got[4];
        if (json_is_array(key))
            kiln__seed_sequence(ent, 1, (uint64_t)json_integer_value(json_array_get(key, 0)),
                                (uint64_t)json_integer_value(json_array_get(key, 1)), got, 4);
        else
            kiln__seed_sequence(ent, 0, 0, 0, got, 4);
        for (int k = 0; k < 4; k++)
            CHECK_EQ_INT((long long)got[k], json_integer_value(json_array_get(json_object_get(c, "state"), k)));
        checked++;
    }
    CHECK(checked >= 6);
    json_decref(root);
}

static void test_noise_bit_exact(void) {
    json_t *root = load();
    REQUIRE(root != NULL);
    size_t i;
    const json_t *c;
    int cases = 0;
    json_array_foreach(json_object_get(root, "noises"), i, c) {
        size_t n = 1, k;
        const json_t *d;
        json_array_foreach(json_object_get(c, "shape"), k, d) n *= (size_t)json_integer_value(d);
        const json_t *sig = json_object_get(c, "sigmas"), *noise = json_object_get(c, "noise");
        size_t ns = json_array_size(sig);
        float *sigmas = malloc(ns * sizeof *sigmas), *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
        REQUIRE(sigmas && want && got && floats(sig, sigmas, ns));
        float lo = sigmas[ns - 2], hi = sigmas[0]; /* Karras: decreasing, then 0 */
        kiln_brownian b;
        uint64_t seed = (uint64_t)json_integer_value(json_object_get(c, "seed"));
        REQUIRE(kiln__brownian_init(&b, seed, KILN_RNG_CPU, lo, hi, n) == KILN_OK);
        size_t steps = json_array_size(noise), mismatched = 0;
        for (size_t s = 0; s < steps; s++) {
            REQUIRE(floats(json_array_get(noise, s), want, n));
            REQUIRE(kiln__brownian_noise(&b, sigmas[s], sigmas[s + 1], got) == KILN_OK);
            for (size_t e = 0; e < n; e++)
                if (memcmp(&got[e], &want[e], sizeof(float)) != 0) mismatched++;
        }
        if (mismatched) fprintf(stderr, "  seed %llu: %zu values differ\n", (unsigned long long)seed, mismatched);
        CHECK(mismatched == 0);
        CHECK(steps >= 3);
        kiln__brownian_free(&b);
        free(sigmas);
        free(want);
        free(got);
        cases++;
    }
    CHECK(cases >= 4);
    json_decref(root);
}

/* The toy model of the sampler goldens: 0.8 * x_in + 0.1 * cos(0.01 t + 0.37 k). */
static kiln_status toy_model(void *user, const float *x_in, double t, float *out, size_t n) {
    (void)user;
    for (size_t k = 0; k < n; k++)
        out[k] = x_in[k] * 0.8f + 0.1f * cosf((float)t * 0.01f + (float)k * 0.37f);
    return KILN_OK;
}

static double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

static void test_dpmpp_2m_sde_runs(void) {
    json_t *root = load();
    REQUIRE(root != NULL);
    size_t i;
    const json_t *run;
    int runs = 0;
    json_array_foreach(json_object_get(root, "runs"), i, run) {
        enum { N = 64 };
        kiln_img_sampler_params p = kiln__img_sampler_default_params(KILN_SAMPLER_DPMPP_2M_SDE);
        p.schedule = KILN_SCHEDULE_KARRAS;
        p.steps = (int)json_integer_value(json_object_get(run, "steps"));
        int first = (int)json_integer_value(json_object_get(run, "first"));
        bool v = strcmp(json_string_value(json_object_get(run, "pred")), "v") == 0;
        kiln_img_sampler s;
        kiln_compvis_denoiser d;
        REQUIRE(kiln__img_sampler_init(&s, &p, N) == KILN_OK);
        REQUIRE(kiln__compvis_init(&d, v ? KILN_PRED_V : KILN_PRED_EPS, toy_model, NULL, N) == KILN_OK);
        float x[N], want[N];
        REQUIRE(floats(json_object_get(run, "x0"), x, N));
        kiln_rng rng;
        kiln__rng_init(&rng, KILN_RNG_CPU, (uint64_t)json_integer_value(json_object_get(run, "seed")));
        const json_t *xs = json_object_get(run, "x");
        double worst = 0;
        for (int st = first; st < p.steps; st++) {
            REQUIRE(kiln__img_sampler_step(&s, st, x, kiln__compvis_denoise, &d, &rng) == KILN_OK);
            REQUIRE(floats(json_array_get(xs, (size_t)(st - first)), want, N));
            double e = 0;
            for (int k = 0; k < N; k++) e = fmax(e, fabs(x[k] - want[k]));
            e /= fmax(max_abs(want, N), 1e-6);
            worst = fmax(worst, e);
        }
        fprintf(stderr, "  %s from step %d: worst rel err %.3g\n", v ? "v" : "eps", first, worst);
        CHECK(worst < RUN_TOL);
        kiln__compvis_free(&d);
        kiln__img_sampler_free(&s);
        runs++;
    }
    CHECK(runs >= 2);
    json_decref(root);
}

static void test_bad_intervals(void) {
    kiln_brownian b;
    CHECK_EQ_INT(kiln__brownian_init(&b, 1, KILN_RNG_CPU, 0.0f, 1.0f, 4), KILN_ERR_INVALID_ARG);
    CHECK_EQ_INT(kiln__brownian_init(&b, 1, KILN_RNG_CPU, 2.0f, 1.0f, 4), KILN_ERR_INVALID_ARG);
    CHECK_EQ_INT(kiln__brownian_init(&b, 1, KILN_RNG_CPU, 0.5f, 1.0f, 0), KILN_ERR_INVALID_ARG);
    kiln__brownian_free(&b);
}

int main(void) {
    RUN(test_seed_sequence);
    RUN(test_noise_bit_exact);
    RUN(test_dpmpp_2m_sde_runs);
    RUN(test_bad_intervals);
    return TEST_REPORT();
}
