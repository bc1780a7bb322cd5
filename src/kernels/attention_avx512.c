/* src/kernels/attention_avx512.c - one query head's attention over the KV
 * cache with AVX-512 (kiln__attention_head_fast; the scalar reference is
 * attention.c). Keys and values, float16 or float32, are widened in
 * registers. Scores are computed 16 keys at a time (16 dot products reduced
 * together), the softmax uses a vector exp (within about 2 units in the last
 * place of expf), and the weighted sum of values keeps up to 128 output
 * values in registers per pass over the positions. Also a vector softmax
 * (kiln__softmax_scaled_fast) for the image attention's score rows. */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#include "core/cpu.h"
#include "kernels/avx512_math.h"
#include "kernels/attention.h"
#include "kernels/ops.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

/* Output values per register pass of the weighted sum (8 zmm). */
#define OUT_BLOCK 128

/* 16 values of row (F16 or F32) from index i; lanes outside m are 0. */
TARGET INLINE __m512 load_row(int f16, const void *row, int i, __mmask16 m) {
    if (f16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + i));
    return _mm512_maskz_loadu_ps(m, (const float *)row + i);
}

/* Mask of the first n (<= 16) lanes. */
INLINE __mmask16 first_lanes(int n) { return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u); }

/* The sums of a[0..15]'s lanes, lane k holding a[k]'s. */
TARGET INLINE __m512 sums16(const __m512 a[16]) {
    __m512 s = kiln__avx512_reduce16(a);
    /* the tree leaves a[k]'s sum in lane 4 * (k % 4) + k / 4 */
    const __m512i order = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    return _mm512_permutexvar_ps(order, s);
}

/* out[0..nb) = inv * sum_j p[j] * row_j[0..nb) over n rows `stride` bytes
 * apart; nvec = ceil(nb / 16) accumulators (a constant where inlined). */
TARGET INLINE void weighted_sum(float *out, const char *rows, int f16, size_t stride, const float *p, int n,
                                int nb, __m512 inv, const int nvec) {
    __m512 acc[OUT_BLOCK / 16];
    __mmask16 m[OUT_BLOCK / 16];
    for (int b = 0; b < nvec; b++) {
        acc[b] = _mm512_setzero_ps();
        m[b] = first_lanes(nb - 16 * b);
    }
    for (int j = 0; j < n; j++) {
        __m512 pj = _mm512_set1_ps(p[j]);
        const char *row = rows + (size_t)j * stride;
        for (int b = 0; b < nvec; b++) acc[b] = _mm512_fmadd_ps(pj, load_row(f16, row, 16 * b, m[b]), acc[b]);
    }
    for (int b = 0; b < nvec; b++) _mm512_mask_storeu_ps(out + 16 * b, m[b], _mm512_mul_ps(acc[b], inv));
}

