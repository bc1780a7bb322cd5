/* tests/unit/test_qmatmul.c - the quantized matmul (src/kernels/qmatmul.h):
 * activation quantization against quantize.c's Q8_0 quantizer byte for
 * byte; the scalar integer reference against float dequantize + dot within
 * the activation quantization error bound; every vector level the CPU runs
 * against the scalar reference on odd shapes, 1..37 tokens and 1, 2, 3
 * threads, with results independent of the thread count; several matrices
 * in one pass (kiln__qmatmul_multi) equal to one call each; kiln__matmul_fast
 * routing the quantized types here. Levels the CPU lacks are skipped with a
 * message. */
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/ops.h"
#include "kernels/matmul.h"
#include "kernels/qmatmul.h"
#include "kernels/qmatmul_impl.h"
#include "tensor/dequant.h"
#include "tensor/fp16.h"
#include "tensor/quantize.h"
#include "tensor/tensor.h"
#include "qmatmul_terms.h"
#include "test.h"
#include "test_random.h"

/* n values with a magnitude that varies from block to block (as real
 * activations do), an all-zero block and some exact ties for rounding. */
static void fill(float *x, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        float amp = 0.01f + (float)((i / 32) % 7) * 0.7f;
        x[i] = amp * lcg_unit(&seed);
    }
    if (n >= 64)
        for (size_t i = 32; i < 64; i++) x[i] = 0.0f;
    if (n >= 96) {
        /* max 127 gives d = 1: the values x.5 are exact ties */
        x[64] = 127.0f;
        x[65] = 2.5f;
        x[66] = -3.5f;
        x[67] = 0.5f;
    }
}

/* Activation rows of n_in values for n_tok tokens (arrays owned). */
struct act {
    kiln_qact q;
};
static int act_alloc(struct act *a, size_t n_tok, size_t n_in, int k_rule) {
    size_t nb = n_in / 32;
    a->q.n_in = n_in;
    a->q.k_rule = k_rule;
    a->q.qs = malloc(n_tok * n_in);
    a->q.d = malloc(n_tok * nb * sizeof(float));
    a->q.ds32 = malloc(n_tok * nb * sizeof(float));
    a->q.ds16 = malloc(n_tok * 2 * nb * sizeof(float));
    return a->q.qs && a->q.d && a->q.ds32 && a->q.ds16;
}
static void act_free(struct act *a) {
    free(a->q.qs);
    free(a->q.d);
    free(a->q.ds32);
    free(a->q.ds16);
}

static int avx2_available(void) { return kiln__qmatmul_level_available(KILN_QLEVEL_AVX2); }

