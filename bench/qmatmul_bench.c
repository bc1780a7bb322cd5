/* bench/qmatmul_bench.c - the quantized matmul on TinyLlama-1.1B's layer
 * shapes, without the rest of the model (attention, norms):
 *
 *   qmatmul_bench [TYPE ...] [-t THREADS] [-n N_TOK] [-l LAYERS] [-r REPS] [--float | --x16]
 *
 * For each weight type (default Q4_0 Q8_0 Q4_K Q6_K) it multiplies N_TOK
 * activation rows (default: 1, then 512) through the seven matrices of a
 * block (q, k, v, o 2048 wide; gate, up 2048 -> 5632; down 5632 -> 2048),
 * over LAYERS distinct copies (default 8, so that one token streams the
 * weights from memory, not from cache), and prints the time per layer, the
 * weight bytes read per second and the integer ops per second (2 per
 * multiply-add). --float times kiln__matmul_fast_float (the f32 path) on
 * the same weights instead; --x16 packs the weights into the x16 layout
 * (kiln__qmatmul_x16_pack) and times kiln__qmatmul_multi on them (types
 * without an x16 form are skipped). Timings are wall-clock medians of REPS runs;
 * the fastest run is shown too (on a shared machine the least disturbed
 * one, the better figure for comparing two builds).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/threadpool.h"
#include "kernels/matmul.h"
#include "kernels/qmatmul.h"
#include "tensor/quantize.h"
#include "tensor/tensor.h"

/* One matrix of the block: [n_out][n_in]. */
struct shape {
    size_t n_out, n_in; /* rows, values per row */
};
static const struct shape block[] = {{2048, 2048}, {256, 2048}, {256, 2048}, {2048, 2048},
                                     {5632, 2048}, {5632, 2048}, {2048, 5632}};
