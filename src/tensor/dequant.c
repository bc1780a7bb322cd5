/* src/tensor/dequant.c - scalar reference decoders for every block type.
 *
 * Each function mirrors the value formula written beside its struct in
 * quant_blocks.h. Products and sums are separate statements so that no
 * compiler fuses them into an FMA: the results must match ggml (and the
 * goldens made with gguf-py) bit for bit.
 */
#include "tensor/dequant.h"

#include <stdint.h>
#include <string.h>

#include "core/error.h"
#include "tensor/fp16.h"
#include "tensor/tensor.h"

void kiln__dequant_block_q4_0(const kiln_block_q4_0 *b, float *y) {
    const float d = kiln__f16_to_f32(b->d);
    for (int j = 0; j < KILN_QK / 2; j++) {
        y[j] = d * (float)((b->qs[j] & 0x0f) - 8);
        y[j + KILN_QK / 2] = d * (float)((b->qs[j] >> 4) - 8);
    }
}

void kiln__dequant_block_q4_1(const kiln_block_q4_1 *b, float *y) {
    const float d = kiln__f16_to_f32(b->d);
    const float m = kiln__f16_to_f32(b->m);
    for (int j = 0; j < KILN_QK / 2; j++) {
        const float lo = d * (float)(b->qs[j] & 0x0f);
        const float hi = d * (float)(b->qs[j] >> 4);
        y[j] = lo + m;
        y[j + KILN_QK / 2] = hi + m;
    }
}

