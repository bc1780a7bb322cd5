/* src/kernels/attention.h - scaled dot-product attention of one query head
 * over cached keys and values (internal). Scalar reference: SIMD variants
 * added later are tested against it. */
#ifndef KILN_KERNELS_ATTENTION_H
#define KILN_KERNELS_ATTENTION_H

#include <stddef.h>

#include "kiln/dtype.h"

/* out[0..head_dim) = sum_j softmax_j(scale * q . k_j) * v_j over positions
 * j = first..last (inclusive). k and v point at position 0 of this head's
 * key and value; position j's are row_stride elements further on. kv_type
 * is KILN_DTYPE_F32 or KILN_DTYPE_F16 (anything else is read as F32).
 * scores holds last - first + 1 floats of scratch. */
void kiln__attention_head(float *out, const float *q, const void *k, const void *v,
                          kiln_dtype kv_type, size_t row_stride, int first, int last,
                          int head_dim, float scale, float *scores);

/* The same with AVX-512 where the CPU has it (attention_avx512.c), else
 * the reference above. Results differ from the reference by rounding only
 * (summation order, a vector exp within 2 ulp of expf, kiln__avx512_exp). */
void kiln__attention_head_fast(float *out, const float *q, const void *k, const void *v,
                               kiln_dtype kv_type, size_t row_stride, int first, int last,
                               int head_dim, float scale, float *scores);

/* In place: x = softmax(scale * x) over n values, with AVX-512 where the
 * CPU has it (the same vector exp), else scale then kiln__softmax. */
void kiln__softmax_scaled_fast(float *x, size_t n, float scale);

#endif /* KILN_KERNELS_ATTENTION_H */
