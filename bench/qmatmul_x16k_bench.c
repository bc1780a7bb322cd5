/* bench/qmatmul_x16k_bench.c - the one-token kernels of the K-quant x16
 * forms (kiln__x16_q4_k, kiln__x16_q6_k) against the avx512 row kernel on
 * the file layout, on one thread, without the matmul around them:
 *
 *   qmatmul_x16k_bench [TYPE ...] [-m MB] [-r REPS]
 *
 * For each type (default Q4_K Q6_K) it makes MB (default 128, larger than
 * the L3) of random blocks with rows of 2048 values, a copy packed into
 * the x16 layout, and four quantized activation rows, then times for 1..4
 * tokens one pass of kiln__qrow_avx512 over every file row and one pass of
 * the x16 rows() over every group, and prints the weight bytes read per
 * second (median and best of REPS passes, default 9) next to a plain
 * 512-bit read of the same bytes (the memory's rate on this core). With
 * -m 1 the weights stay in L2: the kernels' compute rate.
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/cpu.h"
#include "kernels/qmatmul.h"
#include "kernels/qmatmul_impl.h"
#include "kernels/qmatmul_x16.h"
#include "tensor/fp16.h"
#include "tensor/quant_blocks.h"
#include "tensor/tensor.h"

/* Values per weight row (TinyLlama's width). */
#define N_IN 2048
/* Activation rows (the most tokens a rows() call takes). */
#define N_TOK KILN_QROW_MAX_TOK
/* Most repetitions. */
#define MAX_REPS 101

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static unsigned lcg(unsigned *state) {
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The plain reads' results, kept so that no read is left out. */
static volatile int keep;

/* XOR of every 64-byte line of p (n a multiple of 256), so that the
 * loads cannot be left out. */
__attribute__((target("avx512f"))) static int plain_read(const char *p, size_t n) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 256) {
        a0 = _mm512_xor_si512(a0, _mm512_load_si512((const void *)(p + i)));
        a1 = _mm512_xor_si512(a1, _mm512_load_si512((const void *)(p + i + 64)));
        a2 = _mm512_xor_si512(a2, _mm512_load_si512((const void *)(p + i + 128)));
        a3 = _mm512_xor_si512(a3, _mm512_load_si512((const void *)(p + i + 192)));
    }
    return _mm512_reduce_add_epi32(_mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3)));
}

/* Median and best rate of `reps` timings of `bytes`. */
static void rates(double *t, int reps, size_t bytes, double *median, double *best) {
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    *median = (double)bytes / t[reps / 2] / 1e9;
    *best = (double)bytes / t[0] / 1e9;
}

