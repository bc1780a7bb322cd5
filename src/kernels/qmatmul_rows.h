/* src/kernels/qmatmul_rows.h - the row kernels of the quantized matmul,
 * written once for two instruction sets. Included by qmatmul_avx2.c and
 * qmatmul_vnni.c after they define:
 *   QR_TARGET      the function attribute with the target features
 *   QR_DOT(u, a)   __m256i: per int32 lane, the sum of 4 products of the
 *                  unsigned bytes u and the signed bytes a (|sums of two
 *                  products| stay below 2^15 here, so maddubs cannot saturate)
 *   QR_ENTRY       the name of the exported entry (see qmatmul_impl.h)
 *
 * One call multiplies one weight row with NT <= 4 activation rows, so that
 * each weight block is loaded and unpacked once for up to four tokens. Per
 * group: the integer dot, converted to float and scaled by s * da into a
 * vector accumulator; the bias terms b * (da * sum(qa)) go to a scalar sum.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/qmatmul_impl.h"
#include "tensor/dequant.h"
#include "tensor/quant_blocks.h"

/* Sum of the 8 lanes. */
QR_TARGET static inline float qr_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* An f16 scale to f32 with F16C (the same value as kiln__f16_to_f32). */
QR_TARGET static inline float qr_f16(uint16_t h) { return _cvtsh_ss(h); }

/* 32 activation quants of token t starting at value i. */
QR_TARGET static inline __m256i qr_act(const kiln_qact *a, size_t t, size_t i) {
    return _mm256_loadu_si256((const __m256i *)(const void *)(a->qs + t * a->n_in + i));
}

/* The legacy types (32 values per block, one f16 scale first in it). */
enum qr_legacy { QR_Q8_0, QR_Q4_0, QR_Q5_0 };

/* Block bytes of a legacy type. */
#define QR_LEGACY_BYTES(type) ((type) == QR_Q8_0 ? sizeof(kiln_block_q8_0) \
                               : (type) == QR_Q4_0 ? sizeof(kiln_block_q4_0) : sizeof(kiln_block_q5_0))

/* The 32 weight bytes of one block: Q8_0's signed quants as stored, Q4_0's
 * nibbles (value j < 16 low nibble of qs[j], j >= 16 high nibble), Q5_0's
 * with bit j of qh as bit 4. */
QR_TARGET __attribute__((always_inline)) static inline __m256i qr_unpack(const char *blk, const int type) {
    if (type == QR_Q8_0) return _mm256_loadu_si256((const __m256i *)(const void *)(blk + 2));
    const __m128i low = _mm_set1_epi8(0x0f);
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(blk + (type == QR_Q4_0 ? 2 : 6)));
    __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(x, 4), low), _mm_and_si128(x, low));
    if (type == QR_Q4_0) return u;
    /* byte j takes byte j / 8 of qh, then tests its bit j % 8 */
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3,
                                            3, 3, 3, 3, 3, 3, 3);
    const __m256i bits = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    int32_t qh;
    memcpy(&qh, blk + 2, 4);
    __m256i hb = _mm256_shuffle_epi8(_mm256_set1_epi32(qh), spread);
    hb = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, bits), bits), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(u, hb);
}

/* The integer dot of a block's weight bytes w with 32 activation quants:
 * unsigned weights directly; Q8_0's signed ones as |w| times a with w's
 * sign (llama.cpp's trick: both operands then fit maddubs). */
