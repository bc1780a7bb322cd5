/* tests/unit/test_tokenizer.c - the tokenizers on tiny handmade vocabularies
 * (every expected id list is worked out by hand from the algorithm in the
 * comment above it), UTF-8 and byte-alphabet helpers, the streaming
 * detokenizer, and misuse. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/status.h"
#include "test.h"
#include "text/bytelevel.h"
#include "text/pretok.h"
#include "text/tokenizer.h"
#include "text/utf8.h"
#include "text/vocab.h"

/* Byte-level alphabet spellings used below. */
#define G_SPACE "\xC4\xA0" /* 'Ġ' U+0120: the space */

/* Ids of the tiny SentencePiece vocabulary. */
enum {
    S_UNK = 0, S_BOS = 1, S_EOS = 2,
    S_BYTE0 = 3, /* <0x00> .. <0xFF> are 3 .. 258 */
    S_SP = 259, S_A, S_B, S_C, S_AB, S_BC, S_ABC, S_SPA, S_AA,
    S_N
};

/* <unk> <s> </s>, 256 byte tokens, then pieces with scores chosen so that
 * "bc" (-0.5) beats "ab" (-1) beats "aa" (-1.5) beats "abc" (-2) beats
 * "▁a" (-3). Flags as Llama's: BOS, no EOS, space prefix. */
static kiln_vocab *tiny_spm(bool add_eos) {
    kiln_vocab *v;
    if (kiln__vocab_new(KILN_VOCAB_SPM, KILN_PRE_DEFAULT, S_N, &v) != KILN_OK) return NULL;
    kiln_status st = KILN_OK;
    st |= kiln__vocab_set_token(v, S_UNK, "<unk>", 5, 0, KILN_TOKEN_UNKNOWN);
    st |= kiln__vocab_set_token(v, S_BOS, "<s>", 3, 0, KILN_TOKEN_CONTROL);
    st |= kiln__vocab_set_token(v, S_EOS, "</s>", 4, 0, KILN_TOKEN_CONTROL);
    for (int b = 0; b < 256; b++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        st |= kiln__vocab_set_token(v, S_BYTE0 + b, s, 6, 0, KILN_TOKEN_BYTE);
    }
    static const struct {
        const char *t;
        float score;
    } pieces[] = {{"\xE2\x96\x81", -5}, {"a", -4},    {"b", -4},  {"c", -4},
                  {"ab", -1},           {"bc", -0.5f}, {"abc", -2}, {"\xE2\x96\x81" "a", -3},
                  {"aa", -1.5f}};
    for (int i = 0; i < S_N - S_SP; i++)
        st |= kiln__vocab_set_token(v, S_SP + i, pieces[i].t, strlen(pieces[i].t), pieces[i].score,
                                    KILN_TOKEN_NORMAL);
    v->unk_id = S_UNK;
    v->bos_id = S_BOS;
    v->eos_id = S_EOS;
    v->add_bos = true;
    v->add_eos = add_eos;
    v->add_space_prefix = true;
    if (st == KILN_OK) st = kiln__vocab_finalize(v);
    if (st != KILN_OK) {
        kiln__vocab_free(v);
        return NULL;
    }
    return v;
}

/* Ids of the tiny byte-level vocabulary: byte b's character is id b. */
enum { B_GT = 256, B_HE, B_GTHE, B_ER, B_AA, B_AAA, B_END, B_TOOL, B_N };

/* 256 byte characters, "aaa" (which no merge makes), merges "Ġ t" (rank 0),
 * "h e" (1), "Ġt he" (2), "e r" (3), "a a" (4), the control token <|end|>
 * and the added token <tool>; BOS <|end|>. */
