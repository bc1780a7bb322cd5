/* src/kernels/qmatmul_avx512.c - the blocked GEMM of the avx512 level of
 * the quantized matmul (prompt processing: many tokens).
 *
 * A panel of 16 weight rows is unpacked once into groups (qmatmul.h) and
 * transposed so that one 512-bit register holds four consecutive unsigned
 * integers of each of the 16 rows: [k/4][row][k%4]. The micro-kernel keeps
 * 16 rows x T tokens (T <= 8) of int32 dot products in registers: per step
 * of four values one panel load and, per token, one vpdpbusd with the
 * token's four signed activation bytes broadcast to every lane. After each
 * group the integer sums become floats, scaled per row by s * da and
 * shifted by b * (da * sum(qa)), so each weight integer loaded serves T
 * tokens and the panel (16 * n_in bytes) stays in L1/L2 while every token
 * passes over it.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/qmatmul_impl.h"

#define TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

/* Unpack rows row0 .. row0 + n_rows - 1 into the panel; rows past them are
 * zero (their results are not stored). */
static void unpack_panel(kiln_dtype wtype, const char *w, size_t row_bytes, size_t row0, size_t n_rows,
                         size_t n_in, struct kiln_qpanel *p) {
    size_t gs = (size_t)kiln__qgroup_size(wtype), ng = n_in / gs;
    for (size_t r = 0; r < KILN_QPANEL_ROWS; r++) {
        if (r < n_rows) {
            kiln__qgroups_row(wtype, w + (row0 + r) * row_bytes, n_in, p->row_u, p->row_s, p->row_b);
        } else {
            memset(p->row_u, 0, n_in);
            memset(p->row_s, 0, ng * sizeof(float));
            memset(p->row_b, 0, ng * sizeof(float));
        }
        for (size_t s = 0; s < n_in / 4; s++) memcpy(p->u + s * 64 + r * 4, p->row_u + s * 4, 4);
        for (size_t g = 0; g < ng; g++) {
            p->s[g * KILN_QPANEL_ROWS + r] = p->row_s[g];
            p->b[g * KILN_QPANEL_ROWS + r] = p->row_b[g];
        }
    }
}

/* Four activation bytes as one int32. */
static inline int32_t load4(const int8_t *q) {
    int32_t v;
    memcpy(&v, q, 4);
    return v;
}

/* The 16 x 8 tile of tile `tile` of the activations, groups of G values;
 * the results of tokens t < n_valid are stored. */
TARGET __attribute__((always_inline)) static inline void tile8(const struct kiln_qpanel *p,
                                                               const struct kiln_qtiles *at, size_t tile,
                                                               const int G, float *y, size_t n_out, size_t row0,
                                                               __mmask16 mask, size_t n_valid) {
    enum { T = KILN_QTILE_TOK };
    size_t n_in = at->n_in, nb = n_in / KILN_QA_BLOCK, ng = n_in / (size_t)G;
    const int8_t *q = at->qs + tile * n_in * T;
    const float *dd = at->d + tile * nb * T, *ds = at->ds + tile * ng * T;
    __m512 f[T];
    for (int t = 0; t < T; t++) f[t] = _mm512_setzero_ps();
    for (size_t g = 0; g < ng; g++) {
        const uint8_t *u = p->u + g * (size_t)G * KILN_QPANEL_ROWS;
        const int8_t *qg = q + g * (size_t)G * T;
        __m512i acc[T];
        for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_si512();
        for (int s = 0; s < G / 4; s++) {
            __m512i wv = _mm512_load_si512((const void *)(u + (size_t)s * 64));
            for (int t = 0; t < T; t++)
                acc[t] = _mm512_dpbusd_epi32(acc[t], wv, _mm512_set1_epi32(load4(qg + (s * T + t) * 4)));
        }
        __m512 sv = _mm512_load_ps(p->s + g * KILN_QPANEL_ROWS), bv = _mm512_load_ps(p->b + g * KILN_QPANEL_ROWS);
        const float *dg = dd + g * (size_t)G / KILN_QA_BLOCK * T, *sg = ds + g * T;
        for (int t = 0; t < T; t++) {
            f[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[t]), _mm512_mul_ps(sv, _mm512_set1_ps(dg[t])), f[t]);
            f[t] = _mm512_fmadd_ps(bv, _mm512_set1_ps(sg[t]), f[t]);
        }
    }
    size_t t0 = tile * T;
    for (int t = 0; t < T; t++)
        if ((size_t)t < n_valid) _mm512_mask_storeu_ps(y + (t0 + (size_t)t) * n_out + row0, mask, f[t]);
}

TARGET void kiln__qgemm_avx512(kiln_dtype wtype, const char *w, size_t row_bytes, size_t row0, size_t n_rows,
                               size_t n_out, const struct kiln_qtiles *at, size_t n_tok, float *y,
                               struct kiln_qpanel *p) {
    unpack_panel(wtype, w, row_bytes, row0, n_rows, at->n_in, p);
    __mmask16 mask = (__mmask16)((1u << n_rows) - 1u);
    for (size_t tile = 0; tile * KILN_QTILE_TOK < n_tok; tile++) {
        size_t n_valid = n_tok - tile * KILN_QTILE_TOK;
        if (at->group == 16) tile8(p, at, tile, 16, y, n_out, row0, mask, n_valid);
        else tile8(p, at, tile, 32, y, n_out, row0, mask, n_valid);
    }
}
