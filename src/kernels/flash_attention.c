/* src/kernels/flash_attention.c - blocked attention with an online
 * softmax: the plain-C reference, the AVX-512 path, what the paths share
 * (packed key blocks with their causal-mask flag) and the threaded driver (see
 * flash_attention.h; the AVX2 path is in flash_attention_avx2.c). */
#include "kernels/flash_attention.h"

#include <immintrin.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/avx512_math.h"
#include "kernels/flash_attention_impl.h"
#include "tensor/fp16.h"

#define KB KILN_FLASH_KB
#define QB KILN_FLASH_AVX512_QB
#define NEG_BIG KILN_FLASH_NEG_BIG

/* The keys queries q0..q1-1 see between them: *lo..*hi (inclusive). */
static void key_span(const struct kiln_flash_job *j, int q0, int q1, int *lo, int *hi) {
    const struct kiln_flash_args *a = j->a;
    if (!a->causal) {
        *lo = 0, *hi = a->n_kv - 1;
        return;
    }
    *hi = a->pos + q1 - 1;
    *lo = j->window > 0 && a->pos + q0 - j->window + 1 > 0 ? a->pos + q0 - j->window + 1 : 0;
}

int kiln__flash_block(const struct kiln_flash_job *j, int h, int q0, int q1, int index, float *wide,
                      struct kiln_flash_block *b) {
    const struct kiln_flash_args *a = j->a;
    int lo, hi;
    key_span(j, q0, q1, &lo, &hi);
    int k0 = lo + index * KB;
    if (k0 > hi) return 0;
    int nb = hi - k0 + 1 < KB ? hi - k0 + 1 : KB;
    /* a key past the first query's, or one before the last query's window */
    b->mask = a->causal && (k0 + nb - 1 > a->pos + q0 || (j->window > 0 && k0 < a->pos + q1 - j->window));
    size_t hd = (size_t)a->head_dim, at = (size_t)k0 * a->kv_stride + (size_t)(h / j->group) * hd;
    float *wk = wide, *wv = wide + (size_t)KB * hd;
    for (int c = 0; c < nb; c++) {
        size_t row = at + (size_t)c * a->kv_stride;
        if (a->kv_type == KILN_DTYPE_F16) {
            kiln__f16_to_f32_row((const uint16_t *)a->k + row, wk + (size_t)c * hd, hd);
            kiln__f16_to_f32_row((const uint16_t *)a->v + row, wv + (size_t)c * hd, hd);
        } else {
            memcpy(wk + (size_t)c * hd, (const float *)a->k + row, hd * sizeof *wk);
            memcpy(wv + (size_t)c * hd, (const float *)a->v + row, hd * sizeof *wv);
        }
    }
    b->k0 = k0, b->nb = nb, b->k = wk, b->v = wv, b->stride = hd;
    return 1;
}

/* Reference: queries q0 .. q1-1 of head h, one at a time over exactly the
 * keys each sees, in blocks of KB from its first; scratch holds KB scores,
 * hd output values and a packed key block. */
static void flash_scalar(const struct kiln_flash_job *j, int h, int q0, int q1, float *scratch) {
    const struct kiln_flash_args *a = j->a;
    size_t hd = (size_t)a->head_dim, off = (size_t)h * hd;
    float scale = 1.0f / sqrtf((float)a->head_dim);
    float *s = scratch, *o = scratch + KB, *wide = o + hd;
    for (int i = q0; i < q1; i++) {
        const float *qi = a->q + (size_t)i * a->q_stride + off;
        float m = NEG_BIG, l = 0.0f;
        memset(o, 0, hd * sizeof *o);
        struct kiln_flash_block b;
        for (int bi = 0; kiln__flash_block(j, h, i, i + 1, bi, wide, &b); bi++) {
            int nb = b.nb;
            const float *kb = b.k, *vb = b.v;
            size_t stride = b.stride;
            float mb = m;
            for (int c = 0; c < nb; c++) {
                const float *kr = kb + (size_t)c * stride;
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
                const float *vr = vb + (size_t)c * stride;
                l += p;
                for (size_t e = 0; e < hd; e++) o[e] += p * vr[e];
            }
            m = mb;
        }
        float *dst = a->out + (size_t)i * a->out_stride + off;
        for (size_t e = 0; e < hd; e++) dst[e] = o[e] / l;
    }
}

#define SIMD __attribute__((target("avx512f")))

/* AVX-512: queries q0 .. q0+QB-1 of head h (those past n_q are zeros and
 * dropped). scratch: qt [hd][QB] (queries transposed, scaled by
 * log2(e)/sqrt(hd) so that exp2 gives the softmax), ot [hd][QB] (output
 * transposed), st [KB][QB] (scores, then probabilities), then the packed
 * key block. */
