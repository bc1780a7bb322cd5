/* src/tensor/quantize.c - reference quantizers (f32 -> f16, bf16, blocks).
 *
 * Q4_0, Q8_0, Q8_1 and Q8_K follow ggml's reference algorithms step for step
 * (same comparisons, same float operations, same rounding functions), so
 * their bytes match ggml's. Q4_K and Q6_K are kiln's own:
 *   1. each sub-block gets the scale (and for Q4_K the min) that minimises
 *      its squared error over a small family of candidate grids, each
 *      refined by least squares (the approach of ggml's make_qkx2_quants /
 *      make_qx_quants, written from the formats, unweighted);
 *   2. the sub-block scales are coded as 6-bit (Q4_K) or int8 (Q6_K)
 *      multiples of one f16 super-block scale;
 *   3. every value is re-quantized against the scales as coded, so the
 *      stored integers are the nearest ones for what the decoder will use.
 */
#include "tensor/quantize.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/error.h"
#include "tensor/fp16.h"
#include "tensor/tensor.h"

/* Round to nearest, ties to even (the default rounding mode), as ggml's
 * nearest_int does for the magnitudes used here. Non-finite or huge input
 * (from NaN/inf data) is pinned first: converting it would be undefined. */
static int nearest(float x) {
    if (isnan(x)) return 0;
    return (int)lrintf(fminf(fmaxf(x, -1e9f), 1e9f));
}

/* (int)v clamped to lo..hi, defined for every v (NaN gives lo). For finite
 * v this equals clamping (int)v, which is what ggml computes. */
static int trunc_clamped(float v, int lo, int hi) {
    if (!(v >= (float)lo)) return lo;
    if (v >= (float)hi) return hi;
    return (int)v;
}

/* roundf(v) (half away from zero) clamped to lo..hi, NaN gives 0. */
static int round_clamped(float v, int lo, int hi) {
    if (isnan(v)) return 0;
    if (v <= (float)lo) return lo;
    if (v >= (float)hi) return hi;
    return (int)roundf(v);
}

