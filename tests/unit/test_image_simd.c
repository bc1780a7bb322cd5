/* tests/unit/test_image_simd.c - the image kernels of the fast paths: the
 * packed convolution (plain-C reference micro-kernel against a direct
 * textbook sum, then the AVX-512 one against the reference) on odd sizes
 * (partial strips and panels, several K blocks, padding on one side,
 * stride 2, F16, BF16 and F32 weights, 1 and 2 threads; the AVX2 one too), the
 * shared choice of code path, and the packed linear
 * layer; the blocked attention (reference, AVX-512, AVX2) against kiln__mha
 * (scores, softmax, sum: the plain reference) with partial key blocks,
 * partial query blocks and head sizes off the vector width, and in its
 * causal (LLM prompt) form against kiln__attention_head run per query and
 * head and against its own reference: position offsets, sliding windows
 * (shorter than a query block's keys, of 1, longer than the cache),
 * grouped-query and single KV heads, F16 and F32 caches with padded rows,
 * odd head sizes and query counts, the caller's scratch; bad arguments; GroupNorm (+
 * SiLU) and SiLU with AVX-512 and AVX2 against their scalar references; the
 * threaded LayerNorm rows and GEGLU (both paths) against kiln__layernorm
 * and a double-precision GEGLU. SIMD checks are skipped where the CPU lacks the feature. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/cpu.h"
#include "core/threadpool.h"
#include "kernels/attention.h"
#include "kernels/conv2d_packed.h"
#include "kernels/flash_attention.h"
#include "kernels/image_ops.h"
#include "kernels/ops.h"
#include "kiln/kiln.h"
#include "tensor/fp16.h"
#include "conv_ref.h"
#include "test.h"
#define TEST_RANDOM_SEED 777u
#include "test_random.h"

/* The CPU has what the AVX2 paths need. */
static int have_avx2(void) { return kiln__cpu()->avx2 && kiln__cpu()->fma && kiln__cpu()->f16c; }

/* One convolution: the reference micro-kernel against the direct sum, the
 * AVX-512 one (when present) against it too and against the reference. */
