/* bench/fmatmul_bench.c - the float-weight matmul (F16, BF16, F32) on
 * TinyLlama-1.1B's layer shapes, without the rest of the model:
 *
 *   fmatmul_bench [TYPE ...] [-t THREADS] [-n N_TOK] [-l LAYERS] [-r REPS] [--float | --f16-as-bf16]
 *
 * For each weight type (default F16 BF16) it multiplies N_TOK activation
 * rows (default: 1, then 512) through the seven matrices of a block (q, o
 * 2048 x 2048; k, v 256 x 2048; gate, up 5632 x 2048; down 2048 x 5632)
 * over LAYERS distinct copies (default 8, about 700 MB of F16, so that one
 * token streams the weights from memory, not from cache) with
 * kiln__matmul_fast, the model's default path (--float:
 * kiln__matmul_fast_float, the exact-matmul mode; --f16-as-bf16:
 * kiln__matmul_fast_f16_as_bf16). It prints the time per layer, the weight
 * bytes read per second and GFLOP/s (2 per multiply-add). Timings are
 * wall-clock medians of REPS runs; the fastest run is shown too (on a
 * shared machine the least disturbed one, the better figure for comparing
 * two builds), with the share of the cores the process got.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/threadpool.h"
#include "kernels/matmul.h"
#include "tensor/fp16.h"

/* One matrix of the block: [n_out][n_in]. */
struct shape {
    size_t n_out, n_in; /* rows, values per row */
};
static const struct shape block[] = {{2048, 2048}, {256, 2048}, {256, 2048}, {2048, 2048},
                                     {5632, 2048}, {5632, 2048}, {2048, 5632}};
#define N_MATS (sizeof block / sizeof block[0])

