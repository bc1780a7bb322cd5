/* src/kernels/ops_fast.c - the hot element-wise operations of the LLM
 * forward pass with AVX-512F where the CPU has it, else the scalar
 * references of ops.c. Every element is computed on its own (lane-wise,
 * masked tails), so a value's result does not depend on where it sits in
 * the row or how a caller chunks the row. */
#include <immintrin.h>
#include <stdint.h>

#include "core/cpu.h"
#include "kernels/avx512_math.h"
#include "kernels/ops.h"

#define SIMD __attribute__((target("avx512f")))

/* gate = gate / (1 + e^-gate) * up, 16 values at a time (a gate below
 * about -88.7 gives an infinite denominator and a signed zero, as with
 * expf). */
SIMD static void swiglu_avx512(float *gate, const float *up, size_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
        __m512 g = _mm512_maskz_loadu_ps(m, gate + i), u = _mm512_maskz_loadu_ps(m, up + i);
        __m512 den = _mm512_add_ps(one, kiln__avx512_exp(_mm512_sub_ps(_mm512_setzero_ps(), g)));
        _mm512_mask_storeu_ps(gate + i, m, _mm512_mul_ps(_mm512_div_ps(g, den), u));
    }
}

void kiln__swiglu_fast(float *gate, const float *up, size_t n) {
    if (kiln__cpu()->avx512f) swiglu_avx512(gate, up, n);
    else kiln__swiglu(gate, up, n);
}
