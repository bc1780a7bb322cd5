/* tests/unit/test_image_rng.c - kiln's PyTorch-compatible generators.
 *
 * CPU: tests/data/image/rng/cpu.json holds what Debian's PyTorch gave for
 * torch.manual_seed(seed) followed by successive torch.randn calls, with its
 * AVX2 kernel ("cpu") and its portable kernel ("cpu-scalar")
 * (tools/image_goldens/make_rng_goldens.py); kiln must give the same bits.
 * MT19937 is also checked against the C++ standard's required value.
 * CUDA: Philox4x32-10 against Random123's known-answer vectors, and
 * torch.randn on the CUDA generator against tests/data/image/rng/cuda.json
 * when present (made on a GPU by make_cuda_rng_goldens.py) and against the
 * seed-0 values AUTOMATIC1111 publishes for its CPU copy of that generator.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "image/rng.h"
#include "test.h"

#define RNG_DIR KILN_SOURCE_DIR "/tests/data/image/rng"

static uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* FNV-1a 64 of the values' little-endian bytes, as the golden script. */
static uint64_t fnv1a64(const float *v, size_t n) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = float_bits(v[i]);
        for (int b = 0; b < 4; b++) {
            h ^= (u >> (8 * b)) & 0xFFu;
            h *= 0x100000001B3ull;
        }
    }
    return h;
}

/* Compare one randn call with its golden; returns the number of values
 * (or 1 for a hash) that differ and prints the first. */
static int check_call(const char *what, const json_t *call, const float *got, size_t n) {
    const json_t *bits = json_object_get(call, "bits");
    if (!bits) bits = json_object_get(call, "head");
    int bad = 0;
    size_t i;
    json_t *b;
    json_array_foreach(bits, i, b) {
        uint32_t want = (uint32_t)strtoul(json_string_value(b), NULL, 16);
        if (i < n && float_bits(got[i]) == want) continue;
        if (!bad)
            fprintf(stderr, "  %s: value %zu is %.9g (%08x), torch gave %08x\n", what, i,
                    i < n ? (double)got[i] : 0.0, i < n ? float_bits(got[i]) : 0u, want);
        bad++;
    }
    const json_t *hash = json_object_get(call, "fnv1a64");
    if (hash && strtoull(json_string_value(hash), NULL, 16) != fnv1a64(got, n)) {
        fprintf(stderr, "  %s: the hash of all %zu values differs\n", what, n);
        bad++;
    }
    return bad;
}

static void test_cpu_goldens(void) {
    json_error_t err;
    json_t *root = json_load_file(RNG_DIR "/cpu.json", 0, &err);
    REQUIRE(root != NULL);
    const json_t *kernels = json_object_get(root, "kernels");
    const char *name;
    json_t *cases;
    int n_kernels = 0, n_calls = 0;
    json_object_foreach((json_t *)kernels, name, cases) {
        kiln_rng_kind kind;
        REQUIRE(kiln__rng_kind_from_name(name, &kind));
        n_kernels++;
        size_t i;
        json_t *c;
        json_array_foreach(cases, i, c) {
            uint64_t seed = strtoull(json_string_value(json_object_get(c, "seed")), NULL, 10);
            kiln_rng r;
            kiln__rng_init(&r, kind, seed);
            size_t k;
            json_t *call;
            json_array_foreach(json_object_get(c, "calls"), k, call) {
                size_t n = (size_t)json_integer_value(json_object_get(call, "n"));
                float *v = malloc(n * sizeof *v);
                REQUIRE(v != NULL);
                kiln__rng_randn(&r, v, n);
                char what[128];
                snprintf(what, sizeof what, "%s seed %llu call %zu (n=%zu)", name, (unsigned long long)seed, k, n);
                if (check_call(what, call, v, n)) test_failures_++;
                free(v);
                n_calls++;
            }
        }
    }
    CHECK_EQ_INT(n_kernels, 2);
    CHECK(n_calls >= 20);
    json_decref(root);
}

static void test_mt19937_standard_value(void) {
    /* C++11 [rand.predef]: the 10000th output of a default-constructed
     * mt19937 (seed 5489) is 4123659995. */
    kiln_rng r;
    kiln__rng_init(&r, KILN_RNG_CPU, 5489);
    uint32_t v = 0;
    for (int i = 0; i < 10000; i++) v = kiln__rng_u32(&r);
    CHECK_EQ_INT(v, 4123659995u);
    /* The seed's high half is ignored, as in PyTorch. */
    kiln_rng a, b;
    kiln__rng_init(&a, KILN_RNG_CPU, 7);
    kiln__rng_init(&b, KILN_RNG_CPU, (UINT64_C(3) << 32) | 7);
    CHECK_EQ_INT(kiln__rng_u32(&a), kiln__rng_u32(&b));
}

