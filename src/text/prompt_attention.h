/* src/text/prompt_attention.h - AUTOMATIC1111's emphasis syntax (internal).
 *
 * kiln__prompt_parse_attention() splits a prompt into text fragments with
 * weights, following AUTOMATIC1111's prompt_parser.parse_prompt_attention:
 *   (text)        weight x 1.1 (nested: x 1.21, ...)
 *   [text]        weight / 1.1
 *   (text:1.5)    weight x 1.5 (spaces allowed around the number)
 *   \( \) \[ \] \\  the literal character; a lone '\' is dropped
 *   BREAK         (a whole word, with the spaces around it) ends the current
 *                 75-token chunk: a fragment "BREAK" of weight -1
 * Brackets left open at the end still apply to the rest of the prompt; a
 * closing bracket with nothing open is plain text, and so is ":1.5)" outside
 * any "(". Weights are products of doubles in A1111's order. Adjacent
 * fragments of equal weight are joined; an empty prompt gives one empty
 * fragment of weight 1.
 * Where A1111 raises an exception (a weight such as "1.2.3" or "." that
 * Python's float() rejects), kiln returns KILN_ERR_INVALID_ARG.
 */
#ifndef KILN_TEXT_PROMPT_ATTENTION_H
#define KILN_TEXT_PROMPT_ATTENTION_H

#include <stdbool.h>
#include <stddef.h>

#include "kiln/status.h"

/* One fragment of a parsed prompt. */
typedef struct kiln_attn_part {
    char *text;    /* its text, NUL-terminated (owned by the list) */
    size_t len;    /* bytes in text */
    double weight; /* emphasis multiplier; -1 with text "BREAK" is a chunk break */
} kiln_attn_part;

/* A parsed prompt. Zero-initialize; release with kiln__attn_parts_free. */
typedef struct kiln_attn_parts {
    kiln_attn_part *v; /* the fragments in order */
    size_t n;          /* fragments */
    size_t cap;        /* allocated */
} kiln_attn_parts;

/* Parse len bytes of prompt text into *out (its previous contents are
 * released first). */
kiln_status kiln__prompt_parse_attention(const char *text, size_t len, kiln_attn_parts *out);

/* The whole prompt as one fragment of weight 1 (A1111 with emphasis set
 * to "None"), into *out (its previous contents are released first). */
kiln_status kiln__attn_parts_plain(const char *text, size_t len, kiln_attn_parts *out);

/* Whether a fragment is a BREAK (text "BREAK", weight exactly -1, as A1111
 * tests it: a BREAK inside brackets gets its weight multiplied and becomes
 * the plain word "BREAK"). */
bool kiln__attn_part_is_break(const kiln_attn_part *p);

/* Release a list's fragments (the struct itself is the caller's). */
void kiln__attn_parts_free(kiln_attn_parts *p);

#endif /* KILN_TEXT_PROMPT_ATTENTION_H */
