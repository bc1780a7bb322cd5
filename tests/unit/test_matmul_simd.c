/* tests/unit/test_matmul_simd.c - kiln__matmul_fast_float (the vector path
 * chosen at run time) against the scalar reference kiln__matmul, for every
 * weight type, batch size and thread count; and its results do not depend
 * on the batch or the threads. */
#include <stdlib.h>

#include "kernels/matmul.h"
#include "tensor/quantize.h"
#include "tensor/tensor.h"
#include "test.h"
#include "test_random.h"

/* n_out x n_in weights of `type`, 6 activation rows; reference vs fast. */
static void check(kiln_dtype type, size_t n_in, int threads) {
    const size_t n_out = 29, n_tok = 6;
    unsigned seed = 7u + (unsigned)type * 31u + (unsigned)n_in;
    float *wf = malloc(n_out * n_in * sizeof *wf), *x = malloc(n_tok * n_in * sizeof *x);
    float *ref = malloc(n_tok * n_out * sizeof *ref), *got = malloc(n_tok * n_out * sizeof *got);
    float *one = malloc(n_out * sizeof *one);
    void *wq = malloc(kiln__tensor_bytes(type, n_out * n_in));
    float *scratch = malloc(4 * n_in * sizeof *scratch);
    kiln_pool *pool = kiln__pool_create(threads), *single = kiln__pool_create(1);
    REQUIRE(wf && x && ref && got && one && wq && scratch && pool && single);
    lcg_fill(wf, n_out * n_in, &seed);
    lcg_fill(x, n_tok * n_in, &seed);
    REQUIRE(kiln__quantize(type, wf, wq, n_out * n_in) == KILN_OK);
    REQUIRE(kiln__matmul(pool, type, wq, n_out, n_in, x, n_tok, ref, scratch) == KILN_OK);
    REQUIRE(kiln__matmul_fast_float(pool, type, wq, n_out, n_in, x, n_tok, got, scratch) == KILN_OK);
    double worst = max_rel_diff(got, ref, n_tok * n_out, 1.0);
    if (!(worst < 1e-5)) fprintf(stderr, "  %s n_in %zu: worst %.3g\n", kiln_dtype_name(type), n_in, worst);
    CHECK(worst < 1e-5);
    /* row 5 alone on one thread: the same bits as inside the batch */
    REQUIRE(kiln__matmul_fast_float(single, type, wq, n_out, n_in, x + 5 * n_in, 1, one, scratch) == KILN_OK);
    CHECK(memcmp(one, got + 5 * n_out, n_out * sizeof *one) == 0);
    free(wf); free(x); free(ref); free(got); free(one); free(wq); free(scratch);
    kiln__pool_free(pool);
    kiln__pool_free(single);
}

static void test_every_type(void) {
    const kiln_dtype types[] = {KILN_DTYPE_F32, KILN_DTYPE_F16, KILN_DTYPE_BF16, KILN_DTYPE_Q8_0,
                                KILN_DTYPE_Q4_0, KILN_DTYPE_Q4_K, KILN_DTYPE_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        check(types[i], 512, 3);
        check(types[i], 256, 1);
    }
    /* rows that are no multiple of 8 take the reference path */
    check(KILN_DTYPE_F32, 100, 2);
    check(KILN_DTYPE_F16, 36, 2);
    fprintf(stderr, "  vector path %s on this CPU\n", kiln__matmul_fast_available() ? "used" : "not available");
}

static void test_errors(void) {
    kiln_pool *pool = kiln__pool_create(1);
    REQUIRE(pool);
    float x[64] = {0}, y[4], scratch[64];
    uint32_t w[64] = {0};
    CHECK_EQ_INT(kiln__matmul_fast_float(pool, KILN_DTYPE_I32, w, 1, 64, x, 1, y, scratch), KILN_ERR_UNSUPPORTED);
    CHECK_EQ_INT(kiln__matmul_fast_float(pool, KILN_DTYPE_Q8_0, w, 1, 48, x, 1, y, scratch), KILN_ERR_INVALID_ARG);
    kiln__pool_free(pool);
}

int main(void) {
    RUN(test_every_type);
    RUN(test_errors);
    return TEST_REPORT();
}
