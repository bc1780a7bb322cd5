/* src/text/clip_clean.h - text cleanup before CLIP BPE (internal to the
 * CLIP tokenizer).
 *
 * simple_tokenizer.py cleans a prompt with
 *     whitespace_clean(basic_clean(text)).lower()
 * where basic_clean is ftfy.fix_text, then html.unescape twice, then strip.
 * kiln does, in this order:
 *   1. bytes that are not UTF-8 become U+FFFD (Python strings are always
 *      valid; the caller's bytes might not be);
 *   2. the parts of ftfy.fix_text (ftfy 6 defaults) that need no
 *      statistics, segment by segment (a segment is a line with its '\n'),
 *      repeated until the segment stops changing, as ftfy does:
 *        - HTML entities that end in ';' (ftfy's unescape_html, named from
 *          the table in html_entities.c, numeric as html.unescape, and
 *          all-caps forms of lower-case names), skipped from the first
 *          segment that holds a '<' on;
 *        - C1 controls U+0080..U+009F read as Windows-1252;
 *        - Latin ligatures and digraphs (ﬁ -> fi, ĳ -> ij, ...);
 *        - halfwidth and fullwidth forms U+FF01..U+FFEF to their NFKC
 *          form, U+3000 to a space;
 *        - curly quotes to straight ones;
 *        - ANSI terminal escapes removed;
 *        - control characters removed (ftfy's list);
 *        - NFC;
 *      ftfy's mojibake repair (fix_encoding) is not done;
 *   3. html.unescape twice (entities with or without ';' as Python's html
 *      module reads them, named ones from html_entities.c);
 *   4. runs of white space (Unicode White_Space) become one space, and the
 *      ends are stripped;
 *   5. lower-casing as Python's str.lower(): simple lower-case mappings,
 *      U+0130 to "i̇", and a capital sigma in final position to 'ς'.
 */
#ifndef KILN_TEXT_CLIP_CLEAN_H
#define KILN_TEXT_CLIP_CLEAN_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/status.h"

/* Clean len bytes of text as above. *out receives a NUL-terminated UTF-8
 * string (malloc'ed, the caller frees it) and *out_len its length. */
kiln_status kiln__clip_clean(const char *text, size_t len, char **out, size_t *out_len);

/* ---- HTML character references (html_entities.c) ---- */

/* The character of the named reference `name` (len bytes, without '&' and
 * ';'), or 0 when kiln does not know the name. Names are case-sensitive. */
uint32_t kiln__html_entity(const char *name, size_t len);

/* Whether `name` is one of the entities that HTML also reads without a
 * trailing ';' ("amp", "lt", "eacute", ... the HTML 4 Latin-1 set). */
int kiln__html_entity_legacy(const char *name, size_t len);

#endif /* KILN_TEXT_CLIP_CLEAN_H */
