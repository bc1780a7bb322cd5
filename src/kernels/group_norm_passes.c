/* src/kernels/group_norm_passes.c - the three-pass driver of the SIMD
 * GroupNorm kernels (group_norm_impl.h): statistics in double from the
 * threads' per-channel partial sums, two-pass as the scalar reference. */
#include <math.h>
#include <stdlib.h>

#include "kernels/group_norm_impl.h"

/* The sum over threads and over the channels of group g of part. */
static double group_sum(const double *part, int nth, size_t c, int g, int per) {
    double s = 0.0;
    for (int t = 0; t < nth; t++)
        for (int i = 0; i < per; i++) s += part[(size_t)t * c + (size_t)(g * per + i)];
    return s;
}

int kiln__group_norm_passes(kiln_pool *pool, kiln_pool_fn pass, float *out, const float *x, size_t n_pix, int c,
                            int n_groups, const float *w, const float *b, float eps, int silu) {
    int nth = kiln__pool_size(pool);
    size_t cc = (size_t)c;
    double *part = malloc((size_t)nth * cc * sizeof *part);
    float *vec = malloc(3 * cc * sizeof *vec);
    if (!part || !vec) {
        free(part);
        free(vec);
        return 0;
    }
    float *mean = vec, *scale = vec + cc, *shift = vec + 2 * cc;
    int per = c / n_groups;
    double count = (double)n_pix * per;
    struct kiln_gn_job j = {out, x, n_pix, c, part, mean, scale, shift, 1, silu};
    /* Group sums from the threads' channel sums: the means. */
    kiln__pool_run(pool, pass, &j);
    for (int g = 0; g < n_groups; g++) {
        double s = group_sum(part, nth, cc, g, per);
        for (int i = 0; i < per; i++) mean[g * per + i] = (float)(s / count);
    }
    j.pass = 2;
    kiln__pool_run(pool, pass, &j);
    for (int g = 0; g < n_groups; g++) {
        float inv = (float)(1.0 / sqrt(group_sum(part, nth, cc, g, per) / count + (double)eps));
        for (int i = 0; i < per; i++) {
            int ch = g * per + i;
            scale[ch] = inv * w[ch];
            shift[ch] = b[ch] - mean[ch] * scale[ch];
        }
    }
    j.pass = 3;
    kiln__pool_run(pool, pass, &j);
    free(part);
    free(vec);
    return 1;
}
