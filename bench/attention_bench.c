/* bench/attention_bench.c - the LLM's prompt attention on its own, per
 * (token, head) pair (kiln__attention_head_fast, what forward.c runs for
 * short batches and generation) against the blocked kernel
 * (kiln__flash_attention, causal), the layer shape of TinyLlama (32 query
 * heads over 4 KV heads of 64):
 *
 *   attention_bench [-n N[,N...]] [-p POS] [-t THREADS] [-r REPS] [-f32]
 *
 * For each batch of N queries at positions POS.. (default 0) over an F16
 * (or, with -f32, F32) cache of POS + N positions, prints the best of REPS
 * (default 5) times of one layer's attention by each, in microseconds.
 * forward.c's threshold for the blocked kernel comes from these figures.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/threadpool.h"
#include "kernels/attention.h"
#include "kernels/flash_attention.h"
#include "tensor/fp16.h"

#define HEADS 32
#define HEADS_KV 4
#define HD 64

/* What the per-pair threads share. */
struct pair_job {
    float *out;           /* [n][HEADS * HD] */
    const float *q;       /* [n][HEADS * HD] */
    const void *k, *v;    /* [pos + n][HEADS_KV * HD] */
    kiln_dtype type;      /* F16 or F32 cache */
    int n, pos;           /* queries, position of the first */
    float *scores;        /* [threads][pos + n] */
};

/* Thread ith of nth: every nth (token, head) pair, as forward.c does. */
static void pair_run(void *ctx, int ith, int nth) {
    const struct pair_job *j = ctx;
    size_t esize = j->type == KILN_DTYPE_F16 ? 2 : 4, row = (size_t)HEADS * HD;
    for (int i = ith; i < j->n * HEADS; i += nth) {
        int t = i / HEADS, h = i % HEADS;
        size_t g = (size_t)(h / (HEADS / HEADS_KV)) * HD * esize;
        kiln__attention_head_fast(j->out + (size_t)t * row + (size_t)h * HD, j->q + (size_t)t * row + (size_t)h * HD,
                                  (const char *)j->k + g, (const char *)j->v + g, j->type, (size_t)HEADS_KV * HD, 0,
                                  j->pos + t, HD, 1.0f / sqrtf((float)HD),
                                  j->scores + (size_t)ith * (size_t)(j->pos + j->n));
    }
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    const char *ns = "1,2,4,8,16,32,64,128,512";
    int pos = 0, threads = 1, reps = 5, f32 = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "-n") == 0) ns = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "-p") == 0) pos = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "-t") == 0) threads = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "-r") == 0) reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "-f32") == 0) f32 = 1;
        else {
            fprintf(stderr, "usage: %s [-n N[,N...]] [-p POS] [-t THREADS] [-r REPS] [-f32]\n", argv[0]);
            return 2;
        }
    }
    kiln_pool *pool = kiln__pool_create(threads);
    if (!pool || pos < 0 || reps < 1) return 1;
    printf("| n | pos | cache | threads | per pair (us) | blocked (us) |\n| ---: | ---: | --- | ---: | ---: | ---: |\n");
    for (const char *p = ns; *p;) {
        char *end;
        long n = strtol(p, &end, 10);
        p = *end == ',' ? end + 1 : end;
        if (n < 1 || (end == p && *p)) break;
        size_t kv = (size_t)(pos + n) * HEADS_KV * HD, qn = (size_t)n * HEADS * HD;
        float *q = malloc(qn * sizeof *q), *out = malloc(qn * sizeof *out);
        float *k = malloc(kv * sizeof *k), *v = malloc(kv * sizeof *v);
        uint16_t *k16 = malloc(kv * sizeof *k16), *v16 = malloc(kv * sizeof *v16);
        float *scores = malloc((size_t)threads * (size_t)(pos + n) * sizeof *scores);
        float *scratch = kiln__aligned_alloc((size_t)threads * kiln__flash_scratch_floats(HD) * sizeof(float), 64);
        if (!q || !out || !k || !v || !k16 || !v16 || !scores || !scratch) return 1;
        /* Deterministic values of attention-like size. */
        for (size_t i = 0; i < qn; i++) q[i] = sinf((float)i * 0.37f);
        for (size_t i = 0; i < kv; i++) k[i] = cosf((float)i * 0.11f), v[i] = sinf((float)i * 0.23f);
        kiln__f32_to_f16_row(k, k16, kv);
        kiln__f32_to_f16_row(v, v16, kv);
        kiln_dtype type = f32 ? KILN_DTYPE_F32 : KILN_DTYPE_F16;
        const void *kc = f32 ? (const void *)k : k16, *vc = f32 ? (const void *)v : v16;
        struct pair_job pj = {out, q, kc, vc, type, (int)n, pos, scores};
        struct kiln_flash_args fa = {.out = out, .out_stride = (size_t)HEADS * HD, .q = q,
                                     .q_stride = (size_t)HEADS * HD, .k = kc, .v = vc,
                                     .kv_stride = (size_t)HEADS_KV * HD, .kv_type = type, .n_q = (int)n,
                                     .n_kv = pos + (int)n, .n_heads = HEADS, .n_heads_kv = HEADS_KV, .head_dim = HD,
                                     .causal = 1, .pos = pos, .scratch = scratch};
        double best_pair = 1e30, best_flash = 1e30;
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            kiln__pool_run(pool, pair_run, &pj);
            double t1 = now();
            if (kiln__flash_attention(pool, &fa, KILN_CONV_ISA_BEST) != KILN_OK) return 1;
            double t2 = now();
            if (t1 - t0 < best_pair) best_pair = t1 - t0;
            if (t2 - t1 < best_flash) best_flash = t2 - t1;
        }
        printf("| %ld | %d | %s | %d | %.1f | %.1f |\n", n, pos, f32 ? "f32" : "f16", threads, best_pair * 1e6,
               best_flash * 1e6);
        free(q), free(out), free(k), free(v), free(k16), free(v16), free(scores);
        kiln__aligned_free(scratch);
    }
    kiln__pool_free(pool);
    return 0;
}
