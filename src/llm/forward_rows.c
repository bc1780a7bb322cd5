/* src/llm/forward_rows.c - the per-token row passes of the forward pass
 * (residual add, norm, rope), shared out over the pool by tokens for a
 * batch: on two threads a prompt's norms and rotations would otherwise run
 * on one core while the other waits. Each token's row sees the same float
 * operations in the same order as a one-thread pass, so results do not
 * depend on the thread count. One token runs on the calling thread (a
 * pool run would cost more than the row). */
#include "kernels/ops.h"
#include "llm/llm_internal.h"

/* What the threads of one row pass share. */
struct rows_job {
    const struct kiln_llm *m; /* model: hyperparameters, quirks, rope factors */
    int n;                    /* tokens */
    float *x;                 /* norm pass: [n][n_embd] residual rows; rope pass: [n] query rows */
    const float *add;         /* norm pass: [n][n_embd] added into x first, or NULL */
    float *out;               /* norm pass: [n][n_embd] normed rows */
    const float *w, *b;       /* norm pass: scale and shift (b NULL for RMSNorm) */
    float *k;                 /* rope pass: [n] key rows (NULL: norm pass) */
    int pos;                  /* rope pass: position of token 0 */
};

static void norm_part(void *ctx, int ith, int nth) {
    const struct rows_job *j = ctx;
    const struct kiln_llm_hparams *hp = &j->m->hp;
    size_t d = (size_t)hp->n_embd;
    size_t t0, t1;
    kiln__pool_share((size_t)j->n, ith, nth, &t0, &t1);
    for (size_t t = t0; t < t1; t++) {
        float *x = j->x + t * d;
        if (j->add)
            for (size_t i = 0; i < d; i++) x[i] += j->add[t * d + i];
        switch (j->m->impl->quirks.norm) {
        case KILN_NORM_RMS: kiln__rmsnorm(j->out + t * d, x, j->w, d, hp->norm_eps); break;
        case KILN_NORM_LAYER: kiln__layernorm(j->out + t * d, x, j->w, j->b, d, hp->norm_eps); break;
        }
    }
}

static void rope_part(void *ctx, int ith, int nth) {
    const struct rows_job *j = ctx;
    const struct kiln_llm_hparams *hp = &j->m->hp;
    size_t n_q = (size_t)hp->n_head * (size_t)hp->head_dim, n_kv = (size_t)hp->n_head_kv * (size_t)hp->head_dim;
    kiln_rope_mode mode = hp->rope_pairing == KILN_ROPE_NEOX ? KILN_ROPE_MODE_NEOX : KILN_ROPE_MODE_INTERLEAVED;
    size_t t0, t1;
    kiln__pool_share((size_t)j->n, ith, nth, &t0, &t1);
    for (size_t t = t0; t < t1; t++) {
        int pos = j->pos + (int)t;
        kiln__rope(j->x + t * n_q, hp->n_head, hp->head_dim, hp->n_rot, pos, hp->rope_theta, j->m->s.rope_ff,
                   hp->rope_attn_factor, mode);
        kiln__rope(j->k + t * n_kv, hp->n_head_kv, hp->head_dim, hp->n_rot, pos, hp->rope_theta, j->m->s.rope_ff,
                   hp->rope_attn_factor, mode);
    }
}

/* The pass on the pool for a batch, on this thread for one token. */
static void run_rows(struct kiln_llm *m, kiln_pool_fn fn, struct rows_job *job) {
    if (job->n > 1) kiln__pool_run(m->pool, fn, job);
    else fn(job, 0, 1);
}

void kiln__llm_norm_rows(struct kiln_llm *m, float *out, float *x, const float *add, int n, const float *w,
                         const float *b) {
    struct rows_job job = {m, n, x, add, out, w, b, NULL, 0};
    run_rows(m, norm_part, &job);
}

void kiln__llm_rope_rows(struct kiln_llm *m, float *q, float *k, int n, int pos) {
    struct rows_job job = {m, n, q, NULL, NULL, NULL, NULL, k, pos};
    run_rows(m, rope_part, &job);
}
