/* src/kernels/group_norm_avx2.c - GroupNorm (+ SiLU) and SiLU with
 * AVX2+FMA, for CPUs without AVX-512F (see image_ops.h): the three passes
 * of group_norm_simd.c with 8 channels per step (sums in double, four
 * lanes per vector) and the AVX2 exponential. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/avx2_math.h"
#include "kernels/group_norm_impl.h"
#include "kernels/image_ops.h"

#define SIMD __attribute__((target("avx2,fma")))

/* x * sigmoid(x) lane-wise: x / (1 + 2^(-x log2 e)). */
SIMD static inline __m256 silu_v(__m256 x) {
    __m256 e = kiln__avx2_exp2(_mm256_mul_ps(x, _mm256_set1_ps(-1.4426950408889634f)));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
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
            for (size_t i = 0; i < c; i += 8) {
                __m256 v = _mm256_fmadd_ps(_mm256_loadu_ps(r + i), _mm256_loadu_ps(j->scale + i),
                                           _mm256_loadu_ps(j->shift + i));
                _mm256_storeu_ps(o + i, j->silu ? silu_v(v) : v);
            }
        }
        return;
    }
    double *acc = j->part + (size_t)ith * c;
    memset(acc, 0, c * sizeof *acc);
    /* Per pixel, 8 channels at a time into two vectors of 4 doubles. */
    for (size_t i = 0; i < c; i += 8) {
        __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
        __m256 m = j->pass == 2 ? _mm256_loadu_ps(j->mean + i) : _mm256_setzero_ps();
        __m256d m0 = _mm256_cvtps_pd(_mm256_castps256_ps128(m)), m1 = _mm256_cvtps_pd(_mm256_extractf128_ps(m, 1));
        for (size_t p = p0; p < p1; p++) {
            __m256 v = _mm256_loadu_ps(j->x + p * c + i);
            __m256d d0 = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), d1 = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
            if (j->pass == 2) {
                d0 = _mm256_sub_pd(d0, m0);
                d1 = _mm256_sub_pd(d1, m1);
                s0 = _mm256_fmadd_pd(d0, d0, s0);
                s1 = _mm256_fmadd_pd(d1, d1, s1);
            } else {
                s0 = _mm256_add_pd(s0, d0);
                s1 = _mm256_add_pd(s1, d1);
            }
        }
        _mm256_storeu_pd(acc + i, s0);
        _mm256_storeu_pd(acc + i + 4, s1);
    }
}

int kiln__group_norm_avx2(kiln_pool *pool, float *out, const float *x, size_t n_pix, int c, int n_groups,
                          const float *w, const float *b, float eps, int silu) {
    const kiln_cpu_features *f = kiln__cpu();
    if (!f->avx2 || !f->fma || c % 8 || n_groups < 1 || c % n_groups || n_pix == 0) return 0;
    return kiln__group_norm_passes(pool, gn_pass, out, x, n_pix, c, n_groups, w, b, eps, silu);
}

SIMD static void silu_run(float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, silu_v(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
}

int kiln__silu_avx2(float *x, size_t n) {
    if (!kiln__cpu()->avx2 || !kiln__cpu()->fma) return 0;
    silu_run(x, n);
    return 1;
}