static void check_conv(int c_in, int c_out, int k, int stride, int pt, int pl, int pb, int pr, int h, int w,
                       int threads, int f16) {
    /* f16: 0 F32 weights, 1 F16, 2 BF16 (both kept 16-bit in the pack). */
    kiln_dtype wtype = f16 == 2 ? KILN_DTYPE_BF16 : f16 ? KILN_DTYPE_F16 : KILN_DTYPE_F32;
    struct kiln_conv2d_shape s = {c_in, c_out, k, stride, pt, pl, pb, pr};
    int oh = kiln__conv2d_out(h, k, stride, pt, pb), ow = kiln__conv2d_out(w, k, stride, pl, pr);
    size_t nw = (size_t)c_out * (size_t)c_in * (size_t)(k * k), ny = (size_t)oh * (size_t)ow * (size_t)c_out;
    float *x = frand_buf((size_t)h * (size_t)w * (size_t)c_in), *wt = frand_buf(nw), *b = frand_buf((size_t)c_out);
    uint16_t *wh = malloc(nw * sizeof *wh);
    float *y = malloc(ny * sizeof *y), *y2 = malloc(ny * sizeof *y2);
    double *ref = malloc(ny * sizeof *ref), *refd = malloc(ny * sizeof *refd);
    kiln_pool *pool = kiln__pool_create(threads);
    REQUIRE(x && wt && b && wh && y && y2 && ref && refd && pool);
    for (size_t i = 0; i < nw; i++) {
        wh[i] = f16 == 2 ? kiln__f32_to_bf16(wt[i]) : kiln__f32_to_f16(wt[i]);
        if (f16) wt[i] = f16 == 2 ? kiln__bf16_to_f32(wh[i]) : kiln__f16_to_f32(wh[i]);
    }
    conv2d_ref(x, wt, b, c_in, c_out, k, stride, pt, pl, h, w, oh, ow, ref);
    struct kiln_conv_packed p;
    REQUIRE(kiln__conv_pack(&p, wtype, f16 ? (const void *)wh : (const void *)wt, c_out, c_in, k) == KILN_OK);
    CHECK(p.type == wtype);
    double tol = 2e-6 * (double)(c_in * k * k);
    CHECK(kiln__conv2d_packed(pool, &s, &p, b, x, h, w, y, KILN_CONV_ISA_SCALAR) == KILN_OK);
    double d = max_diff(y, ref, ny);
    if (!(d < tol)) fprintf(stderr, "  scalar conv %d->%d k%d s%d %dx%d: max diff %g\n", c_in, c_out, k, stride, h, w, d);
    CHECK(d < tol);
    if (kiln__conv_avx512_available()) {
        CHECK(kiln__conv2d_packed(pool, &s, &p, b, x, h, w, y2, KILN_CONV_ISA_AVX512) == KILN_OK);
        for (size_t i = 0; i < ny; i++) refd[i] = y[i];
        double d2 = max_diff(y2, ref, ny), d3 = max_diff(y2, refd, ny);
        if (!(d2 < tol && d3 < tol))
            fprintf(stderr, "  avx512 conv %d->%d k%d: diff %g (direct) %g (scalar)\n", c_in, c_out, k, d2, d3);
        CHECK(d2 < tol && d3 < tol);
    } else {
        CHECK(kiln__conv2d_packed(pool, &s, &p, b, x, h, w, y2, KILN_CONV_ISA_AVX512) == KILN_ERR_UNSUPPORTED);
    }
    if (have_avx2()) {
        CHECK(kiln__conv2d_packed(pool, &s, &p, b, x, h, w, y2, KILN_CONV_ISA_AVX2) == KILN_OK);
        for (size_t i = 0; i < ny; i++) refd[i] = y[i];
        double d2 = max_diff(y2, ref, ny), d3 = max_diff(y2, refd, ny);
        if (!(d2 < tol && d3 < tol))
            fprintf(stderr, "  avx2 conv %d->%d k%d: diff %g (direct) %g (scalar)\n", c_in, c_out, k, d2, d3);
        CHECK(d2 < tol && d3 < tol);
    } else {
        CHECK(kiln__conv2d_packed(pool, &s, &p, b, x, h, w, y2, KILN_CONV_ISA_AVX2) == KILN_ERR_UNSUPPORTED);
    }
    /* Without bias: the same minus the bias. */
    CHECK(kiln__conv2d_packed(pool, &s, &p, NULL, x, h, w, y2, KILN_CONV_ISA_BEST) == KILN_OK);
    for (size_t i = 0; i < ny; i++) refd[i] = ref[i] - b[i % (size_t)c_out];
    CHECK(max_diff(y2, refd, ny) < tol);
    kiln__conv_pack_free(&p);
    kiln__pool_free(pool);
    free(x);
    free(wt);
    free(b);
    free(wh);
    free(y);
    free(y2);
    free(ref);
    free(refd);
}

static void test_conv_packed(void) {
    check_conv(5, 7, 3, 1, 1, 1, 1, 1, 6, 9, 1, 0);     /* one partial panel, partial strips */
    check_conv(5, 7, 3, 1, 1, 1, 1, 1, 6, 9, 2, 1);     /* threads, F16 weights */
    check_conv(4, 70, 3, 2, 1, 1, 1, 1, 7, 8, 2, 0);    /* UNet downsampler, two panels */
    check_conv(4, 6, 3, 2, 0, 0, 1, 1, 8, 8, 1, 0);     /* VAE downsampler: pad right/bottom only */
    check_conv(37, 129, 3, 1, 1, 1, 1, 1, 11, 13, 2, 1); /* K = 333: two K blocks crossing taps */
    check_conv(300, 64, 1, 1, 0, 0, 0, 0, 101, 1, 2, 0); /* 1x1: K blocks within a tap, full panel */
    check_conv(3, 130, 3, 1, 1, 1, 1, 1, 20, 17, 2, 1); /* many pixel blocks */
    check_conv(37, 129, 3, 1, 1, 1, 1, 1, 11, 13, 2, 2); /* BF16 weights, two K blocks */
    check_conv(5, 7, 3, 2, 1, 1, 1, 1, 6, 9, 1, 2);     /* BF16, one partial panel, stride 2 */
}

