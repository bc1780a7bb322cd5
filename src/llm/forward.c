/* src/llm/forward.c - the decoder forward pass every architecture shares,
 * steered by its quirks (norm kind, fused projections, parallel block,
 * activation, biases, rope pairing and partial rotary).
 *
 * For n tokens at positions pos..pos+n-1:
 *   x = embedding rows
 *   per block:  h = norm(x)
 *               q, k, v = h Wq, h Wk, h Wv (+ biases; or one fused matrix)
 *               rope(q, k); k, v -> cache at their positions
 *               att = softmax(q k^T / sqrt(head_dim), causal [, window]) v
 *               sequential (Llama, Qwen2, Phi-3):
 *                   x += att Wo;  h = norm2(x);  x += down(silu(gate h) * up h)
 *               parallel (Phi-2):
 *                   x += att Wo + bo + down(gelu(up h + b_up)) + b_down
 *   logits = norm(x) Wout (+ bias)
 * Every matmul takes all n rows at once, so a prompt reads the weights once
 * per batch. Attention: batches of FLASH_MIN (24) tokens or more run the
 * blocked causal kernel (kiln__flash_attention: items of one query head
 * and 32 tokens, keys in blocks of 64 with an online softmax, later
 * positions and those before a sliding window masked lane by lane, GQA by
 * KV head index, F16/F32 cache); shorter batches, generation's single
 * token included, run one (token, head) pair at a time
 * (kiln__attention_head_fast). Nothing is allocated here: all buffers,
 * the blocked kernel's per-thread scratch included, come from m->s.
 */
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "kernels/attention.h"
#include "kernels/flash_attention.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/qmatmul.h"
#include "llm/llm_internal.h"
#include "tensor/dequant.h"
#include "tensor/tensor.h"

/* y[t] += b for n rows of `cols` values; b may be NULL. */
static void add_bias(float *y, const float *b, int n, int64_t cols) {
    if (!b) return;
    for (int t = 0; t < n; t++)
        for (int64_t i = 0; i < cols; i++) y[(size_t)t * (size_t)cols + (size_t)i] += b[i];
}

/* y = x W^T (+ b) for n rows. */
static kiln_status linear(struct kiln_llm *m, const struct kiln_wmat *w, const float *b,
                          const float *x, int n, float *y) {
    kiln_status st;
    if (w->layout == KILN_QLAYOUT_X16) {
        /* rows interleaved at load (weight_layout.c): only the multi-matrix
         * entry reads them */
        kiln_qmat mat = {w->dtype, w->data, (size_t)w->rows, y, w->layout};
        st = kiln__qmatmul_multi(m->pool, &mat, 1, 0, (size_t)w->cols, x, (size_t)n);
        if (st != KILN_OK) return st;
        add_bias(y, b, n, w->rows);
        return KILN_OK;
    }
    /* exact_matmul: the f32 path even for quantized weights; f16_as_bf16:
     * F16 rows rounded to bf16 (both llm.h) */
    st = (m->params.exact_matmul  ? kiln__matmul_fast_float
                      : m->params.f16_as_bf16 ? kiln__matmul_fast_f16_as_bf16
                                              : kiln__matmul_fast)(
        m->pool, w->dtype, w->data, (size_t)w->rows, (size_t)w->cols, x, (size_t)n, y, m->s.mm);
    if (st != KILN_OK) return st;
    add_bias(y, b, n, w->rows);
    return KILN_OK;
}

/* Several matrices with the same input, x W_m^T (+ b_m) into y[m]: where
 * kiln__qmatmul_multi takes them (quantized weights, not exact_matmul), one
 * activation quantization and one pool run for all (with swiglu: gate and
 * up, y[0] = silu(gate) * up made chunk by chunk; no biases then); else one
 * linear() each. The same bits either way. */
static kiln_status linear_multi(struct kiln_llm *m, const struct kiln_wmat *const *w, const float *const *b,
                                float *const *y, int count, int swiglu, const float *x, int n) {
    kiln_qmat mats[KILN_QMAT_MAX];
    int ok = !m->params.exact_matmul && count <= KILN_QMAT_MAX;
    for (int i = 0; ok && i < count; i++) {
        mats[i] = (kiln_qmat){w[i]->dtype, w[i]->data, (size_t)w[i]->rows, y[i], w[i]->layout};
        ok = w[i]->cols == w[0]->cols;
    }
    if (ok && kiln__qmatmul_multi_ok(mats, count, (size_t)w[0]->cols)) {
        kiln_status st = kiln__qmatmul_multi(m->pool, mats, count, swiglu, (size_t)w[0]->cols, x, (size_t)n);
        if (st != KILN_OK) return st;
        for (int i = 0; i < count; i++) add_bias(y[i], b[i], n, w[i]->rows);
        return KILN_OK;
    }
    for (int i = 0; i < count; i++) {
        kiln_status st = linear(m, w[i], b[i], x, n, y[i]);
        if (st != KILN_OK) return st;
    }
    if (swiglu) kiln__swiglu_fast(y[0], y[1], (size_t)n * (size_t)w[0]->rows);
    return KILN_OK;
}

