/* tests/unit/test_gemm_avx512.c - the AVX-512 float-weight kernels
 * (kiln__gemm_avx512) against the scalar reference kiln__matmul on random
 * data of awkward sizes: odd row counts, 1..37 tokens, rows of lengths that
 * are no multiple of 16 and that cross the partial-sum blocks (kiln__gemm_block), 1..3
 * threads, F32/F16/BF16. Also the summation contract of gemm_avx512.h:
 * every token's results are bit-identical whether it comes alone on one
 * thread or inside any batch on any threads. Skipped (with a message) on a
 * CPU without AVX-512 F/BW/VL. */
#include <stdlib.h>

#include "kernels/gemm_avx512.h"
#include "kernels/matmul.h"
#include "tensor/dequant.h"
#include "tensor/quantize.h"
#include "tensor/tensor.h"
#include "test.h"
#include "test_random.h"

/* Random n_out x n_in weights of `type` (from float, then stored), n_tok
 * activation rows, each pool; fast vs reference and vs one token alone. */
static void check(kiln_dtype type, size_t n_out, size_t n_in, size_t n_tok, kiln_pool *const pools[3]) {
    unsigned seed = 11u + (unsigned)(type * 131u + n_out * 7u + n_in * 3u + n_tok);
    float *wf = malloc(n_out * n_in * sizeof *wf), *x = malloc(n_tok * n_in * sizeof *x);
    float *ref = malloc(n_tok * n_out * sizeof *ref), *got = malloc(n_tok * n_out * sizeof *got);
    float *one = malloc(n_out * sizeof *one), *wd = malloc(n_out * n_in * sizeof *wd);
    float *scratch = malloc(3 * n_in * sizeof *scratch);
    void *w = malloc(kiln__tensor_bytes(type, n_out * n_in));
    REQUIRE(wf && x && ref && got && one && wd && scratch && w);
    lcg_fill(wf, n_out * n_in, &seed);
    lcg_fill(x, n_tok * n_in, &seed);
    REQUIRE(kiln__quantize(type, wf, w, n_out * n_in) == KILN_OK);
    /* the stored weights as floats, for the error bound */
    REQUIRE(kiln__matmul_supports(type));
    REQUIRE(kiln__dequantize(type, w, wd, n_out * n_in) == KILN_OK);
    REQUIRE(kiln__matmul(pools[0], type, w, n_out, n_in, x, n_tok, ref, scratch) == KILN_OK);
    for (int p = 0; p < 3; p++) {
        memset(got, 0xff, n_tok * n_out * sizeof *got); /* NaN: every output must be written */
        kiln__gemm_avx512(pools[p], type, w, n_out, n_in, x, n_tok, got);
        int bad = 0;
        for (size_t t = 0; t < n_tok && !bad; t++) {
            for (size_t j = 0; j < n_out && !bad; j++) {
                /* float32 sums in any order differ by at most ~n_in ulps of sum |w x| */
                double mag = 0.0;
                for (size_t i = 0; i < n_in; i++) mag += fabs((double)wd[j * n_in + i] * x[t * n_in + i]);
                double err = fabs((double)got[t * n_out + j] - ref[t * n_out + j]);
                if (!(err <= 4e-7 * (double)n_in * mag + 1e-30)) {
                    fprintf(stderr, "  %s %zux%zu tok %zu/%zu row %zu, %d threads: %.9g vs %.9g\n",
                            kiln_dtype_name(type), n_out, n_in, t, n_tok, j, p + 1, got[t * n_out + j],
                            ref[t * n_out + j]);
                    bad = 1;
                }
            }
        }
        CHECK(!bad);
    }
    /* each token alone, one thread: the same bits as in the batch (3 threads) */
    for (size_t t = 0; t < n_tok; t++) {
        kiln__gemm_avx512(pools[0], type, w, n_out, n_in, x + t * n_in, 1, one);
        if (memcmp(one, got + t * n_out, n_out * sizeof *one) != 0) {
            fprintf(stderr, "  %s %zux%zu: token %zu of %zu differs alone\n", kiln_dtype_name(type), n_out,
                    n_in, t, n_tok);
            CHECK(0);
            break;
        }
    }
    free(wf); free(x); free(ref); free(got); free(one); free(wd); free(scratch); free(w);
}