static kiln_vocab *tiny_bpe(kiln_vocab_pre pre) {
    kiln_vocab *v;
    if (kiln__vocab_new(KILN_VOCAB_BPE, pre, B_N, &v) != KILN_OK) return NULL;
    kiln_status st = KILN_OK;
    for (int b = 0; b < 256; b++) {
        char s[4];
        size_t n = kiln__utf8_encode(kiln__bytelevel_cp((uint8_t)b), s);
        st |= kiln__vocab_set_token(v, b, s, n, 0, KILN_TOKEN_NORMAL);
    }
    static const char *const more[] = {G_SPACE "t", "he", G_SPACE "the", "er", "aa", "aaa"};
    for (int i = 0; i < 6; i++) st |= kiln__vocab_set_token(v, B_GT + i, more[i], strlen(more[i]), 0, KILN_TOKEN_NORMAL);
    st |= kiln__vocab_set_token(v, B_END, "<|end|>", 7, 0, KILN_TOKEN_CONTROL);
    st |= kiln__vocab_set_token(v, B_TOOL, "<tool>", 6, 0, KILN_TOKEN_USER_DEFINED);
    static const char *const merges[] = {G_SPACE " t", "h e", G_SPACE "t he", "e r", "a a"};
    for (int i = 0; i < 5; i++) st |= kiln__vocab_add_merge(v, merges[i], strlen(merges[i]));
    v->bos_id = B_END;
    v->add_bos = true;
    if (st == KILN_OK) st = kiln__vocab_finalize(v);
    if (st != KILN_OK) {
        kiln__vocab_free(v);
        return NULL;
    }
    return v;
}

/* Tokenize and compare with the expected ids. */
#define CHECK_TOKENS(v, text, add_special, parse_special, ...)                                \
    do {                                                                                      \
        const int32_t want_[] = {__VA_ARGS__};                                                \
        size_t nw_ = sizeof want_ / sizeof want_[0];                                          \
        int32_t got_[64];                                                                     \
        size_t n_;                                                                            \
        kiln_status st_ = kiln__tokenize(v, text, strlen(text), add_special, parse_special, got_, 64, &n_); \
        CHECK_EQ_INT(st_, KILN_OK);                                                           \
        CHECK_EQ_INT(n_, nw_);                                                                \
        if (n_ == nw_)                                                                        \
            for (size_t k_ = 0; k_ < nw_; k_++) CHECK_EQ_INT(got_[k_], want_[k_]);            \
    } while (0)

/* Detokenize ids and compare with the expected text. */
static void check_detok(const kiln_vocab *v, const int32_t *ids, size_t n, unsigned flags, const char *want) {
    char buf[256];
    size_t len;
    CHECK_EQ_INT(kiln__detokenize(v, ids, n, flags, buf, sizeof buf - 1, &len), KILN_OK);
    buf[len < sizeof buf ? len : sizeof buf - 1] = '\0';
    CHECK_EQ_STR(buf, want);
}

static void test_utf8_classification(void) {
    size_t len;
    uint32_t cp;
    CHECK_EQ_INT(kiln__utf8_next((const uint8_t *)"A", 1, &len, &cp), KILN_UTF8_CHAR);
    CHECK(len == 1 && cp == 'A');
    CHECK_EQ_INT(kiln__utf8_next((const uint8_t *)"\xF0\x9F\x9A\x80", 4, &len, &cp), KILN_UTF8_CHAR);
    CHECK(len == 4 && cp == 0x1F680);
    /* Overlong, surrogate, past U+10FFFF, stray continuation: one bad byte each. */
    CHECK_EQ_INT(kiln__utf8_next((const uint8_t *)"\xC0\x80", 2, &len, NULL), KILN_UTF8_INVALID);
    CHECK_EQ_INT(len, 1);
    CHECK_EQ_INT(kiln__utf8_next((const uint8_t *)"\xE0\x80\x80", 3, &len, NULL), KILN_UTF8_INVALID);
    CHECK_EQ_INT(len, 1);
    CHECK_EQ_INT(kiln__utf8_next((const uint8_t *)"\xED\xA0\x80", 3, &len, NULL), KILN_UTF8_INVALID);
    CHECK_EQ_INT(len, 1);
    CHECK_EQ_INT(kiln__utf8_next((const uint8_t *)"\xF4\x90\x80\x80", 4, &len, NULL), KILN_UTF8_INVALID);
    CHECK_EQ_INT(len, 1);
    CHECK_EQ_INT(kiln__utf8_next((const uint8_t *)"\x80", 1, &len, NULL), KILN_UTF8_INVALID);
    /* A good start cut short by the end, or by a non-continuation byte. */
    CHECK_EQ_INT(kiln__utf8_next((const uint8_t *)"\xE2\x82", 2, &len, NULL), KILN_UTF8_PARTIAL);
    CHECK_EQ_INT(len, 2);
    CHECK_EQ_INT(kiln__utf8_next((const uint8_t *)"\xF0\x9F\x98" "A", 4, &len, NULL), KILN_UTF8_INVALID);
    CHECK_EQ_INT(len, 3);
    char out[4];
    CHECK_EQ_INT(kiln__utf8_encode(0x20AC, out), 3);
    CHECK(memcmp(out, "\xE2\x82\xAC", 3) == 0);
    CHECK(kiln__utf8_valid("h\xC3\xA9", 3));
    CHECK(!kiln__utf8_valid("h\xC3", 2));
}

