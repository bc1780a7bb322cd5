/* src/kernels/flash_attention_impl.h - what the paths of the blocked
 * attention share (internal to flash_attention*.c): the job one call's
 * threads read, the block sizes, an item's packed key blocks (with whether
 * a causal mask applies), and the AVX2 path's entry. */
#ifndef KILN_KERNELS_FLASH_ATTENTION_IMPL_H
#define KILN_KERNELS_FLASH_ATTENTION_IMPL_H

#include <stdatomic.h>
#include <stddef.h>

#include "kernels/conv2d_packed.h"
#include "kernels/flash_attention.h"

/* Keys per block of the online softmax. */
#define KILN_FLASH_KB 64
/* Queries per AVX-512 item (two vectors of lanes). */
#define KILN_FLASH_AVX512_QB 32
/* Queries per AVX2 item (two vectors of lanes). */
#define KILN_FLASH_AVX2_QB 16
/* Score floor and starting maximum: exp2 of it minus any real score is 0
 * (so a lane's masked keys weigh nothing once it has seen a real key). */
#define KILN_FLASH_NEG_BIG (-1e30f)

/* What one attention call's threads share. */
struct kiln_flash_job {
    const struct kiln_flash_args *a; /* the call */
    int group;               /* query heads per KV head */
    int window;              /* the call's window, or 0 where it is at least n_kv (no limit then) */
    int q_per_item;          /* queries per work item */
    int blocks;              /* query blocks per head */
    int n_items;             /* heads x query blocks */
    atomic_int next;         /* next item to take */
    enum kiln_conv_isa isa;  /* resolved path: SCALAR, AVX512 or AVX2 */
    float *buf;              /* per-thread scratch, buf_floats each */
    size_t buf_floats;       /* floats of one thread's scratch */
};

/* One key block of a work item, packed for the inner loops. */
struct kiln_flash_block {
    int k0, nb;         /* first key and key count (1..KB) */
    int mask;           /* some query of the item must not see one of these keys: the SIMD paths
                           then mask the block's scores lane by lane (lane i, query q0 + i, sees
                           key c when i >= c - pos - q0 and, with a window, i < c - pos - q0 +
                           j->window) */
    const float *k, *v; /* F32 rows of key k0 and its value */
    size_t stride;      /* floats between rows */
};

/* Key block `index` (0, 1, ...) of queries q0..q1-1 of query head h: the
 * keys the queries see between them (causal: up to the last query's
 * position, from the first query's first key), KB at a time, rows of the
 * KV head packed into wide ([2][KB][head_dim] floats: F16 widened, F32
 * copied, so that the inner loops read rows head_dim apart that stay in
 * L1/L2 rather than rows kv_stride apart). Returns 0 (b untouched) past
 * the last block. */
int kiln__flash_block(const struct kiln_flash_job *j, int h, int q0, int q1, int index, float *wide,
                      struct kiln_flash_block *b);

/* AVX2+FMA: queries q0 .. q0+15 of head h (those past n_q are zeros and
 * dropped); scratch: qt and ot [hd][16], st [KB][16], then the packed
 * key block. */
void kiln__flash_avx2(const struct kiln_flash_job *j, int h, int q0, float *scratch);

#endif /* KILN_KERNELS_FLASH_ATTENTION_IMPL_H */
