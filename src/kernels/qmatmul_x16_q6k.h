/* src/kernels/qmatmul_x16_q6k.h - the x16 form of Q6_K weights
 * (qmatmul_x16_q6k.c; internal to src/kernels/qmatmul*.c). */
#ifndef KILN_KERNELS_QMATMUL_X16_Q6K_H
#define KILN_KERNELS_QMATMUL_X16_Q6K_H

#include "kernels/qmatmul_x16.h"

/* Q6_K interleaved by 16 rows: the group layout is described at the top of
 * qmatmul_x16_q6k.c. rows and panel need AVX512F/BW/VL/VNNI. */
extern const struct kiln_x16_type kiln__x16_q6_k;

#endif /* KILN_KERNELS_QMATMUL_X16_Q6K_H */
