/* src/kernels/qmatmul_row512.c - the row kernels of the avx512 level of
 * the quantized matmul (token generation: 1 to 15 tokens per call).
 *
 * The same contract and formula as the 256-bit row kernels of
 * qmatmul_rows.h, on 512-bit registers: one vpdpbusd covers two 32-value
 * blocks of a legacy type, 64 values (two groups) of Q4_K, or 64 values
 * (four groups) of Q6_K.
 * Instead of reducing each block's eight int32 lanes to one sum, the lanes
 * are converted to float and multiplied lane-wise by their block's scale
 * d * da (one permute spreads eight scales over the pairs of blocks), so a
 * pair of blocks costs a handful of instructions and one weight row streams
 * at memory speed on one core.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/qmatmul_impl.h"
#include "tensor/quant_blocks.h"

#define TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

/* The legacy types (32 values per block, one f16 scale first in it). */
enum r5_legacy { R5_Q8_0, R5_Q4_0, R5_Q5_0 };

/* Block bytes of a legacy type. */
#define R5_LEGACY_BYTES(type) ((type) == R5_Q8_0 ? sizeof(kiln_block_q8_0) \
                               : (type) == R5_Q4_0 ? sizeof(kiln_block_q4_0) : sizeof(kiln_block_q5_0))

/* The unsigned integers of one block, 32 bytes in value order: Q8_0's
 * quants + 128, Q4_0's nibbles (low nibbles are values 0-15, high ones
 * 16-31), Q5_0's with bit j of qh as bit 4 of value j. */
TARGET __attribute__((always_inline)) static inline __m256i r5_unpack1(const char *b0, const int type) {
    if (type == R5_Q8_0)
        return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(b0 + 2)), _mm256_set1_epi8(-128));
    const __m128i low = _mm_set1_epi8(0x0f);
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(b0 + (type == R5_Q4_0 ? 2 : 6)));
    __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(x, 4), low), _mm_and_si128(x, low));
    if (type == R5_Q4_0) return u;
    uint32_t h;
    memcpy(&h, b0 + 2, 4);
    return _mm256_mask_add_epi8(u, _cvtu32_mask32(h), u, _mm256_set1_epi8(0x10));
}

/* Sum of the 8 lanes. */
TARGET static inline float r5_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Sum of the 4 lanes. */
TARGET static inline float r5_hsum128(__m128 s) {
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The four f16 scales of blocks b, b + bs, b + 2 bs, b + 3 bs as f32. */
TARGET static inline __m128 r5_scales4(const char *b, size_t bs) {
    uint64_t h = 0;
    for (int j = 0; j < 4; j++) {
        uint16_t v;
        memcpy(&v, b + (size_t)j * bs, 2);
        h |= (uint64_t)v << (16 * j);
    }
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)h));
}

/* One block at a time on 256-bit registers (value-order quants): the
 * integer dot scaled by d * da into tacc, d * (da * sum(a)) into *tbias. */
TARGET __attribute__((always_inline)) static inline void r5_block1(const char *blk, const kiln_qact *a, size_t t,
                                                                   size_t i, __m256 *tacc, float *tbias,
                                                                   const int type) {
    size_t nb = a->n_in / KILN_QK;
    __m256i w = r5_unpack1(blk, type);
    uint16_t h;
    memcpy(&h, blk, 2);
    float d = _cvtsh_ss(h);
    __m256i dot = _mm256_dpbusd_epi32(_mm256_setzero_si256(), w,
                                      _mm256_loadu_si256((const __m256i *)(const void *)(a->qs + t * a->n_in + i * KILN_QK)));
    *tacc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(d * a->d[t * nb + i]), *tacc);
    *tbias += d * a->ds32[t * nb + i];
}

/* Q8_0, two blocks per vpdpbusd: 16 int32 lanes, 8 per block, scaled
 * lane-wise by d * da (eight scales per step of eight blocks, spread over
 * the pairs by a permute); the offset term -128 d (da * sum(a)) is summed
 * as a vector of eight blocks. The last nb % 8 blocks go one at a time. */