static int clamp_int(int v, int lo, int hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

void kiln__quantize_block_q4_0(const float *x, kiln_block_q4_0 *b) {
    /* the value of largest magnitude (first one on ties) maps to q = 0,
     * i.e. -8 after the offset: d = max / -8 */
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < KILN_QK; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b->d = kiln__f32_to_f16(d);
    for (int j = 0; j < KILN_QK / 2; j++) {
        const float x0 = x[j] * id;
        const float x1 = x[j + KILN_QK / 2] * id;
        /* x * id lies in [-8, 8]: adding 8.5 and truncating rounds half up */
        const int q0 = trunc_clamped(x0 + 8.5f, 0, 15);
        const int q1 = trunc_clamped(x1 + 8.5f, 0, 15);
        b->qs[j] = (uint8_t)(q0 | q1 << 4);
    }
}

/* Shared by Q8_0 and Q8_1: d = max|x| / 127, qs = round(x / d) (half away
 * from zero, roundf). Returns d as f32 (stored rounded to f16 by the caller)
 * and the sum of the quants in *sum. */
static float quantize_q8_legacy(const float *x, int8_t *qs, int *sum) {
    float amax = 0.0f;
    for (int j = 0; j < KILN_QK; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    *sum = 0;
    for (int j = 0; j < KILN_QK; j++) {
        const float v = x[j] * id;
        qs[j] = (int8_t)round_clamped(v, -127, 127); /* |v| <= 127 for finite x */
        *sum += qs[j];
    }
    return d;
}

void kiln__quantize_block_q8_0(const float *x, kiln_block_q8_0 *b) {
    int sum;
    b->d = kiln__f32_to_f16(quantize_q8_legacy(x, b->qs, &sum));
}

void kiln__quantize_block_q8_1(const float *x, kiln_block_q8_1 *b) {
    int sum;
    const float d = quantize_q8_legacy(x, b->qs, &sum);
    b->d = kiln__f32_to_f16(d);
    /* s uses the f32 scale, before its rounding to f16, as ggml does */
    b->s = kiln__f32_to_f16((float)sum * d);
}

void kiln__quantize_block_q8_K(const float *x, kiln_block_q8_K *b) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < KILN_QK_K; j++) {
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    if (amax == 0.0f) {
        memset(b, 0, sizeof *b);
        return;
    }
    /* the largest magnitude maps to -127, so every quant fits in -127..127 */
    const float iscale = -127.0f / max;
    for (int j = 0; j < KILN_QK_K; j++) {
        const float v = iscale * x[j];
        b->qs[j] = (int8_t)clamp_int(nearest(v), -127, 127);
    }
    for (int g = 0; g < KILN_QK_K / 16; g++) {
        int sum = 0;
        for (int j = 0; j < 16; j++) sum += b->qs[16 * g + j];
        b->bsums[g] = (int16_t)sum;
    }
    b->d = 1.0f / iscale;
}

/* --- Q4_K ------------------------------------------------------------- */

/* Squared error of coding x[0..n) as s * q + a with q = nearest in 0..nmax. */
static float affine_error(const float *x, int n, int nmax, float s, float a) {
    float err = 0.0f;
    for (int i = 0; i < n; i++) {
        const int q = clamp_int(nearest((x[i] - a) / s), 0, nmax);
        const float e = s * (float)q + a - x[i];
        err += e * e;
    }
    return err;
}

/* Scale s >= 0 and min m >= 0 for x[i] ~ s * q[i] - m, q in 0..nmax. The
 * candidates stretch the min-to-max grid by -1..+1 steps in tenths; for each
 * assignment of q, s and a = -m come from the least-squares line through
 * (q, x), with a clamped to <= 0 (the format can only subtract a min). */
static void fit_scale_min(const float *x, int n, int nmax, float *s_out, float *m_out) {
    float xmin = x[0], xmax = x[0];
    for (int i = 1; i < n; i++) {
        xmin = fminf(xmin, x[i]);
        xmax = fmaxf(xmax, x[i]);
    }
    if (xmin > 0.0f) xmin = 0.0f; /* positive data: no offset */
    if (xmax <= xmin) {           /* all values equal xmin <= 0 */
        *s_out = 0.0f;
        *m_out = -xmin;
        return;
    }
    float best_s = (xmax - xmin) / (float)nmax, best_a = xmin;
    float best_err = affine_error(x, n, nmax, best_s, best_a);
    for (int k = -10; k <= 10; k++) {
        const float iscale = ((float)nmax + 0.1f * (float)k) / (xmax - xmin);
        double sq = 0, sqq = 0, sx = 0, sqx = 0; /* sums of q, q^2, x, q*x */
        for (int i = 0; i < n; i++) {
            const int q = clamp_int(nearest(iscale * (x[i] - xmin)), 0, nmax);
            sq += q;
            sqq += (double)q * q;
            sx += x[i];
            sqx += (double)q * x[i];
        }
        const double det = n * sqq - sq * sq;
        if (det <= 0) continue; /* all q equal: no line */
        double s = (n * sqx - sq * sx) / det;
        double a = (sqq * sx - sq * sqx) / det;
        if (a > 0) { /* best line needs a positive offset: refit through 0 */
            a = 0;
            s = sqx / sqq;
        }
        if (!(s > 0)) continue;
        const float err = affine_error(x, n, nmax, (float)s, (float)a);
        if (err < best_err) {
            best_err = err;
            best_s = (float)s;
            best_a = (float)a;
        }
    }
    *s_out = best_s;
    *m_out = -best_a;
}

void kiln__quantize_block_q4_K(const float *x, kiln_block_q4_K *b) {
    float scales[8], mins[8];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; j++) {
        fit_scale_min(x + 32 * j, 32, 15, &scales[j], &mins[j]);
        max_scale = fmaxf(max_scale, scales[j]);
        max_min = fmaxf(max_min, mins[j]);
    }
    /* 6-bit sub-block scales and mins as multiples of the f16 d and dmin */
    b->d = kiln__f32_to_f16(max_scale / 63.0f);
    b->dmin = kiln__f32_to_f16(max_min / 63.0f);
    const float d = kiln__f16_to_f32(b->d);
    const float dmin = kiln__f16_to_f32(b->dmin);
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; j++) {
        ls[j] = (uint8_t)(d > 0.0f ? clamp_int(nearest(scales[j] / d), 0, 63) : 0);
        lm[j] = (uint8_t)(dmin > 0.0f ? clamp_int(nearest(mins[j] / dmin), 0, 63) : 0);
    }
    /* pack: the inverse of kiln__get_scale_min_k4 */
    memset(b->scales, 0, sizeof b->scales);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            b->scales[j] |= ls[j];
            b->scales[j + 4] |= lm[j];
        } else {
            b->scales[j + 4] = (uint8_t)((ls[j] & 0x0f) | (lm[j] & 0x0f) << 4);
            b->scales[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            b->scales[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
    /* re-quantize against the coded scales; value 64c + 32n + l goes to
     * nibble n of qs[32c + l] */
    memset(b->qs, 0, sizeof b->qs);
    for (int i = 0; i < KILN_QK_K; i++) {
        const float dl = d * (float)ls[i / 32];
        const float ml = dmin * (float)lm[i / 32];
        const int q = dl > 0.0f ? clamp_int(nearest((x[i] + ml) / dl), 0, 15) : 0;
        const int c = i / 64, n = (i / 32) % 2, l = i % 32;
        b->qs[32 * c + l] |= (uint8_t)(q << (4 * n));
    }
}

/* --- Q6_K ------------------------------------------------------------- */

/* Squared error of coding x[0..n) as s * q with q = nearest in -32..31. */
static float symmetric_error(const float *x, int n, float s) {
    float err = 0.0f;
    for (int i = 0; i < n; i++) {
        const int q = clamp_int(nearest(x[i] / s), -32, 31);
        const float e = s * (float)q - x[i];
        err += e * e;
    }
    return err;
}

/* Scale s (either sign) for x[i] ~ s * q[i], q in -32..31. The value of
 * largest magnitude is aimed at -32, the end of the range with room; the
 * candidates stretch that grid by up to 0.9 steps either way, and each
 * assignment gets the least-squares s = sum(q x) / sum(q^2). */
static float fit_scale_symmetric(const float *x, int n) {
    float amax = 0.0f, vmax = 0.0f;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            vmax = x[i];
        }
    }
    if (amax == 0.0f) return 0.0f;
    float best_s = vmax / -32.0f;
    float best_err = symmetric_error(x, n, best_s);
    for (int k = -9; k <= 9; k++) {
        const float iscale = -(32.0f + 0.1f * (float)k) / vmax;
        double sqx = 0, sqq = 0; /* sums of q*x and q^2 */
        for (int i = 0; i < n; i++) {
            const int q = clamp_int(nearest(iscale * x[i]), -32, 31);
            sqx += (double)q * x[i];
            sqq += (double)q * q;
        }
        if (sqq <= 0 || sqx == 0) continue;
        const float s = (float)(sqx / sqq);
        const float err = symmetric_error(x, n, s);
        if (err < best_err) {
            best_err = err;
            best_s = s;
        }
    }
    return best_s;
}

