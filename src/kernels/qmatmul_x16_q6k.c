/* src/kernels/qmatmul_x16_q6k.c - Q6_K weights in the x16 layout
 * (qmatmul_x16.h): the packing of 16 file rows into one group, the
 * one-token kernel that reads a group at memory speed, and the unpacking
 * of a group into a GEMM panel.
 *
 * A group of 16 rows of n_in values holds n_in / 256 super-blocks of
 * 16 * 210 = 3360 bytes each (the bytes of the 16 rows' blocks, reordered);
 * super-block i of the group, in order:
 *
 *   bytes    0 -   31  d of rows 0..15 (f16)
 *   bytes   32 -  287  the 16 int8 scales of each row as four vectors of
 *                      16 dwords: vector w, lane r = scales[4w..4w+3] of
 *                      row r (the scales of groups 4w..4w+3)
 *   bytes  288 - 3359  16 triples of vectors (A, B, H), triple 8h + m
 *                      (half h, m < 8), each vector 16 dwords, lane r of
 *                      row r's block: A = ql[64h + 4m..+3],
 *                      B = ql[64h + 32 + 4m..+3], H = qh[32h + 4m..+3]
 *
 * By the Q6_K layout (quant_blocks.h), lane r of triple (h, m) holds the
 * four values 128h + 32q + 4m..+3 of row r for each q < 4: q = 0 in A's
 * low nibbles with H's bits 0-1, q = 1 in B's low nibbles with bits 2-3,
 * q = 2 in A's high nibbles with bits 4-5, q = 3 in B's high nibbles with
 * bits 6-7; they belong to group 8h + 2q + m / 4 (groups of 16 values).
 * Each of the four, assembled into 6-bit unsigned integers, meets four
 * activations broadcast to every lane in one vpdpbusd.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/qmatmul_x16_q6k.h"
#include "tensor/quant_blocks.h"

#define TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

/* Bytes of one super-block of a group, and the offsets of its parts. */
#define SB_BYTES (KILN_X16_ROWS * sizeof(kiln_block_q6_K))
#define OFF_D 0
#define OFF_SCALES 32
#define OFF_QS 288
_Static_assert(OFF_QS + 16 * 3 * 64 == SB_BYTES, "a Q6_K x16 super-block keeps the size of 16 blocks");

/* The file layout's 16 rows -> one group (plain byte moves; run once per
 * matrix at load). */
static void q6k_pack(const void *src, void *dst, size_t n_in) {
    const size_t nsb = n_in / KILN_QK_K, row_bytes = nsb * sizeof(kiln_block_q6_K);
    for (size_t i = 0; i < nsb; i++) {
        char *o = (char *)dst + i * SB_BYTES;
        for (size_t r = 0; r < KILN_X16_ROWS; r++) {
            /* block i of row r, read bytewise (rows need not be aligned) */
            const char *b = (const char *)src + r * row_bytes + i * sizeof(kiln_block_q6_K);
            const char *ql = b + offsetof(kiln_block_q6_K, ql), *qh = b + offsetof(kiln_block_q6_K, qh);
            memcpy(o + OFF_D + 2 * r, b + offsetof(kiln_block_q6_K, d), 2);
            for (size_t w = 0; w < 4; w++)
                memcpy(o + OFF_SCALES + 64 * w + 4 * r, b + offsetof(kiln_block_q6_K, scales) + 4 * w, 4);
            for (size_t h = 0; h < 2; h++)
                for (size_t m = 0; m < 8; m++) {
                    char *t = o + OFF_QS + (8 * h + m) * 192 + 4 * r;
                    memcpy(t, ql + 64 * h + 4 * m, 4);
                    memcpy(t + 64, ql + 64 * h + 32 + 4 * m, 4);
                    memcpy(t + 128, qh + 32 * h + 4 * m, 4);
                }
        }
    }
}

/* The int8 scale of group g (< 16) of every row of a super-block, as int32. */
TARGET static inline __m512i q6k_scale(const char *sb, int g) {
    __m512i w = _mm512_loadu_si512((const void *)(sb + OFF_SCALES + 64 * (g / 4)));
    return _mm512_srai_epi32(_mm512_slli_epi32(w, 24 - 8 * (g % 4)), 24);
}

