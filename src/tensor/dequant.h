/* src/tensor/dequant.h - decoding tensor data of any supported type to f32.
 *
 * The scalar reference decoders: one function per block type turning one
 * block into its values (kernels reuse these and test their SIMD paths
 * against them), and kiln__dequantize() for whole runs of values. The
 * arithmetic follows the published GGUF formulas in the same order of
 * operations as ggml, one rounding per step, so results are bit-exact with
 * ggml and with gguf-py's numpy dequantizer (no fused multiply-adds: each
 * product is its own statement).
 */
#ifndef KILN_TENSOR_DEQUANT_H
#define KILN_TENSOR_DEQUANT_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/dtype.h"
#include "kiln/status.h"
#include "tensor/quant_blocks.h"

/* Decode n_elems values of `type` at src into dst (n_elems floats).
 * Supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K,
 * Q4_K, Q5_K, Q6_K, Q8_K. src holds kiln__tensor_bytes(type, n_elems) bytes
 * aligned to kiln__dtype_align(type); src and dst must not overlap.
 * Returns KILN_ERR_INVALID_ARG when n_elems is not a multiple of the block
 * size, a pointer is NULL (with n_elems > 0) or src is misaligned, and
 * KILN_ERR_UNSUPPORTED for other types; the message says which. */
kiln_status kiln__dequantize(kiln_dtype type, const void *src, float *dst, size_t n_elems);

/* One block each: y receives KILN_QK (legacy types) or KILN_QK_K (K types)
 * values. */
void kiln__dequant_block_q4_0(const kiln_block_q4_0 *b, float *y);
void kiln__dequant_block_q4_1(const kiln_block_q4_1 *b, float *y);
void kiln__dequant_block_q5_0(const kiln_block_q5_0 *b, float *y);
void kiln__dequant_block_q5_1(const kiln_block_q5_1 *b, float *y);
void kiln__dequant_block_q8_0(const kiln_block_q8_0 *b, float *y);
void kiln__dequant_block_q8_1(const kiln_block_q8_1 *b, float *y);
void kiln__dequant_block_q2_K(const kiln_block_q2_K *b, float *y);
void kiln__dequant_block_q3_K(const kiln_block_q3_K *b, float *y);
void kiln__dequant_block_q4_K(const kiln_block_q4_K *b, float *y);
void kiln__dequant_block_q5_K(const kiln_block_q5_K *b, float *y);
void kiln__dequant_block_q6_K(const kiln_block_q6_K *b, float *y);
void kiln__dequant_block_q8_K(const kiln_block_q8_K *b, float *y);

/* Scale and min (6 bits each) of sub-block j (0..7) of a Q4_K or Q5_K block,
 * from its 12 packed bytes. Sub-blocks 0-3 keep scale and min in the low 6
 * bits of bytes j and j + 4; sub-blocks 4-7 keep their low 4 bits in the two
 * nibbles of byte j + 4 and their top 2 bits in the top bits of bytes j - 4
 * (scale) and j (min). */
static inline void kiln__get_scale_min_k4(int j, const uint8_t *scales, uint8_t *sc,
                                          uint8_t *mn) {
    if (j < 4) {
        *sc = scales[j] & 63;
        *mn = scales[j + 4] & 63;
    } else {
        *sc = (uint8_t)((scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4));
        *mn = (uint8_t)((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
    }
}

/* Scale j (0..15, before subtracting 32) of a Q3_K block: low 4 bits from a
 * nibble of scales[j % 8] (low nibble for j < 8), top 2 bits from bits
 * 2 * (j / 4) of scales[8 + j % 4]. */
static inline int kiln__get_scale_q3_K(int j, const uint8_t *scales) {
    int lo = j < 8 ? (scales[j] & 0x0f) : (scales[j - 8] >> 4);
    int hi = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return lo | (hi << 4);
}

#endif /* KILN_TENSOR_DEQUANT_H */
