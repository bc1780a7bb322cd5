/* src/image/rng_cpu.c - PyTorch's CPU generator and torch.randn on it (see
 * rng.h).
 *
 * References (read, not copied): PyTorch's aten/src/ATen/core/
 * MT19937RNGEngine.h (the engine), CPUGeneratorImpl.cpp (random64: two
 * draws, the first as the high half), core/TransformationHelper.h (uniform
 * floats and doubles from the low 24 / 53 bits), core/DistributionsHelper.h
 * (normal_distribution<double> with its cached second value),
 * native/cpu/DistributionTemplates.h (normal_kernel, normal_fill and
 * normal_fill_16_AVX2) and native/cpu/avx_mathfun.h (log256_ps and
 * sincos256_ps, Cephes-derived).
 *
 * The AVX2 kernel is reproduced one lane at a time in float arithmetic. Its
 * intrinsics are plain vector multiplies and adds to GCC, which fuses a
 * multiply into the add or subtract that uses it (-ffp-contract=fast, the
 * default for C++) when the CPU has FMA; the fused steps are written here as
 * fmaf() calls, exactly where GCC forms them (the first multiply in
 * statement order wins when both operands of an add are products). Every
 * other step is one rounded float operation per statement, so the compiler
 * has nothing to contract.
 */
#include <math.h>
#include <string.h>

#include "image/rng_impl.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* pi as c10::pi<double>. */
#define KILN_PI 3.14159265358979323846

/* ---- MT19937 ---- */

void kiln__mt_seed(kiln_rng *r, uint32_t seed) {
    r->mt[0] = seed;
    for (uint32_t j = 1; j < KILN_MT_N; j++) r->mt[j] = 1812433253u * (r->mt[j - 1] ^ (r->mt[j - 1] >> 30)) + j;
    r->mt_next = KILN_MT_N;
    r->has_normal = false;
    r->next_normal = 0.0;
}

/* Refill the state (the "twist"). */
static void mt_twist(uint32_t *s) {
    for (int k = 0; k < KILN_MT_N; k++) {
        uint32_t y = (s[k] & 0x80000000u) | (s[(k + 1) % KILN_MT_N] & 0x7FFFFFFFu);
        s[k] = s[(k + 397) % KILN_MT_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908B0DFu : 0u);
    }
}

uint32_t kiln__rng_u32(kiln_rng *r) {
    if (r->mt_next >= KILN_MT_N) {
        mt_twist(r->mt);
        r->mt_next = 0;
    }
    uint32_t y = r->mt[r->mt_next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9D2C5680u;
    y ^= (y << 15) & 0xEFC60000u;
    y ^= y >> 18;
    return y;
}

/* A uniform float in [0, 1): 24 random bits. */
static float uniform_float(kiln_rng *r) { return (float)(kiln__rng_u32(r) & 0xFFFFFFu) * 0x1p-24f; }

/* A uniform double in [0, 1): 53 bits of a 64-bit draw (first draw high). */
static double uniform_double(kiln_rng *r) {
    uint64_t hi = kiln__rng_u32(r);
    uint64_t lo = kiln__rng_u32(r);
    return (double)(((hi << 32) | lo) & ((UINT64_C(1) << 53) - 1)) * 0x1p-53;
}

/* ---- fewer than 16 values: double Box-Muller ---- */

/* at::normal_distribution<double>(0, 1): r cos(theta), with r sin(theta)
 * kept for the next call. */
static double normal_double(kiln_rng *r) {
    if (r->has_normal) {
        r->has_normal = false;
        return r->next_normal;
    }
    double u1 = uniform_double(r);
    double u2 = uniform_double(r);
    double radius = sqrt(-2.0 * log1p(-u2));
    double theta = 2.0 * KILN_PI * u1;
    r->next_normal = radius * sin(theta);
    r->has_normal = true;
    return radius * cos(theta);
}

/* ---- 16 values: Box-Muller on (j, j + 8) ---- */

/* The portable kernel (normal_fill_16 for float). */
static void fill16_scalar(float *d) {
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j]; /* [0, 1) -> (0, 1] for the log */
        float u2 = d[j + 8];
        float radius = sqrtf(-2.0f * logf(u1));
        float theta = (float)(2.0 * KILN_PI * (double)u2); /* computed in double, stored as float */
        float c = radius * cosf(theta);
        float s = radius * sinf(theta);
        d[j] = c + 0.0f; /* "* std + mean" with std 1, mean 0 */
        d[j + 8] = s + 0.0f;
    }
}

