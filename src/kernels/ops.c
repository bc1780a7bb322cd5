/* src/kernels/ops.c - scalar reference row operations. Sums accumulate in
 * double where the row is long and the result is a normaliser, so that the
 * reference stays close to PyTorch's pairwise float sums. */
#include "kernels/ops.h"

#include <math.h>

void kiln__rmsnorm(float *out, const float *x, const float *w, size_t n, float eps) {
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / (double)n + eps));
    for (size_t i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

void kiln__layernorm(float *out, const float *x, const float *w, const float *b, size_t n,
                     float eps) {
    double mean = 0.0;
    for (size_t i = 0; i < n; i++) mean += x[i];
    mean /= (double)n;
    double var = 0.0;
    for (size_t i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= (double)n;
    float inv = (float)(1.0 / sqrt(var + eps));
    for (size_t i = 0; i < n; i++) {
        float v = (float)(x[i] - mean) * inv * w[i];
        out[i] = b ? v + b[i] : v;
    }
}

void kiln__rope(float *x, int n_heads, int head_dim, int rot_dim, int pos, float theta,
                const float *freq_factors, float mscale, kiln_rope_mode mode) {
    int half = rot_dim / 2;
    for (int i = 0; i < half; i++) {
        /* Same expression as the references: inv_freq = 1 / theta^(2i/d). */
        float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)rot_dim);
        if (freq_factors) inv_freq /= freq_factors[i];
        float angle = (float)pos * inv_freq;
        float c = cosf(angle) * mscale, s = sinf(angle) * mscale;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (size_t)h * head_dim;
            int a = mode == KILN_ROPE_MODE_NEOX ? i : 2 * i;
            int b = mode == KILN_ROPE_MODE_NEOX ? i + half : 2 * i + 1;
            float x0 = v[a], x1 = v[b];
            v[a] = x0 * c - x1 * s;
            v[b] = x0 * s + x1 * c;
        }
    }
}

void kiln__softmax(float *x, size_t n) {
    float max = x[0];
    for (size_t i = 1; i < n; i++)
        if (x[i] > max) max = x[i];
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (size_t i = 0; i < n; i++) x[i] *= inv;
}

void kiln__swiglu(float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void kiln__gelu_tanh(float *x, size_t n) {
    const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

float kiln__dot_f32(const float *a, const float *b, size_t n) {
    float sum = 0.0f;
    for (size_t i = 0; i < n; i++) sum += a[i] * b[i];
    return sum;
}