/* Which kiln__matmul_fast* entry point is timed. */
enum path { PATH_FAST, PATH_FLOAT, PATH_F16_AS_BF16 };

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double now(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU time of the whole process (all threads). */
static double cpu_now(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

static float lcg_unit(unsigned *state) {
    *state = *state * 1664525u + 1013904223u;
    return (float)(*state >> 8) / (float)(1u << 23) - 1.0f;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Element size of a float weight type, 0 for the others. */
static size_t elem_bytes(kiln_dtype t) {
    return t == KILN_DTYPE_F32 ? 4 : t == KILN_DTYPE_F16 || t == KILN_DTYPE_BF16 ? 2 : 0;
}

/* Weights of type t for `layers` copies of the block, every value random
 * (std about 0.012), in huge-page memory like the model's; NULL when
 * memory runs out. */
static void **make_weights(kiln_dtype t, int layers, size_t *bytes_per_layer) {
    void **w = calloc((size_t)layers * N_MATS, sizeof *w);
    if (!w) return NULL;
    *bytes_per_layer = 0;
    unsigned seed = 1u;
    size_t es = elem_bytes(t);
    for (size_t m = 0; m < N_MATS; m++) {
        size_t n = block[m].n_out * block[m].n_in;
        *bytes_per_layer += n * es;
        for (int l = 0; l < layers; l++) {
            char *p = kiln__huge_alloc(n * es); /* as the model's weights (kiln__weights_to_memory) */
            if (!p) return NULL;
            for (size_t i = 0; i < n; i++) {
                float v = 0.02f * lcg_unit(&seed);
                if (t == KILN_DTYPE_F32) ((float *)(void *)p)[i] = v;
                else if (t == KILN_DTYPE_F16) ((uint16_t *)(void *)p)[i] = kiln__f32_to_f16(v);
                else ((uint16_t *)(void *)p)[i] = kiln__f32_to_bf16(v);
            }
            w[(size_t)l * N_MATS + m] = p;
        }
    }
    return w;
}

static kiln_status run(enum path path, kiln_pool *pool, kiln_dtype t, const void *w, size_t n_out, size_t n_in,
                       const float *x, size_t n_tok, float *y, float *scratch) {
    switch (path) {
    case PATH_FAST: return kiln__matmul_fast(pool, t, w, n_out, n_in, x, n_tok, y, scratch);
    case PATH_FLOAT: return kiln__matmul_fast_float(pool, t, w, n_out, n_in, x, n_tok, y, scratch);
    case PATH_F16_AS_BF16: return kiln__matmul_fast_f16_as_bf16(pool, t, w, n_out, n_in, x, n_tok, y, scratch);
    }
    return KILN_ERR_INVALID_ARG;
}

int main(int argc, char **argv) {
    kiln_dtype types[4];
    int n_types = 0, threads = 2, layers = 8, reps = 5;
    enum path path = PATH_FAST;
    size_t toks[2] = {1, 512};
    int n_toks = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-l") && i + 1 < argc) layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
            toks[0] = (size_t)atol(argv[++i]);
            n_toks = 1;
        } else if (!strcmp(argv[i], "--float")) path = PATH_FLOAT;
        else if (!strcmp(argv[i], "--f16-as-bf16")) path = PATH_F16_AS_BF16;
        else if (n_types < 4 && elem_bytes(kiln_dtype_from_name(argv[i])) != 0)
            types[n_types++] = kiln_dtype_from_name(argv[i]);
        else {
            fprintf(stderr, "usage: fmatmul_bench [F16|BF16|F32 ...] [-t THREADS] [-n N_TOK] [-l LAYERS] [-r REPS] "
                            "[--float | --f16-as-bf16]\n");
            return 2;
        }
    }
    if (n_types == 0) {
        types[n_types++] = KILN_DTYPE_F16;
        types[n_types++] = KILN_DTYPE_BF16;
    }
    if (threads < 1 || layers < 1 || reps < 1 || toks[0] < 1) return 2;
    kiln_pool *pool = kiln__pool_create(threads);
    size_t max_tok = toks[n_toks - 1] > toks[0] ? toks[n_toks - 1] : toks[0];
    float *x = malloc(max_tok * 5632 * sizeof *x), *y = malloc(max_tok * 5632 * sizeof *y);
    float *scratch = malloc((size_t)threads * 5632 * sizeof *scratch);
    double *times = malloc((size_t)reps * sizeof *times);
    if (!pool || !x || !y || !scratch || !times) return 1;
    unsigned seed = 7u;
    for (size_t i = 0; i < max_tok * 5632; i++) x[i] = lcg_unit(&seed);
    printf("threads %d, %s\n", threads,
           path == PATH_FAST ? "kiln__matmul_fast" : path == PATH_FLOAT ? "kiln__matmul_fast_float"
                                                                         : "kiln__matmul_fast_f16_as_bf16");
    printf("| type | n_tok | ms/layer | weight GB/s | GFLOP/s | best ms/layer | best GB/s | best GFLOP/s "
           "| cores used |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (int ti = 0; ti < n_types; ti++) {
        size_t layer_bytes;
        void **w = make_weights(types[ti], layers, &layer_bytes);
        if (!w) {
            fprintf(stderr, "cannot make %s weights\n", kiln_dtype_name(types[ti]));
            return 1;
        }
        double macs = 0.0;
        for (size_t m = 0; m < N_MATS; m++) macs += (double)block[m].n_out * (double)block[m].n_in;
        for (int k = 0; k < n_toks; k++) {
            size_t n_tok = toks[k];
            /* layers per repetition: all for one token, one for a batch */
            int per_rep = n_tok == 1 ? layers : 1;
            double wall0 = 0.0, cpu0 = 0.0;
            for (int r = -1; r < reps; r++) {
                if (r == 0) {
                    wall0 = now();
                    cpu0 = cpu_now();
                }
                double t0 = now();
                for (int l = 0; l < per_rep; l++) {
                    int layer = (r + 1 + l) % layers;
                    for (size_t m = 0; m < N_MATS; m++)
                        if (run(path, pool, types[ti], w[(size_t)layer * N_MATS + m], block[m].n_out, block[m].n_in,
                                x, n_tok, y, scratch) != KILN_OK)
                            return 1;
                }
                if (r >= 0) times[r] = (now() - t0) / per_rep;
            }
            double used = (cpu_now() - cpu0) / (now() - wall0);
            qsort(times, (size_t)reps, sizeof *times, cmp_double);
            double t = times[reps / 2], best = times[0], flop = 2.0 * macs * (double)n_tok * 1e-9;
            printf("| %s | %zu | %.3f | %.1f | %.0f | %.3f | %.1f | %.0f | %.2f |\n", kiln_dtype_name(types[ti]), n_tok,
                   1e3 * t, (double)layer_bytes / t * 1e-9, flop / t, 1e3 * best, (double)layer_bytes / best * 1e-9,
                   flop / best, used);
            fflush(stdout);
        }
        for (size_t i = 0; i < (size_t)layers * N_MATS; i++)
            kiln__huge_free(w[i], block[i % N_MATS].n_out * block[i % N_MATS].n_in * elem_bytes(types[ti]));
        free(w);
    }
    free(x);
    free(y);
    free(scratch);
    free(times);
    kiln__pool_free(pool);
    return 0;
}
