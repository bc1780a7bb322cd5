/* src/core/cpu.c - x86-64 feature detection via CPUID and XGETBV. */
#define _GNU_SOURCE
#include "core/cpu.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* XCR0: which register states the OS saves on context switch. */
static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect(kiln_cpu_features *f) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    bool osxsave = c & (1u << 27);
    uint64_t xcr0 = osxsave ? read_xcr0() : 0;
    bool ymm_ok = (xcr0 & 0x6) == 0x6;     /* SSE and AVX state */
    bool zmm_ok = (xcr0 & 0xe6) == 0xe6;   /* plus opmask and ZMM state */
    f->sse42 = c & (1u << 20);
    f->avx = ymm_ok && (c & (1u << 28));
    f->f16c = f->avx && (c & (1u << 29));
    f->fma = f->avx && (c & (1u << 12));
    if (__get_cpuid_max(0, NULL) < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    f->avx2 = f->avx && (b & (1u << 5));
    f->avx512f = zmm_ok && (b & (1u << 16));
    f->avx512bw = f->avx512f && (b & (1u << 30));
    f->avx512vl = f->avx512f && (b & (1u << 31));
    f->avx512vnni = f->avx512f && (c & (1u << 11));
    unsigned max_sub = a;
    if (max_sub >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        f->avx512bf16 = f->avx512f && (a & (1u << 5));
        f->avxvnni = f->avx2 && (a & (1u << 4));
    }
}
#else
static void detect(kiln_cpu_features *f) { (void)f; }
#endif

/* Clear every feature named in the comma list `list`. */
static void apply_disable(kiln_cpu_features *f, const char *list) {
    if (!list) return;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
#define KILN_X_CPU_DISABLE(field, name) \
        if (strcmp(tok, name) == 0 || strcmp(tok, "all") == 0) f->field = false;
        KILN_CPU_FEATURE_LIST(KILN_X_CPU_DISABLE)
#undef KILN_X_CPU_DISABLE
    }
}

static kiln_cpu_features features;
static pthread_once_t features_once = PTHREAD_ONCE_INIT;

static void init_features(void) {
    detect(&features);
    apply_disable(&features, getenv("KILN_CPU_DISABLE"));
}

const kiln_cpu_features *kiln__cpu(void) {
    pthread_once(&features_once, init_features);
    return &features;
}

void kiln__cpu_describe(char *buf, unsigned len) {
    const kiln_cpu_features *f = kiln__cpu();
    size_t used = 0;
    if (len) buf[0] = '\0';
#define KILN_X_CPU_DESCRIBE(field, name)                                        \
    if (f->field && used < len) {                                              \
        int w = snprintf(buf + used, len - used, "%s%s", used ? " " : "", name); \
        if (w > 0) used += (size_t)w;                                          \
    }
    KILN_CPU_FEATURE_LIST(KILN_X_CPU_DESCRIBE)
#undef KILN_X_CPU_DESCRIBE
}

int kiln__cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
