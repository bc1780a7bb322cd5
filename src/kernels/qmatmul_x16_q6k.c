/* src/kernels/qmatmul_x16_q6k.c - Q6_K weights in the x16 layout
 * (qmatmul_x16.h): the packing of 16 file rows into one group, the
 * one-token kernel that reads a group at memory speed, and the unpacking
 * of a group into a GEMM panel.
 *
 * A group of 16 rows of n_in values holds n_in / 256 super-blocks of
 * 16 * 210 = 3360 bytes each (the bytes of the 16 rows' blocks, rewritten);
 * super-block i of the group, in order:
 *
 *   bytes    0 -   31  d of rows 0..15 (f16)
 *   bytes   32 -  287  the int8 scales, group by group: byte 16 g + r is
 *                      the scale of row r's group g (one sign-extending
 *                      load gives a group's 16 scales as int32 lanes)
 *   bytes  288 - 3359  16 triples of vectors (V0, V1, V2), triple 8h + m
 *                      (half h, m < 8), each vector 16 dwords
 *
 * Lane r of triple (h, m) holds four values of row r for each q < 4: the
 * 6-bit integers v_q[j] of values 128h + 32q + 4m + j (j < 4), which
 * belong to group 8h + 2q + m / 4 (groups of 16 values). Byte j of lane r
 * of Vq (q < 3) is v_q[j] in bits 0-5 with bits 2q, 2q + 1 of v_3[j] in
 * bits 6-7. So v_0, v_1 and v_2 come out with one mask each, and 4 v_3 =
 * (V2 & 0xc0) | ((V1 >> 2) & 0x30) | ((V0 >> 4) & 0x0c) with two shifts:
 * eight simple vector instructions for the four vectors of integers that
 * meet four activations broadcast to every lane, one vpdpbusd each (the
 * file's nibble and bit-pair layout would need thirteen, five of them
 * shifts, which Zen 4 runs at half the rate of the others).
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/qmatmul_x16.h"
#include "tensor/quant_blocks.h"

#define TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

/* Bytes of one super-block of a group, and the offsets of its parts. */
#define SB_BYTES (KILN_X16_ROWS * sizeof(kiln_block_q6_K))
#define OFF_D 0
#define OFF_SCALES 32
#define OFF_QS 288
_Static_assert(OFF_QS + 16 * 3 * 64 == SB_BYTES, "a Q6_K x16 super-block keeps the size of 16 blocks");

/* Four bytes at p as a word (any alignment). */
static uint32_t q6k_word(const uint8_t *p) {
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

/* The file layout's 16 rows -> one group (run once per matrix at load).
 * The bytes of a triple are made four at a time with bytewise masks and
 * shifts on 32-bit words (no bit crosses a byte): from the words
 * A = ql[64h + 4m..], B = ql[64h + 32 + 4m..] and H = qh[32h + 4m..] of a
 * row, v_0 = A's low nibbles | H's bits 0-1 << 4, v_1 = B's low nibbles |
 * bits 2-3 << 2, v_2 = A's high nibbles | bits 4-5, v_3 = B's high
 * nibbles | bits 6-7 >> 2 (quant_blocks.h), then Vq = v_q | bits 2q, 2q + 1
 * of v_3 in bits 6-7. */
static void q6k_pack(const void *src, void *dst, size_t n_in) {
    const size_t nsb = n_in / KILN_QK_K, row_bytes = nsb * sizeof(kiln_block_q6_K);
    const uint32_t b01 = 0x03030303u, b23 = 0x0c0c0c0cu, b45 = 0x30303030u, b67 = 0xc0c0c0c0u, nib = 0x0f0f0f0fu;
    for (size_t i = 0; i < nsb; i++) {
        uint8_t *o = (uint8_t *)dst + i * SB_BYTES;
        for (size_t r = 0; r < KILN_X16_ROWS; r++) {
            /* block i of row r, read bytewise (rows need not be aligned) */
            const uint8_t *b = (const uint8_t *)src + r * row_bytes + i * sizeof(kiln_block_q6_K);
            const uint8_t *ql = b + offsetof(kiln_block_q6_K, ql), *qh = b + offsetof(kiln_block_q6_K, qh);
            memcpy(o + OFF_D + 2 * r, b + offsetof(kiln_block_q6_K, d), 2);
            for (size_t g = 0; g < 16; g++) o[OFF_SCALES + 16 * g + r] = b[offsetof(kiln_block_q6_K, scales) + g];
            for (size_t h = 0; h < 2; h++)
                for (size_t m = 0; m < 8; m++) {
                    uint32_t A = q6k_word(ql + 64 * h + 4 * m), B = q6k_word(ql + 64 * h + 32 + 4 * m);
                    uint32_t H = q6k_word(qh + 32 * h + 4 * m);
                    uint32_t v3 = ((B >> 4) & nib) | (H & b67) >> 2;
                    uint32_t V[3] = {(A & nib) | (H & b01) << 4 | (v3 & b01) << 6,
                                     (B & nib) | (H & b23) << 2 | (v3 & b23) << 4,
                                     ((A >> 4) & nib) | (H & b45) | (v3 & b45) << 2};
                    uint8_t *t = o + OFF_QS + (8 * h + m) * 192 + 4 * r;
                    for (size_t q = 0; q < 3; q++) memcpy(t + 64 * q, &V[q], 4);
                }
        }
    }
}

/* The int8 scale of group g (< 16) of every row of a super-block, as int32. */
TARGET static inline __m512i q6k_scale(const char *sb, int g) {
    return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(sb + OFF_SCALES + 16 * g)));
}