SIMD static void flash_avx512(const struct kiln_flash_job *j, int h, int q0, float *scratch) {
    const struct kiln_flash_args *a = j->a;
    size_t hd = (size_t)a->head_dim, off = (size_t)h * hd;
    float *qt = scratch, *ot = qt + hd * QB, *st = ot + hd * QB, *wide = st + (size_t)KB * QB;
    int nq = a->n_q - q0 < QB ? a->n_q - q0 : QB;
    float scale = 1.4426950408889634f / sqrtf((float)a->head_dim);
    memset(qt, 0, hd * QB * sizeof *qt);
    memset(ot, 0, hd * QB * sizeof *ot);
    for (int i = 0; i < nq; i++) {
        const float *qi = a->q + (size_t)(q0 + i) * a->q_stride + off;
        for (size_t e = 0; e < hd; e++) qt[e * QB + (size_t)i] = qi[e] * scale;
    }
    /* Lane numbers, for the causal masks. */
    const __m512i lane0 = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i lane1 = _mm512_add_epi32(lane0, _mm512_set1_epi32(16));
    __m512 m0 = _mm512_set1_ps(NEG_BIG), m1 = m0, l0 = _mm512_setzero_ps(), l1 = l0;
    struct kiln_flash_block b;
    for (int bi = 0; kiln__flash_block(j, h, q0, q0 + nq, bi, wide, &b); bi++) {
        int k0 = b.k0, nb = b.nb, mask = b.mask;
        const float *kb = b.k, *vb = b.v;
        size_t stride = b.stride;
        /* Scores, 8 keys at a time (keys past nb repeat the last one; their
         * rows of st are never read). */
        for (int c0 = 0; c0 < nb; c0 += 8) {
            const float *kr[8];
            for (int c = 0; c < 8; c++) kr[c] = kb + (size_t)(c0 + c < nb ? c0 + c : nb - 1) * stride;
            __m512 acc[8][2];
            for (int c = 0; c < 8; c++) acc[c][0] = acc[c][1] = _mm512_setzero_ps();
            for (size_t e = 0; e < hd; e++) {
                __m512 x0 = _mm512_loadu_ps(qt + e * QB), x1 = _mm512_loadu_ps(qt + e * QB + 16);
                for (int c = 0; c < 8; c++) {
                    __m512 kv = _mm512_set1_ps(kr[c][e]);
                    acc[c][0] = _mm512_fmadd_ps(kv, x0, acc[c][0]);
                    acc[c][1] = _mm512_fmadd_ps(kv, x1, acc[c][1]);
                }
            }
            for (int c = 0; mask && c < 8; c++) {
                /* lanes that must not see this key (lane i sees it when
                 * d <= i < d + window) score the floor */
                int d = k0 + c0 + c - a->pos - q0;
                __m512i dv = _mm512_set1_epi32(d);
                __mmask16 s0 = _mm512_cmpge_epi32_mask(lane0, dv), s1 = _mm512_cmpge_epi32_mask(lane1, dv);
                if (j->window > 0) {
                    __m512i rv = _mm512_set1_epi32(d + j->window);
                    s0 &= _mm512_cmplt_epi32_mask(lane0, rv);
                    s1 &= _mm512_cmplt_epi32_mask(lane1, rv);
                }
                acc[c][0] = _mm512_mask_blend_ps(s0, _mm512_set1_ps(NEG_BIG), acc[c][0]);
                acc[c][1] = _mm512_mask_blend_ps(s1, _mm512_set1_ps(NEG_BIG), acc[c][1]);
            }
            for (int c = 0; c < 8; c++) {
                _mm512_storeu_ps(st + (size_t)(c0 + c) * QB, acc[c][0]);
                _mm512_storeu_ps(st + (size_t)(c0 + c) * QB + 16, acc[c][1]);
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
            __m512 acc[8][2];
            for (int e = 0; e < 8; e++) {
                acc[e][0] = _mm512_loadu_ps(ot + (e0 + (size_t)e) * QB);
                acc[e][1] = _mm512_loadu_ps(ot + (e0 + (size_t)e) * QB + 16);
            }
            for (int c = 0; c < nb; c++) {
                const float *vr = vb + (size_t)c * stride + e0;
                __m512 p0 = _mm512_loadu_ps(st + (size_t)c * QB), p1 = _mm512_loadu_ps(st + (size_t)c * QB + 16);
                for (int e = 0; e < 8; e++) {
                    __m512 vv = _mm512_set1_ps(vr[e]);
                    acc[e][0] = _mm512_fmadd_ps(vv, p0, acc[e][0]);
                    acc[e][1] = _mm512_fmadd_ps(vv, p1, acc[e][1]);
                }
            }
            for (int e = 0; e < 8; e++) {
                _mm512_storeu_ps(ot + (e0 + (size_t)e) * QB, acc[e][0]);
                _mm512_storeu_ps(ot + (e0 + (size_t)e) * QB + 16, acc[e][1]);
            }
        }
        for (; e0 < hd; e0++) {
            __m512 a0 = _mm512_loadu_ps(ot + e0 * QB), a1 = _mm512_loadu_ps(ot + e0 * QB + 16);
            for (int c = 0; c < nb; c++) {
                __m512 vv = _mm512_set1_ps(vb[(size_t)c * stride + e0]);
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
        float *dst = a->out + (size_t)(q0 + i) * a->out_stride + off;
        for (size_t e = 0; e < hd; e++) dst[e] = ot[e * QB + (size_t)i];
    }
}


/* Thread body: (head, query block) items from the shared counter, the
 * last query blocks (the costliest when causal) of every head first. */
static void flash_run(void *ctx, int ith, int nth) {
    (void)nth;
    struct kiln_flash_job *j = ctx;
    const struct kiln_flash_args *a = j->a;
    float *scratch = j->buf + (size_t)ith * j->buf_floats;
    for (int item; (item = atomic_fetch_add(&j->next, 1)) < j->n_items;) {
        int h = item % a->n_heads, q0 = (j->blocks - 1 - item / a->n_heads) * j->q_per_item;
        int q1 = q0 + j->q_per_item < a->n_q ? q0 + j->q_per_item : a->n_q;
        switch (j->isa) {
        case KILN_CONV_ISA_AVX512: flash_avx512(j, h, q0, scratch); break;
        case KILN_CONV_ISA_AVX2: kiln__flash_avx2(j, h, q0, scratch); break;
        case KILN_CONV_ISA_BEST:
        case KILN_CONV_ISA_SCALAR: flash_scalar(j, h, q0, q1, scratch); break;
        }
    }
}

/* Scratch floats of one thread: per queries per item (0: the scalar
 * path's KB scores and hd outputs), plus a packed key and value block;
 * rounded up to whole cache lines. */
static size_t path_floats(size_t hd, int per) {
    size_t own = per ? (2 * hd + (size_t)KB) * (size_t)per : (size_t)KB + hd;
    return (own + 2 * (size_t)KB * hd + 15) & ~(size_t)15;
}

size_t kiln__flash_scratch_floats(int head_dim) { return path_floats(head_dim > 0 ? (size_t)head_dim : 0, QB); }

/* Arguments that describe no attention: KILN_ERR_INVALID_ARG. */
static kiln_status check_args(const struct kiln_flash_args *a) {
    if (a->head_dim <= 0) return kiln__fail(KILN_ERR_INVALID_ARG, "attention: head size %d", a->head_dim);
    if (a->n_heads_kv <= 0 || a->n_heads % a->n_heads_kv)
        return kiln__fail(KILN_ERR_INVALID_ARG, "attention: %d query heads over %d KV heads", a->n_heads,
                          a->n_heads_kv);
    if (a->kv_type != KILN_DTYPE_F32 && a->kv_type != KILN_DTYPE_F16)
        return kiln__fail(KILN_ERR_INVALID_ARG, "attention: keys of type %d (F32 or F16 only)", (int)a->kv_type);
    if (a->window < 0 || (a->window > 0 && !a->causal))
        return kiln__fail(KILN_ERR_INVALID_ARG, "attention: window %d without causal masking", a->window);
    if (a->causal && (a->pos < 0 || a->pos > a->n_kv - a->n_q))
        return kiln__fail(KILN_ERR_INVALID_ARG, "attention: %d queries from position %d over %d keys", a->n_q,
                          a->pos, a->n_kv);
    return KILN_OK;
}

kiln_status kiln__flash_attention(kiln_pool *pool, const struct kiln_flash_args *a, enum kiln_conv_isa isa) {
    if (a->n_q <= 0 || a->n_heads <= 0 || (a->n_kv <= 0 && !a->causal)) return KILN_OK;
    kiln_status st = check_args(a);
    if (st == KILN_OK) st = kiln__image_isa(isa, 1, "attention", &isa);
    if (st != KILN_OK) return st;
    size_t hd = (size_t)a->head_dim;
    /* Queries per item of each path (the scalar path's items are 16 queries). */
    int per = isa == KILN_CONV_ISA_AVX512 ? QB : isa == KILN_CONV_ISA_AVX2 ? KILN_FLASH_AVX2_QB : 16;
    size_t floats = a->scratch ? kiln__flash_scratch_floats(a->head_dim)
                               : path_floats(hd, isa == KILN_CONV_ISA_SCALAR ? 0 : per);
    float *buf = a->scratch;
    if (!buf) buf = kiln__aligned_alloc((size_t)kiln__pool_size(pool) * floats * sizeof *buf, KILN_ALIGN);
    if (!buf) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "attention: out of memory for %d-wide heads", a->head_dim);
    int blocks = (a->n_q + per - 1) / per;
    /* A window as long as the keys restricts nothing. */
    int window = a->window < a->n_kv ? a->window : 0;
    struct kiln_flash_job j = {a, a->n_heads / a->n_heads_kv, window, per, blocks, blocks * a->n_heads, 0, isa,
                               buf, floats};
    atomic_init(&j.next, 0);
    kiln__pool_run(pool, flash_run, &j);
    if (!a->scratch) kiln__aligned_free(buf);
    return KILN_OK;
}
