/* src/kernels/conv2d_simd.c - the AVX-512F micro-kernel of the packed
 * convolution (see conv2d_packed.h): a 6-pixel x 64-channel tile held in
 * 24 vector registers; per k, four weight vectors are loaded and each
 * pixel's value (read through its own row pointer) is broadcast into four
 * fused multiply-adds. */
#include <immintrin.h>

#include "core/cpu.h"
#include "kernels/conv2d_packed.h"

#define SIMD __attribute__((target("avx512f")))

_Static_assert(KILN_CONV_MR == 6 && KILN_CONV_NR == 64, "the kernel is written for 6 x 64 tiles");

int kiln__conv_avx512_available(void) { return kiln__cpu()->avx512f; }

/* One pixel row of the tile: four accumulators. */
#define ROW_INIT(i)                                                                     \
    if (first) {                                                                        \
        c##i##0 = bz0, c##i##1 = bz1, c##i##2 = bz2, c##i##3 = bz3;                     \
    } else {                                                                            \
        c##i##0 = _mm512_loadu_ps(c + (i) * ldc), c##i##1 = _mm512_loadu_ps(c + (i) * ldc + 16); \
        c##i##2 = _mm512_loadu_ps(c + (i) * ldc + 32), c##i##3 = _mm512_loadu_ps(c + (i) * ldc + 48); \
    }
#define ROW_FMA(i)                                    \
    {                                                 \
        __m512 av = _mm512_set1_ps(a##i[k]);           \
        c##i##0 = _mm512_fmadd_ps(av, b0, c##i##0);   \
        c##i##1 = _mm512_fmadd_ps(av, b1, c##i##1);   \
        c##i##2 = _mm512_fmadd_ps(av, b2, c##i##2);   \
        c##i##3 = _mm512_fmadd_ps(av, b3, c##i##3);   \
    }
#define ROW_STORE(i)                                  \
    _mm512_storeu_ps(c + (i) * ldc, c##i##0);         \
    _mm512_storeu_ps(c + (i) * ldc + 16, c##i##1);    \
    _mm512_storeu_ps(c + (i) * ldc + 32, c##i##2);    \
    _mm512_storeu_ps(c + (i) * ldc + 48, c##i##3);

SIMD void kiln__conv_micro_avx512(int kc, const float *const *a, const float *b, float *c, size_t ldc, int first,
                                  const float *bias) {
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    __m512 bz0 = _mm512_setzero_ps(), bz1 = bz0, bz2 = bz0, bz3 = bz0;
    if (bias) {
        bz0 = _mm512_loadu_ps(bias), bz1 = _mm512_loadu_ps(bias + 16);
        bz2 = _mm512_loadu_ps(bias + 32), bz3 = _mm512_loadu_ps(bias + 48);
    }
    __m512 c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23;
    __m512 c30, c31, c32, c33, c40, c41, c42, c43, c50, c51, c52, c53;
    ROW_INIT(0) ROW_INIT(1) ROW_INIT(2) ROW_INIT(3) ROW_INIT(4) ROW_INIT(5)
    for (int k = 0; k < kc; k++, b += KILN_CONV_NR) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        __m512 b2 = _mm512_loadu_ps(b + 32), b3 = _mm512_loadu_ps(b + 48);
        ROW_FMA(0) ROW_FMA(1) ROW_FMA(2) ROW_FMA(3) ROW_FMA(4) ROW_FMA(5)
    }
    ROW_STORE(0) ROW_STORE(1) ROW_STORE(2) ROW_STORE(3) ROW_STORE(4) ROW_STORE(5)
}

SIMD void kiln__conv_widen_avx512(float *out, const uint16_t *in, size_t n) {
    for (size_t i = 0; i < n; i += 16)
        _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(in + i))));
}

SIMD void kiln__conv_widen_bf16_avx512(float *out, const uint16_t *in, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(in + i)));
        _mm512_storeu_ps(out + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
    }
}
