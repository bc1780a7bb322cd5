/* tests/unit/test_ops.c - the scalar row operations against closed forms,
 * and the fast (AVX-512) element-wise operations against the scalar ones. */
#include <math.h>
#include <string.h>

#include "kernels/ops.h"
#include "test.h"
#include "test_random.h"

static void test_rmsnorm_and_layernorm(void) {
    float x[4] = {1, -2, 3, -4}, w[4] = {1, 2, 1, 0.5f}, out[4];
    kiln__rmsnorm(out, x, w, 4, 0.0f);
    float rms = sqrtf((1 + 4 + 9 + 16) / 4.0f);
    for (int i = 0; i < 4; i++) CHECK_NEAR(out[i], x[i] / rms * w[i], 1e-6);
    float b[4] = {0.5f, 0, 0, -1};
    kiln__layernorm(out, x, w, b, 4, 1e-5f);
    float mean = -0.5f, var = 0;
    for (int i = 0; i < 4; i++) var += (x[i] - mean) * (x[i] - mean) / 4;
    for (int i = 0; i < 4; i++) CHECK_NEAR(out[i], (x[i] - mean) / sqrtf(var + 1e-5f) * w[i] + b[i], 1e-5);
}

static void test_rope_rotates_pairs(void) {
    /* One head of 6 with rot_dim 4: pairs (0,1),(2,3) interleaved; dims 4,5 untouched. */
    float v[6] = {1, 2, 3, 4, 5, 6};
    kiln__rope(v, 1, 6, 4, 3, 10000.0f, NULL, 1.0f, KILN_ROPE_MODE_INTERLEAVED);
    float a0 = 3.0f, a1 = 3.0f / 100.0f; /* theta^(-2i/4) for i = 0, 1 */
    CHECK_NEAR(v[0], 1 * cosf(a0) - 2 * sinf(a0), 1e-5);
    CHECK_NEAR(v[1], 1 * sinf(a0) + 2 * cosf(a0), 1e-5);
    CHECK_NEAR(v[2], 3 * cosf(a1) - 4 * sinf(a1), 1e-5);
    CHECK_NEAR(v[3], 3 * sinf(a1) + 4 * cosf(a1), 1e-5);
    CHECK(v[4] == 5 && v[5] == 6);

    /* NeoX pairs (i, i + half); position 0 is the identity. */
    float n[4] = {1, 2, 3, 4};
    kiln__rope(n, 1, 4, 4, 0, 10000.0f, NULL, 1.0f, KILN_ROPE_MODE_NEOX);
    CHECK(n[0] == 1 && n[1] == 2 && n[2] == 3 && n[3] == 4);
    kiln__rope(n, 1, 4, 4, 2, 10000.0f, NULL, 1.0f, KILN_ROPE_MODE_NEOX);
    CHECK_NEAR(n[0], 1 * cosf(2) - 3 * sinf(2), 1e-5);
    CHECK_NEAR(n[2], 1 * sinf(2) + 3 * cosf(2), 1e-5);

    /* Frequency factors divide the frequency. */
    float f[2] = {1, 0}, ff[1] = {4.0f};
    kiln__rope(f, 1, 2, 2, 8, 10000.0f, ff, 1.0f, KILN_ROPE_MODE_INTERLEAVED);
    CHECK_NEAR(f[0], cosf(2.0f), 1e-5);
}

static void test_softmax_and_activations(void) {
    float x[3] = {1000, 1001, 999};
    kiln__softmax(x, 3);
    CHECK_NEAR(x[0] + x[1] + x[2], 1.0, 1e-6);
    CHECK_NEAR(x[1], 1.0 / (1 + expf(-1) + expf(-2)), 1e-6);
    float g[3] = {0, 2, -30}, u[3] = {5, 1, 1};
    kiln__swiglu(g, u, 3);
    CHECK_NEAR(g[0], 0, 1e-7);
    CHECK_NEAR(g[1], 2 / (1 + expf(-2)), 1e-6);
    CHECK_NEAR(g[2], 0, 1e-9);
    float e[3] = {0, 10, 1};
    kiln__gelu_tanh(e, 3);
    CHECK_NEAR(e[0], 0, 1e-7);
    CHECK_NEAR(e[1], 10, 1e-5);
    CHECK_NEAR(e[2], 0.8411920071f, 1e-6); /* gelu_new(1) */
    float a[3] = {1, 2, 3}, b[3] = {4, 5, 6};
    CHECK_NEAR(kiln__dot_f32(a, b, 3), 32, 1e-7);
}

/* kiln__swiglu_fast against kiln__swiglu: gates over [-120, 120] (both
 * saturated ends of the exp), zeros and signed zeros, rows of 1 to 67
 * values (masked tails); and a value's result is the same bits whether it
 * is computed in a long row or in a row of its own. */
static void test_swiglu_fast(void) {
    enum { N = 67 };
    float g[N], u[N], ref[N], got[N];
    for (int i = 0; i < N; i++) {
        g[i] = frand() * (i % 3 == 0 ? 120.0f : i % 3 == 1 ? 8.0f : 0.5f);
        u[i] = frand() * 4.0f;
    }
    g[5] = 0.0f, g[6] = -0.0f, g[7] = -89.0f, g[8] = 89.0f;
    for (int n = 1; n <= N; n++) {
        memcpy(ref, g, sizeof g);
        memcpy(got, g, sizeof g);
        kiln__swiglu(ref, u, (size_t)n);
        kiln__swiglu_fast(got, u, (size_t)n);
        for (int i = 0; i < n; i++) CHECK_NEAR(got[i], ref[i], 2e-6 * fabsf(ref[i]) + 1e-30);
        for (int i = n; i < N; i++) CHECK(got[i] == g[i]); /* nothing past n written */
    }
    float whole[N];
    memcpy(whole, g, sizeof g);
    kiln__swiglu_fast(whole, u, N);
    for (int i = 0; i < N; i++) {
        float one = g[i];
        kiln__swiglu_fast(&one, &u[i], 1);
        CHECK(memcmp(&one, &whole[i], sizeof one) == 0);
    }
}

int main(void) {
    RUN(test_rmsnorm_and_layernorm);
    RUN(test_swiglu_fast);
    RUN(test_rope_rotates_pairs);
    RUN(test_softmax_and_activations);
    return TEST_REPORT();
}
