/* src/kernels/qmatmul_x16.h - quantized weights interleaved by 16 rows
 * (internal to src/kernels/qmatmul*.c).
 *
 * Token generation reads every weight once per token, so its speed is the
 * rate at which one core turns weight bytes into dot products. In the
 * file's layout (one row after another) a 512-bit register holds blocks of
 * one row, and each block's scale has to be gathered and spread over its
 * lanes. The x16 layout stores 16 rows together instead: each int32 lane of
 * a 512-bit register holds four quants of one row (lane r = row r), each
 * 32-bit group of activations is broadcast to all lanes, and one vector of
 * 16 scales serves a block of all 16 rows. No permutes, no horizontal sums,
 * no scalar scale loads.
 *
 * The layout is made once at load (kiln__qmatmul_x16_pack, in place: the
 * same bytes in all) and only on a CPU that runs the avx512 level; a matrix
 * so packed is given to kiln__qmatmul_multi with layout KILN_QLAYOUT_X16.
 * Matrices are packed by groups of 16 consecutive rows: group g (rows 16 g
 * .. 16 g + 15) occupies the bytes the 16 rows occupied in the file, and
 * each type defines the order inside a group (its qmatmul_x16_<type>.c).
 */
#ifndef KILN_KERNELS_QMATMUL_X16_H
#define KILN_KERNELS_QMATMUL_X16_H

#include <stddef.h>

#include "kernels/qmatmul_impl.h"

/* Rows per interleaved group. */
#define KILN_X16_ROWS 16

/* The x16 form of one weight type. */
struct kiln_x16_type {
    kiln_dtype wtype; /* the weight type */
    /* Write the x16 group of the 16 file-layout rows at src (row_bytes =
     * kiln__tensor_bytes(wtype, n_in) each) to dst (16 * row_bytes bytes,
     * not overlapping src). */
    void (*pack)(const void *src, void *dst, size_t n_in);
    /* out[k][r] = row r of the group . activation row t0 + k of a (the
     * meaning of kiln__qdot_ref), r < 16, k < nt (1..KILN_QROW_MAX_TOK). */
    void (*rows)(const void *group, const kiln_qact *a, size_t t0, int nt, float out[][KILN_X16_ROWS]);
    /* Fill the panel's u, s and b (struct kiln_qpanel) for the GEMM from
     * the group, as unpacking the 16 file rows would. */
    void (*panel)(const void *group, size_t n_in, struct kiln_qpanel *p);
};

/* The x16 forms, one per file (qmatmul_x16_<type>.c); a new one is
 * declared here and listed in the table of qmatmul_x16.c. */
extern const struct kiln_x16_type kiln__x16_q8_0; /* qmatmul_x16_legacy.c */
extern const struct kiln_x16_type kiln__x16_q4_0; /* qmatmul_x16_legacy.c */
extern const struct kiln_x16_type kiln__x16_q5_0; /* qmatmul_x16_legacy.c */
extern const struct kiln_x16_type kiln__x16_q4_k; /* qmatmul_x16_q4k.c */
extern const struct kiln_x16_type kiln__x16_q6_k; /* qmatmul_x16_q6k.c */

/* The x16 form of wtype, or NULL when it has none. */
const struct kiln_x16_type *kiln__x16_find(kiln_dtype wtype);

#endif /* KILN_KERNELS_QMATMUL_X16_H */