/* The packed linear layer against a direct sum, F32 weights. */
static void test_linear_packed(void) {
    const int n_in = 45, n_out = 67;
    const size_t n_tok = 13;
    float *wt = frand_buf((size_t)(n_in * n_out)), *b = frand_buf((size_t)n_out), *x = frand_buf(n_tok * (size_t)n_in);
    float *y = malloc(n_tok * (size_t)n_out * sizeof *y);
    double *ref = malloc(n_tok * (size_t)n_out * sizeof *ref);
    kiln_pool *pool = kiln__pool_create(2);
    REQUIRE(wt && b && x && y && ref && pool);
    for (size_t t = 0; t < n_tok; t++)
        for (int o = 0; o < n_out; o++) {
            double sum = b[o];
            for (int i = 0; i < n_in; i++) sum += (double)wt[o * n_in + i] * x[t * (size_t)n_in + (size_t)i];
            ref[t * (size_t)n_out + (size_t)o] = sum;
        }
    struct kiln_conv_packed p;
    REQUIRE(kiln__conv_pack(&p, KILN_DTYPE_F32, wt, n_out, n_in, 1) == KILN_OK);
    CHECK(kiln__linear_packed(pool, &p, b, x, n_tok, y) == KILN_OK);
    CHECK(max_diff(y, ref, n_tok * (size_t)n_out) < 1e-4);
    CHECK(kiln__linear_packed(pool, &p, b, x, 0, y) == KILN_OK);
    kiln__conv_pack_free(&p);
    /* Shape errors. */
    CHECK(kiln__conv_pack(&p, KILN_DTYPE_F32, wt, 0, n_in, 1) == KILN_ERR_INVALID_ARG);
    CHECK(p.data == NULL);
    kiln__pool_free(pool);
    free(wt);
    free(b);
    free(x);
    free(y);
    free(ref);
}

/* Full (image) attention over F32 rows of n_q queries and n_kv keys. */
static struct kiln_flash_args full_args(float *out, size_t d, const float *q, size_t stride, const float *k,
                                        const float *v, int n_q, int n_kv, int heads, int hd) {
    return (struct kiln_flash_args){.out = out, .out_stride = d, .q = q, .q_stride = stride, .k = k, .v = v,
                                    .kv_stride = stride, .kv_type = KILN_DTYPE_F32, .n_q = n_q, .n_kv = n_kv,
                                    .n_heads = heads, .n_heads_kv = heads, .head_dim = hd};
}

/* One attention shape: every path of kiln__flash_attention against kiln__mha. */
static void check_flash(int n_q, int n_kv, int heads, int hd, int threads) {
    size_t d = (size_t)heads * (size_t)hd, stride = d + 3; /* rows padded: strides differ from d */
    float *q = frand_buf((size_t)n_q * stride), *k = frand_buf((size_t)n_kv * stride);
    float *v = frand_buf((size_t)n_kv * stride), *ref = malloc((size_t)n_q * d * sizeof *ref);
    float *out = malloc((size_t)n_q * d * sizeof *out);
    double *refd = malloc((size_t)n_q * d * sizeof *refd);
    kiln_pool *pool = kiln__pool_create(threads);
    REQUIRE(q && k && v && ref && out && refd && pool);
    /* Larger scores than frand's, so that the running maximum matters. */
    for (size_t i = 0; i < (size_t)n_q * stride; i++) q[i] *= 3.0f;
    CHECK(kiln__mha(pool, ref, d, q, stride, k, v, stride, n_q, n_kv, heads, hd, 0) == KILN_OK);
    for (size_t i = 0; i < (size_t)n_q * d; i++) refd[i] = ref[i];
    struct kiln_flash_args fa = full_args(out, d, q, stride, k, v, n_q, n_kv, heads, hd);
    CHECK(kiln__flash_attention(pool, &fa, KILN_CONV_ISA_SCALAR) == KILN_OK);
    double ds = max_diff(out, refd, (size_t)n_q * d);
    CHECK(ds < 1e-5);
    double dv = 0.0;
    if (kiln__conv_avx512_available()) {
        CHECK(kiln__flash_attention(pool, &fa, KILN_CONV_ISA_AVX512) == KILN_OK);
        dv = max_diff(out, refd, (size_t)n_q * d);
        CHECK(dv < 1e-5);
    }
    double d2 = 0.0;
    if (have_avx2()) {
        CHECK(kiln__flash_attention(pool, &fa, KILN_CONV_ISA_AVX2) == KILN_OK);
        d2 = max_diff(out, refd, (size_t)n_q * d);
        CHECK(d2 < 1e-5);
    }
    if (!(ds < 1e-5 && dv < 1e-5 && d2 < 1e-5))
        fprintf(stderr, "  flash %d x %d, %d heads of %d: diff %g (scalar) %g (avx512) %g (avx2)\n", n_q, n_kv,
                heads, hd, ds, dv, d2);
    kiln__pool_free(pool);
    free(q);
    free(k);
    free(v);
    free(ref);
    free(out);
    free(refd);
}

