/* src/kernels/conv2d.h - 2-D convolution over channel-last images
 * (internal).
 *
 * Images are [h][w][c] float32 (one pixel's channels contiguous), which
 * makes a 1x1 convolution a plain matrix product and lets the weights,
 * PyTorch's [c_out][c_in][k][k] in any dtype kiln__matmul_fast decodes, be
 * used as stored: patches of c_in*k*k values in (channel, row, column) order
 * are gathered for a band of output pixels at a time and multiplied.
 */
#ifndef KILN_KERNELS_CONV2D_H
#define KILN_KERNELS_CONV2D_H

#include <stddef.h>

#include "core/threadpool.h"
#include "kiln/dtype.h"
#include "kiln/status.h"

/* Geometry of one convolution. */
struct kiln_conv2d_shape {
    int c_in, c_out;  /* channels in and out */
    int k;            /* square kernel size */
    int stride;       /* step between output pixels */
    int pad_top, pad_left, pad_bottom, pad_right; /* zero padding on each side */
};

/* Output size along one axis. */
static inline int kiln__conv2d_out(int in, int k, int stride, int pad_a, int pad_b) {
    return (in + pad_a + pad_b - k) / stride + 1;
}

/* y[oy][ox][co] = b[co] + sum w[co][ci][ky][kx] * x[oy*s+ky-pt][ox*s+kx-pl][ci]
 * (zero outside x). x is [h][w][c_in]; y is [oh][ow][c_out] (no overlap with
 * x); bias may be NULL. Allocates its patch buffer: KILN_ERR_OUT_OF_MEMORY when that
 * fails, KILN_ERR_UNSUPPORTED for an undecodable weight type. */
kiln_status kiln__conv2d(kiln_pool *pool, const struct kiln_conv2d_shape *s, kiln_dtype wtype,
                         const void *w, const float *bias, const float *x, int h, int wd,
                         float *y);

#endif /* KILN_KERNELS_CONV2D_H */
