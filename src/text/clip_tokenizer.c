/* src/text/clip_tokenizer.c - CLIP BPE: words, merges, fixed-length
 * sequences (see clip_tokenizer.h).
 *
 * The merging is simple_tokenizer.py's bpe(): of all adjacent symbol pairs
 * that a merge joins, the one with the lowest rank goes first. Python merges
 * every occurrence of that pair left to right before looking again; a heap
 * popping the lowest rank, leftmost first, gives the same result for a
 * vocabulary whose merges only build on earlier ones (CLIP's does).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/bytelevel.h"
#include "text/clip_clean.h"
#include "text/clip_impl.h"
#include "text/tok_impl.h"
#include "text/utf8.h"
#include "text/vocab_impl.h"

/* simple_tokenizer.py's regex (compiled case-insensitive; the text is
 * lower-cased before it anyway). */
static const char SPLIT_RE[] =
    "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

static kiln_status oom(void) { return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "clip tokenizer: out of memory"); }

void kiln__clip_regex_free(void *split) { pcre2_code_free((pcre2_code *)split); }

kiln_status kiln__clip_tok_prepare(struct kiln_clip_tok *t) {
    for (int b = 0; b < 256; b++) {
        char s[8];
        size_t l = kiln__utf8_encode(kiln__bytelevel_cp((uint8_t)b), s);
        t->byte_id[b] = kiln__vocab_find(t->vocab, s, l);
        memcpy(s + l, "</w>", 4);
        t->end_id[b] = kiln__vocab_find(t->vocab, s, l + 4);
    }
    t->comma_id = kiln__vocab_find(t->vocab, ",</w>", 5);
    int err;
    PCRE2_SIZE at;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)SPLIT_RE, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS, &err, &at, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        return kiln__fail(KILN_ERR_INTERNAL, "clip tokenizer: regex does not compile at %zu: %s", (size_t)at,
                          (const char *)msg);
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* an optimization only */
    t->split = re;
    return KILN_OK;
}

int32_t kiln__clip_tok_n_tokens(const kiln_clip_tok *t) { return t->vocab->n_tokens; }
int32_t kiln__clip_tok_bos_id(const kiln_clip_tok *t) { return t->bos_id; }
int32_t kiln__clip_tok_eos_id(const kiln_clip_tok *t) { return t->eos_id; }
int32_t kiln__clip_tok_pad_id(const kiln_clip_tok *t) { return t->pad_id; }
int32_t kiln__clip_tok_comma_id(const kiln_clip_tok *t) { return t->comma_id; }

/* ---- BPE ---- */

/* Queue the merge of symbols l and r if the vocabulary has one. */
static kiln_status try_pair(const kiln_vocab *v, struct kiln_tok_scratch *s, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return KILN_OK;
    const struct kiln_tok_sym *a = &s->sym[l], *b = &s->sym[r];
    if (a->id < 0 || b->id < 0) return KILN_OK;
    int32_t rank;
    if (kiln__vocab_merge(v, a->id, b->id, &rank) < 0) return KILN_OK;
    return kiln__tok_heap_push(s, (struct kiln_tok_pair){kiln__tok_key((uint32_t)rank, l), r, a->len + b->len});
}

/* Merge one word (its UTF-8 bytes w[0..len), len >= 1) and emit its ids. */
static kiln_status encode_word(const kiln_clip_tok *t, const char *w, size_t len, struct kiln_tok_scratch *s,
                               struct kiln_tok_out *out) {
    if (len > INT32_MAX / 2) return kiln__fail(KILN_ERR_TOO_LARGE, "clip tokenizer: word too long");
    kiln_status st = kiln__tok_reserve_sym(s, len);
    if (st != KILN_OK) return st;
    int32_t n = (int32_t)len;
    for (int32_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)w[i];
        s->sym[i] = (struct kiln_tok_sym){(uint32_t)i, 1, i + 1 < n ? t->byte_id[b] : t->end_id[b], i - 1,
                                          i + 1 < n ? i + 1 : -1};
    }
    s->heap_n = 0;
    for (int32_t i = 0; i + 1 < n && st == KILN_OK; i++) st = try_pair(t->vocab, s, i, i + 1);
    struct kiln_tok_pair p;
    while (st == KILN_OK && kiln__tok_heap_pop(s, &p)) {
        int32_t left = kiln__tok_left(&p), rank;
        struct kiln_tok_sym *a = &s->sym[left], *b = &s->sym[p.right];
        /* Stale when either side has merged since: lengths only grow. */
        if (a->len == 0 || b->len == 0 || a->next != p.right || a->len + b->len != p.len) continue;
        a->id = kiln__vocab_merge(t->vocab, a->id, b->id, &rank);
        a->len += b->len;
        a->next = b->next;
        if (b->next >= 0) s->sym[b->next].prev = left;
        b->len = 0;
        st = try_pair(t->vocab, s, a->prev, left);
        if (st == KILN_OK) st = try_pair(t->vocab, s, left, a->next);
    }
    if (st != KILN_OK) return st;
    /* A symbol the vocabulary lacks becomes CLIPTokenizer's unk_token,
     * <|endoftext|> (never with CLIP's own vocabulary). */
    for (int32_t i = 0; i >= 0; i = s->sym[i].next) kiln__tok_emit(out, s->sym[i].id >= 0 ? s->sym[i].id : t->eos_id);
    return KILN_OK;
}

