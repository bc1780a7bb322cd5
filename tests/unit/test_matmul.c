/* tests/unit/test_matmul.c - the threaded matmul equals a plain loop over
 * the decoded weights, for every weight type it accepts and any thread count. */
#include <stdlib.h>

#include "kernels/matmul.h"
#include "tensor/dequant.h"
#include "tensor/quantize.h"
#include "tensor/tensor.h"
#include "test.h"
#include "test_random.h"

static void check_type(kiln_dtype type, int threads) {
    const size_t n_out = 37, n_in = 512, n_tok = 3;
    unsigned seed = 99u + (unsigned)type;
    float *wf = malloc(n_out * n_in * sizeof *wf), *x = malloc(n_tok * n_in * sizeof *x);
    float *dec = malloc(n_out * n_in * sizeof *dec), *y = malloc(n_tok * n_out * sizeof *y);
    size_t bytes = kiln__tensor_bytes(type, n_out * n_in);
    void *wq = malloc(bytes);
    kiln_pool *pool = kiln__pool_create(threads);
    float *scratch = malloc((size_t)threads * n_in * sizeof *scratch);
    REQUIRE(wf && x && dec && y && wq && pool && scratch);
    lcg_fill(wf, n_out * n_in, &seed);
    lcg_fill(x, n_tok * n_in, &seed);
    CHECK_EQ_INT(kiln__quantize(type, wf, wq, n_out * n_in), KILN_OK);
    CHECK_EQ_INT(kiln__dequantize(type, wq, dec, n_out * n_in), KILN_OK);
    CHECK_EQ_INT(kiln__matmul(pool, type, wq, n_out, n_in, x, n_tok, y, scratch), KILN_OK);
    for (size_t t = 0; t < n_tok; t++)
        for (size_t j = 0; j < n_out; j++) {
            float ref = 0;
            for (size_t i = 0; i < n_in; i++) ref += dec[j * n_in + i] * x[t * n_in + i];
            CHECK_NEAR(y[t * n_out + j], ref, 1e-5);
        }
    free(wf); free(x); free(dec); free(y); free(wq); free(scratch);
    kiln__pool_free(pool);
}

static void test_every_quantizable_type_and_thread_count(void) {
    kiln_dtype types[] = {KILN_DTYPE_F32, KILN_DTYPE_F16, KILN_DTYPE_BF16, KILN_DTYPE_Q8_0,
                          KILN_DTYPE_Q4_0, KILN_DTYPE_Q4_K, KILN_DTYPE_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        for (int threads = 1; threads <= 3; threads++) check_type(types[i], threads);
}

static void test_rejects_bad_types_and_rows(void) {
    kiln_pool *pool = kiln__pool_create(1);
    REQUIRE(pool != NULL);
    float x[40] = {0}, y[4], scratch[40], w[40] = {0};
    CHECK_EQ_INT(kiln__matmul(pool, KILN_DTYPE_I8, w, 1, 32, x, 1, y, scratch), KILN_ERR_UNSUPPORTED);
    CHECK_EQ_INT(kiln__matmul(pool, KILN_DTYPE_Q8_0, w, 1, 40, x, 1, y, scratch), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "not whole Q8_0 blocks");
    kiln__pool_free(pool);
}

int main(void) {
    RUN(test_every_quantizable_type_and_thread_count);
    RUN(test_rejects_bad_types_and_rows);
    return TEST_REPORT();
}
