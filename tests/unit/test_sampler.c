/* tests/unit/test_sampler.c - penalties, filters, temperature and seeding. */
#include <math.h>
#include <stdlib.h>

#include "kiln/kiln.h"
#include "llm/sampler.h"
#include "test.h"

/* Params with every filter off. */
static kiln_sampling_params plain(float temperature, uint64_t seed) {
    kiln_sampling_params p = kiln_sampling_default_params();
    p.temperature = temperature;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = seed;
    return p;
}

static void test_greedy_takes_argmax(void) {
    kiln_sampling_params p = plain(0.0f, 1);
    float logits[5] = {0.1f, 3.0f, -2.0f, 2.9f, 0.0f};
    kiln_sampler *s = kiln__sampler_create(&p, 5, 0);
    REQUIRE(s != NULL);
    for (int i = 0; i < 10; i++) CHECK_EQ_INT(kiln__sampler_sample(s, logits), 1);
    kiln__sampler_free(s);
}

static void test_penalties_follow_their_formulas(void) {
    float logits[3] = {2.0f, 1.9f, -1.0f};
    /* Frequency: token 0 seen once, 2.0 - 0.06 > 1.9; twice, 2.0 - 0.12 < 1.9. */
    kiln_sampling_params p = plain(0.0f, 1);
    p.frequency_penalty = 0.06f;
    kiln_sampler *s = kiln__sampler_create(&p, 3, 0);
    REQUIRE(s != NULL);
    CHECK_EQ_INT(kiln__sampler_sample(s, logits), 0);
    kiln__sampler_accept(s, 0);
    CHECK_EQ_INT(kiln__sampler_sample(s, logits), 0);
    kiln__sampler_accept(s, 0);
    CHECK_EQ_INT(kiln__sampler_sample(s, logits), 1);
    kiln__sampler_free(s);

    /* Repetition: positive logits divided, negative multiplied. */
    p = plain(0.0f, 1);
    p.repetition_penalty = 1.1f;
    float rep[3] = {2.0f, 1.9f, -1.0f};
    s = kiln__sampler_create(&p, 3, 0);
    REQUIRE(s != NULL);
    kiln__sampler_accept(s, 0); /* 2.0 / 1.1 = 1.818 < 1.9 */
    CHECK_EQ_INT(kiln__sampler_sample(s, rep), 1);
    kiln__sampler_free(s);

    /* The window forgets: penalty_last_n = 2, token 0 pushed out. */
    p = plain(0.0f, 1);
    p.presence_penalty = 1.0f;
    p.penalty_last_n = 2;
    s = kiln__sampler_create(&p, 3, 0);
    REQUIRE(s != NULL);
    kiln__sampler_accept(s, 0);
    CHECK_EQ_INT(kiln__sampler_sample(s, logits), 1);
    kiln__sampler_accept(s, 2);
    kiln__sampler_accept(s, 2);
    CHECK_EQ_INT(kiln__sampler_sample(s, logits), 0);
    kiln__sampler_free(s);
}

/* Draw n tokens and count them. */
static void histogram(kiln_sampler *s, const float *logits, int n, int *counts, int n_vocab) {
    memset(counts, 0, sizeof(int) * (size_t)n_vocab);
    for (int i = 0; i < n; i++) counts[kiln__sampler_sample(s, logits)]++;
}

static void test_temperature_draws_match_softmax(void) {
    float logits[4] = {1.0f, 0.5f, 0.0f, -1.0f};
    for (int t = 0; t < 2; t++) {
        float temp = t == 0 ? 1.0f : 0.5f;
        kiln_sampling_params p = plain(temp, 42);
        kiln_sampler *s = kiln__sampler_create(&p, 4, 0);
        REQUIRE(s != NULL);
        int counts[4];
        const int n = 40000;
        histogram(s, logits, n, counts, 4);
        double z = 0;
        for (int i = 0; i < 4; i++) z += exp(logits[i] / temp);
        for (int i = 0; i < 4; i++) {
            double expect = exp(logits[i] / temp) / z;
            /* Five standard deviations of a binomial proportion. */
            double sd = sqrt(expect * (1 - expect) / n);
            CHECK_NEAR((double)counts[i] / n, expect, 5 * sd);
        }
        kiln__sampler_free(s);
    }
}

