/* src/kernels/matmul_simd.c - kiln__matmul_fast's dispatch and its AVX2
 * path. Quantized weights that qmatmul.h handles go to its integer kernels;
 * BF16 weights, in kiln__matmul_fast, to the vdpbf16ps kernels of
 * gemm_bf16.c where the CPU has AVX512-BF16; F32/F16/BF16 weights otherwise
 * to the AVX-512 kernels of gemm_avx512.c where the CPU has AVX-512; everything else (other types, older CPUs) to the
 * AVX2/FMA/F16C path here, which has the structure of the reference in
 * matmul.c: each thread decodes one weight row at a time and dots it with
 * every activation row. Rows of F16, Q8_0 and Q4_0 are decoded with vector
 * code (each value is the same single-rounded product as the scalar
 * decoder's); other types use the scalar decoder. Dot products run 8 lanes
 * wide with fused multiply-adds, four activation rows per pass over the
 * weight row, so results differ from the reference only in summation
 * order. One token with F32, F16 or BF16 weights (generation) skips the
 * decoded row: four weight rows per pass are widened in registers and
 * share each activation load, with the next four rows prefetched into L2,
 * each row summed in dot1's order (so with the same bits). */
#include <immintrin.h>
#include <stdint.h>

#include "core/cpu.h"
#include "core/error.h"
#include "kernels/gemm_avx512.h"
#include "kernels/gemm_bf16.h"
#include "kernels/matmul.h"
#include "kernels/qmatmul.h"
#include "tensor/dequant.h"
#include "tensor/fp16.h"
#include "tensor/quant_blocks.h"
#include "tensor/tensor.h"

#define SIMD __attribute__((target("avx2,fma,f16c")))

/* What one thread needs (as in matmul.c). */
struct fast_job {
    kiln_dtype wtype;  /* weight element type */
    const char *w;     /* weight bytes, row-major */
    size_t row_bytes;  /* bytes of one weight row */
    size_t n_out;      /* weight rows */
    size_t n_in;       /* values per row (a multiple of 8 here) */
    const float *x;    /* [n_tok][n_in] activations */
    size_t n_tok;      /* activation rows */
    float *y;          /* [n_tok][n_out] results */
    float *scratch;    /* n_threads rows of n_in floats */
};

/* Sum of the 8 lanes. */
SIMD static float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* out[k] = w . x[k] for four activation rows x0..x3. */
SIMD static void dot4(const float *w, const float *x0, const float *x1, const float *x2, const float *x3,
                      size_t n, float *out) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
           a3 = _mm256_setzero_ps();
    for (size_t i = 0; i < n; i += 8) {
        __m256 wv = _mm256_loadu_ps(w + i);
        a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x0 + i), a0);
        a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x1 + i), a1);
        a2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x2 + i), a2);
        a3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x3 + i), a3);
    }
    out[0] = hsum(a0);
    out[1] = hsum(a1);
    out[2] = hsum(a2);
    out[3] = hsum(a3);
}

/* w . x in exactly dot4's order (one accumulator), so a token alone gets
 * the bits it gets inside a batch. */
SIMD static float dot1(const float *w, const float *x, size_t n) {
    __m256 a = _mm256_setzero_ps();
    for (size_t i = 0; i < n; i += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a);
    return hsum(a);
}

/* 8 weights of a float type (F32, F16, BF16) at index i of a row, widened
 * to float32 exactly as the scalar decoder does. */
SIMD static inline __m256 load8(kiln_dtype type, const char *row, size_t i) {
    if (type == KILN_DTYPE_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(row + 2 * i)));
    if (type == KILN_DTYPE_BF16)
        return _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(row + 2 * i))), 16));
    return _mm256_loadu_ps((const float *)(const void *)row + i);
}

/* Rows per pass of the one-token path. */
#define ONE_ROWS 4

/* One token, rows [begin, end) of float-type weights, ONE_ROWS at a time
 * (a short last group repeats its first row and drops the copies): row j's
 * result is dot1 of its decoded row with x, bit for bit. Each step of 8
 * values prefetches the next 8 * ONE_ROWS weights of the next group (whole
 * groups only) into L2. */