/* Both rules against quantize.c's Q8_0 and Q8_K blocks, scalar and AVX2. */
static void test_activation_quantizer(void) {
    const size_t n_in = 1024;
    float *x = malloc(n_in * sizeof *x);
    kiln_block_q8_0 *r0 = malloc(n_in / 32 * sizeof *r0);
    kiln_block_q8_K *rk = malloc(n_in / 256 * sizeof *rk);
    struct act s, v;
    REQUIRE(x && r0 && rk && act_alloc(&s, 1, n_in, 0) && act_alloc(&v, 1, n_in, 0));
    fill(x, n_in, 11u);
    x[300] = -9.0f; /* a negative largest magnitude for Q8_K's sign rule */
    REQUIRE(kiln__quantize(KILN_DTYPE_Q8_0, x, r0, n_in) == KILN_OK);
    REQUIRE(kiln__quantize(KILN_DTYPE_Q8_K, x, rk, n_in) == KILN_OK);
    for (int k_rule = 0; k_rule < 2; k_rule++) {
        s.q.k_rule = v.q.k_rule = k_rule;
        kiln__qact_quantize_row(&s.q, 0, x);
        int bad = 0;
        for (size_t k = 0; k < n_in / 32; k++) {
            const int8_t *qs = k_rule ? rk[k / 8].qs + 32 * (k % 8) : r0[k].qs;
            float d = k_rule ? rk[k / 8].d : kiln__f16_to_f32(r0[k].d);
            bad += memcmp(s.q.qs + 32 * k, qs, 32) != 0;
            bad += s.q.d[k] != d;
            int s0 = 0, s1 = 0;
            for (int j = 0; j < 16; j++) {
                s0 += qs[j];
                s1 += qs[16 + j];
            }
            if (k_rule) bad += s0 != rk[k / 8].bsums[2 * (k % 8)] || s1 != rk[k / 8].bsums[2 * (k % 8) + 1];
            bad += s.q.ds16[2 * k] != d * (float)s0 || s.q.ds16[2 * k + 1] != d * (float)s1;
            bad += s.q.ds32[k] != d * (float)(s0 + s1);
        }
        CHECK_EQ_INT(bad, 0);
        if (!k_rule) {
            CHECK_EQ_INT(s.q.qs[65], 3);  /* 2.5 rounds away from zero */
            CHECK_EQ_INT(s.q.qs[66], -4); /* -3.5 too */
        }
        if (avx2_available()) {
            kiln__qact_quantize_row_avx2(&v.q, 0, x);
            CHECK(memcmp(v.q.qs, s.q.qs, n_in) == 0);
            CHECK(memcmp(v.q.d, s.q.d, n_in / 32 * sizeof(float)) == 0);
            CHECK(memcmp(v.q.ds32, s.q.ds32, n_in / 32 * sizeof(float)) == 0);
            CHECK(memcmp(v.q.ds16, s.q.ds16, n_in / 16 * sizeof(float)) == 0);
        } else {
            fprintf(stderr, "  skipped: the AVX2 quantizer (this CPU lacks AVX2)\n");
        }
    }
    free(x);
    free(r0);
    free(rk);
    act_free(&s);
    act_free(&v);
}

static const kiln_dtype types[] = {KILN_DTYPE_Q8_0, KILN_DTYPE_Q4_0, KILN_DTYPE_Q5_0, KILN_DTYPE_Q4_K,
                                   KILN_DTYPE_Q6_K};
#define N_TYPES (sizeof types / sizeof types[0])

static int is_k(kiln_dtype t) { return t == KILN_DTYPE_Q4_K || t == KILN_DTYPE_Q6_K; }

/* n values of random weights in type t at wq: quantized from wf, or (Q5_0,
 * which kiln does not quantize) random blocks with scales near wf's. */
static int make_weights(kiln_dtype t, const float *wf, void *wq, size_t n, unsigned seed) {
    if (t != KILN_DTYPE_Q5_0) return kiln__quantize(t, wf, wq, n) == KILN_OK;
    kiln_block_q5_0 *b = wq;
    for (size_t k = 0; k < n / 32; k++) {
        b[k].d = kiln__f32_to_f16(0.02f + 0.05f * fabsf(lcg_unit(&seed)));
        for (int j = 0; j < 4; j++) b[k].qh[j] = (uint8_t)(lcg_unit(&seed) * 128.0f + 128.0f);
        for (int j = 0; j < 16; j++) b[k].qs[j] = (uint8_t)(lcg_unit(&seed) * 128.0f + 128.0f);
    }
    return 1;
}

/* The scalar reference against the float product of the decoded weights
 * with the unquantized activations: off by at most sum |w_i| * e_i, where
 * e_i = d / 2 for the Q8_K rule, and for the Q8_0 rule d / 2 plus the f16
 * rounding of d times |q| <= 127 (2^-11 * 127 d < 0.0625 d). */
