/* tests/unit/test_gemm_bf16.c - the vdpbf16ps kernels (kiln__gemm_bf16),
 * for BF16 weights and for F16 weights rounded to BF16 (the opt-in lossy
 * mode), against two references on random data of awkward sizes (odd row
 * counts, 1..37 tokens, rows of odd lengths and across the partial-sum
 * blocks (kiln__bf16_block), 1..3 threads):
 * - kiln__gemm_bf16_ref, which rounds the activations (and F16 weights) to
 *   bfloat16 the same way and sums in double: float32 summation error only;
 * - kiln__matmul, the float32 product of the stored weights with unrounded
 *   activations: within the stated bound, 2^-8 * sum |w x| for BF16
 *   weights, 2^-7 (both factors rounded) for F16 (plus summation error);
 *   for F16 the measured worst error is printed.
 * Also: the activation rounding matches kiln__f32_to_bf16 bit for bit on
 * ties, NaN, infinities and overflow; a token alone gets the batch's bits;
 * kiln__matmul_fast sends BF16 weights here. Skipped (with a message) on a
 * CPU without AVX-512 F/BW/VL/BF16. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "kernels/gemm_bf16.h"
#include "kernels/matmul.h"
#include "tensor/fp16.h"
#include "tensor/quantize.h"
#include "test.h"

static float lcg_unit(unsigned *state) {
    *state = *state * 1664525u + 1013904223u;
    return (float)(*state >> 8) / (float)(1u << 23) - 1.0f;
}

/* Worst |result - float32 result| / sum |w x| seen, per weight type (BF16, F16). */
static double worst_rel[2];

/* Random n_out x n_in BF16 weights, n_tok activation rows; the kernel on
 * each pool vs both references, and each token alone vs the batch. */
static void check(kiln_dtype type, size_t n_out, size_t n_in, size_t n_tok, kiln_pool *const pools[3]) {
    unsigned seed = 19u + (unsigned)(type * 101u + n_out * 7u + n_in * 3u + n_tok);
    float *wf = malloc(n_out * n_in * sizeof *wf), *x = malloc(n_tok * n_in * sizeof *x);
    float *ref = malloc(n_tok * n_out * sizeof *ref), *exact = malloc(n_tok * n_out * sizeof *exact);
    float *got = malloc(n_tok * n_out * sizeof *got), *one = malloc(n_out * sizeof *one);
    float *scratch = malloc(n_in * sizeof *scratch);
    uint16_t *w = malloc(n_out * n_in * sizeof *w);
    REQUIRE(wf && x && ref && exact && got && one && scratch && w);
    for (size_t i = 0; i < n_out * n_in; i++) wf[i] = lcg_unit(&seed);
    for (size_t i = 0; i < n_tok * n_in; i++) x[i] = lcg_unit(&seed);
    REQUIRE(kiln__quantize(type, wf, w, n_out * n_in) == KILN_OK);
    kiln__gemm_bf16_ref(type, w, n_out, n_in, x, n_tok, ref);
    REQUIRE(kiln__matmul(pools[0], type, w, n_out, n_in, x, n_tok, exact, scratch) == KILN_OK);
    double bound = type == KILN_DTYPE_F16 ? 0x1p-7 : 0x1p-8;
    for (int p = 0; p < 3; p++) {
        memset(got, 0xff, n_tok * n_out * sizeof *got); /* NaN: every output must be written */
        REQUIRE(kiln__gemm_bf16(pools[p], type, w, n_out, n_in, x, n_tok, got) == KILN_OK);
        int bad = 0;
        for (size_t t = 0; t < n_tok && !bad; t++) {
            for (size_t j = 0; j < n_out && !bad; j++) {
                double mag = 0.0; /* sum |w x|, with x unrounded and rounded (the larger) */
                for (size_t i = 0; i < n_in; i++) {
                    uint16_t wq = w[j * n_in + i];
                    double wv = type == KILN_DTYPE_F16 ? kiln__f16_to_f32(wq) : kiln__bf16_to_f32(wq);
                    double xr = kiln__bf16_to_f32(kiln__f32_to_bf16(x[t * n_in + i]));
                    mag += fabs(wv) * 1.004 * fmax(fabs(x[t * n_in + i]), fabs(xr)); /* w rounded up to 2^-8 */
                }
                double sum_err = 4e-7 * (double)n_in * mag + 1e-30;
                double g = got[t * n_out + j];
                double e_ref = fabs(g - ref[t * n_out + j]);
                double e_exact = fabs(g - exact[t * n_out + j]);
                double *worst = &worst_rel[type == KILN_DTYPE_F16];
                if (mag > 0.0 && e_exact / mag > *worst) *worst = e_exact / mag;
                if (!(e_ref <= sum_err) || !(e_exact <= bound * mag + sum_err)) {
                    fprintf(stderr, "  %s %zux%zu tok %zu/%zu row %zu, %d threads: %.9g vs ref %.9g, f32 %.9g\n",
                            kiln_dtype_name(type), n_out, n_in, t, n_tok, j, p + 1, g, ref[t * n_out + j], exact[t * n_out + j]);
                    bad = 1;
                }
            }
        }
        CHECK(!bad);
    }
    /* each token alone, one thread: the same bits as in the batch (3 threads) */
    for (size_t t = 0; t < n_tok; t++) {
        REQUIRE(kiln__gemm_bf16(pools[0], type, w, n_out, n_in, x + t * n_in, 1, one) == KILN_OK);
        if (memcmp(one, got + t * n_out, n_out * sizeof *one) != 0) {
            fprintf(stderr, "  %s %zux%zu: token %zu of %zu differs alone\n", kiln_dtype_name(type), n_out, n_in, t, n_tok);
            CHECK(0);
            break;
        }
    }
    free(wf); free(x); free(ref); free(exact); free(got); free(one); free(scratch); free(w);
}