TARGET __attribute__((always_inline)) static inline void r5_q8_0(const void *wrow, const kiln_qact *a, size_t t0,
                                                                 const int nt, float *out) {
    const char *base = wrow;
    const size_t bs = sizeof(kiln_block_q8_0), nb = a->n_in / KILN_QK;
    const __m512i pick[4] = {
        _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
        _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3),
        _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5),
        _mm512_setr_epi32(6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7),
    };
    __m512 acc[KILN_QROW_MAX_TOK];
    __m256 bias[KILN_QROW_MAX_TOK], tacc[KILN_QROW_MAX_TOK];
    float tbias[KILN_QROW_MAX_TOK];
    for (int k = 0; k < nt; k++) {
        acc[k] = _mm512_setzero_ps();
        bias[k] = _mm256_setzero_ps();
        tacc[k] = _mm256_setzero_ps();
        tbias[k] = 0.0f;
    }
    size_t i = 0;
    for (; i + 8 <= nb; i += 8) {
        const char *blk = base + i * bs;
        __m512i w[4];
        for (int p = 0; p < 4; p++) {
            const char *b0 = blk + (size_t)(2 * p) * bs;
            __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)(b0 + 2))),
                                           _mm256_loadu_si256((const __m256i *)(const void *)(b0 + bs + 2)), 1);
            w[p] = _mm512_xor_si512(q, _mm512_set1_epi8(-128));
        }
        __m256 dw = _mm256_set_m128(r5_scales4(blk + 4 * bs, bs), r5_scales4(blk, bs));
        for (int k = 0; k < nt; k++) {
            size_t t = t0 + (size_t)k;
            const int8_t *qa = a->qs + t * a->n_in + i * KILN_QK;
            __m512 sc = _mm512_castps256_ps512(_mm256_mul_ps(dw, _mm256_loadu_ps(a->d + t * nb + i)));
            for (int p = 0; p < 4; p++) {
                __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[p], _mm512_loadu_si512((const void *)(qa + 64 * p)));
                acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(pick[p], sc), acc[k]);
            }
            bias[k] = _mm256_fmadd_ps(dw, _mm256_loadu_ps(a->ds32 + t * nb + i), bias[k]);
        }
    }
    for (; i < nb; i++)
        for (int k = 0; k < nt; k++) r5_block1(base + i * bs, a, t0 + (size_t)k, i, &tacc[k], &tbias[k], R5_Q8_0);
    for (int k = 0; k < nt; k++)
        out[k] = _mm512_reduce_add_ps(acc[k]) + r5_hsum256(tacc[k]) - 128.0f * (r5_hsum256(bias[k]) + tbias[k]);
}

/* Q4_0 and Q5_0, four blocks per step: their 4 x 16 quant bytes fill one
 * register, whose low nibbles meet the first 64 bytes of the reordered
 * activations (a->qs_nib: values 0-15 of each block) and high nibbles the
 * next 64 (values 16-31), two vpdpbusd into the same int32 lanes, 4 per
 * block, scaled lane-wise by d * da. The offset -off d (da * sum(a)) (off
 * 8, or 16 for Q5_0) is summed as a vector of four blocks. Two
 * accumulators alternate so that the additions overlap. The last nb % 4
 * blocks go one at a time. */
