/* src/text/bytelevel.h - GPT-2's byte-to-character alphabet (internal).
 *
 * Byte-level BPE vocabularies spell every byte as one printable character so
 * that token texts never hold spaces or control bytes: the bytes 0x21..0x7E,
 * 0xA1..0xAC and 0xAE..0xFF stand for themselves (as code points), and the 68
 * others (0x00..0x20, 0x7F..0xA0, 0xAD), in increasing order, for U+0100,
 * U+0101, ... U+0143. So a space is 'Ġ' (U+0120) and a newline 'Ċ' (U+010A).
 */
#ifndef KILN_TEXT_BYTELEVEL_H
#define KILN_TEXT_BYTELEVEL_H

#include <stdint.h>

/* The code point that spells byte b. */
uint32_t kiln__bytelevel_cp(uint8_t b);

/* The byte that code point cp spells, or -1 when cp is not in the alphabet. */
int kiln__bytelevel_byte(uint32_t cp);

#endif /* KILN_TEXT_BYTELEVEL_H */
