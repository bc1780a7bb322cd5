/* src/kernels/qmatmul_x16_legacy.c - the x16 forms (qmatmul_x16.h) of the
 * legacy block types Q8_0, Q4_0 and Q5_0 (32 values and one f16 scale per
 * block): packing, the one-token row kernel, and the GEMM panel.
 *
 * Order inside a group of 16 rows. Block column i (values 32 i .. 32 i +
 * 31 of the 16 rows) is a quant part of QB bytes and a scale part of 32
 * bytes (the 16 rows' f16 scales, row r at bytes 2 r). The quant part is
 * made of 64-byte vectors in which int32 lane r holds four quant bytes of
 * row r:
 *   Q8_0 (QB 512): vector v (0..7) = values 4 v .. 4 v + 3, stored + 128
 *                  (unsigned, as vpdpbusd takes them);
 *   Q4_0 (QB 256): vector v (0..3) = the file's quant bytes 4 v .. 4 v + 3,
 *                  low nibbles values 4 v + j, high nibbles 16 + 4 v + j;
 *   Q5_0 (QB 320): the nibbles as Q4_0, then 8 masks of 64 bits: mask v
 *                  (0..3) has bit 4 r + j = bit 4 of value 4 v + j of row r
 *                  (low nibbles of vector v), mask 4 + v the same for value
 *                  16 + 4 v + j (high nibbles).
 * Columns go by pairs, scales then quants: [S(i) S(i+1) Q(i) Q(i+1)] (the
 * 64 bytes of scales are one line, read first: the group is read in
 * ascending order), a last odd column as [Q(i) S(i)]. A pair is a whole number of 64-byte lines
 * (576, 1088 or 704 bytes), so in a group that starts on a line (kiln
 * loads matrices 64-aligned; rows of an even number of blocks keep every
 * group so) the vectors lie on lines; the loads are unaligned ones all the
 * same, for the other cases. A group is read front to back in one stream.
 *
 * The row kernel: per block column and token, one vpdpbusd per vector with
 * the token's four activation bytes broadcast to all lanes (two chains of
 * int32 sums), the sum converted to float and scaled by the vector of 16
 * row scales times da; the offset term (-off d) (da * sum(a)) is one more
 * multiply-add of the scale vector per block, and the 16 results come out
 * as one vector: no permutes, no horizontal sums.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/qmatmul_x16.h"
#include "tensor/quant_blocks.h"

#define TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

/* The legacy types handled here. */
enum x16_legacy { X_Q8_0, X_Q4_0, X_Q5_0 };

/* Bytes of a file block, of a column's quant part, and the offset that
 * turns the stored unsigned integers into the signed values. */
#define X_BLOCK_BYTES(type) ((type) == X_Q8_0 ? sizeof(kiln_block_q8_0) \
                             : (type) == X_Q4_0 ? sizeof(kiln_block_q4_0) : sizeof(kiln_block_q5_0))
#define X_QB(type) ((type) == X_Q8_0 ? 512u : (type) == X_Q4_0 ? 256u : 320u)
#define X_OFF(type) ((type) == X_Q8_0 ? 128.0f : (type) == X_Q4_0 ? 8.0f : 16.0f)
/* Bytes of a column's 16 scales. */
#define X_SB 32u

/* Offset in the group of column i's quant part, and of its scales (nb
 * columns in all). */
static inline size_t quant_off(size_t i, size_t nb, size_t qb) {
    size_t pair = (i / 2) * 2 * (qb + X_SB);
    return i % 2 == 0 && i + 1 == nb ? pair : pair + 2 * X_SB + (i % 2) * qb;
}
static inline size_t scale_off(size_t i, size_t nb, size_t qb) {
    size_t pair = (i / 2) * 2 * (qb + X_SB);
    return i % 2 == 0 && i + 1 == nb ? pair + qb : pair + (i % 2) * X_SB;
}

/* ---- packing ---- */

static void pack_legacy(const void *src, void *dst, size_t n_in, const int type) {
    const size_t nb = n_in / KILN_QK, bs = X_BLOCK_BYTES(type), qb = X_QB(type), row_bytes = nb * bs;
    const uint8_t *s = src;
    uint8_t *d = dst;
    for (size_t i = 0; i < nb; i++) {
        uint8_t *q = d + quant_off(i, nb, qb), *sc = d + scale_off(i, nb, qb);
        uint64_t masks[8] = {0};
        for (size_t r = 0; r < KILN_X16_ROWS; r++) {
            const uint8_t *blk = s + r * row_bytes + i * bs;
            memcpy(sc + 2 * r, blk, 2);
            if (type == X_Q8_0) {
                for (size_t v = 0; v < 8; v++)
                    for (size_t j = 0; j < 4; j++) q[v * 64 + r * 4 + j] = (uint8_t)(blk[2 + 4 * v + j] ^ 0x80u);
                continue;
            }
            const uint8_t *qs = blk + (type == X_Q4_0 ? 2 : 6);
            for (size_t v = 0; v < 4; v++) memcpy(q + v * 64 + r * 4, qs + 4 * v, 4);
            if (type == X_Q5_0) {
                uint32_t qh;
                memcpy(&qh, blk + 2, 4);
                for (size_t m = 0; m < 8; m++) /* m = 4 half + v: values 16 half + 4 v + j */
                    for (size_t j = 0; j < 4; j++)
                        masks[m] |= (uint64_t)((qh >> (16 * (m / 4) + 4 * (m % 4) + j)) & 1u) << (4 * r + j);
            }
        }
        if (type == X_Q5_0) memcpy(q + 256, masks, sizeof masks);
    }
}

