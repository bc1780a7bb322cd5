/* src/kernels/avx512_math.h - small AVX-512 helpers shared by the kernels
 * (internal). Each is static inline with the avx512f target, so it inlines
 * into the AVX-512 functions of the files that include it (whose targets
 * include avx512f). */
#ifndef KILN_KERNELS_AVX512_MATH_H
#define KILN_KERNELS_AVX512_MATH_H

#include <immintrin.h>

#define KILN_AVX512_INLINE static inline __attribute__((target("avx512f"), always_inline))

/* The lane sums of a[0..15] in one vector: lane 4 * (k % 4) + k / 4 holds
 * the sum of a[k]'s lanes, always by the same tree: lanes l and l + 8, then
 * l and l + 4, l and l + 2, l and l + 1. */
KILN_AVX512_INLINE __m512 kiln__avx512_reduce16(const __m512 a[16]) {
    __m512 h[8], q[4], p[2];
    for (int k = 0; k < 8; k++)
        h[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1], 0x44),
                             _mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1], 0xEE));
    for (int k = 0; k < 4; k++)
        q[k] = _mm512_add_ps(_mm512_shuffle_f32x4(h[2 * k], h[2 * k + 1], 0x88),
                             _mm512_shuffle_f32x4(h[2 * k], h[2 * k + 1], 0xDD));
    for (int k = 0; k < 2; k++)
        p[k] = _mm512_add_ps(_mm512_shuffle_ps(q[2 * k], q[2 * k + 1], 0x44),
                             _mm512_shuffle_ps(q[2 * k], q[2 * k + 1], 0xEE));
    return _mm512_add_ps(_mm512_shuffle_ps(p[0], p[1], 0x88), _mm512_shuffle_ps(p[0], p[1], 0xDD));
}

/* e^r * 2^n lane-wise for |r| <= ln2 / 2: the degree-7 Taylor polynomial
 * of e^r (relative error below 1e-8 there) scaled by vscalefps (0 below
 * the float range, infinity above it). */
KILN_AVX512_INLINE __m512 kiln__avx512_exp_reduced(__m512 r, __m512 n) {
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* 2^t lane-wise, t clamped to [-150, 128] (0 below the float range):
 * 2^round(t) times e^((t - round(t)) ln2). */
KILN_AVX512_INLINE __m512 kiln__avx512_exp2(__m512 t) {
    t = _mm512_min_ps(_mm512_max_ps(t, _mm512_set1_ps(-150.0f)), _mm512_set1_ps(128.0f));
    __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return kiln__avx512_exp_reduced(_mm512_mul_ps(_mm512_sub_ps(t, n), _mm512_set1_ps(0.69314718055994531f)), n);
}

/* e^x lane-wise, x clamped to [-104, 100] (0 below the float range,
 * infinity above it, as expf): x = n ln2 + r with |r| <= ln2 / 2, ln2 in
 * two parts so that r is exact to float rounding. */
KILN_AVX512_INLINE __m512 kiln__avx512_exp(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(100.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x); /* ln2, high part */
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);    /* ln2, low part */
    return kiln__avx512_exp_reduced(r, n);
}

#endif /* KILN_KERNELS_AVX512_MATH_H */
