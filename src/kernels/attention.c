/* src/kernels/attention.c - reference attention of one head: scores,
 * softmax, weighted sum of values; float16 cache rows are widened on the
 * fly, element by element. */
#include "kernels/attention.h"

#include <stdint.h>
#include <string.h>

#include "kernels/ops.h"
#include "tensor/fp16.h"

/* q . k over n values, k stored as binary16. */
static float dot_f16(const float *q, const uint16_t *k, int n) {
    float sum = 0.0f;
    for (int i = 0; i < n; i++) sum += q[i] * kiln__f16_to_f32(k[i]);
    return sum;
}

void kiln__attention_head(float *out, const float *q, const void *k, const void *v,
                          kiln_dtype kv_type, size_t row_stride, int first, int last,
                          int head_dim, float scale, float *scores) {
    int n = last - first + 1;
    int f16 = kv_type == KILN_DTYPE_F16;
    for (int j = 0; j < n; j++) {
        size_t at = (size_t)(first + j) * row_stride;
        float d = f16 ? dot_f16(q, (const uint16_t *)k + at, head_dim)
                      : kiln__dot_f32(q, (const float *)k + at, (size_t)head_dim);
        scores[j] = d * scale;
    }
    kiln__softmax(scores, (size_t)n);
    memset(out, 0, (size_t)head_dim * sizeof *out);
    for (int j = 0; j < n; j++) {
        size_t at = (size_t)(first + j) * row_stride;
        float p = scores[j];
        if (f16) {
            const uint16_t *vr = (const uint16_t *)v + at;
            for (int i = 0; i < head_dim; i++) out[i] += p * kiln__f16_to_f32(vr[i]);
        } else {
            const float *vr = (const float *)v + at;
            for (int i = 0; i < head_dim; i++) out[i] += p * vr[i];
        }
    }
}
