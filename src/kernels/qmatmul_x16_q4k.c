/* src/kernels/qmatmul_x16_q4k.c - Q4_K weights in the x16 layout
 * (qmatmul_x16.h): the packing of 16 file rows into one group, the
 * one-token kernel that reads a group at memory speed, and the unpacking
 * of a group into a GEMM panel.
 *
 * A group of 16 rows of n_in values holds n_in / 256 super-blocks of
 * 16 * 144 = 2304 bytes each (the bytes of the 16 rows' blocks, reordered);
 * super-block i of the group, in order:
 *
 *   bytes    0 -   31  d of rows 0..15 (f16)
 *   bytes   32 -   63  dmin of rows 0..15 (f16)
 *   bytes   64 -  255  the 12 packed scale bytes of each row as three
 *                      vectors of 16 dwords: vector w, lane r = bytes
 *                      4w..4w+3 of row r's scales
 *   bytes  256 - 2303  the quants as 32 vectors of 16 dwords: vector v,
 *                      lane r = qs[4v..4v+3] of row r's block
 *
 * In a Q4_K block, byte qs[32c + l] holds value 64c + l (group 2c) in its
 * low nibble and value 64c + 32 + l (group 2c + 1) in its high nibble, so
 * lane r of quant vector v = 8c + m holds, in its low nibbles, values
 * 4m..4m+3 of row r's group 2c and, in its high nibbles, the same four
 * positions of group 2c + 1. Masked, the low nibbles of a vector meet four
 * activations of group 2c broadcast to every lane in one vpdpbusd, the
 * high nibbles four of group 2c + 1 in another: 16 rows advance by four
 * values with two instructions, and one 64-byte load serves every token.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/qmatmul_x16.h"
#include "tensor/quant_blocks.h"

#define TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

/* Bytes of one super-block of a group, and the offsets of its parts. */
#define SB_BYTES (KILN_X16_ROWS * sizeof(kiln_block_q4_K))
#define OFF_D 0
#define OFF_DMIN 32
#define OFF_SCALES 64
#define OFF_QS 256
_Static_assert(OFF_QS + 32 * 64 == SB_BYTES, "a Q4_K x16 super-block keeps the size of 16 blocks");

/* The file layout's 16 rows -> one group (plain byte moves; run once per
 * matrix at load). */
static void q4k_pack(const void *src, void *dst, size_t n_in) {
    const size_t nsb = n_in / KILN_QK_K, row_bytes = nsb * sizeof(kiln_block_q4_K);
    for (size_t i = 0; i < nsb; i++) {
        char *o = (char *)dst + i * SB_BYTES;
        for (size_t r = 0; r < KILN_X16_ROWS; r++) {
            /* block i of row r, read bytewise (rows need not be aligned) */
            const char *b = (const char *)src + r * row_bytes + i * sizeof(kiln_block_q4_K);
            memcpy(o + OFF_D + 2 * r, b + offsetof(kiln_block_q4_K, d), 2);
            memcpy(o + OFF_DMIN + 2 * r, b + offsetof(kiln_block_q4_K, dmin), 2);
            for (size_t w = 0; w < 3; w++)
                memcpy(o + OFF_SCALES + 64 * w + 4 * r, b + offsetof(kiln_block_q4_K, scales) + 4 * w, 4);
            for (size_t v = 0; v < 32; v++)
                memcpy(o + OFF_QS + 64 * v + 4 * r, b + offsetof(kiln_block_q4_K, qs) + 4 * v, 4);
        }
    }
}

/* The 6-bit scales (what = 0) or mins (what = 1) of a super-block's 16
 * rows, unpacked from the three scale vectors as kiln__q4k_scale_words does
 * for one row: v[0] holds in byte j of lane r the scale (min) of row r's
 * group j (j < 4), v[1] of group 4 + j. */
TARGET static inline void q4k_scale_vectors(const char *sb, int what, __m512i v[2]) {
    const __m512i w01 = _mm512_loadu_si512((const void *)(sb + OFF_SCALES + 64 * what));
    const __m512i w2 = _mm512_loadu_si512((const void *)(sb + OFF_SCALES + 128));
    const __m512i m6 = _mm512_set1_epi32(0x3f3f3f3f), m4 = _mm512_set1_epi32(0x0f0f0f0f);
    /* bits 6-7 of a byte moved to bits 4-5 of the same byte: (x >> 2) & 0x30 */
    const __m512i m45 = _mm512_set1_epi32(0x30303030);
    v[0] = _mm512_and_si512(w01, m6);
    /* groups 4-7: low 4 bits from w2's low nibbles (scales) or high nibbles (mins) */
    v[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(w2, 4 * what), m4),
                           _mm512_and_si512(_mm512_srli_epi32(w01, 2), m45));
}

