/* src/kernels/attention_fast.c - multi-head attention as matrix products
 * (kiln__mha_fast, see image_ops.h): per head, contiguous copies of the
 * queries, keys and transposed values; query blocks of at most BLOCK rows
 * bound the score memory. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/attention.h"
#include "kernels/image_ops.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"

/* Query rows per block of scores. */
#define BLOCK 256

/* Arguments of one softmax pass over a block of score rows. */
struct softmax_job {
    float *s;       /* [n_rows][n_kv] scores, scaled in place then normalized */
    int n_rows;     /* rows in the block */
    int n_kv;       /* keys */
    int first;      /* query index of row 0 (for the causal mask) */
    int causal;     /* mask keys after the query */
    float scale;    /* 1 / sqrt(head_dim) */
};

/* Thread ith takes rows ith, ith + nth, ... */
static void softmax_run(void *ctx, int ith, int nth) {
    const struct softmax_job *j = ctx;
    for (int r = ith; r < j->n_rows; r += nth) {
        float *row = j->s + (size_t)r * (size_t)j->n_kv;
        int n = j->n_kv;
        if (j->causal && j->first + r + 1 < n) n = j->first + r + 1;
        kiln__softmax_scaled_fast(row, (size_t)n, j->scale);
        for (int c = n; c < j->n_kv; c++) row[c] = 0.0f;
    }
}

kiln_status kiln__mha_fast(kiln_pool *pool, float *out, size_t out_stride, const float *q, size_t q_stride,
                           const float *k, const float *v, size_t kv_stride, int n_q, int n_kv, int n_heads,
                           int head_dim, int causal) {
    if (n_q <= 0 || n_kv <= 0) return KILN_OK;
    size_t hd = (size_t)head_dim, nk = (size_t)n_kv, nq = (size_t)n_q;
    size_t block = nq < BLOCK ? nq : BLOCK;
    size_t widest = nk > hd ? nk : hd;
    float *qh = malloc(nq * hd * sizeof *qh);
    float *kh = malloc(nk * hd * sizeof *kh);
    float *vt = malloc(hd * nk * sizeof *vt);
    float *s = malloc(block * nk * sizeof *s);
    float *o = malloc(block * hd * sizeof *o);
    float *scratch = malloc((size_t)kiln__pool_size(pool) * widest * sizeof *scratch);
    kiln_status st = KILN_OK;
    if (!qh || !kh || !vt || !s || !o || !scratch)
        st = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "attention: out of memory for %d x %d", n_q, n_kv);
    for (int h = 0; st == KILN_OK && h < n_heads; h++) {
        size_t off = (size_t)h * hd;
        for (size_t i = 0; i < nq; i++) memcpy(qh + i * hd, q + i * q_stride + off, hd * sizeof *qh);
        for (size_t j = 0; j < nk; j++) {
            memcpy(kh + j * hd, k + j * kv_stride + off, hd * sizeof *kh);
            for (size_t e = 0; e < hd; e++) vt[e * nk + j] = v[j * kv_stride + off + e];
        }
        for (size_t first = 0; st == KILN_OK && first < nq; first += block) {
            size_t rows = nq - first < block ? nq - first : block;
            /* Scores: the keys are the "weights", the queries the rows. */
            st = kiln__matmul_fast(pool, KILN_DTYPE_F32, kh, nk, hd, qh + first * hd, rows, s, scratch);
            if (st != KILN_OK) break;
            struct softmax_job sj = {s, (int)rows, n_kv, (int)first, causal, 1.0f / sqrtf((float)head_dim)};
            kiln__pool_run(pool, softmax_run, &sj);
            st = kiln__matmul_fast(pool, KILN_DTYPE_F32, vt, hd, nk, s, rows, o, scratch);
            for (size_t i = 0; st == KILN_OK && i < rows; i++)
                memcpy(out + (first + i) * out_stride + off, o + i * hd, hd * sizeof *out);
        }
    }
    free(qh);
    free(kh);
    free(vt);
    free(s);
    free(o);
    free(scratch);
    return st;
}