static void test_bytelevel_alphabet(void) {
    /* GPT-2's well-known spellings: space Ġ, newline Ċ, tab ĉ, soft hyphen Ń. */
    CHECK_EQ_INT(kiln__bytelevel_cp(' '), 0x120);
    CHECK_EQ_INT(kiln__bytelevel_cp('\n'), 0x10A);
    CHECK_EQ_INT(kiln__bytelevel_cp('\t'), 0x109);
    CHECK_EQ_INT(kiln__bytelevel_cp(0x7F), 0x121);
    CHECK_EQ_INT(kiln__bytelevel_cp(0xA0), 0x142);
    CHECK_EQ_INT(kiln__bytelevel_cp(0xAD), 0x143);
    CHECK_EQ_INT(kiln__bytelevel_cp('A'), 'A');
    CHECK_EQ_INT(kiln__bytelevel_cp(0xE9), 0xE9);
    for (int b = 0; b < 256; b++) CHECK_EQ_INT(kiln__bytelevel_byte(kiln__bytelevel_cp((uint8_t)b)), b);
    CHECK_EQ_INT(kiln__bytelevel_byte(' '), -1);
    CHECK_EQ_INT(kiln__bytelevel_byte(0x144), -1);
}

static void test_spm_merges_by_score(void) {
    kiln_vocab *v = tiny_spm(false);
    REQUIRE(v != NULL);
    /* ▁ a b c: "bc" first, then "abc"; "▁abc" is no piece. */
    CHECK_TOKENS(v, "abc", false, false, S_SP, S_ABC);
    /* ▁ a a a: the two "aa" pairs tie; the leftmost wins, then nothing joins. */
    CHECK_TOKENS(v, "aaa", false, false, S_SP, S_AA, S_A);
    /* ▁a ▁ b: spaces are '▁'. */
    CHECK_TOKENS(v, "a b", false, false, S_SPA, S_SP, S_B);
    /* é is no piece: its bytes C3 A9. */
    CHECK_TOKENS(v, "\xC3\xA9", false, false, S_SP, S_BYTE0 + 0xC3, S_BYTE0 + 0xA9);
    /* Empty text: nothing, not even the prefix; BOS on request. */
    CHECK_TOKENS(v, "", true, false, S_BOS);
    CHECK_TOKENS(v, "a", true, false, S_BOS, S_SPA);
    /* "<s>" is text unless parse_special; after a special token the
     * fragment gets its own '▁'. */
    CHECK_TOKENS(v, "<s>a", false, false, S_SP, S_BYTE0 + '<', S_BYTE0 + 's', S_BYTE0 + '>', S_A);
    CHECK_TOKENS(v, "<s>a", false, true, S_BOS, S_SPA);
    CHECK_TOKENS(v, "a</s>", false, true, S_SPA, S_EOS);
    kiln__vocab_free(v);

    v = tiny_spm(true);
    REQUIRE(v != NULL);
    CHECK_TOKENS(v, "a", true, false, S_BOS, S_SPA, S_EOS);
    kiln__vocab_free(v);
}

