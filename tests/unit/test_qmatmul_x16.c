/* tests/unit/test_qmatmul_x16.c - the x16 layout of the quantized matmul
 * (src/kernels/qmatmul_x16.h): every type with an x16 form, packed in
 * place, gives through kiln__qmatmul_multi the scalar reference's products
 * of the file-layout rows within float rounding (row kernels, 1..5 tokens
 * and more) and, from 16 tokens, the GEMM's bits on the file layout exactly;
 * results and packed bytes do not depend on the thread count; x16 and
 * file-layout matrices mix in one call, with and without the fused swiglu;
 * kiln__qmatmul_x16_ok and the pack refuse what they cannot take. On a CPU
 * without the avx512 level only the refusals run. */
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/ops.h"
#include "kernels/qmatmul.h"
#include "kernels/qmatmul_impl.h"
#include "kernels/qmatmul_x16.h"
#include "tensor/fp16.h"
#include "tensor/quantize.h"
#include "tensor/tensor.h"
#include "qmatmul_terms.h"
#include "test.h"
#include "test_random.h"

/* Every type the quantized matmul takes; those without an x16 form are
 * checked to be refused. */
static const kiln_dtype types[] = {KILN_DTYPE_Q8_0, KILN_DTYPE_Q4_0, KILN_DTYPE_Q5_0, KILN_DTYPE_Q4_K,
                                   KILN_DTYPE_Q6_K};
#define N_TYPES (sizeof types / sizeof types[0])

static int is_k(kiln_dtype t) { return kiln__qmatmul_k_rule(t); }

static int x16_level(void) { return kiln__qmatmul_best_level() == KILN_QLEVEL_AVX512; }

/* n activations whose magnitude varies from block to block, with an
 * all-zero block. */
static void fill_x(float *x, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) x[i] = (0.05f + (float)((i / 32) % 5) * 0.6f) * lcg_unit(&seed);
    if (n >= 64)
        for (size_t i = 32; i < 64; i++) x[i] = 0.0f;
}

/* n weights of type t at wq: quantized from random floats, or (Q5_0, which
 * kiln does not quantize) random blocks. */
static int make_weights(kiln_dtype t, void *wq, size_t n, unsigned seed) {
    if (t == KILN_DTYPE_Q5_0) {
        kiln_block_q5_0 *b = wq;
        for (size_t k = 0; k < n / 32; k++) {
            b[k].d = kiln__f32_to_f16(0.01f + 0.05f * fabsf(lcg_unit(&seed)));
            for (int j = 0; j < 4; j++) b[k].qh[j] = (uint8_t)(lcg_unit(&seed) * 128.0f + 128.0f);
            for (int j = 0; j < 16; j++) b[k].qs[j] = (uint8_t)(lcg_unit(&seed) * 128.0f + 128.0f);
        }
        return 1;
    }
    float *wf = malloc(n * sizeof *wf);
    if (!wf) return 0;
    /* row magnitudes that differ, so that a row mixed up with another shows */
    for (size_t i = 0; i < n; i++) wf[i] = lcg_unit(&seed) * (0.2f + (float)((i * 7 / 32) % 11) * 0.1f);
    int ok = kiln__quantize(t, wf, wq, n) == KILN_OK;
    free(wf);
    return ok;
}

/* Quantized activations of n_tok rows (arrays owned). */
static int act_make(kiln_qact *a, const float *x, size_t n_tok, size_t n_in, int k_rule) {
    size_t nb = n_in / 32;
    *a = (kiln_qact){.qs = malloc(n_tok * n_in), .d = malloc(n_tok * nb * sizeof(float)),
                     .ds32 = malloc(n_tok * nb * sizeof(float)), .ds16 = malloc(n_tok * 2 * nb * sizeof(float)),
                     .n_in = n_in, .k_rule = k_rule};
    if (!a->qs || !a->d || !a->ds32 || !a->ds16) return 0;
    for (size_t t = 0; t < n_tok; t++) kiln__qact_quantize_row(a, t, x + t * n_in);
    return 1;
}
static void act_free(kiln_qact *a) {
    free(a->qs);
    free(a->d);
    free(a->ds32);
    free(a->ds16);
}

/* Count of y[t][j] (n_tok x n_out) off the scalar reference on the file
 * rows wq by more than float rounding. */
