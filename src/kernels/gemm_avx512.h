/* src/kernels/gemm_avx512.h - the AVX-512 product of float weights (F32,
 * F16, BF16) with float32 activations (internal; kiln__matmul_fast calls it).
 *
 * Summation contract, the same for one token and for a prompt of any size,
 * on any thread count: n_in is cut into blocks of kiln__gemm_block(n_in)
 * values (the last may be shorter); in a
 * block, lane l of a 16-lane accumulator sums w[i] * x[i] for i = l mod 16
 * in increasing i with fused multiply-adds; the block's 16 lanes are then
 * added by a fixed tree, and the blocks' sums are added to the result in
 * block order. So y[t][j] has the same bits whether token t comes alone or
 * in a batch, and whichever thread computes it.
 */
#ifndef KILN_KERNELS_GEMM_AVX512_H
#define KILN_KERNELS_GEMM_AVX512_H

#include <stddef.h>

#include "core/threadpool.h"
#include "kiln/dtype.h"
#include "kernels/sum_blocks.h"

/* Most values of n_in per partial sum (a multiple of 16). */
#define KILN_GEMM_KC_MAX 3072

/* Values per partial sum for rows of n_in (kiln__sum_block with steps of
 * 16). On the Zen 4 development machine `bench/fmatmul_bench F16 -t 1 -n
 * 512` gave 101 GFLOP/s (best 106-108) against 95-99 (best 100) with fixed
 * blocks of 1024 (runs alternated). */
static inline size_t kiln__gemm_block(size_t n_in) { return kiln__sum_block(n_in, KILN_GEMM_KC_MAX, 16); }

/* True when this CPU runs the kernel (AVX-512 F, BW and VL) and it has
 * code for weights of type wtype (F32, F16, BF16). */
int kiln__gemm_avx512_usable(kiln_dtype wtype);

/* y[t][j] = sum_i w[j][i] * x[t][i], w row-major [n_out][n_in] of wtype,
 * x [n_tok][n_in], y [n_tok][n_out] (not overlapping x). Any n_in >= 1.
 * Only call when kiln__gemm_avx512_usable(wtype). Needs no scratch. */
void kiln__gemm_avx512(kiln_pool *pool, kiln_dtype wtype, const void *w, size_t n_out, size_t n_in,
                       const float *x, size_t n_tok, float *y);

#endif /* KILN_KERNELS_GEMM_AVX512_H */
