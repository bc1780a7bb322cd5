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

/* Most tokens per micro-kernel call. */
#define TILE_TOK 8

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

/* The 16 x T tile for tokens t0 .. t0 + T - 1, groups of G values. */
TARGET __attribute__((always_inline)) static inline void tile(const struct kiln_qpanel *p, const kiln_qact *a,
                                                              size_t t0, const int T, const int G, float *y,
                                                              size_t n_out, size_t row0, __mmask16 mask) {
    size_t n_in = a->n_in, nb = n_in / KILN_QA_BLOCK, ng = n_in / (size_t)G;
    __m512 f[TILE_TOK];
    const int8_t *qa[TILE_TOK];
    const float *da[TILE_TOK], *ds[TILE_TOK];
    for (int t = 0; t < T; t++) {
        f[t] = _mm512_setzero_ps();
        qa[t] = a->qs + (t0 + (size_t)t) * n_in;
        da[t] = a->d + (t0 + (size_t)t) * nb;
        ds[t] = G == 16 ? a->ds16 + (t0 + (size_t)t) * 2 * nb : a->ds32 + (t0 + (size_t)t) * nb;
    }
    for (size_t g = 0; g < ng; g++) {
        const uint8_t *u = p->u + g * (size_t)G * KILN_QPANEL_ROWS;
        __m512i acc[TILE_TOK];
        for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_si512();
        for (int s = 0; s < G / 4; s++) {
            __m512i wv = _mm512_load_si512((const void *)(u + (size_t)s * 64));
            size_t i = g * (size_t)G + 4 * (size_t)s;
            for (int t = 0; t < T; t++) acc[t] = _mm512_dpbusd_epi32(acc[t], wv, _mm512_set1_epi32(load4(qa[t] + i)));
        }
        __m512 sv = _mm512_load_ps(p->s + g * KILN_QPANEL_ROWS), bv = _mm512_load_ps(p->b + g * KILN_QPANEL_ROWS);
        size_t blk = g * (size_t)G / KILN_QA_BLOCK;
        for (int t = 0; t < T; t++) {
            __m512 scale = _mm512_mul_ps(sv, _mm512_set1_ps(da[t][blk]));
            f[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[t]), scale, f[t]);
            f[t] = _mm512_fmadd_ps(bv, _mm512_set1_ps(ds[t][g]), f[t]);
        }
    }
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y + (t0 + (size_t)t) * n_out + row0, mask, f[t]);
}

/* The tile with T and G compile-time constants. */
#define TILE_T(G)                                                                   \
    switch (T) {                                                                    \
    case 1: tile(p, a, t0, 1, G, y, n_out, row0, mask); break;                      \
    case 2: tile(p, a, t0, 2, G, y, n_out, row0, mask); break;                      \
    case 3: tile(p, a, t0, 3, G, y, n_out, row0, mask); break;                      \
    case 4: tile(p, a, t0, 4, G, y, n_out, row0, mask); break;                      \
    case 5: tile(p, a, t0, 5, G, y, n_out, row0, mask); break;                      \
    case 6: tile(p, a, t0, 6, G, y, n_out, row0, mask); break;                      \
    case 7: tile(p, a, t0, 7, G, y, n_out, row0, mask); break;                      \
    default: tile(p, a, t0, TILE_TOK, G, y, n_out, row0, mask); break;              \
    }

TARGET void kiln__qgemm_avx512(kiln_dtype wtype, const char *w, size_t row_bytes, size_t row0, size_t n_rows,
                               size_t n_out, const kiln_qact *a, size_t n_tok, float *y, struct kiln_qpanel *p) {
    unpack_panel(wtype, w, row_bytes, row0, n_rows, a->n_in, p);
    __mmask16 mask = (__mmask16)((1u << n_rows) - 1u);
    int g16 = kiln__qgroup_size(wtype) == 16;
    for (size_t t0 = 0; t0 < n_tok; t0 += TILE_TOK) {
        int T = n_tok - t0 < TILE_TOK ? (int)(n_tok - t0) : TILE_TOK;
        if (g16) {
            TILE_T(16)
        } else {
            TILE_T(32)
        }
    }
}
