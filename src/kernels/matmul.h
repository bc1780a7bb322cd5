/* src/kernels/matmul.h - weight matrix times activations (internal).
 *
 * Weights are row-major [n_out][n_in] in any dtype kiln can decode (F32,
 * F16, BF16, the GGUF block types); activations and results are float32.
 * This is the reference path: each thread decodes one weight row at a time
 * into its scratch row and dots it with every activation row, so a prompt
 * of n_tok tokens reads the weights once.
 */
#ifndef KILN_KERNELS_MATMUL_H
#define KILN_KERNELS_MATMUL_H

#include <stddef.h>

#include "core/threadpool.h"
#include "kiln/dtype.h"
#include "kiln/status.h"

/* y[t][j] = sum_i w[j][i] * x[t][i] for t < n_tok, j < n_out.
 * x is [n_tok][n_in], y is [n_tok][n_out] (must not overlap x). scratch holds
 * kiln__pool_size(pool) * n_in floats (owned by the caller, reused across
 * calls). n_in must be a multiple of the weight type's block size.
 * Returns KILN_ERR_UNSUPPORTED for a type that cannot be decoded. */
kiln_status kiln__matmul(kiln_pool *pool, kiln_dtype wtype, const void *w, size_t n_out,
                         size_t n_in, const float *x, size_t n_tok, float *y, float *scratch);

/* True when kiln__matmul accepts weights of this type. */
int kiln__matmul_supports(kiln_dtype wtype);

/* The same product with the fastest code the CPU runs. Same arguments,
 * same errors. Weights that kiln__qmatmul_supports (Q8_0, Q4_0, Q4_K, Q6_K)
 * go, on CPUs with AVX2, to the integer kernels of qmatmul.h: activations
 * quantized to 8 bits, so results differ from kiln__matmul's by that
 * rounding (see qmatmul.h; scratch is then unused). BF16 weights go, on
 * CPUs with AVX512-BF16, to kiln__gemm_bf16 (gemm_bf16.h): activations
 * rounded to bfloat16, products by vdpbf16ps, relative error at most 2^-8
 * of sum |w x| against the float path. Every other type takes
 * kiln__matmul_fast_float. */
kiln_status kiln__matmul_fast(kiln_pool *pool, kiln_dtype wtype, const void *w, size_t n_out,
                              size_t n_in, const float *x, size_t n_tok, float *y, float *scratch);
/* kiln__matmul_fast, except that F16 weights also go to kiln__gemm_bf16
 * where the CPU has AVX512-BF16: weights and activations rounded to
 * bfloat16 (nearest even), about twice the multiply-adds per second of the
 * float path, results within 2^-7 of sum |w x| of it (gemm_bf16.h). The
 * opt-in lossy F16-as-BF16 mode: never the default. */
kiln_status kiln__matmul_fast_f16_as_bf16(kiln_pool *pool, kiln_dtype wtype, const void *w, size_t n_out,
                                          size_t n_in, const float *x, size_t n_tok, float *y, float *scratch);
/* The float path for every type: F32/F16/BF16 weights with AVX-512
 * (gemm_avx512.c, any n_in, scratch unused), other types and CPUs with
 * AVX2 + FMA + F16C (matmul_simd.c, weight rows decoded to f32 except
 * F32/F16/BF16 rows for one token, read in place; n_in a multiple of 8),
 * else kiln__matmul. The results differ from kiln__matmul's
 * only in summation order, and do not depend on n_tok or the thread count
 * (a token alone gets the bits it gets in a batch). */
kiln_status kiln__matmul_fast_float(kiln_pool *pool, kiln_dtype wtype, const void *w, size_t n_out,
                                    size_t n_in, const float *x, size_t n_tok, float *y, float *scratch);
/* True when kiln__matmul_fast has a vector path on this CPU. */
int kiln__matmul_fast_available(void);

#endif /* KILN_KERNELS_MATMUL_H */
