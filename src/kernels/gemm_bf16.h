/* src/kernels/gemm_bf16.h - BF16 weights times activations rounded to
 * BF16, with AVX512-BF16's vdpbf16ps (internal; kiln__matmul_fast calls it
 * for BF16 weights where the CPU has the instruction, and
 * kiln__matmul_fast_f16_as_bf16 for F16 weights rounded to BF16 too).
 *
 * Meaning: y[t][j] = sum_i w[j][i] * bf16(x[t][i]), where bf16() rounds to
 * nearest, ties to even (kiln__f32_to_bf16, as llama.cpp rounds the
 * activations of BF16 models); the weights are used exactly. Each product
 * of two bfloat16 values is exact in float32; the sums are float32 in the
 * order below, with vdpbf16ps's own rounding of its pair sums and bfloat16
 * denormal inputs read as 0. Against the exact float product of the
 * weights and the unrounded activations the error is that of the rounding,
 * at most 2^-8 * sum |w x| (plus float32 summation error).
 *
 * Summation contract, the same for one token and for any batch on any
 * thread count: n_in is cut into blocks of kiln__bf16_block(n_in) values
 * (the last may be shorter); in a block,
 * lane l of a 16-lane accumulator sums the pairs (i, i + 1), i = 2m, for
 * m = l mod 16 in increasing m; the 16 lanes are added by the fixed tree of
 * kiln__avx512_reduce16 and the block sums added to the result in order.
 * So a token gets the same bits alone or in a batch.
 */
#ifndef KILN_KERNELS_GEMM_BF16_H
#define KILN_KERNELS_GEMM_BF16_H

#include <stddef.h>

#include "core/threadpool.h"
#include "kiln/dtype.h"
#include "kiln/status.h"
#include "kernels/sum_blocks.h"

/* Most values of n_in per partial sum (a multiple of 32). */
#define KILN_BF16_KC_MAX 3072

/* Values per partial sum for rows of n_in (kiln__sum_block with steps of
 * 32). On the Zen 4 development machine `bench/fmatmul_bench BF16 -t 1
 * -n 512` gave 201-206 GFLOP/s against 184-188 with fixed blocks of 1024
 * (runs alternated). */
static inline size_t kiln__bf16_block(size_t n_in) { return kiln__sum_block(n_in, KILN_BF16_KC_MAX, 32); }

/* True when this CPU has AVX-512 F, BW, VL and BF16. */
int kiln__gemm_bf16_usable(void);

/* y[t][j] = sum_i w[j][i] * bf16(x[t][i]) (see above): w row-major
 * [n_out][n_in] of wtype, x [n_tok][n_in], y [n_tok][n_out] (not
 * overlapping x). Any n_in >= 1. Only call when kiln__gemm_bf16_usable().
 * wtype is KILN_DTYPE_BF16, or KILN_DTYPE_F16 for the lossy F16-as-BF16
 * mode: each weight is first rounded to bfloat16 too (nearest even), which
 * moves results by up to another 2^-8 of sum |w x| (never the default: the
 * caller opts in). Allocates the rounded activations (and for F16 weights
 * and several tokens a 128 KiB panel per thread): KILN_ERR_OUT_OF_MEMORY
 * when that fails, else KILN_OK. */
kiln_status kiln__gemm_bf16(kiln_pool *pool, kiln_dtype wtype, const void *w, size_t n_out, size_t n_in,
                            const float *x, size_t n_tok, float *y);

/* The same meaning computed one value at a time in double precision (the
 * reference the tests compare with): rounds x, and F16 weights, as above;
 * any CPU. */
void kiln__gemm_bf16_ref(kiln_dtype wtype, const void *w, size_t n_out, size_t n_in, const float *x, size_t n_tok,
                         float *y);

#endif /* KILN_KERNELS_GEMM_BF16_H */