static int off_reference(kiln_dtype t, const void *wq, size_t n_out, size_t n_in, const kiln_qact *a, size_t n_tok,
                         const float *y) {
    size_t row_bytes = kiln__tensor_bytes(t, n_in);
    int bad = 0;
    for (size_t tk = 0; tk < n_tok; tk++)
        for (size_t j = 0; j < n_out; j++) {
            const char *wrow = (const char *)wq + j * row_bytes;
            double ref = kiln__qdot_ref(t, wrow, a, tk), got = y[tk * n_out + j];
            double tol = 2e-6 * qmatmul_term_scale(t, wrow, a, tk) + 1e-6;
            if (!(fabs(got - ref) <= tol) && bad++ < 3)
                fprintf(stderr, "  %s %zu x %zu, %zu tokens: y[%zu][%zu] %.7g vs reference %.7g (tol %g)\n",
                        kiln_dtype_name(t), n_out, n_in, n_tok, tk, j, got, ref, tol);
        }
    return bad;
}

/* One type and shape: pack a copy (with 1 and 3 threads: the same bytes),
 * then every token count on 1, 2 and 3 threads. */
static void check_shape(kiln_dtype t, size_t n_out, size_t n_in, kiln_pool *const pools[3]) {
    static const size_t toks[] = {1, 2, 3, 4, 5, 17, 40};
    const size_t max_tok = 40, bytes = kiln__tensor_bytes(t, n_out * n_in);
    unsigned seed = 5u + (unsigned)(t * 31) + (unsigned)(n_out * 7 + n_in);
    void *wq = malloc(bytes), *wx = malloc(bytes), *wx3 = malloc(bytes);
    float *x = malloc(max_tok * n_in * sizeof *x), *y[3], *yg = malloc(max_tok * n_out * sizeof *yg);
    for (int p = 0; p < 3; p++) y[p] = malloc(max_tok * n_out * sizeof(float));
    kiln_qact a;
    REQUIRE(wq && wx && wx3 && x && yg && y[0] && y[1] && y[2]);
    REQUIRE(make_weights(t, wq, n_out * n_in, seed));
    for (size_t tk = 0; tk < max_tok; tk++) fill_x(x + tk * n_in, n_in, seed + 101u * (unsigned)tk);
    REQUIRE(act_make(&a, x, max_tok, n_in, is_k(t)));
    memcpy(wx, wq, bytes);
    memcpy(wx3, wq, bytes);
    REQUIRE(kiln__qmatmul_x16_pack(pools[0], t, wx, n_out, n_in) == KILN_OK);
    REQUIRE(kiln__qmatmul_x16_pack(pools[2], t, wx3, n_out, n_in) == KILN_OK);
    CHECK(memcmp(wx, wx3, bytes) == 0);
    CHECK(memcmp(wx, wq, bytes) != 0); /* the bytes did move */
    for (size_t k = 0; k < sizeof toks / sizeof toks[0]; k++) {
        size_t n_tok = toks[k];
        for (int p = 0; p < 3; p++) {
            memset(y[p], 0xff, max_tok * n_out * sizeof(float));
            kiln_qmat m = {t, wx, n_out, y[p], KILN_QLAYOUT_X16};
            REQUIRE(kiln__qmatmul_multi(pools[p], &m, 1, 0, n_in, x, n_tok) == KILN_OK);
        }
        CHECK(memcmp(y[0], y[1], n_tok * n_out * sizeof(float)) == 0);
        CHECK(memcmp(y[0], y[2], n_tok * n_out * sizeof(float)) == 0);
        CHECK_EQ_INT(off_reference(t, wq, n_out, n_in, &a, n_tok, y[0]), 0);
        if (n_tok >= 16) {
            /* the GEMM: the panel is the one the file's rows unpack to */
            REQUIRE(kiln__qmatmul_level(pools[1], KILN_QLEVEL_AVX512, t, wq, n_out, n_in, x, n_tok, yg) == KILN_OK);
            CHECK(memcmp(y[0], yg, n_tok * n_out * sizeof(float)) == 0);
        }
    }
    free(wq);
    free(wx);
    free(wx3);
    free(x);
    free(yg);
    for (int p = 0; p < 3; p++) free(y[p]);
    act_free(&a);
}

