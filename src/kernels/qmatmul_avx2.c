/* src/kernels/qmatmul_avx2.c - the AVX2 level of the quantized matmul: the
 * row kernels of qmatmul_rows.h with maddubs + madd as the byte dot
 * product, and the vector activation quantizer (used by every vector
 * level). */
#include <immintrin.h>
#include <math.h>

#include "kernels/qmatmul_impl.h"

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

QR_TARGET void kiln__qact_quantize_row_avx2(const kiln_qact *q, size_t t, const float *x) {
    size_t n_in = q->n_in, nb = n_in / KILN_QA_BLOCK;
    int8_t *qs = q->qs + t * n_in;
    const __m256 sign = _mm256_set1_ps(-0.0f), lim = _mm256_set1_ps(127.0f), nlim = _mm256_set1_ps(-127.0f);
    for (size_t k = 0; k < nb; k++) {
        const float *xb = x + k * KILN_QA_BLOCK;
        __m256 v[4], m = _mm256_setzero_ps();
        for (int j = 0; j < 4; j++) {
            v[j] = _mm256_loadu_ps(xb + 8 * j);
            /* max(|x|, m): a NaN in x is skipped, as fmaxf skips it */
            m = _mm256_max_ps(_mm256_andnot_ps(sign, v[j]), m);
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float d = _mm_cvtss_f32(m4) / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        __m256i qi[4];
        for (int j = 0; j < 4; j++) {
            __m256 prod = _mm256_mul_ps(v[j], _mm256_set1_ps(id));
            /* clamped to +-127, and 0 where the product is NaN (as round_q8) */
            __m256 r = _mm256_min_ps(_mm256_max_ps(round_away(prod), nlim), lim);
            __m256 nan = _mm256_cmp_ps(prod, prod, _CMP_UNORD_Q);
            qi[j] = _mm256_cvtps_epi32(_mm256_andnot_ps(nan, r));
        }
        /* pack 32 int32 into 32 int8 in order */
        __m256i p16a = _mm256_packs_epi32(qi[0], qi[1]), p16b = _mm256_packs_epi32(qi[2], qi[3]);
        __m256i p8 = _mm256_packs_epi16(p16a, p16b);
        p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(void *)(qs + k * KILN_QA_BLOCK), p8);
        int s0 = hsum_i32(_mm256_add_epi32(qi[0], qi[1])), s1 = hsum_i32(_mm256_add_epi32(qi[2], qi[3]));
        q->d[t * nb + k] = d;
        q->ds32[t * nb + k] = d * (float)(s0 + s1);
        q->ds16[t * 2 * nb + 2 * k] = d * (float)s0;
        q->ds16[t * 2 * nb + 2 * k + 1] = d * (float)s1;
    }
}