/* One causal (LLM prompt) shape: n_q queries at positions pos.. over a
 * cache of pos + n_q keys, heads query heads over heads_kv KV heads, an
 * optional window, F32 or F16 keys and values (rows padded). Every path
 * (scalar, AVX-512 and AVX2 where the CPU has them; the last with the
 * caller's scratch) against kiln__attention_head run per query and head,
 * and the SIMD paths against the scalar one. */
static void check_causal(int n_q, int pos, int heads, int heads_kv, int hd, int window, int f16, int threads) {
    int n_kv = pos + n_q;
    size_t dq = (size_t)heads * (size_t)hd, q_stride = dq + 5, kv_stride = (size_t)heads_kv * (size_t)hd + 3;
    size_t n_out = (size_t)n_q * dq, n_cache = (size_t)n_kv * kv_stride;
    float *q = frand_buf((size_t)n_q * q_stride), *k = frand_buf(n_cache), *v = frand_buf(n_cache);
    uint16_t *k16 = malloc(n_cache * sizeof *k16), *v16 = malloc(n_cache * sizeof *v16);
    float *out = malloc(n_out * sizeof *out), *scalar = malloc(n_out * sizeof *scalar);
    double *refd = malloc(n_out * sizeof *refd), *scald = malloc(n_out * sizeof *scald);
    float *ref1 = malloc((size_t)hd * sizeof *ref1), *scores = malloc((size_t)n_kv * sizeof *scores);
    float *scratch = kiln__aligned_alloc((size_t)threads * kiln__flash_scratch_floats(hd) * sizeof(float), 64);
    kiln_pool *pool = kiln__pool_create(threads);
    REQUIRE(q && k && v && k16 && v16 && out && scalar && refd && scald && ref1 && scores && scratch && pool);
    for (size_t i = 0; i < (size_t)n_q * q_stride; i++) q[i] *= 3.0f;
    kiln__f32_to_f16_row(k, k16, n_cache);
    kiln__f32_to_f16_row(v, v16, n_cache);
    const void *kc = f16 ? (const void *)k16 : k, *vc = f16 ? (const void *)v16 : v;
    kiln_dtype type = f16 ? KILN_DTYPE_F16 : KILN_DTYPE_F32;
    size_t esize = f16 ? 2 : 4;
    /* The reference: one query head at a time over the keys it sees. */
    for (int i = 0; i < n_q; i++)
        for (int h = 0; h < heads; h++) {
            int p = pos + i, first = window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
            size_t g = (size_t)(h / (heads / heads_kv)) * (size_t)hd * esize;
            kiln__attention_head(ref1, q + (size_t)i * q_stride + (size_t)h * (size_t)hd, (const char *)kc + g,
                                 (const char *)vc + g, type, kv_stride, first, p, hd, 1.0f / sqrtf((float)hd),
                                 scores);
            for (int e = 0; e < hd; e++) refd[(size_t)i * dq + (size_t)(h * hd + e)] = ref1[e];
        }
    struct kiln_flash_args fa = {.out = scalar, .out_stride = dq, .q = q, .q_stride = q_stride, .k = kc,
                                 .v = vc, .kv_stride = kv_stride, .kv_type = type, .n_q = n_q, .n_kv = n_kv,
                                 .n_heads = heads, .n_heads_kv = heads_kv, .head_dim = hd, .causal = 1,
                                 .pos = pos, .window = window};
    CHECK(kiln__flash_attention(pool, &fa, KILN_CONV_ISA_SCALAR) == KILN_OK);
    double ds = max_diff(scalar, refd, n_out), dv = 0.0, d2 = 0.0, dvs = 0.0, d2s = 0.0;
    for (size_t i = 0; i < n_out; i++) scald[i] = scalar[i];
    fa.out = out;
    if (kiln__conv_avx512_available()) {
        CHECK(kiln__flash_attention(pool, &fa, KILN_CONV_ISA_AVX512) == KILN_OK);
        dv = max_diff(out, refd, n_out);
        dvs = max_diff(out, scald, n_out);
    }
    if (have_avx2()) {
        fa.scratch = scratch;
        CHECK(kiln__flash_attention(pool, &fa, KILN_CONV_ISA_AVX2) == KILN_OK);
        d2 = max_diff(out, refd, n_out);
        d2s = max_diff(out, scald, n_out);
    }
    int ok = ds < 1e-5 && dv < 1e-5 && d2 < 1e-5 && dvs < 1e-5 && d2s < 1e-5;
    CHECK(ok);
    if (!ok)
        fprintf(stderr,
                "  causal %d queries from %d, %d/%d heads of %d, window %d, f16 %d: diff %g (scalar) %g (avx512) "
                "%g (avx2), against scalar %g (avx512) %g (avx2)\n",
                n_q, pos, heads, heads_kv, hd, window, f16, ds, dv, d2, dvs, d2s);
    kiln__pool_free(pool);
    kiln__aligned_free(scratch);
    free(q);
    free(k);
    free(v);
    free(k16);
    free(v16);
    free(out);
    free(scalar);
    free(refd);
    free(scald);
    free(ref1);
    free(scores);
}