static void test_reference_vs_float(void) {
    const size_t n_in = 768, n_out = 9;
    float *wf = malloc(n_out * n_in * sizeof *wf), *wd = malloc(n_out * n_in * sizeof *wd);
    float *x = malloc(n_in * sizeof *x);
    void *wq = malloc(kiln__tensor_bytes(KILN_DTYPE_Q8_0, n_out * n_in));
    struct act a;
    REQUIRE(wf && wd && x && wq && act_alloc(&a, 1, n_in, 0));
    fill(x, n_in, 5u);
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        kiln_dtype t = types[ti];
        unsigned seed = 3u + (unsigned)t;
        a.q.k_rule = kiln__qmatmul_k_rule(t);
        kiln__qact_quantize_row(&a.q, 0, x);
        lcg_fill(wf, n_out * n_in, &seed);
        REQUIRE(make_weights(t, wf, wq, n_out * n_in, seed));
        REQUIRE(kiln__dequantize(t, wq, wd, n_out * n_in) == KILN_OK);
        size_t row_bytes = kiln__tensor_bytes(t, n_in);
        int bad = 0;
        double worst = 0.0;
        for (size_t j = 0; j < n_out; j++) {
            const float *w = wd + j * n_in;
            double exact = 0.0, bound = 0.0, mag = 0.0;
            for (size_t i = 0; i < n_in; i++) {
                exact += (double)w[i] * x[i];
                bound += fabs((double)w[i] * a.q.d[i / 32]) * (a.q.k_rule ? 0.5 : 0.5625); /* Q8_K d may be negative */
                mag += fabs((double)w[i] * x[i]);
            }
            float got = kiln__qdot_ref(t, (const char *)wq + j * row_bytes, &a.q, 0);
            double err = fabs((double)got - exact);
            /* plus float rounding of the group scales (a few ulps of the terms) */
            if (!(err <= bound * 1.0001 + 1e-6 * mag)) bad++;
            if (bound > 0 && err / bound > worst) worst = err / bound;
        }
        fprintf(stderr, "  %s: reference error up to %.2f of the quantization bound\n", kiln_dtype_name(t), worst);
        CHECK_EQ_INT(bad, 0);
        /* a non-trivial bound: the error is not always zero */
        CHECK(worst > 0.0);
    }
    free(wf);
    free(wd);
    free(x);
    free(wq);
    act_free(&a);
}

/* One shape on one level: every thread count gives the same bits, all
 * within rounding of the scalar reference. */