static int usable(void) {
    return kiln__gemm_avx512_usable(KILN_DTYPE_F32) && kiln__gemm_avx512_usable(KILN_DTYPE_F16) &&
           kiln__gemm_avx512_usable(KILN_DTYPE_BF16);
}

static void make_pools(kiln_pool *pools[3]) {
    for (int i = 0; i < 3; i++) pools[i] = kiln__pool_create(i + 1);
}

static void free_pools(kiln_pool *pools[3]) {
    for (int i = 0; i < 3; i++) kiln__pool_free(pools[i]);
}

/* Every batch size 1..37 on short odd rows, every type. */
static void test_batch_sizes(void) {
    if (!usable()) SKIP_TEST("this CPU (or KILN_CPU_DISABLE) lacks AVX-512 F/BW/VL");
    kiln_pool *pools[3];
    make_pools(pools);
    REQUIRE(pools[0] && pools[1] && pools[2]);
    const kiln_dtype types[] = {KILN_DTYPE_F32, KILN_DTYPE_F16, KILN_DTYPE_BF16};
    for (size_t k = 0; k < 3; k++)
        for (size_t n_tok = 1; n_tok <= 37; n_tok++) check(types[k], 13, 37, n_tok, pools);
    free_pools(pools);
}

/* Row lengths around 16 and KILN_GEMM_KC_MAX (one, two, three blocks), row counts around 4, 8 and the
 * 64-row chunk. */
static void test_shapes(void) {
    if (!usable()) SKIP_TEST("this CPU (or KILN_CPU_DISABLE) lacks AVX-512 F/BW/VL");
    kiln_pool *pools[3];
    make_pools(pools);
    REQUIRE(pools[0] && pools[1] && pools[2]);
    const kiln_dtype types[] = {KILN_DTYPE_F32, KILN_DTYPE_F16, KILN_DTYPE_BF16};
    const size_t n_ins[] = {1, 15, 16, 17, 100, KILN_GEMM_KC_MAX, KILN_GEMM_KC_MAX + 3, 2 * KILN_GEMM_KC_MAX + 31};
    const size_t n_outs[] = {1, 3, 9, 67, 130};
    const size_t n_toks[] = {1, 2, 5, 9};
    for (size_t k = 0; k < 3; k++)
        for (size_t a = 0; a < sizeof n_ins / sizeof n_ins[0]; a++)
            for (size_t b = 0; b < sizeof n_outs / sizeof n_outs[0]; b++)
                for (size_t c = 0; c < sizeof n_toks / sizeof n_toks[0]; c++)
                    check(types[k], n_outs[b], n_ins[a], n_toks[c], pools);
    free_pools(pools);
}

/* kiln__matmul_fast_float takes this path for float weights of any row
 * length (kiln__matmul_fast too, except BF16 weights on CPUs with
 * AVX512-BF16: test_gemm_bf16.c). */
static void test_dispatch(void) {
    if (!usable()) SKIP_TEST("this CPU (or KILN_CPU_DISABLE) lacks AVX-512 F/BW/VL");
    kiln_pool *pool = kiln__pool_create(2);
    REQUIRE(pool);
    enum { N_OUT = 5, N_IN = 21, N_TOK = 3 };
    uint16_t w[N_OUT * N_IN];
    float wf[N_OUT * N_IN], x[N_TOK * N_IN], a[N_TOK * N_OUT], b[N_TOK * N_OUT], scratch[2 * N_IN];
    unsigned seed = 5;
    lcg_fill(wf, (size_t)(N_OUT * N_IN), &seed);
    lcg_fill(x, (size_t)(N_TOK * N_IN), &seed);
    REQUIRE(kiln__quantize(KILN_DTYPE_BF16, wf, w, N_OUT * N_IN) == KILN_OK);
    REQUIRE(kiln__matmul_fast_float(pool, KILN_DTYPE_BF16, w, N_OUT, N_IN, x, N_TOK, a, scratch) == KILN_OK);
    kiln__gemm_avx512(pool, KILN_DTYPE_BF16, w, N_OUT, N_IN, x, N_TOK, b);
    CHECK(memcmp(a, b, sizeof a) == 0);
    kiln__pool_free(pool);
}

int main(void) {
    RUN(test_batch_sizes);
    RUN(test_shapes);
    RUN(test_dispatch);
    return TEST_REPORT();
}
