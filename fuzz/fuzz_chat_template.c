/* fuzz/fuzz_chat_template.c - libFuzzer target for chat-template detection
 * and rendering.
 *
 * The input is used twice: whole, as a template source for detection (and for
 * kiln__chat_choose, which must never give KILN_CHAT_UNKNOWN); then split at
 * 0xFF bytes into message contents (the first byte of each piece picks its
 * role) and rendered in every format with and without a generation prompt.
 * Each render must succeed or refuse with KILN_ERR_INVALID_ARG; on success the
 * allocated text must have the measured length, and a buffer one byte short
 * must be refused with the same length reported.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/chat_template.h"

#define MAX_MSGS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    enum kiln_chat_format f = kiln__chat_detect((const char *)data, size);
    if ((unsigned)f >= KILN_CHAT_FORMAT_COUNT) abort();
    if (kiln__chat_choose((const char *)data, size) == KILN_CHAT_UNKNOWN) abort();

    /* Copy the input with a NUL after every piece. */
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct kiln_chat_message msgs[MAX_MSGS];
    size_t n = 0;
    char *p = text, *end = text + size;
    while (n < MAX_MSGS && p <= end) {
        char *q = memchr(p, 0xFF, (size_t)(end - p));
        if (!q) q = end;
        *q = '\0';
        msgs[n].role = (enum kiln_chat_role)(p < q ? (uint8_t)p[0] % KILN_CHAT_ROLE_COUNT : 1);
        msgs[n].content = p < q ? p + 1 : p;
        n++;
        p = q + 1;
    }
    for (int fmt = 0; fmt < KILN_CHAT_FORMAT_COUNT; fmt++) {
        for (int gen = 0; gen < 2; gen++) {
            char *out = NULL;
            size_t len = 0;
            kiln_status st = kiln__chat_render_alloc((enum kiln_chat_format)fmt, msgs, n, gen,
                                                     "<s>", "</s>", &out, &len);
            if (st != KILN_OK) {
                if (st != KILN_ERR_INVALID_ARG || out) abort();
                continue;
            }
            if (strlen(out) != len) abort();
            size_t need = 0;
            char small[1];
            if (len > 0 && kiln__chat_render((enum kiln_chat_format)fmt, msgs, n, gen, "<s>",
                                             "</s>", small, sizeof small, &need) !=
                               KILN_ERR_TOO_LARGE)
                abort();
            if (len > 0 && need != len) abort();
            free(out);
        }
    }
    free(text);
    return 0;
}
