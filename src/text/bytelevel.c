/* src/text/bytelevel.c - GPT-2's byte-to-character alphabet (see bytelevel.h). */
#include "text/bytelevel.h"

#include <stdbool.h>

/* Whether byte b stands for itself. */
static bool self_spelled(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t kiln__bytelevel_cp(uint8_t b) {
    if (self_spelled(b)) return b;
    /* The n-th byte that does not stand for itself is spelled U+0100 + n:
     * count those below b (0x00..0x20 are 33, 0x7F..0xA0 are 34, then 0xAD). */
    unsigned n;
    if (b <= 0x20)
        n = b;
    else if (b <= 0xA0)
        n = 33u + (b - 0x7Fu);
    else
        n = 67u; /* 0xAD */
    return 0x100u + n;
}

int kiln__bytelevel_byte(uint32_t cp) {
    if (cp < 0x100) return self_spelled(cp) ? (int)cp : -1;
    if (cp > 0x143) return -1;
    unsigned n = cp - 0x100u;
    if (n <= 32) return (int)n;
    if (n <= 66) return (int)(0x7Fu + (n - 33u));
    return 0xAD;
}
