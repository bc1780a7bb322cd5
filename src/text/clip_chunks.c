/* src/text/clip_chunks.c - AUTOMATIC1111's prompt chunks: emphasis weights
 * per token and 75-token chunks (see clip_tokenizer.h).
 *
 * Mirrors FrozenCLIPEmbedderWithCustomWordsBase.tokenize_line (modules/
 * sd_hijack_clip.py) without textual-inversion embeddings: each parsed
 * fragment is tokenized on its own; tokens fill chunks of 75; a BREAK
 * closes the current chunk; when a chunk is full and a comma lies within
 * comma_backtrack tokens of its end, the tokens after the comma move to the
 * next chunk. Each chunk becomes start + its tokens + end-of-text padding to
 * 75 + end.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/clip_impl.h"
#include "text/prompt_attention.h"

static kiln_status oom(void) { return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "clip tokenizer: out of memory"); }

kiln_clip_weight_params kiln__clip_weight_default_params(void) {
    return (kiln_clip_weight_params){.emphasis = true, .comma_backtrack = 20, .pad_id = -1, .max_chunks = 0};
}

void kiln__clip_chunks_free(kiln_clip_chunks *c) {
    free(c->ids);
    free(c->weights);
    c->ids = NULL;
    c->weights = NULL;
    c->n_chunks = 0;
    c->token_count = 0;
}

/* The chunk being filled and the finished ones. */
struct builder {
    const kiln_clip_tok *t;           /* the tokenizer */
    const kiln_clip_weight_params *p; /* the options */
    int32_t pad_id;                   /* resolved padding id */
    int32_t cur_ids[KILN_CLIP_CHUNK_TOKENS]; /* tokens of the current chunk */
    float cur_w[KILN_CLIP_CHUNK_TOKENS];     /* their weights */
    int cur_n;                        /* tokens in the current chunk */
    int last_comma;                   /* index of its last comma, or -1 */
    kiln_clip_chunks *out;            /* finished chunks */
    int cap;                          /* chunks allocated in out */
};

/* A1111's next_chunk(): close the current chunk (padded) and start an empty
 * one. `last`: the token count grows by the tokens actually present rather
 * than by 75. */
static kiln_status next_chunk(struct builder *b, bool last) {
    kiln_clip_chunks *o = b->out;
    if (b->p->max_chunks > 0 && o->n_chunks >= b->p->max_chunks)
        return kiln__fail(KILN_ERR_TOO_LARGE, "clip tokenizer: prompt needs more than %d chunks of 75 tokens",
                          b->p->max_chunks);
    if (o->n_chunks == b->cap) {
        if (b->cap > (1 << 20)) return kiln__fail(KILN_ERR_TOO_LARGE, "clip tokenizer: prompt too long");
        int cap = b->cap ? b->cap * 2 : 4;
        int32_t *ids = realloc(o->ids, (size_t)cap * KILN_CLIP_SEQ_LEN * sizeof *ids);
        if (!ids) return oom();
        o->ids = ids;
        float *w = realloc(o->weights, (size_t)cap * KILN_CLIP_SEQ_LEN * sizeof *w);
        if (!w) return oom();
        o->weights = w;
        b->cap = cap;
    }
    o->token_count += last ? b->cur_n : KILN_CLIP_CHUNK_TOKENS;
    int32_t *ids = o->ids + (size_t)o->n_chunks * KILN_CLIP_SEQ_LEN;
    float *w = o->weights + (size_t)o->n_chunks * KILN_CLIP_SEQ_LEN;
    ids[0] = b->t->bos_id;
    w[0] = 1.0f;
    for (int i = 0; i < KILN_CLIP_CHUNK_TOKENS; i++) {
        ids[1 + i] = i < b->cur_n ? b->cur_ids[i] : b->t->eos_id;
        w[1 + i] = i < b->cur_n ? b->cur_w[i] : 1.0f;
    }
    ids[KILN_CLIP_SEQ_LEN - 1] = b->t->eos_id;
    w[KILN_CLIP_SEQ_LEN - 1] = 1.0f;
    /* process_tokens: with a padding id other than the end token, all after
     * the first end token becomes padding. */
    if (b->pad_id != b->t->eos_id) {
        int i = 0;
        while (ids[i] != b->t->eos_id) i++;
        for (i++; i < KILN_CLIP_SEQ_LEN; i++) ids[i] = b->pad_id;
    }
    o->n_chunks++;
    b->cur_n = 0;
    b->last_comma = -1;
    return KILN_OK;
}

