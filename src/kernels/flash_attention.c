/* src/kernels/flash_attention.c - blocked attention with an online
 * softmax: the plain-C reference, the AVX-512 path and the threaded driver
 * (see flash_attention.h; the AVX2 path is in flash_attention_avx2.c). */
#include "kernels/flash_attention.h"

#include <immintrin.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/avx512_math.h"
#include "kernels/flash_attention_impl.h"

#define KB KILN_FLASH_KB
/* Queries per AVX-512 item (two vectors of lanes). */
#define QB 32
#define NEG_BIG KILN_FLASH_NEG_BIG

/* Reference: queries q0 .. q1-1 of head h, one at a time; scratch holds
 * KB scores and hd output values. */
static void flash_scalar(const struct kiln_flash_job *j, int h, int q0, int q1, float *scratch) {
    size_t hd = (size_t)j->hd, off = (size_t)h * hd;
    float scale = 1.0f / sqrtf((float)j->hd);
    float *s = scratch, *o = scratch + KB;
    for (int i = q0; i < q1; i++) {
        const float *qi = j->q + (size_t)i * j->q_stride + off;
        float m = NEG_BIG, l = 0.0f;
        memset(o, 0, hd * sizeof *o);
        for (int k0 = 0; k0 < j->n_kv; k0 += KB) {
            int nb = j->n_kv - k0 < KB ? j->n_kv - k0 : KB;
            float mb = m;
            for (int c = 0; c < nb; c++) {
                const float *kr = j->k + (size_t)(k0 + c) * j->kv_stride + off;
                float d = 0.0f;
                for (size_t e = 0; e < hd; e++) d += qi[e] * kr[e];
                s[c] = d * scale;
                if (s[c] > mb) mb = s[c];
            }
            /* Rescale what earlier blocks summed to the new maximum. */
            float alpha = expf(m - mb);
            l *= alpha;
            for (size_t e = 0; e < hd; e++) o[e] *= alpha;
            for (int c = 0; c < nb; c++) {
                float p = expf(s[c] - mb);
                const float *vr = j->v + (size_t)(k0 + c) * j->kv_stride + off;
                l += p;
                for (size_t e = 0; e < hd; e++) o[e] += p * vr[e];
            }
            m = mb;
        }
        float *dst = j->out + (size_t)i * j->out_stride + off;
        for (size_t e = 0; e < hd; e++) dst[e] = o[e] / l;
    }
}

#define SIMD __attribute__((target("avx512f")))

/* AVX-512: queries q0 .. q0+QB-1 of head h (those past n_q are zeros and
 * dropped). scratch: qt [hd][QB] (queries transposed, scaled by
 * log2(e)/sqrt(hd) so that exp2 gives the softmax), ot [hd][QB] (output
 * transposed), st [KB][QB] (scores, then probabilities). */
