/* src/kernels/ops.h - the element-wise and row operations of a transformer
 * forward pass (internal). Scalar reference versions: every SIMD variant
 * added later is tested against these. All pointers are float32 rows. */
#ifndef KILN_KERNELS_OPS_H
#define KILN_KERNELS_OPS_H

#include <stddef.h>

/* out = x / sqrt(mean(x^2) + eps) * w; out may alias x. */
void kiln__rmsnorm(float *out, const float *x, const float *w, size_t n, float eps);

/* out = (x - mean) / sqrt(var + eps) * w + b (b may be NULL); out may alias x. */
void kiln__layernorm(float *out, const float *x, const float *w, const float *b, size_t n,
                     float eps);

/* How rope pairs dimensions (mirrors kiln_rope_pairing in src/llm/model_impl.h). */
typedef enum kiln_rope_mode {
    KILN_ROPE_MODE_INTERLEAVED, /* pairs (2i, 2i+1) */
    KILN_ROPE_MODE_NEOX,        /* pairs (i, i + rot_dim/2) */
} kiln_rope_mode;

/* Rotary position embedding, in place, on n_heads heads of head_dim floats
 * laid out one after another. The first rot_dim (even, <= head_dim) values
 * of each head rotate; pair i turns by pos * theta^(-2i/rot_dim) /
 * freq_factors[i] (freq_factors may be NULL: all 1), and the rotated values
 * are multiplied by mscale (cos and sin scaled, as Phi-3's longrope does;
 * 1 for plain rope). */
void kiln__rope(float *x, int n_heads, int head_dim, int rot_dim, int pos, float theta,
                const float *freq_factors, float mscale, kiln_rope_mode mode);

/* In place: x = softmax(x) over n values. */
void kiln__softmax(float *x, size_t n);

/* In place: gate = silu(gate) * up. */
void kiln__swiglu(float *gate, const float *up, size_t n);

/* kiln__swiglu with AVX-512F where the CPU has it (ops_fast.c), else the
 * reference. The vector exp differs from expf by rounding only (relative
 * error of the result below about 1e-6); each value's result is the same
 * wherever it sits in the row. */
void kiln__swiglu_fast(float *gate, const float *up, size_t n);

/* In place: x = gelu(x) with the tanh approximation (GPT-2, Phi-2's gelu_new). */
void kiln__gelu_tanh(float *x, size_t n);

/* Dot product of two float rows. */
float kiln__dot_f32(const float *a, const float *b, size_t n);

#endif /* KILN_KERNELS_OPS_H */
