/* src/tensor/tensor.h - sizes and alignment of tensor data by element type.
 *
 * A tensor of n values of a block type occupies n / block_elems blocks of
 * block_bytes each (see include/kiln/dtype.h); n must be a whole number of
 * blocks. These helpers give that byte count and the alignment the block
 * structs (and plain element types) need when read in place.
 */
#ifndef KILN_TENSOR_TENSOR_H
#define KILN_TENSOR_TENSOR_H

#include <stddef.h>

#include "kiln/dtype.h"

/* Bytes taken by n_elems values of `type`. Returns 0 when the type is
 * unknown, n_elems is not a multiple of the type's block size, or the size
 * does not fit in size_t (so 0 with n_elems > 0 always means "invalid"). */
size_t kiln__tensor_bytes(kiln_dtype type, size_t n_elems);

/* Alignment in bytes that data of `type` needs to be read through kiln's
 * block structs or element pointers (the _Alignof of the block or element:
 * 2 for the f16-scaled blocks, 4 for Q8_K and F32, and so on); 1 for an
 * unknown type. GGUF and safetensors data offsets always satisfy it. */
size_t kiln__dtype_align(kiln_dtype type);

#endif /* KILN_TENSOR_TENSOR_H */