static void pack_q8_0(const void *src, void *dst, size_t n_in) { pack_legacy(src, dst, n_in, X_Q8_0); }
static void pack_q4_0(const void *src, void *dst, size_t n_in) { pack_legacy(src, dst, n_in, X_Q4_0); }
static void pack_q5_0(const void *src, void *dst, size_t n_in) { pack_legacy(src, dst, n_in, X_Q5_0); }

/* ---- the row kernel ---- */

/* Four activation bytes broadcast to every int32 lane. */
TARGET static inline __m512i bcast4(const int8_t *q) {
    int32_t v;
    memcpy(&v, q, 4);
    return _mm512_set1_epi32(v);
}

/* Bit 4 (0x10) added to the bytes of u that the 64-bit mask at m selects. */
TARGET static inline __m512i add_bit4(__m512i u, const uint8_t *m) {
    uint64_t bits;
    memcpy(&bits, m, 8);
    return _mm512_mask_add_epi8(u, _cvtu64_mask64(bits), u, _mm512_set1_epi8(0x10));
}

/* Block column i (quants at q, scales at sc) for tokens t0 .. t0 + nt - 1:
 * the integer dot of each row scaled by d * da into acc[k], d * (da *
 * sum(a)) into bias[k]. */
TARGET __attribute__((always_inline)) static inline void col(const uint8_t *q, const uint8_t *sc, size_t i,
                                                             const kiln_qact *a, size_t t0, const int nt,
                                                             __m512 *acc, __m512 *bias, const int type) {
    const size_t n_in = a->n_in, nb = n_in / KILN_QK;
    const __m512 dv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)sc));
    /* w[0..3]: the vectors of the first chain, w[4..7] of the second */
    __m512i w[8];
    if (type == X_Q8_0) {
        for (int v = 0; v < 8; v++) w[v] = _mm512_loadu_si512((const void *)(q + 64 * v));
    } else {
        const __m512i low = _mm512_set1_epi8(0x0f);
        for (int v = 0; v < 4; v++) {
            __m512i x = _mm512_loadu_si512((const void *)(q + 64 * v));
            w[v] = _mm512_and_si512(x, low);
            if (type == X_Q4_0) {
                /* the high nibbles kept in place (16 times their value): that
                 * chain's sum is shifted down by 4 once */
                w[4 + v] = _mm512_andnot_si512(low, x);
            } else {
                w[4 + v] = _mm512_and_si512(_mm512_srli_epi16(x, 4), low);
                w[v] = add_bit4(w[v], q + 256 + 8 * v);
                w[4 + v] = add_bit4(w[4 + v], q + 256 + 8 * (4 + v));
            }
        }
    }
    for (int k = 0; k < nt; k++) {
        const size_t t = t0 + (size_t)k;
        const int8_t *qa = a->qs + t * n_in + i * KILN_QK;
        __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
        if (type == X_Q8_0) {
            /* values 4v..4v+3 of vector v: even vectors on one chain, odd on the other */
            for (int v = 0; v < 8; v += 2) {
                s0 = _mm512_dpbusd_epi32(s0, w[v], bcast4(qa + 4 * v));
                s1 = _mm512_dpbusd_epi32(s1, w[v + 1], bcast4(qa + 4 * v + 4));
            }
        } else {
            for (int v = 0; v < 4; v++) {
                s0 = _mm512_dpbusd_epi32(s0, w[v], bcast4(qa + 4 * v));
                s1 = _mm512_dpbusd_epi32(s1, w[4 + v], bcast4(qa + 16 + 4 * v));
            }
            if (type == X_Q4_0) s1 = _mm512_srai_epi32(s1, 4);
        }
        const __m512 sum = _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1));
        acc[k] = _mm512_fmadd_ps(sum, _mm512_mul_ps(dv, _mm512_set1_ps(a->d[t * nb + i])), acc[k]);
        bias[k] = _mm512_fmadd_ps(dv, _mm512_set1_ps(a->ds32[t * nb + i]), bias[k]);
    }
}