/* Byte j of every lane of v as an int32. */
TARGET static inline __m512i q4k_byte(__m512i v, int j) {
    return _mm512_and_si512(_mm512_srli_epi32(v, 8 * j), _mm512_set1_epi32(0xff));
}

/* Four activation bytes broadcast to every lane. */
TARGET static inline __m512i q4k_bcast4(const int8_t *q) {
    int32_t v;
    memcpy(&v, q, 4);
    return _mm512_set1_epi32(v);
}

/* out[k][r] for nt tokens (a compile-time constant once inlined). Per
 * super-block and token: the int32 dot of each group times its 6-bit
 * scale (vpmulld), summed into one int32 per row, then one float fma by
 * d * da; the minimums dmin * mn_g * (da * sum of group g's activations)
 * are subtracted from the same accumulator.
 * The high nibbles are used in place (x & 0xf0, sixteen times the value:
 * no shift per load), so their dots are 16 times too large; the low
 * nibbles' dots are scaled by 16 sc to match and d * da by 1/16 (exact:
 * the int32 sums stay below 2^31 - 8 groups * 63 * 32 * 15 * 127 * 16 -
 * and scaling by a power of two changes no rounding).
 * Below four tokens each group's dot is split over two chains (even and
 * odd m) so that the vpdpbusd latencies overlap; with four tokens there
 * are enough chains already, and two would not fit in the registers. */
TARGET __attribute__((always_inline)) static inline void q4k_rows_nt(const void *group, const kiln_qact *a, size_t t0,
                                                                     const int nt, float out[][KILN_X16_ROWS]) {
    const size_t n_in = a->n_in, nsb = n_in / KILN_QK_K, nb = n_in / KILN_QA_BLOCK;
    const int nch = nt < 4 ? 2 : 1;
    const __m512i low = _mm512_set1_epi8(0x0f);
    const int8_t *qa[KILN_QROW_MAX_TOK];
    __m512 acc[KILN_QROW_MAX_TOK];
    for (int k = 0; k < nt; k++) {
        qa[k] = a->qs + (t0 + (size_t)k) * n_in;
        acc[k] = _mm512_setzero_ps();
    }
    for (size_t i = 0; i < nsb; i++) {
        const char *sb = (const char *)group + i * SB_BYTES;
        __m512i sc[2];
        q4k_scale_vectors(sb, 0, sc);
        __m512i isum[KILN_QROW_MAX_TOK];
        for (int k = 0; k < nt; k++) isum[k] = _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            const char *qv = sb + OFF_QS + 512 * c;
            __m512i dl[2][KILN_QROW_MAX_TOK], dh[2][KILN_QROW_MAX_TOK];
            for (int h = 0; h < nch; h++)
                for (int k = 0; k < nt; k++) dl[h][k] = dh[h][k] = _mm512_setzero_si512();
            for (int m = 0; m < 8; m++) {
                __m512i x = _mm512_loadu_si512((const void *)(qv + 64 * m));
                __m512i lo = _mm512_and_si512(x, low), hi16 = _mm512_andnot_si512(low, x);
                const int h = m % nch;
                for (int k = 0; k < nt; k++) {
                    const int8_t *q = qa[k] + i * KILN_QK_K + 64 * (size_t)c + 4 * (size_t)m;
                    dl[h][k] = _mm512_dpbusd_epi32(dl[h][k], lo, q4k_bcast4(q));
                    dh[h][k] = _mm512_dpbusd_epi32(dh[h][k], hi16, q4k_bcast4(q + 32));
                }
            }
            /* groups 2c and 2c + 1: bytes 2 (c % 2) and 2 (c % 2) + 1 of
             * sc[c / 2]; the low nibbles' scale times 16 */
            __m512i sl16 = _mm512_slli_epi32(q4k_byte(sc[c / 2], 2 * (c % 2)), 4);
            __m512i sh = q4k_byte(sc[c / 2], 2 * (c % 2) + 1);
            for (int k = 0; k < nt; k++) {
                __m512i l = dl[0][k], hh = dh[0][k];
                if (nch == 2) {
                    l = _mm512_add_epi32(l, dl[1][k]);
                    hh = _mm512_add_epi32(hh, dh[1][k]);
                }
                __m512i p = _mm512_add_epi32(_mm512_mullo_epi32(l, sl16), _mm512_mullo_epi32(hh, sh));
                isum[k] = _mm512_add_epi32(isum[k], p);
            }
        }
        const __m512 d16 = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(sb + OFF_D))),
                                         _mm512_set1_ps(1.0f / 16.0f));
        const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(sb + OFF_DMIN)));
        __m512i mn[2];
        q4k_scale_vectors(sb, 1, mn);
        __m512 mnd[8];
        for (int g = 0; g < 8; g++) mnd[g] = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(q4k_byte(mn[g / 4], g % 4)));
        for (int k = 0; k < nt; k++) {
            size_t blk = (t0 + (size_t)k) * nb + i * 8;
            /* two chains for the eight minimum terms */
            __m512 m0 = _mm512_mul_ps(mnd[0], _mm512_set1_ps(a->ds32[blk]));
            __m512 m1 = _mm512_mul_ps(mnd[1], _mm512_set1_ps(a->ds32[blk + 1]));
            for (int g = 2; g < 8; g += 2) {
                m0 = _mm512_fmadd_ps(mnd[g], _mm512_set1_ps(a->ds32[blk + (size_t)g]), m0);
                m1 = _mm512_fmadd_ps(mnd[g + 1], _mm512_set1_ps(a->ds32[blk + (size_t)g + 1]), m1);
            }
            acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[k]), _mm512_mul_ps(d16, _mm512_set1_ps(a->d[blk])), acc[k]);
            acc[k] = _mm512_sub_ps(acc[k], _mm512_add_ps(m0, m1));
        }
    }
    for (int k = 0; k < nt; k++) _mm512_storeu_ps(out[k], acc[k]);
}

