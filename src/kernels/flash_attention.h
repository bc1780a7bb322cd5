/* src/kernels/flash_attention.h - multi-head attention over long sequences
 * without a score matrix (internal), for the image networks (full
 * attention over F32 rows) and the LLM's prompt (causal, with an optional
 * sliding window, grouped-query heads and an F16 or F32 KV cache): keys are
 * taken in blocks of 64 with an online softmax (running maximum and sum
 * per query, earlier partial results rescaled when the maximum grows), as
 * in FlashAttention.
 *
 * Work items are (head, block of queries), handed out from a shared
 * counter, the costliest query blocks of a causal call first. An item reads
 * the keys its queries see between them: causal, a block of queries at
 * positions p..p+31 reads keys 0..p+31 (with a window, from the first
 * query's first key p-window+1) and masks, lane by lane, the scores of the
 * keys one query must not see; key blocks past the last query are never
 * read. Each item packs a key block's keys and values of its KV head into
 * the thread's scratch (F16 widened, F32 copied: rows head_dim apart read
 * faster than cache rows), then the F32 loops run.
 *
 * The AVX-512 path puts 32 queries of one head in the lanes of two
 * vectors: scores of 8 keys at a time are 16 accumulators (key values
 * broadcast, transposed queries loaded), the softmax is lane-wise, and the
 * transposed output accumulates 8 head channels at a time. The AVX2+FMA
 * path (flash_attention_avx2.c, for CPUs without AVX-512F) does the same
 * with 16 queries, 4 keys and 4 head channels at a time. The plain-C
 * path is the reference, one query at a time over exactly the keys it sees.
 */
#ifndef KILN_KERNELS_FLASH_ATTENTION_H
#define KILN_KERNELS_FLASH_ATTENTION_H

#include <stddef.h>

#include "core/threadpool.h"
#include "kernels/conv2d_packed.h"
#include "kiln/dtype.h"
#include "kiln/status.h"

/* One attention call: out[i][h*d..] = softmax_j(q_i,h . k_j,g / sqrt(d))
 * v_j,g over the keys j query i sees, g = h / (n_heads / n_heads_kv). */
struct kiln_flash_args {
    float *out;          /* n_q result rows; head h at h * head_dim */
    size_t out_stride;   /* floats between result rows */
    const float *q;      /* n_q query rows; head h at h * head_dim */
    size_t q_stride;     /* floats between query rows */
    const void *k, *v;   /* n_kv key and value rows; KV head g at g * head_dim */
    size_t kv_stride;    /* elements between key (and value) rows */
    kiln_dtype kv_type;  /* KILN_DTYPE_F32 or KILN_DTYPE_F16 elements in k and v */
    int n_q, n_kv;       /* query and key counts */
    int n_heads;         /* query heads */
    int n_heads_kv;      /* key/value heads; divides n_heads (grouped-query attention) */
    int head_dim;        /* values per head */
    int causal;          /* 0: every query sees every key; 1: query i is at position pos + i and
                            sees keys 0..pos + i */
    int pos;             /* causal: position of query 0 (pos + n_q <= n_kv) */
    int window;          /* causal: > 0: query at position p sees keys from p - window + 1 only;
                            0: no window */
    float *scratch;      /* [threads of the pool][kiln__flash_scratch_floats(head_dim)] floats,
                            64-byte aligned; NULL: allocated (and freed) by the call */
};

/* Scratch floats one thread needs for heads of head_dim values (any path,
 * any KV type; a multiple of 16). */
size_t kiln__flash_scratch_floats(int head_dim);

/* Attention as described by *a. isa picks the path (kiln__image_isa:
 * KILN_ERR_UNSUPPORTED for one the CPU lacks). KILN_ERR_INVALID_ARG for
 * inconsistent arguments; KILN_ERR_OUT_OF_MEMORY when a->scratch is NULL
 * and the per-thread buffers cannot be allocated. */
kiln_status kiln__flash_attention(kiln_pool *pool, const struct kiln_flash_args *a, enum kiln_conv_isa isa);

#endif /* KILN_KERNELS_FLASH_ATTENTION_H */