TARGET __attribute__((always_inline)) static inline void rows_legacy(const void *group, const kiln_qact *a,
                                                                     size_t t0, const int nt,
                                                                     float out[][KILN_X16_ROWS], const int type) {
    const size_t nb = a->n_in / KILN_QK, qb = X_QB(type);
    const uint8_t *g = group;
    __m512 acc[KILN_QROW_MAX_TOK], bias[KILN_QROW_MAX_TOK];
    for (int k = 0; k < nt; k++) acc[k] = bias[k] = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 2 <= nb; i += 2, g += 2 * (qb + X_SB)) {
        col(g + 2 * X_SB, g, i, a, t0, nt, acc, bias, type);
        col(g + 2 * X_SB + qb, g + X_SB, i + 1, a, t0, nt, acc, bias, type);
    }
    if (i < nb) col(g, g + qb, i, a, t0, nt, acc, bias, type);
    for (int k = 0; k < nt; k++) _mm512_storeu_ps(out[k], _mm512_fnmadd_ps(bias[k], _mm512_set1_ps(X_OFF(type)), acc[k]));
}

/* One kernel with the token count a compile-time constant. */
#define X_CASES(type)                                                  \
    switch (nt) {                                                      \
    case 1: rows_legacy(group, a, t0, 1, out, type); return;           \
    case 2: rows_legacy(group, a, t0, 2, out, type); return;           \
    case 3: rows_legacy(group, a, t0, 3, out, type); return;           \
    default: rows_legacy(group, a, t0, KILN_QROW_MAX_TOK, out, type); return; \
    }

TARGET static void rows_q8_0(const void *group, const kiln_qact *a, size_t t0, int nt, float out[][KILN_X16_ROWS]) {
    X_CASES(X_Q8_0)
}
TARGET static void rows_q4_0(const void *group, const kiln_qact *a, size_t t0, int nt, float out[][KILN_X16_ROWS]) {
    X_CASES(X_Q4_0)
}
TARGET static void rows_q5_0(const void *group, const kiln_qact *a, size_t t0, int nt, float out[][KILN_X16_ROWS]) {
    X_CASES(X_Q5_0)
}

/* ---- the GEMM panel ---- */

/* p->u step s (values 4 s .. 4 s + 3 of the 16 rows, lane r = row r) is
 * vector v of column i for Q8_0 (s = 8 i + v), the low nibbles (s = 8 i +
 * v) or high nibbles (s = 8 i + 4 + v) of vector v for Q4_0 and Q5_0; the
 * scales as f32 and the biases -off * d, as kiln__qgroups_row gives them. */
TARGET static inline void panel_legacy(const void *group, size_t n_in, struct kiln_qpanel *p, const int type) {
    const size_t nb = n_in / KILN_QK, qb = X_QB(type);
    const uint8_t *g = group;
    const __m512i low = _mm512_set1_epi8(0x0f);
    for (size_t i = 0; i < nb; i++) {
        const uint8_t *q = g + quant_off(i, nb, qb);
        uint8_t *u = p->u + i * KILN_QK * KILN_X16_ROWS;
        if (type == X_Q8_0) {
            for (int v = 0; v < 8; v++)
                _mm512_store_si512((void *)(u + 64 * v), _mm512_loadu_si512((const void *)(q + 64 * v)));
        } else {
            for (int v = 0; v < 4; v++) {
                __m512i x = _mm512_loadu_si512((const void *)(q + 64 * v));
                __m512i lo = _mm512_and_si512(x, low), hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), low);
                if (type == X_Q5_0) {
                    lo = add_bit4(lo, q + 256 + 8 * v);
                    hi = add_bit4(hi, q + 256 + 8 * (4 + v));
                }
                _mm512_store_si512((void *)(u + 64 * v), lo);
                _mm512_store_si512((void *)(u + 64 * (4 + v)), hi);
            }
        }
        __m512 s = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(g + scale_off(i, nb, qb))));
        _mm512_store_ps(p->s + i * KILN_X16_ROWS, s);
        _mm512_store_ps(p->b + i * KILN_X16_ROWS, _mm512_mul_ps(s, _mm512_set1_ps(-X_OFF(type))));
    }
}

TARGET static void panel_q8_0(const void *group, size_t n_in, struct kiln_qpanel *p) {
    panel_legacy(group, n_in, p, X_Q8_0);
}
TARGET static void panel_q4_0(const void *group, size_t n_in, struct kiln_qpanel *p) {
    panel_legacy(group, n_in, p, X_Q4_0);
}
TARGET static void panel_q5_0(const void *group, size_t n_in, struct kiln_qpanel *p) {
    panel_legacy(group, n_in, p, X_Q5_0);
}

const struct kiln_x16_type kiln__x16_q8_0 = {KILN_DTYPE_Q8_0, pack_q8_0, rows_q8_0, panel_q8_0};
const struct kiln_x16_type kiln__x16_q4_0 = {KILN_DTYPE_Q4_0, pack_q4_0, rows_q4_0, panel_q4_0};
const struct kiln_x16_type kiln__x16_q5_0 = {KILN_DTYPE_Q5_0, pack_q5_0, rows_q5_0, panel_q5_0};