static void test_types(void) {
    if (!x16_level()) SKIP_TEST("the x16 layout needs the avx512 level (this CPU runs %s)",
                                kiln__qlevel_name(kiln__qmatmul_best_level()));
    kiln_pool *pools[3] = {kiln__pool_create(1), kiln__pool_create(2), kiln__pool_create(3)};
    REQUIRE(pools[0] && pools[1] && pools[2]);
    static const size_t outs[] = {16, 48, 80};
    /* one block, odd block counts (a last column alone) and an even one */
    static const size_t ins_legacy[] = {32, 96, 288, 1056, 512}, ins_k[] = {256, 768};
    int checked = 0;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        kiln_dtype t = types[ti];
        if (!kiln__x16_find(t)) {
            CHECK(!kiln__qmatmul_x16_ok(t, 16, 256));
            continue;
        }
        size_t n_ins = is_k(t) ? 2 : 5;
        for (size_t i = 0; i < n_ins; i++)
            for (size_t o = 0; o < 3; o++) check_shape(t, outs[o], is_k(t) ? ins_k[i] : ins_legacy[i], pools);
        fprintf(stderr, "  %s checked\n", kiln_dtype_name(t));
        checked++;
    }
    CHECK(checked >= 3); /* at least Q8_0, Q4_0, Q5_0 */
    for (int p = 0; p < 3; p++) kiln__pool_free(pools[p]);
}

/* x16 and file-layout matrices in one call, bit for bit the results of
 * one call per matrix; and gate (x16) and up (file rows) with the fused
 * swiglu equal to kiln__swiglu_fast of the two. */
static void test_mixed(void) {
    if (!x16_level()) SKIP_TEST("the x16 layout needs the avx512 level");
    const size_t n_in = 320, max_tok = 17, toks[] = {1, 3, 5, 17};
    const kiln_dtype wt[3] = {KILN_DTYPE_Q4_0, KILN_DTYPE_Q5_0, KILN_DTYPE_Q8_0};
    const size_t rows[3] = {48, 37, 80};
    const kiln_qlayout lay[3] = {KILN_QLAYOUT_X16, KILN_QLAYOUT_ROWS, KILN_QLAYOUT_X16};
    kiln_pool *pools[3] = {kiln__pool_create(1), kiln__pool_create(2), kiln__pool_create(3)};
    float *x = malloc(max_tok * n_in * sizeof *x), *y[3], *ref[3];
    void *w[3];
    kiln_qmat mats[3];
    REQUIRE(pools[0] && pools[1] && pools[2] && x);
    for (size_t t = 0; t < max_tok; t++) fill_x(x + t * n_in, n_in, 7u + (unsigned)t);
    for (int m = 0; m < 3; m++) {
        w[m] = malloc(kiln__tensor_bytes(wt[m], rows[m] * n_in));
        y[m] = malloc(max_tok * 80 * sizeof(float)); /* room for the most rows */
        ref[m] = malloc(max_tok * 80 * sizeof(float));
        REQUIRE(w[m] && y[m] && ref[m] && make_weights(wt[m], w[m], rows[m] * n_in, 40u + (unsigned)m));
        if (lay[m] == KILN_QLAYOUT_X16) REQUIRE(kiln__qmatmul_x16_pack(pools[1], wt[m], w[m], rows[m], n_in) == KILN_OK);
        mats[m] = (kiln_qmat){wt[m], w[m], rows[m], y[m], lay[m]};
    }
    /* up for the swiglu: 48 file rows of Q8_0 */
    void *w_up = malloc(kiln__tensor_bytes(wt[2], 48 * n_in));
    REQUIRE(w_up && make_weights(wt[2], w_up, 48 * n_in, 77u));
    CHECK(kiln__qmatmul_multi_ok(mats, 3, n_in));
    for (size_t k = 0; k < sizeof toks / sizeof toks[0]; k++) {
        size_t n_tok = toks[k];
        for (int m = 0; m < 3; m++) {
            kiln_qmat one = {wt[m], w[m], rows[m], ref[m], lay[m]};
            REQUIRE(kiln__qmatmul_multi(pools[1], &one, 1, 0, n_in, x, n_tok) == KILN_OK);
        }
        for (int p = 0; p < 3; p++) {
            for (int m = 0; m < 3; m++) memset(y[m], 0xff, max_tok * rows[m] * sizeof(float));
            REQUIRE(kiln__qmatmul_multi(pools[p], mats, 3, 0, n_in, x, n_tok) == KILN_OK);
            for (int m = 0; m < 3; m++) CHECK(memcmp(y[m], ref[m], n_tok * rows[m] * sizeof(float)) == 0);
        }
        /* swiglu with gate x16 and up in file rows, then the other way */
        for (int order = 0; order < 2; order++) {
            float *yx = order ? ref[0] : y[0], *yr = order ? y[1] : ref[1];
            kiln_qmat x16 = {wt[0], w[0], 48, yx, KILN_QLAYOUT_X16}, file = {wt[2], w_up, 48, yr, KILN_QLAYOUT_ROWS};
            kiln_qmat gu[2] = {order ? file : x16, order ? x16 : file};
            REQUIRE(kiln__qmatmul_multi(pools[1], &gu[0], 1, 0, n_in, x, n_tok) == KILN_OK);
            REQUIRE(kiln__qmatmul_multi(pools[1], &gu[1], 1, 0, n_in, x, n_tok) == KILN_OK);
            memcpy(ref[2], gu[0].y, n_tok * 48 * sizeof(float));
            kiln__swiglu_fast(ref[2], gu[1].y, n_tok * 48);
            for (int p = 0; p < 3; p++) {
                memset(gu[0].y, 0xff, n_tok * 48 * sizeof(float));
                REQUIRE(kiln__qmatmul_multi(pools[p], gu, 2, 1, n_in, x, n_tok) == KILN_OK);
                CHECK(memcmp(gu[0].y, ref[2], n_tok * 48 * sizeof(float)) == 0);
            }
        }
    }
    for (int m = 0; m < 3; m++) {
        free(w[m]);
        free(y[m]);
        free(ref[m]);
    }
    free(w_up);
    free(x);
    for (int p = 0; p < 3; p++) kiln__pool_free(pools[p]);
}

