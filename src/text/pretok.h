/* src/text/pretok.h - regex pre-tokenizers of byte-level BPE (internal).
 *
 * Before BPE, the text is cut into words by one regex or a sequence of them,
 * as Hugging Face tokenizers' Split pre-tokenizer with "Isolated" behaviour
 * does: each match becomes a word, and so does each stretch between matches.
 * With a sequence, the next regex cuts each word of the previous step on its
 * own (a match never spans two words, and look-arounds see only the word).
 * The regexes are PCRE2 with UTF and UCP (Unicode \p{L}, \p{N}, \s), compiled
 * once, JIT-compiled when the platform allows, and matching tolerates
 * invalid UTF-8 (ill-formed bytes simply never match a character class, so
 * they end up in the stretches between matches). docs/tokenizers.md lists
 * each pre-tokenizer's regexes and where they come from.
 */
#ifndef KILN_TEXT_PRETOK_H
#define KILN_TEXT_PRETOK_H

#include <stddef.h>

#include "kiln/status.h"
#include "text/vocab.h"

/* A compiled pre-tokenizer. Read-only after creation: threads may share it. */
typedef struct kiln_pretok kiln_pretok;

/* A word: bytes [off, off + len) of the text. */
typedef struct kiln_span {
    size_t off; /* first byte */
    size_t len; /* length in bytes (never 0) */
} kiln_span;

/* A growable list of words. Zero-initialize; release with kiln__spans_free. */
typedef struct kiln_spans {
    kiln_span *v; /* the words */
    size_t n;     /* words in v */
    size_t cap;   /* words allocated */
} kiln_spans;

/* Compile the regexes of `pre` (not KILN_PRE_DEFAULT, which has none). */
kiln_status kiln__pretok_new(kiln_vocab_pre pre, kiln_pretok **out);

/* The regexes of `pre` as kiln__pretok_new compiles them (PCRE2 syntax,
 * non-ASCII characters as \x{...} escapes), static strings; *n receives
 * how many (0 for KILN_PRE_DEFAULT, which has none). */
const char *const *kiln__pretok_regexes(kiln_vocab_pre pre, int *n);

/* Release a pre-tokenizer; NULL is fine. */
void kiln__pretok_free(kiln_pretok *p);

/* Cut text[0..len) into words, replacing the contents of `out` (offsets are
 * relative to `text`); `tmp` is scratch space kept between calls. Words are
 * in order, nonempty, and together cover the whole text. */
kiln_status kiln__pretok_split(const kiln_pretok *p, const char *text, size_t len,
                               kiln_spans *out, kiln_spans *tmp);

/* Append a word to a list. */
kiln_status kiln__spans_push(kiln_spans *s, size_t off, size_t len);

/* Release a list's memory (the struct itself is the caller's). */
void kiln__spans_free(kiln_spans *s);

#endif /* KILN_TEXT_PRETOK_H */
