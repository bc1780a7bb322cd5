/* fuzz/fuzz_tokenizer.c - libFuzzer target for the LLM tokenizers.
 *
 * The first input byte picks one of six small built-in vocabularies
 * (SentencePiece with byte fallback, merged word by word or, with a piece
 * that holds '▁' after a letter, all at once; byte-level BPE with each of
 * the gpt-2, llama3, qwen2 and deepseek-llm pre-tokenizers) and the add_special /
 * parse_special flags; the rest is the text, arbitrary bytes. Checked:
 *   - the size query (cap 0) and the real call agree, and every id is in range;
 *   - detokenize(tokenize(x)) == x wherever that must hold: byte-level BPE
 *     (except Qwen2, whose NFC may change x) and SentencePiece without added
 *     tokens and without a literal '▁' in x;
 *   - the streaming detokenizer's every chunk is valid UTF-8, and when the
 *     raw text is valid UTF-8 the stream gives exactly that text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/kiln.h"
#include "text/bytelevel.h"
#include "text/tokenizer.h"
#include "text/utf8.h"
#include "text/vocab.h"

#define N_VOCABS 6

/* SentencePiece: <unk> <s> </s>, 256 byte tokens, then these pieces. */
static const struct {
    const char *text;
    float score;
} spm_pieces[] = {{"\xE2\x96\x81", -1}, {"\xE2\x96\x81t", -2}, {"he", -3}, {"\xE2\x96\x81the", -4},
                  {"th", -5},           {"e", -6},             {"t", -6},  {"h", -6},
                  {"\xE4\xB8\x80", -7}, {"\xE2\x96\x81\xE2\x96\x81", -8}, {"e\xE2\x96\x81", -2.5f}};

/* Byte-level BPE: 256 byte characters, these merges (their results become
 * tokens), and two added tokens. */
static const char *const bpe_merges[] = {"\xC4\xA0 t", "h e", "\xC4\xA0t he", "e r", "a a", "\xC4\xA0 \xC4\xA0",
                                         "\xC3\xA4 \xC2\xB8", "1 2", "\xC4\x8A \xC4\x8A"};

static void fail(const char *what) {
    fprintf(stderr, "fuzz_tokenizer: %s: %s\n", what, kiln_last_error());
    abort();
}

/* With `across`, the last piece ("e▁") is in: merges then cross spaces. */
static kiln_vocab *make_spm(bool across) {
    int32_t n = 3 + 256 + (int32_t)(sizeof spm_pieces / sizeof spm_pieces[0]) - (across ? 0 : 1);
    kiln_vocab *v;
    if (kiln__vocab_new(KILN_VOCAB_SPM, KILN_PRE_DEFAULT, n, &v) != KILN_OK) fail("spm vocab");
    kiln_status st = kiln__vocab_set_token(v, 0, "<unk>", 5, 0, KILN_TOKEN_UNKNOWN);
    if (st == KILN_OK) st = kiln__vocab_set_token(v, 1, "<s>", 3, 0, KILN_TOKEN_CONTROL);
    if (st == KILN_OK) st = kiln__vocab_set_token(v, 2, "</s>", 4, 0, KILN_TOKEN_CONTROL);
    for (int b = 0; b < 256 && st == KILN_OK; b++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        st = kiln__vocab_set_token(v, 3 + b, s, 6, 0, KILN_TOKEN_BYTE);
    }
    for (int32_t i = 259; i < n && st == KILN_OK; i++)
        st = kiln__vocab_set_token(v, i, spm_pieces[i - 259].text, strlen(spm_pieces[i - 259].text),
                                   spm_pieces[i - 259].score, KILN_TOKEN_NORMAL);
    v->unk_id = 0;
    v->bos_id = 1;
    v->eos_id = 2;
    v->add_bos = v->add_space_prefix = true;
    if (st == KILN_OK) st = kiln__vocab_finalize(v);
    if (st != KILN_OK) fail("spm vocab");
    return v;
}