static void test_filters_cut_the_tail(void) {
    /* Probabilities 0.5, 0.3, 0.2 at temperature 1. */
    float logits[3] = {logf(0.5f), logf(0.3f), logf(0.2f)};
    int counts[3];

    kiln_sampling_params p = plain(1.0f, 7);
    p.top_k = 1;
    kiln_sampler *s = kiln__sampler_create(&p, 3, 0);
    REQUIRE(s != NULL);
    histogram(s, logits, 2000, counts, 3);
    CHECK_EQ_INT(counts[0], 2000);
    kiln__sampler_free(s);

    p = plain(1.0f, 7);
    p.top_p = 0.7f; /* 0.5 + 0.3 reaches 0.7: keeps two */
    s = kiln__sampler_create(&p, 3, 0);
    REQUIRE(s != NULL);
    histogram(s, logits, 4000, counts, 3);
    CHECK(counts[0] > 0 && counts[1] > 0);
    CHECK_EQ_INT(counts[2], 0);
    CHECK_NEAR(counts[0] / 4000.0, 0.625, 0.04); /* renormalised 0.5 / 0.8 */
    kiln__sampler_free(s);

    p = plain(1.0f, 7);
    p.min_p = 0.5f; /* keeps p >= 0.25 */
    s = kiln__sampler_create(&p, 3, 0);
    REQUIRE(s != NULL);
    histogram(s, logits, 4000, counts, 3);
    CHECK(counts[1] > 0);
    CHECK_EQ_INT(counts[2], 0);
    kiln__sampler_free(s);
}

/* top_k picks the k best of a large vocabulary (a partial selection, not a
 * full sort): equal logits go to the smaller ids, nothing outside the k is
 * ever drawn, and every one of the k is. */
static void test_top_k_of_many(void) {
    enum { N = 3000, K = 40 };
    static float logits[N];
    static int counts[N];
    unsigned seed = 9;
    for (int i = 0; i < N; i++) {
        seed = seed * 1664525u + 1013904223u;
        logits[i] = (float)(seed >> 28) * 0.01f; /* 16 levels: many ties */
    }
    /* the K best by (logit descending, id ascending), found by brute force */
    static int best[N];
    for (int i = 0; i < N; i++) best[i] = 0;
    for (int k = 0; k < K; k++) {
        int b = -1;
        for (int i = 0; i < N; i++)
            if (!best[i] && (b < 0 || logits[i] > logits[b])) b = i;
        best[b] = 1;
    }
    kiln_sampling_params p = plain(50.0f, 3); /* hot: the K nearly uniform */
    p.top_k = K;
    kiln_sampler *s = kiln__sampler_create(&p, N, 0);
    REQUIRE(s != NULL);
    histogram(s, logits, 20000, counts, N);
    int outside = 0, missing = 0;
    for (int i = 0; i < N; i++) {
        if (!best[i] && counts[i]) outside++;
        if (best[i] && !counts[i]) missing++;
    }
    CHECK_EQ_INT(outside, 0);
    CHECK_EQ_INT(missing, 0);
    kiln__sampler_free(s);
}

static void test_same_seed_same_tokens(void) {
    float logits[16];
    for (int i = 0; i < 16; i++) logits[i] = (float)((i * 7) % 5) * 0.3f;
    kiln_sampling_params p = kiln_sampling_default_params();
    p.top_k = 0;
    p.seed = 1234;
    kiln_sampler *a = kiln__sampler_create(&p, 16, 0);
    kiln_sampler *b = kiln__sampler_create(&p, 16, 0);
    p.seed = 1235;
    kiln_sampler *c = kiln__sampler_create(&p, 16, 0);
    REQUIRE(a && b && c);
    int same_ab = 1, same_ac = 1;
    for (int i = 0; i < 64; i++) {
        int32_t ta = kiln__sampler_sample(a, logits), tb = kiln__sampler_sample(b, logits);
        int32_t tc = kiln__sampler_sample(c, logits);
        same_ab &= ta == tb;
        same_ac &= ta == tc;
    }
    CHECK(same_ab);
    CHECK(!same_ac);
    kiln__sampler_free(a);
    kiln__sampler_free(b);
    kiln__sampler_free(c);
}

static void test_bad_params_rejected(void) {
    kiln_sampling_params p = kiln_sampling_default_params();
    p.top_p = 0.0f;
    CHECK(kiln__sampler_create(&p, 10, 0) == NULL);
    CHECK_CONTAINS(kiln_last_error(), "top_p");
    p = kiln_sampling_default_params();
    p.temperature = NAN;
    CHECK(kiln__sampler_create(&p, 10, 0) == NULL);
    p = kiln_sampling_default_params();
    p.repetition_penalty = 0.0f;
    CHECK(kiln__sampler_create(&p, 10, 0) == NULL);
    p = kiln_sampling_default_params();
    CHECK(kiln__sampler_create(&p, 0, 0) == NULL);
    kiln__sampler_free(NULL);
}

int main(void) {
    RUN(test_greedy_takes_argmax);
    RUN(test_penalties_follow_their_formulas);
    RUN(test_temperature_draws_match_softmax);
    RUN(test_filters_cut_the_tail);
    RUN(test_top_k_of_many);
    RUN(test_same_seed_same_tokens);
    RUN(test_bad_params_rejected);
    return TEST_REPORT();
}