TARGET static void q4k_rows(const void *group, const kiln_qact *a, size_t t0, int nt, float out[][KILN_X16_ROWS]) {
    switch (nt) {
    case 1: q4k_rows_nt(group, a, t0, 1, out); return;
    case 2: q4k_rows_nt(group, a, t0, 2, out); return;
    case 3: q4k_rows_nt(group, a, t0, 3, out); return;
    default: q4k_rows_nt(group, a, t0, KILN_QROW_MAX_TOK, out); return;
    }
}

/* The panel of the group: quant vector v = 8c + m of super-block i gives,
 * masked, step 64 i + 16 c + m of u (values 4m..4m+3 of group 2c) and,
 * shifted, step 64 i + 16 c + 8 + m (group 2c + 1); s = d * sc and
 * b = -(dmin * mn) per group and row, the same float products as
 * kiln__qgroups_row. */
TARGET static void q4k_panel(const void *group, size_t n_in, struct kiln_qpanel *p) {
    const __m512i low = _mm512_set1_epi8(0x0f);
    for (size_t i = 0; i < n_in / KILN_QK_K; i++) {
        const char *sb = (const char *)group + i * SB_BYTES;
        for (size_t c = 0; c < 4; c++)
            for (size_t m = 0; m < 8; m++) {
                __m512i x = _mm512_loadu_si512((const void *)(sb + OFF_QS + 64 * (8 * c + m)));
                uint8_t *u = p->u + (64 * i + 16 * c + m) * 64;
                _mm512_storeu_si512((void *)u, _mm512_and_si512(x, low));
                _mm512_storeu_si512((void *)(u + 8 * 64), _mm512_and_si512(_mm512_srli_epi16(x, 4), low));
            }
        __m512i sc[2], mn[2];
        q4k_scale_vectors(sb, 0, sc);
        q4k_scale_vectors(sb, 1, mn);
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(sb + OFF_D)));
        const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(sb + OFF_DMIN)));
        for (int g = 0; g < 8; g++) {
            size_t at = (8 * i + (size_t)g) * KILN_X16_ROWS;
            __m512 scf = _mm512_cvtepi32_ps(q4k_byte(sc[g / 4], g % 4));
            __m512 mnf = _mm512_cvtepi32_ps(q4k_byte(mn[g / 4], g % 4));
            _mm512_storeu_ps(p->s + at, _mm512_mul_ps(d, scf));
            /* negated by its sign bit, as -(x) is (0 - x would turn -0 into +0) */
            __m512i neg = _mm512_xor_si512(_mm512_castps_si512(_mm512_mul_ps(dmin, mnf)), _mm512_set1_epi32(INT32_MIN));
            _mm512_storeu_ps(p->b + at, _mm512_castsi512_ps(neg));
        }
    }
}

const struct kiln_x16_type kiln__x16_q4_k = {
    .wtype = KILN_DTYPE_Q4_K,
    .pack = q4k_pack,
    .rows = q4k_rows,
    .panel = q4k_panel,
};
