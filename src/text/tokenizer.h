/* src/text/tokenizer.h - text to token ids and back for LLM vocabularies
 * (internal API of the text layer; docs/tokenizers.md describes the
 * algorithms and what was verified against the reference tokenizers).
 *
 * All functions take a finalized vocabulary (vocab.h), which they only read:
 * any number of threads may tokenize with one vocabulary at once.
 */
#ifndef KILN_TEXT_TOKENIZER_H
#define KILN_TEXT_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/status.h"
#include "text/vocab.h"

/* Longest text kiln__tokenize() accepts (bytes). */
#define KILN_TOKENIZE_MAX_LEN ((size_t)1 << 28)

/* Tokenize len bytes of text (any bytes; ill-formed UTF-8 is encoded byte
 * by byte). First the text is cut at added tokens, leftmost-longest as
 * Hugging Face does: USER_DEFINED tokens always, CONTROL and UNKNOWN ones
 * (<s>, <|endoftext|>) only when parse_special; the pieces between go
 * through the model (SentencePiece BPE, or a pre-tokenizer and byte-level
 * BPE). With add_special, bos_id goes first when the vocabulary's add_bos is
 * set and eos_id last when add_eos is.
 * Up to `cap` ids go to out[]; *n_out receives the number of ids the text
 * makes. When that is more than cap, the first cap are written and
 * KILN_ERR_TOO_LARGE is returned (call again with *n_out slots). */
kiln_status kiln__tokenize(const kiln_vocab *v, const char *text, size_t len, bool add_special,
                           bool parse_special, int32_t *out, size_t cap, size_t *n_out);

/* The bytes that token `token` stands for, lent from the vocabulary (valid
 * while it lives): SentencePiece '▁' as a space, <0xNN> as the byte,
 * byte-level characters as their bytes, added tokens as their text. A piece
 * may be part of a UTF-8 character. CONTROL and UNKNOWN tokens give their
 * text when `special`, else nothing. KILN_ERR_INVALID_ARG for an id out of
 * range. */
kiln_status kiln__token_to_piece(const kiln_vocab *v, int32_t token, bool special,
                                 const char **piece, size_t *len);

/* Flags of kiln__detokenize() and the streaming detokenizer. */
#define KILN_DETOK_SPECIAL 1u     /* render CONTROL and UNKNOWN tokens as their text */
#define KILN_DETOK_STRIP_SPACE 2u /* drop one space at the very start of the output, as
                                     Hugging Face's SentencePiece decoders do to undo
                                     the '▁' prefix */

/* The pieces of n tokens, back to back, as raw bytes (no UTF-8 repair: the
 * exact inverse of kiln__tokenize for the pieces it makes). Up to cap bytes
 * go to out; *n_out receives the full length, and KILN_ERR_TOO_LARGE is
 * returned when it exceeds cap. No NUL is added. */
kiln_status kiln__detokenize(const kiln_vocab *v, const int32_t *tokens, size_t n,
                             unsigned flags, char *out, size_t cap, size_t *n_out);

/* A streaming detokenizer: token by token, it gives back only whole UTF-8
 * characters, holding back the start of a character that the next token
 * completes. Ill-formed bytes come out as U+FFFD (one per maximal ill-formed
 * subpart), so the output is always valid UTF-8. */
typedef struct kiln_detok {
    const kiln_vocab *v; /* the vocabulary (borrowed) */
    unsigned flags;      /* KILN_DETOK_* */
    bool started;        /* some output byte has been produced (or the space stripped) */
    uint8_t pending[3];  /* the start of a character still cut short */
    size_t n_pending;    /* bytes in pending (0..3) */
    char *buf;           /* the text handed out by the last call (owned) */
    size_t cap;          /* bytes allocated for buf */
} kiln_detok;

/* Start a stream over vocabulary v. Release with kiln__detok_free(). */
void kiln__detok_init(kiln_detok *d, const kiln_vocab *v, unsigned flags);

/* Add one token: *text / *len receive the complete characters it ends
 * (possibly none), valid until the next call on d. */
kiln_status kiln__detok_push(kiln_detok *d, int32_t token, const char **text, size_t *len);

/* End the stream: a character still cut short comes out as U+FFFD. The
 * stream may then go on as if new. */
kiln_status kiln__detok_flush(kiln_detok *d, const char **text, size_t *len);

/* Release the stream's buffer; the struct is the caller's. NULL is fine. */
void kiln__detok_free(kiln_detok *d);

#endif /* KILN_TEXT_TOKENIZER_H */
