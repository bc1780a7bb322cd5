/* src/kernels/flash_attention_avx2.c - the AVX2+FMA path of the blocked
 * attention (see flash_attention.h), for CPUs without AVX-512F: the
 * AVX-512 path's scheme with 16 queries (two ymm vectors of lanes) per
 * item, scores 4 keys at a time and the value sum 4 head channels at a
 * time, so that the accumulators fit in the 16 ymm registers; causal
 * masks by an integer compare of lane numbers and a blend. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/avx2_math.h"
#include "kernels/flash_attention_impl.h"

#define SIMD __attribute__((target("avx2,fma")))

#define Q2 KILN_FLASH_AVX2_QB
#define KB KILN_FLASH_KB

SIMD void kiln__flash_avx2(const struct kiln_flash_job *j, int h, int q0, float *scratch) {
    const struct kiln_flash_args *a = j->a;
    size_t hd = (size_t)a->head_dim, off = (size_t)h * hd;
    float *qt = scratch, *ot = qt + hd * Q2, *st = ot + hd * Q2, *wide = st + (size_t)KB * Q2;
    int nq = a->n_q - q0 < Q2 ? a->n_q - q0 : Q2;
    float scale = 1.4426950408889634f / sqrtf((float)a->head_dim);
    memset(qt, 0, hd * Q2 * sizeof *qt);
    memset(ot, 0, hd * Q2 * sizeof *ot);
    for (int i = 0; i < nq; i++) {
        const float *qi = a->q + (size_t)(q0 + i) * a->q_stride + off;
        for (size_t e = 0; e < hd; e++) qt[e * Q2 + (size_t)i] = qi[e] * scale;
    }
    /* Lane numbers, for the causal masks. */
    const __m256i lane0 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i lane1 = _mm256_add_epi32(lane0, _mm256_set1_epi32(8));
    __m256 m0 = _mm256_set1_ps(KILN_FLASH_NEG_BIG), m1 = m0, l0 = _mm256_setzero_ps(), l1 = l0;
    struct kiln_flash_block b;
    for (int bi = 0; kiln__flash_block(j, h, q0, q0 + nq, bi, wide, &b); bi++) {
        int k0 = b.k0, nb = b.nb, mask = b.mask;
        const float *kb = b.k, *vb = b.v;
        size_t stride = b.stride;
        /* Scores, 4 keys at a time (keys past nb repeat the last one; their
         * rows of st are never read). */
        for (int c0 = 0; c0 < nb; c0 += 4) {
            const float *kr[4];
            for (int c = 0; c < 4; c++) kr[c] = kb + (size_t)(c0 + c < nb ? c0 + c : nb - 1) * stride;
            __m256 acc[4][2];
            for (int c = 0; c < 4; c++) acc[c][0] = acc[c][1] = _mm256_setzero_ps();
            for (size_t e = 0; e < hd; e++) {
                __m256 x0 = _mm256_loadu_ps(qt + e * Q2), x1 = _mm256_loadu_ps(qt + e * Q2 + 8);
                for (int c = 0; c < 4; c++) {
                    __m256 kv = _mm256_broadcast_ss(kr[c] + e);
                    acc[c][0] = _mm256_fmadd_ps(kv, x0, acc[c][0]);
                    acc[c][1] = _mm256_fmadd_ps(kv, x1, acc[c][1]);
                }
            }
            for (int c = 0; mask && c < 4; c++) {
                /* lanes that must not see this key (lane i sees it when
                 * d <= i < d + window) score the floor */
                int d = k0 + c0 + c - a->pos - q0;
                __m256i dv = _mm256_set1_epi32(d - 1);
                __m256i s0 = _mm256_cmpgt_epi32(lane0, dv), s1 = _mm256_cmpgt_epi32(lane1, dv);
                if (j->window > 0) {
                    __m256i rv = _mm256_set1_epi32(d + j->window);
                    s0 = _mm256_and_si256(s0, _mm256_cmpgt_epi32(rv, lane0));
                    s1 = _mm256_and_si256(s1, _mm256_cmpgt_epi32(rv, lane1));
                }
                __m256 neg = _mm256_set1_ps(KILN_FLASH_NEG_BIG);
                acc[c][0] = _mm256_blendv_ps(neg, acc[c][0], _mm256_castsi256_ps(s0));
                acc[c][1] = _mm256_blendv_ps(neg, acc[c][1], _mm256_castsi256_ps(s1));
            }
            for (int c = 0; c < 4; c++) {
                _mm256_storeu_ps(st + (size_t)(c0 + c) * Q2, acc[c][0]);
                _mm256_storeu_ps(st + (size_t)(c0 + c) * Q2 + 8, acc[c][1]);
            }
        }
        /* Online softmax, lane-wise: new maximum, rescale, probabilities. */
        __m256 n0 = m0, n1 = m1;
        for (int c = 0; c < nb; c++) {
            n0 = _mm256_max_ps(n0, _mm256_loadu_ps(st + (size_t)c * Q2));
            n1 = _mm256_max_ps(n1, _mm256_loadu_ps(st + (size_t)c * Q2 + 8));
        }
        __m256 al0 = kiln__avx2_exp2(_mm256_sub_ps(m0, n0)), al1 = kiln__avx2_exp2(_mm256_sub_ps(m1, n1));
        m0 = n0, m1 = n1;
        l0 = _mm256_mul_ps(l0, al0), l1 = _mm256_mul_ps(l1, al1);
        for (size_t e = 0; e < hd; e++) {
            _mm256_storeu_ps(ot + e * Q2, _mm256_mul_ps(_mm256_loadu_ps(ot + e * Q2), al0));
            _mm256_storeu_ps(ot + e * Q2 + 8, _mm256_mul_ps(_mm256_loadu_ps(ot + e * Q2 + 8), al1));
        }
        for (int c = 0; c < nb; c++) {
            __m256 p0 = kiln__avx2_exp2(_mm256_sub_ps(_mm256_loadu_ps(st + (size_t)c * Q2), m0));
            __m256 p1 = kiln__avx2_exp2(_mm256_sub_ps(_mm256_loadu_ps(st + (size_t)c * Q2 + 8), m1));
            l0 = _mm256_add_ps(l0, p0), l1 = _mm256_add_ps(l1, p1);
            _mm256_storeu_ps(st + (size_t)c * Q2, p0);
            _mm256_storeu_ps(st + (size_t)c * Q2 + 8, p1);
        }
        /* ot += v^T p, 4 head channels at a time, then one at a time. */
        size_t e0 = 0;
        for (; e0 + 4 <= hd; e0 += 4) {
            __m256 acc[4][2];
            for (int e = 0; e < 4; e++) {
                acc[e][0] = _mm256_loadu_ps(ot + (e0 + (size_t)e) * Q2);
                acc[e][1] = _mm256_loadu_ps(ot + (e0 + (size_t)e) * Q2 + 8);
            }
            for (int c = 0; c < nb; c++) {
                const float *vr = vb + (size_t)c * stride + e0;
                __m256 p0 = _mm256_loadu_ps(st + (size_t)c * Q2), p1 = _mm256_loadu_ps(st + (size_t)c * Q2 + 8);
                for (int e = 0; e < 4; e++) {
                    __m256 vv = _mm256_broadcast_ss(vr + e);
                    acc[e][0] = _mm256_fmadd_ps(vv, p0, acc[e][0]);
                    acc[e][1] = _mm256_fmadd_ps(vv, p1, acc[e][1]);
                }
            }
            for (int e = 0; e < 4; e++) {
                _mm256_storeu_ps(ot + (e0 + (size_t)e) * Q2, acc[e][0]);
                _mm256_storeu_ps(ot + (e0 + (size_t)e) * Q2 + 8, acc[e][1]);
            }
        }
        for (; e0 < hd; e0++) {
            __m256 a0 = _mm256_loadu_ps(ot + e0 * Q2), a1 = _mm256_loadu_ps(ot + e0 * Q2 + 8);
            for (int c = 0; c < nb; c++) {
                __m256 vv = _mm256_broadcast_ss(vb + (size_t)c * stride + e0);
                a0 = _mm256_fmadd_ps(vv, _mm256_loadu_ps(st + (size_t)c * Q2), a0);
                a1 = _mm256_fmadd_ps(vv, _mm256_loadu_ps(st + (size_t)c * Q2 + 8), a1);
            }
            _mm256_storeu_ps(ot + e0 * Q2, a0);
            _mm256_storeu_ps(ot + e0 * Q2 + 8, a1);
        }
    }
    /* Divide by the sums and write rows back. */
    __m256 r0 = _mm256_div_ps(_mm256_set1_ps(1.0f), l0), r1 = _mm256_div_ps(_mm256_set1_ps(1.0f), l1);
    for (size_t e = 0; e < hd; e++) {
        _mm256_storeu_ps(ot + e * Q2, _mm256_mul_ps(_mm256_loadu_ps(ot + e * Q2), r0));
        _mm256_storeu_ps(ot + e * Q2 + 8, _mm256_mul_ps(_mm256_loadu_ps(ot + e * Q2 + 8), r1));
    }
    for (int i = 0; i < nq; i++) {
        float *dst = a->out + (size_t)(q0 + i) * a->out_stride + off;
        for (size_t e = 0; e < hd; e++) dst[e] = ot[e * Q2 + (size_t)i];
    }
}