/* Four activation bytes broadcast to every lane. */
TARGET static inline __m512i q6k_bcast4(const int8_t *q) {
    int32_t v;
    memcpy(&v, q, 4);
    return _mm512_set1_epi32(v);
}

/* The 6-bit integers of values q = p and q = p + 2 of triple t (p = 0: from
 * A, p = 1: from B): low nibbles with H's bit pair p, high nibbles with
 * pair p + 2, each moved to bits 4-5 (bits that a shift carries in from a
 * neighbouring byte are masked off). */
TARGET static inline void q6k_pair(const char *t, int p, __m512i *w_lo, __m512i *w_hi) {
    const __m512i x = _mm512_loadu_si512((const void *)(t + 64 * p));
    const __m512i h = _mm512_loadu_si512((const void *)(t + 128));
    const __m512i low = _mm512_set1_epi8(0x0f), bits45 = _mm512_set1_epi8(0x30);
    /* 0xe4 = (C ? A : B): the low nibble from x, the rest from the masked high bits */
    *w_lo = _mm512_ternarylogic_epi32(x, _mm512_and_si512(_mm512_slli_epi32(h, 4 - 2 * p), bits45), low, 0xe4);
    *w_hi = _mm512_ternarylogic_epi32(_mm512_srli_epi32(x, 4), _mm512_and_si512(_mm512_srli_epi32(h, 2 * p), bits45),
                                      low, 0xe4);
}

/* out[k][r] for nt tokens (a compile-time constant once inlined). Per
 * super-block, half h and quarter mh (m = 4 mh .. 4 mh + 3), the groups
 * 8h + 2q + mh for q < 4, in two passes (q = 0, 2 then 1, 3: fewer
 * accumulators live): each group's int32 dot (split over two chains below
 * four tokens, so that the vpdpbusd latencies overlap) times its int8
 * scale (vpmulld) is summed into one int32 per row, scaled once by d * da;
 * the offsets 32 d sc_g (da * sum of group g's activations) are summed in
 * a second float accumulator. */
TARGET __attribute__((always_inline)) static inline void q6k_rows_nt(const void *group, const kiln_qact *a, size_t t0,
                                                                     const int nt, float out[][KILN_X16_ROWS]) {
    const size_t n_in = a->n_in, nsb = n_in / KILN_QK_K, nb = n_in / KILN_QA_BLOCK;
    const int nch = nt < 4 ? 2 : 1;
    const int8_t *qa[KILN_QROW_MAX_TOK];
    __m512 acc[KILN_QROW_MAX_TOK], off[KILN_QROW_MAX_TOK];
    for (int k = 0; k < nt; k++) {
        qa[k] = a->qs + (t0 + (size_t)k) * n_in;
        acc[k] = off[k] = _mm512_setzero_ps();
    }
    for (size_t i = 0; i < nsb; i++) {
        const char *sb = (const char *)group + i * SB_BYTES;
        __m512i isum[KILN_QROW_MAX_TOK];
        for (int k = 0; k < nt; k++) isum[k] = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++)
            for (int mh = 0; mh < 2; mh++)
                for (int p = 0; p < 2; p++) {
                    /* dq[0]: q = p, dq[1]: q = p + 2, each over nch chains */
                    __m512i dq[2][2][KILN_QROW_MAX_TOK];
                    for (int e = 0; e < 2; e++)
                        for (int c = 0; c < nch; c++)
                            for (int k = 0; k < nt; k++) dq[e][c][k] = _mm512_setzero_si512();
                    for (int m4 = 0; m4 < 4; m4++) {
                        const int m = 4 * mh + m4, c = m4 % nch;
                        __m512i w_lo, w_hi;
                        q6k_pair(sb + OFF_QS + (size_t)(8 * h + m) * 192, p, &w_lo, &w_hi);
                        for (int k = 0; k < nt; k++) {
                            const int8_t *q = qa[k] + i * KILN_QK_K + 128 * (size_t)h + 32 * (size_t)p + 4 * (size_t)m;
                            dq[0][c][k] = _mm512_dpbusd_epi32(dq[0][c][k], w_lo, q6k_bcast4(q));
                            dq[1][c][k] = _mm512_dpbusd_epi32(dq[1][c][k], w_hi, q6k_bcast4(q + 64));
                        }
                    }
                    __m512i s_lo = q6k_scale(sb, 8 * h + 2 * p + mh), s_hi = q6k_scale(sb, 8 * h + 2 * (p + 2) + mh);
                    for (int k = 0; k < nt; k++) {
                        __m512i l = dq[0][0][k], hh = dq[1][0][k];
                        if (nch == 2) {
                            l = _mm512_add_epi32(l, dq[0][1][k]);
                            hh = _mm512_add_epi32(hh, dq[1][1][k]);
                        }
                        isum[k] = _mm512_add_epi32(isum[k], _mm512_add_epi32(_mm512_mullo_epi32(l, s_lo),
                                                                             _mm512_mullo_epi32(hh, s_hi)));
                    }
                }
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(sb + OFF_D)));
        const __m512 d32 = _mm512_mul_ps(d, _mm512_set1_ps(32.0f));
        for (int k = 0; k < nt; k++) {
            size_t blk = (t0 + (size_t)k) * nb + i * 8;
            acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[k]), _mm512_mul_ps(d, _mm512_set1_ps(a->d[blk])), acc[k]);
        }
        for (int g = 0; g < 16; g++) {
            __m512 dsc = _mm512_mul_ps(d32, _mm512_cvtepi32_ps(q6k_scale(sb, g)));
            for (int k = 0; k < nt; k++)
                off[k] = _mm512_fmadd_ps(dsc, _mm512_set1_ps(a->ds16[2 * ((t0 + (size_t)k) * nb + i * 8) + (size_t)g]),
                                         off[k]);
        }
    }
    for (int k = 0; k < nt; k++) _mm512_storeu_ps(out[k], _mm512_sub_ps(acc[k], off[k]));
}

