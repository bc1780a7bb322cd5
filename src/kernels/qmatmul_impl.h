/* src/kernels/qmatmul_impl.h - what the files of the quantized matmul
 * share (internal to src/kernels/qmatmul*.c): the per-level kernels and the
 * unpacking of weight rows into groups (see qmatmul.h for the formula). */
#ifndef KILN_KERNELS_QMATMUL_IMPL_H
#define KILN_KERNELS_QMATMUL_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/qmatmul.h"

/* Most tokens one row kernel call takes (kiln__qrow_*). */
#define KILN_QROW_MAX_TOK 4
/* Weight rows per panel of the AVX-512 GEMM (one 512-bit register of int32). */
#define KILN_QPANEL_ROWS 16

/* The 6-bit scales and mins of a Q4_K super-block's 8 groups
 * (kiln__get_scale_min_k4), four bytes to a word: sm[0] the scales of
 * groups 0-3, sm[1] of 4-7, sm[2] the mins of 0-3, sm[3] of 4-7. */
static inline void kiln__q4k_scale_words(const uint8_t scales[12], uint32_t sm[4]) {
    uint32_t w0, w1, w2;
    memcpy(&w0, scales, 4);
    memcpy(&w1, scales + 4, 4);
    memcpy(&w2, scales + 8, 4);
    sm[0] = w0 & 0x3f3f3f3fu;
    sm[1] = (w2 & 0x0f0f0f0fu) | (((w0 >> 6) & 0x03030303u) << 4);
    sm[2] = w1 & 0x3f3f3f3fu;
    sm[3] = ((w2 >> 4) & 0x0f0f0f0fu) | (((w1 >> 6) & 0x03030303u) << 4);
}

/* Values per weight group of a supported type (32, or 16 for Q6_K). */
int kiln__qgroup_size(kiln_dtype wtype);
/* The zero point z of a supported type whose group bias is z times its
 * scale (value = s * (u + z): -128 Q8_0, -8 Q4_0, -16 Q5_0, -32 Q6_K); 0
 * for Q4_K, whose bias comes from its own mins. */
int kiln__qgroup_zero(kiln_dtype wtype);

/* Unpack one weight row of n_in values: u[i] the unsigned integer of value
 * i (skipped when u is NULL), s[g] and b[g] the scale and bias of group g
 * (value = s * u + b). */
void kiln__qgroups_row(kiln_dtype wtype, const void *wrow, size_t n_in, uint8_t *u, float *s, float *b);

/* out[k] = row . activation row (t0 + k) for k < nt (1..KILN_QROW_MAX_TOK),
 * with 256-bit AVX2 (maddubs) or AVX512-VNNI (vpdpbusd) arithmetic; wtype
 * is one kiln__qmatmul_supports accepts, and a->k_rule is
 * kiln__qmatmul_k_rule(wtype) (the K-quant kernels use one activation scale
 * per 256 values). */
void kiln__qrow_avx2(kiln_dtype wtype, const void *wrow, const kiln_qact *a, size_t t0, int nt, float *out);
void kiln__qrow_vnni256(kiln_dtype wtype, const void *wrow, const kiln_qact *a, size_t t0, int nt,
                        float *out);
/* The same with 512-bit AVX512-VNNI (qmatmul_row512.c). */
void kiln__qrow_avx512(kiln_dtype wtype, const void *wrow, const kiln_qact *a, size_t t0, int nt,
                       float *out);

/* Bytes of the units that kiln__qact_nibble_order moves: 16 for Q4_0 and
 * Q5_0 (half a block), 32 for Q4_K (one group); 0 for types whose avx512
 * row kernel reads the quants in value order. */
size_t kiln__qnibble_unit(kiln_dtype wtype);
/* Copy activation row t of q->qs into q->qs_nib reordered for the avx512
 * row kernels of 4-bit weights: in each 128 values, the even units of
 * `unit` bytes first, then the odd ones (the values that meet the low
 * nibbles of 64 weight bytes, then those that meet the high nibbles); a
 * last part shorter than 128 values stays in value order. */
