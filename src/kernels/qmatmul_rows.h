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
#include "tensor/fp16.h"
#include "tensor/quant_blocks.h"

/* Sum of the 8 lanes. */
QR_TARGET static inline float qr_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 32 activation quants of token t starting at value i. */
QR_TARGET static inline __m256i qr_act(const kiln_qact *a, size_t t, size_t i) {
    return _mm256_loadu_si256((const __m256i *)(const void *)(a->qs + t * a->n_in + i));
}

/* Q8_0: |w| times a with w's sign (llama.cpp's trick: both operands fit
 * maddubs), scaled by d * da per block. */
QR_TARGET __attribute__((always_inline)) static inline void qr_q8_0(const void *wrow, const kiln_qact *a,
                                                                     size_t t0, const int nt, float *out) {
    const kiln_block_q8_0 *b = wrow;
    size_t nb = a->n_in / KILN_QK;
    __m256 acc[KILN_QROW_MAX_TOK];
    for (int k = 0; k < nt; k++) acc[k] = _mm256_setzero_ps();
    for (size_t i = 0; i < nb; i++) {
        __m256i w = _mm256_loadu_si256((const __m256i *)(const void *)b[i].qs);
        __m256i aw = _mm256_sign_epi8(w, w);
        float d = kiln__f16_to_f32(b[i].d);
        for (int k = 0; k < nt; k++) {
            size_t t = t0 + (size_t)k;
            __m256i p = QR_DOT(aw, _mm256_sign_epi8(qr_act(a, t, i * KILN_QK), w));
            acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d * a->d[t * nb + i]), acc[k]);
        }
    }
    for (int k = 0; k < nt; k++) out[k] = qr_hsum(acc[k]);
}

/* Q4_0: nibbles 0..15 times a, minus 8 d * (da * sum(a)) per block. */
QR_TARGET __attribute__((always_inline)) static inline void qr_q4_0(const void *wrow, const kiln_qact *a,
                                                                     size_t t0, const int nt, float *out) {
    const kiln_block_q4_0 *b = wrow;
    size_t nb = a->n_in / KILN_QK;
    const __m128i low = _mm_set1_epi8(0x0f);
    __m256 acc[KILN_QROW_MAX_TOK];
    float corr[KILN_QROW_MAX_TOK];
    for (int k = 0; k < nt; k++) {
        acc[k] = _mm256_setzero_ps();
        corr[k] = 0.0f;
    }
    for (size_t i = 0; i < nb; i++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)b[i].qs);
        __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(x, 4), low), _mm_and_si128(x, low));
        float d = kiln__f16_to_f32(b[i].d);
        for (int k = 0; k < nt; k++) {
            size_t t = t0 + (size_t)k;
            __m256i p = QR_DOT(u, qr_act(a, t, i * KILN_QK));
            acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d * a->d[t * nb + i]), acc[k]);
            corr[k] += -8.0f * d * a->ds32[t * nb + i];
        }
    }
    for (int k = 0; k < nt; k++) out[k] = qr_hsum(acc[k]) + corr[k];
}

/* Q5_0: as Q4_0 with bit i of qh as bit 4 of value i, minus 16 d (da * sum(a)). */
QR_TARGET __attribute__((always_inline)) static inline void qr_q5_0(const void *wrow, const kiln_qact *a,
                                                                     size_t t0, const int nt, float *out) {
    const kiln_block_q5_0 *b = wrow;
    size_t nb = a->n_in / KILN_QK;
    const __m128i low = _mm_set1_epi8(0x0f);
    /* byte j takes byte j / 8 of qh, then tests its bit j % 8 */
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3,
                                            3, 3, 3, 3, 3, 3, 3);
    const __m256i bits = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i bit4 = _mm256_set1_epi8(0x10);
    __m256 acc[KILN_QROW_MAX_TOK];
    float corr[KILN_QROW_MAX_TOK];
    for (int k = 0; k < nt; k++) {
        acc[k] = _mm256_setzero_ps();
        corr[k] = 0.0f;
    }
    for (size_t i = 0; i < nb; i++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)b[i].qs);
        int32_t qh;
        memcpy(&qh, b[i].qh, 4);
        __m256i hb = _mm256_shuffle_epi8(_mm256_set1_epi32(qh), spread);
        hb = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, bits), bits), bit4);
        __m256i u = _mm256_or_si256(
            _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(x, 4), low), _mm_and_si128(x, low)), hb);
        float d = kiln__f16_to_f32(b[i].d);
        for (int k = 0; k < nt; k++) {
            size_t t = t0 + (size_t)k;
            __m256i p = QR_DOT(u, qr_act(a, t, i * KILN_QK));
            acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d * a->d[t * nb + i]), acc[k]);
            corr[k] += -16.0f * d * a->ds32[t * nb + i];
        }
    }
    for (int k = 0; k < nt; k++) out[k] = qr_hsum(acc[k]) + corr[k];
}

/* Q4_K: per chunk of 64, low nibbles are group 2c and high nibbles group
 * 2c + 1, each scaled by d * sc; minus dmin * mn * (da * sum(a)). */
