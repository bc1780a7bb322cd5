/* src/kernels/avx2_math.h - small AVX2+FMA helpers shared by the image
 * kernels' AVX2 paths (internal). Each is static inline with the
 * avx2,fma target, so it inlines into the AVX2 functions of the files that
 * include it (whose targets include avx2 and fma). */
#ifndef KILN_KERNELS_AVX2_MATH_H
#define KILN_KERNELS_AVX2_MATH_H

#include <immintrin.h>

#define KILN_AVX2_INLINE static inline __attribute__((target("avx2,fma"), always_inline))

/* 2^t lane-wise: 0 below -126 (the normal range; the AVX-512 version goes
 * on into the denormals), t clamped to 127 above; otherwise 2^round(t),
 * built in the exponent field, times the degree-7 Taylor polynomial of
 * 2^f, |f| <= 1/2, that kiln__avx512_exp2 uses. */
KILN_AVX2_INLINE __m256 kiln__avx2_exp2(__m256 t) {
    __m256 zero = _mm256_cmp_ps(t, _mm256_set1_ps(-126.0f), _CMP_LT_OQ);
    t = _mm256_min_ps(_mm256_max_ps(t, _mm256_set1_ps(-126.0f)), _mm256_set1_ps(127.0f));
    __m256 n = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_mul_ps(_mm256_sub_ps(t, n), _mm256_set1_ps(0.69314718055994531f));
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(zero, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

#endif /* KILN_KERNELS_AVX2_MATH_H */
