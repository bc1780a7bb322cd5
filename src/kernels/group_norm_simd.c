/* src/kernels/group_norm_simd.c - GroupNorm (+ SiLU) with AVX-512F over
 * channel-last data (see image_ops.h). Threads split the pixels, not the
 * groups, so every pass streams whole pixel rows: (1) per-channel sums,
 * (2) per-channel sums of squared deviations from the group means, both
 * accumulated in double per thread and combined; (3) y = x * scale[c] +
 * shift[c] with the group statistics folded into scale and shift, then
 * SiLU with a vector exponential. Same two-pass statistics as the scalar
 * reference; results differ in rounding only. */
#include <immintrin.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/avx512_math.h"
#include "core/error.h"
#include "kernels/group_norm_impl.h"
#include "kernels/image_ops.h"

#define SIMD __attribute__((target("avx512f")))

/* e^x lane-wise: 2^(x log2 e) (exponents clamped to [-150, 128]). */
SIMD static inline __m512 exp_v(__m512 x) {
    return kiln__avx512_exp2(_mm512_mul_ps(x, _mm512_set1_ps(1.4426950408889634f)));
}

/* x * sigmoid(x) lane-wise. */
SIMD static inline __m512 silu_v(__m512 x) {
    __m512 e = exp_v(_mm512_sub_ps(_mm512_setzero_ps(), x));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

/* Thread ith of nth: pixels [ith * n / nth, (ith + 1) * n / nth). */
SIMD static void gn_pass(void *ctx, int ith, int nth) {
    const struct kiln_gn_job *j = ctx;
    size_t p0 = j->n_pix * (size_t)ith / (size_t)nth, p1 = j->n_pix * (size_t)(ith + 1) / (size_t)nth;
    size_t c = (size_t)j->c;
    if (j->pass == 3) {
        for (size_t p = p0; p < p1; p++) {
            const float *r = j->x + p * c;
            float *o = j->out + p * c;
            for (size_t i = 0; i < c; i += 16) {
                __m512 v = _mm512_fmadd_ps(_mm512_loadu_ps(r + i), _mm512_loadu_ps(j->scale + i),
                                           _mm512_loadu_ps(j->shift + i));
                _mm512_storeu_ps(o + i, j->silu ? silu_v(v) : v);
            }
        }
        return;
    }
    double *acc = j->part + (size_t)ith * c;
    memset(acc, 0, c * sizeof *acc);
    /* Per pixel, 16 channels at a time into two vectors of 8 doubles. */
    for (size_t i = 0; i < c; i += 16) {
        __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
        __m512 m = j->pass == 2 ? _mm512_loadu_ps(j->mean + i) : _mm512_setzero_ps();
        __m512d m0 = _mm512_cvtps_pd(_mm512_castps512_ps256(m));
        __m512d m1 = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(m), 1)));
        for (size_t p = p0; p < p1; p++) {
            __m512 v = _mm512_loadu_ps(j->x + p * c + i);
            __m512d d0 = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
            __m512d d1 = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
            if (j->pass == 2) {
                d0 = _mm512_sub_pd(d0, m0);
                d1 = _mm512_sub_pd(d1, m1);
                s0 = _mm512_fmadd_pd(d0, d0, s0);
                s1 = _mm512_fmadd_pd(d1, d1, s1);
            } else {
                s0 = _mm512_add_pd(s0, d0);
                s1 = _mm512_add_pd(s1, d1);
            }
        }
        _mm512_storeu_pd(acc + i, s0);
        _mm512_storeu_pd(acc + i + 8, s1);
    }
}

int kiln__group_norm_avx512(kiln_pool *pool, float *out, const float *x, size_t n_pix, int c, int n_groups,
                            const float *w, const float *b, float eps, int silu) {
    if (!kiln__cpu()->avx512f || c % 16 || n_groups < 1 || c % n_groups || n_pix == 0) return 0;
    return kiln__group_norm_passes(pool, gn_pass, out, x, n_pix, c, n_groups, w, b, eps, silu);
}

SIMD static void silu_run(float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, silu_v(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(x + i, m, silu_v(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

int kiln__silu_avx512(float *x, size_t n) {
    if (!kiln__cpu()->avx512f) return 0;
    silu_run(x, n);
    return 1;
}