QR_TARGET __attribute__((always_inline)) static inline __m256i qr_block_dot(__m256i w, __m256i a, const int type) {
    if (type == QR_Q8_0) return QR_DOT(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
    return QR_DOT(w, a);
}

/* Lane j of the result: the sum of the 8 lanes of p[j]. */
QR_TARGET __attribute__((always_inline)) static inline __m256i qr_reduce8(const __m256i *p) {
    __m256i s01 = _mm256_hadd_epi32(p[0], p[1]), s23 = _mm256_hadd_epi32(p[2], p[3]);
    __m256i s45 = _mm256_hadd_epi32(p[4], p[5]), s67 = _mm256_hadd_epi32(p[6], p[7]);
    __m256i lo = _mm256_hadd_epi32(s01, s23), hi = _mm256_hadd_epi32(s45, s67);
    /* lo = [p0..p3 over lanes 0-3 | p0..p3 over lanes 4-7], hi likewise for p4..p7 */
    return _mm256_add_epi32(_mm256_permute2x128_si256(lo, hi, 0x20), _mm256_permute2x128_si256(lo, hi, 0x31));
}

/* Legacy types, eight blocks per step: the eight integer dots are reduced
 * to one vector of block sums, scaled by the eight d * da at once; the bias
 * -off * d * (da * sum(a)) (off 8 for Q4_0, 16 for Q5_0) is summed as a
 * vector too. Remaining blocks one at a time. */
QR_TARGET __attribute__((always_inline)) static inline void qr_legacy(const void *wrow, const kiln_qact *a,
                                                                       size_t t0, const int nt, float *out,
                                                                       const int type) {
    const char *base = wrow;
    const size_t bs = QR_LEGACY_BYTES(type), nb = a->n_in / KILN_QK;
    const float off = type == QR_Q4_0 ? 8.0f : type == QR_Q5_0 ? 16.0f : 0.0f;
    __m256 acc[KILN_QROW_MAX_TOK], bias[KILN_QROW_MAX_TOK];
    for (int k = 0; k < nt; k++) {
        acc[k] = _mm256_setzero_ps();
        bias[k] = _mm256_setzero_ps();
    }
    size_t i = 0;
    for (; i + 8 <= nb; i += 8) {
        __m256i w[8];
        uint16_t dh[8];
        for (int j = 0; j < 8; j++) {
            const char *blk = base + (i + (size_t)j) * bs;
            w[j] = qr_unpack(blk, type);
            memcpy(&dh[j], blk, 2);
        }
        __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)dh));
        for (int k = 0; k < nt; k++) {
            size_t t = t0 + (size_t)k;
            __m256i p[8];
            for (int j = 0; j < 8; j++) p[j] = qr_block_dot(w[j], qr_act(a, t, (i + (size_t)j) * KILN_QK), type);
            __m256 da = _mm256_loadu_ps(a->d + t * nb + i);
            acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(qr_reduce8(p)), _mm256_mul_ps(dw, da), acc[k]);
            if (type != QR_Q8_0) bias[k] = _mm256_fmadd_ps(dw, _mm256_loadu_ps(a->ds32 + t * nb + i), bias[k]);
        }
    }
    float tail[KILN_QROW_MAX_TOK] = {0};
    for (; i < nb; i++) {
        const char *blk = base + i * bs;
        __m256i w = qr_unpack(blk, type);
        uint16_t h;
        memcpy(&h, blk, 2);
        float d = qr_f16(h);
        for (int k = 0; k < nt; k++) {
            size_t t = t0 + (size_t)k;
            __m256i p = qr_block_dot(w, qr_act(a, t, i * KILN_QK), type);
            acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d * a->d[t * nb + i]), acc[k]);
            tail[k] += d * a->ds32[t * nb + i];
        }
    }
    for (int k = 0; k < nt; k++) out[k] = qr_hsum(acc[k]) - off * (qr_hsum(bias[k]) + tail[k]);
}

#define qr_q8_0(w, a, t0, nt, out) qr_legacy(w, a, t0, nt, out, QR_Q8_0)
#define qr_q4_0(w, a, t0, nt, out) qr_legacy(w, a, t0, nt, out, QR_Q4_0)
#define qr_q5_0(w, a, t0, nt, out) qr_legacy(w, a, t0, nt, out, QR_Q5_0)

/* Q4_K (activations by the Q8_K rule, so da is one value per 256): per
 * chunk of 64, low nibbles are group 2c and high nibbles group 2c + 1. The
 * eight group dots are reduced to one vector, multiplied by the eight
 * integer scales and scaled by d * da once per super-block; the minimums
 * dmin * mn * (da * sum(a)) are summed as a vector. */
