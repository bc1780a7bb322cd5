/* src/kernels/qmatmul_x16.c - the x16 layout's table of types and the
 * in-place packing of a matrix into it (qmatmul_x16.h): which types have
 * an x16 form, whether a matrix can take it, and the rewrite of its groups
 * of 16 rows shared out over the pool's threads. */
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/qmatmul.h"
#include "kernels/qmatmul_x16.h"
#include "tensor/tensor.h"

/* Every type with an x16 form (a new form adds its line). */
static const struct kiln_x16_type *const x16_types[] = {
    &kiln__x16_q8_0,
    &kiln__x16_q4_0,
    &kiln__x16_q5_0,
    &kiln__x16_q4_k,
    &kiln__x16_q6_k,
};

const struct kiln_x16_type *kiln__x16_find(kiln_dtype wtype) {
    for (size_t i = 0; i < sizeof x16_types / sizeof x16_types[0]; i++)
        if (x16_types[i]->wtype == wtype) return x16_types[i];
    return NULL;
}

int kiln__qmatmul_x16_ok(kiln_dtype wtype, size_t n_out, size_t n_in) {
    return kiln__x16_find(wtype) && n_out > 0 && n_out % KILN_X16_ROWS == 0 && kiln__qmatmul_supports(wtype, n_in) &&
           kiln__qmatmul_best_level() == KILN_QLEVEL_AVX512;
}

/* What the threads of one packing share. */
struct pack_job {
    const struct kiln_x16_type *type; /* the form written */
    char *w;                          /* the matrix, rewritten in place */
    size_t n_in;                      /* values per row */
    size_t group_bytes;               /* bytes of 16 rows */
    size_t n_groups;                  /* groups of the matrix */
    char *bufs;                       /* [nth][group_bytes] one group's file rows, per thread */
};

/* Thread ith rewrites its share of the groups: each copied aside, then
 * packed from the copy into its own bytes. */
static void pack_part(void *ctx, int ith, int nth) {
    const struct pack_job *job = ctx;
    size_t per = (job->n_groups + (size_t)nth - 1) / (size_t)nth;
    size_t g0 = per * (size_t)ith, g1 = g0 + per < job->n_groups ? g0 + per : job->n_groups;
    char *buf = job->bufs + (size_t)ith * job->group_bytes;
    for (size_t g = g0; g < g1; g++) {
        char *group = job->w + g * job->group_bytes;
        memcpy(buf, group, job->group_bytes);
        job->type->pack(buf, group, job->n_in);
    }
}

kiln_status kiln__qmatmul_x16_pack(kiln_pool *pool, kiln_dtype wtype, void *w, size_t n_out, size_t n_in) {
    if (!kiln__qmatmul_x16_ok(wtype, n_out, n_in))
        return kiln__fail(KILN_ERR_UNSUPPORTED, "qmatmul: no x16 layout for %zu x %zu %s weights on this CPU", n_out,
                          n_in, kiln_dtype_name(wtype));
    size_t group_bytes = KILN_X16_ROWS * kiln__tensor_bytes(wtype, n_in), bytes;
    /* every thread's buffer before any group is touched: on failure the
     * matrix is unchanged */
    if (kiln__mul_overflows((size_t)kiln__pool_size(pool), group_bytes, &bytes))
        return kiln__fail(KILN_ERR_TOO_LARGE, "qmatmul: x16 packing buffers of %zu bytes are too many", group_bytes);
    char *bufs = kiln__aligned_alloc(bytes, KILN_ALIGN);
    if (!bufs) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "qmatmul: out of memory for the x16 packing buffers");
    struct pack_job job = {kiln__x16_find(wtype), w, n_in, group_bytes, n_out / KILN_X16_ROWS, bufs};
    kiln__pool_run(pool, pack_part, &job);
    kiln__aligned_free(bufs);
    return KILN_OK;
}
