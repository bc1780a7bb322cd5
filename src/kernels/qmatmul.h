/* src/kernels/qmatmul.h - quantized weights times quantized activations
 * (internal): the integer matmul that kiln__matmul_fast uses for block-
 * quantized weights.
 *
 * Activations are quantized on the fly, row by row, as llama.cpp does for
 * the same weight type: for Q8_0, Q4_0 and Q5_0 weights by the Q8_0 rule
 * (blocks of 32, d = max|x| / 127, q = round(x / d) half away from zero, d
 * kept rounded to f16), for Q4_K and Q6_K weights by the Q8_K rule (blocks
 * of 256, the value of largest magnitude maps to -127, q rounded half to
 * even, d = 1 / (-127 / max) in f32). Either way the result is stored per
 * block of 32 (a Q8_K scale repeated over its 8 blocks), with the sums that
 * the offset and minimum terms of the weight types need. Every supported weight type is read as groups of G values (G = 32,
 * or 16 for Q6_K) of unsigned integers u with a float scale s and a float
 * bias b per group, value = s * u + b:
 *
 *   Q8_0: u = q + 128,          s = d,          b = -128 d
 *   Q4_0: u = q (0..15),        s = d,          b = -8 d
 *   Q5_0: u = q (0..31),        s = d,          b = -16 d
 *   Q4_K: u = q (0..15),        s = d * sc,     b = -dmin * mn   (G = 32)
 *   Q6_K: u = q (0..63),        s = d * sc,     b = -32 d * sc   (G = 16)
 * (the other block types keep the float path of kiln__matmul_fast).
 *
 * so that one product, for a group within activation block (da, qa), is
 *   s * da * sum(u * qa) + b * (da * sum(qa))
 * with an exact integer sum in the middle. That is the meaning the scalar
 * reference computes (kiln__qdot_ref) and every vector path reproduces up to
 * float rounding (their group and lane orders differ). Its error against
 * the float product of the decoded weights is that of the activation
 * quantization alone: at most sum |w_i| * da_block / 2.
 *
 * Paths (kiln_qlevel), picked at run time from kiln__cpu():
 *   scalar   - the reference, any CPU;
 *   avx2     - per weight row, 256-bit maddubs/madd, up to 4 tokens per
 *              pass over the row;
 *   vnni256  - the same with vpdpbusd on 256-bit registers (AVX512-VNNI+VL);
 *   avx512   - below 16 tokens the row kernels on 512-bit registers
 *              (qmatmul_row512.c); from 16 tokens a blocked
 *              GEMM: 16 weight rows are unpacked into a transposed panel and
 *              multiplied with up to 8 tokens at a time by 512-bit vpdpbusd
 *              with the activations broadcast (AVX512F/BW/VNNI).
 * Layouts (kiln_qlayout) of the weights:
 *   rows     - the file's, read by every level;
 *   x16      - groups of 16 rows interleaved (qmatmul_x16.h), made once at
 *              load by kiln__qmatmul_x16_pack, read by kiln__qmatmul_multi on
 *              the avx512 level only: below 16 tokens the type's x16 row
 *              kernel (lane r of a 512-bit register = row r, activations
 *              broadcast, one vector of 16 scales per block: no permutes
 *              or horizontal sums, fewer instructions per weight byte);
 *              from 16 tokens the same GEMM, its panels
 *              filled from the group (the same bits as from the rows).
 * Results do not depend on the thread count; they may differ in the last
 * bits between a one-token call and the same row inside a batch (the two
 * paths sum in different orders).
 */
#ifndef KILN_KERNELS_QMATMUL_H
#define KILN_KERNELS_QMATMUL_H

#include <stddef.h>
#include <stdint.h>

#include "core/threadpool.h"
#include "kiln/dtype.h"
#include "kiln/status.h"

/* Values per activation block (one scale each in kiln_qact). */
#define KILN_QA_BLOCK 32

/* Quantized activation rows. All arrays are [n_tok][...] with the row
 * length given; the quantizer writes them, the dot products read them. */
typedef struct kiln_qact {
    int8_t *qs;    /* [n_tok][n_in] quants, -127..127 */
    float *d;      /* [n_tok][n_in / 32] block scales */
    float *ds32;   /* [n_tok][n_in / 32] d * (sum of the block's 32 quants) */
    float *ds16;   /* [n_tok][n_in / 16] d * (sum of each half block's 16 quants) */
    int8_t *qs_nib; /* [n_tok][n_in] the quants in the order of the avx512 row kernels of
                     * 4-bit weights (kiln__qact_nibble_order), or NULL where not made */
    size_t n_in;   /* values per row (a multiple of 32; of 256 with k_rule) */
    int k_rule;    /* 1: quantized by the Q8_K rule (K-quant weights); 0: the Q8_0 rule */
} kiln_qact;

/* Code paths, narrowest first. */
typedef enum kiln_qlevel {
    KILN_QLEVEL_SCALAR,  /* portable C reference */
    KILN_QLEVEL_AVX2,    /* AVX2 + FMA + F16C */
    KILN_QLEVEL_VNNI256, /* plus AVX512-VNNI and AVX512VL on 256-bit registers */
    KILN_QLEVEL_AVX512,  /* plus the 512-bit blocked GEMM (AVX512F/BW) */
    KILN_QLEVEL_COUNT    /* number of levels */
} kiln_qlevel;

/* Quantize activation row t of q from the n_in floats at x by q->k_rule:
 * the quants and scales of kiln__quantize_block_q8_0 (its f16 scale, as
 * f32) or of kiln__quantize_block_q8_K, bit for bit. */
void kiln__qact_quantize_row(const kiln_qact *q, size_t t, const float *x);

