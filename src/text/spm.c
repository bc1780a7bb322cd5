/* src/text/spm.c - SentencePiece BPE (GGUF tokenizer.ggml.model "llama").
 *
 * Mirrors SentencePiece's bpe_model.cc Encode, as Llama 1/2 and Mistral use
 * it (normalizer: nothing but spaces to '▁' and a '▁' prefix):
 *   1. the text becomes symbols, one per UTF-8 character (an ill-formed byte
 *      is a symbol of its own);
 *   2. repeatedly, of all adjacent pairs whose concatenation is a piece of
 *      the vocabulary (a NORMAL, USER_DEFINED or UNUSED token), the one whose
 *      piece has the highest score is merged; ties go to the leftmost pair;
 *   3. each remaining symbol is its token, or, when it is no token (a
 *      character outside the vocabulary), its UTF-8 bytes as <0xNN> tokens
 *      (byte fallback), or <unk> when the vocabulary has no byte tokens.
 * With merges_ranked (a vocabulary from Hugging Face's tokenizer.json), step
 * 2 is Hugging Face's BPE model instead: each symbol carries its token id,
 * and of the adjacent pairs that a merge joins, the one of lowest rank
 * merges (ties: the leftmost).
 */
#include "core/error.h"
#include "text/tok_impl.h"
#include "text/utf8.h"
#include "text/vocab_impl.h"

#include <string.h>

/* "▁" (U+2581), SentencePiece's spelling of a space. */
#define SPM_SPACE "\xE2\x96\x81"

/* A token that merges may produce. */
static int32_t piece_id(const kiln_vocab *v, const char *text, size_t len) {
    int32_t id = kiln__vocab_find(v, text, len);
    if (id < 0) return -1;
    switch ((kiln_token_type)v->type[id]) {
    case KILN_TOKEN_UNDEFINED:
    case KILN_TOKEN_NORMAL:
    case KILN_TOKEN_USER_DEFINED:
    case KILN_TOKEN_UNUSED:
        return id;
    case KILN_TOKEN_UNKNOWN:
    case KILN_TOKEN_CONTROL:
    case KILN_TOKEN_BYTE:
        break;
    }
    return -1;
}

/* Queue the merge of symbols l and r if their concatenation is a piece
 * (merges_ranked: if a merge joins their tokens). */
static kiln_status try_pair(const kiln_vocab *v, struct kiln_tok_scratch *s, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return KILN_OK;
    const struct kiln_tok_sym *a = &s->sym[l], *b = &s->sym[r];
    if (v->merges_ranked) {
        int32_t rank;
        if (a->id < 0 || b->id < 0 || kiln__vocab_merge(v, a->id, b->id, &rank) < 0) return KILN_OK;
        struct kiln_tok_pair p = {kiln__tok_key((uint32_t)rank, l), r, a->len + b->len};
        return kiln__tok_heap_push(s, p);
    }
    int32_t id = piece_id(v, s->buf + a->off, a->len + b->len);
    if (id < 0) return KILN_OK;
    struct kiln_tok_pair p = {kiln__tok_key(kiln__tok_score_prio(v->score[id]), l), r, a->len + b->len};
    return kiln__tok_heap_push(s, p);
}

/* Emit the token(s) of one final symbol. */
static void emit_symbol(const kiln_vocab *v, const char *text, size_t len, struct kiln_tok_out *out) {
    int32_t id = piece_id(v, text, len);
    if (id >= 0) {
        kiln__tok_emit(out, id);
        return;
    }
    const int32_t *bt = v->index->byte_token;
    bool have_bytes = true;
    for (size_t i = 0; i < len; i++) have_bytes = have_bytes && bt[(uint8_t)text[i]] >= 0;
    if (have_bytes) {
        for (size_t i = 0; i < len; i++) kiln__tok_emit(out, bt[(uint8_t)text[i]]);
    } else if (v->unk_id >= 0) {
        kiln__tok_emit(out, v->unk_id);
    }
    /* else: no way to spell it; it is dropped, as Hugging Face's BPE does
     * without byte fallback or unknown token */
}