void kiln__quantize_block_q6_K(const float *x, kiln_block_q6_K *b) {
    float scales[16];
    float smax = 0.0f; /* the sub-block scale of largest magnitude, signed */
    for (int j = 0; j < 16; j++) {
        scales[j] = fit_scale_symmetric(x + 16 * j, 16);
        if (fabsf(scales[j]) > fabsf(smax)) smax = scales[j];
    }
    /* int8 sub-block scales as multiples of the f16 d; smax maps to -128 */
    b->d = kiln__f32_to_f16(smax / -128.0f);
    const float d = kiln__f16_to_f32(b->d);
    for (int j = 0; j < 16; j++)
        b->scales[j] = (int8_t)(d != 0.0f ? clamp_int(nearest(scales[j] / d), -128, 127) : 0);
    /* re-quantize against the coded scales and pack (layout in
     * quant_blocks.h): value 128h + 32k + l -> nibble k / 2 of
     * ql[64h + 32(k % 2) + l] and bits 2k..2k+1 of qh[32h + l] */
    memset(b->ql, 0, sizeof b->ql);
    memset(b->qh, 0, sizeof b->qh);
    for (int i = 0; i < KILN_QK_K; i++) {
        const float dl = d * (float)b->scales[i / 16];
        const int q = dl != 0.0f ? clamp_int(nearest(x[i] / dl), -32, 31) + 32 : 32;
        const int h = i / 128, k = (i / 32) % 4, l = i % 32;
        b->ql[64 * h + 32 * (k % 2) + l] |= (uint8_t)((q & 0x0f) << (4 * (k / 2)));
        b->qh[32 * h + l] |= (uint8_t)((q >> 4) << (2 * k));
    }
}