/* Four activation bytes broadcast to every lane. */
TARGET static inline __m512i q6k_bcast4(const int8_t *q) {
    int32_t v;
    memcpy(&v, q, 4);
    return _mm512_set1_epi32(v);
}

/* Vector q of triple t: v_q for q < 3, 4 v_3 for q = 3 (layout above;
 * bits that the shifts carry in from a neighbouring byte are masked off). */
TARGET static inline __m512i q6k_ints(const char *t, int q) {
    const __m512i m6 = _mm512_set1_epi8(0x3f);
    if (q < 3) return _mm512_and_si512(_mm512_loadu_si512((const void *)(t + 64 * q)), m6);
    const __m512i v0 = _mm512_loadu_si512((const void *)t), v1 = _mm512_loadu_si512((const void *)(t + 64));
    const __m512i v2 = _mm512_loadu_si512((const void *)(t + 128));
    /* 0xe4 = (C ? A : B) bitwise: bits 6-7 from v2, bits 4-5 from v1 >> 2,
     * then bits 2-3 from v0 >> 4 under the mask 0xfc */
    __m512i x = _mm512_ternarylogic_epi32(v2, _mm512_srli_epi32(v1, 2), _mm512_set1_epi8((char)0xc0), 0xe4);
    x = _mm512_ternarylogic_epi32(x, _mm512_srli_epi32(v0, 4), _mm512_set1_epi8((char)0xf0), 0xe4);
    return _mm512_and_si512(x, _mm512_set1_epi8((char)0xfc));
}

/* out[k][r] for nt tokens (a compile-time constant once inlined). Per
 * super-block, half h and quarter mh (m = 4 mh .. 4 mh + 3): the int32
 * dot of each group 8h + 2q + mh (split over two chains below four
 * tokens, so that the vpdpbusd latencies overlap) times its int8 scale
 * (vpmulld) is summed into one int32 per row, scaled once by d * da; the
 * offsets 32 d sc_g (da * sum of group g's activations), summed over the
 * groups with the scales as floats and scaled by 32 d once, go to a
 * second float accumulator. From two tokens the groups go in two passes
 * (q = 0, 1 then 2, 3) so that the accumulators fit in the registers.
 * The dots of q = 3 (of 4 v_3) are divided by 4 before their scale
 * (exact: every term is a multiple of 4). */
