/* src/tensor/quant_blocks.h - the GGUF block-quantized layouts, byte for byte.
 *
 * Each struct is one block as stored in a GGUF file (and in ggml's memory),
 * little-endian, with no padding: the _Static_asserts tie every size to the
 * block_bytes column of include/kiln/dtype.h. f16 fields are raw binary16
 * bits (convert with kiln__f16_to_f32 from fp16.h). The value formulas are
 * in the comments and in docs/tensor-types.md; dequant.c implements them.
 *
 * Notation: d = scale, m/dmin = minimum (offset), q = the stored integer.
 * "Legacy" types hold 32 values per block; "K" types hold 256 values in a
 * super-block of 8 or 16 sub-blocks with their own small integer scales.
 */
#ifndef KILN_TENSOR_QUANT_BLOCKS_H
#define KILN_TENSOR_QUANT_BLOCKS_H

#include <stdint.h>

#include "kiln/dtype.h"

#define KILN_QK 32          /* values per legacy block (Q4_0 ... Q8_1) */
#define KILN_QK_K 256       /* values per K super-block */
#define KILN_K_SCALE_SIZE 12 /* bytes of packed 6-bit scales/mins in Q4_K, Q5_K */

/* Q4_0: x[i] = d * (q[i] - 8), q in 0..15. Value j (j < 16) is the low
 * nibble of qs[j]; value j + 16 is its high nibble. */
typedef struct kiln_block_q4_0 {
    uint16_t d;                /* f16 scale */
    uint8_t qs[KILN_QK / 2];   /* 4-bit quants, two per byte as above */
} kiln_block_q4_0;

/* Q4_1: x[i] = d * q[i] + m, q in 0..15, nibbles as in Q4_0. */
typedef struct kiln_block_q4_1 {
    uint16_t d;                /* f16 scale */
    uint16_t m;                /* f16 minimum (added) */
    uint8_t qs[KILN_QK / 2];   /* 4-bit quants, as in Q4_0 */
} kiln_block_q4_1;

/* Q5_0: x[i] = d * (q[i] - 16), q in 0..31. The low 4 bits are packed as in
 * Q4_0; bit i of the little-endian 32-bit qh is bit 4 of q[i]. */
typedef struct kiln_block_q5_0 {
    uint16_t d;                /* f16 scale */
    uint8_t qh[4];             /* fifth bits, little-endian uint32, bit i -> value i */
    uint8_t qs[KILN_QK / 2];   /* low 4 bits, as in Q4_0 */
} kiln_block_q5_0;

/* Q5_1: x[i] = d * q[i] + m, q in 0..31, bits packed as in Q5_0. */
typedef struct kiln_block_q5_1 {
    uint16_t d;                /* f16 scale */
    uint16_t m;                /* f16 minimum (added) */
    uint8_t qh[4];             /* fifth bits, as in Q5_0 */
    uint8_t qs[KILN_QK / 2];   /* low 4 bits, as in Q4_0 */
} kiln_block_q5_1;

/* Q8_0: x[i] = d * qs[i]. */
typedef struct kiln_block_q8_0 {
    uint16_t d;                /* f16 scale */
    int8_t qs[KILN_QK];        /* signed 8-bit quants */
} kiln_block_q8_0;

/* Q8_1: x[i] = d * qs[i]; s caches d * sum(qs) for dot products with the
 * offset types (Q4_1, Q5_1). Used for activations. */
typedef struct kiln_block_q8_1 {
    uint16_t d;                /* f16 scale */
    uint16_t s;                /* f16 d * sum(qs[i]) */
    int8_t qs[KILN_QK];        /* signed 8-bit quants */
} kiln_block_q8_1;

/* Q2_K: 16 sub-blocks of 16. Sub-block j has 4-bit scale sc = scales[j] & 15
 * and 4-bit min mn = scales[j] >> 4; x = d*sc * q - dmin*mn, q in 0..3.
 * qs: two halves of 128 values, 32 bytes each; in half h, value
 * 128h + 32s + l (s = 0..3, l = 0..31) is bits 2s..2s+1 of qs[32h + l]. */
