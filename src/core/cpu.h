/* src/core/cpu.h - CPU feature detection for run-time kernel dispatch.
 *
 * One binary runs on any x86-64: kernels for wider instruction sets are
 * compiled with target attributes and chosen here at run time. A feature
 * counts only when the CPU has it *and* the OS saves its registers (XCR0).
 * KILN_CPU_DISABLE (comma list, e.g. "avx512f,avx2") masks features, so
 * tests can force the scalar and narrower paths on any machine.
 */
#ifndef KILN_CORE_CPU_H
#define KILN_CORE_CPU_H

#include <stdbool.h>

/* X(field, name as in /proc/cpuinfo) */
#define KILN_CPU_FEATURE_LIST(X)                                             \
    X(sse42, "sse4_2")                                                       \
    X(avx, "avx")                                                            \
    X(f16c, "f16c")                                                          \
    X(fma, "fma")                                                            \
    X(avx2, "avx2")                                                          \
    X(avx512f, "avx512f")                                                    \
    X(avx512bw, "avx512bw")                                                  \
    X(avx512vl, "avx512vl")                                                  \
    X(avx512vnni, "avx512_vnni")                                             \
    X(avx512bf16, "avx512_bf16")                                             \
    X(avxvnni, "avx_vnni")

/* Which features the running CPU (and OS) supports. */
typedef struct kiln_cpu_features {
#define KILN_X_CPU_FIELD(field, name) bool field; /* has `name` */
    KILN_CPU_FEATURE_LIST(KILN_X_CPU_FIELD)
#undef KILN_X_CPU_FIELD
} kiln_cpu_features;

/* Features of this machine, detected once (thread-safe) and then cached,
 * with KILN_CPU_DISABLE applied. */
const kiln_cpu_features *kiln__cpu(void);

/* Write the supported feature names, space separated, into buf. */
void kiln__cpu_describe(char *buf, unsigned len);

/* Number of cores this process may run on (affinity mask), at least 1. */
int kiln__cpu_count(void);

#endif /* KILN_CORE_CPU_H */