static void test_flash_attention(void) {
    check_flash(45, 130, 3, 13, 2);  /* partial query and key blocks, head size 8 + 5 */
    check_flash(70, 64, 2, 40, 1);   /* SD 1.5's head size, one full key block */
    check_flash(33, 77, 8, 40, 2);   /* cross-attention shape: 77 keys */
    check_flash(5, 200, 1, 24, 2);   /* one partial query block, one head */
    check_flash(40, 9, 1, 3, 1);     /* tiny heads, fewer keys than a chunk of 8 */
    float x = 0.0f;
    struct kiln_flash_args one = full_args(&x, 1, &x, 1, &x, &x, 1, 1, 1, 1);
    if (!kiln__conv_avx512_available())
        CHECK(kiln__flash_attention(NULL, &one, KILN_CONV_ISA_AVX512) == KILN_ERR_UNSUPPORTED);
    if (!have_avx2()) CHECK(kiln__flash_attention(NULL, &one, KILN_CONV_ISA_AVX2) == KILN_ERR_UNSUPPORTED);
}

static void test_flash_causal(void) {
    check_causal(45, 0, 4, 2, 13, 0, 0, 2);    /* prompt from position 0, GQA, head size 8 + 5 */
    check_causal(37, 100, 3, 1, 64, 0, 1, 2);  /* after 100 cached positions, one KV head, F16 */
    check_causal(70, 29, 2, 2, 40, 50, 1, 1);  /* window shorter than a query block's keys */
    check_causal(33, 200, 4, 4, 24, 40, 0, 2); /* window: two key blocks, the last masked on both sides */
    check_causal(19, 7, 2, 1, 20, 1, 1, 2);    /* window of 1: each query sees its own key */
    check_causal(50, 90, 2, 1, 16, 1000, 0, 1); /* window longer than the cache: no limit */
    check_causal(1, 300, 2, 2, 128, 0, 1, 1);  /* one query (generation's shape), 128-wide heads */
    check_causal(5, 3, 6, 3, 3, 0, 0, 2);      /* tiny heads, odd n, keys fewer than a chunk of 8 */
    check_causal(97, 64, 8, 2, 64, 0, 1, 2);   /* TinyLlama's heads, several query blocks, F16 */
    /* Inconsistent arguments. */
    float x = 0.0f;
    struct kiln_flash_args a = full_args(&x, 1, &x, 1, &x, &x, 1, 1, 1, 1);
    a.window = 4; /* a window needs the causal mask */
    CHECK(kiln__flash_attention(NULL, &a, KILN_CONV_ISA_SCALAR) == KILN_ERR_INVALID_ARG);
    a.causal = 1, a.window = 0, a.pos = 1; /* query 0 at position 1 needs 2 keys */
    CHECK(kiln__flash_attention(NULL, &a, KILN_CONV_ISA_SCALAR) == KILN_ERR_INVALID_ARG);
    a.pos = 0, a.n_heads = 3, a.n_heads_kv = 2; /* 3 query heads do not share 2 KV heads */
    CHECK(kiln__flash_attention(NULL, &a, KILN_CONV_ISA_SCALAR) == KILN_ERR_INVALID_ARG);
    a.n_heads = a.n_heads_kv = 1, a.kv_type = KILN_DTYPE_BF16;
    CHECK(kiln__flash_attention(NULL, &a, KILN_CONV_ISA_SCALAR) == KILN_ERR_INVALID_ARG);
}