/* What the attention threads share. */
struct attn_job {
    const struct kiln_llm *m; /* the model (hyperparameters, cache, scratch) */
    int layer;                /* block whose cache is read */
    int n;                    /* query tokens */
    int pos;                  /* position of the first */
};

/* Thread ith of nth: every nth (token, head) pair. */
static void attn_part(void *ctx, int ith, int nth) {
    const struct attn_job *job = ctx;
    const struct kiln_llm *m = job->m;
    const struct kiln_llm_hparams *hp = &m->hp;
    int hd = hp->head_dim, group = hp->n_head / hp->n_head_kv;
    size_t esize = m->kv.type == KILN_KV_F16 ? 2 : 4;
    kiln_dtype kv_dtype = m->kv.type == KILN_KV_F16 ? KILN_DTYPE_F16 : KILN_DTYPE_F32;
    const char *keys = kiln__kv_keys(&m->kv, job->layer);
    const char *vals = kiln__kv_values(&m->kv, job->layer);
    float *scores = m->s.scores + (size_t)ith * (size_t)m->kv.n_ctx;
    float scale = 1.0f / sqrtf((float)hd);
    size_t n_q = (size_t)hp->n_head * (size_t)hd;
    for (int i = ith; i < job->n * hp->n_head; i += nth) {
        int t = i / hp->n_head, h = i % hp->n_head;
        int p = job->pos + t;
        int first = hp->sliding_window > 0 && p - hp->sliding_window + 1 > 0 ? p - hp->sliding_window + 1 : 0;
        size_t head_off = (size_t)(h / group) * (size_t)hd * esize;
        kiln__attention_head_fast(m->s.att + (size_t)t * n_q + (size_t)h * (size_t)hd,
                                  m->s.q + (size_t)t * n_q + (size_t)h * (size_t)hd, keys + head_off,
                                  vals + head_off, kv_dtype, (size_t)m->kv.row, first, p, hd, scale,
                                  scores);
    }
}

/* Batches of at least this many tokens take the blocked attention: below
 * it the kernel's 32-query items are mostly empty lanes, and one (token,
 * head) pair at a time is faster (bench/attention_bench, TinyLlama's heads
 * on Zen 4: 24 tokens after 256 cached, 1.17 ms per pair against 0.95 ms
 * blocked; 16 tokens: 0.78 against 0.93). */
#define FLASH_MIN 24

/* Attention of n query rows (s->q, at positions pos..) over layer il's
 * cache into s->att: one (token, head) pair at a time for short batches
 * (and generation), the blocked kernel from FLASH_MIN tokens. */
static kiln_status attention(struct kiln_llm *m, int il, int n, int pos) {
    const struct kiln_llm_hparams *hp = &m->hp;
    if (n < FLASH_MIN) {
        struct attn_job job = {m, il, n, pos};
        kiln__pool_run(m->pool, attn_part, &job);
        return KILN_OK;
    }
    size_t n_q = (size_t)hp->n_head * (size_t)hp->head_dim;
    struct kiln_flash_args fa = {.out = m->s.att, .out_stride = n_q, .q = m->s.q, .q_stride = n_q,
                                 .k = kiln__kv_keys(&m->kv, il), .v = kiln__kv_values(&m->kv, il),
                                 .kv_stride = (size_t)m->kv.row,
                                 .kv_type = m->kv.type == KILN_KV_F16 ? KILN_DTYPE_F16 : KILN_DTYPE_F32,
                                 .n_q = n, .n_kv = pos + n, .n_heads = hp->n_head, .n_heads_kv = hp->n_head_kv,
                                 .head_dim = hp->head_dim, .causal = 1, .pos = pos,
                                 .window = hp->sliding_window > 0 ? hp->sliding_window : 0,
                                 .scratch = m->s.flash};
    return kiln__flash_attention(m->pool, &fa, KILN_CONV_ISA_BEST);
}

/* q, k, v of n normed rows in s->h, biased and rotated. */
static kiln_status qkv(struct kiln_llm *m, const struct kiln_llm_layer *L, int n, int pos) {
    struct kiln_llm_scratch *s = &m->s;
    const struct kiln_llm_hparams *hp = &m->hp;
    size_t n_q = (size_t)hp->n_head * (size_t)hp->head_dim;
    size_t n_kv = (size_t)hp->n_head_kv * (size_t)hp->head_dim;
    kiln_status st;
    if (L->wqkv.data) {
        if ((st = linear(m, &L->wqkv, NULL, s->h, n, s->qkv)) != KILN_OK) return st;
        size_t w = n_q + 2 * n_kv;
        for (int t = 0; t < n; t++) {
            memcpy(s->q + t * n_q, s->qkv + t * w, n_q * sizeof(float));
            memcpy(s->k + t * n_kv, s->qkv + t * w + n_q, n_kv * sizeof(float));
            memcpy(s->v + t * n_kv, s->qkv + t * w + n_q + n_kv, n_kv * sizeof(float));
        }
        add_bias(s->q, L->bq, n, (int64_t)n_q);
        add_bias(s->k, L->bk, n, (int64_t)n_kv);
        add_bias(s->v, L->bv, n, (int64_t)n_kv);
    } else {
        const struct kiln_wmat *w[3] = {&L->wq, &L->wk, &L->wv};
        const float *b[3] = {L->bq, L->bk, L->bv};
        float *y[3] = {s->q, s->k, s->v};
        if ((st = linear_multi(m, w, b, y, 3, 0, s->h, n)) != KILN_OK) return st;
    }
    kiln__llm_rope_rows(m, s->q, s->k, n, pos);
    return KILN_OK;
}

