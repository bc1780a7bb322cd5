/* src/kernels/qmatmul_x16_q4k.h - the x16 form of Q4_K weights
 * (qmatmul_x16_q4k.c; internal to src/kernels/qmatmul*.c). */
#ifndef KILN_KERNELS_QMATMUL_X16_Q4K_H
#define KILN_KERNELS_QMATMUL_X16_Q4K_H

#include "kernels/qmatmul_x16.h"

/* Q4_K interleaved by 16 rows: the group layout is described at the top of
 * qmatmul_x16_q4k.c. rows and panel need AVX512F/BW/VL/VNNI. */
extern const struct kiln_x16_type kiln__x16_q4_k;

#endif /* KILN_KERNELS_QMATMUL_X16_Q4K_H */