TARGET static void q6k_rows(const void *group, const kiln_qact *a, size_t t0, int nt, float out[][KILN_X16_ROWS]) {
    switch (nt) {
    case 1: q6k_rows_nt(group, a, t0, 1, out); return;
    case 2: q6k_rows_nt(group, a, t0, 2, out); return;
    case 3: q6k_rows_nt(group, a, t0, 3, out); return;
    default: q6k_rows_nt(group, a, t0, KILN_QROW_MAX_TOK, out); return;
    }
}

/* The panel of the group: the integers of value q (pair p = q % 2) of
 * triple (h, m) of super-block i are step 64 i + 32 h + 8 q + m of u;
 * s = d * sc and b = -32 s per group and row, the same float products as
 * kiln__qgroups_row. */
TARGET static void q6k_panel(const void *group, size_t n_in, struct kiln_qpanel *p) {
    for (size_t i = 0; i < n_in / KILN_QK_K; i++) {
        const char *sb = (const char *)group + i * SB_BYTES;
        for (size_t h = 0; h < 2; h++)
            for (size_t m = 0; m < 8; m++)
                for (int pr = 0; pr < 2; pr++) {
                    __m512i w_lo, w_hi;
                    q6k_pair(sb + OFF_QS + (8 * h + m) * 192, pr, &w_lo, &w_hi);
                    uint8_t *u = p->u + (64 * i + 32 * h + 8 * (size_t)pr + m) * 64;
                    _mm512_storeu_si512((void *)u, w_lo);
                    _mm512_storeu_si512((void *)(u + 16 * 64), w_hi); /* q + 2: 16 steps on */
                }
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(sb + OFF_D)));
        for (int g = 0; g < 16; g++) {
            size_t at = (16 * i + (size_t)g) * KILN_X16_ROWS;
            __m512 s = _mm512_mul_ps(d, _mm512_cvtepi32_ps(q6k_scale(sb, g)));
            _mm512_storeu_ps(p->s + at, s);
            _mm512_storeu_ps(p->b + at, _mm512_mul_ps(_mm512_set1_ps(-32.0f), s));
        }
    }
}

const struct kiln_x16_type kiln__x16_q6_k = {
    .wtype = KILN_DTYPE_Q6_K,
    .pack = q6k_pack,
    .rows = q6k_rows,
    .panel = q6k_panel,
};
