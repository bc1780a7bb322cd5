/* tests/unit/test_qmatmul_x16_k.c - the x16 forms of the K-quant weights
 * (src/kernels/qmatmul_x16_q4k.c, qmatmul_x16_q6k.c): 16 random rows
 * (quantized from random floats, half of them then given random scale
 * bytes so that every bit of Q4_K's packed 6-bit scales and mins and
 * every int8 scale of Q6_K is exercised) packed into one group;
 * rows() for 1..4 tokens against the scalar reference kiln__qdot_ref of
 * each file row, within float rounding; panel() against kiln__qgroups_row
 * of each file row, bit for bit. Skipped on a CPU without
 * AVX512F/BW/VL/VNNI. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/cpu.h"
#include "kernels/qmatmul.h"
#include "kernels/qmatmul_impl.h"
#include "kernels/qmatmul_x16.h"
#include "tensor/quant_blocks.h"
#include "tensor/quantize.h"
#include "tensor/tensor.h"
#include "qmatmul_terms.h"
#include "test.h"
#include "test_random.h"

/* Tokens of activations (rows() is called on windows of them). */
#define N_TOK 5

static int have_avx512(void) {
    const kiln_cpu_features *f = kiln__cpu();
    return f->avx2 && f->fma && f->f16c && f->avx512f && f->avx512bw && f->avx512vl && f->avx512vnni;
}

/* n values whose magnitude changes every 32 (so that the scales and mins
 * of a super-block differ) around an offset that changes every 256 (so
 * that the minimums matter). */
static void fill_varied(float *x, size_t n, unsigned *seed) {
    for (size_t i = 0; i < n; i++) {
        float amp = 0.05f + (float)((i / 32) % 5) * 0.4f;
        float off = (float)((i / 256) % 3) * 0.3f;
        x[i] = off + amp * lcg_unit(seed);
    }
}

/* The scale bytes of block i of a row of type wt (Q4_K: 12 packed bytes;
 * Q6_K: 16 int8), and how many. */
static uint8_t *scale_bytes(kiln_dtype wt, char *row, size_t i, size_t *n) {
    if (wt == KILN_DTYPE_Q4_K) {
        *n = KILN_K_SCALE_SIZE;
        return ((kiln_block_q4_K *)(void *)row)[i].scales;
    }
    *n = KILN_QK_K / 16;
    return (uint8_t *)((kiln_block_q6_K *)(void *)row)[i].scales;
}

/* One type and row length: pack, then rows() and panel() against the file
 * rows. */
