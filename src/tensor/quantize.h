/* src/tensor/quantize.h - encoding f32 values into f16, bf16 and GGUF blocks.
 *
 * Reference (scalar) quantizers. Q4_0, Q8_0 and Q8_1 give the same bytes as
 * ggml's reference quantizers (quantize_row_*_ref; gguf-py's numpy quantizer
 * matches them too); Q8_K follows ggml's activation quantizer (one f32 scale
 * mapping the largest magnitude to -127, plus bsums). Q4_K and Q6_K use
 * kiln's own scale search (see quantize.c): valid blocks that decode with
 * low error, not byte-identical with ggml's output.
 */
#ifndef KILN_TENSOR_QUANTIZE_H
#define KILN_TENSOR_QUANTIZE_H

#include <stddef.h>

#include "kiln/dtype.h"
#include "kiln/status.h"
#include "tensor/quant_blocks.h"

/* Encode n_elems f32 values at src as `type` into dst, which receives
 * kiln__tensor_bytes(type, n_elems) bytes and must be aligned to
 * kiln__dtype_align(type). Supported: F32, F16, BF16, Q4_0, Q8_0, Q8_1, Q4_K,
 * Q6_K, Q8_K. Values should be finite: NaN/inf give valid but meaningless
 * blocks (no undefined behaviour).
 * Returns KILN_ERR_INVALID_ARG when n_elems is not a multiple of the block
 * size, a pointer is NULL (with n_elems > 0) or dst is misaligned, and
 * KILN_ERR_UNSUPPORTED for other types. */
kiln_status kiln__quantize(kiln_dtype type, const float *src, void *dst, size_t n_elems);

/* One block each, from KILN_QK or KILN_QK_K values at x. */
void kiln__quantize_block_q4_0(const float *x, kiln_block_q4_0 *b);
void kiln__quantize_block_q8_0(const float *x, kiln_block_q8_0 *b);
void kiln__quantize_block_q8_1(const float *x, kiln_block_q8_1 *b);
void kiln__quantize_block_q4_K(const float *x, kiln_block_q4_K *b);
void kiln__quantize_block_q6_K(const float *x, kiln_block_q6_K *b);
void kiln__quantize_block_q8_K(const float *x, kiln_block_q8_K *b);

#endif /* KILN_TENSOR_QUANTIZE_H */
