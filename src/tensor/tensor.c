/* src/tensor/tensor.c - byte sizes and alignment of tensor data. */
#include "tensor/tensor.h"

#include <stdint.h>

#include "core/alloc.h"
#include "tensor/quant_blocks.h"

size_t kiln__tensor_bytes(kiln_dtype type, size_t n_elems) {
    size_t elems = kiln_dtype_block_elems(type);
    size_t bytes = 0;
    if (elems == 0 || n_elems % elems != 0) return 0;
    if (kiln__mul_overflows(n_elems / elems, kiln_dtype_block_bytes(type), &bytes)) return 0;
    return bytes;
}

size_t kiln__dtype_align(kiln_dtype type) {
    switch (type) {
    case KILN_DTYPE_F32: return _Alignof(float);
    case KILN_DTYPE_F16:
    case KILN_DTYPE_BF16: return _Alignof(uint16_t);
    case KILN_DTYPE_Q4_0: return _Alignof(kiln_block_q4_0);
    case KILN_DTYPE_Q4_1: return _Alignof(kiln_block_q4_1);
    case KILN_DTYPE_Q5_0: return _Alignof(kiln_block_q5_0);
    case KILN_DTYPE_Q5_1: return _Alignof(kiln_block_q5_1);
    case KILN_DTYPE_Q8_0: return _Alignof(kiln_block_q8_0);
    case KILN_DTYPE_Q8_1: return _Alignof(kiln_block_q8_1);
    case KILN_DTYPE_Q2_K: return _Alignof(kiln_block_q2_K);
    case KILN_DTYPE_Q3_K: return _Alignof(kiln_block_q3_K);
    case KILN_DTYPE_Q4_K: return _Alignof(kiln_block_q4_K);
    case KILN_DTYPE_Q5_K: return _Alignof(kiln_block_q5_K);
    case KILN_DTYPE_Q6_K: return _Alignof(kiln_block_q6_K);
    case KILN_DTYPE_Q8_K: return _Alignof(kiln_block_q8_K);
    case KILN_DTYPE_I8:
    case KILN_DTYPE_U8:
    case KILN_DTYPE_BOOL:
    case KILN_DTYPE_F8_E4M3:
    case KILN_DTYPE_F8_E5M2: return 1;
    case KILN_DTYPE_I16: return _Alignof(int16_t);
    case KILN_DTYPE_I32: return _Alignof(int32_t);
    case KILN_DTYPE_I64: return _Alignof(int64_t);
    case KILN_DTYPE_F64: return _Alignof(double);
    case KILN_DTYPE_UNKNOWN: return 1;
    }
    return 1; /* a value outside the enum */
}
