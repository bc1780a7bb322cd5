/* src/text/bpe.c - byte-level BPE (GGUF tokenizer.ggml.model "gpt2").
 *
 * Mirrors Hugging Face tokenizers' BPE model behind a ByteLevel
 * pre-tokenizer, as GPT-2, Phi-2, Llama 3, Qwen2 and DeepSeek use it:
 *   1. normalization: NFC for Qwen2 (its tokenizer.json normalizer), none
 *      for the others;
 *   2. the pre-tokenizer's regexes cut the fragment into words (pretok.c);
 *   3. each word's bytes become symbols, one per byte, each the token of the
 *      byte's character in GPT-2's alphabet (bytelevel.h);
 *   4. repeatedly, of all adjacent pairs that a merge joins, the one with
 *      the lowest rank is merged (ties: the leftmost), until none is left.
 * Llama 3 sets ignore_merges: a word that is a token as a whole is that
 * token, without merging. A byte whose character is not a token (a broken
 * vocabulary) becomes <unk> if there is one, else it is dropped, as in
 * Hugging Face.
 */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "text/bytelevel.h"
#include "text/tok_impl.h"
#include "text/utf8.h"
#include "text/vocab_impl.h"

/* Queue the merge of symbols l and r if the vocabulary has one. */
static kiln_status try_pair(const kiln_vocab *v, struct kiln_tok_scratch *s, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return KILN_OK;
    const struct kiln_tok_sym *a = &s->sym[l], *b = &s->sym[r];
    if (a->id < 0 || b->id < 0) return KILN_OK;
    int32_t rank;
    if (kiln__vocab_merge(v, a->id, b->id, &rank) < 0) return KILN_OK;
    struct kiln_tok_pair p = {kiln__tok_key((uint32_t)rank, l), r, a->len + b->len};
    return kiln__tok_heap_push(s, p);
}

/* The id of the whole word spelled in GPT-2's alphabet, or -1. */
static int32_t whole_word(const kiln_vocab *v, const char *w, size_t len, struct kiln_tok_scratch *s,
                          kiln_status *st) {
    if ((*st = kiln__tok_reserve_buf(s, 2 * len)) != KILN_OK) return -1; /* <= 2 bytes per byte */
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += kiln__utf8_encode(kiln__bytelevel_cp((uint8_t)w[i]), s->buf + n);
    return kiln__vocab_find(v, s->buf, n);
}

/* Merge one word and emit its tokens. */
static kiln_status encode_word(const kiln_vocab *v, const char *w, size_t len,
                               struct kiln_tok_scratch *s, struct kiln_tok_out *out) {
    kiln_status st = KILN_OK;
    if (v->pre == KILN_PRE_LLAMA3) {
        int32_t id = whole_word(v, w, len, s, &st);
        if (st != KILN_OK) return st;
        if (id >= 0) {
            kiln__tok_emit(out, id);
            return KILN_OK;
        }
    }
    if ((st = kiln__tok_reserve_sym(s, len)) != KILN_OK) return st;
    int32_t n_sym = (int32_t)len;
    for (int32_t i = 0; i < n_sym; i++)
        s->sym[i] = (struct kiln_tok_sym){(uint32_t)i, 1, v->index->byte_token[(uint8_t)w[i]], i - 1,
                                          i + 1 < n_sym ? i + 1 : -1};
    s->heap_n = 0;
    for (int32_t i = 0; i + 1 < n_sym && st == KILN_OK; i++) st = try_pair(v, s, i, i + 1);
    struct kiln_tok_pair p;
    while (st == KILN_OK && kiln__tok_heap_pop(s, &p)) {
        int32_t left = kiln__tok_left(&p), rank;
        struct kiln_tok_sym *a = &s->sym[left], *b = &s->sym[p.right];
        /* Stale when either side has merged since: lengths only grow. */
        if (a->len == 0 || b->len == 0 || a->next != p.right || a->len + b->len != p.len) continue;
        a->id = kiln__vocab_merge(v, a->id, b->id, &rank); /* the pair is as when queued */
        a->len += b->len;
        a->next = b->next;
        if (b->next >= 0) s->sym[b->next].prev = left;
        b->len = 0;
        st = try_pair(v, s, a->prev, left);
        if (st == KILN_OK) st = try_pair(v, s, left, a->next);
    }
    if (st != KILN_OK) return st;
    for (int32_t i = 0; i >= 0; i = s->sym[i].next) {
        if (s->sym[i].id >= 0)
            kiln__tok_emit(out, s->sym[i].id);
        else if (v->unk_id >= 0)
            kiln__tok_emit(out, v->unk_id);
    }
    return KILN_OK;
}

/* Whether every byte is ASCII (NFC leaves such text alone). */
static bool all_ascii(const char *t, size_t len) {
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)t[i] >= 0x80) return false;
    return true;
}

kiln_status kiln__bpe_encode(const kiln_vocab *v, const char *text, size_t len,
                             struct kiln_tok_scratch *s, struct kiln_tok_out *out) {
    if (len == 0) return KILN_OK;
    /* 1. Qwen2 normalizes to NFC; ill-formed UTF-8 is left as it is. */
    utf8proc_uint8_t *nfc = NULL;
    if (v->pre == KILN_PRE_QWEN2 && !all_ascii(text, len) && kiln__utf8_valid(text, len)) {
        utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, &nfc,
                                          UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (n < 0) {
            if (n == UTF8PROC_ERROR_NOMEM) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
            return kiln__fail(KILN_ERR_INTERNAL, "tokenizer: NFC failed: %s", utf8proc_errmsg(n));
        }
        text = (const char *)nfc;
        len = (size_t)n;
    }
    /* 2. Words. */
    kiln_status st = kiln__pretok_split(v->index->pretok, text, len, &s->words, &s->tmp);
    /* 3-4. Merges per word. */
    for (size_t i = 0; i < s->words.n && st == KILN_OK; i++)
        st = encode_word(v, text + s->words.v[i].off, s->words.v[i].len, s, out);
    free(nfc);
    return st;
}