static void check_n_in(const struct kiln_x16_type *xt, size_t n_in) {
    const kiln_dtype wt = xt->wtype;
    const size_t rows = KILN_X16_ROWS, nb = n_in / 32, ng = n_in / (size_t)kiln__qgroup_size(wt);
    const size_t row_bytes = kiln__tensor_bytes(wt, n_in);
    unsigned seed = 5u + (unsigned)n_in;
    float *wf = malloc(rows * n_in * sizeof *wf), *x = malloc(N_TOK * n_in * sizeof *x);
    char *file = malloc(rows * row_bytes), *group = malloc(rows * row_bytes); /* exact sizes: ASan sees overreads */
    kiln_qact a = {.qs = malloc(N_TOK * n_in), .d = malloc(N_TOK * nb * sizeof(float)),
                   .ds32 = malloc(N_TOK * nb * sizeof(float)), .ds16 = malloc(N_TOK * 2 * nb * sizeof(float)),
                   .qs_nib = NULL, .n_in = n_in, .k_rule = 1};
    void *panel_mem = kiln__aligned_alloc(kiln__qpanel_bytes(n_in), 64);
    uint8_t *ru = malloc(n_in);
    float *rs = malloc(ng * sizeof *rs), *rb = malloc(ng * sizeof *rb);
    REQUIRE(wf && x && file && group && a.qs && a.d && a.ds32 && a.ds16 && panel_mem && ru && rs && rb);

    fill_varied(wf, rows * n_in, &seed);
    REQUIRE(kiln__quantize(wt, wf, file, rows * n_in) == KILN_OK);
    /* rows 8..15: random scale bytes (any bytes are valid scales) */
    for (size_t r = 8; r < rows; r++)
        for (size_t i = 0; i < n_in / KILN_QK_K; i++) {
            size_t n;
            uint8_t *sc = scale_bytes(wt, file + r * row_bytes, i, &n);
            for (size_t j = 0; j < n; j++) sc[j] = (uint8_t)(lcg_unit(&seed) * 128.0f + 128.0f);
        }
    fill_varied(x, N_TOK * n_in, &seed);
    for (size_t t = 0; t < N_TOK; t++) kiln__qact_quantize_row(&a, t, x + t * n_in);

    xt->pack(file, group, n_in);

    /* rows(): every token count, from the first token and from the last
     * window (t0 > 0) */
    int bad = 0;
    for (int nt = 1; nt <= KILN_QROW_MAX_TOK; nt++) {
        size_t starts[2] = {0, (size_t)(N_TOK - nt)};
        for (int si = 0; si < 2; si++) {
            float out[KILN_QROW_MAX_TOK][KILN_X16_ROWS];
            xt->rows(group, &a, starts[si], nt, out);
            for (int k = 0; k < nt; k++)
                for (size_t r = 0; r < rows; r++) {
                    size_t t = starts[si] + (size_t)k;
                    const char *wrow = file + r * row_bytes;
                    double ref = kiln__qdot_ref(wt, wrow, &a, t);
                    double tol = 2e-6 * qmatmul_term_scale(wt, wrow, &a, t) + 1e-6;
                    if (!(fabs((double)out[k][r] - ref) <= tol) && bad++ < 3)
                        fprintf(stderr, "  %s n_in %zu nt %d t %zu row %zu: %.7g vs %.7g (tol %g)\n", kiln_dtype_name(wt), n_in, nt, t, r,
                                (double)out[k][r], ref, tol);
                }
        }
    }
    CHECK_EQ_INT(bad, 0);

    /* panel(): u, s and b of each row as kiln__qgroups_row gives them */
    struct kiln_qpanel p;
    kiln__qpanel_init(&p, panel_mem, n_in);
    xt->panel(group, n_in, &p);
    int bad_u = 0, bad_s = 0, bad_b = 0;
    for (size_t r = 0; r < rows; r++) {
        kiln__qgroups_row(wt, file + r * row_bytes, n_in, ru, rs, rb);
        for (size_t i = 0; i < n_in; i++) bad_u += p.u[(i / 4) * 64 + r * 4 + i % 4] != ru[i];
        for (size_t g = 0; g < ng; g++) {
            bad_s += memcmp(&p.s[g * rows + r], &rs[g], sizeof(float)) != 0;
            bad_b += memcmp(&p.b[g * rows + r], &rb[g], sizeof(float)) != 0;
        }
    }
    CHECK_EQ_INT(bad_u, 0);
    CHECK_EQ_INT(bad_s, 0);
    CHECK_EQ_INT(bad_b, 0);

    free(wf);
    free(x);
    free(file);
    free(group);
    free(a.qs);
    free(a.d);
    free(a.ds32);
    free(a.ds16);
    kiln__aligned_free(panel_mem);
    free(ru);
    free(rs);
    free(rb);
}

static const size_t lens[] = {256, 768, 2048};
#define N_LENS (sizeof lens / sizeof lens[0])

static void test_x16_q4k(void) {
    if (!have_avx512()) SKIP_TEST("this CPU lacks AVX512F/BW/VL/VNNI");
    CHECK(kiln__x16_q4_k.wtype == KILN_DTYPE_Q4_K);
    for (size_t i = 0; i < N_LENS; i++) check_n_in(&kiln__x16_q4_k, lens[i]);
}

static void test_x16_q6k(void) {
    if (!have_avx512()) SKIP_TEST("this CPU lacks AVX512F/BW/VL/VNNI");
    CHECK(kiln__x16_q6_k.wtype == KILN_DTYPE_Q6_K);
    for (size_t i = 0; i < N_LENS; i++) check_n_in(&kiln__x16_q6_k, lens[i]);
}

int main(void) {
    RUN(test_x16_q4k);
    RUN(test_x16_q6k);
    return TEST_REPORT();
}