QR_TARGET __attribute__((always_inline)) static inline void qr_q4_K(const void *wrow, const kiln_qact *a,
                                                                     size_t t0, const int nt, float *out) {
    const kiln_block_q4_K *b = wrow;
    size_t nsb = a->n_in / KILN_QK_K, nb = a->n_in / KILN_QA_BLOCK;
    const __m256i low = _mm256_set1_epi8(0x0f);
    __m256 acc[KILN_QROW_MAX_TOK], mins[KILN_QROW_MAX_TOK];
    for (int k = 0; k < nt; k++) {
        acc[k] = _mm256_setzero_ps();
        mins[k] = _mm256_setzero_ps();
    }
    for (size_t i = 0; i < nsb; i++) {
        /* the 6-bit scales and mins of the 8 groups, four to a word */
        uint32_t sm[4];
        kiln__q4k_scale_words(b[i].scales, sm);
        uint32_t sc_lo = sm[0], sc_hi = sm[1], mn_lo = sm[2], mn_hi = sm[3];
        __m256i scv = _mm256_cvtepu8_epi32(_mm_setr_epi32((int)sc_lo, (int)sc_hi, 0, 0));
        __m256 mnv = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_setr_epi32((int)mn_lo, (int)mn_hi, 0, 0))),
                                   _mm256_set1_ps(qr_f16(b[i].dmin)));
        float d = qr_f16(b[i].d);
        __m256i u[8];
        for (int c = 0; c < 4; c++) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(b[i].qs + 32 * c));
            u[2 * c] = _mm256_and_si256(x, low);
            u[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(x, 4), low);
        }
        for (int k = 0; k < nt; k++) {
            size_t t = t0 + (size_t)k;
            __m256i p[8];
            for (int j = 0; j < 8; j++) p[j] = QR_DOT(u[j], qr_act(a, t, i * KILN_QK_K + 32 * (size_t)j));
            __m256i sum = _mm256_mullo_epi32(qr_reduce8(p), scv);
            acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(d * a->d[t * nb + i * 8]), acc[k]);
            mins[k] = _mm256_fmadd_ps(mnv, _mm256_loadu_ps(a->ds32 + t * nb + i * 8), mins[k]);
        }
    }
    for (int k = 0; k < nt; k++) out[k] = qr_hsum(acc[k]) - qr_hsum(mins[k]);
}

/* Q6_K (Q8_K activations): 6-bit values 0..63 in groups of 16 with int8
 * scales. Each 32-value dot is multiplied lane-wise by its two groups'
 * scales (lanes 0-3 the first group, 4-7 the second) and summed in int32
 * over the super-block, then scaled by d * da once; the offset
 * -32 d sc (da * sum(a)) is summed as a vector. */
