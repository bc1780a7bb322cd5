/* src/kernels/flash_attention_impl.h - what the paths of the blocked
 * attention share (internal to flash_attention*.c): the job one call's
 * threads read, the block sizes, and the AVX2 path's entry. */
#ifndef KILN_KERNELS_FLASH_ATTENTION_IMPL_H
#define KILN_KERNELS_FLASH_ATTENTION_IMPL_H

#include <stdatomic.h>
#include <stddef.h>

#include "kernels/conv2d_packed.h"

/* Keys per block of the online softmax. */
#define KILN_FLASH_KB 64
/* Queries per AVX2 item (two vectors of lanes). */
#define KILN_FLASH_AVX2_QB 16
/* Score floor and starting maximum: exp2 of it minus any real score is 0. */
#define KILN_FLASH_NEG_BIG (-1e30f)

/* What one attention call's threads share. */
struct kiln_flash_job {
    float *out;              /* result rows */
    size_t out_stride;       /* floats between result rows */
    const float *q;          /* query rows */
    size_t q_stride;         /* floats between query rows */
    const float *k, *v;      /* key and value rows */
    size_t kv_stride;        /* floats between key (and value) rows */
    int n_q, n_kv;           /* query and key counts */
    int n_heads, hd;         /* heads, values per head */
    int q_per_item;          /* queries per work item */
    int n_items;             /* heads x query blocks */
    atomic_int next;         /* next item to take */
    enum kiln_conv_isa isa;  /* resolved path: SCALAR, AVX512 or AVX2 */
    float *buf;              /* per-thread scratch, buf_floats each */
    size_t buf_floats;       /* floats of one thread's scratch */
};

/* AVX2+FMA: queries q0 .. q0+15 of head h (those past n_q are zeros and
 * dropped); scratch: qt and ot [hd][16], st [KB][16]. */
void kiln__flash_avx2(const struct kiln_flash_job *j, int h, int q0, float *scratch);

#endif /* KILN_KERNELS_FLASH_ATTENTION_IMPL_H */