static void test_philox_known_answers(void) {
    /* Random123's kat_vectors for philox4x32_10: counter, key, result. */
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e,
         0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb,
         0x5001e420, 0x24126ea1},
    };
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        kiln__philox4x32_10(kat[i], kat[i] + 4, out);
        for (int k = 0; k < 4; k++) CHECK_EQ_INT(out[k], kat[i][6 + k]);
    }
}

static void test_cuda_published_values(void) {
    /* AUTOMATIC1111's modules/rng_philox.py documents what its CPU copy of
     * the CUDA generator gives for seed 0 and shape (3, 4) (8 significant
     * digits). It evaluates Box-Muller in double precision from the exact
     * 32-bit words, kiln from the words rounded to float as curand does:
     * the two agree to 1e-6. */
    static const double want[12] = {-0.92466259, -0.42534415, -2.6438457,  0.14518388,
                                    -0.12086647, -0.57972564, -0.62285122, -0.32838709,
                                    -1.07454231, -0.36314407, -1.67105067, 2.26550497};
    kiln_rng r;
    kiln__rng_init(&r, KILN_RNG_CUDA, 0);
    float v[12];
    kiln__rng_randn(&r, v, 12);
    for (int i = 0; i < 12; i++) CHECK(fabs((double)v[i] - want[i]) <= 1e-6);
    CHECK_EQ_INT(r.philox_offset, 4);
}

/* How far kiln's CUDA generator may be from a GPU's: the GPU evaluates
 * sin and log with its fast approximate functions (absolute error about
 * 2^-21 for the sine, times the radius), kiln in double precision. */
#define CUDA_ABS_TOL 2.5e-6

static void test_cuda_goldens(void) {
    json_error_t err;
    json_t *root = json_load_file(RNG_DIR "/cuda.json", 0, &err);
    if (!root) SKIP_TEST("no %s/cuda.json (made on a GPU)", RNG_DIR);
    size_t i, n_values = 0, n_exact = 0;
    double worst = 0.0;
    json_t *c;
    json_array_foreach(json_object_get(root, "cases"), i, c) {
        uint64_t seed = strtoull(json_string_value(json_object_get(c, "seed")), NULL, 10);
        kiln_rng r;
        kiln__rng_init(&r, KILN_RNG_CUDA, seed);
        size_t k;
        json_t *call;
        json_array_foreach(json_object_get(c, "calls"), k, call) {
            size_t n = (size_t)json_integer_value(json_object_get(call, "n"));
            size_t stride = (size_t)json_integer_value(json_object_get(call, "stride"));
            float *v = malloc(n * sizeof *v);
            REQUIRE(v != NULL && stride >= 1);
            kiln__rng_randn(&r, v, n);
            size_t j;
            json_t *b;
            json_array_foreach(json_object_get(call, "bits"), j, b) {
                uint32_t want = (uint32_t)strtoul(json_string_value(b), NULL, 16);
                float wf;
                memcpy(&wf, &want, sizeof wf);
                size_t at = j * stride;
                REQUIRE(at < n);
                double d = fabs((double)v[at] - (double)wf);
                if (d > worst) worst = d;
                if (float_bits(v[at]) == want) n_exact++;
                if (d > CUDA_ABS_TOL)
                    TEST_FAIL_AT_("seed %llu call %zu value %zu: %.9g, the GPU gave %.9g", (unsigned long long)seed,
                                  k, at, (double)v[at], (double)wf);
                n_values++;
            }
            free(v);
        }
    }
    fprintf(stderr, "  %zu values from %s: %zu identical, largest difference %.3g\n", n_values,
            json_string_value(json_object_get(root, "device")), n_exact, worst);
    CHECK(n_values > 1000);
    json_decref(root);
}

static void test_kind_names(void) {
    kiln_rng_kind k;
    for (int i = 0; i < KILN_RNG_KIND_COUNT; i++) {
        CHECK(kiln__rng_kind_from_name(kiln__rng_kind_name((kiln_rng_kind)i), &k));
        CHECK_EQ_INT(k, i);
    }
    CHECK(!kiln__rng_kind_from_name("gpu", &k));
    CHECK_EQ_STR(kiln__rng_kind_name(KILN_RNG_CUDA), "cuda");
}

int main(void) {
    RUN(test_cpu_goldens);
    RUN(test_mt19937_standard_value);
    RUN(test_philox_known_answers);
    RUN(test_cuda_published_values);
    RUN(test_cuda_goldens);
    RUN(test_kind_names);
    return TEST_REPORT();
}
