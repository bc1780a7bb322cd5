/* src/kernels/group_norm_impl.h - what the SIMD GroupNorm kernels share
 * (internal): the job of their three passes and the driver that runs the
 * passes and turns the threads' per-channel sums into group statistics.
 * Each instruction set supplies only its pass function. */
#ifndef KILN_KERNELS_GROUP_NORM_IMPL_H
#define KILN_KERNELS_GROUP_NORM_IMPL_H

#include <stddef.h>

#include "core/threadpool.h"

/* What the three passes share. */
struct kiln_gn_job {
    float *out;          /* result [n_pix][c] */
    const float *x;      /* input [n_pix][c] */
    size_t n_pix;        /* pixels */
    int c;               /* channels (a multiple of the vector width) */
    double *part;        /* per thread: c doubles of partial sums */
    const float *mean;   /* [c] the mean of each channel's group (pass 2) */
    const float *scale;  /* [c] pass 3 factor */
    const float *shift;  /* [c] pass 3 offset */
    int pass;            /* 1, 2 or 3 */
    int silu;            /* pass 3: SiLU after */
};

/* Runs `pass` (a kiln_pool_fn on a struct kiln_gn_job) as passes 1, 2 and 3
 * over the pool: (1) per-thread channel sums -> group means, (2) per-thread
 * sums of squared deviations -> scale and shift per channel (w, b folded
 * in), (3) out = x * scale + shift (+ SiLU). The caller has checked c and
 * n_groups. 1 when done, 0 when out of memory (nothing written). */
int kiln__group_norm_passes(kiln_pool *pool, kiln_pool_fn pass, float *out, const float *x, size_t n_pix, int c,
                            int n_groups, const float *w, const float *b, float eps, int silu);

#endif /* KILN_KERNELS_GROUP_NORM_IMPL_H */
