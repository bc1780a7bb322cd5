/* src/kernels/image_ops.c - GroupNorm, activations, nearest upsampling and
 * multi-head attention over channel-last data (see image_ops.h). */
#include "kernels/image_ops.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/attention.h"

/* Arguments of one GroupNorm run, shared by its threads. */
struct gn_job {
    float *out;        /* result [n_pix][c] */
    const float *x;    /* input [n_pix][c] */
    size_t n_pix;      /* pixels */
    int c;             /* channels */
    int n_groups;      /* groups of c / n_groups channels */
    const float *w;    /* scale [c] */
    const float *b;    /* shift [c] */
    float eps;         /* added to the variance */
    int silu;          /* apply SiLU after */
};

static float silu1(float v) { return v / (1.0f + expf(-v)); }

/* Thread ith normalizes groups ith, ith + nth, ... */
static void gn_run(void *ctx, int ith, int nth) {
    const struct gn_job *j = ctx;
    int per = j->c / j->n_groups;
    for (int g = ith; g < j->n_groups; g += nth) {
        int c0 = g * per;
        double sum = 0.0, sq = 0.0;
        for (size_t p = 0; p < j->n_pix; p++) {
            const float *r = j->x + p * (size_t)j->c + c0;
            for (int i = 0; i < per; i++) sum += r[i];
        }
        double count = (double)j->n_pix * per;
        double mean = sum / count;
        /* Two passes: the variance about the mean, as PyTorch's result. */
        for (size_t p = 0; p < j->n_pix; p++) {
            const float *r = j->x + p * (size_t)j->c + c0;
            for (int i = 0; i < per; i++) {
                double d = r[i] - mean;
                sq += d * d;
            }
        }
        float inv = (float)(1.0 / sqrt(sq / count + (double)j->eps));
        float fm = (float)mean;
        for (size_t p = 0; p < j->n_pix; p++) {
            const float *r = j->x + p * (size_t)j->c + c0;
            float *o = j->out + p * (size_t)j->c + c0;
            for (int i = 0; i < per; i++) {
                float v = (r[i] - fm) * inv * j->w[c0 + i] + j->b[c0 + i];
                o[i] = j->silu ? silu1(v) : v;
            }
        }
    }
}

void kiln__group_norm_ref(kiln_pool *pool, float *out, const float *x, size_t n_pix, int c,
                          int n_groups, const float *w, const float *b, float eps, int silu) {
    struct gn_job j = {out, x, n_pix, c, n_groups, w, b, eps, silu};
    kiln__pool_run(pool, gn_run, &j);
}

void kiln__group_norm(kiln_pool *pool, float *out, const float *x, size_t n_pix, int c,
                      int n_groups, const float *w, const float *b, float eps, int silu) {
    if (!kiln__group_norm_avx512(pool, out, x, n_pix, c, n_groups, w, b, eps, silu) &&
        !kiln__group_norm_avx2(pool, out, x, n_pix, c, n_groups, w, b, eps, silu))
        kiln__group_norm_ref(pool, out, x, n_pix, c, n_groups, w, b, eps, silu);
}

void kiln__silu_ref(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = silu1(x[i]);
}

void kiln__silu(float *x, size_t n) {
    if (!kiln__silu_avx512(x, n) && !kiln__silu_avx2(x, n)) kiln__silu_ref(x, n);
}

void kiln__quick_gelu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}

void kiln__gelu_erf(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void kiln__upsample_nearest(float *out, int oh, int ow, const float *x, int h, int w, int c) {
    for (int oy = 0; oy < oh; oy++) {
        int sy = (int)((int64_t)oy * h / oh);
        for (int ox = 0; ox < ow; ox++) {
            int sx = (int)((int64_t)ox * w / ow);
            memcpy(out + ((size_t)oy * (size_t)ow + (size_t)ox) * (size_t)c,
                   x + ((size_t)sy * (size_t)w + (size_t)sx) * (size_t)c, (size_t)c * sizeof *out);
        }
    }
}

/* Arguments of one attention run, shared by its threads. */
struct mha_job {
    float *out;          /* result rows */
    size_t out_stride;   /* floats between result rows */
    const float *q;      /* query rows */
    size_t q_stride;     /* floats between query rows */
    const float *k, *v;  /* key and value rows */
    size_t kv_stride;    /* floats between key (and value) rows */
    int n_q, n_kv;       /* query and key counts */
    int n_heads;         /* heads */
    int head_dim;        /* values per head */
    int causal;          /* query i sees keys 0..i only */
    float *scores;       /* n_kv floats of scratch per thread */
};

/* Thread ith takes query rows ith, ith + nth, ... */
static void mha_run(void *ctx, int ith, int nth) {
    const struct mha_job *j = ctx;
    float *scores = j->scores + (size_t)ith * (size_t)j->n_kv;
    float scale = 1.0f / sqrtf((float)j->head_dim);
    for (int i = ith; i < j->n_q; i += nth) {
        int last = j->causal ? (i < j->n_kv ? i : j->n_kv - 1) : j->n_kv - 1;
        for (int h = 0; h < j->n_heads; h++) {
            size_t off = (size_t)h * (size_t)j->head_dim;
            kiln__attention_head(j->out + (size_t)i * j->out_stride + off,
                                 j->q + (size_t)i * j->q_stride + off, j->k + off, j->v + off,
                                 KILN_DTYPE_F32, j->kv_stride, 0, last, j->head_dim, scale, scores);
        }
    }
}

kiln_status kiln__mha(kiln_pool *pool, float *out, size_t out_stride, const float *q, size_t q_stride,
                      const float *k, const float *v, size_t kv_stride, int n_q, int n_kv, int n_heads,
                      int head_dim, int causal) {
    if (n_q <= 0 || n_kv <= 0) return KILN_OK;
    float *scores = malloc((size_t)kiln__pool_size(pool) * (size_t)n_kv * sizeof *scores);
    if (!scores) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "attention: out of memory for %d keys", n_kv);
    struct mha_job j = {out, out_stride, q, q_stride, k, v, kv_stride, n_q, n_kv, n_heads, head_dim,
                        causal, scores};
    kiln__pool_run(pool, mha_run, &j);
    free(scores);
    return KILN_OK;
}
