/* tests/conv_ref.h - the textbook convolution the image kernel tests
 * compare kiln's convolutions with (test_image_kernels.c,
 * test_image_simd.c): a direct sum in double precision. */
#ifndef KILN_TESTS_CONV_REF_H
#define KILN_TESTS_CONV_REF_H

#include <stddef.h>

/* ref[oy][ox][co] (oh x ow x c_out, channels last) = b[co] + the sum over
 * ci, ky, kx of wt[co][ci][ky][kx] * x[iy][ix][ci], x being h x w x c_in
 * (channels last), iy = oy * stride + ky - pt, ix = ox * stride + kx - pl,
 * and zero outside the image (the padding). */
static inline void conv2d_ref(const float *x, const float *wt, const float *b, int c_in, int c_out, int k,
                              int stride, int pt, int pl, int h, int w, int oh, int ow, double *ref) {
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
            for (int co = 0; co < c_out; co++) {
                double sum = b[co];
                for (int ci = 0; ci < c_in; ci++)
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int iy = oy * stride + ky - pt, ix = ox * stride + kx - pl;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                            sum += (double)wt[((size_t)co * (size_t)c_in + (size_t)ci) * (size_t)(k * k) +
                                              (size_t)(ky * k + kx)] *
                                   x[((size_t)iy * (size_t)w + (size_t)ix) * (size_t)c_in + (size_t)ci];
                        }
                ref[((size_t)oy * (size_t)ow + (size_t)ox) * (size_t)c_out + (size_t)co] = sum;
            }
}

#endif /* KILN_TESTS_CONV_REF_H */