/* The shared choice of code path: BEST is the widest the CPU and the
 * kernel have; named paths are checked. */
static void test_isa_choice(void) {
    enum kiln_conv_isa isa = KILN_CONV_ISA_BEST;
    const kiln_cpu_features *f = kiln__cpu();
    CHECK(kiln__image_isa(KILN_CONV_ISA_BEST, 1, "t", &isa) == KILN_OK);
    CHECK(isa == (f->avx512f ? KILN_CONV_ISA_AVX512 : have_avx2() ? KILN_CONV_ISA_AVX2 : KILN_CONV_ISA_SCALAR));
    CHECK(kiln__image_isa(KILN_CONV_ISA_BEST, 0, "t", &isa) == KILN_OK);
    CHECK(isa == (f->avx512f ? KILN_CONV_ISA_AVX512 : KILN_CONV_ISA_SCALAR));
    CHECK(kiln__image_isa(KILN_CONV_ISA_SCALAR, 1, "t", &isa) == KILN_OK && isa == KILN_CONV_ISA_SCALAR);
    CHECK(kiln__image_isa(KILN_CONV_ISA_AVX512, 1, "t", &isa) == (f->avx512f ? KILN_OK : KILN_ERR_UNSUPPORTED));
    CHECK(kiln__image_isa(KILN_CONV_ISA_AVX2, 1, "t", &isa) == (have_avx2() ? KILN_OK : KILN_ERR_UNSUPPORTED));
    CHECK(kiln__image_isa(KILN_CONV_ISA_AVX2, 0, "t", &isa) == KILN_ERR_UNSUPPORTED);
}

/* GroupNorm: the AVX-512 path against the reference, with and without
 * SiLU, values off zero (a large mean tests the two-pass variance). */
