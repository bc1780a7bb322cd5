/* src/llm/weight_layout.c - the load-time rewrite of the weight matrices
 * into the forms the kernels read fastest (kiln__llm_arrange_weights).
 *
 * Only weights copied into memory are rewritten (kiln__weights_to_memory,
 * the default): the file mapping is read-only, and a second copy would
 * double the memory. The rewrites keep every matrix's size, so they happen
 * in place:
 * - F16 into BF16 when f16_as_bf16 is set, each value rounded as the
 *   per-call path (kiln__matmul_fast_f16_as_bf16) rounds it, so the results
 *   are the same bits; the rounding is then done once instead of on every
 *   prompt call and each generated token reads the weights as BF16;
 * - quantized matrices into the x16 layout (qmatmul_x16.h) where the CPU
 *   runs the avx512 level, unless exact_matmul asks for the float path.
 */
#include "core/error.h"
#include "formats/weights.h"
#include "kernels/gemm_bf16.h"
#include "kernels/qmatmul.h"
#include "llm/llm_internal.h"
#include "tensor/fp16.h"

/* F16 values rounded to BF16 in place, shared out over the pool. */
struct to_bf16_job {
    uint16_t *v; /* the values: F16 on entry, BF16 on return */
    size_t n;    /* how many */
};

static void to_bf16_part(void *ctx, int ith, int nth) {
    const struct to_bf16_job *job = ctx;
    size_t per = (job->n + (size_t)nth - 1) / (size_t)nth, begin = per * (size_t)ith;
    size_t end = begin + per < job->n ? begin + per : job->n;
    for (size_t i = begin; i < end; i++) job->v[i] = kiln__f32_to_bf16(kiln__f16_to_f32(job->v[i]));
}

/* Rewrite one matrix (its bytes are writable: the caller checked that the
 * weights are a copy in memory). */
static kiln_status arrange(struct kiln_llm *m, struct kiln_wmat *w) {
    if (!w->data || w->data == m->tok_embd) return KILN_OK;
    void *data = (void *)(uintptr_t)w->data; /* the copy in memory, not the mapping */
    size_t rows = (size_t)w->rows, cols = (size_t)w->cols;
    if (m->params.exact_matmul) return KILN_OK;
    if (m->params.f16_as_bf16 && w->dtype == KILN_DTYPE_F16 && kiln__gemm_bf16_usable()) {
        struct to_bf16_job job = {data, rows * cols};
        kiln__pool_run(m->pool, to_bf16_part, &job);
        w->dtype = KILN_DTYPE_BF16;
        return KILN_OK;
    }
    if (!kiln__qmatmul_x16_ok(w->dtype, rows, cols)) return KILN_OK;
    kiln_status st = kiln__qmatmul_x16_pack(m->pool, w->dtype, data, rows, cols);
    if (st == KILN_OK) w->layout = KILN_QLAYOUT_X16;
    return st;
}

kiln_status kiln__llm_arrange_weights(struct kiln_llm *m) {
    if (!m->w->mem_) return KILN_OK;
    kiln_status st;
    for (int il = 0; il < m->hp.n_layer; il++) {
        struct kiln_llm_layer *L = &m->layers[il];
        struct kiln_wmat *mats[] = {&L->wq, &L->wk, &L->wv, &L->wqkv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++)
            if ((st = arrange(m, mats[i])) != KILN_OK) return st;
    }
    return arrange(m, &m->output);
}
