/* src/text/tokenize.c - kiln__tokenize: added tokens first, then the model
 * (see tokenizer.h); also the scratch memory and heap that spm.c and bpe.c
 * share. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/tok_impl.h"
#include "text/tokenizer.h"
#include "text/vocab_impl.h"

static kiln_status oom(void) { return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "tokenizer: out of memory"); }

/* ---- scratch ---- */

/* Grow *p (elements of `size` bytes, *cap of them) to hold at least n. */
static kiln_status grow(void **p, size_t *cap, size_t n, size_t size) {
    if (n <= *cap) return KILN_OK;
    size_t c = *cap ? *cap : 64;
    while (c < n) c *= 2;
    void *q = realloc(*p, c * size);
    if (!q) return oom();
    *p = q;
    *cap = c;
    return KILN_OK;
}

kiln_status kiln__tok_reserve_sym(struct kiln_tok_scratch *s, size_t n) {
    return grow((void **)&s->sym, &s->sym_cap, n, sizeof *s->sym);
}

kiln_status kiln__tok_reserve_buf(struct kiln_tok_scratch *s, size_t n) {
    return grow((void **)&s->buf, &s->buf_cap, n, 1);
}

static void scratch_free(struct kiln_tok_scratch *s) {
    free(s->sym);
    free(s->heap);
    free(s->buf);
    kiln__spans_free(&s->words);
    kiln__spans_free(&s->tmp);
}

/* ---- heap ---- */

/* a pops before b: lower priority, then the leftmost (both in the key). */
static int pair_before(const struct kiln_tok_pair *a, const struct kiln_tok_pair *b) {
    return a->key < b->key;
}

kiln_status kiln__tok_heap_push(struct kiln_tok_scratch *s, struct kiln_tok_pair p) {
    kiln_status st = grow((void **)&s->heap, &s->heap_cap, s->heap_n + 1, sizeof *s->heap);
    if (st != KILN_OK) return st;
    size_t i = s->heap_n++;
    while (i > 0) { /* sift up */
        size_t parent = (i - 1) / 2;
        if (!pair_before(&p, &s->heap[parent])) break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = p;
    return KILN_OK;
}

int kiln__tok_heap_pop(struct kiln_tok_scratch *s, struct kiln_tok_pair *p) {
    if (s->heap_n == 0) return 0;
    *p = s->heap[0];
    struct kiln_tok_pair last = s->heap[--s->heap_n];
    size_t i = 0, n = s->heap_n;
    for (;;) { /* sift `last` down from the root */
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && pair_before(&s->heap[c + 1], &s->heap[c])) c++;
        if (!pair_before(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n) s->heap[i] = last;
    return 1;
}

/* ---- added tokens ---- */

/* The added token that starts at text[pos] (the longest if several do), or
 * -1; its length in *mlen. */
static int32_t match_added(const kiln_vocab *v, const char *text, size_t len, size_t pos,
                           bool parse_special, size_t *mlen) {
    const struct kiln_vocab_index *x = v->index;
    uint8_t b = (uint8_t)text[pos];
    if (!(x->special_first[b >> 3] & (1u << (b & 7)))) return -1;
    for (size_t i = 0; i < x->n_special_lens; i++) {
        size_t l = x->special_lens[i];
        if (l > len - pos) continue;
        int32_t id = kiln__vocab_find_special(v, text + pos, l);
        if (id < 0) continue;
        if (v->type[id] != KILN_TOKEN_USER_DEFINED && !parse_special) continue;
        *mlen = l;
        return id;
    }
    return -1;
}

/* Whether an SPM fragment (one that starts the text when at_start, else one
 * that follows an added token) gets the '▁' prefix. */
static bool spm_prefix(const kiln_vocab *v, const char *text, size_t len, bool at_start) {
    if (!v->add_space_prefix) return false;
    switch (v->spm_prefix) {
    case KILN_SPM_PREFIX_EACH:
        return true; /* as Hugging Face's normalizer, which runs on each fragment */
    case KILN_SPM_PREFIX_FIRST:
        if (!at_start) return false;
        break;
    case KILN_SPM_PREFIX_METASPACE:
        break;
    }
    /* Metaspace: not when the fragment already starts with a '▁' (a space is one). */
    return !(len > 0 && (text[0] == ' ' || (len >= 3 && memcmp(text, "\xE2\x96\x81", 3) == 0)));
}

/* The model on one fragment between added tokens. */
static kiln_status encode_fragment(const kiln_vocab *v, const char *text, size_t len,
                                   bool at_start, struct kiln_tok_scratch *s,
                                   struct kiln_tok_out *out) {
    switch (v->model) {
    case KILN_VOCAB_SPM:
        return kiln__spm_encode(v, text, len, spm_prefix(v, text, len, at_start), s, out);
    case KILN_VOCAB_BPE:
        return kiln__bpe_encode(v, text, len, s, out);
    }
    return kiln__fail(KILN_ERR_INTERNAL, "tokenizer: unknown model %d", (int)v->model);
}

kiln_status kiln__tokenize(const kiln_vocab *v, const char *text, size_t len, bool add_special,
                           bool parse_special, int32_t *out, size_t cap, size_t *n_out) {
    *n_out = 0;
    if (!v || !v->index || !v->index->ready)
        return kiln__fail(KILN_ERR_INVALID_ARG, "tokenizer: vocabulary not finalized");
    if ((!text && len) || (!out && cap))
        return kiln__fail(KILN_ERR_INVALID_ARG, "tokenizer: NULL text or output");
    if (len > KILN_TOKENIZE_MAX_LEN)
        return kiln__fail(KILN_ERR_TOO_LARGE, "tokenizer: text of %zu bytes (most %zu)", len,
                          KILN_TOKENIZE_MAX_LEN);
    struct kiln_tok_out o = {out, cap, 0};
    struct kiln_tok_scratch s = {0};
    kiln_status st = KILN_OK;
    if (add_special && v->add_bos && v->bos_id >= 0) kiln__tok_emit(&o, v->bos_id);

    size_t frag = 0; /* start of the fragment not yet encoded */
    for (size_t pos = 0; pos < len && st == KILN_OK;) {
        size_t mlen;
        int32_t id = v->index->n_special_lens ? match_added(v, text, len, pos, parse_special, &mlen) : -1;
        if (id < 0) {
            pos++;
            continue;
        }
        if (pos > frag) st = encode_fragment(v, text + frag, pos - frag, frag == 0, &s, &o);
        kiln__tok_emit(&o, id);
        pos += mlen;
        frag = pos;
    }
    if (st == KILN_OK && len > frag) st = encode_fragment(v, text + frag, len - frag, frag == 0, &s, &o);
    if (st == KILN_OK && add_special && v->add_eos && v->eos_id >= 0) kiln__tok_emit(&o, v->eos_id);
    scratch_free(&s);
    if (st != KILN_OK) return st;
    *n_out = o.n;
    if (o.n > cap)
        return kiln__fail(KILN_ERR_TOO_LARGE, "tokenizer: %zu tokens do not fit in %zu", o.n, cap);
    return KILN_OK;
}