static void check_group_norm(size_t n_pix, int c, int groups, int threads) {
    size_t n = n_pix * (size_t)c;
    float *x = frand_buf(n), *w = frand_buf((size_t)c), *b = frand_buf((size_t)c);
    float *y = malloc(n * sizeof *y), *ref = malloc(n * sizeof *ref);
    double *refd = malloc(n * sizeof *refd);
    kiln_pool *pool = kiln__pool_create(threads);
    REQUIRE(x && w && b && y && ref && refd && pool);
    for (size_t i = 0; i < n; i++) x[i] = 20.0f + 5.0f * x[i];
    for (int silu = 0; silu < 2; silu++) {
        kiln__group_norm_ref(pool, ref, x, n_pix, c, groups, w, b, 1e-6f, silu);
        for (size_t i = 0; i < n; i++) refd[i] = ref[i];
        if (kiln__conv_avx512_available()) {
            CHECK(kiln__group_norm_avx512(pool, y, x, n_pix, c, groups, w, b, 1e-6f, silu) == 1);
            double d = max_diff(y, refd, n);
            if (!(d < 2e-5)) fprintf(stderr, "  group norm %zu x %d / %d silu %d: diff %g\n", n_pix, c, groups, silu, d);
            CHECK(d < 2e-5);
        }
        if (have_avx2()) {
            CHECK(kiln__group_norm_avx2(pool, y, x, n_pix, c, groups, w, b, 1e-6f, silu) == 1);
            double d = max_diff(y, refd, n);
            if (!(d < 2e-5)) fprintf(stderr, "  avx2 group norm %zu x %d / %d silu %d: diff %g\n", n_pix, c, groups, silu, d);
            CHECK(d < 2e-5);
        }
    }
    kiln__pool_free(pool);
    free(x);
    free(w);
    free(b);
    free(y);
    free(ref);
    free(refd);
}

static void test_group_norm_simd(void) {
    if (!kiln__conv_avx512_available() && !have_avx2()) SKIP_TEST("no AVX-512F or AVX2");
    check_group_norm(37, 32, 8, 2);    /* 4 channels per group: groups inside one vector */
    check_group_norm(5, 64, 32, 1);    /* 2 channels per group, few pixels */
    check_group_norm(333, 320, 32, 2); /* SD's shape, odd pixel count */
    check_group_norm(1, 16, 1, 2);     /* one pixel: a thread without pixels */
    /* Channels off the vector width: declined, the caller falls back. */
    float x[12] = {0}, w[12] = {0}, b[12] = {0}, y[12];
    CHECK(kiln__group_norm_avx512(NULL, y, x, 1, 12, 3, w, b, 1e-5f, 0) == 0);
    CHECK(kiln__group_norm_avx2(NULL, y, x, 1, 12, 3, w, b, 1e-5f, 0) == 0);
}

static void test_silu_simd(void) {
    if (!kiln__conv_avx512_available() && !have_avx2()) SKIP_TEST("no AVX-512F or AVX2");
    const size_t n = 53; /* three vectors and a masked (AVX2: scalar) tail */
    float *x = frand_buf(n), *y = malloc(n * sizeof *y);
    double *ref = malloc(n * sizeof *ref);
    REQUIRE(x && y && ref);
    for (size_t i = 0; i < n; i++) x[i] *= 120.0f; /* both saturated ends */
    for (size_t i = 0; i < n; i++) {
        y[i] = x[i];
        ref[i] = (double)x[i] / (1.0 + exp(-(double)x[i]));
    }
    if (kiln__conv_avx512_available()) {
        CHECK(kiln__silu_avx512(y, n) == 1);
        for (size_t i = 0; i < n; i++) CHECK(fabs(y[i] - ref[i]) <= 1e-6 * (1.0 + fabs(ref[i])));
    }
    if (have_avx2()) {
        memcpy(y, x, n * sizeof *y);
        CHECK(kiln__silu_avx2(y, n) == 1);
        for (size_t i = 0; i < n; i++) CHECK(fabs(y[i] - ref[i]) <= 1e-6 * (1.0 + fabs(ref[i])));
    }
    free(x);
    free(y);
    free(ref);
}

/* LayerNorm rows: the reference path is kiln__layernorm row by row; the
 * AVX-512 path is within rounding of it (odd widths: masked tails, a
 * scalar tail of the double sums), values off zero. */