/* log256_ps for one positive finite lane. */
static float cephes_logf(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    int32_t exponent = (int32_t)(bits >> 23) - 0x7F;
    bits = (bits & ~0x7F800000u) | 0x3F000000u; /* the mantissa scaled into [0.5, 1) */
    memcpy(&x, &bits, sizeof x);
    float e = (float)exponent;
    e = e + 1.0f;
    bool small = x < 0.707106781186547524f; /* then e -= 1, x = x + x - 1 */
    float tmp = small ? x : 0.0f;
    x = x - 1.0f;
    e = e - (small ? 1.0f : 0.0f);
    x = x + tmp;
    float z = x * x;
    float y = 7.0376836292E-2f;
    y = fmaf(y, x, -1.1514610310E-1f);
    y = fmaf(y, x, 1.1676998740E-1f);
    y = fmaf(y, x, -1.2420140846E-1f);
    y = fmaf(y, x, 1.4249322787E-1f);
    y = fmaf(y, x, -1.6668057665E-1f);
    y = fmaf(y, x, 2.0000714765E-1f);
    y = fmaf(y, x, -2.4999993993E-1f);
    y = fmaf(y, x, 3.3333331174E-1f);
    y = y * x;
    float eq1 = e * -2.12194440e-4f;
    y = fmaf(y, z, eq1); /* y * z + e * q1: the first product is fused */
    y = fmaf(-z, 0.5f, y);
    x = x + y;
    return fmaf(e, 0.693359375f, x);
}

/* sincos256_ps for one non-negative finite lane. */
static void cephes_sincosf(float x, float *sin_out, float *cos_out) {
    float y = x * 1.27323954473516f; /* 4 / pi */
    int32_t j = (int32_t)y;
    j = (j + 1) & ~1;
    y = (float)j;
    bool sin_negative = (j & 4) != 0;
    bool sin_poly_first = (j & 2) == 0; /* the sine polynomial gives sin, else cos */
    /* x - y * pi/4 in three parts ("extended precision modular arithmetic"). */
    x = fmaf(y, -0.78515625f, x);
    x = fmaf(y, -2.4187564849853515625e-4f, x);
    x = fmaf(y, -3.77489497744594108e-8f, x);
    bool cos_negative = ((j - 2) & 4) == 0;
    float z = x * x;
    /* The cosine polynomial (for 0 <= x <= pi/4). */
    float yc = fmaf(2.443315711809948E-005f, z, -1.388731625493765E-003f);
    yc = fmaf(yc, z, 4.166664568298827E-002f);
    yc = yc * z;
    float half_z = z * 0.5f;
    yc = fmaf(yc, z, -half_z);
    yc = yc + 1.0f;
    /* The sine polynomial. */
    float ys = fmaf(-1.9515295891E-4f, z, 8.3321608736E-3f);
    ys = fmaf(ys, z, -1.6666654611E-1f);
    ys = ys * z;
    ys = fmaf(ys, x, x);
    float s = sin_poly_first ? ys : yc;
    float c = sin_poly_first ? yc : ys;
    *sin_out = sin_negative ? -s : s;
    *cos_out = cos_negative ? -c : c;
}

/* The AVX2 kernel (normal_fill_16_AVX2), lane by lane. */
static void fill16_avx2(float *d) {
    const float two_pi = (float)(2.0 * KILN_PI);
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j];
        float u2 = d[j + 8];
        float radius = sqrtf(-2.0f * cephes_logf(u1));
        float theta = two_pi * u2;
        float s, c;
        cephes_sincosf(theta, &s, &c);
        float n1 = radius * c;
        float n2 = radius * s;
        d[j] = fmaf(n1, 1.0f, 0.0f); /* _mm256_fmadd_ps(n, std, mean) */
        d[j + 8] = fmaf(n2, 1.0f, 0.0f);
    }
}

void kiln__cpu_randn(kiln_rng *r, float *out, size_t n, bool avx2) {
    if (n < 16) {
        for (size_t i = 0; i < n; i++) out[i] = (float)(normal_double(r) * 1.0 + 0.0);
        return;
    }
    void (*fill16)(float *) = avx2 ? fill16_avx2 : fill16_scalar;
    for (size_t i = 0; i < n; i++) out[i] = uniform_float(r);
    for (size_t i = 0; i + 16 <= n; i += 16) fill16(out + i);
    if (n % 16 != 0) {
        /* The tail: the last 16 values are drawn again and recomputed. */
        float *tail = out + n - 16;
        for (int i = 0; i < 16; i++) tail[i] = uniform_float(r);
        fill16(tail);
    }
}