TARGET __attribute__((always_inline)) static inline void q6k_rows_nt(const void *group, const kiln_qact *a, size_t t0,
                                                                     const int nt, float out[][KILN_X16_ROWS]) {
    const size_t n_in = a->n_in, nsb = n_in / KILN_QK_K, nb = n_in / KILN_QA_BLOCK;
    const int nch = nt < 4 ? 2 : 1, npass = nt == 1 ? 1 : 2, per = 4 / npass;
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
                for (int ps = 0; ps < npass; ps++) {
                    /* dq[e][c][k]: value q = per * ps + e, chain c, token k */
                    __m512i dq[4][2][KILN_QROW_MAX_TOK];
                    for (int e = 0; e < per; e++)
                        for (int c = 0; c < nch; c++)
                            for (int k = 0; k < nt; k++) dq[e][c][k] = _mm512_setzero_si512();
                    for (int m4 = 0; m4 < 4; m4++) {
                        const int m = 4 * mh + m4, c = m4 % nch;
                        const char *t = sb + OFF_QS + (size_t)(8 * h + m) * 192;
                        for (int e = 0; e < per; e++) {
                            const int q = per * ps + e;
                            __m512i w = q6k_ints(t, q);
                            for (int k = 0; k < nt; k++) {
                                const int8_t *x = qa[k] + i * KILN_QK_K + 128 * (size_t)h + 32 * (size_t)q + 4 * (size_t)m;
                                dq[e][c][k] = _mm512_dpbusd_epi32(dq[e][c][k], w, q6k_bcast4(x));
                            }
                        }
                    }
                    for (int e = 0; e < per; e++) {
                        const int q = per * ps + e;
                        __m512i s = q6k_scale(sb, 8 * h + 2 * q + mh);
                        for (int k = 0; k < nt; k++) {
                            __m512i dsum = nch == 2 ? _mm512_add_epi32(dq[e][0][k], dq[e][1][k]) : dq[e][0][k];
                            if (q == 3) dsum = _mm512_srai_epi32(dsum, 2);
                            isum[k] = _mm512_add_epi32(isum[k], _mm512_mullo_epi32(dsum, s));
                        }
                    }
                }
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(sb + OFF_D)));
        const __m512 d32 = _mm512_mul_ps(d, _mm512_set1_ps(32.0f));
        for (int k = 0; k < nt; k++) {
            size_t blk = (t0 + (size_t)k) * nb + i * 8;
            acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[k]), _mm512_mul_ps(d, _mm512_set1_ps(a->d[blk])), acc[k]);
        }
        /* sum of sc_g * ds16_g per token, in two chains (even, odd g) */
        __m512 os0[KILN_QROW_MAX_TOK], os1[KILN_QROW_MAX_TOK];
        for (int k = 0; k < nt; k++) os0[k] = os1[k] = _mm512_setzero_ps();
        for (int g = 0; g < 16; g += 2) {
            __m512 f0 = _mm512_cvtepi32_ps(q6k_scale(sb, g)), f1 = _mm512_cvtepi32_ps(q6k_scale(sb, g + 1));
            for (int k = 0; k < nt; k++) {
                const float *ds = a->ds16 + 2 * ((t0 + (size_t)k) * nb + i * 8) + g;
                os0[k] = _mm512_fmadd_ps(f0, _mm512_set1_ps(ds[0]), os0[k]);
                os1[k] = _mm512_fmadd_ps(f1, _mm512_set1_ps(ds[1]), os1[k]);
            }
        }
        for (int k = 0; k < nt; k++) off[k] = _mm512_fmadd_ps(d32, _mm512_add_ps(os0[k], os1[k]), off[k]);
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

/* The panel of the group: the integers of value q of triple (h, m) of
 * super-block i are step 64 i + 32 h + 8 q + m of u; s = d * sc and
 * b = -32 s per group and row, the same float products as
 * kiln__qgroups_row. */
TARGET static void q6k_panel(const void *group, size_t n_in, struct kiln_qpanel *p) {
    for (size_t i = 0; i < n_in / KILN_QK_K; i++) {
        const char *sb = (const char *)group + i * SB_BYTES;
        for (size_t h = 0; h < 2; h++)
            for (size_t m = 0; m < 8; m++)
                for (int q = 0; q < 4; q++) {
                    __m512i w = q6k_ints(sb + OFF_QS + (8 * h + m) * 192, q);
                    if (q == 3) w = _mm512_srli_epi32(w, 2); /* 4 v_3 -> v_3: its bits 0-1 are clear */
                    _mm512_storeu_si512((void *)(p->u + (64 * i + 32 * h + 8 * (size_t)q + m) * 64), w);
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
