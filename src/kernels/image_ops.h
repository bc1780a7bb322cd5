/* src/kernels/image_ops.h - the element-wise and normalization operations
 * of diffusion networks on channel-last [n_pix][c] float32 data (internal).
 * Scalar reference versions, threaded over channels or rows, and AVX-512F
 * and AVX2+FMA paths chosen at run time. */
#ifndef KILN_KERNELS_IMAGE_OPS_H
#define KILN_KERNELS_IMAGE_OPS_H

#include <stddef.h>

#include "core/threadpool.h"
#include "kiln/status.h"

/* GroupNorm (PyTorch's): channels split into n_groups consecutive groups;
 * each group normalized over all its pixels and channels with the biased
 * variance, then scaled by w[c] and shifted by b[c]. x is [n_pix][c];
 * out may alias x. c must be a multiple of n_groups. Statistics are summed
 * in double. When silu is nonzero SiLU follows (the usual norm-act pair). */
void kiln__group_norm(kiln_pool *pool, float *out, const float *x, size_t n_pix, int c,
                      int n_groups, const float *w, const float *b, float eps, int silu);
/* The scalar reference of kiln__group_norm, threaded over groups. */
void kiln__group_norm_ref(kiln_pool *pool, float *out, const float *x, size_t n_pix, int c,
                          int n_groups, const float *w, const float *b, float eps, int silu);
/* The AVX-512F GroupNorm (group_norm_simd.c), threaded over pixels; it
 * allocates small statistics buffers. Returns 1 when done, 0 (nothing
 * written) when the CPU lacks AVX-512F, c is not a multiple of 16, or
 * memory is short: the caller then runs the reference. */
int kiln__group_norm_avx512(kiln_pool *pool, float *out, const float *x, size_t n_pix, int c, int n_groups,
                            const float *w, const float *b, float eps, int silu);

/* The same with AVX2+FMA (group_norm_avx2.c), for CPUs without AVX-512F:
 * 0 (nothing written) when the CPU lacks AVX2 or FMA, c is not a multiple
 * of 8, or memory is short. */
int kiln__group_norm_avx2(kiln_pool *pool, float *out, const float *x, size_t n_pix, int c, int n_groups,
                          const float *w, const float *b, float eps, int silu);

/* In place x = x * sigmoid(x): AVX-512F, else AVX2, where the CPU has it. */
void kiln__silu(float *x, size_t n);
/* The scalar reference of kiln__silu. */
void kiln__silu_ref(float *x, size_t n);
/* kiln__silu with AVX-512F; 0 (nothing done) where the CPU lacks it. */
int kiln__silu_avx512(float *x, size_t n);
/* kiln__silu with AVX2+FMA; 0 (nothing done) where the CPU lacks them. */
int kiln__silu_avx2(float *x, size_t n);
/* In place x = x * sigmoid(1.702 x) (CLIP's quick_gelu). */
void kiln__quick_gelu(float *x, size_t n);
/* In place x = x/2 (1 + erf(x / sqrt 2)) (exact GELU). */
void kiln__gelu_erf(float *x, size_t n);

/* LayerNorm (kiln__layernorm) of each of rows rows of d values, x
 * [rows][d] into out (no overlap), threaded over rows; simd nonzero takes
 * the AVX-512F path where the CPU has it (rounding differs only), zero
 * the plain reference. */
void kiln__layernorm_rows(kiln_pool *pool, float *out, const float *x, size_t rows, size_t d, const float *w,
                          const float *b, float eps, int simd);
/* GEGLU in place: f is [rows][2d] (value half, gate half); afterwards its
 * first rows * d values are [rows][d] = value * GELU(gate) (exact GELU as
 * kiln__gelu_erf). Threaded over rows; simd as above (the AVX-512 erf is
 * Abramowitz-Stegun 7.1.26, absolute error below 1.5e-7). */
void kiln__geglu_rows(kiln_pool *pool, float *f, size_t rows, size_t d, int simd);

/* Nearest-neighbour resize of [h][w][c] to [oh][ow][c] as PyTorch's
 * F.interpolate(mode="nearest"): source index floor(dst * in / out). */
void kiln__upsample_nearest(float *out, int oh, int ow, const float *x, int h, int w, int c);

/* Multi-head attention: for each query row i < n_q and head h,
 * out[i][h*d..] = softmax(scale q_i,h . k_j,h) v_j,h over j < n_kv (j <= i
 * when causal). q rows are q_stride floats apart, k and v rows kv_stride,
 * out rows out_stride; head h starts at h*head_dim in each. Threaded over
 * query rows; allocates its score rows (KILN_ERR_OUT_OF_MEMORY when that fails). */
kiln_status kiln__mha(kiln_pool *pool, float *out, size_t out_stride, const float *q, size_t q_stride,
                      const float *k, const float *v, size_t kv_stride, int n_q, int n_kv, int n_heads,
                      int head_dim, int causal);

/* The same attention through kiln__matmul_fast: per head, scores for a
 * block of queries as one product with the head's keys, a threaded
 * softmax, and one product with its transposed values. Same arguments and
 * errors; results differ from kiln__mha's in rounding only. For the long
 * pixel sequences of the UNet and VAE. */
kiln_status kiln__mha_fast(kiln_pool *pool, float *out, size_t out_stride, const float *q, size_t q_stride,
                           const float *k, const float *v, size_t kv_stride, int n_q, int n_kv, int n_heads,
                           int head_dim, int causal);

#endif /* KILN_KERNELS_IMAGE_OPS_H */
