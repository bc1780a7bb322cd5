/* tests/unit/test_image_kernels.c - the image kernels against direct
 * textbook loops written here: convolution (padding, stride, the
 * right/bottom-only padding of the VAE, several patch bands, F16 weights,
 * 1 and 2 threads), GroupNorm (+SiLU), nearest 2x upsampling, causal and
 * full multi-head attention (reference and matrix-product versions). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/threadpool.h"
#include "kernels/conv2d.h"
#include "kernels/image_ops.h"
#include "kiln/kiln.h"
#include "tensor/fp16.h"
#include "conv_ref.h"
#include "test.h"
#define TEST_RANDOM_SEED 12345u
#include "test_random.h"

/* One convolution against the direct sum; f16 stores the weights as binary16. */
static void check_conv(int c_in, int c_out, int k, int stride, int pt, int pl, int pb, int pr, int h, int w,
                       int threads, int f16) {
    struct kiln_conv2d_shape s = {c_in, c_out, k, stride, pt, pl, pb, pr};
    int oh = kiln__conv2d_out(h, k, stride, pt, pb), ow = kiln__conv2d_out(w, k, stride, pl, pr);
    size_t nw = (size_t)c_out * (size_t)c_in * (size_t)(k * k);
    float *x = frand_buf((size_t)h * (size_t)w * (size_t)c_in), *wt = frand_buf(nw), *b = frand_buf((size_t)c_out);
    uint16_t *wh = malloc(nw * sizeof *wh);
    float *y = malloc((size_t)oh * (size_t)ow * (size_t)c_out * sizeof *y);
    double *ref = malloc((size_t)oh * (size_t)ow * (size_t)c_out * sizeof *ref);
    kiln_pool *pool = kiln__pool_create(threads);
    REQUIRE(x && wt && b && wh && y && ref && pool);
    for (size_t i = 0; i < nw; i++) {
        wh[i] = kiln__f32_to_f16(wt[i]);
        if (f16) wt[i] = kiln__f16_to_f32(wh[i]);
    }
    conv2d_ref(x, wt, b, c_in, c_out, k, stride, pt, pl, h, w, oh, ow, ref);
    CHECK(kiln__conv2d(pool, &s, f16 ? KILN_DTYPE_F16 : KILN_DTYPE_F32, f16 ? (const void *)wh : (const void *)wt,
                       b, x, h, w, y) == KILN_OK);
    double d = max_diff(y, ref, (size_t)oh * (size_t)ow * (size_t)c_out);
    if (!(d < 1e-4 * sqrt((double)(c_in * k * k))))
        fprintf(stderr, "  conv %d->%d k%d s%d %dx%d: max diff %g\n", c_in, c_out, k, stride, h, w, d);
    CHECK(d < 1e-4 * sqrt((double)(c_in * k * k)));
    kiln__pool_free(pool);
    free(x);
    free(wt);
    free(b);
    free(wh);
    free(y);
    free(ref);
}

static void test_conv2d(void) {
    check_conv(5, 7, 3, 1, 1, 1, 1, 1, 6, 9, 1, 0);   /* same padding, odd sizes */
    check_conv(5, 7, 3, 1, 1, 1, 1, 1, 6, 9, 2, 1);   /* threads, F16 weights */
    check_conv(4, 6, 3, 2, 1, 1, 1, 1, 7, 8, 2, 0);   /* UNet downsampler */
    check_conv(4, 6, 3, 2, 0, 0, 1, 1, 8, 8, 1, 0);   /* VAE downsampler: pad right/bottom only */
    check_conv(8, 3, 1, 1, 0, 0, 0, 0, 5, 4, 2, 0);   /* 1x1: direct product */
    check_conv(64, 2, 3, 1, 1, 1, 1, 1, 128, 128, 2, 0); /* more patches than one band */
}

static void test_group_norm(void) {
    const int c = 12, groups = 3;
    const size_t n = 10;
    float *x = frand_buf(n * (size_t)c), *w = frand_buf((size_t)c), *b = frand_buf((size_t)c);
    float *y = malloc(n * (size_t)c * sizeof *y);
    double *ref = malloc(n * (size_t)c * sizeof *ref);
    kiln_pool *pool = kiln__pool_create(2);
    REQUIRE(x && w && b && y && ref && pool);
    for (int silu = 0; silu < 2; silu++) {
        int per = c / groups;
        for (int g = 0; g < groups; g++) {
            double mean = 0.0, var = 0.0;
            for (size_t p = 0; p < n; p++)
                for (int i = 0; i < per; i++) mean += x[p * (size_t)c + (size_t)(g * per + i)];
            mean /= (double)(n * (size_t)per);
            for (size_t p = 0; p < n; p++)
                for (int i = 0; i < per; i++) {
                    double d = x[p * (size_t)c + (size_t)(g * per + i)] - mean;
                    var += d * d;
                }
            var /= (double)(n * (size_t)per);
            for (size_t p = 0; p < n; p++)
                for (int i = 0; i < per; i++) {
                    size_t at = p * (size_t)c + (size_t)(g * per + i);
                    double v = (x[at] - mean) / sqrt(var + 1e-5) * w[g * per + i] + b[g * per + i];
                    ref[at] = silu ? v / (1.0 + exp(-v)) : v;
                }
        }
        kiln__group_norm(pool, y, x, n, c, groups, w, b, 1e-5f, silu);
        CHECK(max_diff(y, ref, n * (size_t)c) < 1e-5);
    }
    kiln__pool_free(pool);
    free(x);
    free(w);
    free(b);
    free(y);
    free(ref);
}