/* One type: 0 on success. */
static int run(kiln_dtype t, size_t mb, int reps) {
    const struct kiln_x16_type *xt = t == KILN_DTYPE_Q4_K ? &kiln__x16_q4_k : &kiln__x16_q6_k;
    const size_t row_bytes = kiln__tensor_bytes(t, N_IN), group_bytes = KILN_X16_ROWS * row_bytes;
    const size_t n_groups = (mb << 20) / group_bytes, bytes = n_groups * group_bytes, nb = N_IN / KILN_QA_BLOCK;
    char *file = kiln__aligned_alloc(bytes, 64), *x16 = kiln__aligned_alloc(bytes, 64);
    kiln_qact a = {.qs = malloc(N_TOK * N_IN), .d = malloc(N_TOK * nb * sizeof(float)),
                   .ds32 = malloc(N_TOK * nb * sizeof(float)), .ds16 = malloc(N_TOK * 2 * nb * sizeof(float)),
                   .qs_nib = malloc(N_TOK * N_IN), .n_in = N_IN, .k_rule = 1};
    /* results: y[j][k] of file row j, out[g][k][r] of group g */
    float *xf = malloc(N_IN * sizeof *xf), *y = malloc(n_groups * KILN_X16_ROWS * N_TOK * sizeof *y);
    float(*out)[KILN_X16_ROWS] = malloc(n_groups * N_TOK * sizeof *out);
    if (n_groups == 0 || !file || !x16 || !a.qs || !a.d || !a.ds32 || !a.ds16 || !a.qs_nib || !xf || !y || !out)
        return 1;
    /* random quants and scales; super-block scales of a plausible size */
    unsigned seed = 1u;
    for (size_t i = 0; i < bytes; i++) file[i] = (char)lcg(&seed);
    for (size_t k = 0; k < bytes / kiln__tensor_bytes(t, KILN_QK_K); k++) {
        if (t == KILN_DTYPE_Q4_K) {
            kiln_block_q4_K *b = (kiln_block_q4_K *)(void *)file + k;
            b->d = kiln__f32_to_f16(0.001f);
            b->dmin = kiln__f32_to_f16(0.002f);
        } else {
            ((kiln_block_q6_K *)(void *)file + k)->d = kiln__f32_to_f16(0.001f);
        }
    }
    for (size_t g = 0; g < n_groups; g++) xt->pack(file + g * group_bytes, x16 + g * group_bytes, N_IN);
    for (size_t tk = 0; tk < N_TOK; tk++) {
        for (size_t i = 0; i < N_IN; i++) xf[i] = (float)(lcg(&seed) % 2001) / 1000.0f - 1.0f;
        kiln__qact_quantize_row(&a, tk, xf);
        if (kiln__qnibble_unit(t)) kiln__qact_nibble_order(&a, tk, kiln__qnibble_unit(t));
    }
    double tr[MAX_REPS], tf[MAX_REPS], tx[MAX_REPS], med, best;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        keep ^= plain_read(x16, bytes / 256 * 256);
        tr[r] = now() - t0;
    }
    rates(tr, reps, bytes / 256 * 256, &med, &best);
    printf("%s, %.1f MiB of weights, one thread; plain read %.1f GB/s (best %.1f)\n", kiln_dtype_name(t),
           (double)bytes / (1 << 20), med, best);
    printf("| n_tok | file layout GB/s | best | x16 GB/s | best |\n| ---: | ---: | ---: | ---: | ---: |\n");
    for (int nt = 1; nt <= N_TOK; nt++) {
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            for (size_t j = 0; j < n_groups * KILN_X16_ROWS; j++)
                kiln__qrow_avx512(t, file + j * row_bytes, &a, 0, nt, y + j * N_TOK);
            double t1 = now();
            for (size_t g = 0; g < n_groups; g++)
                xt->rows(x16 + g * group_bytes, &a, 0, nt, out + g * N_TOK);
            tf[r] = t1 - t0;
            tx[r] = now() - t1;
        }
        double fmed, fbest;
        rates(tf, reps, bytes, &fmed, &fbest);
        rates(tx, reps, bytes, &med, &best);
        printf("| %d | %.1f | %.1f | %.1f | %.1f |\n", nt, fmed, fbest, med, best);
    }
    kiln__aligned_free(file);
    kiln__aligned_free(x16);
    free(a.qs);
    free(a.d);
    free(a.ds32);
    free(a.ds16);
    free(a.qs_nib);
    free(xf);
    free(y);
    free(out);
    return 0;
}

int main(int argc, char **argv) {
    kiln_dtype types[2];
    int n_types = 0, reps = 9;
    size_t mb = 128;
    for (int i = 1; i < argc; i++) {
        kiln_dtype t = kiln_dtype_from_name(argv[i]);
        if (!strcmp(argv[i], "-m") && i + 1 < argc) mb = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (n_types < 2 && (t == KILN_DTYPE_Q4_K || t == KILN_DTYPE_Q6_K)) types[n_types++] = t;
        else {
            fprintf(stderr, "usage: qmatmul_x16k_bench [Q4_K] [Q6_K] [-m MB] [-r REPS]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > MAX_REPS || mb < 1) return 2;
    if (!kiln__qmatmul_level_available(KILN_QLEVEL_AVX512)) {
        fprintf(stderr, "qmatmul_x16k_bench: this CPU lacks the avx512 level\n");
        return 1;
    }
    if (n_types == 0) {
        types[n_types++] = KILN_DTYPE_Q4_K;
        types[n_types++] = KILN_DTYPE_Q6_K;
    }
    for (int i = 0; i < n_types; i++)
        if (run(types[i], mb, reps) != 0) {
            fprintf(stderr, "qmatmul_x16k_bench: out of memory\n");
            return 1;
        }
    return 0;
}