/* The feed-forward of n rows of `in` into `out` ([n][n_embd]; not `in`). */
static kiln_status ffn(struct kiln_llm *m, const struct kiln_llm_layer *L, const float *in, int n,
                       float *out) {
    struct kiln_llm_scratch *s = &m->s;
    size_t n_ff = (size_t)m->hp.n_ff;
    kiln_status st;
    const float *hidden = s->ff;
    switch (m->impl->quirks.ffn) {
    case KILN_FFN_SWIGLU:
        if (!L->w_gate.data) {
            /* fused [gate; up]: silu(gate) * up, packed into ff2 */
            if ((st = linear(m, &L->w_up, NULL, in, n, s->ff)) != KILN_OK) return st;
            for (int t = 0; t < n; t++) {
                float *row = s->ff + t * 2 * n_ff;
                kiln__swiglu_fast(row, row + n_ff, n_ff);
                memcpy(s->ff2 + t * n_ff, row, n_ff * sizeof(float));
            }
            hidden = s->ff2;
        } else {
            const struct kiln_wmat *w[2] = {&L->w_gate, &L->w_up};
            const float *b[2] = {NULL, NULL};
            float *y[2] = {s->ff, s->ff2};
            if ((st = linear_multi(m, w, b, y, 2, 1, in, n)) != KILN_OK) return st;
        }
        break;
    case KILN_FFN_GELU:
        if ((st = linear(m, &L->w_up, L->b_up, in, n, s->ff)) != KILN_OK) return st;
        kiln__gelu_tanh(s->ff, (size_t)n * n_ff);
        break;
    }
    return linear(m, &L->w_down, L->b_down, hidden, n, out);
}

kiln_status kiln__llm_forward(struct kiln_llm *m, const int32_t *tok, int n, int pos,
                              float *logits) {
    struct kiln_llm_scratch *s = &m->s;
    const struct kiln_llm_hparams *hp = &m->hp;
    const kiln_llm_quirks *qk = &m->impl->quirks;
    size_t d = (size_t)hp->n_embd;
    kiln_status st;

    /* Embedding rows (decoded from any weight type). */
    size_t erow = kiln__tensor_bytes(m->tok_embd_type, d);
    for (int t = 0; t < n; t++)
        if ((st = kiln__dequantize(m->tok_embd_type, (const char *)m->tok_embd + (size_t)tok[t] * erow,
                                   s->x + t * d, d)) != KILN_OK)
            return st;

    /* the feed-forward output of the block before, added to x by the next
     * norm pass (one pass over x instead of two) */
    const float *pending = NULL;
    for (int il = 0; il < hp->n_layer; il++) {
        const struct kiln_llm_layer *L = &m->layers[il];
        kiln__llm_norm_rows(m, s->h, s->x, pending, n, L->attn_norm, L->attn_norm_b);
        pending = NULL;
        if ((st = qkv(m, L, n, pos)) != KILN_OK) return st;
        kiln__kv_store(&m->kv, il, pos, n, s->k, s->v);
        if ((st = attention(m, il, n, pos)) != KILN_OK) return st;
        if ((st = linear(m, &L->wo, L->bo, s->att, n, s->o)) != KILN_OK) return st;
        if (qk->parallel_block) {
            /* attention and MLP both read h; h is free once the MLP has read it */
            if ((st = ffn(m, L, s->h, n, s->h)) != KILN_OK) return st;
            for (size_t i = 0; i < (size_t)n * d; i++) s->x[i] += s->o[i] + s->h[i];
        } else {
            kiln__llm_norm_rows(m, s->h, s->x, s->o, n, L->ffn_norm, L->ffn_norm_b);
            if ((st = ffn(m, L, s->h, n, s->o)) != KILN_OK) return st;
            pending = s->o;
        }
    }

    /* without logits the residual stream is not read again */
    if (!logits) return KILN_OK;
    /* LM head over every row, or only the last. */
    int first = m->logits_all ? 0 : n - 1;
    int rows = n - first;
    kiln__llm_norm_rows(m, s->h, s->x + (size_t)first * d, pending ? pending + (size_t)first * d : NULL, rows,
                        m->out_norm, m->out_norm_b);
    return linear(m, &m->output, m->output_b, s->h, rows, logits);
}