/* True when kiln__qmatmul handles weights of this type with rows of n_in
 * values (Q8_0, Q4_0, Q5_0 with n_in % 32 == 0; Q4_K, Q6_K with
 * n_in % 256 == 0). */
int kiln__qmatmul_supports(kiln_dtype wtype, size_t n_in);
/* Whether kiln__matmul_fast gives these weights to the quantized kernels:
 * supported and a level above scalar on this CPU. */
int kiln__qmatmul_takes(kiln_dtype wtype, size_t n_in);
/* True when activations for this weight type follow the Q8_K rule. */
int kiln__qmatmul_k_rule(kiln_dtype wtype);

/* Widest level the CPU runs (KILN_CPU_DISABLE applies). */
kiln_qlevel kiln__qmatmul_best_level(void);
/* True when this CPU runs `level`. */
int kiln__qmatmul_level_available(kiln_qlevel level);
/* Lower-case name of a level ("scalar", "avx2", "vnni256", "avx512"). */
const char *kiln__qlevel_name(kiln_qlevel level);

/* Scalar reference: weight row `wrow` (n_in values of wtype) times
 * activation row t of a, by the formula above, accumulated in double. */
float kiln__qdot_ref(kiln_dtype wtype, const void *wrow, const kiln_qact *a, size_t t);

/* y[t][j] = sum_i w[j][i] * x[t][i] with the activations quantized, as
 * kiln__matmul's contract (x [n_tok][n_in], y [n_tok][n_out], no overlap)
 * on the widest available level. Quantized activations and the per-thread
 * panels live in a buffer owned by the calling thread and reused by its
 * later calls (grown when a call needs more; freed when the thread exits):
 * no allocation once the largest shape has been seen.
 * KILN_ERR_UNSUPPORTED unless kiln__qmatmul_supports(wtype, n_in);
 * KILN_ERR_OUT_OF_MEMORY when the buffer cannot grow. */
kiln_status kiln__qmatmul(kiln_pool *pool, kiln_dtype wtype, const void *w, size_t n_out, size_t n_in,
                          const float *x, size_t n_tok, float *y);
/* The same on a given level (tests force each one); KILN_ERR_UNSUPPORTED
 * when this CPU lacks it. */
kiln_status kiln__qmatmul_level(kiln_pool *pool, kiln_qlevel level, kiln_dtype wtype, const void *w,
                                size_t n_out, size_t n_in, const float *x, size_t n_tok, float *y);

/* Most matrices one kiln__qmatmul_multi call takes. */
#define KILN_QMAT_MAX 4

/* How a weight matrix's bytes are ordered. */
typedef enum kiln_qlayout {
    KILN_QLAYOUT_ROWS, /* the file's: row after row, each row's blocks in order */
    KILN_QLAYOUT_X16,  /* interleaved by groups of 16 rows (qmatmul_x16.h), made by
                          kiln__qmatmul_x16_pack; read by kiln__qmatmul_multi only */
} kiln_qlayout;

/* One weight matrix of a kiln__qmatmul_multi call. */
typedef struct kiln_qmat {
    kiln_dtype wtype;    /* weight type */
    const void *w;       /* [n_out][n_in] weights */
    size_t n_out;        /* rows */
    float *y;            /* [n_tok][n_out] results */
    kiln_qlayout layout; /* order of w's bytes (0: the file's) */
} kiln_qmat;

/* True when kiln__qmatmul_x16_pack takes a [n_out][n_in] matrix of wtype
 * on this CPU: a type with an x16 form, n_out a multiple of 16, rows that
 * kiln__qmatmul_supports, and the avx512 level available (and chosen:
 * KILN_CPU_DISABLE applies). */
int kiln__qmatmul_x16_ok(kiln_dtype wtype, size_t n_out, size_t n_in);
/* Rewrite w (file layout) in place into the x16 layout, the groups shared
 * out over the pool's threads. KILN_ERR_UNSUPPORTED unless
 * kiln__qmatmul_x16_ok; KILN_ERR_OUT_OF_MEMORY when a thread's group
 * buffer cannot be had (w is then unchanged or fully packed, never half:
 * the buffers are taken before any group is rewritten). */
kiln_status kiln__qmatmul_x16_pack(kiln_pool *pool, kiln_dtype wtype, void *w, size_t n_out, size_t n_in);

/* True when kiln__qmatmul_multi takes these matrices (1..KILN_QMAT_MAX):
 * each one kiln__qmatmul takes, all with the same activation rule, on a
 * CPU above the scalar level - that is, where kiln__matmul_fast would hand
 * each of them to kiln__qmatmul. */
int kiln__qmatmul_multi_ok(const kiln_qmat *mats, int n_mats, size_t n_in);
/* Several matrices with the same input x ([n_tok][n_in]): mats[m].y =
 * x W_m^T for each, the same bits as one kiln__qmatmul per matrix, with the
 * activations quantized once and one pool run for all their rows: below 16
 * tokens shared out in chunks of rows, from 16 tokens (the GEMM) in panels
 * of 16 rows when all have one type (else one GEMM per matrix). With
 * swiglu set, mats are gate and up (two, with equal n_out) and gate's y
 * ends as kiln__swiglu_fast(gate, up), applied chunk by chunk by the thread
 * that made it (after the GEMM: over the pool, by tokens). KILN_ERR_UNSUPPORTED
 * unless kiln__qmatmul_multi_ok (and the swiglu shape); else as
 * kiln__qmatmul. */
kiln_status kiln__qmatmul_multi(kiln_pool *pool, const kiln_qmat *mats, int n_mats, int swiglu, size_t n_in,
                                const float *x, size_t n_tok);

#endif /* KILN_KERNELS_QMATMUL_H */
