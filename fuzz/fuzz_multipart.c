/* fuzz/fuzz_multipart.c - libFuzzer target for the multipart/form-data
 * parser (OpenAI image edits) and the Content-Type boundary reader. The
 * first line of the input is the Content-Type header, the rest the body.
 *
 * Invariants: an accepted body gives parts that lie inside the body, in
 * order, each with a NUL-terminated non-empty name; the boundary, when
 * found, is 1 to 70 characters. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "worker/multipart.h"

#define ENSURE(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) __builtin_trap();                                                             \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hl = nl ? (size_t)(nl - data) : size;
    char *header = malloc(hl + 1);
    if (!header) return 0;
    memcpy(header, data, hl);
    header[hl] = '\0';
    char boundary[KILN__MULTIPART_MAX_BOUNDARY + 1];
    if (kiln__multipart_boundary(header, boundary, sizeof boundary) == KILN_OK) {
        size_t bl = strlen(boundary);
        ENSURE(bl >= 1 && bl <= KILN__MULTIPART_MAX_BOUNDARY);
        const uint8_t *body = nl ? nl + 1 : data + size;
        size_t blen = (size_t)(data + size - body);
        /* A copy of exactly the body's size, so reads past it are caught. */
        uint8_t *copy = malloc(blen ? blen : 1);
        if (copy) {
            memcpy(copy, body, blen);
            struct kiln__multipart_part parts[8];
            size_t n = 0;
            kiln_status st = kiln__multipart_parse(copy, blen, boundary, parts, 8, &n);
            ENSURE(n <= 8);
            const uint8_t *prev_end = copy;
            for (size_t i = 0; st == KILN_OK && i < n; i++) {
                ENSURE(parts[i].data >= prev_end && parts[i].data + parts[i].len <= copy + blen);
                ENSURE(parts[i].name[0] && memchr(parts[i].name, '\0', sizeof parts[i].name));
                prev_end = parts[i].data + parts[i].len;
            }
            free(copy);
        }
    }
    free(header);
    return 0;
}
