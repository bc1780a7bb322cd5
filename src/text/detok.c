/* src/text/detok.c - token ids back to text: pieces, whole sequences, and
 * the streaming detokenizer that never hands out a broken UTF-8 character
 * (see tokenizer.h). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/tokenizer.h"
#include "text/utf8.h"
#include "text/vocab_impl.h"

kiln_status kiln__token_to_piece(const kiln_vocab *v, int32_t token, bool special,
                                 const char **piece, size_t *len) {
    *piece = "";
    *len = 0;
    if (!v->index->ready) return kiln__fail(KILN_ERR_INVALID_ARG, "tokenizer: vocabulary not finalized");
    if (token < 0 || token >= v->n_tokens)
        return kiln__fail(KILN_ERR_INVALID_ARG, "tokenizer: token id %d out of range (%d tokens)", token,
                          v->n_tokens);
    uint8_t t = v->type[token];
    if (special && (t == KILN_TOKEN_CONTROL || t == KILN_TOKEN_UNKNOWN)) {
        *piece = v->text + v->text_off[token];
        *len = v->text_len[token];
        return KILN_OK;
    }
    *piece = v->index->piece + v->index->piece_off[token];
    *len = v->index->piece_len[token];
    return KILN_OK;
}

kiln_status kiln__detokenize(const kiln_vocab *v, const int32_t *tokens, size_t n,
                             unsigned flags, char *out, size_t cap, size_t *n_out) {
    *n_out = 0;
    if ((!tokens && n) || (!out && cap))
        return kiln__fail(KILN_ERR_INVALID_ARG, "tokenizer: NULL tokens or output");
    size_t total = 0;
    bool strip = (flags & KILN_DETOK_STRIP_SPACE) != 0;
    for (size_t i = 0; i < n; i++) {
        const char *p;
        size_t len;
        kiln_status st = kiln__token_to_piece(v, tokens[i], (flags & KILN_DETOK_SPECIAL) != 0, &p, &len);
        if (st != KILN_OK) return st;
        if (strip && len > 0) { /* only the output's very first byte may go */
            if (p[0] == ' ') {
                p++;
                len--;
            }
            strip = false;
        }
        if (total < cap) memcpy(out + total, p, len < cap - total ? len : cap - total);
        total += len;
    }
    *n_out = total;
    if (total > cap)
        return kiln__fail(KILN_ERR_TOO_LARGE, "tokenizer: %zu bytes of text do not fit in %zu", total, cap);
    return KILN_OK;
}

/* ---- streaming ---- */

void kiln__detok_init(kiln_detok *d, const kiln_vocab *v, unsigned flags) {
    memset(d, 0, sizeof *d);
    d->v = v;
    d->flags = flags;
}

void kiln__detok_free(kiln_detok *d) {
    if (!d) return;
    free(d->buf);
    d->buf = NULL;
    d->cap = 0;
}

/* Make room for n bytes of output. */
static kiln_status reserve(kiln_detok *d, size_t n) {
    if (n <= d->cap) return KILN_OK;
    size_t cap = d->cap ? d->cap : 64;
    while (cap < n) cap *= 2;
    char *b = realloc(d->buf, cap);
    if (!b) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    d->buf = b;
    d->cap = cap;
    return KILN_OK;
}

/* Write the complete characters of pending + src[0..len) to d->buf: valid
 * characters as they are, each ill-formed stretch as U+FFFD, and a final
 * character cut short back into pending. Returns the output length. */
static size_t drain(kiln_detok *d, const char *src, size_t len) {
    size_t n_out = 0, np = d->n_pending, total = np + len;
    size_t i = 0; /* position in the virtual concatenation pending + src */
    uint8_t win[4];
    while (i < total) {
        /* Up to 4 bytes at i, read across the seam between pending and src. */
        size_t w = 0;
        for (size_t k = i; k < total && w < 4; k++, w++)
            win[w] = k < np ? d->pending[k] : (uint8_t)src[k - np];
        size_t cl;
        kiln_utf8_kind kind = kiln__utf8_next(win, w, &cl, NULL);
        if (kind == KILN_UTF8_PARTIAL) { /* only at the end: keep for later */
            memcpy(d->pending, win, cl);
            d->n_pending = cl;
            return n_out;
        }
        if (kind == KILN_UTF8_CHAR) {
            memcpy(d->buf + n_out, win, cl);
            n_out += cl;
        } else {
            memcpy(d->buf + n_out, KILN_UTF8_REPLACEMENT, 3);
            n_out += 3;
        }
        i += cl;
    }
    d->n_pending = 0;
    return n_out;
}

kiln_status kiln__detok_push(kiln_detok *d, int32_t token, const char **text, size_t *len) {
    *text = "";
    *len = 0;
    const char *p;
    size_t plen;
    kiln_status st = kiln__token_to_piece(d->v, token, (d->flags & KILN_DETOK_SPECIAL) != 0, &p, &plen);
    if (st != KILN_OK) return st;
    if (plen == 0) return KILN_OK;
    if (!d->started) {
        d->started = true;
        if ((d->flags & KILN_DETOK_STRIP_SPACE) && p[0] == ' ') {
            p++;
            plen--;
        }
    }
    /* Each input byte gives at most 3 output bytes (one U+FFFD). */
    if ((st = reserve(d, 3 * (d->n_pending + plen) + 1)) != KILN_OK) return st;
    *len = drain(d, p, plen);
    *text = d->buf;
    return KILN_OK;
}

kiln_status kiln__detok_flush(kiln_detok *d, const char **text, size_t *len) {
    *text = "";
    *len = 0;
    d->started = false;
    if (d->n_pending == 0) return KILN_OK;
    kiln_status st = reserve(d, 3);
    if (st != KILN_OK) return st;
    memcpy(d->buf, KILN_UTF8_REPLACEMENT, 3); /* the character never completed */
    d->n_pending = 0;
    *text = d->buf;
    *len = 3;
    return KILN_OK;
}