#define N_MATS (sizeof block / sizeof block[0])

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double now(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU time of the whole process (all threads): on a shared machine the
 * ratio to wall time shows how much of the cores the run got. */
static double cpu_now(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

static float lcg_unit(unsigned *state) {
    *state = *state * 1664525u + 1013904223u;
    return (float)(*state >> 8) / (float)(1u << 23) - 1.0f;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Weights of type t for `layers` copies of the block: 16 distinct quantized
 * rows repeated (quantizing every row would take longer than the run). */
static void **make_weights(kiln_pool *pool, kiln_dtype t, int layers, int x16, size_t *bytes_per_layer) {
    void **w = calloc((size_t)layers * N_MATS, sizeof *w);
    if (!w) return NULL;
    *bytes_per_layer = 0;
    unsigned seed = 1u;
    for (size_t m = 0; m < N_MATS; m++) {
        size_t row = kiln__tensor_bytes(t, block[m].n_in), n_in = block[m].n_in;
        float *f = malloc(16 * n_in * sizeof *f);
        char *rows = malloc(16 * row);
        if (!f || !rows) return NULL;
        for (size_t i = 0; i < 16 * n_in; i++) f[i] = 0.02f * lcg_unit(&seed);
        if (kiln__quantize(t, f, rows, 16 * n_in) != KILN_OK) return NULL;
        *bytes_per_layer += row * block[m].n_out;
        for (int l = 0; l < layers; l++) {
            char *p = kiln__aligned_alloc(row * block[m].n_out, 64);
            if (!p) return NULL;
            for (size_t j = 0; j < block[m].n_out; j++) memcpy(p + j * row, rows + (j % 16) * row, row);
            if (x16 && kiln__qmatmul_x16_pack(pool, t, p, block[m].n_out, n_in) != KILN_OK) return NULL;
            w[(size_t)l * N_MATS + m] = p;
        }
        free(f);
        free(rows);
    }
    return w;
}

int main(int argc, char **argv) {
    kiln_dtype types[8];
    int n_types = 0, threads = 2, layers = 8, reps = 5, use_float = 0, x16 = 0;
    size_t toks[2] = {1, 512};
    int n_toks = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-l") && i + 1 < argc) layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
            toks[0] = (size_t)atol(argv[++i]);
            n_toks = 1;
        } else if (!strcmp(argv[i], "--float")) use_float = 1;
        else if (!strcmp(argv[i], "--x16")) x16 = 1;
        else if (n_types < 8 && kiln_dtype_from_name(argv[i]) != KILN_DTYPE_UNKNOWN)
            types[n_types++] = kiln_dtype_from_name(argv[i]);
        else {
            fprintf(stderr, "usage: qmatmul_bench [TYPE ...] [-t THREADS] [-n N_TOK] [-l LAYERS] [-r REPS] [--float | --x16]\n");
            return 2;
        }
    }
    if (n_types == 0) {
        types[n_types++] = KILN_DTYPE_Q4_0;
        types[n_types++] = KILN_DTYPE_Q8_0;
        types[n_types++] = KILN_DTYPE_Q4_K;
        types[n_types++] = KILN_DTYPE_Q6_K;
    }
    if (threads < 1 || layers < 1 || reps < 1 || (use_float && x16)) return 2;
    kiln_pool *pool = kiln__pool_create(threads);
    size_t max_tok = toks[n_toks - 1] > toks[0] ? toks[n_toks - 1] : toks[0];
    float *x = malloc(max_tok * 5632 * sizeof *x), *y = malloc(max_tok * 5632 * sizeof *y);
    float *scratch = malloc((size_t)threads * 5632 * sizeof *scratch);
    double *times = malloc((size_t)reps * sizeof *times);
    if (!pool || !x || !y || !scratch || !times) return 1;
    unsigned seed = 7u;
    for (size_t i = 0; i < max_tok * 5632; i++) x[i] = lcg_unit(&seed);
    printf("threads %d, %s path, level %s\n", threads, use_float ? "f32" : x16 ? "quantized x16" : "quantized",
           kiln__qlevel_name(kiln__qmatmul_best_level()));
    printf("| type | n_tok | ms/layer | weight GB/s | GOPS | best ms/layer | best GB/s | cores used |\n"
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (int ti = 0; ti < n_types; ti++) {
        size_t layer_bytes;
        if (x16 && !kiln__qmatmul_x16_ok(types[ti], 16, 2048)) {
            fprintf(stderr, "%s: no x16 layout on this CPU, skipped\n", kiln_dtype_name(types[ti]));
            continue;
        }
        void **w = make_weights(pool, types[ti], layers, x16, &layer_bytes);
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
                    for (size_t m = 0; m < N_MATS; m++) {
                        const void *wm = w[(size_t)layer * N_MATS + m];
                        kiln_qmat qm = {types[ti], wm, block[m].n_out, y, KILN_QLAYOUT_X16};
                        kiln_status st = x16 ? kiln__qmatmul_multi(pool, &qm, 1, 0, block[m].n_in, x, n_tok)
                                       : use_float
                            ? kiln__matmul_fast_float(pool, types[ti], wm, block[m].n_out, block[m].n_in, x, n_tok, y,
                                                      scratch)
                            : kiln__qmatmul(pool, types[ti], wm, block[m].n_out, block[m].n_in, x, n_tok, y);
                        if (st != KILN_OK) return 1;
                    }
                }
                if (r >= 0) times[r] = (now() - t0) / per_rep;
            }
            double used = (cpu_now() - cpu0) / (now() - wall0);
            qsort(times, (size_t)reps, sizeof *times, cmp_double);
            double t = times[reps / 2], best = times[0];
            printf("| %s | %zu | %.3f | %.1f | %.0f | %.3f | %.1f | %.2f |\n", kiln_dtype_name(types[ti]), n_tok,
                   1e3 * t, (double)layer_bytes / t * 1e-9, 2.0 * macs * (double)n_tok / t * 1e-9, 1e3 * best,
                   (double)layer_bytes / best * 1e-9, used);
            fflush(stdout);
        }
        for (size_t i = 0; i < (size_t)layers * N_MATS; i++) kiln__aligned_free(w[i]);
        free(w);
    }
    free(x);
    free(y);
    free(scratch);
    free(times);
    kiln__pool_free(pool);
    return 0;
}
