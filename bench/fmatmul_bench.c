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
 * bytes read per second and GFLOP/s (2 per multiply-add); timing and
 * table as block_bench.h says.
 */
#include <stdint.h>

#include "block_bench.h"
#include "core/alloc.h"
#include "kernels/matmul.h"
#include "tensor/fp16.h"

/* Which kiln__matmul_fast* entry point is timed. */
enum path { PATH_FAST, PATH_FLOAT, PATH_F16_AS_BF16 };

/* Element size of a float weight type, 0 for the others. */
static size_t elem_bytes(kiln_dtype t) {
    return t == KILN_DTYPE_F32 ? 4 : t == KILN_DTYPE_F16 || t == KILN_DTYPE_BF16 ? 2 : 0;
}

/* Weights of type t for `layers` copies of the block, every value random
 * (std about 0.012), in huge-page memory like the model's; NULL when
 * memory runs out. */
static void **make_weights(kiln_dtype t, int layers, size_t *bytes_per_layer) {
    void **w = calloc((size_t)layers * BLOCK_MATS, sizeof *w);
    if (!w) return NULL;
    *bytes_per_layer = 0;
    unsigned seed = 1u;
    size_t es = elem_bytes(t);
    for (size_t m = 0; m < BLOCK_MATS; m++) {
        size_t n = block_shapes[m].n_out * block_shapes[m].n_in;
        *bytes_per_layer += n * es;
        for (int l = 0; l < layers; l++) {
            char *p = kiln__huge_alloc(n * es); /* as the model's weights (kiln__weights_to_memory) */
            if (!p) return NULL;
            for (size_t i = 0; i < n; i++) {
                float v = 0.02f * block_lcg(&seed);
                if (t == KILN_DTYPE_F32) ((float *)(void *)p)[i] = v;
                else if (t == KILN_DTYPE_F16) ((uint16_t *)(void *)p)[i] = kiln__f32_to_f16(v);
                else ((uint16_t *)(void *)p)[i] = kiln__f32_to_bf16(v);
            }
            w[(size_t)l * BLOCK_MATS + m] = p;
        }
    }
    return w;
}

/* What run() needs besides the product's operands. */
struct run_ctx {
    enum path path; /* entry point */
    kiln_dtype t;   /* weight type */
};

static kiln_status run(void *ctx, struct block_bench *b, const void *w, struct block_shape s, size_t n_tok) {
    const struct run_ctx *c = ctx;
    switch (c->path) {
    case PATH_FAST: return kiln__matmul_fast(b->pool, c->t, w, s.n_out, s.n_in, b->x, n_tok, b->y, b->scratch);
    case PATH_FLOAT:
        return kiln__matmul_fast_float(b->pool, c->t, w, s.n_out, s.n_in, b->x, n_tok, b->y, b->scratch);
    case PATH_F16_AS_BF16:
        return kiln__matmul_fast_f16_as_bf16(b->pool, c->t, w, s.n_out, s.n_in, b->x, n_tok, b->y, b->scratch);
    }
    return KILN_ERR_INVALID_ARG;
}

int main(int argc, char **argv) {
    kiln_dtype types[4];
    int n_types = 0;
    enum path path = PATH_FAST;
    struct block_bench b = {block_default_opts(), NULL, NULL, NULL, NULL, NULL};
    for (int i = 1; i < argc; i++) {
        if (block_common_arg(&b.o, argc, argv, &i)) continue;
        if (!strcmp(argv[i], "--float")) path = PATH_FLOAT;
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
    int rc = block_bench_init(&b);
    if (rc != 0) {
        block_bench_free(&b);
        return rc;
    }
    printf("threads %d, %s\n", b.o.threads,
           path == PATH_FAST ? "kiln__matmul_fast" : path == PATH_FLOAT ? "kiln__matmul_fast_float"
                                                                         : "kiln__matmul_fast_f16_as_bf16");
    block_bench_header("GFLOP/s");
    for (int ti = 0; rc == 0 && ti < n_types; ti++) {
        size_t layer_bytes;
        void **w = make_weights(types[ti], b.o.layers, &layer_bytes);
        if (!w) {
            fprintf(stderr, "cannot make %s weights\n", kiln_dtype_name(types[ti]));
            rc = 1;
            break;
        }
        struct run_ctx c = {path, types[ti]};
        rc = block_bench_type(&b, types[ti], w, layer_bytes, run, &c);
        for (size_t i = 0; i < (size_t)b.o.layers * BLOCK_MATS; i++)
            kiln__huge_free(w[i], block_shapes[i % BLOCK_MATS].n_out * block_shapes[i % BLOCK_MATS].n_in *
                                      elem_bytes(types[ti]));
        free(w);
    }
    block_bench_free(&b);
    return rc;
}
