/* src/cli/bench_common.c - the small pieces `kiln bench` and
 * `kiln bench-image` share outside their reports: integer and list
 * arguments, the seeded random numbers of their inputs, and the peak
 * resident set. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/bench.h"

int kiln__bench_parse_int(const char *s, long lo, long hi, int32_t *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = (int32_t)v;
    return 1;
}

int kiln__bench_parse_list(const char *s, long lo, long hi, int32_t *list, int *n, int max) {
    char item[32];
    for (const char *p = s;;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof item || *n >= max) return 0;
        memcpy(item, p, len);
        item[len] = 0;
        if (!kiln__bench_parse_int(item, lo, hi, &list[*n])) return 0;
        (*n)++;
        if (!p[len]) return 1;
        p += len + 1;
    }
}

uint64_t kiln__bench_next_random(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

uint64_t kiln__bench_peak_rss(void) {
    struct rusage ru;
    /* ru_maxrss is in KiB on Linux */
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (uint64_t)ru.ru_maxrss * 1024u : 0;
}