/* The 32 fifth bits of a Q5 block as one little-endian word. */
static uint32_t q5_high_bits(const uint8_t qh[4]) {
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

void kiln__dequant_block_q5_0(const kiln_block_q5_0 *b, float *y) {
    const float d = kiln__f16_to_f32(b->d);
    const uint32_t qh = q5_high_bits(b->qh);
    for (int j = 0; j < KILN_QK / 2; j++) {
        const int q0 = (b->qs[j] & 0x0f) | (int)((qh >> j) & 1) << 4;
        const int q1 = (b->qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
        y[j] = d * (float)(q0 - 16);
        y[j + KILN_QK / 2] = d * (float)(q1 - 16);
    }
}

void kiln__dequant_block_q5_1(const kiln_block_q5_1 *b, float *y) {
    const float d = kiln__f16_to_f32(b->d);
    const float m = kiln__f16_to_f32(b->m);
    const uint32_t qh = q5_high_bits(b->qh);
    for (int j = 0; j < KILN_QK / 2; j++) {
        const int q0 = (b->qs[j] & 0x0f) | (int)((qh >> j) & 1) << 4;
        const int q1 = (b->qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
        const float lo = d * (float)q0;
        const float hi = d * (float)q1;
        y[j] = lo + m;
        y[j + KILN_QK / 2] = hi + m;
    }
}

void kiln__dequant_block_q8_0(const kiln_block_q8_0 *b, float *y) {
    const float d = kiln__f16_to_f32(b->d);
    for (int j = 0; j < KILN_QK; j++) y[j] = d * (float)b->qs[j];
}

void kiln__dequant_block_q8_1(const kiln_block_q8_1 *b, float *y) {
    const float d = kiln__f16_to_f32(b->d);
    for (int j = 0; j < KILN_QK; j++) y[j] = d * (float)b->qs[j];
}

void kiln__dequant_block_q2_K(const kiln_block_q2_K *b, float *y) {
    const float d = kiln__f16_to_f32(b->d);
    const float dmin = kiln__f16_to_f32(b->dmin);
    for (int i = 0; i < KILN_QK_K; i++) {
        /* value i = 128h + 32s + l sits in qs[32h + l] at bit 2s */
        const int h = i / 128, s = (i / 32) % 4, l = i % 32;
        const int q = (b->qs[32 * h + l] >> (2 * s)) & 3;
        const uint8_t sc = b->scales[i / 16];
        const float dl = d * (float)(sc & 0x0f);
        const float ml = dmin * (float)(sc >> 4);
        const float v = dl * (float)q;
        y[i] = v - ml;
    }
}

void kiln__dequant_block_q3_K(const kiln_block_q3_K *b, float *y) {
    const float d = kiln__f16_to_f32(b->d);
    for (int i = 0; i < KILN_QK_K; i++) {
        /* value i = 128h + 32s + l: low bits in qs[32h + l] at bit 2s, high
         * bit in hmask[l] at bit 4h + s; a clear high bit subtracts 4 */
        const int h = i / 128, s = (i / 32) % 4, l = i % 32;
        const int lo = (b->qs[32 * h + l] >> (2 * s)) & 3;
        const int hbit = (b->hmask[l] >> (4 * h + s)) & 1;
        const float dl = d * (float)(kiln__get_scale_q3_K(i / 16, b->scales) - 32);
        y[i] = dl * (float)(lo - (hbit ? 0 : 4));
    }
}

void kiln__dequant_block_q4_K(const kiln_block_q4_K *b, float *y) {
    const float d = kiln__f16_to_f32(b->d);
    const float dmin = kiln__f16_to_f32(b->dmin);
    for (int i = 0; i < KILN_QK_K; i++) {
        /* value i = 64c + 32n + l: nibble n of qs[32c + l]; sub-block i / 32 */
        const int c = i / 64, n = (i / 32) % 2, l = i % 32;
        const int q = (b->qs[32 * c + l] >> (4 * n)) & 0x0f;
        uint8_t sc, mn;
        kiln__get_scale_min_k4(i / 32, b->scales, &sc, &mn);
        const float dl = d * (float)sc;
        const float ml = dmin * (float)mn;
        const float v = dl * (float)q;
        y[i] = v - ml;
    }
}

void kiln__dequant_block_q5_K(const kiln_block_q5_K *b, float *y) {
    const float d = kiln__f16_to_f32(b->d);
    const float dmin = kiln__f16_to_f32(b->dmin);
    for (int i = 0; i < KILN_QK_K; i++) {
        /* as Q4_K, plus bit 4 from qh[l] at bit 2c + n */
        const int c = i / 64, n = (i / 32) % 2, l = i % 32;
        const int lo = (b->qs[32 * c + l] >> (4 * n)) & 0x0f;
        const int hi = (b->qh[l] >> (2 * c + n)) & 1;
        uint8_t sc, mn;
        kiln__get_scale_min_k4(i / 32, b->scales, &sc, &mn);
        const float dl = d * (float)sc;
        const float ml = dmin * (float)mn;
        const float v = dl * (float)(lo | hi << 4);
        y[i] = v - ml;
    }
}

void kiln__dequant_block_q6_K(const kiln_block_q6_K *b, float *y) {
    const float d = kiln__f16_to_f32(b->d);
    for (int i = 0; i < KILN_QK_K; i++) {
        /* value i = 128h + 32k + l (k = 0..3): low nibble (k < 2) or high
         * nibble (k >= 2) of ql[64h + 32(k % 2) + l], high bits 2k..2k+1 of
         * qh[32h + l] */
        const int h = i / 128, k = (i / 32) % 4, l = i % 32;
        const int lo = (b->ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0x0f;
        const int hi = (b->qh[32 * h + l] >> (2 * k)) & 3;
        const float dl = d * (float)b->scales[i / 16];
        y[i] = dl * (float)((lo | hi << 4) - 32);
    }
}

void kiln__dequant_block_q8_K(const kiln_block_q8_K *b, float *y) {
    for (int j = 0; j < KILN_QK_K; j++) y[j] = b->d * (float)b->qs[j];
}

/* Decode nb consecutive blocks of one type with its block function. */
#define DEQUANT_BLOCKS(name, qk)                                               \
    do {                                                                       \
        const kiln_block_##name *blocks = src;                                 \
        for (size_t i = 0; i < nb; i++) kiln__dequant_block_##name(&blocks[i], dst + i * (qk)); \
    } while (0)

kiln_status kiln__dequantize(kiln_dtype type, const void *src, float *dst, size_t n_elems) {
    const char *name = kiln_dtype_name(type);
    const size_t qk = kiln_dtype_block_elems(type);
    if (qk == 0) return kiln__fail(KILN_ERR_UNSUPPORTED, "dequantize: unknown type %d", (int)type);
    if (n_elems % qk != 0)
        return kiln__fail(KILN_ERR_INVALID_ARG,
                          "dequantize %s: %zu values is not a multiple of the block size %zu",
                          name, n_elems, qk);
    if (n_elems == 0) return KILN_OK;
    if (!src || !dst) return kiln__fail(KILN_ERR_INVALID_ARG, "dequantize %s: NULL buffer", name);
    if ((uintptr_t)src % kiln__dtype_align(type) != 0)
        return kiln__fail(KILN_ERR_INVALID_ARG, "dequantize %s: source not aligned to %zu bytes",
                          name, kiln__dtype_align(type));
    const size_t nb = n_elems / qk; /* number of blocks */
    switch (type) {
    case KILN_DTYPE_F32: memcpy(dst, src, n_elems * sizeof(float)); return KILN_OK;
    case KILN_DTYPE_F16: kiln__f16_to_f32_row(src, dst, n_elems); return KILN_OK;
    case KILN_DTYPE_BF16: {
        const uint16_t *h = src;
        for (size_t i = 0; i < n_elems; i++) dst[i] = kiln__bf16_to_f32(h[i]);
        return KILN_OK;
    }
    case KILN_DTYPE_Q4_0: DEQUANT_BLOCKS(q4_0, KILN_QK); return KILN_OK;
    case KILN_DTYPE_Q4_1: DEQUANT_BLOCKS(q4_1, KILN_QK); return KILN_OK;
    case KILN_DTYPE_Q5_0: DEQUANT_BLOCKS(q5_0, KILN_QK); return KILN_OK;
    case KILN_DTYPE_Q5_1: DEQUANT_BLOCKS(q5_1, KILN_QK); return KILN_OK;
    case KILN_DTYPE_Q8_0: DEQUANT_BLOCKS(q8_0, KILN_QK); return KILN_OK;
    case KILN_DTYPE_Q8_1: DEQUANT_BLOCKS(q8_1, KILN_QK); return KILN_OK;
    case KILN_DTYPE_Q2_K: DEQUANT_BLOCKS(q2_K, KILN_QK_K); return KILN_OK;
    case KILN_DTYPE_Q3_K: DEQUANT_BLOCKS(q3_K, KILN_QK_K); return KILN_OK;
    case KILN_DTYPE_Q4_K: DEQUANT_BLOCKS(q4_K, KILN_QK_K); return KILN_OK;
    case KILN_DTYPE_Q5_K: DEQUANT_BLOCKS(q5_K, KILN_QK_K); return KILN_OK;
    case KILN_DTYPE_Q6_K: DEQUANT_BLOCKS(q6_K, KILN_QK_K); return KILN_OK;
    case KILN_DTYPE_Q8_K: DEQUANT_BLOCKS(q8_K, KILN_QK_K); return KILN_OK;
    case KILN_DTYPE_I8:
    case KILN_DTYPE_I16:
    case KILN_DTYPE_I32:
    case KILN_DTYPE_I64:
    case KILN_DTYPE_F64:
    case KILN_DTYPE_U8:
    case KILN_DTYPE_BOOL:
    case KILN_DTYPE_F8_E4M3:
    case KILN_DTYPE_F8_E5M2:
    case KILN_DTYPE_UNKNOWN: break;
    }
    return kiln__fail(KILN_ERR_UNSUPPORTED, "dequantize: no decoder for %s", name);
}