TARGET __attribute__((always_inline)) static inline void r5_nib_legacy(const void *wrow, const kiln_qact *a,
                                                                       size_t t0, const int nt, float *out,
                                                                       const int type) {
    const char *base = wrow;
    const size_t bs = R5_LEGACY_BYTES(type), nb = a->n_in / KILN_QK, qoff = type == R5_Q4_0 ? 2 : 6;
    const float off = type == R5_Q4_0 ? 8.0f : 16.0f;
    const __m512i pick = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m512i low = _mm512_set1_epi8(0x0f);
    __m512 acc[2][KILN_QROW_MAX_TOK];
    __m128 bias[KILN_QROW_MAX_TOK];
    __m256 tacc[KILN_QROW_MAX_TOK];
    float tbias[KILN_QROW_MAX_TOK];
    for (int k = 0; k < nt; k++) {
        acc[0][k] = acc[1][k] = _mm512_setzero_ps();
        bias[k] = _mm_setzero_ps();
        tacc[k] = _mm256_setzero_ps();
        tbias[k] = 0.0f;
    }
    size_t i = 0;
    for (int step = 0; i + 4 <= nb; i += 4, step ^= 1) {
        const char *blk = base + i * bs;
        __m512i x = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(const void *)(blk + qoff)));
        x = _mm512_inserti32x4(x, _mm_loadu_si128((const __m128i *)(const void *)(blk + bs + qoff)), 1);
        x = _mm512_inserti32x4(x, _mm_loadu_si128((const __m128i *)(const void *)(blk + 2 * bs + qoff)), 2);
        x = _mm512_inserti32x4(x, _mm_loadu_si128((const __m128i *)(const void *)(blk + 3 * bs + qoff)), 3);
        __m512i lo = _mm512_and_si512(x, low), hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), low);
        if (type == R5_Q5_0) {
            /* bit j of a block's qh is bit 4 of its value j: bits 0-15 go
             * with the low nibbles, 16-31 with the high ones */
            uint64_t mlo = 0, mhi = 0;
            for (int j = 0; j < 4; j++) {
                uint32_t h;
                memcpy(&h, blk + (size_t)j * bs + 2, 4);
                mlo |= (uint64_t)(h & 0xffffu) << (16 * j);
                mhi |= (uint64_t)(h >> 16) << (16 * j);
            }
            lo = _mm512_mask_add_epi8(lo, _cvtu64_mask64(mlo), lo, _mm512_set1_epi8(0x10));
            hi = _mm512_mask_add_epi8(hi, _cvtu64_mask64(mhi), hi, _mm512_set1_epi8(0x10));
        }
        __m128 dw = r5_scales4(blk, bs);
        for (int k = 0; k < nt; k++) {
            size_t t = t0 + (size_t)k;
            const int8_t *qn = a->qs_nib + t * a->n_in + i * KILN_QK;
            __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_loadu_si512((const void *)qn));
            dot = _mm512_dpbusd_epi32(dot, hi, _mm512_loadu_si512((const void *)(qn + 64)));
            __m512 sc = _mm512_castps128_ps512(_mm_mul_ps(dw, _mm_loadu_ps(a->d + t * nb + i)));
            acc[step][k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(pick, sc), acc[step][k]);
            bias[k] = _mm_fmadd_ps(dw, _mm_loadu_ps(a->ds32 + t * nb + i), bias[k]);
        }
    }
    for (; i < nb; i++)
        for (int k = 0; k < nt; k++) r5_block1(base + i * bs, a, t0 + (size_t)k, i, &tacc[k], &tbias[k], type);
    for (int k = 0; k < nt; k++)
        out[k] = _mm512_reduce_add_ps(_mm512_add_ps(acc[0][k], acc[1][k])) + r5_hsum256(tacc[k]) -
                 off * (r5_hsum128(bias[k]) + tbias[k]);
}

#define r5_q4_0(w, a, t0, nt, out) r5_nib_legacy(w, a, t0, nt, out, R5_Q4_0)
#define r5_q5_0(w, a, t0, nt, out) r5_nib_legacy(w, a, t0, nt, out, R5_Q5_0)

/* Q4_K (activations by the Q8_K rule: one da per 256 values). 64 quant
 * bytes (chunks c and c + 1) fill one register: their low nibbles are
 * groups 2c and 2c + 2, their high nibbles groups 2c + 1 and 2c + 3, met
 * by the reordered activations (a->qs_nib). Each vpdpbusd leaves 8 int32
 * lanes per group (below 2^15 in size), packed two registers into one of
 * int16 and multiplied by the groups' 6-bit scales with vpdpwssd into one
 * int32 sum per super-block, scaled by d * da once; the minimums
 * dmin * mn * (da * sum(a)) are summed as a vector of the eight groups. */
