/* bench/block_bench.h - what the matmul benchmarks on TinyLlama-1.1B's
 * block shapes share (fmatmul_bench.c, qmatmul_bench.c): the seven
 * matrices of a block, the common options (-t THREADS, -n N_TOK, -l
 * LAYERS, -r REPS), the buffers, and the timing of one weight type over
 * LAYERS distinct copies of the block (so that one token streams the
 * weights from memory, not from cache) with one printed table row per
 * token count. Timings are wall-clock medians of REPS runs after a warm-up;
 * the fastest run is shown too (on a shared machine the least disturbed
 * one, the better figure for comparing two builds), with the share of the
 * cores the process got (its CPU time over the wall time).
 */
#ifndef KILN_BENCH_BLOCK_BENCH_H
#define KILN_BENCH_BLOCK_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/threadpool.h"
#include "kiln/dtype.h"
#include "kiln/status.h"

/* One matrix of the block: [n_out][n_in]. */
struct block_shape {
    size_t n_out, n_in; /* rows, values per row */
};
/* q, k, v, o, gate, up, down */
static const struct block_shape block_shapes[] = {{2048, 2048}, {256, 2048}, {256, 2048}, {2048, 2048},
                                                  {5632, 2048}, {5632, 2048}, {2048, 5632}};
#define BLOCK_MATS (sizeof block_shapes / sizeof block_shapes[0])
/* The widest input or output of the block. */
#define BLOCK_WIDEST 5632

/* The options every block benchmark takes. */
struct block_opts {
    int threads;    /* -t: pool threads (default 2) */
    int layers;     /* -l: distinct copies of the block (default 8) */
    int reps;       /* -r: timed runs per row (default 5) */
    size_t toks[2]; /* token counts timed: -n N, or 1 then 512 */
    int n_toks;     /* entries of toks in use */
};

/* One benchmark's buffers and options. */
struct block_bench {
    struct block_opts o; /* options */
    kiln_pool *pool;     /* o.threads threads */
    float *x, *y;        /* activations and results, [most tokens][BLOCK_WIDEST] */
    float *scratch;      /* per-thread scratch of kiln__matmul_fast*, [threads][BLOCK_WIDEST] */
    double *times;       /* [reps] seconds per layer */
};

/* One matrix product of the type being timed: weights w of shape s times
 * the first n_tok rows of b->x into b->y. */
typedef kiln_status (*block_matmul_fn)(void *ctx, struct block_bench *b, const void *w, struct block_shape s,
                                       size_t n_tok);

static inline struct block_opts block_default_opts(void) { return (struct block_opts){2, 8, 5, {1, 512}, 2}; }

/* Takes argv[*i] (and its value) when it is a common option; 1 if taken. */
static inline int block_common_arg(struct block_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    if (*i + 1 >= argc || a[0] != '-' || !a[1] || a[2]) return 0;
    switch (a[1]) {
    case 't': o->threads = atoi(argv[++*i]); return 1;
    case 'l': o->layers = atoi(argv[++*i]); return 1;
    case 'r': o->reps = atoi(argv[++*i]); return 1;
    case 'n': o->toks[0] = (size_t)atol(argv[++*i]), o->n_toks = 1; return 1;
    default: return 0;
    }
}

/* A value in [-1, 1) from a linear congruential generator. */
static inline float block_lcg(unsigned *state) {
    *state = *state * 1664525u + 1013904223u;
    return (float)(*state >> 8) / (float)(1u << 23) - 1.0f;
}

/* The pool and buffers for b->o (random activations); 0 on success, else
 * 2 for bad options or 1 when out of memory (the caller exits with it). */
static inline int block_bench_init(struct block_bench *b) {
    const struct block_opts *o = &b->o;
    if (o->threads < 1 || o->layers < 1 || o->reps < 1 || o->toks[0] < 1) return 2;
    size_t most = o->toks[o->n_toks - 1] > o->toks[0] ? o->toks[o->n_toks - 1] : o->toks[0];
    b->pool = kiln__pool_create(o->threads);
    b->x = malloc(most * BLOCK_WIDEST * sizeof *b->x);
    b->y = malloc(most * BLOCK_WIDEST * sizeof *b->y);
    b->scratch = malloc((size_t)o->threads * BLOCK_WIDEST * sizeof *b->scratch);
    b->times = malloc((size_t)o->reps * sizeof *b->times);
    if (!b->pool || !b->x || !b->y || !b->scratch || !b->times) return 1;
    unsigned seed = 7u;
    for (size_t i = 0; i < most * BLOCK_WIDEST; i++) b->x[i] = block_lcg(&seed);
    return 0;
}

static inline void block_bench_free(struct block_bench *b) {
    free(b->x);
    free(b->y);
    free(b->scratch);
    free(b->times);
    if (b->pool) kiln__pool_free(b->pool);
}

/* The table's header; ops names the arithmetic rate (GFLOP/s, GOPS). */
static inline void block_bench_header(const char *ops) {
    printf("| type | n_tok | ms/layer | weight GB/s | %s | best ms/layer | best GB/s | best %s | cores used |\n"
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
           ops, ops);
}

static inline double block_clock(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int block_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Times type t, whose weights are w[layer * BLOCK_MATS + matrix] (layer_bytes
 * per copy of the block), for each token count, and prints a row each: one
 * token runs all the copies per repetition, a batch one copy. 0, or 1 when
 * a product fails. */
static inline int block_bench_type(struct block_bench *b, kiln_dtype t, void *const *w, size_t layer_bytes,
                                   block_matmul_fn fn, void *ctx) {
    const struct block_opts *o = &b->o;
    double macs = 0.0;
    for (size_t m = 0; m < BLOCK_MATS; m++) macs += (double)block_shapes[m].n_out * (double)block_shapes[m].n_in;
    for (int k = 0; k < o->n_toks; k++) {
        size_t n_tok = o->toks[k];
        int per_rep = n_tok == 1 ? o->layers : 1;
        double wall0 = 0.0, cpu0 = 0.0;
        for (int r = -1; r < o->reps; r++) {
            if (r == 0) {
                wall0 = block_clock(CLOCK_MONOTONIC);
                cpu0 = block_clock(CLOCK_PROCESS_CPUTIME_ID);
            }
            double t0 = block_clock(CLOCK_MONOTONIC);
            for (int l = 0; l < per_rep; l++) {
                int layer = (r + 1 + l) % o->layers;
                for (size_t m = 0; m < BLOCK_MATS; m++)
                    if (fn(ctx, b, w[(size_t)layer * BLOCK_MATS + m], block_shapes[m], n_tok) != KILN_OK) return 1;
            }
            if (r >= 0) b->times[r] = (block_clock(CLOCK_MONOTONIC) - t0) / per_rep;
        }
        double used = (block_clock(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / (block_clock(CLOCK_MONOTONIC) - wall0);
        qsort(b->times, (size_t)o->reps, sizeof *b->times, block_cmp_double);
        double med = b->times[o->reps / 2], best = b->times[0], gops = 2.0 * macs * (double)n_tok * 1e-9;
        printf("| %s | %zu | %.3f | %.1f | %.0f | %.3f | %.1f | %.0f | %.2f |\n", kiln_dtype_name(t), n_tok, 1e3 * med,
               (double)layer_bytes / med * 1e-9, gops / med, 1e3 * best, (double)layer_bytes / best * 1e-9,
               gops / best, used);
        fflush(stdout);
    }
    return 0;
}

#endif /* KILN_BENCH_BLOCK_BENCH_H */