SIMD static inline __attribute__((always_inline)) void one_token_rows(kiln_dtype type, const struct fast_job *job,
                                                                      size_t begin, size_t end) {
    const size_t esize = type == KILN_DTYPE_F32 ? 4 : 2, n_in = job->n_in;
    for (size_t j = begin; j < end; j += ONE_ROWS) {
        size_t nr = end - j < ONE_ROWS ? end - j : ONE_ROWS;
        const char *w[ONE_ROWS];
        for (size_t r = 0; r < ONE_ROWS; r++) w[r] = job->w + (j + (r < nr ? r : 0)) * job->row_bytes;
        const char *pf = end - j >= 2 * ONE_ROWS ? job->w + (j + ONE_ROWS) * job->row_bytes : NULL;
        __m256 acc[ONE_ROWS];
        for (int r = 0; r < ONE_ROWS; r++) acc[r] = _mm256_setzero_ps();
        for (size_t i = 0; i < n_in; i += 8) {
            __m256 xv = _mm256_loadu_ps(job->x + i);
            if (pf)
                for (size_t b = 0; b < 8 * ONE_ROWS * esize; b += 64)
                    _mm_prefetch(pf + i * ONE_ROWS * esize + b, _MM_HINT_T1);
            for (int r = 0; r < ONE_ROWS; r++) acc[r] = _mm256_fmadd_ps(load8(type, w[r], i), xv, acc[r]);
        }
        for (size_t r = 0; r < nr; r++) job->y[j + r] = hsum(acc[r]);
    }
}

/* Q8_0 row: y = d * q, 32 values per block. */
SIMD static void decode_q8_0(const kiln_block_q8_0 *b, float *y, size_t n_blocks) {
    for (size_t k = 0; k < n_blocks; k++) {
        __m256 d = _mm256_set1_ps(kiln__f16_to_f32(b[k].d));
        for (int i = 0; i < KILN_QK; i += 8) {
            __m128i q = _mm_loadl_epi64((const __m128i *)(const void *)(b[k].qs + i));
            _mm256_storeu_ps(y + k * KILN_QK + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d));
        }
    }
}

/* Q4_0 row: value j = (low nibble of qs[j] - 8) * d, value j + 16 = (high
 * nibble - 8) * d. */
SIMD static void decode_q4_0(const kiln_block_q4_0 *b, float *y, size_t n_blocks) {
    const __m128i low = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
    for (size_t k = 0; k < n_blocks; k++) {
        __m256 d = _mm256_set1_ps(kiln__f16_to_f32(b[k].d));
        __m128i qs = _mm_loadu_si128((const __m128i *)(const void *)b[k].qs);
        __m128i lo = _mm_sub_epi8(_mm_and_si128(qs, low), eight);
        __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(qs, 4), low), eight);
        float *out = y + k * KILN_QK;
        _mm256_storeu_ps(out, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), d));
        _mm256_storeu_ps(out + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), d));
        _mm256_storeu_ps(out + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), d));
        _mm256_storeu_ps(out + 24, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), d));
    }
}

/* Weight row j as floats: in place for F32, else decoded into row. */
SIMD static const float *decode_row(const struct fast_job *job, size_t j, float *row) {
    const void *src = job->w + j * job->row_bytes;
    switch (job->wtype) {
    case KILN_DTYPE_F32: return src;
    case KILN_DTYPE_F16: kiln__f16_to_f32_row(src, row, job->n_in); return row;
    case KILN_DTYPE_Q8_0: decode_q8_0(src, row, job->n_in / KILN_QK); return row;
    case KILN_DTYPE_Q4_0: decode_q4_0(src, row, job->n_in / KILN_QK); return row;
    case KILN_DTYPE_BF16: case KILN_DTYPE_Q4_1: case KILN_DTYPE_Q5_0: case KILN_DTYPE_Q5_1:
    case KILN_DTYPE_Q8_1: case KILN_DTYPE_Q2_K: case KILN_DTYPE_Q3_K: case KILN_DTYPE_Q4_K:
    case KILN_DTYPE_Q5_K: case KILN_DTYPE_Q6_K: case KILN_DTYPE_Q8_K: case KILN_DTYPE_I8:
    case KILN_DTYPE_I16: case KILN_DTYPE_I32: case KILN_DTYPE_I64: case KILN_DTYPE_F64:
    case KILN_DTYPE_U8: case KILN_DTYPE_BOOL: case KILN_DTYPE_F8_E4M3: case KILN_DTYPE_F8_E5M2:
    case KILN_DTYPE_UNKNOWN:
        break;
    }
    /* Cannot fail: the type and row length were checked by kiln__matmul_fast. */
    kiln__dequantize(job->wtype, src, row, job->n_in);
    return row;
}

