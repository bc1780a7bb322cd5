/* src/kernels/conv2d.c - convolution as patch gathering plus
 * kiln__matmul_fast, a band of output pixels at a time (see conv2d.h). */
#include "kernels/conv2d.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/matmul.h"

/* Most floats of gathered patches held at once (32 MiB). */
#define PATCH_FLOATS ((size_t)8 << 20)

/* Arguments of one patch gathering, shared by its threads. */
struct gather_job {
    const struct kiln_conv2d_shape *s; /* geometry */
    const float *x;                    /* input [h][w][c_in] */
    int h, w;                          /* input size */
    int ow;                            /* output width */
    size_t first;                      /* first output pixel of the band */
    size_t n;                          /* output pixels in the band */
    float *patches;                    /* [n][c_in * k * k] */
};

/* Thread ith fills patch rows ith, ith + nth, ... in (channel, ky, kx) order. */
static void gather_run(void *ctx, int ith, int nth) {
    const struct gather_job *j = ctx;
    const struct kiln_conv2d_shape *s = j->s;
    size_t kk = (size_t)s->k * (size_t)s->k;
    size_t row_len = (size_t)s->c_in * kk;
    for (size_t r = (size_t)ith; r < j->n; r += (size_t)nth) {
        size_t p = j->first + r;
        int oy = (int)(p / (size_t)j->ow), ox = (int)(p % (size_t)j->ow);
        float *row = j->patches + r * row_len;
        for (int ky = 0; ky < s->k; ky++) {
            int y = oy * s->stride + ky - s->pad_top;
            for (int kx = 0; kx < s->k; kx++) {
                int x = ox * s->stride + kx - s->pad_left;
                size_t at = (size_t)ky * (size_t)s->k + (size_t)kx;
                if (y < 0 || y >= j->h || x < 0 || x >= j->w) {
                    for (int c = 0; c < s->c_in; c++) row[(size_t)c * kk + at] = 0.0f;
                    continue;
                }
                const float *src = j->x + ((size_t)y * (size_t)j->w + (size_t)x) * (size_t)s->c_in;
                for (int c = 0; c < s->c_in; c++) row[(size_t)c * kk + at] = src[c];
            }
        }
    }
}

kiln_status kiln__conv2d(kiln_pool *pool, const struct kiln_conv2d_shape *s, kiln_dtype wtype,
                         const void *w, const float *bias, const float *x, int h, int wd,
                         float *y) {
    int oh = kiln__conv2d_out(h, s->k, s->stride, s->pad_top, s->pad_bottom);
    int ow = kiln__conv2d_out(wd, s->k, s->stride, s->pad_left, s->pad_right);
    if (oh <= 0 || ow <= 0) return kiln__fail(KILN_ERR_INVALID_ARG, "conv2d: input %dx%d too small", h, wd);
    size_t n_in = (size_t)s->c_in * (size_t)s->k * (size_t)s->k;
    size_t n_pix = (size_t)oh * (size_t)ow;
    size_t c_out = (size_t)s->c_out;
    float *scratch = malloc((size_t)kiln__pool_size(pool) * n_in * sizeof *scratch);
    if (!scratch) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "conv2d: out of memory");
    kiln_status st = KILN_OK;
    int direct = s->k == 1 && s->stride == 1 && !s->pad_top && !s->pad_left && !s->pad_bottom &&
                 !s->pad_right;
    if (direct) {
        /* A 1x1 convolution: every pixel's channels already are its patch. */
        st = kiln__matmul_fast(pool, wtype, w, c_out, n_in, x, n_pix, y, scratch);
    } else {
        size_t band = PATCH_FLOATS / n_in;
        if (band < 1) band = 1;
        if (band > n_pix) band = n_pix;
        float *patches = malloc(band * n_in * sizeof *patches);
        if (!patches) st = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "conv2d: out of memory for patches");
        for (size_t first = 0; st == KILN_OK && first < n_pix; first += band) {
            size_t n = n_pix - first < band ? n_pix - first : band;
            struct gather_job j = {s, x, h, wd, ow, first, n, patches};
            kiln__pool_run(pool, gather_run, &j);
            st = kiln__matmul_fast(pool, wtype, w, c_out, n_in, patches, n, y + first * c_out, scratch);
        }
        free(patches);
    }
    free(scratch);
    if (st != KILN_OK || !bias) return st;
    for (size_t p = 0; p < n_pix; p++)
        for (size_t c = 0; c < c_out; c++) y[p * c_out + c] += bias[c];
    return KILN_OK;
}