/* Encode nb consecutive blocks of one type with its block function. */
#define QUANTIZE_BLOCKS(name, qk)                                              \
    do {                                                                       \
        kiln_block_##name *blocks = dst;                                       \
        for (size_t i = 0; i < nb; i++) kiln__quantize_block_##name(src + i * (qk), &blocks[i]); \
    } while (0)

kiln_status kiln__quantize(kiln_dtype type, const float *src, void *dst, size_t n_elems) {
    const char *name = kiln_dtype_name(type);
    const size_t qk = kiln_dtype_block_elems(type);
    if (qk == 0) return kiln__fail(KILN_ERR_UNSUPPORTED, "quantize: unknown type %d", (int)type);
    if (n_elems % qk != 0)
        return kiln__fail(KILN_ERR_INVALID_ARG,
                          "quantize %s: %zu values is not a multiple of the block size %zu", name,
                          n_elems, qk);
    if (n_elems == 0) return KILN_OK;
    if (!src || !dst) return kiln__fail(KILN_ERR_INVALID_ARG, "quantize %s: NULL buffer", name);
    if ((uintptr_t)dst % kiln__dtype_align(type) != 0)
        return kiln__fail(KILN_ERR_INVALID_ARG,
                          "quantize %s: destination not aligned to %zu bytes", name,
                          kiln__dtype_align(type));
    const size_t nb = n_elems / qk; /* number of blocks */
    switch (type) {
    case KILN_DTYPE_F32: memcpy(dst, src, n_elems * sizeof(float)); return KILN_OK;
    case KILN_DTYPE_F16: kiln__f32_to_f16_row(src, dst, n_elems); return KILN_OK;
    case KILN_DTYPE_BF16: {
        uint16_t *h = dst;
        for (size_t i = 0; i < n_elems; i++) h[i] = kiln__f32_to_bf16(src[i]);
        return KILN_OK;
    }
    case KILN_DTYPE_Q4_0: QUANTIZE_BLOCKS(q4_0, KILN_QK); return KILN_OK;
    case KILN_DTYPE_Q8_0: QUANTIZE_BLOCKS(q8_0, KILN_QK); return KILN_OK;
    case KILN_DTYPE_Q8_1: QUANTIZE_BLOCKS(q8_1, KILN_QK); return KILN_OK;
    case KILN_DTYPE_Q4_K: QUANTIZE_BLOCKS(q4_K, KILN_QK_K); return KILN_OK;
    case KILN_DTYPE_Q6_K: QUANTIZE_BLOCKS(q6_K, KILN_QK_K); return KILN_OK;
    case KILN_DTYPE_Q8_K: QUANTIZE_BLOCKS(q8_K, KILN_QK_K); return KILN_OK;
    case KILN_DTYPE_Q4_1:
    case KILN_DTYPE_Q5_0:
    case KILN_DTYPE_Q5_1:
    case KILN_DTYPE_Q2_K:
    case KILN_DTYPE_Q3_K:
    case KILN_DTYPE_Q5_K:
    case KILN_DTYPE_I8:
    case KILN_DTYPE_I16:
    case KILN_DTYPE_I32:
    case KILN_DTYPE_I64:
    case KILN_DTYPE_F64:
    case KILN_DTYPE_U8:
    case KILN_DTYPE_BOOL:
    case KILN_DTYPE_F8_E4M3:
    case KILN_DTYPE_F8_E5M2:
    case KILN_DTYPE_UNKNOWN: break;
    }
    return kiln__fail(KILN_ERR_UNSUPPORTED, "quantize: no encoder for %s", name);
}