typedef struct kiln_block_q2_K {
    uint8_t scales[KILN_QK_K / 16]; /* per sub-block: low nibble scale, high nibble min */
    uint8_t qs[KILN_QK_K / 4];      /* 2-bit quants, layout above */
    uint16_t d;                     /* f16 super-block scale for the scales */
    uint16_t dmin;                  /* f16 super-block scale for the mins */
} kiln_block_q2_K;

/* Q3_K: 16 sub-blocks of 16, x = d * (sc - 32) * (q - 4 * (1 - hbit)), q in
 * 0..3 laid out as in Q2_K; value 128h + 32s + l takes hbit from bit 4h + s
 * of hmask[l] (a set bit means no offset: q - 0, clear means q - 4). The 16
 * 6-bit scales sc: low 4 bits in scales[0..7] (nibble-wise: scale j < 8 from
 * the low nibble of scales[j], scale j >= 8 from the high nibble of
 * scales[j - 8]), high 2 bits in scales[8..11] (scale j from bits
 * 2*(j/4)..2*(j/4)+1 of scales[8 + j%4]). */
typedef struct kiln_block_q3_K {
    uint8_t hmask[KILN_QK_K / 8];   /* high bit of each quant, layout above */
    uint8_t qs[KILN_QK_K / 4];      /* low 2 bits of each quant, as in Q2_K */
    uint8_t scales[12];             /* 16 packed 6-bit scales, layout above */
    uint16_t d;                     /* f16 super-block scale */
} kiln_block_q3_K;

/* Q4_K: 8 sub-blocks of 32 with 6-bit scale sc and 6-bit min mn (packing in
 * kiln__get_scale_min_k4 in dequant.h), x = d*sc * q - dmin*mn, q in 0..15.
 * qs: four chunks of 64 values, 32 bytes each; in chunk c, value 64c + l is
 * the low nibble of qs[32c + l] and value 64c + 32 + l the high nibble. */
typedef struct kiln_block_q4_K {
    uint16_t d;                         /* f16 super-block scale for the scales */
    uint16_t dmin;                      /* f16 super-block scale for the mins */
    uint8_t scales[KILN_K_SCALE_SIZE];  /* 8 scales + 8 mins, 6 bits each, packed */
    uint8_t qs[KILN_QK_K / 2];          /* 4-bit quants, layout above */
} kiln_block_q4_K;

/* Q5_K: as Q4_K with a fifth bit, q in 0..31: value 64c + l takes bit 2c of
 * qh[l] and value 64c + 32 + l takes bit 2c + 1 of qh[l] as bit 4. */
typedef struct kiln_block_q5_K {
    uint16_t d;                         /* f16 super-block scale for the scales */
    uint16_t dmin;                      /* f16 super-block scale for the mins */
    uint8_t scales[KILN_K_SCALE_SIZE];  /* packed as in Q4_K */
    uint8_t qh[KILN_QK_K / 8];          /* fifth bits, layout above */
    uint8_t qs[KILN_QK_K / 2];          /* low 4 bits, as in Q4_K */
} kiln_block_q5_K;

/* Q6_K: 16 sub-blocks of 16 with int8 scales, x = d * scales[j] * (q - 32),
 * q in 0..63. Two halves of 128 values; in half h (ql += 64h, qh += 32h),
 * for l = 0..31: value 128h + l      = ql[l] low nibble      | (qh[l] bits 0-1) << 4
 *                value 128h + 32 + l = ql[l + 32] low nibble | (qh[l] bits 2-3) << 4
 *                value 128h + 64 + l = ql[l] high nibble     | (qh[l] bits 4-5) << 4
 *                value 128h + 96 + l = ql[l + 32] high nibble| (qh[l] bits 6-7) << 4
 * and value i belongs to sub-block i / 16. */
typedef struct kiln_block_q6_K {
    uint8_t ql[KILN_QK_K / 2];      /* low 4 bits, layout above */
    uint8_t qh[KILN_QK_K / 4];      /* high 2 bits, layout above */
    int8_t scales[KILN_QK_K / 16];  /* signed 8-bit sub-block scales */
    uint16_t d;                     /* f16 super-block scale */
} kiln_block_q6_K;

/* Q8_K: x[i] = d * qs[i], with an f32 scale; bsums[j] caches the sum of
 * qs[16j .. 16j + 15] for K-quant dot products. Activations only (ggml never
 * stores weights in it). */