static void test_spm_pieces_across_spaces(void) {
    /* A vocabulary with a piece that holds '▁' after a letter ("a▁", "a▁b")
     * must be merged over the whole text: ▁ a ▁ b -> "a▁" (-1) -> "a▁b" (-0.5). */
    static const struct {
        const char *t;
        float score;
    } pieces[] = {{"\xE2\x96\x81", -5}, {"a", -4}, {"b", -4}, {"a\xE2\x96\x81", -1}, {"a\xE2\x96\x81" "b", -0.5f}};
    kiln_vocab *v;
    REQUIRE(kiln__vocab_new(KILN_VOCAB_SPM, KILN_PRE_DEFAULT, 5, &v) == KILN_OK);
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(kiln__vocab_set_token(v, i, pieces[i].t, strlen(pieces[i].t), pieces[i].score, KILN_TOKEN_NORMAL),
                     KILN_OK);
    v->add_space_prefix = true;
    REQUIRE(kiln__vocab_finalize(v) == KILN_OK);
    CHECK_TOKENS(v, "a b", false, false, 0, 4);
    CHECK_TOKENS(v, "b a b", false, false, 0, 2, 0, 4);
    kiln__vocab_free(v);
}

static void test_spm_pieces_and_detokenize(void) {
    kiln_vocab *v = tiny_spm(false);
    REQUIRE(v != NULL);
    const char *p;
    size_t len;
    CHECK_EQ_INT(kiln__token_to_piece(v, S_SPA, false, &p, &len), KILN_OK);
    CHECK(len == 2 && memcmp(p, " a", 2) == 0);
    CHECK_EQ_INT(kiln__token_to_piece(v, S_BYTE0 + 0xC3, false, &p, &len), KILN_OK);
    CHECK(len == 1 && (uint8_t)p[0] == 0xC3);
    CHECK_EQ_INT(kiln__token_to_piece(v, S_BOS, false, &p, &len), KILN_OK);
    CHECK_EQ_INT(len, 0);
    CHECK_EQ_INT(kiln__token_to_piece(v, S_BOS, true, &p, &len), KILN_OK);
    CHECK(len == 3 && memcmp(p, "<s>", 3) == 0);
    CHECK_EQ_INT(kiln__token_to_piece(v, S_N, false, &p, &len), KILN_ERR_INVALID_ARG);
    CHECK_EQ_INT(kiln__token_to_piece(v, -1, false, &p, &len), KILN_ERR_INVALID_ARG);

    const int32_t ids[] = {S_BOS, S_SPA, S_SP, S_B};
    check_detok(v, ids + 1, 3, 0, " a b");
    check_detok(v, ids + 1, 3, KILN_DETOK_STRIP_SPACE, "a b");
    check_detok(v, ids, 4, KILN_DETOK_STRIP_SPACE, "a b"); /* BOS renders as nothing */
    check_detok(v, ids, 4, KILN_DETOK_STRIP_SPACE | KILN_DETOK_SPECIAL, "<s> a b");
    /* Too small a buffer: the needed size comes back. */
    char small[2];
    size_t need;
    CHECK_EQ_INT(kiln__detokenize(v, ids + 1, 3, 0, small, sizeof small, &need), KILN_ERR_TOO_LARGE);
    CHECK_EQ_INT(need, 4);
    CHECK(memcmp(small, " a", 2) == 0);
    kiln__vocab_free(v);
}

static void test_bpe_merges_by_rank(void) {
    kiln_vocab *v = tiny_bpe(KILN_PRE_GPT2);
    REQUIRE(v != NULL);
    /* Ġ t h e: "Ġ t" (0), "h e" (1), then "Ġt he" (2). */
    CHECK_TOKENS(v, " the", false, false, B_GTHE);
    /* t h e r e: "h e" (1) goes first and leaves "e r" (3) stale. */
    CHECK_TOKENS(v, "there", false, false, 't', B_HE, 'r', 'e');
    /* Two words: "the" and " there". */
    CHECK_TOKENS(v, "the there", false, false, 't', B_HE, B_GTHE, 'r', 'e');
    /* Equal ranks: the leftmost pair; "aaa" is a token, but no merge makes it. */
    CHECK_TOKENS(v, "aaa", false, false, B_AA, 'a');
    /* é is two bytes, two byte characters. */
    CHECK_TOKENS(v, "\xC3\xA9", false, false, 0xC3, 0xA9);
    /* The added token always splits; the control one only with parse_special.
     * GPT-2's regex cuts "y<|end|>" into y, <|, end, |>. */
    CHECK_TOKENS(v, "x<tool>y<|end|>", false, false, 'x', B_TOOL, 'y', '<', '|', 'e', 'n', 'd', '|', '>');
    CHECK_TOKENS(v, "x<tool>y<|end|>", false, true, 'x', B_TOOL, 'y', B_END);
    /* BOS on request (add_bos set), no EOS (none set). */
    CHECK_TOKENS(v, "aa", true, false, B_END, B_AA);
    /* Pieces: bytes back from the alphabet; added tokens raw. */
    const int32_t ids[] = {B_GTHE, 0xC3, 0xA9, B_TOOL, B_END, '\n'};
    check_detok(v, ids, 6, 0, " the\xC3\xA9<tool>\n");
    check_detok(v, ids, 6, KILN_DETOK_SPECIAL, " the\xC3\xA9<tool><|end|>\n");
    kiln__vocab_free(v);
}

