/* src/kernels/sum_blocks.h - how the float GEMMs (gemm_avx512.c,
 * gemm_bf16.c) cut a row of n_in values into partial-sum blocks (internal).
 * Each block's lanes are reduced and added to the result once per tile, so
 * fewer blocks mean less of that overhead; the block's activations and a
 * row chunk's weights must still fit the caches, hence a maximum. One
 * token and a batch use the same blocks, which keeps their bits equal. */
#ifndef KILN_KERNELS_SUM_BLOCKS_H
#define KILN_KERNELS_SUM_BLOCKS_H

#include <stddef.h>

/* Values per block for rows of n_in: the fewest blocks of at most `most`
 * values (a multiple of `step`), as even as multiples of `step` allow; the
 * last block may be shorter. E.g. most 3072, step 32: 2048 in one block,
 * 5632 in two of 2816. */
static inline size_t kiln__sum_block(size_t n_in, size_t most, size_t step) {
    size_t blocks = (n_in + most - 1) / most;
    if (blocks == 0) return step;
    return ((n_in + blocks - 1) / blocks + step - 1) / step * step;
}

#endif /* KILN_KERNELS_SUM_BLOCKS_H */
