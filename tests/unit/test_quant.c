/* tests/unit/test_quant.c - tensor element types: f16/bf16 conversion, GGUF
 * block decoding and the reference quantizers.
 *
 * Expected values come from tests/data/quant/, made by
 * tools/make_quant_goldens.py with gguf-py (an independent implementation of
 * the GGUF block formats) and numpy. Decoding must match them bit for bit:
 * kiln performs the same float operations in the same order (one rounding
 * each, no FMA), so there is no reason for even a 1-ulp difference. NaNs are
 * compared as "is NaN" only, since payload handling of signalling NaNs
 * differs between numpy's software and hardware conversions.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kiln/kiln.h"
#include "tensor/dequant.h"
#include "tensor/fp16.h"
#include "tensor/quant_blocks.h"
#include "tensor/quantize.h"
#include "tensor/tensor.h"
#include "test.h"

#define GOLDEN_DIR KILN_SOURCE_DIR "/tests/data/quant/"

/* Whole file into a malloc'd buffer (malloc's alignment suits every block
 * type); NULL when it cannot be read. */
static unsigned char *read_file(const char *name, size_t *len) {
    char path[512];
    snprintf(path, sizeof path, GOLDEN_DIR "%s", name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n > 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n))) {
            if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
            } else {
                *len = (size_t)n;
            }
        }
    }
    fclose(f);
    return buf;
}

/* Bitwise float equality, with any NaN equal to any NaN. */
static int same_float(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return kiln__f32_bits(a) == kiln__f32_bits(b);
}

/* Every decodable type against gguf-py's decoding of the same bytes. */
static void test_dequant_matches_gguf_py(void) {
    static const kiln_dtype types[] = {
        KILN_DTYPE_F16,  KILN_DTYPE_BF16, KILN_DTYPE_Q4_0, KILN_DTYPE_Q4_1, KILN_DTYPE_Q5_0,
        KILN_DTYPE_Q5_1, KILN_DTYPE_Q8_0, KILN_DTYPE_Q8_1, KILN_DTYPE_Q2_K, KILN_DTYPE_Q3_K,
        KILN_DTYPE_Q4_K, KILN_DTYPE_Q5_K, KILN_DTYPE_Q6_K, KILN_DTYPE_Q8_K,
    };
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const char *name = kiln_dtype_name(types[t]);
        char fname[64];
        size_t src_len = 0, exp_len = 0;
        snprintf(fname, sizeof fname, "dequant_%s.bin", name);
        unsigned char *src = read_file(fname, &src_len);
        snprintf(fname, sizeof fname, "dequant_%s.f32", name);
        float *expected = (float *)read_file(fname, &exp_len);
        CHECK(src != NULL && expected != NULL);
        if (src && expected) {
            size_t n = exp_len / sizeof(float);
            CHECK_EQ_INT(kiln__tensor_bytes(types[t], n), src_len);
            float *out = malloc(exp_len);
            REQUIRE(out != NULL);
            CHECK_EQ_INT(kiln__dequantize(types[t], src, out, n), KILN_OK);
            size_t bad = 0;
            for (size_t i = 0; i < n; i++) {
                if (!same_float(out[i], expected[i]) && bad++ < 3)
                    TEST_FAIL_AT_("%s value %zu: %.9g, gguf-py %.9g", name, i, out[i],
                                  expected[i]);
            }
            CHECK_EQ_INT(bad, 0);
            free(out);
        }
        free(src);
        free(expected);
    }
}

/* F16, BF16, Q4_0, Q8_0 encoders against gguf-py / numpy, byte for byte
 * (F16/BF16: a NaN must give a NaN). */
