/* src/llm/kv_cache.c - the KV cache: keys and values of every layer at
 * every position, in float16 (default) or float32, allocated once. */
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "llm/llm_internal.h"
#include "tensor/fp16.h"

/* Bytes of one element. */
static size_t elem_size(kiln_kv_type type) {
    switch (type) {
    case KILN_KV_F16: return 2;
    case KILN_KV_F32: return 4;
    }
    return 4;
}

kiln_status kiln__kv_init(struct kiln_kv_cache *kv, kiln_kv_type type, int32_t n_layer,
                          int32_t n_ctx, int32_t row) {
    memset(kv, 0, sizeof *kv);
    if (type != KILN_KV_F16 && type != KILN_KV_F32)
        return kiln__fail(KILN_ERR_INVALID_ARG, "unknown KV cache type %d", (int)type);
    size_t bytes;
    if (kiln__mul_overflows((size_t)n_layer * (size_t)n_ctx, (size_t)row * elem_size(type), &bytes))
        return kiln__fail(KILN_ERR_TOO_LARGE, "KV cache of %d positions is too large", (int)n_ctx);
    kv->type = type;
    kv->n_ctx = n_ctx;
    kv->row = row;
    kv->bytes = bytes;
    kv->k = kiln__aligned_alloc(bytes, KILN_ALIGN);
    kv->v = kiln__aligned_alloc(bytes, KILN_ALIGN);
    if (!kv->k || !kv->v) {
        kiln__kv_free(kv);
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "out of memory for a KV cache of %d positions "
                          "(%zu MiB)", (int)n_ctx, (2 * bytes) >> 20);
    }
    return KILN_OK;
}

void kiln__kv_free(struct kiln_kv_cache *kv) {
    kiln__aligned_free(kv->k);
    kiln__aligned_free(kv->v);
    kv->k = kv->v = NULL;
}

/* Byte offset of (layer l, position pos). */
static size_t offset(const struct kiln_kv_cache *kv, int l, int pos) {
    return ((size_t)l * (size_t)kv->n_ctx + (size_t)pos) * (size_t)kv->row * elem_size(kv->type);
}

void kiln__kv_store(struct kiln_kv_cache *kv, int l, int pos, int n, const float *k,
                    const float *v) {
    size_t vals = (size_t)n * (size_t)kv->row;
    char *kd = (char *)kv->k + offset(kv, l, pos), *vd = (char *)kv->v + offset(kv, l, pos);
    switch (kv->type) {
    case KILN_KV_F16:
        kiln__f32_to_f16_row(k, (uint16_t *)(void *)kd, vals);
        kiln__f32_to_f16_row(v, (uint16_t *)(void *)vd, vals);
        break;
    case KILN_KV_F32:
        memcpy(kd, k, vals * sizeof(float));
        memcpy(vd, v, vals * sizeof(float));
        break;
    }
}

const void *kiln__kv_keys(const struct kiln_kv_cache *kv, int l) {
    return (const char *)kv->k + offset(kv, l, 0);
}

const void *kiln__kv_values(const struct kiln_kv_cache *kv, int l) {
    return (const char *)kv->v + offset(kv, l, 0);
}