TARGET static void head_avx512(float *out, const float *q, const void *k, const void *v, int f16,
                               size_t row_stride, int first, int last, int head_dim, float scale,
                               float *scores) {
    int n = last - first + 1;
    size_t esize = f16 ? 2 : 4;
    const char *kb = (const char *)k + (size_t)first * row_stride * esize;
    const char *vb = (const char *)v + (size_t)first * row_stride * esize;
    size_t stride = row_stride * esize;
    /* scores, 16 keys at a time */
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (int j0 = 0; j0 < n; j0 += 16) {
        int nk = n - j0 < 16 ? n - j0 : 16;
        __m512 acc[16];
        for (int u = 0; u < 16; u++) acc[u] = _mm512_setzero_ps();
        for (int i = 0; i < head_dim; i += 16) {
            __mmask16 m = first_lanes(head_dim - i);
            __m512 qv = _mm512_maskz_loadu_ps(m, q + i);
            for (int u = 0; u < 16; u++) {
                /* a short last group repeats its first key */
                const char *row = kb + (size_t)(j0 + (u < nk ? u : 0)) * stride;
                acc[u] = _mm512_fmadd_ps(load_row(f16, row, i, m), qv, acc[u]);
            }
        }
        __m512 s = _mm512_mul_ps(sums16(acc), _mm512_set1_ps(scale));
        __mmask16 mk = first_lanes(nk);
        _mm512_mask_storeu_ps(scores + j0, mk, s);
        vmax = _mm512_mask_max_ps(vmax, mk, vmax, s);
    }
    /* softmax weights, unnormalized */
    __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
    __m512 vsum = _mm512_setzero_ps();
    for (int j = 0; j < n; j += 16) {
        __mmask16 m = first_lanes(n - j);
        __m512 e = kiln__avx512_exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, scores + j), mx));
        e = _mm512_maskz_mov_ps(m, e);
        _mm512_mask_storeu_ps(scores + j, m, e);
        vsum = _mm512_add_ps(vsum, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
    /* out = sum_j p_j v_j / sum, OUT_BLOCK values per pass */
    for (int i0 = 0; i0 < head_dim; i0 += OUT_BLOCK) {
        int nb = head_dim - i0 < OUT_BLOCK ? head_dim - i0 : OUT_BLOCK;
        const char *col = vb + (size_t)i0 * esize;
        switch ((nb + 15) / 16) {
        case 1: weighted_sum(out + i0, col, f16, stride, scores, n, nb, inv, 1); break;
        case 2: weighted_sum(out + i0, col, f16, stride, scores, n, nb, inv, 2); break;
        case 3: weighted_sum(out + i0, col, f16, stride, scores, n, nb, inv, 3); break;
        case 4: weighted_sum(out + i0, col, f16, stride, scores, n, nb, inv, 4); break;
        case 5: weighted_sum(out + i0, col, f16, stride, scores, n, nb, inv, 5); break;
        case 6: weighted_sum(out + i0, col, f16, stride, scores, n, nb, inv, 6); break;
        case 7: weighted_sum(out + i0, col, f16, stride, scores, n, nb, inv, 7); break;
        default: weighted_sum(out + i0, col, f16, stride, scores, n, nb, inv, 8); break;
        }
    }
}

/* x = softmax(x * scale) over n values (n >= 1). */
TARGET static void softmax_avx512(float *x, size_t n, float scale) {
    __m512 vs = _mm512_set1_ps(scale), vmax = _mm512_set1_ps(-INFINITY);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = first_lanes((int)(n - i < 16 ? n - i : 16));
        vmax = _mm512_mask_max_ps(vmax, m, vmax, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs));
    }
    __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax)), vsum = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = first_lanes((int)(n - i < 16 ? n - i : 16));
        __m512 e = _mm512_maskz_mov_ps(m, kiln__avx512_exp(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(m, x + i), vs, mx)));
        _mm512_mask_storeu_ps(x + i, m, e);
        vsum = _mm512_add_ps(vsum, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = first_lanes((int)(n - i < 16 ? n - i : 16));
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
    }
}

void kiln__softmax_scaled_fast(float *x, size_t n, float scale) {
    if (n == 0) return;
    const kiln_cpu_features *f = kiln__cpu();
    if (f->avx512f && f->avx512bw && f->avx512vl && f->fma) {
        softmax_avx512(x, n, scale);
        return;
    }
    for (size_t i = 0; i < n; i++) x[i] *= scale;
    kiln__softmax(x, n);
}

void kiln__attention_head_fast(float *out, const float *q, const void *k, const void *v,
                               kiln_dtype kv_type, size_t row_stride, int first, int last,
                               int head_dim, float scale, float *scores) {
    const kiln_cpu_features *f = kiln__cpu();
    if (f->avx512f && f->avx512bw && f->avx512vl && f->fma && f->f16c && last >= first) {
        head_avx512(out, q, k, v, kv_type == KILN_DTYPE_F16, row_stride, first, last, head_dim, scale,
                    scores);
        return;
    }
    kiln__attention_head(out, q, k, v, kv_type, row_stride, first, last, head_dim, scale, scores);
}
