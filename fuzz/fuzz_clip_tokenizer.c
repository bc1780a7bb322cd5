/* fuzz/fuzz_clip_tokenizer.c - libFuzzer target for the CLIP tokenizer and
 * AUTOMATIC1111's emphasis parser.
 *
 * The first input byte picks what the rest is:
 *   even: a prompt (arbitrary bytes) for a built-in toy vocabulary, run
 *         through the cleanup, plain encoding (size query and real call
 *         agree, ids in range), the padded 77-token form (start, end and
 *         padding where they belong), the emphasis parser and the weighted
 *         chunks (every chunk starts with <|startoftext|> and ends with
 *         <|endoftext|>, every id is in range);
 *   odd:  a merges file; when it loads, a fixed text is encoded with it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/kiln.h"
#include "text/clip_clean.h"
#include "text/clip_tokenizer.h"
#include "text/prompt_attention.h"

static void fail(const char *what) {
    fprintf(stderr, "fuzz_clip_tokenizer: %s: %s\n", what, kiln_last_error());
    abort();
}

/* Merges of the toy vocabulary. */
static const char TOY[] = "#version: 0.2\nh e\nl l\nhe ll\nhell o</w>\na b</w>\n( a\n, </w>\n\xC3 \xA9</w>\n";

static const kiln_clip_tok *toy(void) {
    static kiln_clip_tok *t;
    if (!t && kiln__clip_tok_from_merges(TOY, sizeof TOY - 1, &t) != KILN_OK) fail("toy vocabulary");
    return t;
}

static void prompt(const char *text, size_t len) {
    const kiln_clip_tok *t = toy();
    int32_t n_tok = kiln__clip_tok_n_tokens(t);

    char *clean;
    size_t clen;
    if (kiln__clip_clean(text, len, &clean, &clen) != KILN_OK) fail("clean");
    if (strlen(clean) != clen) fail("cleaned text holds a NUL");
    free(clean);

    size_t n;
    kiln_status st = kiln__clip_encode(t, text, len, NULL, 0, &n);
    if (st != KILN_OK && st != KILN_ERR_TOO_LARGE) fail("encode size");
    int32_t *ids = malloc((n + 1) * sizeof *ids);
    if (!ids) return;
    size_t n2;
    if (kiln__clip_encode(t, text, len, ids, n, &n2) != KILN_OK || n2 != n) fail("encode");
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= n_tok) fail("id out of range");

    int32_t seq[KILN_CLIP_SEQ_LEN];
    if (kiln__clip_encode_padded(t, text, len, 0, seq, &n2) != KILN_OK || n2 != n) fail("padded");
    size_t k = n < KILN_CLIP_CHUNK_TOKENS ? n : KILN_CLIP_CHUNK_TOKENS;
    if (seq[0] != kiln__clip_tok_bos_id(t) || seq[k + 1] != kiln__clip_tok_eos_id(t)) fail("padded ends");
    for (size_t i = 0; i < k; i++)
        if (seq[1 + i] != ids[i]) fail("padded ids");
    for (size_t i = k + 2; i < KILN_CLIP_SEQ_LEN; i++)
        if (seq[i] != 0) fail("padding");
    free(ids);

    kiln_attn_parts parts = {0};
    st = kiln__prompt_parse_attention(text, len, &parts);
    if (st != KILN_OK && st != KILN_ERR_INVALID_ARG) fail("parse");
    if (st == KILN_OK && parts.n == 0) fail("no fragment");
    for (size_t i = 0; i < parts.n; i++)
        if (strlen(parts.v[i].text) > parts.v[i].len) fail("fragment length");
    kiln__attn_parts_free(&parts);

    kiln_clip_weight_params p = kiln__clip_weight_default_params();
    p.max_chunks = 64;
    kiln_clip_chunks c;
    st = kiln__clip_encode_weighted(t, text, len, &p, &c);
    if (st != KILN_OK && st != KILN_ERR_INVALID_ARG && st != KILN_ERR_TOO_LARGE) fail("weighted");
    for (int i = 0; st == KILN_OK && i < c.n_chunks; i++) {
        const int32_t *s = c.ids + (size_t)i * KILN_CLIP_SEQ_LEN;
        if (s[0] != kiln__clip_tok_bos_id(t) || s[KILN_CLIP_SEQ_LEN - 1] != kiln__clip_tok_eos_id(t))
            fail("chunk ends");
        for (int j = 0; j < KILN_CLIP_SEQ_LEN; j++)
            if (s[j] < 0 || s[j] >= n_tok) fail("chunk id");
    }
    kiln__clip_chunks_free(&c);
}

static void merges(const char *text, size_t len) {
    kiln_clip_tok *t;
    kiln_status st = kiln__clip_tok_from_merges(text, len, &t);
    if (st != KILN_OK) {
        if (st != KILN_ERR_FORMAT && st != KILN_ERR_TOO_LARGE) fail("merges load");
        return;
    }
    int32_t ids[64];
    size_t n;
    st = kiln__clip_encode(t, "hello (a b) \xC3\xA9t\xC3\xA9", 17, ids, 64, &n);
    if (st != KILN_OK) fail("encode with fuzzed merges");
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= kiln__clip_tok_n_tokens(t)) fail("id out of range (merges)");
    kiln__clip_tok_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    if (data[0] & 1) merges((const char *)data + 1, size - 1);
    else prompt((const char *)data + 1, size - 1);
    return 0;
}