static void test_upsample(void) {
    const int h = 3, w = 5, c = 2;
    float *x = frand_buf((size_t)(h * w * c)), *y = malloc((size_t)(4 * h * w * c) * sizeof *y);
    REQUIRE(x && y);
    kiln__upsample_nearest(y, 2 * h, 2 * w, x, h, w, c);
    for (int oy = 0; oy < 2 * h; oy++)
        for (int ox = 0; ox < 2 * w; ox++)
            for (int ch = 0; ch < c; ch++)
                CHECK(y[(oy * 2 * w + ox) * c + ch] == x[((oy / 2) * w + ox / 2) * c + ch]);
    free(x);
    free(y);
}

/* Attention with 3 heads of 4 over rows of stride 12, causal and not. */
static void test_mha(void) {
    const int nq = 5, nkv = 7, heads = 3, hd = 4, d = heads * hd;
    float *q = frand_buf((size_t)(nq * d)), *k = frand_buf((size_t)(nkv * d)), *v = frand_buf((size_t)(nkv * d));
    float *y = malloc((size_t)(nq * d) * sizeof *y);
    double *ref = malloc((size_t)(nq * d) * sizeof *ref);
    kiln_pool *pool = kiln__pool_create(2);
    REQUIRE(q && k && v && y && ref && pool);
    for (int causal = 0; causal < 2; causal++) {
        for (int i = 0; i < nq; i++)
            for (int hh = 0; hh < heads; hh++) {
                int last = causal ? i : nkv - 1;
                double s[16], mx = -1e300, tot = 0.0;
                for (int j = 0; j <= last; j++) {
                    s[j] = 0.0;
                    for (int e = 0; e < hd; e++) s[j] += (double)q[i * d + hh * hd + e] * k[j * d + hh * hd + e];
                    s[j] /= sqrt((double)hd);
                    if (s[j] > mx) mx = s[j];
                }
                for (int j = 0; j <= last; j++) tot += (s[j] = exp(s[j] - mx));
                for (int e = 0; e < hd; e++) {
                    double acc = 0.0;
                    for (int j = 0; j <= last; j++) acc += s[j] / tot * v[j * d + hh * hd + e];
                    ref[i * d + hh * hd + e] = acc;
                }
            }
        CHECK(kiln__mha(pool, y, (size_t)d, q, (size_t)d, k, v, (size_t)d, nq, nkv, heads, hd, causal) == KILN_OK);
        CHECK(max_diff(y, ref, (size_t)(nq * d)) < 1e-5);
        CHECK(kiln__mha_fast(pool, y, (size_t)d, q, (size_t)d, k, v, (size_t)d, nq, nkv, heads, hd, causal) ==
              KILN_OK);
        CHECK(max_diff(y, ref, (size_t)(nq * d)) < 1e-5);
    }
    kiln__pool_free(pool);
    free(q);
    free(k);
    free(v);
    free(y);
    free(ref);
}

/* The matrix-product attention against the reference one on more queries
 * than one score block, strided rows (q, k/v and out strides differ). */
static void test_mha_fast_blocks(void) {
    const int nq = 300, nkv = 90, heads = 2, hd = 8;
    const size_t qs = 20, kvs = 17, os = 18;
    float *q = frand_buf((size_t)nq * qs), *k = frand_buf((size_t)nkv * kvs), *v = frand_buf((size_t)nkv * kvs);
    float *a = calloc((size_t)nq * os, sizeof *a), *b = calloc((size_t)nq * os, sizeof *b);
    kiln_pool *pool = kiln__pool_create(2);
    REQUIRE(q && k && v && a && b && pool);
    for (int causal = 0; causal < 2; causal++) {
        CHECK(kiln__mha(pool, a, os, q, qs, k, v, kvs, nq, nkv, heads, hd, causal) == KILN_OK);
        CHECK(kiln__mha_fast(pool, b, os, q, qs, k, v, kvs, nq, nkv, heads, hd, causal) == KILN_OK);
        double m = 0.0;
        for (size_t i = 0; i < (size_t)nq * os; i++) m = fmax(m, fabs((double)a[i] - b[i]));
        CHECK(m < 1e-5);
    }
    kiln__pool_free(pool);
    free(q);
    free(k);
    free(v);
    free(a);
    free(b);
}

int main(void) {
    RUN(test_conv2d);
    RUN(test_group_norm);
    RUN(test_upsample);
    RUN(test_mha);
    RUN(test_mha_fast_blocks);
    return TEST_REPORT();
}