QR_TARGET __attribute__((always_inline)) static inline void qr_q4_K(const void *wrow, const kiln_qact *a,
                                                                     size_t t0, const int nt, float *out) {
    const kiln_block_q4_K *b = wrow;
    size_t nsb = a->n_in / KILN_QK_K, nb = a->n_in / KILN_QA_BLOCK;
    const __m256i low = _mm256_set1_epi8(0x0f);
    __m256 acc[KILN_QROW_MAX_TOK];
    float corr[KILN_QROW_MAX_TOK];
    for (int k = 0; k < nt; k++) {
        acc[k] = _mm256_setzero_ps();
        corr[k] = 0.0f;
    }
    for (size_t i = 0; i < nsb; i++) {
        float d = kiln__f16_to_f32(b[i].d), dmin = kiln__f16_to_f32(b[i].dmin);
        float s[8], m[8];
        for (int j = 0; j < 8; j++) {
            uint8_t sc, mn;
            kiln__get_scale_min_k4(j, b[i].scales, &sc, &mn);
            s[j] = d * (float)sc;
            m[j] = dmin * (float)mn;
        }
        for (int c = 0; c < 4; c++) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(b[i].qs + 32 * c));
            __m256i lo = _mm256_and_si256(x, low), hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low);
            size_t g = i * 8 + 2 * (size_t)c; /* activation block of the low nibbles */
            for (int k = 0; k < nt; k++) {
                size_t t = t0 + (size_t)k;
                __m256i p0 = QR_DOT(lo, qr_act(a, t, g * KILN_QA_BLOCK));
                __m256i p1 = QR_DOT(hi, qr_act(a, t, (g + 1) * KILN_QA_BLOCK));
                acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(s[2 * c] * a->d[t * nb + g]),
                                         acc[k]);
                acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1),
                                         _mm256_set1_ps(s[2 * c + 1] * a->d[t * nb + g + 1]), acc[k]);
                corr[k] -= m[2 * c] * a->ds32[t * nb + g] + m[2 * c + 1] * a->ds32[t * nb + g + 1];
            }
        }
    }
    for (int k = 0; k < nt; k++) out[k] = qr_hsum(acc[k]) + corr[k];
}

/* Q6_K: 6-bit values 0..63 in groups of 16 with int8 scales; the scale
 * multiplies the integer dot lane-wise (lanes 0-3 are the first group of a
 * 32-value run, lanes 4-7 the second), minus 32 d sc (da * sum(a)). */
QR_TARGET __attribute__((always_inline)) static inline void qr_q6_K(const void *wrow, const kiln_qact *a,
                                                                     size_t t0, const int nt, float *out) {
    const kiln_block_q6_K *b = wrow;
    size_t nsb = a->n_in / KILN_QK_K, nb = a->n_in / KILN_QA_BLOCK;
    const __m256i low = _mm256_set1_epi8(0x0f), two = _mm256_set1_epi8(3);
    const __m256i pair = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    __m256 acc[KILN_QROW_MAX_TOK];
    float corr[KILN_QROW_MAX_TOK];
    for (int k = 0; k < nt; k++) {
        acc[k] = _mm256_setzero_ps();
        corr[k] = 0.0f;
    }
    for (size_t i = 0; i < nsb; i++) {
        float d = kiln__f16_to_f32(b[i].d);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b[i].ql + 64 * h, *qh = b[i].qh + 32 * h;
            __m256i q1 = _mm256_loadu_si256((const __m256i *)(const void *)ql);
            __m256i q2 = _mm256_loadu_si256((const __m256i *)(const void *)(ql + 32));
            __m256i hb = _mm256_loadu_si256((const __m256i *)(const void *)qh);
            __m256i v[4];
            v[0] = _mm256_or_si256(_mm256_and_si256(q1, low), _mm256_slli_epi16(_mm256_and_si256(hb, two), 4));
            v[1] = _mm256_or_si256(_mm256_and_si256(q2, low),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), two), 4));
            v[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q1, 4), low),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), two), 4));
            v[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q2, 4), low),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), two), 4));
            for (int r = 0; r < 4; r++) {
                int g = 8 * h + 2 * r; /* first group of 16 in this run of 32 */
                int16_t sc2;
                memcpy(&sc2, b[i].scales + g, 2);
                __m256i scv = _mm256_permutevar8x32_epi32(_mm256_cvtepi8_epi32(_mm_set1_epi16(sc2)), pair);
                size_t blk = i * 8 + 4 * (size_t)h + (size_t)r; /* activation block */
                float sg0 = -32.0f * d * (float)b[i].scales[g], sg1 = -32.0f * d * (float)b[i].scales[g + 1];
                for (int k = 0; k < nt; k++) {
                    size_t t = t0 + (size_t)k;
                    __m256i p = _mm256_mullo_epi32(QR_DOT(v[r], qr_act(a, t, blk * KILN_QA_BLOCK)), scv);
                    acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d * a->d[t * nb + blk]), acc[k]);
                    corr[k] += sg0 * a->ds16[2 * (t * nb + blk)] + sg1 * a->ds16[2 * (t * nb + blk) + 1];
                }
            }
        }
    }
    for (int k = 0; k < nt; k++) out[k] = qr_hsum(acc[k]) + corr[k];
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
