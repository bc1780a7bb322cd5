/* src/kernels/qmatmul_avx2.c - the AVX2 level of the quantized matmul: the
 * row kernels of qmatmul_rows.h with maddubs + madd as the byte dot
 * product, and the vector activation quantizer (used by every vector
 * level). */
#include <immintrin.h>
#include <math.h>

#include "kernels/qmatmul_impl.h"
#include "tensor/fp16.h"

#define QR_TARGET __attribute__((target("avx2,fma,f16c")))
#define QR_DOT(u, a) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (a)), _mm256_set1_epi16(1))
#define QR_ENTRY kiln__qrow_avx2
#include "kernels/qmatmul_rows.h"

/* Sum of the 8 int32 lanes. */
QR_TARGET static int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* roundf (half away from zero) of 8 values: truncate, then step away from
 * zero where the dropped fraction is at least one half (v - trunc(v) is
 * exact, so this matches roundf bit for bit). */
QR_TARGET static __m256 round_away(__m256 v) {
    const __m256 sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    __m256 step = _mm256_or_ps(_mm256_and_ps(v, sign), one); /* +-1 with v's sign */
    return _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(frac, half, _CMP_GE_OQ), step));
}

/* Largest |x| of n values (a multiple of 8); NaN is skipped, as fmaxf
 * skips it. */
QR_TARGET static float amax_of(const float *x, size_t n) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (size_t i = 0; i < n; i += 8) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), m);
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    return _mm_cvtss_f32(m4);
}

/* 32 values x * scale as int8, rounded half away from zero (k_rule 0) or
 * half to even (k_rule 1), clamped to +-127, NaN products to 0; stored at
 * qs; returns the sums of the two halves in s[0], s[1]. */
QR_TARGET static void quant32(const float *x, float scale, int k_rule, int8_t *qs, int *s) {
    const __m256 lim = _mm256_set1_ps(127.0f), nlim = _mm256_set1_ps(-127.0f);
    __m256i qi[4];
    for (int j = 0; j < 4; j++) {
        __m256 prod = _mm256_mul_ps(_mm256_loadu_ps(x + 8 * j), _mm256_set1_ps(scale));
        __m256 r = k_rule ? _mm256_round_ps(prod, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC) : round_away(prod);
        r = _mm256_min_ps(_mm256_max_ps(r, nlim), lim);
        __m256 nan = _mm256_cmp_ps(prod, prod, _CMP_UNORD_Q);
        qi[j] = _mm256_cvtps_epi32(_mm256_andnot_ps(nan, r));
    }
    /* pack 32 int32 into 32 int8 in order */
    __m256i p8 = _mm256_packs_epi16(_mm256_packs_epi32(qi[0], qi[1]), _mm256_packs_epi32(qi[2], qi[3]));
    p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)(void *)qs, p8);
    s[0] = hsum_i32(_mm256_add_epi32(qi[0], qi[1]));
    s[1] = hsum_i32(_mm256_add_epi32(qi[2], qi[3]));
}

/* Store the scale d and the sums s of block k of row t. */
static void put_block(const kiln_qact *q, size_t t, size_t k, float d, const int *s) {
    size_t nb = q->n_in / KILN_QA_BLOCK;
    q->d[t * nb + k] = d;
    q->ds32[t * nb + k] = d * (float)(s[0] + s[1]);
    q->ds16[2 * (t * nb + k)] = d * (float)s[0];
    q->ds16[2 * (t * nb + k) + 1] = d * (float)s[1];
}

QR_TARGET void kiln__qact_quantize_row_avx2(const kiln_qact *q, size_t t, const float *x) {
    size_t n_in = q->n_in;
    int8_t *qs = q->qs + t * n_in;
    int s[2];
    if (q->k_rule) {
        for (size_t k = 0; k < n_in / KILN_QK_K; k++) {
            const float *xb = x + k * KILN_QK_K;
            float amax = amax_of(xb, KILN_QK_K), max = 0.0f;
            /* the first value of that magnitude, with its sign */
            for (int j = 0; j < KILN_QK_K; j++) {
                if (fabsf(xb[j]) == amax) {
                    max = xb[j];
                    break;
                }
            }
            float iscale = amax != 0.0f ? -127.0f / max : 0.0f;
            float d = amax != 0.0f ? 1.0f / iscale : 0.0f;
            for (size_t b = 0; b < KILN_QK_K / KILN_QA_BLOCK; b++) {
                quant32(xb + b * KILN_QA_BLOCK, iscale, 1, qs + k * KILN_QK_K + b * KILN_QA_BLOCK, s);
                put_block(q, t, k * 8 + b, d, s);
            }
        }
        return;
    }
    for (size_t k = 0; k < n_in / KILN_QA_BLOCK; k++) {
        const float *xb = x + k * KILN_QA_BLOCK;
        const float d = amax_of(xb, KILN_QA_BLOCK) / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        quant32(xb, id, 0, qs + k * KILN_QA_BLOCK, s);
        put_block(q, t, k, kiln__f16_to_f32(kiln__f32_to_f16(d)), s);
    }
}