/* The words that pre-tokenizer `pre` cuts `text` into equal the spans
 * want[0..2n) (start, end pairs). */
static void check_words(kiln_vocab_pre pre, const char *text, const size_t *want, size_t n) {
    kiln_pretok *p;
    REQUIRE(kiln__pretok_new(pre, &p) == KILN_OK);
    kiln_spans words = {0}, tmp = {0};
    CHECK_EQ_INT(kiln__pretok_split(p, text, strlen(text), &words, &tmp), KILN_OK);
    CHECK_EQ_INT(words.n, n);
    for (size_t i = 0; i < n && i < words.n; i++) {
        CHECK_EQ_INT(words.v[i].off, want[2 * i]);
        CHECK_EQ_INT(words.v[i].off + words.v[i].len, want[2 * i + 1]);
    }
    kiln__spans_free(&words);
    kiln__spans_free(&tmp);
    kiln__pretok_free(p);
}

static void test_pretokenizer_words(void) {
    /* Llama 3: contractions in any case ('S), numbers in threes, a space
     * before digits on its own. */
    static const size_t llama3[] = {0, 2, 2, 4, 4, 5, 5, 6, 6, 9, 9, 11};
    check_words(KILN_PRE_LLAMA3, "aa'Sb 12345", llama3, 6);
    /* Qwen2: single digits. */
    static const size_t qwen2[] = {0, 1, 1, 2, 2, 3};
    check_words(KILN_PRE_QWEN2, "123", qwen2, 3);
    /* GPT-2: 's only in lower case (so ' and S part), the space goes with
     * the next word, and of several spaces all but the last stay together. */
    static const size_t gpt2[] = {0, 2, 2, 3, 3, 4, 4, 6, 6, 9};
    check_words(KILN_PRE_GPT2, "aa'S   bb", gpt2, 5);
    /* DeepSeek LLM: newlines alone, letters with one leading space, CJK runs. */
    static const size_t deepseek[] = {0, 2, 2, 3, 3, 5, 5, 11};
    check_words(KILN_PRE_DEEPSEEK_LLM, "ab\n c\xE4\xB8\x80\xE4\xB8\x80", deepseek, 4);
    /* Ill-formed bytes never match a class: they stay between matches. */
    static const size_t bad[] = {0, 1, 1, 2, 2, 3};
    check_words(KILN_PRE_GPT2, "a\xFF" "b", bad, 3);
}

static void test_llama3_ignores_merges_for_whole_words(void) {
    /* Llama 3: a word that is a token is that token, merges or not. */
    kiln_vocab *v = tiny_bpe(KILN_PRE_LLAMA3);
    REQUIRE(v != NULL);
    CHECK_TOKENS(v, "aaa", false, false, B_AAA);
    CHECK_TOKENS(v, "aaaa", false, false, B_AA, B_AA);
    kiln__vocab_free(v);
}

static void test_tokenize_capacity(void) {
    kiln_vocab *v = tiny_spm(false);
    REQUIRE(v != NULL);
    int32_t out[1];
    size_t n;
    CHECK_EQ_INT(kiln__tokenize(v, "abc", 3, false, false, out, 1, &n), KILN_ERR_TOO_LARGE);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(out[0], S_SP);
    CHECK_EQ_INT(kiln__tokenize(v, "abc", 3, false, false, NULL, 0, &n), KILN_ERR_TOO_LARGE);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(kiln__tokenize(v, NULL, 1, false, false, out, 1, &n), KILN_ERR_INVALID_ARG);
    CHECK_EQ_INT(kiln__tokenize(v, NULL, 0, false, false, out, 1, &n), KILN_OK);
    CHECK_EQ_INT(n, 0);
    kiln__vocab_free(v);
}