static void check_layernorm_rows(size_t rows, size_t d, int threads) {
    size_t n = rows * d;
    float *x = frand_buf(n), *w = frand_buf(d), *b = frand_buf(d);
    float *y = malloc(n * sizeof *y), *ref = malloc(n * sizeof *ref);
    double *refd = malloc(n * sizeof *refd);
    kiln_pool *pool = kiln__pool_create(threads);
    REQUIRE(x && w && b && y && ref && refd && pool);
    for (size_t i = 0; i < n; i++) x[i] = x[i] * 4.0f + 3.0f;
    for (size_t r = 0; r < rows; r++) kiln__layernorm(ref + r * d, x + r * d, w, b, d, 1e-5f);
    for (size_t i = 0; i < n; i++) refd[i] = ref[i];
    kiln__layernorm_rows(pool, y, x, rows, d, w, b, 1e-5f, 0);
    CHECK(max_diff(y, refd, n) == 0.0);
    if (kiln__conv_avx512_available()) {
        kiln__layernorm_rows(pool, y, x, rows, d, w, b, 1e-5f, 1);
        double dv = max_diff(y, refd, n);
        if (!(dv < 1e-5)) fprintf(stderr, "  layernorm %zu x %zu: diff %g\n", rows, d, dv);
        CHECK(dv < 1e-5);
        /* Without the shift. */
        for (size_t r = 0; r < rows; r++) kiln__layernorm(ref + r * d, x + r * d, w, NULL, d, 1e-5f);
        for (size_t i = 0; i < n; i++) refd[i] = ref[i];
        kiln__layernorm_rows(pool, y, x, rows, d, w, NULL, 1e-5f, 1);
        CHECK(max_diff(y, refd, n) < 1e-5);
    }
    kiln__pool_free(pool);
    free(x);
    free(w);
    free(b);
    free(y);
    free(ref);
    free(refd);
}

static void test_layernorm_rows(void) {
    check_layernorm_rows(13, 37, 2);  /* two vectors and a tail of 5 */
    check_layernorm_rows(7, 325, 1);  /* SD's 320 and 5 more */
    check_layernorm_rows(1, 8, 2);    /* one row: a thread without rows */
}

/* GEGLU rows against value * x/2 (1 + erf(x / sqrt 2)) in double, both
 * paths, gates over +-8 (both tails of erf), then packed to [rows][d]. */
static void check_geglu(size_t rows, size_t d, int threads, int simd) {
    size_t n = rows * 2 * d;
    float *f = frand_buf(n), *orig = malloc(n * sizeof *orig);
    kiln_pool *pool = kiln__pool_create(threads);
    REQUIRE(f && orig && pool);
    for (size_t i = 0; i < n; i++) f[i] *= 8.0f;
    memcpy(orig, f, n * sizeof *f);
    kiln__geglu_rows(pool, f, rows, d, simd);
    double worst = 0.0;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < d; j++) {
            double v = orig[r * 2 * d + j], g = orig[r * 2 * d + d + j];
            double want = v * 0.5 * g * (1.0 + erf(g / sqrt(2.0)));
            double e = fabs(f[r * d + j] - want) / (1.0 + fabs(v) * (1.0 + fabs(g)));
            if (e > worst) worst = e;
        }
    if (!(worst < 1e-6)) fprintf(stderr, "  geglu %zu x %zu simd %d: scaled error %g\n", rows, d, simd, worst);
    CHECK(worst < 1e-6);
    kiln__pool_free(pool);
    free(f);
    free(orig);
}

static void test_geglu_rows(void) {
    check_geglu(11, 37, 2, 0);
    check_geglu(11, 37, 2, 1); /* AVX-512 where present (else the reference again) */
    check_geglu(3, 1280, 1, 1);
    check_geglu(1, 5, 2, 1);
}

int main(void) {
    RUN(test_conv_packed);
    RUN(test_linear_packed);
    RUN(test_flash_attention);
    RUN(test_flash_causal);
    RUN(test_isa_choice);
    RUN(test_group_norm_simd);
    RUN(test_silu_simd);
    RUN(test_layernorm_rows);
    RUN(test_geglu_rows);
    return TEST_REPORT();
}