typedef struct kiln_block_q8_K {
    float d;                        /* f32 scale */
    int8_t qs[KILN_QK_K];           /* signed 8-bit quants */
    int16_t bsums[KILN_QK_K / 16];  /* sums of groups of 16 quants */
} kiln_block_q8_K;

/* The layouts must be exactly the GGUF sizes: no padding anywhere. */
#define KILN_X_BLOCK_SIZE_CHECK(type, bytes)                                   \
    _Static_assert(sizeof(kiln_block_##type) == (bytes), "kiln_block_" #type " size")
KILN_X_BLOCK_SIZE_CHECK(q4_0, 18);
KILN_X_BLOCK_SIZE_CHECK(q4_1, 20);
KILN_X_BLOCK_SIZE_CHECK(q5_0, 22);
KILN_X_BLOCK_SIZE_CHECK(q5_1, 24);
KILN_X_BLOCK_SIZE_CHECK(q8_0, 34);
KILN_X_BLOCK_SIZE_CHECK(q8_1, 36);
KILN_X_BLOCK_SIZE_CHECK(q2_K, 84);
KILN_X_BLOCK_SIZE_CHECK(q3_K, 110);
KILN_X_BLOCK_SIZE_CHECK(q4_K, 144);
KILN_X_BLOCK_SIZE_CHECK(q5_K, 176);
KILN_X_BLOCK_SIZE_CHECK(q6_K, 210);
KILN_X_BLOCK_SIZE_CHECK(q8_K, 292);
#undef KILN_X_BLOCK_SIZE_CHECK

/* ... and the same numbers as the dtype list (which the GGUF reader uses).
 * The list is expanded into an enum of sizes so the check is compile-time. */
enum kiln_dtype_block_bytes_ {
#define KILN_X_DTYPE_BYTES(id, name, ggml, elems, bytes) KILN_DTYPE_BYTES_##id = (bytes),
    KILN_DTYPE_LIST(KILN_X_DTYPE_BYTES)
#undef KILN_X_DTYPE_BYTES
};
enum kiln_dtype_block_elems_ {
#define KILN_X_DTYPE_ELEMS(id, name, ggml, elems, bytes) KILN_DTYPE_ELEMS_##id = (elems),
    KILN_DTYPE_LIST(KILN_X_DTYPE_ELEMS)
#undef KILN_X_DTYPE_ELEMS
};
#define KILN_X_BLOCK_LIST_CHECK(type, id, qk)                                  \
    _Static_assert(sizeof(kiln_block_##type) == KILN_DTYPE_BYTES_##id &&       \
                       (qk) == KILN_DTYPE_ELEMS_##id,                          \
                   "kiln_block_" #type " vs KILN_DTYPE_LIST")
KILN_X_BLOCK_LIST_CHECK(q4_0, Q4_0, KILN_QK);
KILN_X_BLOCK_LIST_CHECK(q4_1, Q4_1, KILN_QK);
KILN_X_BLOCK_LIST_CHECK(q5_0, Q5_0, KILN_QK);
KILN_X_BLOCK_LIST_CHECK(q5_1, Q5_1, KILN_QK);
KILN_X_BLOCK_LIST_CHECK(q8_0, Q8_0, KILN_QK);
KILN_X_BLOCK_LIST_CHECK(q8_1, Q8_1, KILN_QK);
KILN_X_BLOCK_LIST_CHECK(q2_K, Q2_K, KILN_QK_K);
KILN_X_BLOCK_LIST_CHECK(q3_K, Q3_K, KILN_QK_K);
KILN_X_BLOCK_LIST_CHECK(q4_K, Q4_K, KILN_QK_K);
KILN_X_BLOCK_LIST_CHECK(q5_K, Q5_K, KILN_QK_K);
KILN_X_BLOCK_LIST_CHECK(q6_K, Q6_K, KILN_QK_K);
KILN_X_BLOCK_LIST_CHECK(q8_K, Q8_K, KILN_QK_K);
#undef KILN_X_BLOCK_LIST_CHECK

#endif /* KILN_TENSOR_QUANT_BLOCKS_H */