static void check_level(kiln_qlevel level, kiln_dtype t, size_t n_out, size_t n_in, size_t n_tok,
                        kiln_pool *const pools[3]) {
    unsigned seed = 17u + (unsigned)t * 7u + (unsigned)(n_in + n_tok);
    float *wf = malloc(n_out * n_in * sizeof *wf), *x = malloc(n_tok * n_in * sizeof *x);
    void *wq = malloc(kiln__tensor_bytes(t, n_out * n_in));
    float *y[3];
    for (int p = 0; p < 3; p++) y[p] = malloc(n_tok * n_out * sizeof(float));
    struct act a;
    REQUIRE(wf && x && wq && y[0] && y[1] && y[2] && act_alloc(&a, n_tok, n_in, kiln__qmatmul_k_rule(t)));
    lcg_fill(wf, n_out * n_in, &seed);
    for (size_t tk = 0; tk < n_tok; tk++) fill(x + tk * n_in, n_in, seed + (unsigned)tk);
    REQUIRE(make_weights(t, wf, wq, n_out * n_in, seed));
    for (int p = 0; p < 3; p++)
        REQUIRE(kiln__qmatmul_level(pools[p], level, t, wq, n_out, n_in, x, n_tok, y[p]) == KILN_OK);
    CHECK(memcmp(y[0], y[1], n_tok * n_out * sizeof(float)) == 0);
    CHECK(memcmp(y[0], y[2], n_tok * n_out * sizeof(float)) == 0);
    for (size_t tk = 0; tk < n_tok; tk++) kiln__qact_quantize_row(&a.q, tk, x + tk * n_in);
    size_t row_bytes = kiln__tensor_bytes(t, n_in);
    int bad = 0;
    for (size_t tk = 0; tk < n_tok; tk++) {
        for (size_t j = 0; j < n_out; j++) {
            const char *wrow = (const char *)wq + j * row_bytes;
            double ref = kiln__qdot_ref(t, wrow, &a.q, tk);
            double got = y[0][tk * n_out + j];
            double tol = 2e-6 * qmatmul_term_scale(t, wrow, &a.q, tk) + 1e-6;
            if (!(fabs(got - ref) <= tol)) {
                if (bad++ < 3)
                    fprintf(stderr, "  %s %s n_out %zu n_in %zu n_tok %zu: y[%zu][%zu] %.7g vs %.7g tol %g\n",
                            kiln__qlevel_name(level), kiln_dtype_name(t), n_out, n_in, n_tok, tk, j, got, ref, tol);
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
    free(wf);
    free(x);
    free(wq);
    for (int p = 0; p < 3; p++) free(y[p]);
    act_free(&a);
}

static void test_levels(void) {
    kiln_pool *pools[3] = {kiln__pool_create(1), kiln__pool_create(2), kiln__pool_create(3)};
    REQUIRE(pools[0] && pools[1] && pools[2]);
    for (int l = 0; l < KILN_QLEVEL_COUNT; l++) {
        kiln_qlevel level = (kiln_qlevel)l;
        if (!kiln__qmatmul_level_available(level)) {
            fprintf(stderr, "  skipped: level %s (not on this CPU, or masked by KILN_CPU_DISABLE)\n",
                    kiln__qlevel_name(level));
            continue;
        }
        for (size_t ti = 0; ti < N_TYPES; ti++) {
            kiln_dtype t = types[ti];
            const size_t n_ins[] = {256, 512, 768};
            const size_t n_ins_legacy[] = {32, 96, 288};
            for (int k = 0; k < 3; k++) {
                size_t n_in = is_k(t) ? n_ins[k] : n_ins_legacy[k];
                /* every token count 1..37 on one shape, a spread on the others */
                if (k == 1) {
                    for (size_t n_tok = 1; n_tok <= 37; n_tok++) check_level(level, t, 37, n_in, n_tok, pools);
                } else {
                    const size_t toks[] = {1, 3, 4, 9, 17, 40, 100};
                    for (size_t m = 0; m < sizeof toks / sizeof toks[0]; m++)
                        check_level(level, t, k == 0 ? 5 : 33, n_in, toks[m], pools);
                }
            }
        }
        fprintf(stderr, "  level %s checked\n", kiln__qlevel_name(level));
    }
    for (int p = 0; p < 3; p++) kiln__pool_free(pools[p]);
}

/* Buffers of the kiln__qmatmul_multi tests: three matrices of up to 64
 * rows of n_in values, their results and references for up to max_tok
 * tokens, the activations, and pools of 1, 2 and 3 threads. */
struct multi_bufs {
    kiln_pool *pools[3]; /* 1, 2 and 3 threads */
    float *wf;           /* [64][n_in] float weights before quantization */
    float *x;            /* [max_tok][n_in] activations */
    float *y[3];         /* [max_tok][64] results of the shared pass */
    float *ref[3];       /* [max_tok][64] results of one call per matrix */
    void *wq[3];         /* quantized weights (room for Q8_0, the largest) */
    size_t n_in;         /* values per row */
    size_t max_tok;      /* most tokens */
};

static void multi_bufs_make(struct multi_bufs *b, size_t n_in, size_t max_tok, unsigned seed) {
    b->n_in = n_in;
    b->max_tok = max_tok;
    for (int p = 0; p < 3; p++) b->pools[p] = kiln__pool_create(p + 1);
    b->wf = malloc(64 * n_in * sizeof *b->wf);
    b->x = malloc(max_tok * n_in * sizeof *b->x);
    for (int m = 0; m < 3; m++) {
        b->y[m] = malloc(max_tok * 64 * sizeof(float));
        b->ref[m] = malloc(max_tok * 64 * sizeof(float));
        b->wq[m] = malloc(kiln__tensor_bytes(KILN_DTYPE_Q8_0, 64 * n_in));
        REQUIRE(b->y[m] && b->ref[m] && b->wq[m]);
    }
    REQUIRE(b->pools[0] && b->pools[1] && b->pools[2] && b->wf && b->x);
    for (size_t t = 0; t < max_tok; t++) fill(b->x + t * n_in, n_in, seed + (unsigned)t);
}

static void multi_bufs_free(struct multi_bufs *b) {
    for (int m = 0; m < 3; m++) {
        free(b->y[m]);
        free(b->ref[m]);
        free(b->wq[m]);
    }
    free(b->wf);
    free(b->x);
    for (int p = 0; p < 3; p++) kiln__pool_free(b->pools[p]);
}

/* The three matrices mats (weights b->wq, results b->y) in one
 * kiln__qmatmul_multi call on each pool against one kiln__qmatmul each,
 * bit for bit, for n_tok tokens; then gate = matrix 0 and up = matrix 2 cut
 * to matrix 0's rows, fused, against kiln__swiglu_fast of the separate results. */
static void check_multi(struct multi_bufs *b, const kiln_qmat mats[3], size_t n_tok) {
    size_t n_in = b->n_in;
    for (int m = 0; m < 3; m++)
        REQUIRE(kiln__qmatmul(b->pools[1], mats[m].wtype, b->wq[m], mats[m].n_out, n_in, b->x, n_tok, b->ref[m]) ==
                KILN_OK);
    for (int p = 0; p < 3; p++) {
        for (int m = 0; m < 3; m++) memset(b->y[m], 0xff, b->max_tok * 64 * sizeof(float));
        REQUIRE(kiln__qmatmul_multi(b->pools[p], mats, 3, 0, n_in, b->x, n_tok) == KILN_OK);
        for (int m = 0; m < 3; m++) CHECK(memcmp(b->y[m], b->ref[m], n_tok * mats[m].n_out * sizeof(float)) == 0);
    }
    size_t rows = mats[0].n_out;
    kiln_qmat gu[2] = {mats[0], {mats[2].wtype, b->wq[2], rows, b->y[2], KILN_QLAYOUT_ROWS}};
    REQUIRE(kiln__qmatmul(b->pools[1], gu[1].wtype, b->wq[2], rows, n_in, b->x, n_tok, b->ref[2]) == KILN_OK);
    kiln__swiglu_fast(b->ref[0], b->ref[2], n_tok * rows);
    for (int p = 0; p < 3; p++) {
        REQUIRE(kiln__qmatmul_multi(b->pools[p], gu, 2, 1, n_in, b->x, n_tok) == KILN_OK);
        CHECK(memcmp(b->y[0], b->ref[0], n_tok * rows * sizeof(float)) == 0);
    }
}

/* kiln__qmatmul_multi against one kiln__qmatmul per matrix, bit for bit:
 * mixed types of one activation rule (and so of different row kernels and
 * nibble orders), matrices of 37, 5 and 64 rows (chunks that end inside a
 * matrix), 1 to 3 threads, token counts for the row kernels and for the
 * GEMM, and the fused swiglu against kiln__swiglu_fast of the separate results.
 * Matrices of two activation rules are refused. */
static void test_multi(void) {
    const kiln_dtype sets[2][3] = {{KILN_DTYPE_Q4_0, KILN_DTYPE_Q8_0, KILN_DTYPE_Q5_0},
                                   {KILN_DTYPE_Q4_K, KILN_DTYPE_Q6_K, KILN_DTYPE_Q4_K}};
    const size_t rows[3] = {37, 5, 64}, toks[] = {1, 2, 5, 17};
    const size_t n_in = 512;
    struct multi_bufs b;
    unsigned seed = 99u;
    multi_bufs_make(&b, n_in, 17, seed);
    if (kiln__qmatmul_best_level() == KILN_QLEVEL_SCALAR)
        fprintf(stderr, "  skipped: kiln__qmatmul_multi (the scalar level has no shared pass)\n");
    for (int set = 0; set < 2 && kiln__qmatmul_best_level() != KILN_QLEVEL_SCALAR; set++) {
        kiln_qmat mats[3];
        for (int m = 0; m < 3; m++) {
            for (size_t i = 0; i < rows[m] * n_in; i++) b.wf[i] = lcg_unit(&seed);
            REQUIRE(make_weights(sets[set][m], b.wf, b.wq[m], rows[m] * n_in, seed));
            mats[m] = (kiln_qmat){sets[set][m], b.wq[m], rows[m], b.y[m], KILN_QLAYOUT_ROWS};
        }
        CHECK(kiln__qmatmul_multi_ok(mats, 3, n_in));
        /* (in the K set, up is a different type from gate with the same rows) */
        for (size_t k = 0; k < sizeof toks / sizeof toks[0]; k++) check_multi(&b, mats, toks[k]);
        /* the swiglu shape: two matrices of equal rows */
        CHECK_EQ_INT(kiln__qmatmul_multi(b.pools[1], mats, 2, 1, n_in, b.x, 1), KILN_ERR_UNSUPPORTED);
    }
    kiln_qmat mixed[2] = {{KILN_DTYPE_Q4_0, b.wq[0], 5, b.y[0], KILN_QLAYOUT_ROWS},
                          {KILN_DTYPE_Q4_K, b.wq[1], 5, b.y[1], KILN_QLAYOUT_ROWS}};
    CHECK(!kiln__qmatmul_multi_ok(mixed, 2, n_in));
    CHECK_EQ_INT(kiln__qmatmul_multi(b.pools[1], mixed, 2, 0, n_in, b.x, 1), KILN_ERR_UNSUPPORTED);
    multi_bufs_free(&b);
}

/* kiln__matmul_fast hands the supported types to kiln__qmatmul (on CPUs
 * with AVX2) and keeps the float path for the others. */
static void test_matmul_fast_hook(void) {
    if (!avx2_available()) SKIP_TEST("kiln__matmul_fast keeps the float path without AVX2");
    const size_t n_out = 7, n_in = 256, n_tok = 3;
    float *wf = malloc(n_out * n_in * sizeof *wf), *x = malloc(n_tok * n_in * sizeof *x);
    float *y1 = malloc(n_tok * n_out * sizeof *y1), *y2 = malloc(n_tok * n_out * sizeof *y2);
    float *scratch = malloc(2 * n_in * sizeof *scratch);
    void *wq = malloc(kiln__tensor_bytes(KILN_DTYPE_F32, n_out * n_in));
    kiln_pool *pool = kiln__pool_create(2);
    REQUIRE(wf && x && y1 && y2 && scratch && wq && pool);
    unsigned seed = 9u;
    lcg_fill(wf, n_out * n_in, &seed);
    lcg_fill(x, n_tok * n_in, &seed);
    const kiln_dtype quant[] = {KILN_DTYPE_Q4_0, KILN_DTYPE_Q6_K}, plain = KILN_DTYPE_F16;
    for (int k = 0; k < 2; k++) {
        REQUIRE(kiln__quantize(quant[k], wf, wq, n_out * n_in) == KILN_OK);
        REQUIRE(kiln__matmul_fast(pool, quant[k], wq, n_out, n_in, x, n_tok, y1, scratch) == KILN_OK);
        REQUIRE(kiln__qmatmul(pool, quant[k], wq, n_out, n_in, x, n_tok, y2) == KILN_OK);
        CHECK(memcmp(y1, y2, n_tok * n_out * sizeof *y1) == 0);
        REQUIRE(kiln__matmul_fast_float(pool, quant[k], wq, n_out, n_in, x, n_tok, y2, scratch) == KILN_OK);
        CHECK(memcmp(y1, y2, n_tok * n_out * sizeof *y1) != 0); /* the activation rounding shows */
    }
    REQUIRE(kiln__quantize(plain, wf, wq, n_out * n_in) == KILN_OK);
    REQUIRE(kiln__matmul_fast(pool, plain, wq, n_out, n_in, x, n_tok, y1, scratch) == KILN_OK);
    REQUIRE(kiln__matmul_fast_float(pool, plain, wq, n_out, n_in, x, n_tok, y2, scratch) == KILN_OK);
    CHECK(memcmp(y1, y2, n_tok * n_out * sizeof *y1) == 0);
    free(wf);
    free(x);
    free(y1);
    free(y2);
    free(scratch);
    free(wq);
    kiln__pool_free(pool);
}

static void test_unsupported(void) {
    kiln_pool *pool = kiln__pool_create(1);
    REQUIRE(pool);
    float x[64] = {0}, y[2];
    uint8_t w[256] = {0};
    CHECK_EQ_INT(kiln__qmatmul(pool, KILN_DTYPE_F16, w, 1, 64, x, 1, y), KILN_ERR_UNSUPPORTED);
    CHECK_EQ_INT(kiln__qmatmul(pool, KILN_DTYPE_Q4_K, w, 1, 64, x, 1, y), KILN_ERR_UNSUPPORTED);
    CHECK(kiln__qmatmul_supports(KILN_DTYPE_Q4_0, 64));
    CHECK(!kiln__qmatmul_supports(KILN_DTYPE_Q4_0, 48));
    CHECK(!kiln__qmatmul_supports(KILN_DTYPE_Q6_K, 288));
    CHECK(!kiln__qmatmul_supports(KILN_DTYPE_Q5_K, 256));
    kiln__pool_free(pool);
}

/* kiln__qmatmul_multi on matrices of one type (one shared GEMM pass over
 * the panels of all, from 16 tokens) against one kiln__qmatmul per matrix,
 * bit for bit: every type, matrices of 37, 5 and 64 rows (panels cut short
 * inside a matrix), token counts that leave a partial tile (17, 31, 40,
 * 100), 1 to 3 threads, and the swiglu of two matrices of 37 rows against
 * kiln__swiglu_fast of the separate results. */
static void test_multi_one_type(void) {
    const size_t rows[3] = {37, 5, 64}, toks[] = {17, 31, 40, 100};
    const size_t n_in = 512;
    struct multi_bufs b;
    unsigned seed = 123u;
    multi_bufs_make(&b, n_in, 100, seed);
    if (kiln__qmatmul_best_level() == KILN_QLEVEL_SCALAR)
        fprintf(stderr, "  skipped: kiln__qmatmul_multi (the scalar level has no shared pass)\n");
    for (size_t ti = 0; ti < N_TYPES && kiln__qmatmul_best_level() != KILN_QLEVEL_SCALAR; ti++) {
        kiln_dtype t = types[ti];
        kiln_qmat mats[3];
        for (int m = 0; m < 3; m++) {
            lcg_fill(b.wf, rows[m] * n_in, &seed);
            REQUIRE(make_weights(t, b.wf, b.wq[m], rows[m] * n_in, seed));
            mats[m] = (kiln_qmat){t, b.wq[m], rows[m], b.y[m], KILN_QLAYOUT_ROWS};
        }
        CHECK(kiln__qmatmul_multi_ok(mats, 3, n_in));
        for (size_t k = 0; k < sizeof toks / sizeof toks[0]; k++) check_multi(&b, mats, toks[k]);
    }
    multi_bufs_free(&b);
}

int main(void) {
    char cpu[256];
    kiln__cpu_describe(cpu, sizeof cpu);
    fprintf(stderr, "cpu: %s; best level %s\n", cpu, kiln__qlevel_name(kiln__qmatmul_best_level()));
    RUN(test_activation_quantizer);
    RUN(test_reference_vs_float);
    RUN(test_levels);
    RUN(test_multi);
    RUN(test_multi_one_type);
    RUN(test_matmul_fast_hook);
    RUN(test_unsupported);
    return TEST_REPORT();
}
