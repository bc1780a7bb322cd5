/* src/tensor/fp16.h - conversions between f32 and the 16-bit float types.
 *
 * f16 is IEEE 754 binary16 (1 sign, 5 exponent, 10 mantissa bits); bf16 is
 * the top half of an f32 (1 sign, 8 exponent, 7 mantissa bits). The inline
 * functions here are the scalar reference: round to nearest, ties to even,
 * with subnormals, infinities and NaNs handled exactly. NaNs stay NaN and are
 * made quiet (the conversion F16C hardware and ggml's bf16 helper perform).
 * fp16.c adds whole-row f16 conversions that use F16C when the CPU has it.
 */
#ifndef KILN_TENSOR_FP16_H
#define KILN_TENSOR_FP16_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The bits of an f32, and back, without aliasing trouble. */
static inline uint32_t kiln__f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static inline float kiln__f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* binary16 -> f32. Exact: every f16 value is an f32 value. */
static inline float kiln__f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {
        /* infinity (man == 0) or NaN (payload moved to the top mantissa
         * bits, quiet bit forced as F16C does) */
        bits = sign | 0x7f800000u | (man << 13) | (man ? 0x400000u : 0u);
    } else if (exp == 0) {
        if (man == 0) {
            bits = sign; /* signed zero */
        } else {
            /* subnormal man * 2^-24: shift the leading 1 up to the implicit
             * bit position; each shift lowers the exponent by one. 113 is the
             * f32 biased exponent of 2^-14 (127 - 14). */
            uint32_t e = 113;
            while (!(man & 0x400u)) {
                man <<= 1;
                e--;
            }
            bits = sign | (e << 23) | ((man & 0x3ffu) << 13);
        }
    } else {
        /* normal: rebias the exponent from 15 to 127 (add 112) */
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    return kiln__f32_from_bits(bits);
}

/* f32 -> binary16, round to nearest, ties to even. Values from 65520 up
 * (halfway past the largest f16, 65504) become infinity; values up to 2^-25
 * in magnitude become zero. */
static inline uint16_t kiln__f32_to_f16(float f) {
    uint32_t x = kiln__f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) /* NaN: quiet it, keep the top payload bits */
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    if (ax >= 0x477ff000u) /* >= 65520, or infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (ax >= 0x38800000u) {
        /* normal f16 range (>= 2^-14): rebias the exponent (subtract 112
         * << 23), keep 10 mantissa bits, round on the 13 dropped ones. A
         * carry out of the mantissa correctly bumps the exponent. */
        uint32_t h = (ax - 0x38000000u) >> 13;
        uint32_t rem = ax & 0x1fffu;
        if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
        return (uint16_t)(sign | h);
    }
    if (ax <= 0x33000000u) /* <= 2^-25: half an f16 subnormal step or less */
        return sign;
    /* subnormal result: the value is man * 2^(e - 150); in units of 2^-24
     * that is man >> (126 - e), with the shifted-out bits rounded. The shift
     * is 14..24 here. Rounding up to 0x400 gives the smallest normal. */
    uint32_t e = ax >> 23;
    uint32_t man = (ax & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;
    uint32_t h = man >> shift;
    uint32_t rem = man & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) h++;
    return (uint16_t)(sign | h);
}

/* bfloat16 -> f32: the 16 bits are the top half of the f32. */
static inline float kiln__bf16_to_f32(uint16_t b) {
    return kiln__f32_from_bits((uint32_t)b << 16);
}

/* f32 -> bfloat16, round to nearest, ties to even (large finite values may
 * round to infinity, as in IEEE). NaNs are kept NaN by forcing the quiet bit
 * (bit 6 of the bf16) rather than rounding, which could carry into the
 * exponent or clear the payload. */
static inline uint16_t kiln__f32_to_bf16(float f) {
    uint32_t x = kiln__f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

/* Whole rows of f16 <-> f32, n values. Same results as the scalar functions
 * above; uses F16C when the CPU has it (chosen at run time). */
void kiln__f16_to_f32_row(const uint16_t *src, float *dst, size_t n);
void kiln__f32_to_f16_row(const float *src, uint16_t *dst, size_t n);

#endif /* KILN_TENSOR_FP16_H */