/* Clean the text, cut it into words and merge each into out. */
static kiln_status encode(const kiln_clip_tok *t, const char *text, size_t len, struct kiln_tok_out *out) {
    if (len > KILN_CLIP_MAX_TEXT)
        return kiln__fail(KILN_ERR_TOO_LARGE, "clip tokenizer: text of %zu bytes (most %zu)", len,
                          KILN_CLIP_MAX_TEXT);
    char *clean;
    size_t n;
    kiln_status st = kiln__clip_clean(text, len, &clean, &n);
    if (st != KILN_OK) return st;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) {
        free(clean);
        return oom();
    }
    struct kiln_tok_scratch s = {0};
    size_t pos = 0;
    while (st == KILN_OK && pos < n) {
        int rc = pcre2_match((const pcre2_code *)t->split, (PCRE2_SPTR)clean, n, pos, 0, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            st = kiln__fail(KILN_ERR_TOO_LARGE, "clip tokenizer: regex failed: %s", (const char *)msg);
            break;
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t a = ov[0], e = ov[1];
        if (e == a) break; /* no alternative matches an empty string */
        if (e - a == 15 && memcmp(clean + a, "<|startoftext|>", 15) == 0)
            kiln__tok_emit(out, t->bos_id);
        else if (e - a == 13 && memcmp(clean + a, "<|endoftext|>", 13) == 0)
            kiln__tok_emit(out, t->eos_id);
        else
            st = encode_word(t, clean + a, e - a, &s, out);
        pos = e;
    }
    pcre2_match_data_free(md);
    free(s.sym);
    free(s.heap);
    free(s.buf);
    kiln__spans_free(&s.words);
    kiln__spans_free(&s.tmp);
    free(clean);
    return st;
}

kiln_status kiln__clip_encode(const kiln_clip_tok *t, const char *text, size_t len, int32_t *out, size_t cap,
                              size_t *n_out) {
    struct kiln_tok_out o = {out, cap, 0};
    kiln_status st = encode(t, text, len, &o);
    *n_out = o.n;
    if (st == KILN_OK && o.n > cap)
        return kiln__fail(KILN_ERR_TOO_LARGE, "clip tokenizer: %zu ids do not fit in %zu", o.n, cap);
    return st;
}

kiln_status kiln__clip_encode_padded(const kiln_clip_tok *t, const char *text, size_t len, int32_t pad_id,
                                     int32_t out[KILN_CLIP_SEQ_LEN], size_t *n_text) {
    if (pad_id < 0 || pad_id >= t->vocab->n_tokens)
        return kiln__fail(KILN_ERR_INVALID_ARG, "clip tokenizer: padding id %d out of range", pad_id);
    /* Ids past the 75th are counted, not kept. */
    struct kiln_tok_out o = {out + 1, KILN_CLIP_CHUNK_TOKENS, 0};
    kiln_status st = encode(t, text, len, &o);
    if (n_text) *n_text = o.n;
    if (st != KILN_OK) return st;
    size_t k = o.n < KILN_CLIP_CHUNK_TOKENS ? o.n : KILN_CLIP_CHUNK_TOKENS;
    out[0] = t->bos_id;
    out[k + 1] = t->eos_id;
    for (size_t i = k + 2; i < KILN_CLIP_SEQ_LEN; i++) out[i] = pad_id;
    return KILN_OK;
}