TARGET __attribute__((always_inline)) static inline void r5_q4_K(const void *wrow, const kiln_qact *a, size_t t0,
                                                                 const int nt, float *out) {
    const kiln_block_q4_K *b = wrow;
    size_t nsb = a->n_in / KILN_QK_K, nb = a->n_in / KILN_QA_BLOCK;
    const __m512i low = _mm512_set1_epi8(0x0f);
    /* packs_epi32(lo, hi) holds, per 128-bit lane L, words 0-3 from lo's
     * lane L and 4-7 from hi's: lanes 0-1 are groups (4p, 4p + 1), lanes
     * 2-3 groups (4p + 2, 4p + 3); the scale words follow that pattern */
    static const int16_t pick_words[2][32] = {
        {0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 2, 2, 2, 2, 3, 3, 3, 3},
        {4, 4, 4, 4, 5, 5, 5, 5, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7, 6, 6, 6, 6, 7, 7, 7, 7},
    };
    const __m512i pick[2] = {_mm512_loadu_si512((const void *)pick_words[0]),
                             _mm512_loadu_si512((const void *)pick_words[1])};
    __m512 acc[KILN_QROW_MAX_TOK];
    __m256 mins[KILN_QROW_MAX_TOK];
    for (int k = 0; k < nt; k++) {
        acc[k] = _mm512_setzero_ps();
        mins[k] = _mm256_setzero_ps();
    }
    for (size_t i = 0; i < nsb; i++) {
        /* the 6-bit scales and mins of the 8 groups, four to a word */
        uint32_t sm[4];
        kiln__q4k_scale_words(b[i].scales, sm);
        uint32_t sc_lo = sm[0], sc_hi = sm[1], mn_lo = sm[2], mn_hi = sm[3];
        __m512i sc16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_setr_epi32((int)sc_lo, (int)sc_hi, 0, 0)));
        __m256 mnv = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_setr_epi32((int)mn_lo, (int)mn_hi, 0, 0))),
                                   _mm256_set1_ps(_cvtsh_ss(b[i].dmin)));
        float d = _cvtsh_ss(b[i].d);
        __m512i lo[2], hi[2], scv[2];
        for (int p = 0; p < 2; p++) {
            __m512i x = _mm512_loadu_si512((const void *)(b[i].qs + 64 * p));
            lo[p] = _mm512_and_si512(x, low);
            hi[p] = _mm512_and_si512(_mm512_srli_epi16(x, 4), low);
            scv[p] = _mm512_permutexvar_epi16(pick[p], sc16);
        }
        for (int k = 0; k < nt; k++) {
            size_t t = t0 + (size_t)k;
            const int8_t *qn = a->qs_nib + t * a->n_in + i * KILN_QK_K;
            __m512i sum = _mm512_setzero_si512();
            for (int p = 0; p < 2; p++) {
                __m512i dl = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo[p], _mm512_loadu_si512((const void *)(qn + 128 * p)));
                __m512i dh = _mm512_dpbusd_epi32(_mm512_setzero_si512(), hi[p],
                                                 _mm512_loadu_si512((const void *)(qn + 128 * p + 64)));
                sum = _mm512_dpwssd_epi32(sum, _mm512_packs_epi32(dl, dh), scv[p]);
            }
            acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(d * a->d[t * nb + i * 8]), acc[k]);
            mins[k] = _mm256_fmadd_ps(mnv, _mm256_loadu_ps(a->ds32 + t * nb + i * 8), mins[k]);
        }
    }
    for (int k = 0; k < nt; k++) out[k] = _mm512_reduce_add_ps(acc[k]) - r5_hsum256(mins[k]);
}

/* Q6_K (Q8_K activations, in value order). The 6-bit values of each
 * 128-value half come as 64 ql bytes (low nibbles: values 0-63, high
 * nibbles: 64-127) and 32 qh bytes (bit pairs 0-1, 2-3, 4-5, 6-7: values
 * l, l + 32, l + 64, l + 96); the qh bytes, loaded into both 256-bit
 * halves and shifted per half as 64-bit lanes, give bits 4-5 of each
 * value under the mask 0x30. One vpdpbusd per 64 values leaves 4 int32
 * lanes per group of 16 (at most 4 * 63 * 127 in size, so they pack to
 * int16 without saturating), multiplied by the groups' int8 scales with
 * vpdpwssd into one int32 sum per super-block, scaled by d * da once; the
 * offset -32 d sc (da * sum(a)) of the 16 groups is one vector. */