static void test_quantize_matches_gguf_py(void) {
    static const kiln_dtype types[] = {KILN_DTYPE_F16, KILN_DTYPE_BF16, KILN_DTYPE_Q4_0,
                                       KILN_DTYPE_Q8_0};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const char *name = kiln_dtype_name(types[t]);
        char fname[64];
        size_t in_len = 0, exp_len = 0;
        snprintf(fname, sizeof fname, "quantize_%s.f32", name);
        float *in = (float *)read_file(fname, &in_len);
        snprintf(fname, sizeof fname, "quantize_%s.bin", name);
        unsigned char *expected = read_file(fname, &exp_len);
        CHECK(in != NULL && expected != NULL);
        if (in && expected) {
            size_t n = in_len / sizeof(float);
            REQUIRE(kiln__tensor_bytes(types[t], n) == exp_len);
            unsigned char *out = malloc(exp_len);
            REQUIRE(out != NULL);
            CHECK_EQ_INT(kiln__quantize(types[t], in, out, n), KILN_OK);
            size_t bad = 0;
            if (types[t] == KILN_DTYPE_F16 || types[t] == KILN_DTYPE_BF16) {
                const int is_f16 = types[t] == KILN_DTYPE_F16;
                for (size_t i = 0; i < n; i++) {
                    uint16_t got, want;
                    memcpy(&got, out + 2 * i, 2);
                    memcpy(&want, expected + 2 * i, 2);
                    /* the scalar reference must agree with the row path */
                    uint16_t scalar = is_f16 ? kiln__f32_to_f16(in[i]) : kiln__f32_to_bf16(in[i]);
                    float fg = is_f16 ? kiln__f16_to_f32(got) : kiln__bf16_to_f32(got);
                    float fw = is_f16 ? kiln__f16_to_f32(want) : kiln__bf16_to_f32(want);
                    int ok = isnan(fw) ? isnan(fg) : got == want;
                    if ((!ok || scalar != got) && bad++ < 3)
                        TEST_FAIL_AT_("%s of %.9g (0x%08x): 0x%04x (scalar 0x%04x), want 0x%04x",
                                      name, in[i], (unsigned)kiln__f32_bits(in[i]), got, scalar,
                                      want);
                }
            } else {
                size_t bb = kiln_dtype_block_bytes(types[t]);
                for (size_t b = 0; b < exp_len / bb; b++)
                    if (memcmp(out + b * bb, expected + b * bb, bb) != 0 && bad++ < 3)
                        TEST_FAIL_AT_("%s block %zu differs from gguf-py", name, b);
            }
            CHECK_EQ_INT(bad, 0);
            free(out);
        }
        free(in);
        free(expected);
    }
}

/* Q8_1 shares Q8_0's d and quants (ggml defines them the same way); s is
 * d * sum(q) rounded to f16. Checked on the Q8_0 golden input and output. */
static void test_q8_1_agrees_with_q8_0_golden(void) {
    size_t in_len = 0, exp_len = 0;
    float *in = (float *)read_file("quantize_Q8_0.f32", &in_len);
    kiln_block_q8_0 *want = (kiln_block_q8_0 *)read_file("quantize_Q8_0.bin", &exp_len);
    size_t nb = in_len / sizeof(float) / KILN_QK;
    kiln_block_q8_1 *got = malloc(nb * sizeof *got);
    if (in && want && got && exp_len == nb * sizeof *want) {
        CHECK_EQ_INT(kiln__quantize(KILN_DTYPE_Q8_1, in, got, nb * KILN_QK), KILN_OK);
        for (size_t b = 0; b < nb; b++) {
            CHECK_EQ_INT(got[b].d, want[b].d);
            CHECK(memcmp(got[b].qs, want[b].qs, KILN_QK) == 0);
            int sum = 0;
            for (int j = 0; j < KILN_QK; j++) sum += want[b].qs[j];
            /* s = f16(d * sum) with ggml's unrounded d, which lies within
             * half an f16 step of the stored d; the final rounding adds half
             * a step of s. Half a step of v is at most max(|v| 2^-11, 2^-25)
             * (2^-25: half the f16 subnormal spacing). */
            double d16 = kiln__f16_to_f32(want[b].d), s16 = kiln__f16_to_f32(got[b].s);
            double s_ref = d16 * sum;
            double tol = fabs((double)sum) * fmax(d16 * 0x1p-11, 0x1p-25) +
                         fmax(fabs(s16) * 0x1p-11, 0x1p-25);
            if (!(fabs(s16 - s_ref) <= tol))
                TEST_FAIL_AT_("block %zu: s %.9g, d * sum %.9g", b, s16, s_ref);
        }
    } else {
        CHECK(!"golden files missing or allocation failed");
    }
    free(in);
    free(want);
    free(got);
}