SIMD static void flash_avx512(const struct kiln_flash_job *j, int h, int q0, float *scratch) {
    size_t hd = (size_t)j->hd, off = (size_t)h * hd;
    float *qt = scratch, *ot = qt + hd * QB, *st = ot + hd * QB;
    int nq = j->n_q - q0 < QB ? j->n_q - q0 : QB;
    float scale = 1.4426950408889634f / sqrtf((float)j->hd);
    memset(qt, 0, hd * QB * sizeof *qt);
    memset(ot, 0, hd * QB * sizeof *ot);
    for (int i = 0; i < nq; i++) {
        const float *qi = j->q + (size_t)(q0 + i) * j->q_stride + off;
        for (size_t e = 0; e < hd; e++) qt[e * QB + (size_t)i] = qi[e] * scale;
    }
    __m512 m0 = _mm512_set1_ps(NEG_BIG), m1 = m0, l0 = _mm512_setzero_ps(), l1 = l0;
    for (int k0 = 0; k0 < j->n_kv; k0 += KB) {
        int nb = j->n_kv - k0 < KB ? j->n_kv - k0 : KB;
        /* Scores, 8 keys at a time (keys past nb repeat the last one, and
         * their scores are replaced by the floor below). */
        for (int c0 = 0; c0 < nb; c0 += 8) {
            const float *kr[8];
            for (int c = 0; c < 8; c++) {
                int key = k0 + (c0 + c < nb ? c0 + c : nb - 1);
                kr[c] = j->k + (size_t)key * j->kv_stride + off;
            }
            __m512 a[8][2];
            for (int c = 0; c < 8; c++) a[c][0] = a[c][1] = _mm512_setzero_ps();
            for (size_t e = 0; e < hd; e++) {
                __m512 x0 = _mm512_loadu_ps(qt + e * QB), x1 = _mm512_loadu_ps(qt + e * QB + 16);
                for (int c = 0; c < 8; c++) {
                    __m512 kv = _mm512_set1_ps(kr[c][e]);
                    a[c][0] = _mm512_fmadd_ps(kv, x0, a[c][0]);
                    a[c][1] = _mm512_fmadd_ps(kv, x1, a[c][1]);
                }
            }
            for (int c = 0; c < 8; c++) {
                _mm512_storeu_ps(st + (size_t)(c0 + c) * QB, a[c][0]);
                _mm512_storeu_ps(st + (size_t)(c0 + c) * QB + 16, a[c][1]);
            }
        }
        /* Online softmax, lane-wise: new maximum, rescale, probabilities. */
        __m512 n0 = m0, n1 = m1;
        for (int c = 0; c < nb; c++) {
            n0 = _mm512_max_ps(n0, _mm512_loadu_ps(st + (size_t)c * QB));
            n1 = _mm512_max_ps(n1, _mm512_loadu_ps(st + (size_t)c * QB + 16));
        }
        __m512 al0 = kiln__avx512_exp2(_mm512_sub_ps(m0, n0)), al1 = kiln__avx512_exp2(_mm512_sub_ps(m1, n1));
        m0 = n0, m1 = n1;
        l0 = _mm512_mul_ps(l0, al0), l1 = _mm512_mul_ps(l1, al1);
        for (size_t e = 0; e < hd; e++) {
            _mm512_storeu_ps(ot + e * QB, _mm512_mul_ps(_mm512_loadu_ps(ot + e * QB), al0));
            _mm512_storeu_ps(ot + e * QB + 16, _mm512_mul_ps(_mm512_loadu_ps(ot + e * QB + 16), al1));
        }
        for (int c = 0; c < nb; c++) {
            __m512 p0 = kiln__avx512_exp2(_mm512_sub_ps(_mm512_loadu_ps(st + (size_t)c * QB), m0));
            __m512 p1 = kiln__avx512_exp2(_mm512_sub_ps(_mm512_loadu_ps(st + (size_t)c * QB + 16), m1));
            l0 = _mm512_add_ps(l0, p0), l1 = _mm512_add_ps(l1, p1);
            _mm512_storeu_ps(st + (size_t)c * QB, p0);
            _mm512_storeu_ps(st + (size_t)c * QB + 16, p1);
        }
        /* ot += v^T p, 8 head channels at a time, then one at a time. */
        size_t e0 = 0;
        for (; e0 + 8 <= hd; e0 += 8) {
            __m512 a[8][2];
            for (int e = 0; e < 8; e++) {
                a[e][0] = _mm512_loadu_ps(ot + (e0 + (size_t)e) * QB);
                a[e][1] = _mm512_loadu_ps(ot + (e0 + (size_t)e) * QB + 16);
            }
            for (int c = 0; c < nb; c++) {
                const float *vr = j->v + (size_t)(k0 + c) * j->kv_stride + off + e0;
                __m512 p0 = _mm512_loadu_ps(st + (size_t)c * QB), p1 = _mm512_loadu_ps(st + (size_t)c * QB + 16);
                for (int e = 0; e < 8; e++) {
                    __m512 vv = _mm512_set1_ps(vr[e]);
                    a[e][0] = _mm512_fmadd_ps(vv, p0, a[e][0]);
                    a[e][1] = _mm512_fmadd_ps(vv, p1, a[e][1]);
                }
            }
            for (int e = 0; e < 8; e++) {
                _mm512_storeu_ps(ot + (e0 + (size_t)e) * QB, a[e][0]);
                _mm512_storeu_ps(ot + (e0 + (size_t)e) * QB + 16, a[e][1]);
            }
        }
        for (; e0 < hd; e0++) {
            __m512 a0 = _mm512_loadu_ps(ot + e0 * QB), a1 = _mm512_loadu_ps(ot + e0 * QB + 16);
            for (int c = 0; c < nb; c++) {
                __m512 vv = _mm512_set1_ps(j->v[(size_t)(k0 + c) * j->kv_stride + off + e0]);
                a0 = _mm512_fmadd_ps(vv, _mm512_loadu_ps(st + (size_t)c * QB), a0);
                a1 = _mm512_fmadd_ps(vv, _mm512_loadu_ps(st + (size_t)c * QB + 16), a1);
            }
            _mm512_storeu_ps(ot + e0 * QB, a0);
            _mm512_storeu_ps(ot + e0 * QB + 16, a1);
        }
    }
    /* Divide by the sums and write rows back. */
    __m512 r0 = _mm512_div_ps(_mm512_set1_ps(1.0f), l0), r1 = _mm512_div_ps(_mm512_set1_ps(1.0f), l1);
    for (size_t e = 0; e < hd; e++) {
        _mm512_storeu_ps(ot + e * QB, _mm512_mul_ps(_mm512_loadu_ps(ot + e * QB), r0));
        _mm512_storeu_ps(ot + e * QB + 16, _mm512_mul_ps(_mm512_loadu_ps(ot + e * QB + 16), r1));
    }
    for (int i = 0; i < nq; i++) {
        float *dst = j->out + (size_t)(q0 + i) * j->out_stride + off;
        for (size_t e = 0; e < hd; e++) dst[e] = ot[e * QB + (size_t)i];
    }
}