SIMD static void fast_part(void *ctx, int ith, int nth) {
    const struct fast_job *job = ctx;
    size_t per = (job->n_out + (size_t)nth - 1) / (size_t)nth;
    size_t begin = per * (size_t)ith;
    size_t end = begin + per < job->n_out ? begin + per : job->n_out;
    float *row = job->scratch + (size_t)ith * job->n_in;
    size_t n_in = job->n_in, n_out = job->n_out;
    if (job->n_tok == 1 && (job->wtype == KILN_DTYPE_F16 || job->wtype == KILN_DTYPE_BF16 ||
                            job->wtype == KILN_DTYPE_F32)) {
        /* one call per type, so the type folds into the loop */
        if (job->wtype == KILN_DTYPE_F16) one_token_rows(KILN_DTYPE_F16, job, begin, end);
        else if (job->wtype == KILN_DTYPE_BF16) one_token_rows(KILN_DTYPE_BF16, job, begin, end);
        else one_token_rows(KILN_DTYPE_F32, job, begin, end);
        return;
    }
    for (size_t j = begin; j < end; j++) {
        const float *w = decode_row(job, j, row);
        size_t t = 0;
        for (; t + 4 <= job->n_tok; t += 4) {
            float s[4];
            const float *x = job->x + t * n_in;
            dot4(w, x, x + n_in, x + 2 * n_in, x + 3 * n_in, n_in, s);
            for (int k = 0; k < 4; k++) job->y[(t + (size_t)k) * n_out + j] = s[k];
        }
        for (; t < job->n_tok; t++) job->y[t * n_out + j] = dot1(w, job->x + t * n_in, n_in);
    }
}

int kiln__matmul_fast_available(void) {
    const kiln_cpu_features *f = kiln__cpu();
    return f->avx2 && f->fma && f->f16c;
}

kiln_status kiln__matmul_fast(kiln_pool *pool, kiln_dtype wtype, const void *w, size_t n_out,
                              size_t n_in, const float *x, size_t n_tok, float *y, float *scratch) {
    /* quantized weights: integer kernels on quantized activations (qmatmul.h) */
    if (kiln__qmatmul_takes(wtype, n_in))
        return kiln__qmatmul(pool, wtype, w, n_out, n_in, x, n_tok, y);
    /* BF16 weights: vdpbf16ps on activations rounded to bf16 (gemm_bf16.h) */
    if (wtype == KILN_DTYPE_BF16 && n_in > 0 && kiln__gemm_bf16_usable())
        return kiln__gemm_bf16(pool, wtype, w, n_out, n_in, x, n_tok, y);
    return kiln__matmul_fast_float(pool, wtype, w, n_out, n_in, x, n_tok, y, scratch);
}

kiln_status kiln__matmul_fast_f16_as_bf16(kiln_pool *pool, kiln_dtype wtype, const void *w, size_t n_out,
                                          size_t n_in, const float *x, size_t n_tok, float *y, float *scratch) {
    if (wtype == KILN_DTYPE_F16 && n_in > 0 && kiln__gemm_bf16_usable())
        return kiln__gemm_bf16(pool, wtype, w, n_out, n_in, x, n_tok, y);
    return kiln__matmul_fast(pool, wtype, w, n_out, n_in, x, n_tok, y, scratch);
}

kiln_status kiln__matmul_fast_float(kiln_pool *pool, kiln_dtype wtype, const void *w, size_t n_out,
                                    size_t n_in, const float *x, size_t n_tok, float *y, float *scratch) {
    if (n_in > 0 && kiln__gemm_avx512_usable(wtype)) {
        kiln__gemm_avx512(pool, wtype, w, n_out, n_in, x, n_tok, y);
        return KILN_OK;
    }
    if (!kiln__matmul_fast_available() || n_in % 8 != 0)
        return kiln__matmul(pool, wtype, w, n_out, n_in, x, n_tok, y, scratch);
    if (!kiln__matmul_supports(wtype))
        return kiln__fail(KILN_ERR_UNSUPPORTED, "matmul: weights of type %s", kiln_dtype_name(wtype));
    size_t row_bytes = kiln__tensor_bytes(wtype, n_in);
    if (row_bytes == 0)
        return kiln__fail(KILN_ERR_INVALID_ARG, "matmul: row of %zu values is not whole %s blocks",
                          n_in, kiln_dtype_name(wtype));
    struct fast_job job = {wtype, w, row_bytes, n_out, n_in, x, n_tok, y, scratch};
    kiln__pool_run(pool, fast_part, &job);
    return KILN_OK;
}