TARGET __attribute__((always_inline)) static inline void r5_q6_K(const void *wrow, const kiln_qact *a, size_t t0,
                                                                 const int nt, float *out) {
    const kiln_block_q6_K *b = wrow;
    size_t nsb = a->n_in / KILN_QK_K, nb = a->n_in / KILN_QA_BLOCK;
    const __m512i low = _mm512_set1_epi8(0x0f), bits45 = _mm512_set1_epi8(0x30);
    /* left shifts that bring qh bit pairs 0-1 (low half) and 2-3 (high
     * half) to bits 4-5; right shifts for pairs 4-5 and 6-7 */
    const __m512i shl = _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2);
    const __m512i shr = _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2);
    /* packs_epi32(lo, hi) holds, per 128-bit lane L, words 0-3 from lo's
     * lane L (group L of the values 0-63 of the half) and 4-7 from hi's
     * (group 4 + L); the scale words follow that pattern, per half */
    static const int16_t pick_words[2][32] = {
        {0, 0, 0, 0, 4, 4, 4, 4, 1, 1, 1, 1, 5, 5, 5, 5, 2, 2, 2, 2, 6, 6, 6, 6, 3, 3, 3, 3, 7, 7, 7, 7},
        {8, 8, 8, 8, 12, 12, 12, 12, 9, 9, 9, 9, 13, 13, 13, 13, 10, 10, 10, 10, 14, 14, 14, 14, 11, 11, 11, 11, 15, 15, 15, 15},
    };
    const __m512i pick[2] = {_mm512_loadu_si512((const void *)pick_words[0]),
                             _mm512_loadu_si512((const void *)pick_words[1])};
    __m512 acc[KILN_QROW_MAX_TOK], offs[KILN_QROW_MAX_TOK];
    for (int k = 0; k < nt; k++) {
        acc[k] = _mm512_setzero_ps();
        offs[k] = _mm512_setzero_ps();
    }
    for (size_t i = 0; i < nsb; i++) {
        float d = _cvtsh_ss(b[i].d);
        __m128i sc8 = _mm_loadu_si128((const __m128i *)(const void *)b[i].scales);
        __m512i sc16 = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(sc8));
        __m512 dsc = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc8)), _mm512_set1_ps(32.0f * d));
        __m512i lo[2], hi[2], scv[2];
        for (int h = 0; h < 2; h++) {
            __m512i x = _mm512_loadu_si512((const void *)(b[i].ql + 64 * h));
            __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(const void *)(b[i].qh + 32 * h)));
            lo[h] = _mm512_or_si512(_mm512_and_si512(x, low), _mm512_and_si512(_mm512_sllv_epi64(qh, shl), bits45));
            hi[h] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(x, 4), low),
                                    _mm512_and_si512(_mm512_srlv_epi64(qh, shr), bits45));
            scv[h] = _mm512_permutexvar_epi16(pick[h], sc16);
        }
        for (int k = 0; k < nt; k++) {
            size_t t = t0 + (size_t)k;
            const int8_t *qa = a->qs + t * a->n_in + i * KILN_QK_K;
            __m512i sum = _mm512_setzero_si512();
            for (int h = 0; h < 2; h++) {
                __m512i dl = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo[h], _mm512_loadu_si512((const void *)(qa + 128 * h)));
                __m512i dh = _mm512_dpbusd_epi32(_mm512_setzero_si512(), hi[h],
                                                 _mm512_loadu_si512((const void *)(qa + 128 * h + 64)));
                sum = _mm512_dpwssd_epi32(sum, _mm512_packs_epi32(dl, dh), scv[h]);
            }
            acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(d * a->d[t * nb + i * 8]), acc[k]);
            offs[k] = _mm512_fmadd_ps(dsc, _mm512_loadu_ps(a->ds16 + 2 * (t * nb + i * 8)), offs[k]);
        }
    }
    for (int k = 0; k < nt; k++) out[k] = _mm512_reduce_add_ps(acc[k]) - _mm512_reduce_add_ps(offs[k]);
}

/* One kernel with the token count a compile-time constant. */
#define R5_CASES(fn)                                                    \
    switch (nt) {                                                       \
    case 1: fn(wrow, a, t0, 1, out); return;                            \
    case 2: fn(wrow, a, t0, 2, out); return;                            \
    case 3: fn(wrow, a, t0, 3, out); return;                            \
    default: fn(wrow, a, t0, KILN_QROW_MAX_TOK, out); return;           \
    }

TARGET void kiln__qrow_avx512(kiln_dtype wtype, const void *wrow, const kiln_qact *a, size_t t0, int nt,
                              float *out) {
    switch (wtype) {
    case KILN_DTYPE_Q8_0: R5_CASES(r5_q8_0)
    case KILN_DTYPE_Q4_0: R5_CASES(r5_q4_0)
    case KILN_DTYPE_Q5_0: R5_CASES(r5_q5_0)
    case KILN_DTYPE_Q4_K: R5_CASES(r5_q4_K)
    case KILN_DTYPE_Q6_K: R5_CASES(r5_q6_K)
    case KILN_DTYPE_F32: case KILN_DTYPE_F16: case KILN_DTYPE_BF16: case KILN_DTYPE_Q4_1:
    case KILN_DTYPE_Q5_1: case KILN_DTYPE_Q8_1: case KILN_DTYPE_Q2_K:
    case KILN_DTYPE_Q3_K: case KILN_DTYPE_Q5_K: case KILN_DTYPE_Q8_K: case KILN_DTYPE_I8:
    case KILN_DTYPE_I16: case KILN_DTYPE_I32: case KILN_DTYPE_I64: case KILN_DTYPE_F64:
    case KILN_DTYPE_U8: case KILN_DTYPE_BOOL: case KILN_DTYPE_F8_E4M3: case KILN_DTYPE_F8_E5M2:
    case KILN_DTYPE_UNKNOWN:
        break;
    }
}