/* What the x16 layout refuses: rows not in 16s, a row length the type
 * does not take, a type without an x16 form; the pack leaves such a
 * matrix as it was, and kiln__qmatmul_multi refuses an x16 matrix it
 * cannot read (on a CPU without the avx512 level, any). */
static void test_refusals(void) {
    kiln_pool *pool = kiln__pool_create(2);
    const size_t n_in = 64, bytes = kiln__tensor_bytes(KILN_DTYPE_Q4_0, 48 * n_in);
    uint8_t *w = malloc(bytes), *copy = malloc(bytes);
    float x[64], y[48];
    REQUIRE(pool && w && copy);
    fill_x(x, n_in, 3u);
    REQUIRE(make_weights(KILN_DTYPE_Q4_0, w, 48 * n_in, 9u));
    memcpy(copy, w, bytes);
    CHECK(!kiln__qmatmul_x16_ok(KILN_DTYPE_Q4_0, 40, n_in));
    CHECK(!kiln__qmatmul_x16_ok(KILN_DTYPE_Q4_0, 0, n_in));
    CHECK(!kiln__qmatmul_x16_ok(KILN_DTYPE_Q4_0, 16, 48));
    CHECK(!kiln__qmatmul_x16_ok(KILN_DTYPE_Q4_1, 16, n_in));
    CHECK(!kiln__qmatmul_x16_ok(KILN_DTYPE_F16, 16, n_in));
    CHECK_EQ_INT(kiln__qmatmul_x16_pack(pool, KILN_DTYPE_Q4_0, w, 40, n_in), KILN_ERR_UNSUPPORTED);
    CHECK_EQ_INT(kiln__qmatmul_x16_pack(pool, KILN_DTYPE_Q4_1, w, 16, n_in), KILN_ERR_UNSUPPORTED);
    CHECK(memcmp(w, copy, bytes) == 0);
    kiln_qmat bad = {KILN_DTYPE_Q4_0, w, 40, y, KILN_QLAYOUT_X16};
    CHECK(!kiln__qmatmul_multi_ok(&bad, 1, n_in));
    CHECK_EQ_INT(kiln__qmatmul_multi(pool, &bad, 1, 0, n_in, x, 1), KILN_ERR_UNSUPPORTED);
    kiln_qmat good = {KILN_DTYPE_Q4_0, w, 48, y, KILN_QLAYOUT_X16};
    CHECK_EQ_INT(kiln__qmatmul_x16_ok(KILN_DTYPE_Q4_0, 48, n_in), x16_level());
    CHECK_EQ_INT(kiln__qmatmul_multi_ok(&good, 1, n_in), x16_level());
    if (!x16_level()) {
        CHECK_EQ_INT(kiln__qmatmul_x16_pack(pool, KILN_DTYPE_Q4_0, w, 48, n_in), KILN_ERR_UNSUPPORTED);
        CHECK_EQ_INT(kiln__qmatmul_multi(pool, &good, 1, 0, n_in, x, 1), KILN_ERR_UNSUPPORTED);
    }
    free(w);
    free(copy);
    kiln__pool_free(pool);
}

int main(void) {
    char cpu[256];
    kiln__cpu_describe(cpu, sizeof cpu);
    fprintf(stderr, "cpu: %s; best level %s\n", cpu, kiln__qlevel_name(kiln__qmatmul_best_level()));
    RUN(test_types);
    RUN(test_mixed);
    RUN(test_refusals);
    return TEST_REPORT();
}
