/* src/kernels/qmatmul_vnni.c - the vnni256 level of the quantized matmul:
 * the row kernels of qmatmul_rows.h with AVX512-VNNI's vpdpbusd on 256-bit
 * registers (AVX512VL) as the byte dot product. */
#include <immintrin.h>

#include "kernels/qmatmul_impl.h"

#define QR_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512vnni")))
#define QR_DOT(u, a) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (a))
#define QR_ENTRY kiln__qrow_vnni256
#include "kernels/qmatmul_rows.h"
