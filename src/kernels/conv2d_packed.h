/* src/kernels/conv2d_packed.h - convolution (and linear layers, as 1x1
 * convolutions) with weights packed once for a blocked matrix product
 * (internal).
 *
 * The product is out[pixel][co] = sum_k A[pixel][k] * W[k][co] with
 * k = tap * c_in + ci ("tap" = ky * ksize + kx): A is never built: K is
 * walked in blocks of at most KC channels of one tap, so the values one
 * output pixel needs from a block are a contiguous run of one input pixel's
 * channels (or zeros, for padding), and a register-blocked micro-kernel
 * (MR pixels x NR output channels) reads them through MR row pointers and
 * multiplies them with the packed weights: panels of NR output channels,
 * each [K][NR] contiguous, zero-filled past c_out. F16 and BF16 weights
 * stay 16-bit in the pack and are widened one KC x NR block at a time;
 * any other type is widened to F32 when packing. Threads take (pixel block, panel group) items from a
 * shared counter. The micro-kernel exists as plain C (the reference),
 * with AVX-512F and with AVX2+FMA (F16C widening), chosen at run time
 * (kiln__image_isa); they differ in rounding only (fused multiply-adds).
 */
#ifndef KILN_KERNELS_CONV2D_PACKED_H
#define KILN_KERNELS_CONV2D_PACKED_H

#include <stddef.h>
#include <stdint.h>

#include "core/threadpool.h"
#include "kernels/conv2d.h"
#include "kiln/dtype.h"
#include "kiln/status.h"

/* Output channels per weight panel (four AVX-512 vectors). */
#define KILN_CONV_NR 64
/* Pixels per micro-kernel strip. */
#define KILN_CONV_MR 6

/* Weights of one convolution in panel order. */
struct kiln_conv_packed {
    kiln_dtype type;  /* KILN_DTYPE_F32, KILN_DTYPE_F16 or KILN_DTYPE_BF16: element type of data */
    void *data;       /* [ceil(c_out / NR)][k * k * c_in][NR] (owned, 64-byte aligned) */
    int c_in;         /* input channels */
    int c_out;        /* output channels */
    int k;            /* square kernel size */
};

/* Which code path an image kernel (convolution, attention) runs. */
enum kiln_conv_isa {
    KILN_CONV_ISA_BEST,    /* the fastest this CPU supports */
    KILN_CONV_ISA_SCALAR,  /* plain C (the reference) */
    KILN_CONV_ISA_AVX512,  /* AVX-512F: KILN_ERR_UNSUPPORTED where the CPU lacks it */
    KILN_CONV_ISA_AVX2,    /* AVX2 + FMA + F16C: KILN_ERR_UNSUPPORTED where the CPU (or the kernel) lacks it */
};

/* The path `want` means on this CPU for a kernel that has the AVX-512
 * path and, when has_avx2, the AVX2 one: BEST is AVX-512 where the CPU has
 * AVX-512F, else AVX2 where it has AVX2, FMA and F16C (and has_avx2), else
 * SCALAR. A path asked for by name that the CPU or the kernel lacks:
 * KILN_ERR_UNSUPPORTED, the message naming `what` ("conv"). */
kiln_status kiln__image_isa(enum kiln_conv_isa want, int has_avx2, const char *what, enum kiln_conv_isa *out);

/* Pack PyTorch-layout weights w [c_out][c_in][k][k] of type wtype (any
 * type kiln__dequantize decodes) into *p. KILN_ERR_OUT_OF_MEMORY,
 * KILN_ERR_UNSUPPORTED for an undecodable type; *p is zeroed on failure. */
kiln_status kiln__conv_pack(struct kiln_conv_packed *p, kiln_dtype wtype, const void *w, int c_out, int c_in,
                            int k);
/* Release a pack (a zeroed one is fine). */
void kiln__conv_pack_free(struct kiln_conv_packed *p);

/* The convolution of conv2d.h (same geometry and output) with packed
 * weights: s->c_in, c_out, k must match p. bias may be NULL. Allocates
 * small per-thread buffers (KILN_ERR_OUT_OF_MEMORY). */
kiln_status kiln__conv2d_packed(kiln_pool *pool, const struct kiln_conv2d_shape *s, const struct kiln_conv_packed *p,
                                const float *bias, const float *x, int h, int w, float *y, enum kiln_conv_isa isa);

/* The same on n_img images at once: x is [n_img][h][w][c_in], y
 * [n_img][oh][ow][c_out]; each image's result is the one
 * kiln__conv2d_packed gives for it alone, bit for bit (the weights are read
 * once per block of pixels of all images). */
kiln_status kiln__conv2d_packed_batch(kiln_pool *pool, const struct kiln_conv2d_shape *s,
                                      const struct kiln_conv_packed *p, const float *bias, const float *x, int n_img,
                                      int h, int w, float *y, enum kiln_conv_isa isa);

/* A linear layer: y[t][co] = bias[co] + sum_i W[co][i] x[t][i] for t <
 * n_tok, W packed as a 1x1 convolution. */
kiln_status kiln__linear_packed(kiln_pool *pool, const struct kiln_conv_packed *p, const float *bias,
                                const float *x, size_t n_tok, float *y);

/* The AVX-512F micro-kernel (conv2d_simd.c): for pixel rows i < MR,
 * c[i][j] = (first ? bias[j] or 0 : c[i][j]) + sum over k < kc of
 * a[i][k] * b[k][j]; c is a full MR x NR tile with rows ldc floats apart. */
void kiln__conv_micro_avx512(int kc, const float *const *a, const float *b, float *c, size_t ldc, int first,
                             const float *bias);
/* n values of binary16 to float32 with AVX-512F (n a multiple of 16). */
void kiln__conv_widen_avx512(float *out, const uint16_t *in, size_t n);
/* True when the running CPU has what the AVX-512 micro-kernel needs. */
int kiln__conv_avx512_available(void);
/* The AVX2+FMA micro-kernel (conv2d_avx2.c), same contract as the AVX-512
 * one, and the F16C widening (n a multiple of 8). */
void kiln__conv_micro_avx2(int kc, const float *const *a, const float *b, float *c, size_t ldc, int first,
                           const float *bias);
void kiln__conv_widen_avx2(float *out, const uint16_t *in, size_t n);
/* n values of bfloat16 to float32 (a shift into the high half), AVX-512F
 * (n a multiple of 16) and AVX2 (n a multiple of 8). */
void kiln__conv_widen_bf16_avx512(float *out, const uint16_t *in, size_t n);
void kiln__conv_widen_bf16_avx2(float *out, const uint16_t *in, size_t n);

#endif /* KILN_KERNELS_CONV2D_PACKED_H */