/* Thread body: (head, query block) items from the shared counter. */
static void flash_run(void *ctx, int ith, int nth) {
    (void)nth;
    struct kiln_flash_job *j = ctx;
    float *scratch = j->buf + (size_t)ith * j->buf_floats;
    int blocks = (j->n_q + j->q_per_item - 1) / j->q_per_item;
    for (int item; (item = atomic_fetch_add(&j->next, 1)) < j->n_items;) {
        int h = item / blocks, q0 = (item % blocks) * j->q_per_item;
        int q1 = q0 + j->q_per_item < j->n_q ? q0 + j->q_per_item : j->n_q;
        switch (j->isa) {
        case KILN_CONV_ISA_AVX512: flash_avx512(j, h, q0, scratch); break;
        case KILN_CONV_ISA_AVX2: kiln__flash_avx2(j, h, q0, scratch); break;
        case KILN_CONV_ISA_BEST:
        case KILN_CONV_ISA_SCALAR: flash_scalar(j, h, q0, q1, scratch); break;
        }
    }
}

kiln_status kiln__flash_attention(kiln_pool *pool, float *out, size_t out_stride, const float *q,
                                  size_t q_stride, const float *k, const float *v, size_t kv_stride, int n_q,
                                  int n_kv, int n_heads, int head_dim, enum kiln_conv_isa isa) {
    if (n_q <= 0 || n_kv <= 0 || n_heads <= 0) return KILN_OK;
    if (head_dim <= 0) return kiln__fail(KILN_ERR_INVALID_ARG, "attention: head size %d", head_dim);
    kiln_status st = kiln__image_isa(isa, 1, "attention", &isa);
    if (st != KILN_OK) return st;
    size_t hd = (size_t)head_dim;
    /* Queries per item and scratch floats per thread of each path. */
    int per = isa == KILN_CONV_ISA_AVX512 ? QB : isa == KILN_CONV_ISA_AVX2 ? KILN_FLASH_AVX2_QB : 16;
    size_t floats = isa == KILN_CONV_ISA_SCALAR ? (size_t)KB + hd : (2 * hd + (size_t)KB) * (size_t)per;
    int nth = kiln__pool_size(pool);
    float *buf = kiln__aligned_alloc((size_t)nth * floats * sizeof *buf, KILN_ALIGN);
    if (!buf) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "attention: out of memory for %d-wide heads", head_dim);
    int blocks = (n_q + per - 1) / per;
    struct kiln_flash_job j = {out, out_stride, q, q_stride, k, v, kv_stride, n_q, n_kv, n_heads, head_dim,
                          per, blocks * n_heads, 0, isa, buf, floats};
    atomic_init(&j.next, 0);
    kiln__pool_run(pool, flash_run, &j);
    kiln__aligned_free(buf);
    return KILN_OK;
}