QR_TARGET __attribute__((always_inline)) static inline void qr_q6_K(const void *wrow, const kiln_qact *a,
                                                                     size_t t0, const int nt, float *out) {
    const kiln_block_q6_K *b = wrow;
    size_t nsb = a->n_in / KILN_QK_K, nb = a->n_in / KILN_QA_BLOCK;
    const __m256i low = _mm256_set1_epi8(0x0f), two = _mm256_set1_epi8(3);
    __m256 acc[KILN_QROW_MAX_TOK], offs[KILN_QROW_MAX_TOK];
    for (int k = 0; k < nt; k++) {
        acc[k] = _mm256_setzero_ps();
        offs[k] = _mm256_setzero_ps();
    }
    for (size_t i = 0; i < nsb; i++) {
        float d = qr_f16(b[i].d);
        __m128i sc16 = _mm_loadu_si128((const __m128i *)(const void *)b[i].scales);
        /* scv[r]: scales 2r (lanes 0-3) and 2r + 1 (lanes 4-7) */
        __m256i scv[8];
        for (int r = 0; r < 8; r++) {
            __m128i pick = _mm_setr_epi8((char)(2 * r), (char)(2 * r + 1), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
            __m256i two_sc = _mm256_cvtepi8_epi32(_mm_shuffle_epi8(sc16, pick));
            scv[r] = _mm256_permutevar8x32_epi32(two_sc, _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
        }
        __m256 dsc0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc16)), _mm256_set1_ps(32.0f * d));
        __m256 dsc1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc16, 8))),
                                    _mm256_set1_ps(32.0f * d));
        __m256i v[8];
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b[i].ql + 64 * h, *qh = b[i].qh + 32 * h;
            __m256i q1 = _mm256_loadu_si256((const __m256i *)(const void *)ql);
            __m256i q2 = _mm256_loadu_si256((const __m256i *)(const void *)(ql + 32));
            __m256i hb = _mm256_loadu_si256((const __m256i *)(const void *)qh);
            v[4 * h] = _mm256_or_si256(_mm256_and_si256(q1, low), _mm256_slli_epi16(_mm256_and_si256(hb, two), 4));
            v[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(q2, low),
                                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), two), 4));
            v[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q1, 4), low),
                                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), two), 4));
            v[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q2, 4), low),
                                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), two), 4));
        }
        for (int k = 0; k < nt; k++) {
            size_t t = t0 + (size_t)k;
            __m256i sum = _mm256_setzero_si256();
            for (int r = 0; r < 8; r++)
                sum = _mm256_add_epi32(sum, _mm256_mullo_epi32(QR_DOT(v[r], qr_act(a, t, i * KILN_QK_K + 32 * (size_t)r)),
                                                               scv[r]));
            acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(d * a->d[t * nb + i * 8]), acc[k]);
            const float *ds = a->ds16 + 2 * (t * nb + i * 8);
            offs[k] = _mm256_fmadd_ps(dsc0, _mm256_loadu_ps(ds), offs[k]);
            offs[k] = _mm256_fmadd_ps(dsc1, _mm256_loadu_ps(ds + 8), offs[k]);
        }
    }
    for (int k = 0; k < nt; k++) out[k] = qr_hsum(acc[k]) - qr_hsum(offs[k]);
}

/* One kernel with the token count a compile-time constant. */
#define QR_CASES(fn)                                                    \
    switch (nt) {                                                       \
    case 1: fn(wrow, a, t0, 1, out); return;                            \
    case 2: fn(wrow, a, t0, 2, out); return;                            \
    case 3: fn(wrow, a, t0, 3, out); return;                            \
    default: fn(wrow, a, t0, KILN_QROW_MAX_TOK, out); return;           \
    }

QR_TARGET void QR_ENTRY(kiln_dtype wtype, const void *wrow, const kiln_qact *a, size_t t0, int nt, float *out) {
    switch (wtype) {
    case KILN_DTYPE_Q8_0: QR_CASES(qr_q8_0)
    case KILN_DTYPE_Q4_0: QR_CASES(qr_q4_0)
    case KILN_DTYPE_Q5_0: QR_CASES(qr_q5_0)
    case KILN_DTYPE_Q4_K: QR_CASES(qr_q4_K)
    case KILN_DTYPE_Q6_K: QR_CASES(qr_q6_K)
    case KILN_DTYPE_F32: case KILN_DTYPE_F16: case KILN_DTYPE_BF16: case KILN_DTYPE_Q4_1:
    case KILN_DTYPE_Q5_1: case KILN_DTYPE_Q8_1: case KILN_DTYPE_Q2_K:
    case KILN_DTYPE_Q3_K: case KILN_DTYPE_Q5_K: case KILN_DTYPE_Q8_K: case KILN_DTYPE_I8:
    case KILN_DTYPE_I16: case KILN_DTYPE_I32: case KILN_DTYPE_I64: case KILN_DTYPE_F64:
    case KILN_DTYPE_U8: case KILN_DTYPE_BOOL: case KILN_DTYPE_F8_E4M3: case KILN_DTYPE_F8_E5M2:
    case KILN_DTYPE_UNKNOWN:
        break;
    }
}