void kiln__qact_nibble_order(const kiln_qact *q, size_t t, size_t unit);

/* Fill the sums ds32 and ds16 of the 32-value block k of activation row t
 * from its stored quants and scale. */
void kiln__qact_block_sums(const kiln_qact *q, size_t t, size_t k);

/* Activation row quantizer with AVX2 (the same bytes and scales as the
 * scalar kiln__qact_quantize_row). */
void kiln__qact_quantize_row_avx2(const kiln_qact *q, size_t t, const float *x);

/* A panel of KILN_QPANEL_ROWS weight rows unpacked for the AVX-512 GEMM. */
struct kiln_qpanel {
    uint8_t *u;     /* [n_in / 4][16 rows][4] unsigned integers, four values of a row per int32 */
    float *s;       /* [n_groups][16] group scales (0 for rows past the matrix) */
    float *b;       /* [n_groups][16] group biases */
    uint8_t *row_u; /* [16][n_in] the rows' integers before transposing (+ 64 bytes of slack) */
    float *row_s;   /* [n_groups] one row's scales */
    float *row_b;   /* [n_groups] one row's biases */
};

/* Bytes of a panel's arrays for rows of n_in values (each part 64-aligned). */
size_t kiln__qpanel_bytes(size_t n_in);
/* Carve a panel out of `mem` (kiln__qpanel_bytes(n_in) bytes, 64-aligned). */
void kiln__qpanel_init(struct kiln_qpanel *p, void *mem, size_t n_in);

/* Tokens per tile of the AVX-512 GEMM. */
#define KILN_QTILE_TOK 8

/* Quantized activations regrouped for the AVX-512 GEMM: tokens in tiles of
 * 8 (the last one padded with zero rows), inside a tile four values of each
 * token per int32, so one pointer serves the 8 broadcasts of a step. */
struct kiln_qtiles {
    int8_t *qs;     /* [n_tiles][n_in / 4][8 tokens][4] quants */
    float *d;       /* [n_tiles][n_in / 32][8] block scales */
    float *ds;      /* [n_tiles][n_groups][8] d * sum per weight group (ds32 or ds16) */
    int32_t *zs;    /* [n_tiles][n_groups][8] zero * the sum of the group's quants: the
                       integer dot product of the weights' zero point (the start of each
                       group's sums, so that the bias needs no float step) */
    size_t n_in;    /* values per token */
    size_t group;   /* values per weight group: 32, or 16 (Q6_K) */
    int zero;       /* kiln__qgroup_zero of the weight type (0: the panel's b is added) */
    int k_rule;     /* kiln__qmatmul_k_rule of the weight type (one scale per 256 values) */
};

/* Pack tile `tile` (tokens 8 * tile .. n_tok - 1 at most) of a into at. */
void kiln__qtiles_pack(const kiln_qact *a, size_t n_tok, size_t tile, const struct kiln_qtiles *at);

/* Unpack rows row0 .. row0 + n_rows - 1 (n_rows <= 16) of w (file layout,
 * row_bytes apart) into panel p for the AVX-512 GEMM; rows past them are
 * zero (their results are not stored). */
void kiln__qpanel_unpack_avx512(kiln_dtype wtype, const char *w, size_t row_bytes, size_t row0, size_t n_rows,
                                size_t n_in, struct kiln_qpanel *p);
/* y[t][row0 + r] for r < n_rows (<= 16), t < n_tok: the panel's rows times
 * the tiled activations (y has n_out columns). */
void kiln__qgemm_panel_avx512(const struct kiln_qpanel *p, const struct kiln_qtiles *at, size_t n_tok, float *y,
                              size_t n_out, size_t row0, size_t n_rows);

#endif /* KILN_KERNELS_QMATMUL_IMPL_H */
