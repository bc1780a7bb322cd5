/* src/kernels/matmul.c - reference matmul over decoded weight rows. */
#include "kernels/matmul.h"

#include "core/error.h"
#include "kernels/ops.h"
#include "tensor/dequant.h"
#include "tensor/fp16.h"
#include "tensor/tensor.h"

/* Everything one thread needs to compute its share of the output rows. */
struct matmul_job {
    kiln_dtype wtype;  /* weight element type */
    const char *w;     /* weight bytes, row-major */
    size_t row_bytes;  /* bytes of one weight row */
    size_t n_out;      /* weight rows */
    size_t n_in;       /* values per row */
    const float *x;    /* [n_tok][n_in] activations */
    size_t n_tok;      /* activation rows */
    float *y;          /* [n_tok][n_out] results */
    float *scratch;    /* n_threads rows of n_in floats */
};

static void matmul_part(void *ctx, int ith, int nth) {
    const struct matmul_job *job = ctx;
    size_t per = (job->n_out + (size_t)nth - 1) / (size_t)nth;
    size_t begin = per * (size_t)ith;
    size_t end = begin + per < job->n_out ? begin + per : job->n_out;
    float *row = job->scratch + (size_t)ith * job->n_in;
    for (size_t j = begin; j < end; j++) {
        const void *src = job->w + j * job->row_bytes;
        const float *wrow;
        if (job->wtype == KILN_DTYPE_F32) {
            wrow = src;
        } else {
            /* Cannot fail: the type and row length were checked by the caller. */
            kiln__dequantize(job->wtype, src, row, job->n_in);
            wrow = row;
        }
        for (size_t t = 0; t < job->n_tok; t++)
            job->y[t * job->n_out + j] = kiln__dot_f32(wrow, job->x + t * job->n_in, job->n_in);
    }
}

int kiln__matmul_supports(kiln_dtype wtype) {
    switch (wtype) {
    case KILN_DTYPE_F32: case KILN_DTYPE_F16: case KILN_DTYPE_BF16:
    case KILN_DTYPE_Q4_0: case KILN_DTYPE_Q4_1: case KILN_DTYPE_Q5_0: case KILN_DTYPE_Q5_1:
    case KILN_DTYPE_Q8_0: case KILN_DTYPE_Q8_1: case KILN_DTYPE_Q2_K: case KILN_DTYPE_Q3_K:
    case KILN_DTYPE_Q4_K: case KILN_DTYPE_Q5_K: case KILN_DTYPE_Q6_K: case KILN_DTYPE_Q8_K:
        return 1;
    case KILN_DTYPE_I8: case KILN_DTYPE_I16: case KILN_DTYPE_I32: case KILN_DTYPE_I64:
    case KILN_DTYPE_F64: case KILN_DTYPE_U8: case KILN_DTYPE_BOOL: case KILN_DTYPE_F8_E4M3:
    case KILN_DTYPE_F8_E5M2: case KILN_DTYPE_UNKNOWN:
        return 0;
    }
    return 0;
}

kiln_status kiln__matmul(kiln_pool *pool, kiln_dtype wtype, const void *w, size_t n_out,
                         size_t n_in, const float *x, size_t n_tok, float *y, float *scratch) {
    if (!kiln__matmul_supports(wtype))
        return kiln__fail(KILN_ERR_UNSUPPORTED, "matmul: weights of type %s", kiln_dtype_name(wtype));
    size_t row_bytes = kiln__tensor_bytes(wtype, n_in);
    if (row_bytes == 0)
        return kiln__fail(KILN_ERR_INVALID_ARG, "matmul: row of %zu values is not whole %s blocks",
                          n_in, kiln_dtype_name(wtype));
    struct matmul_job job = {wtype, w, row_bytes, n_out, n_in, x, n_tok, y, scratch};
    kiln__pool_run(pool, matmul_part, &job);
    return KILN_OK;
}