/* Push ids through a stream, appending its output to buf (NUL-terminated);
 * every chunk must be valid UTF-8. */
static void stream(kiln_detok *d, const int32_t *ids, size_t n, bool flush, char *buf, size_t cap) {
    size_t at = strlen(buf);
    for (size_t i = 0; i <= n; i++) {
        const char *t;
        size_t len;
        if (i == n && !flush) break;
        kiln_status st = i < n ? kiln__detok_push(d, ids[i], &t, &len) : kiln__detok_flush(d, &t, &len);
        CHECK_EQ_INT(st, KILN_OK);
        CHECK(kiln__utf8_valid(t, len));
        if (at + len < cap) {
            memcpy(buf + at, t, len);
            at += len;
        }
    }
    buf[at] = '\0';
}

static void test_streaming_detokenizer(void) {
    kiln_vocab *v = tiny_spm(false);
    REQUIRE(v != NULL);
    kiln_detok d;
    char buf[128] = "";
    kiln__detok_init(&d, v, KILN_DETOK_STRIP_SPACE);
    /* € as three byte tokens: nothing until the last. */
    const int32_t euro[] = {S_BYTE0 + 0xE2, S_BYTE0 + 0x82};
    stream(&d, euro, 2, false, buf, sizeof buf);
    CHECK_EQ_STR(buf, "");
    const int32_t last[] = {S_BYTE0 + 0xAC, S_SPA};
    stream(&d, last, 2, false, buf, sizeof buf);
    CHECK_EQ_STR(buf, "\xE2\x82\xAC a"); /* the space was not the first byte: kept */
    /* A start that the next piece does not continue, a byte that is never
     * valid, a 3-byte start cut by 'a', and one left at the end: one U+FFFD
     * each. */
    const int32_t bad[] = {S_BYTE0 + 0xC3, S_A, S_BYTE0 + 0xFF, S_BYTE0 + 0xF0, S_BYTE0 + 0x9F,
                           S_BYTE0 + 0x98, S_A, S_BYTE0 + 0xE2};
    buf[0] = '\0';
    stream(&d, bad, 8, true, buf, sizeof buf);
    CHECK_EQ_STR(buf, KILN_UTF8_REPLACEMENT "a" KILN_UTF8_REPLACEMENT KILN_UTF8_REPLACEMENT "a" KILN_UTF8_REPLACEMENT);
    /* After a flush the stream starts again: the leading space goes. */
    const int32_t hello[] = {S_BOS, S_SPA, S_SP, S_B};
    buf[0] = '\0';
    stream(&d, hello, 4, true, buf, sizeof buf);
    CHECK_EQ_STR(buf, "a b");
    kiln__detok_free(&d);
    kiln__detok_free(&d); /* twice is harmless */

    kiln__detok_init(&d, v, KILN_DETOK_SPECIAL);
    buf[0] = '\0';
    stream(&d, hello, 4, true, buf, sizeof buf);
    CHECK_EQ_STR(buf, "<s> a b");
    const char *t;
    size_t len;
    CHECK_EQ_INT(kiln__detok_push(&d, 99999, &t, &len), KILN_ERR_INVALID_ARG);
    kiln__detok_free(&d);
    kiln__detok_free(NULL);
    kiln__vocab_free(v);
}

