/* tests/unit/test_matmul_avx2.c - kiln__matmul_fast with AVX-512 masked
 * off (KILN_CPU_DISABLE=avx512f, set before the first feature query), so
 * float weights take the AVX2/FMA/F16C path (or the reference where the
 * CPU lacks AVX2): against kiln__matmul on odd sizes, 1..37 tokens, 1..3
 * threads, and one token alone (its own in-place kernel) gives the batch's
 * bits. */
#include <stdlib.h>

#include "core/cpu.h"
#include "kernels/gemm_avx512.h"
#include "kernels/matmul.h"
#include "tensor/quantize.h"
#include "tensor/tensor.h"
#include "test.h"
#include "test_random.h"

static void check(kiln_dtype type, size_t n_out, size_t n_in, size_t n_tok, int threads) {
    unsigned seed = 3u + (unsigned)(type * 17u + n_out * 5u + n_in + n_tok);
    float *wf = malloc(n_out * n_in * sizeof *wf), *x = malloc(n_tok * n_in * sizeof *x);
    float *ref = malloc(n_tok * n_out * sizeof *ref), *got = malloc(n_tok * n_out * sizeof *got);
    float *one = malloc(n_out * sizeof *one), *scratch = malloc(3 * n_in * sizeof *scratch);
    void *w = malloc(kiln__tensor_bytes(type, n_out * n_in));
    kiln_pool *pool = kiln__pool_create(threads), *single = kiln__pool_create(1);
    REQUIRE(wf && x && ref && got && one && scratch && w && pool && single);
    lcg_fill(wf, n_out * n_in, &seed);
    lcg_fill(x, n_tok * n_in, &seed);
    REQUIRE(kiln__quantize(type, wf, w, n_out * n_in) == KILN_OK);
    REQUIRE(kiln__matmul(single, type, w, n_out, n_in, x, n_tok, ref, scratch) == KILN_OK);
    REQUIRE(kiln__matmul_fast(pool, type, w, n_out, n_in, x, n_tok, got, scratch) == KILN_OK);
    /* error relative to sum |w x| (float32 sums in another order differ by
     * at most about n_in units in the last place of it) */
    double worst = 0.0;
    for (size_t t = 0; t < n_tok; t++)
        for (size_t j = 0; j < n_out; j++) {
            double mag = 1e-30;
            for (size_t i = 0; i < n_in; i++) mag += fabs((double)wf[j * n_in + i] * x[t * n_in + i]);
            double d = fabs((double)got[t * n_out + j] - ref[t * n_out + j]) / (mag * (double)n_in);
            if (d > worst || d != d) worst = d;
        }
    if (!(worst < 2e-7))
        fprintf(stderr, "  %s %zux%zu, %zu tokens: worst %.3g\n", kiln_dtype_name(type), n_out, n_in, n_tok, worst);
    CHECK(worst < 2e-7);
    REQUIRE(kiln__matmul_fast(single, type, w, n_out, n_in, x + (n_tok - 1) * n_in, 1, one, scratch) == KILN_OK);
    CHECK(memcmp(one, got + (n_tok - 1) * n_out, n_out * sizeof *one) == 0);
    free(wf); free(x); free(ref); free(got); free(one); free(scratch); free(w);
    kiln__pool_free(pool);
    kiln__pool_free(single);
}

static void test_masked(void) {
    CHECK(!kiln__cpu()->avx512f);
    CHECK(!kiln__gemm_avx512_usable(KILN_DTYPE_F16));
    fprintf(stderr, "  AVX2 path %s on this CPU\n", kiln__matmul_fast_available() ? "used" : "not available");
}

static void test_float_types(void) {
    const kiln_dtype types[] = {KILN_DTYPE_F32, KILN_DTYPE_F16, KILN_DTYPE_BF16};
    for (size_t k = 0; k < 3; k++)
        for (size_t n_tok = 1; n_tok <= 37; n_tok++) {
            check(types[k], 13, 40, n_tok, 1 + (int)(n_tok % 3));
            check(types[k], 7, 37, n_tok, 1 + (int)(n_tok % 3)); /* reference path: 37 % 8 != 0 */
        }
    check(KILN_DTYPE_F16, 67, 1032, 9, 3);
}

/* One token reads F32/F16/BF16 weights in place, four rows per pass:
 * row counts around the group of 4 and the threads' shares, on 1..3
 * threads, against the reference; with 2 and 5 tokens the last one alone
 * must also give the batch's bits (check's second comparison). */
static void test_one_token(void) {
    const kiln_dtype types[] = {KILN_DTYPE_F32, KILN_DTYPE_F16, KILN_DTYPE_BF16};
    const size_t n_outs[] = {1, 3, 4, 5, 9, 67, 130};
    const size_t n_ins[] = {8, 40, 1032};
    for (size_t k = 0; k < 3; k++)
        for (size_t a = 0; a < sizeof n_outs / sizeof n_outs[0]; a++)
            for (size_t b = 0; b < sizeof n_ins / sizeof n_ins[0]; b++)
                for (int threads = 1; threads <= 3; threads++) {
                    check(types[k], n_outs[a], n_ins[b], 1, threads);
                    check(types[k], n_outs[a], n_ins[b], threads == 3 ? 5 : 2, threads);
                }
}

int main(void) {
    /* before anything asks kiln__cpu() (it caches its first answer) */
    setenv("KILN_CPU_DISABLE", "avx512f", 1);
    RUN(test_masked);
    RUN(test_float_types);
    RUN(test_one_token);
    return TEST_REPORT();
}