/* f16 value of the bits h computed independently with ldexp. */
static double f16_oracle(uint16_t h) {
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}

/* All 65536 f16 values: decode exactly, re-encode to the same bits, and the
 * row (F16C when present) path agrees with the scalar one. */
static void test_f16_all_values(void) {
    static uint16_t h[65536 + 3], back[65536 + 3];
    static float f[65536 + 3];
    size_t bad = 0;
    for (uint32_t i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    h[65536] = 0x3c00, h[65537] = 0x0001, h[65538] = 0xfbff; /* odd length: a scalar tail */
    kiln__f16_to_f32_row(h, f, 65539);
    for (uint32_t i = 0; i < 65539; i++) {
        float s = kiln__f16_to_f32(h[i]);
        double o = f16_oracle(h[i]);
        int ok = isnan(o) ? isnan(s) && (kiln__f32_bits(s) & 0x400000u) /* quiet */
                          : (double)s == o && !signbit(s) == !signbit(o);
        ok = ok && kiln__f32_bits(s) == kiln__f32_bits(f[i]);
        if (!ok && bad++ < 3)
            TEST_FAIL_AT_("f16 0x%04x -> %.9g (row %.9g), want %.9g", h[i], s, f[i], o);
    }
    kiln__f32_to_f16_row(f, back, 65539);
    for (uint32_t i = 0; i < 65539; i++) {
        uint16_t s = kiln__f32_to_f16(f[i]);
        int nan = ((h[i] >> 10) & 0x1f) == 0x1f && (h[i] & 0x3ff);
        /* a NaN comes back as the same NaN with the quiet bit set */
        uint16_t want = nan ? (uint16_t)(h[i] | 0x200) : h[i];
        if ((s != want || back[i] != want) && bad++ < 3)
            TEST_FAIL_AT_("f16 0x%04x -> f32 -> 0x%04x (row 0x%04x)", h[i], s, back[i]);
    }
    CHECK_EQ_INT(bad, 0);
}

/* Random f32 bit patterns (all exponents, NaNs included): row and scalar
 * f32 -> f16 agree, and the result is the nearest f16 (checked in double). */
static void test_f32_to_f16_random(void) {
    enum { N = 100003 };
    static float x[N];
    static uint16_t row[N];
    uint64_t s = 0x1234567;
    for (int i = 0; i < N; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = kiln__f32_from_bits((uint32_t)(s >> 32));
    }
    kiln__f32_to_f16_row(x, row, N);
    size_t bad = 0;
    for (int i = 0; i < N; i++) {
        uint16_t h = kiln__f32_to_f16(x[i]);
        int ok = h == row[i];
        if (!isnan(x[i])) {
            /* nearest: no f16 neighbour is closer; ties go to the even one */
            double v = x[i], got = f16_oracle(h);
            double err = fabs(got - v);
            if (!isinf(got)) {
                double up = f16_oracle((uint16_t)(h + 1)), dn = f16_oracle((uint16_t)(h - 1));
                if ((h & 0x7fff) != 0x7bff && !isnan(up)) ok = ok && err <= fabs(up - v);
                if ((h & 0x7fff) != 0) ok = ok && err <= fabs(dn - v);
                if (err == fabs(up - v) || ((h & 0x7fff) && err == fabs(dn - v)))
                    ok = ok && !(h & 1);
            } else {
                ok = ok && fabs(v) >= 65520.0;
            }
        } else {
            ok = ok && (h & 0x7e00) == 0x7e00;
        }
        if (!ok && bad++ < 3)
            TEST_FAIL_AT_("f32 0x%08x -> 0x%04x (row 0x%04x)", (unsigned)kiln__f32_bits(x[i]), h,
                          row[i]);
    }
    CHECK_EQ_INT(bad, 0);
}

/* Deterministic standard normal values (splitmix64 + Box-Muller). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double rng_uniform(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) * 0x1p-53;
}
static float rng_normal(void) {
    return (float)(sqrt(-2.0 * log(rng_uniform())) * cos(6.283185307179586 * rng_uniform()));
}

/* Quantize n values, decode them, and return rmse / rms of the input. */
static double roundtrip_rel_rmse(kiln_dtype type, const float *x, size_t n) {
    size_t bytes = kiln__tensor_bytes(type, n);
    void *q = malloc(bytes);
    float *y = malloc(n * sizeof *y);
    double err = 0, ref = 0;
    if (q && y && kiln__quantize(type, x, q, n) == KILN_OK &&
        kiln__dequantize(type, q, y, n) == KILN_OK) {
        for (size_t i = 0; i < n; i++) {
            err += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
            ref += (double)x[i] * x[i];
        }
    } else {
        err = INFINITY;
        ref = 1;
    }
    free(q);
    free(y);
    return sqrt(err / ref);
}

/* Q4_K, Q6_K, Q8_K round trips on Gaussian rows whose scale and offset vary
 * per super-block. The bounds sit a little above what these quantizers
 * reach (printed), and well below what a mis-packed nibble, a wrong scale
 * or a lost min would give (tens of percent). For scale: a uniform
 * quantizer with step D has rmse D / sqrt(12). Q4_K spreads 16 levels over
 * the range of 32 Gaussian values (about 4 sigma): ~7.7% of sigma before
 * its search; Q6_K 64 levels over 16 values (about +-1.8 sigma): ~1.6%;
 * Q8_K 255 levels over the +-2.9 sigma of 256 values: ~0.66%; Q8_0 over
 * the +-2 sigma of 32 values: ~0.46% plus the f16 rounding of d. */
static void test_k_quant_roundtrip(void) {
    enum { NB = 64, N = NB * KILN_QK_K };
    static float x[N];
    for (int b = 0; b < NB; b++) {
        float scale = (float)exp2(rng_uniform() * 16.0 - 8.0);
        float shift = b % 2 ? scale * (float)(rng_uniform() - 0.5) : 0.0f;
        for (int i = 0; i < KILN_QK_K; i++) x[b * KILN_QK_K + i] = scale * rng_normal() + shift;
    }
    double q4k = roundtrip_rel_rmse(KILN_DTYPE_Q4_K, x, N);
    double q6k = roundtrip_rel_rmse(KILN_DTYPE_Q6_K, x, N);
    double q8k = roundtrip_rel_rmse(KILN_DTYPE_Q8_K, x, N);
    double q40 = roundtrip_rel_rmse(KILN_DTYPE_Q4_0, x, N);
    double q80 = roundtrip_rel_rmse(KILN_DTYPE_Q8_0, x, N);
    fprintf(stderr, "  rmse/rms: Q4_K %.4f  Q6_K %.4f  Q8_K %.5f  Q4_0 %.4f  Q8_0 %.5f\n", q4k,
            q6k, q8k, q40, q80);
    CHECK(q4k < 0.075);
    CHECK(q6k < 0.018);
    CHECK(q8k < 0.0072);
    CHECK(q40 < 0.090);
    CHECK(q80 < 0.0056);
    /* Q4_K beats Q4_0 at the same bits per weight (4.5): it fits an offset
     * and searches its scales */
    CHECK(q4k < q40);
}

/* Special rows: zeros decode to zeros; a constant row is exact in the
 * affine/scaled types; Q8_K's bsums are the sums of its quants and every
 * value is within half a step. */
static void test_quantize_special_rows(void) {
    static float x[KILN_QK_K], y[KILN_QK_K];
    static kiln_block_q4_K b4;
    static kiln_block_q6_K b6;
    static kiln_block_q8_K b8;
    memset(x, 0, sizeof x);
    kiln__quantize_block_q4_K(x, &b4);
    kiln__dequant_block_q4_K(&b4, y);
    for (int i = 0; i < KILN_QK_K; i++) CHECK(y[i] == 0.0f);
    kiln__quantize_block_q6_K(x, &b6);
    kiln__dequant_block_q6_K(&b6, y);
    for (int i = 0; i < KILN_QK_K; i++) CHECK(y[i] == 0.0f);
    kiln__quantize_block_q8_K(x, &b8);
    kiln__dequant_block_q8_K(&b8, y);
    for (int i = 0; i < KILN_QK_K; i++) CHECK(y[i] == 0.0f);
    for (int g = 0; g < 16; g++) CHECK(b8.bsums[g] == 0);

    /* -0.75 is exact as a min (6-bit 48 of dmin = 0.75/63 is not exact, so
     * allow f16 rounding) */
    for (int i = 0; i < KILN_QK_K; i++) x[i] = -0.75f;
    kiln__quantize_block_q4_K(x, &b4);
    kiln__dequant_block_q4_K(&b4, y);
    for (int i = 0; i < KILN_QK_K; i++) CHECK_NEAR(y[i], -0.75, 1e-3);

    for (int i = 0; i < KILN_QK_K; i++) x[i] = rng_normal() * 3.0f;
    kiln__quantize_block_q8_K(x, &b8);
    kiln__dequant_block_q8_K(&b8, y);
    for (int g = 0; g < 16; g++) {
        int sum = 0;
        for (int j = 0; j < 16; j++) sum += b8.qs[16 * g + j];
        CHECK_EQ_INT(b8.bsums[g], sum);
    }
    for (int i = 0; i < KILN_QK_K; i++)
        CHECK(fabs((double)y[i] - x[i]) <= fabs((double)b8.d) * 0.5001);
}

/* Decoding the blocks Q4_K/Q6_K produce reaches every quant level: a check
 * that the packing covers all bits (a dropped high bit would cap them). */
static void test_k_quant_levels_used(void) {
    static float x[KILN_QK_K];
    static kiln_block_q6_K b6;
    static kiln_block_q4_K b4;
    int seen6[64] = {0}, seen4[16] = {0};
    for (int rep = 0; rep < 8; rep++) {
        for (int i = 0; i < KILN_QK_K; i++) x[i] = (float)(rng_uniform() * 2.0 - 1.0);
        kiln__quantize_block_q6_K(x, &b6);
        kiln__quantize_block_q4_K(x, &b4);
        for (int i = 0; i < KILN_QK_K; i++) {
            int h = i / 128, k = (i / 32) % 4, l = i % 32;
            int lo = (b6.ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 15;
            seen6[lo | ((b6.qh[32 * h + l] >> (2 * k)) & 3) << 4] = 1;
            seen4[(b4.qs[32 * (i / 64) + l] >> (4 * ((i / 32) % 2))) & 15] = 1;
        }
    }
    for (int q = 0; q < 64; q++) CHECK(seen6[q] || q == 63 || q == 0);
    for (int q = 0; q < 16; q++) CHECK(seen4[q]);
}

/* NaN and infinity in the input must not reach undefined float-to-int
 * conversions (UBSan checks this in the sanitizer build); the blocks are
 * still produced and the finite second half of the row is unaffected. */
static void test_quantize_non_finite_input(void) {
    static const kiln_dtype types[] = {KILN_DTYPE_Q4_0, KILN_DTYPE_Q8_0, KILN_DTYPE_Q8_1,
                                       KILN_DTYPE_Q4_K, KILN_DTYPE_Q6_K, KILN_DTYPE_Q8_K,
                                       KILN_DTYPE_F16,  KILN_DTYPE_BF16};
    static float x[2 * KILN_QK_K], y[2 * KILN_QK_K];
    static float blocks[2 * KILN_QK_K]; /* room for 512 values of any type listed */
    for (int i = 0; i < 2 * KILN_QK_K; i++) x[i] = rng_normal();
    x[3] = NAN;
    x[40] = INFINITY;
    x[100] = -INFINITY;
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        CHECK_EQ_INT(kiln__quantize(types[t], x, blocks, 2 * KILN_QK_K), KILN_OK);
        CHECK_EQ_INT(kiln__dequantize(types[t], blocks, y, 2 * KILN_QK_K), KILN_OK);
        for (int i = KILN_QK_K; i < 2 * KILN_QK_K; i++) CHECK_NEAR(y[i], x[i], 0.5);
    }
}

static void test_sizes_and_bad_arguments(void) {
    CHECK_EQ_INT(kiln__tensor_bytes(KILN_DTYPE_Q4_K, 512), 288);
    CHECK_EQ_INT(kiln__tensor_bytes(KILN_DTYPE_Q4_0, 64), 36);
    CHECK_EQ_INT(kiln__tensor_bytes(KILN_DTYPE_F16, 3), 6);
    CHECK_EQ_INT(kiln__tensor_bytes(KILN_DTYPE_Q6_K, 100), 0);
    CHECK_EQ_INT(kiln__tensor_bytes(KILN_DTYPE_UNKNOWN, 1), 0);
    CHECK_EQ_INT(kiln__tensor_bytes(KILN_DTYPE_I64, SIZE_MAX / 4), 0); /* overflows */
    CHECK_EQ_INT(kiln__dtype_align(KILN_DTYPE_Q8_K), 4);
    CHECK_EQ_INT(kiln__dtype_align(KILN_DTYPE_Q4_K), 2);

    static float buf[2 * KILN_QK_K];
    static kiln_block_q4_K blocks[2];
    kiln__clear_error();
    CHECK_EQ_INT(kiln__dequantize(KILN_DTYPE_Q4_K, blocks, buf, 100), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "not a multiple of the block size 256");
    CHECK_EQ_INT(kiln__quantize(KILN_DTYPE_Q4_0, buf, blocks, 33), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "Q4_0");
    CHECK_EQ_INT(kiln__dequantize(KILN_DTYPE_I8, blocks, buf, 4), KILN_ERR_UNSUPPORTED);
    CHECK_CONTAINS(kiln_last_error(), "I8");
    CHECK_EQ_INT(kiln__dequantize(KILN_DTYPE_UNKNOWN, blocks, buf, 4), KILN_ERR_UNSUPPORTED);
    CHECK_EQ_INT(kiln__quantize(KILN_DTYPE_Q5_K, buf, blocks, 256), KILN_ERR_UNSUPPORTED);
    CHECK_EQ_INT(kiln__dequantize(KILN_DTYPE_Q4_K, NULL, buf, 256), KILN_ERR_INVALID_ARG);
    /* misaligned: Q8_K needs 4-byte alignment, f16 data 2 */
    CHECK_EQ_INT(kiln__dequantize(KILN_DTYPE_Q8_K, (const char *)blocks + 2, buf, 256),
                 KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "aligned");
    CHECK_EQ_INT(kiln__quantize(KILN_DTYPE_F16, buf, (char *)blocks + 1, 4), KILN_ERR_INVALID_ARG);
    CHECK_EQ_INT(kiln__dequantize(KILN_DTYPE_Q4_K, NULL, NULL, 0), KILN_OK);
}

int main(void) {
    RUN(test_dequant_matches_gguf_py);
    RUN(test_quantize_matches_gguf_py);
    RUN(test_q8_1_agrees_with_q8_0_golden);
    RUN(test_f16_all_values);
    RUN(test_f32_to_f16_random);
    RUN(test_k_quant_roundtrip);
    RUN(test_quantize_special_rows);
    RUN(test_k_quant_levels_used);
    RUN(test_quantize_non_finite_input);
    RUN(test_sizes_and_bad_arguments);
    return TEST_REPORT();
}
