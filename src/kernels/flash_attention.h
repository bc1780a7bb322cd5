/* src/kernels/flash_attention.h - full (not causal) multi-head attention
 * over long sequences without a score matrix (internal): keys are taken in
 * blocks of 64 with an online softmax (running maximum and sum per query,
 * earlier partial results rescaled when the maximum grows), as in
 * FlashAttention. Memory beyond the inputs: a few KB per thread.
 *
 * The AVX-512 path puts 32 queries of one head in the lanes of two
 * vectors: scores of 8 keys at a time are 16 accumulators (key values
 * broadcast, transposed queries loaded), the softmax is lane-wise, and the
 * transposed output accumulates 8 head channels at a time. The AVX2+FMA
 * path (flash_attention_avx2.c, for CPUs without AVX-512F) does the same
 * with 16 queries, 4 keys and 4 head channels at a time. The plain-C
 * path is the reference, one query at a time in the same key blocks.
 */
#ifndef KILN_KERNELS_FLASH_ATTENTION_H
#define KILN_KERNELS_FLASH_ATTENTION_H

#include <stddef.h>

#include "core/threadpool.h"
#include "kernels/conv2d_packed.h"
#include "kiln/status.h"

/* out[i][h*d..] = softmax_j(q_i,h . k_j,h / sqrt(d)) v_j,h for i < n_q, all
 * j < n_kv; strides and layout as kiln__mha (image_ops.h). isa picks the
 * path (kiln__image_isa: KILN_ERR_UNSUPPORTED for one the CPU lacks). Allocates
 * small per-thread buffers (KILN_ERR_OUT_OF_MEMORY). */
kiln_status kiln__flash_attention(kiln_pool *pool, float *out, size_t out_stride, const float *q,
                                  size_t q_stride, const float *k, const float *v, size_t kv_stride, int n_q,
                                  int n_kv, int n_heads, int head_dim, enum kiln_conv_isa isa);

#endif /* KILN_KERNELS_FLASH_ATTENTION_H */