static void make_pools(kiln_pool *pools[3]) {
    for (int i = 0; i < 3; i++) pools[i] = kiln__pool_create(i + 1);
}

static void free_pools(kiln_pool *pools[3]) {
    for (int i = 0; i < 3; i++) kiln__pool_free(pools[i]);
}

#define NEED_BF16() \
    if (!kiln__gemm_bf16_usable()) SKIP_TEST("this CPU (or KILN_CPU_DISABLE) lacks AVX-512 F/BW/VL/BF16")

/* kiln__bf16_block: multiples of 32 of at most KILN_BF16_KC_MAX, the
 * fewest blocks that cover the row, and no empty last block. */
static void test_block_split(void) {
    for (size_t n = 1; n <= 4 * KILN_BF16_KC_MAX + 100; n += 7) {
        size_t kc = kiln__bf16_block(n), blocks = (n + kc - 1) / kc;
        CHECK(kc % 32 == 0 && kc <= KILN_BF16_KC_MAX);
        CHECK(blocks == (n + KILN_BF16_KC_MAX - 1) / KILN_BF16_KC_MAX);
        CHECK((blocks - 1) * kc < n);
    }
    CHECK(kiln__bf16_block(2048) == 2048);
    CHECK(kiln__bf16_block(5632) == 2816);
}

/* Every batch size 1..37 on short odd rows. */
static void test_batch_sizes(void) {
    NEED_BF16();
    kiln_pool *pools[3];
    make_pools(pools);
    REQUIRE(pools[0] && pools[1] && pools[2]);
    for (size_t n_tok = 1; n_tok <= 37; n_tok++) {
        check(KILN_DTYPE_BF16, 13, 37, n_tok, pools);
        check(KILN_DTYPE_F16, 13, 37, n_tok, pools);
    }
    free_pools(pools);
}

/* Row lengths around 32 and KILN_BF16_KC_MAX (one, two and three blocks), row counts around 4, 8 and the
 * chunks. */
static void test_shapes(void) {
    NEED_BF16();
    kiln_pool *pools[3];
    make_pools(pools);
    REQUIRE(pools[0] && pools[1] && pools[2]);
    const size_t n_ins[] = {1, 31, 32, 33, 101, KILN_BF16_KC_MAX, KILN_BF16_KC_MAX + 3, 2 * KILN_BF16_KC_MAX + 31};
    const size_t n_outs[] = {1, 3, 9, 67, 130};
    const size_t n_toks[] = {1, 2, 7, 17};
    for (size_t a = 0; a < sizeof n_ins / sizeof n_ins[0]; a++)
        for (size_t b = 0; b < sizeof n_outs / sizeof n_outs[0]; b++)
            for (size_t c = 0; c < sizeof n_toks / sizeof n_toks[0]; c++) {
                check(KILN_DTYPE_BF16, n_outs[b], n_ins[a], n_toks[c], pools);
                check(KILN_DTYPE_F16, n_outs[b], n_ins[a], n_toks[c], pools);
            }
    fprintf(stderr, "  worst error vs float32, relative to sum |w x|: BF16 weights %.2e, F16 as BF16 %.2e\n",
            worst_rel[0], worst_rel[1]);
    free_pools(pools);
}

/* With one weight of 1.0 and rows of one value, y = the rounded
 * activations: compare their bits with kiln__f32_to_bf16 on values that
 * exercise the rounding (ties both ways, just off ties, overflow to
 * infinity, infinities, NaNs with payloads). Denormals are left out:
 * vdpbf16ps reads them as 0. */