/* Append one token of a fragment of weight w. */
static kiln_status add_token(struct builder *b, int32_t tok, float w) {
    kiln_status st;
    if (tok == b->t->comma_id) {
        b->last_comma = b->cur_n;
    } else if (b->p->comma_backtrack != 0 && b->cur_n == KILN_CLIP_CHUNK_TOKENS && b->last_comma != -1 &&
               b->cur_n - b->last_comma <= b->p->comma_backtrack) {
        /* Move the tokens after the comma to the next chunk. */
        int from = b->last_comma + 1, n = b->cur_n - from;
        int32_t ids[KILN_CLIP_CHUNK_TOKENS];
        float ws[KILN_CLIP_CHUNK_TOKENS];
        memcpy(ids, b->cur_ids + from, (size_t)n * sizeof *ids);
        memcpy(ws, b->cur_w + from, (size_t)n * sizeof *ws);
        b->cur_n = from;
        if ((st = next_chunk(b, false)) != KILN_OK) return st;
        memcpy(b->cur_ids, ids, (size_t)n * sizeof *ids);
        memcpy(b->cur_w, ws, (size_t)n * sizeof *ws);
        b->cur_n = n;
    }
    if (b->cur_n == KILN_CLIP_CHUNK_TOKENS && (st = next_chunk(b, false)) != KILN_OK) return st;
    b->cur_ids[b->cur_n] = tok;
    b->cur_w[b->cur_n] = w;
    b->cur_n++;
    return KILN_OK;
}

kiln_status kiln__clip_encode_weighted(const kiln_clip_tok *t, const char *text, size_t len,
                                       const kiln_clip_weight_params *p, kiln_clip_chunks *out) {
    memset(out, 0, sizeof *out);
    if (len > KILN_CLIP_MAX_TEXT)
        return kiln__fail(KILN_ERR_TOO_LARGE, "clip tokenizer: text of %zu bytes (most %zu)", len,
                          KILN_CLIP_MAX_TEXT);
    int32_t pad = p->pad_id >= 0 ? p->pad_id : t->pad_id;
    if (pad >= t->vocab->n_tokens)
        return kiln__fail(KILN_ERR_INVALID_ARG, "clip tokenizer: padding id %d out of range", pad);
    kiln_attn_parts parts = {0};
    kiln_status st = p->emphasis ? kiln__prompt_parse_attention(text, len, &parts)
                                 : kiln__attn_parts_plain(text, len, &parts);
    if (st != KILN_OK) return st;
    struct builder *b = calloc(1, sizeof *b);
    if (!b) {
        kiln__attn_parts_free(&parts);
        return oom();
    }
    *b = (struct builder){.t = t, .p = p, .pad_id = pad, .last_comma = -1, .out = out};
    int32_t *ids = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < parts.n && st == KILN_OK; i++) {
        const kiln_attn_part *part = &parts.v[i];
        if (kiln__attn_part_is_break(part)) {
            st = next_chunk(b, false);
            continue;
        }
        size_t n;
        st = kiln__clip_encode(t, part->text, part->len, ids, cap, &n);
        if (st == KILN_ERR_TOO_LARGE && n > cap) {
            int32_t *grown = realloc(ids, n * sizeof *ids);
            if (!grown) {
                st = oom();
                break;
            }
            ids = grown;
            cap = n;
            st = kiln__clip_encode(t, part->text, part->len, ids, cap, &n);
        }
        for (size_t k = 0; k < n && st == KILN_OK; k++) st = add_token(b, ids[k], (float)part->weight);
    }
    if (st == KILN_OK && (b->cur_n > 0 || out->n_chunks == 0)) st = next_chunk(b, true);
    free(ids);
    free(b);
    kiln__attn_parts_free(&parts);
    if (st != KILN_OK) kiln__clip_chunks_free(out);
    return st;
}
