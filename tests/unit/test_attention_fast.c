/* tests/unit/test_attention_fast.c - kiln__attention_head_fast (AVX-512)
 * against the scalar reference kiln__attention_head: float16 and float32
 * caches, head sizes that are and are not multiples of 16 (and over the
 * 128-value register block), 1..70 positions, windows that start past 0,
 * scores of large spread (the softmax's exp far below 1). Skipped on a CPU
 * without AVX-512 F/BW/VL, where the fast call is the reference itself. */
#include <stdint.h>
#include <stdlib.h>

#include "core/cpu.h"
#include "kernels/attention.h"
#include "kernels/ops.h"
#include "tensor/fp16.h"
#include "test.h"
#include "test_random.h"

/* One head: n_pos cached positions of row_stride values (the head at offset
 * `off`), query scaled by `spread`; worst |fast - ref| over the output. */
static double run(int f16, int head_dim, int first, int last, float spread, unsigned seed) {
    int n_pos = last + 1, row = head_dim * 2 + 3, off = head_dim + 1;
    size_t n = (size_t)n_pos * (size_t)row;
    float *kf = malloc(n * sizeof *kf), *vf = malloc(n * sizeof *vf), *q = malloc((size_t)head_dim * sizeof *q);
    uint16_t *kh = malloc(n * sizeof *kh), *vh = malloc(n * sizeof *vh);
    float *ref = malloc((size_t)head_dim * sizeof *ref), *got = malloc((size_t)head_dim * sizeof *got);
    float *s1 = malloc((size_t)n_pos * sizeof *s1), *s2 = malloc((size_t)n_pos * sizeof *s2);
    if (!kf || !vf || !q || !kh || !vh || !ref || !got || !s1 || !s2) return INFINITY;
    for (size_t i = 0; i < n; i++) {
        kf[i] = lcg_unit(&seed);
        vf[i] = lcg_unit(&seed);
    }
    for (int i = 0; i < head_dim; i++) q[i] = spread * lcg_unit(&seed);
    kiln__f32_to_f16_row(kf, kh, n);
    kiln__f32_to_f16_row(vf, vh, n);
    const void *k = f16 ? (const void *)(kh + off) : (const void *)(kf + off);
    const void *v = f16 ? (const void *)(vh + off) : (const void *)(vf + off);
    kiln_dtype type = f16 ? KILN_DTYPE_F16 : KILN_DTYPE_F32;
    float scale = 1.0f / sqrtf((float)head_dim);
    kiln__attention_head(ref, q, k, v, type, (size_t)row, first, last, head_dim, scale, s1);
    kiln__attention_head_fast(got, q, k, v, type, (size_t)row, first, last, head_dim, scale, s2);
    double worst = max_diff_f(got, ref, (size_t)head_dim);
    free(kf); free(vf); free(q); free(kh); free(vh); free(ref); free(got); free(s1); free(s2);
    return worst;
}

static void test_against_reference(void) {
    const kiln_cpu_features *f = kiln__cpu();
    if (!(f->avx512f && f->avx512bw && f->avx512vl))
        SKIP_TEST("this CPU (or KILN_CPU_DISABLE) lacks AVX-512 F/BW/VL: the fast call is the reference");
    const int dims[] = {1, 15, 16, 17, 64, 80, 128, 130, 256};
    unsigned seed = 1;
    for (int f16 = 0; f16 < 2; f16++)
        for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
            for (int last = 0; last < 70; last += 3) {
                int first = last > 20 ? last - 17 : 0;
                for (int sp = 0; sp < 2; sp++) {
                    float spread = sp ? 40.0f : 1.0f;
                    double w = run(f16, dims[d], first, last, spread, seed++);
                    /* outputs are averages of values in [-1, 1]; the scores'
                     * rounding (which the softmax's exp amplifies) grows
                     * with their size, spread * sqrt(dim) / sqrt(3) */
                    double tol = 2e-6 * (1.0 + spread * sqrt((double)dims[d]) / 16.0);
                    if (!(w < tol))
                        fprintf(stderr, "  %s dim %d pos %d..%d spread %g: worst %.3g\n", f16 ? "f16" : "f32",
                                dims[d], first, last, (double)spread, w);
                    CHECK(w < tol);
                }
            }
}

/* The vector softmax against scaling then kiln__softmax. */
static void test_softmax(void) {
    const kiln_cpu_features *f = kiln__cpu();
    if (!(f->avx512f && f->avx512bw && f->avx512vl))
        SKIP_TEST("this CPU (or KILN_CPU_DISABLE) lacks AVX-512 F/BW/VL: the fast call is the reference");
    unsigned seed = 77;
    for (size_t n = 1; n < 300; n += 7) {
        float a[300], b[300];
        for (size_t i = 0; i < n; i++) a[i] = b[i] = 30.0f * lcg_unit(&seed);
        kiln__softmax_scaled_fast(a, n, 0.125f);
        for (size_t i = 0; i < n; i++) b[i] *= 0.125f;
        kiln__softmax(b, n);
        double worst = max_rel_diff(a, b, n, 1e-30);
        if (!(worst < 1e-5)) fprintf(stderr, "  n %zu: worst relative %.3g\n", n, worst);
        CHECK(worst < 1e-5);
    }
}

int main(void) {
    RUN(test_against_reference);
    RUN(test_softmax);
    return TEST_REPORT();
}