static void test_vocab_building_errors(void) {
    kiln_vocab *v;
    CHECK_EQ_INT(kiln__vocab_new(KILN_VOCAB_SPM, KILN_PRE_GPT2, 4, &v), KILN_ERR_UNSUPPORTED);
    CHECK_EQ_INT(kiln__vocab_new(KILN_VOCAB_BPE, KILN_PRE_DEFAULT, 4, &v), KILN_ERR_UNSUPPORTED);
    CHECK_EQ_INT(kiln__vocab_new(KILN_VOCAB_BPE, KILN_PRE_GPT2, 0, &v), KILN_ERR_INVALID_ARG);

    REQUIRE(kiln__vocab_new(KILN_VOCAB_BPE, KILN_PRE_GPT2, 3, &v) == KILN_OK);
    CHECK_EQ_INT(kiln__vocab_set_token(v, 0, "a", 1, 0, KILN_TOKEN_NORMAL), KILN_OK);
    CHECK_EQ_INT(kiln__vocab_set_token(v, 0, "a", 1, 0, KILN_TOKEN_NORMAL), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "token 0 set twice");
    CHECK_EQ_INT(kiln__vocab_set_token(v, 3, "x", 1, 0, KILN_TOKEN_NORMAL), KILN_ERR_INVALID_ARG);
    CHECK_EQ_INT(kiln__vocab_set_token(v, 1, "x", 1, 0, (kiln_token_type)7), KILN_ERR_FORMAT);
    CHECK_EQ_INT(kiln__vocab_set_token(v, 1, "b", 1, 0, KILN_TOKEN_NORMAL), KILN_OK);
    /* A merge before every token is set; finalize likewise. */
    CHECK_EQ_INT(kiln__vocab_add_merge(v, "a b", 3), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "token 2 was never set");
    CHECK_EQ_INT(kiln__vocab_set_token(v, 2, "ab", 2, 0, KILN_TOKEN_NORMAL), KILN_OK);
    CHECK_EQ_INT(kiln__vocab_add_merge(v, "ab", 2), KILN_ERR_FORMAT);
    CHECK_EQ_INT(kiln__vocab_add_merge(v, "a b", 3), KILN_OK);
    CHECK_EQ_INT(kiln__vocab_add_merge(v, "a zz", 4), KILN_OK); /* never applies: ignored */
    CHECK_EQ_INT(kiln__vocab_set_token(v, 2, "ab", 2, 0, KILN_TOKEN_NORMAL), KILN_ERR_INVALID_ARG);
    int32_t out[4];
    size_t n;
    CHECK_EQ_INT(kiln__tokenize(v, "ab", 2, false, false, out, 4, &n), KILN_ERR_INVALID_ARG);
    v->eos_id = 3;
    CHECK_EQ_INT(kiln__vocab_finalize(v), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "eos token id 3 out of range");
    CHECK_EQ_INT(kiln__vocab_finalize(v), KILN_ERR_INVALID_ARG); /* only free is left */
    kiln__vocab_free(v);

    REQUIRE(kiln__vocab_new(KILN_VOCAB_SPM, KILN_PRE_DEFAULT, 2, &v) == KILN_OK);
    CHECK_EQ_INT(kiln__vocab_set_token(v, 0, "a", 1, 0, KILN_TOKEN_NORMAL), KILN_OK);
    CHECK_EQ_INT(kiln__vocab_add_merge(v, "a a", 3), KILN_ERR_INVALID_ARG); /* SPM has no merges */
    CHECK_EQ_INT(kiln__vocab_finalize(v), KILN_ERR_FORMAT);
    kiln__vocab_free(v);
    kiln__vocab_free(NULL);

    kiln_vocab_pre pre;
    CHECK(kiln__vocab_pre_from_name("llama-bpe", 9, &pre) && pre == KILN_PRE_LLAMA3);
    CHECK(kiln__vocab_pre_from_name("deepseek-llm", 12, &pre) && pre == KILN_PRE_DEEPSEEK_LLM);
    CHECK(!kiln__vocab_pre_from_name("gpt-22", 6, &pre));
    CHECK_EQ_STR(kiln__vocab_pre_name(KILN_PRE_QWEN2), "qwen2");
}

int main(void) {
    RUN(test_utf8_classification);
    RUN(test_bytelevel_alphabet);
    RUN(test_spm_merges_by_score);
    RUN(test_spm_pieces_across_spaces);
    RUN(test_spm_pieces_and_detokenize);
    RUN(test_bpe_merges_by_rank);
    RUN(test_pretokenizer_words);
    RUN(test_llama3_ignores_merges_for_whole_words);
    RUN(test_tokenize_capacity);
    RUN(test_streaming_detokenizer);
    RUN(test_vocab_building_errors);
    return TEST_REPORT();
}
