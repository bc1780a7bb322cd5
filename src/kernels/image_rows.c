/* src/kernels/image_rows.c - the row-wise operations of the UNet's
 * transformer blocks, threaded over rows: LayerNorm of each row and the
 * GEGLU gate (see image_ops.h). Each has a plain-C reference and an
 * AVX-512F path chosen at run time; they differ in rounding only. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/avx512_math.h"
#include "kernels/image_ops.h"
#include "kernels/ops.h"

#define SIMD __attribute__((target("avx512f")))

/* One call's arguments, shared by its threads. */
struct rows_job {
    float *out;        /* LayerNorm: result rows [rows][d]; GEGLU: the rows [rows][2d], gated in place */
    const float *x;    /* LayerNorm input rows [rows][d] (unused by GEGLU) */
    size_t rows;       /* rows */
    size_t d;          /* values per row (GEGLU: per half row) */
    const float *w;    /* LayerNorm scale [d] */
    const float *b;    /* LayerNorm shift [d] or NULL */
    float eps;         /* LayerNorm epsilon */
    int simd;          /* AVX-512 path */
};

/* The lane sum of a vector of doubles. */
SIMD static double hsum_pd(__m512d v) {
    __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
    __m128d q = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    return _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q)));
}

/* Mask of the first n < 16 lanes. */
static __mmask16 tail_mask(size_t n) { return (__mmask16)((1u << n) - 1u); }

/* kiln__layernorm of one row with AVX-512F: the same two passes in double
 * (eight lanes of partial sums), then (float)(x - mean) * inv * w + b. */
SIMD static void layernorm_row(float *out, const float *x, const float *w, const float *b, size_t d, float eps) {
    __m512d s = _mm512_setzero_pd();
    size_t i = 0;
    for (; i + 8 <= d; i += 8) s = _mm512_add_pd(s, _mm512_cvtps_pd(_mm256_loadu_ps(x + i)));
    double mean = hsum_pd(s);
    for (; i < d; i++) mean += x[i];
    mean /= (double)d;
    __m512d m = _mm512_set1_pd(mean), q = _mm512_setzero_pd();
    for (i = 0; i + 8 <= d; i += 8) {
        __m512d v = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), m);
        q = _mm512_fmadd_pd(v, v, q);
    }
    double var = hsum_pd(q);
    for (; i < d; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= (double)d;
    __m512 inv = _mm512_set1_ps((float)(1.0 / sqrt(var + eps)));
    for (i = 0; i < d; i += 16) {
        __mmask16 k = d - i >= 16 ? (__mmask16)0xFFFF : tail_mask(d - i);
        __m512 xv = _mm512_maskz_loadu_ps(k, x + i);
        __m512d lo = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(xv)), m);
        __m512d hi = _mm512_sub_pd(
            _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(xv), 1))), m);
        __m512 c = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo))),
                                                       _mm256_castps_pd(_mm512_cvtpd_ps(hi)), 1));
        __m512 v = _mm512_mul_ps(_mm512_mul_ps(c, inv), _mm512_maskz_loadu_ps(k, w + i));
        if (b) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, b + i));
        _mm512_mask_storeu_ps(out + i, k, v);
    }
}

/* erf lane-wise: Abramowitz and Stegun 7.1.26 (absolute error below
 * 1.5e-7), 1 - poly(t) e^(-x^2) with t = 1 / (1 + p|x|), sign restored. */
SIMD static __m512 erf_v(__m512 x) {
    __m512 ax = _mm512_abs_ps(x);
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), ax,
                                                                   _mm512_set1_ps(1.0f)));
    __m512 p = _mm512_set1_ps(1.061405429f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    p = _mm512_mul_ps(p, t);
    /* e^(-x^2) = 2^(-x^2 log2 e) */
    __m512 e = kiln__avx512_exp2(_mm512_mul_ps(_mm512_mul_ps(ax, ax), _mm512_set1_ps(-1.4426950408889634f)));
    __m512 r = _mm512_fnmadd_ps(p, e, _mm512_set1_ps(1.0f));
    /* Copy the sign of x. */
    return _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_castps_si512(r), _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u))));
}

/* One GEGLU row with AVX-512F: r[j] = r[j] * gelu(r[d + j]) for j < d. */
SIMD static void geglu_row(float *r, size_t d) {
    for (size_t i = 0; i < d; i += 16) {
        __mmask16 k = d - i >= 16 ? (__mmask16)0xFFFF : tail_mask(d - i);
        __m512 g = _mm512_maskz_loadu_ps(k, r + d + i);
        __m512 ge = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), g),
                                  _mm512_add_ps(_mm512_set1_ps(1.0f),
                                                erf_v(_mm512_mul_ps(g, _mm512_set1_ps(0.70710678118654752f)))));
        _mm512_mask_storeu_ps(r + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, r + i), ge));
    }
}

/* The plain-C GEGLU row (GELU as kiln__gelu_erf). */
static void geglu_row_ref(float *r, size_t d) {
    for (size_t j = 0; j < d; j++) {
        float g = r[d + j];
        r[j] *= 0.5f * g * (1.0f + erff(g * 0.70710678118654752f));
    }
}

/* Thread ith of nth: rows [ith * rows / nth, (ith + 1) * rows / nth). */
static void ln_run(void *ctx, int ith, int nth) {
    const struct rows_job *j = ctx;
    size_t r0 = j->rows * (size_t)ith / (size_t)nth, r1 = j->rows * (size_t)(ith + 1) / (size_t)nth;
    for (size_t r = r0; r < r1; r++) {
        if (j->simd)
            layernorm_row(j->out + r * j->d, j->x + r * j->d, j->w, j->b, j->d, j->eps);
        else
            kiln__layernorm(j->out + r * j->d, j->x + r * j->d, j->w, j->b, j->d, j->eps);
    }
}

static void geglu_run(void *ctx, int ith, int nth) {
    const struct rows_job *j = ctx;
    size_t r0 = j->rows * (size_t)ith / (size_t)nth, r1 = j->rows * (size_t)(ith + 1) / (size_t)nth;
    for (size_t r = r0; r < r1; r++) {
        if (j->simd)
            geglu_row(j->out + r * 2 * j->d, j->d);
        else
            geglu_row_ref(j->out + r * 2 * j->d, j->d);
    }
}

void kiln__layernorm_rows(kiln_pool *pool, float *out, const float *x, size_t rows, size_t d, const float *w,
                          const float *b, float eps, int simd) {
    struct rows_job j = {out, x, rows, d, w, b, eps, simd && kiln__cpu()->avx512f};
    kiln__pool_run(pool, ln_run, &j);
}

void kiln__geglu_rows(kiln_pool *pool, float *f, size_t rows, size_t d, int simd) {
    struct rows_job j = {f, NULL, rows, d, NULL, NULL, 0.0f, simd && kiln__cpu()->avx512f};
    kiln__pool_run(pool, geglu_run, &j);
    /* Pack the gated halves together: row r moves to r * d (below where it
     * is for r > 0, so in order and in place). */
    for (size_t r = 1; r < rows; r++) memmove(f + r * d, f + r * 2 * d, d * sizeof *f);
}