static void test_rounding(void) {
    NEED_BF16();
    enum { N = 12 };
    const uint32_t bits[N] = {0x3f808000u, 0x3f818000u, 0x3f808001u, 0xbf817fffu, 0x7f7fffffu, 0xff7f8000u,
                              0x7f800000u, 0xff800000u, 0x7fc00001u, 0x7f800001u, 0xffa12345u, 0x40490fdbu};
    float x[N], y[N];
    const uint16_t one = 0x3f80u;
    for (int i = 0; i < N; i++) x[i] = kiln__f32_from_bits(bits[i]);
    kiln_pool *pool = kiln__pool_create(1);
    REQUIRE(pool);
    REQUIRE(kiln__gemm_bf16(pool, KILN_DTYPE_BF16, &one, 1, 1, x, N, y) == KILN_OK);
    for (int i = 0; i < N; i++) {
        uint16_t want = kiln__f32_to_bf16(x[i]);
        if (isnan(x[i])) {
            CHECK(isnan(y[i])); /* NaN times 1 stays NaN (its payload is the CPU's) */
        } else if (kiln__f32_bits(y[i]) != (uint32_t)want << 16) {
            fprintf(stderr, "  %08x rounded to %08x, want %04x0000\n", (unsigned)bits[i],
                    (unsigned)kiln__f32_bits(y[i]), (unsigned)want);
            CHECK(0);
        }
    }
    kiln__pool_free(pool);
}

/* kiln__matmul_fast sends BF16 weights here (F16 weights never: that mode
 * is opt-in, kiln__matmul_fast_f16_as_bf16); kiln__matmul_fast_float does
 * not. */
static void test_dispatch(void) {
    NEED_BF16();
    kiln_pool *pool = kiln__pool_create(2);
    REQUIRE(pool);
    enum { N_OUT = 5, N_IN = 21, N_TOK = 3 };
    uint16_t w[N_OUT * N_IN];
    float wf[N_OUT * N_IN], x[N_TOK * N_IN], a[N_TOK * N_OUT], b[N_TOK * N_OUT], c[N_TOK * N_OUT];
    float scratch[2 * N_IN];
    unsigned seed = 5;
    for (int i = 0; i < N_OUT * N_IN; i++) wf[i] = lcg_unit(&seed);
    for (int i = 0; i < N_TOK * N_IN; i++) x[i] = lcg_unit(&seed);
    REQUIRE(kiln__quantize(KILN_DTYPE_BF16, wf, w, N_OUT * N_IN) == KILN_OK);
    REQUIRE(kiln__matmul_fast(pool, KILN_DTYPE_BF16, w, N_OUT, N_IN, x, N_TOK, a, scratch) == KILN_OK);
    REQUIRE(kiln__gemm_bf16(pool, KILN_DTYPE_BF16, w, N_OUT, N_IN, x, N_TOK, b) == KILN_OK);
    REQUIRE(kiln__matmul_fast_float(pool, KILN_DTYPE_BF16, w, N_OUT, N_IN, x, N_TOK, c, scratch) == KILN_OK);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0); /* the rounding of x shows in some of the 15 sums */
    uint16_t h[N_OUT * N_IN];
    REQUIRE(kiln__quantize(KILN_DTYPE_F16, wf, h, N_OUT * N_IN) == KILN_OK);
    REQUIRE(kiln__matmul_fast(pool, KILN_DTYPE_F16, h, N_OUT, N_IN, x, N_TOK, a, scratch) == KILN_OK);
    REQUIRE(kiln__matmul_fast_float(pool, KILN_DTYPE_F16, h, N_OUT, N_IN, x, N_TOK, c, scratch) == KILN_OK);
    CHECK(memcmp(a, c, sizeof a) == 0);
    /* the opt-in mode sends F16 weights here, BF16 ones as kiln__matmul_fast does */
    REQUIRE(kiln__matmul_fast_f16_as_bf16(pool, KILN_DTYPE_F16, h, N_OUT, N_IN, x, N_TOK, a, scratch) == KILN_OK);
    REQUIRE(kiln__gemm_bf16(pool, KILN_DTYPE_F16, h, N_OUT, N_IN, x, N_TOK, b) == KILN_OK);
    CHECK(memcmp(a, b, sizeof a) == 0);
    REQUIRE(kiln__matmul_fast_f16_as_bf16(pool, KILN_DTYPE_BF16, w, N_OUT, N_IN, x, N_TOK, a, scratch) == KILN_OK);
    REQUIRE(kiln__gemm_bf16(pool, KILN_DTYPE_BF16, w, N_OUT, N_IN, x, N_TOK, b) == KILN_OK);
    CHECK(memcmp(a, b, sizeof a) == 0);
    kiln__pool_free(pool);
}

int main(void) {
    RUN(test_block_split);
    RUN(test_batch_sizes);
    RUN(test_shapes);
    RUN(test_rounding);
    RUN(test_dispatch);
    return TEST_REPORT();
}