/* Merge the symbols of buf[off, off + len) and emit their tokens. */
static kiln_status merge_word(const kiln_vocab *v, size_t off, size_t len, struct kiln_tok_scratch *s,
                              struct kiln_tok_out *out) {
    /* Symbols: one per character. */
    kiln_status st = kiln__tok_reserve_sym(s, len);
    if (st != KILN_OK) return st;
    int32_t n_sym = 0;
    for (size_t i = off; i < off + len;) {
        size_t cl;
        if (kiln__utf8_next((const uint8_t *)s->buf + i, off + len - i, &cl, NULL) != KILN_UTF8_CHAR) cl = 1;
        int32_t id = v->merges_ranked ? kiln__vocab_find(v, s->buf + i, cl) : -1;
        s->sym[n_sym] = (struct kiln_tok_sym){(uint32_t)i, (uint32_t)cl, id, n_sym - 1, -1};
        if (n_sym > 0) s->sym[n_sym - 1].next = n_sym;
        n_sym++;
        i += cl;
    }
    /* 2. Merge, best score first. */
    s->heap_n = 0;
    for (int32_t i = 0; i + 1 < n_sym && st == KILN_OK; i++) st = try_pair(v, s, i, i + 1);
    struct kiln_tok_pair p;
    while (st == KILN_OK && kiln__tok_heap_pop(s, &p)) {
        int32_t left = kiln__tok_left(&p);
        struct kiln_tok_sym *a = &s->sym[left], *b = &s->sym[p.right];
        /* Stale when either side has merged since: lengths only grow. */
        if (a->len == 0 || b->len == 0 || a->next != p.right || a->len + b->len != p.len) continue;
        if (v->merges_ranked) {
            int32_t rank;
            a->id = kiln__vocab_merge(v, a->id, b->id, &rank); /* the pair is as when queued */
        }
        a->len += b->len;
        a->next = b->next;
        if (b->next >= 0) s->sym[b->next].prev = left;
        b->len = 0;
        st = try_pair(v, s, a->prev, left);
        if (st == KILN_OK) st = try_pair(v, s, left, a->next);
    }
    if (st != KILN_OK) return st;
    /* 3. Tokens. */
    for (int32_t i = 0; i >= 0 && n_sym > 0; i = s->sym[i].next) {
        if (s->sym[i].id >= 0)
            kiln__tok_emit(out, s->sym[i].id); /* merges_ranked: a token, whatever its type */
        else
            emit_symbol(v, s->buf + s->sym[i].off, s->sym[i].len, out);
    }
    return KILN_OK;
}

/* Where the word that starts at `from` ends in buf[0..n): at the next '▁'
 * that follows another character, or with `every` at the next '▁' (or at n). */
static size_t word_end(const char *buf, size_t from, size_t n, bool every) {
    for (size_t k = from + 1; k + 3 <= n; k++)
        if (memcmp(buf + k, SPM_SPACE, 3) == 0 &&
            (every || !(k >= 3 && memcmp(buf + k - 3, SPM_SPACE, 3) == 0)))
            return k;
    return n;
}

kiln_status kiln__spm_encode(const kiln_vocab *v, const char *text, size_t len, bool space_prefix,
                             struct kiln_tok_scratch *s, struct kiln_tok_out *out) {
    if (len == 0) return KILN_OK;
    /* 1. Escape: the prefix, then spaces as '▁' (at most 3 bytes per byte). */
    kiln_status st = kiln__tok_reserve_buf(s, 3 * len + 3);
    if (st != KILN_OK) return st;
    size_t n = 0;
    if (space_prefix) {
        memcpy(s->buf, SPM_SPACE, 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(s->buf + n, SPM_SPACE, 3);
            n += 3;
        } else {
            s->buf[n++] = text[i];
        }
    }
    /* 2-3, word by word when the vocabulary allows it (vocab_impl.h) or
     * asks for it (spm_split: a word at every '▁'). */
    if (!v->index->spm_words && !v->spm_split) return merge_word(v, 0, n, s, out);
    for (size_t at = 0; at < n && st == KILN_OK;) {
        size_t end = word_end(s->buf, at, n, v->spm_split);
        st = merge_word(v, at, end - at, s, out);
        at = end;
    }
    return st;
}
