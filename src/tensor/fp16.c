/* src/tensor/fp16.c - whole-row f16 <-> f32 conversion.
 *
 * The scalar inline functions of fp16.h are the reference; on x86 CPUs with
 * F16C the rows go eight values at a time through vcvtph2ps / vcvtps2ph,
 * which round to nearest even and quiet NaNs exactly like the reference.
 * The path is chosen per call from kiln__cpu() (cached after the first).
 */
#include "tensor/fp16.h"

#include "core/cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define KILN_HAVE_F16C_PATH 1

__attribute__((target("avx,f16c"))) static void f16_to_f32_f16c(const uint16_t *src, float *dst,
                                                                 size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(src + i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++) dst[i] = kiln__f16_to_f32(src[i]);
}

__attribute__((target("avx,f16c"))) static void f32_to_f16_f16c(const float *src, uint16_t *dst,
                                                                 size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        /* rounding immediate 0: round to nearest even, whatever MXCSR says */
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), 0);
        _mm_storeu_si128((__m128i *)(void *)(dst + i), h);
    }
    for (; i < n; i++) dst[i] = kiln__f32_to_f16(src[i]);
}
#endif

void kiln__f16_to_f32_row(const uint16_t *src, float *dst, size_t n) {
#ifdef KILN_HAVE_F16C_PATH
    if (kiln__cpu()->f16c) {
        f16_to_f32_f16c(src, dst, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) dst[i] = kiln__f16_to_f32(src[i]);
}

void kiln__f32_to_f16_row(const float *src, uint16_t *dst, size_t n) {
#ifdef KILN_HAVE_F16C_PATH
    if (kiln__cpu()->f16c) {
        f32_to_f16_f16c(src, dst, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) dst[i] = kiln__f32_to_f16(src[i]);
}
