/* src/kernels/conv2d_avx2.c - the AVX2+FMA micro-kernel of the packed
 * convolution (see conv2d_packed.h), for CPUs without AVX-512F: the
 * 6-pixel x 64-channel tile is done as four 6 x 16 quarters, each held in
 * 12 ymm accumulators (two per pixel); per k, two weight vectors are loaded
 * and each pixel's value is broadcast into two fused multiply-adds. Also
 * the F16C and BF16 widening of weight blocks. */
#include <immintrin.h>

#include "kernels/conv2d_packed.h"

#define SIMD __attribute__((target("avx2,fma,f16c")))

_Static_assert(KILN_CONV_MR == 6 && KILN_CONV_NR == 64, "the kernel is written for 6 x 64 tiles");

/* One pixel row of a quarter: two accumulators. */
#define ROW_INIT(i)                                                                        \
    if (first) {                                                                           \
        c##i##0 = bz0, c##i##1 = bz1;                                                      \
    } else {                                                                               \
        c##i##0 = _mm256_loadu_ps(cq + (i) * ldc), c##i##1 = _mm256_loadu_ps(cq + (i) * ldc + 8); \
    }
#define ROW_FMA(i)                                  \
    {                                               \
        __m256 av = _mm256_broadcast_ss(a##i + k);  \
        c##i##0 = _mm256_fmadd_ps(av, b0, c##i##0); \
        c##i##1 = _mm256_fmadd_ps(av, b1, c##i##1); \
    }
#define ROW_STORE(i)                            \
    _mm256_storeu_ps(cq + (i) * ldc, c##i##0); \
    _mm256_storeu_ps(cq + (i) * ldc + 8, c##i##1);

SIMD void kiln__conv_micro_avx2(int kc, const float *const *a, const float *b, float *c, size_t ldc, int first,
                                const float *bias) {
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    for (int q = 0; q < KILN_CONV_NR; q += 16) {
        float *cq = c + q;
        const float *bq = b + q;
        __m256 bz0 = _mm256_setzero_ps(), bz1 = bz0;
        if (bias) bz0 = _mm256_loadu_ps(bias + q), bz1 = _mm256_loadu_ps(bias + q + 8);
        __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        ROW_INIT(0) ROW_INIT(1) ROW_INIT(2) ROW_INIT(3) ROW_INIT(4) ROW_INIT(5)
        for (int k = 0; k < kc; k++, bq += KILN_CONV_NR) {
            __m256 b0 = _mm256_loadu_ps(bq), b1 = _mm256_loadu_ps(bq + 8);
            ROW_FMA(0) ROW_FMA(1) ROW_FMA(2) ROW_FMA(3) ROW_FMA(4) ROW_FMA(5)
        }
        ROW_STORE(0) ROW_STORE(1) ROW_STORE(2) ROW_STORE(3) ROW_STORE(4) ROW_STORE(5)
    }
}

SIMD void kiln__conv_widen_avx2(float *out, const uint16_t *in, size_t n) {
    for (size_t i = 0; i < n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(in + i))));
}

SIMD void kiln__conv_widen_bf16_avx2(float *out, const uint16_t *in, size_t n) {
    for (size_t i = 0; i < n; i += 8) {
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(in + i)));
        _mm256_storeu_ps(out + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
}
