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
 * without an x16 form are skipped). Timing and table as block_bench.h
 * says.
 */
#include "block_bench.h"
#include "core/alloc.h"
#include "kernels/matmul.h"
#include "kernels/qmatmul.h"
#include "tensor/quantize.h"
#include "tensor/tensor.h"

/* Weights of type t for `layers` copies of the block: 16 distinct quantized
 * rows repeated (quantizing every row would take longer than the run). */
static void **make_weights(kiln_pool *pool, kiln_dtype t, int layers, int x16, size_t *bytes_per_layer) {
    void **w = calloc((size_t)layers * BLOCK_MATS, sizeof *w);
    if (!w) return NULL;
    *bytes_per_layer = 0;
    unsigned seed = 1u;
    for (size_t m = 0; m < BLOCK_MATS; m++) {
        size_t n_in = block_shapes[m].n_in, n_out = block_shapes[m].n_out, row = kiln__tensor_bytes(t, n_in);
        float *f = malloc(16 * n_in * sizeof *f);
        char *rows = malloc(16 * row);
        if (!f || !rows) return NULL;
        for (size_t i = 0; i < 16 * n_in; i++) f[i] = 0.02f * block_lcg(&seed);
        if (kiln__quantize(t, f, rows, 16 * n_in) != KILN_OK) return NULL;
        *bytes_per_layer += row * n_out;
        for (int l = 0; l < layers; l++) {
            char *p = kiln__aligned_alloc(row * n_out, 64);
            if (!p) return NULL;
            for (size_t j = 0; j < n_out; j++) memcpy(p + j * row, rows + (j % 16) * row, row);
            if (x16 && kiln__qmatmul_x16_pack(pool, t, p, n_out, n_in) != KILN_OK) return NULL;
            w[(size_t)l * BLOCK_MATS + m] = p;
        }
        free(f);
        free(rows);
    }
    return w;
}

/* Which path run() times. */
struct run_ctx {
    kiln_dtype t;  /* weight type */
    int use_float; /* kiln__matmul_fast_float */
    int x16;       /* kiln__qmatmul_multi on x16 weights */
};

static kiln_status run(void *ctx, struct block_bench *b, const void *w, struct block_shape s, size_t n_tok) {
    const struct run_ctx *c = ctx;
    if (c->x16) {
        kiln_qmat qm = {c->t, w, s.n_out, b->y, KILN_QLAYOUT_X16};
        return kiln__qmatmul_multi(b->pool, &qm, 1, 0, s.n_in, b->x, n_tok);
    }
    if (c->use_float) return kiln__matmul_fast_float(b->pool, c->t, w, s.n_out, s.n_in, b->x, n_tok, b->y, b->scratch);
    return kiln__qmatmul(b->pool, c->t, w, s.n_out, s.n_in, b->x, n_tok, b->y);
}

int main(int argc, char **argv) {
    kiln_dtype types[8];
    int n_types = 0, use_float = 0, x16 = 0;
    struct block_bench b = {block_default_opts(), NULL, NULL, NULL, NULL, NULL};
    for (int i = 1; i < argc; i++) {
        if (block_common_arg(&b.o, argc, argv, &i)) continue;
        if (!strcmp(argv[i], "--float")) use_float = 1;
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
    if (use_float && x16) return 2;
    int rc = block_bench_init(&b);
    if (rc != 0) {
        block_bench_free(&b);
        return rc;
    }
    printf("threads %d, %s path, level %s\n", b.o.threads, use_float ? "f32" : x16 ? "quantized x16" : "quantized",
           kiln__qlevel_name(kiln__qmatmul_best_level()));
    block_bench_header("GOPS");
    for (int ti = 0; rc == 0 && ti < n_types; ti++) {
        size_t layer_bytes;
        if (x16 && !kiln__qmatmul_x16_ok(types[ti], 16, 2048)) {
            fprintf(stderr, "%s: no x16 layout on this CPU, skipped\n", kiln_dtype_name(types[ti]));
            continue;
        }
        void **w = make_weights(b.pool, types[ti], b.o.layers, x16, &layer_bytes);
        if (!w) {
            fprintf(stderr, "cannot make %s weights\n", kiln_dtype_name(types[ti]));
            rc = 1;
            break;
        }
        struct run_ctx c = {types[ti], use_float, x16};
        rc = block_bench_type(&b, types[ti], w, layer_bytes, run, &c);
        for (size_t i = 0; i < (size_t)b.o.layers * BLOCK_MATS; i++) kiln__aligned_free(w[i]);
        free(w);
    }
    block_bench_free(&b);
    return rc;
}