static kiln_vocab *make_bpe(kiln_vocab_pre pre) {
    size_t n_merges = sizeof bpe_merges / sizeof bpe_merges[0];
    int32_t n = 256 + (int32_t)n_merges + 2;
    kiln_vocab *v;
    if (kiln__vocab_new(KILN_VOCAB_BPE, pre, n, &v) != KILN_OK) fail("bpe vocab");
    kiln_status st = KILN_OK;
    for (int b = 0; b < 256 && st == KILN_OK; b++) {
        char s[4];
        size_t len = kiln__utf8_encode(kiln__bytelevel_cp((uint8_t)b), s);
        st = kiln__vocab_set_token(v, b, s, len, 0, KILN_TOKEN_NORMAL);
    }
    for (size_t i = 0; i < n_merges && st == KILN_OK; i++) { /* a merge's result: its text minus the space */
        char s[16];
        size_t len = 0;
        for (const char *p = bpe_merges[i]; *p; p++)
            if (*p != ' ') s[len++] = *p;
        st = kiln__vocab_set_token(v, 256 + (int32_t)i, s, len, 0, KILN_TOKEN_NORMAL);
    }
    if (st == KILN_OK) st = kiln__vocab_set_token(v, n - 2, "<|end|>", 7, 0, KILN_TOKEN_CONTROL);
    if (st == KILN_OK) st = kiln__vocab_set_token(v, n - 1, "<tool>", 6, 0, KILN_TOKEN_USER_DEFINED);
    for (size_t i = 0; i < n_merges && st == KILN_OK; i++)
        st = kiln__vocab_add_merge(v, bpe_merges[i], strlen(bpe_merges[i]));
    v->bos_id = v->eos_id = n - 2;
    v->add_bos = v->add_eos = true;
    if (st == KILN_OK) st = kiln__vocab_finalize(v);
    if (st != KILN_OK) fail("bpe vocab");
    return v;
}

static kiln_vocab *vocabs[N_VOCABS];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    vocabs[0] = make_spm(false);
    vocabs[1] = make_bpe(KILN_PRE_GPT2);
    vocabs[2] = make_bpe(KILN_PRE_LLAMA3);
    vocabs[3] = make_bpe(KILN_PRE_QWEN2);
    vocabs[4] = make_bpe(KILN_PRE_DEEPSEEK_LLM);
    vocabs[5] = make_spm(true);
    return 0;
}

/* Whether `hay` contains the 3 bytes of '▁'. */
static int has_spm_space(const char *hay, size_t len) {
    for (size_t i = 0; i + 3 <= len; i++)
        if (memcmp(hay + i, "\xE2\x96\x81", 3) == 0) return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const kiln_vocab *v = vocabs[data[0] % N_VOCABS];
    bool add_special = (data[0] / N_VOCABS) & 1, parse_special = (data[0] / N_VOCABS) & 2;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    /* Size query, then the real call. */
    size_t need, n;
    kiln_status st = kiln__tokenize(v, text, len, add_special, parse_special, NULL, 0, &need);
    if (st != KILN_OK && !(st == KILN_ERR_TOO_LARGE && need > 0)) fail("size query");
    int32_t *ids = malloc((need ? need : 1) * sizeof *ids);
    if (!ids) return 0;
    if (kiln__tokenize(v, text, len, add_special, parse_special, ids, need, &n) != KILN_OK || n != need)
        fail("tokenize");
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= v->n_tokens) fail("id out of range");

    /* Raw detokenization: the inverse of tokenization where it must be. */
    bool spm = v->model == KILN_VOCAB_SPM;
    unsigned flags = spm ? KILN_DETOK_STRIP_SPACE : KILN_DETOK_SPECIAL;
    size_t skip_bos = add_special && n > 0 && ids[0] == v->bos_id;
    size_t skip_eos = add_special && v->add_eos && n > skip_bos && ids[n - 1] == v->eos_id;
    size_t raw_len;
    char *raw = malloc(4 * len + 16);
    if (!raw) {
        free(ids);
        return 0;
    }
    st = kiln__detokenize(v, ids + skip_bos, n - skip_bos - skip_eos, flags, raw, 4 * len + 16, &raw_len);
    if (st != KILN_OK) fail("detokenize");
    bool must_round_trip = spm ? !parse_special && !has_spm_space(text, len) : v->pre != KILN_PRE_QWEN2;
    if (must_round_trip && (raw_len != len || memcmp(raw, text, len) != 0)) fail("round trip");

    /* Streaming: valid UTF-8 in every chunk; the raw text when that is valid. */
    kiln_detok d;
    kiln__detok_init(&d, v, flags);
    char *streamed = malloc(3 * raw_len + 16);
    size_t s_len = 0;
    for (size_t i = skip_bos; streamed && i <= n - skip_eos; i++) {
        const char *t;
        size_t l;
        st = i < n - skip_eos ? kiln__detok_push(&d, ids[i], &t, &l) : kiln__detok_flush(&d, &t, &l);
        if (st != KILN_OK) fail("stream");
        if (!kiln__utf8_valid(t, l)) fail("stream gave invalid UTF-8");
        if (s_len + l > 3 * raw_len + 16) fail("stream gave too much");
        memcpy(streamed + s_len, t, l);
        s_len += l;
    }
    if (streamed && kiln__utf8_valid(raw, raw_len) && (s_len != raw_len || memcmp(streamed, raw, raw_len) != 0))
        fail("stream differs from the raw text");
    kiln__detok_free(&d);
    free(streamed);
    free(raw);
    free(ids);
    return 0;
}
