/* tests/unit/test_clip_tokenizer.c - the CLIP BPE tokenizer: vocabulary
 * loading (merges file and tokenizer folder), text cleanup and ids against
 * simple_tokenizer.py, 77-token sequences, AUTOMATIC1111's emphasis parser
 * and prompt chunks.
 *
 * The reference ids come from ../shared/data/clip (tokenizer_tests.json and
 * the real merges file; those tests skip when it is absent) and from
 * tests/data/image/clip/clean.json (tools/image_goldens/make_clip_goldens.py,
 * which runs openai/CLIP's simple_tokenizer.py with ftfy). The emphasis
 * weights are derived by hand from A1111's algorithm (each expected value is
 * written as the product A1111 computes).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/error.h"
#include "kiln/kiln.h"
#include "test.h"
#include "test_files.h"
#include "text/clip_clean.h"
#include "text/clip_tokenizer.h"
#include "text/prompt_attention.h"

#define CLIP_DIR KILN_SHARED_DATA_DIR "/clip"
#define MERGES_GZ CLIP_DIR "/bpe_simple_vocab_16e6.txt.gz"

/* The real tokenizer, or NULL (the caller skips) when the shared data is
 * absent. */
static kiln_clip_tok *real_tok(void) {
    kiln_clip_tok *t = NULL;
    if (kiln__clip_tok_load_merges(MERGES_GZ, &t) != KILN_OK) return NULL;
    return t;
}

/* A toy merges file: h+e, l+l, he+ll, hell+o</w>, a+b</w>. Its vocabulary:
 * 0..255 the byte characters, 256..511 the same with </w>, 512..516 the
 * merges, 517 <|startoftext|>, 518 <|endoftext|>. */
static const char TOY[] = "#version: 0.2\nh e\nl l\nhe ll\nhell o</w>\na b</w>\n";

static kiln_clip_tok *toy_tok(void) {
    kiln_clip_tok *t = NULL;
    if (kiln__clip_tok_from_merges(TOY, sizeof TOY - 1, &t) != KILN_OK) return NULL;
    return t;
}

/* Encode and compare with the expected ids. */
static int ids_equal(const kiln_clip_tok *t, const char *text, size_t len, const int32_t *want, size_t n_want) {
    int32_t got[512];
    size_t n = 0;
    if (kiln__clip_encode(t, text, len, got, 512, &n) != KILN_OK || n != n_want) return 0;
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i]) return 0;
    return 1;
}

/* The ids of a JSON array, or NULL. */
static int32_t *json_ids(const json_t *a, size_t *n) {
    *n = json_array_size(a);
    int32_t *v = malloc((*n + 1) * sizeof *v);
    for (size_t i = 0; v && i < *n; i++) v[i] = (int32_t)json_integer_value(json_array_get(a, i));
    return v;
}

static void test_shared_tokenizer_tests(void) {
    kiln_clip_tok *t = real_tok();
    if (!t) SKIP_TEST("%s not found", MERGES_GZ);
    json_error_t err;
    json_t *root = json_load_file(CLIP_DIR "/tokenizer_tests.json", 0, &err);
    if (!root) {
        kiln__clip_tok_free(t);
        SKIP_TEST("%s/tokenizer_tests.json not found", CLIP_DIR);
    }
    CHECK_EQ_INT(kiln__clip_tok_n_tokens(t), 49408);
    CHECK_EQ_INT(kiln__clip_tok_bos_id(t), 49406);
    CHECK_EQ_INT(kiln__clip_tok_eos_id(t), 49407);
    CHECK_EQ_INT(kiln__clip_tok_pad_id(t), 49407);
    CHECK_EQ_INT(kiln__clip_tok_comma_id(t), 267);
    size_t i;
    json_t *c;
    CHECK(json_array_size(root) > 0);
    json_array_foreach(root, i, c) {
        const json_t *text = json_object_get(c, "text");
        size_t n;
        int32_t *want = json_ids(json_object_get(c, "ids"), &n);
        if (!ids_equal(t, json_string_value(text), json_string_length(text), want, n))
            TEST_FAIL_AT_("ids differ for \"%s\"", json_string_value(text));
        free(want);
    }
    json_decref(root);
    kiln__clip_tok_free(t);
}

static void test_cleanup_goldens(void) {
    json_error_t err;
    json_t *root = json_load_file(KILN_SOURCE_DIR "/tests/data/image/clip/clean.json", JSON_ALLOW_NUL, &err);
    REQUIRE(root != NULL);
    kiln_clip_tok *t = real_tok(); /* ids only when the shared vocabulary is there */
    size_t i;
    json_t *c;
    CHECK(json_array_size(root) >= 15);
    json_array_foreach(root, i, c) {
        const json_t *text = json_object_get(c, "text"), *clean = json_object_get(c, "clean");
        char *got = NULL;
        size_t len = 0;
        CHECK_EQ_INT(kiln__clip_clean(json_string_value(text), json_string_length(text), &got, &len), KILN_OK);
        if (got && (len != json_string_length(clean) || memcmp(got, json_string_value(clean), len) != 0))
            TEST_FAIL_AT_("case %zu: cleaned \"%s\", expected \"%s\"", i, got, json_string_value(clean));
        free(got);
        if (t) {
            size_t n;
            int32_t *want = json_ids(json_object_get(c, "ids"), &n);
            if (!ids_equal(t, json_string_value(text), json_string_length(text), want, n))
                TEST_FAIL_AT_("case %zu: ids differ", i);
            free(want);
        }
    }
    json_decref(root);
    kiln__clip_tok_free(t);
}

static void test_missing_vocab_says_clip_vocab(void) {
    kiln_clip_tok *t = (kiln_clip_tok *)1;
    CHECK_EQ_INT(kiln__clip_tok_load_merges("/nonexistent/bpe_simple_vocab_16e6.txt.gz", &t), KILN_ERR_NOT_FOUND);
    CHECK(t == NULL);
    CHECK_CONTAINS(kiln_last_error(), "--clip-vocab");
    CHECK_EQ_INT(kiln__clip_tok_load_folder("/nonexistent/tokenizer", &t), KILN_ERR_NOT_FOUND);
    CHECK_CONTAINS(kiln_last_error(), "vocab.json");
}

static void test_toy_vocabulary_layout_and_merges(void) {
    kiln_clip_tok *t = toy_tok();
    REQUIRE(t != NULL);
    CHECK_EQ_INT(kiln__clip_tok_n_tokens(t), 519);
    CHECK_EQ_INT(kiln__clip_tok_bos_id(t), 517);
    CHECK_EQ_INT(kiln__clip_tok_eos_id(t), 518);
    CHECK_EQ_INT(kiln__clip_tok_comma_id(t), 256 + (',' - 0x21));
    /* "hello": h e -> he, l l -> ll, he ll -> hell, hell o</w> -> 515. */
    CHECK(ids_equal(t, "Hello", 5, (const int32_t[]){515}, 1));
    /* a + b</w> -> 516; a alone is a</w> (256 + 'a' - 0x21). */
    CHECK(ids_equal(t, "ab a", 4, (const int32_t[]){516, 256 + 'a' - 0x21}, 2));
    /* he + o</w> has no merge. */
    CHECK(ids_equal(t, "heo", 3, (const int32_t[]){512, 256 + 'o' - 0x21}, 2));
    /* U+00AD is C2 AD: C2 is printable (0xAE..0xFF start at index 106), AD
     * is the last of the non-printable bytes (index 255). */
    CHECK(ids_equal(t, "\xC2\xAD", 2, (const int32_t[]){106 + 0xC2 - 0xAE, 256 + 255}, 2));
    /* Byte 0x0C (form feed) is white space; 0x01 is removed by ftfy. */
    CHECK(ids_equal(t, "a\x01\x0c" "ab", 5, (const int32_t[]){256 + 'a' - 0x21, 516}, 2));
    /* Special tokens, and ill-formed UTF-8 as U+FFFD (EF BF BD). */
    CHECK(ids_equal(t, "<|startoftext|>x<|endoftext|>", 29,
                    (const int32_t[]){517, 256 + 'x' - 0x21, 518}, 3));
    CHECK(ids_equal(t, "\xFF", 1, (const int32_t[]){106 + 0xEF - 0xAE, 106 + 0xBF - 0xAE, 256 + 106 + 0xBD - 0xAE},
                    3));
    /* Too small an output array. */
    int32_t one[1];
    size_t n;
    CHECK_EQ_INT(kiln__clip_encode(t, "a a a", 5, one, 1, &n), KILN_ERR_TOO_LARGE);
    CHECK_EQ_INT(n, 3);
    kiln__clip_tok_free(t);
}

static void test_malformed_merges(void) {
    kiln_clip_tok *t = NULL;
    static const char three[] = "header\na b c\n";
    CHECK_EQ_INT(kiln__clip_tok_from_merges(three, sizeof three - 1, &t), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "line 2");
    static const char empty_line[] = "header\na b\n\nc d\n";
    CHECK_EQ_INT(kiln__clip_tok_from_merges(empty_line, sizeof empty_line - 1, &t), KILN_ERR_FORMAT);
    /* The header alone is a vocabulary of bytes only. */
    CHECK_EQ_INT(kiln__clip_tok_from_merges("header", 6, &t), KILN_OK);
    REQUIRE(t != NULL);
    CHECK_EQ_INT(kiln__clip_tok_n_tokens(t), 514);
    CHECK(ids_equal(t, "ab", 2, (const int32_t[]){'a' - 0x21, 256 + 'b' - 0x21}, 2));
    kiln__clip_tok_free(t);
    /* A merges file on disk, not compressed. */
    char path[512];
    snprintf(path, sizeof path, "%s/clip_toy_merges.txt", KILN_TEST_TMP);
    test_write_text(path, TOY);
    CHECK_EQ_INT(kiln__clip_tok_load_merges(path, &t), KILN_OK);
    if (t) CHECK(ids_equal(t, "hello", 5, (const int32_t[]){515}, 1));
    kiln__clip_tok_free(t);
}

/* A diffusers tokenizer folder with the toy vocabulary. */
static void write_toy_folder(const char *dir, const char *pad_json) {
    kiln_clip_tok *t = toy_tok();
    if (!t) return;
    test_mkdirs(dir);
    json_t *vocab = json_object();
    /* Token texts in id order: rebuild them from the layout. */
    static const char *const merged[] = {"he", "ll", "hell", "hello</w>", "ab</w>"};
    int id = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int b = 0; b < 256; b++) {
            int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
            if (printable != (pass == 0)) continue;
            uint32_t cp = printable ? (uint32_t)b : 0;
            if (!printable) { /* the n-th non-printable byte is U+0100 + n */
                int k = 0;
                for (int c = 0; c < b; c++)
                    if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE)) k++;
                cp = 0x100 + (uint32_t)k;
            }
            char s[16];
            int l = cp < 0x80 ? (s[0] = (char)cp, 1) : (s[0] = (char)(0xC0 | (cp >> 6)), s[1] = (char)(0x80 | (cp & 0x3F)), 2);
            s[l] = '\0';
            json_object_set_new(vocab, s, json_integer(id));
            memcpy(s + l, "</w>", 5);
            json_object_set_new(vocab, s, json_integer(id + 256));
            id++;
        }
    }
    for (int i = 0; i < 5; i++) json_object_set_new(vocab, merged[i], json_integer(512 + i));
    json_object_set_new(vocab, "<|startoftext|>", json_integer(517));
    json_object_set_new(vocab, "<|endoftext|>", json_integer(518));
    char path[600];
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    json_dump_file(vocab, path, 0);
    json_decref(vocab);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    test_write_text(path, TOY);
    snprintf(path, sizeof path, "%s/special_tokens_map.json", dir);
    if (pad_json) test_write_text(path, pad_json);
    else remove(path);
    kiln__clip_tok_free(t);
}

static void test_tokenizer_folder(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/clip_folder", KILN_TEST_TMP);
    write_toy_folder(dir, "{\"pad_token\": {\"content\": \"!\", \"lstrip\": false}}");
    kiln_clip_tok *t = NULL;
    CHECK_EQ_INT(kiln__clip_tok_load_folder(dir, &t), KILN_OK);
    REQUIRE(t != NULL);
    CHECK_EQ_INT(kiln__clip_tok_pad_id(t), 0); /* "!" as SD 2.x names it */
    CHECK_EQ_INT(kiln__clip_tok_bos_id(t), 517);
    CHECK(ids_equal(t, "hello ab heo", 12, (const int32_t[]){515, 516, 512, 256 + 'o' - 0x21}, 4));
    kiln__clip_tok_free(t);
    /* Without a padding token: <|endoftext|>. A pad token not in the
     * vocabulary is an error. */
    write_toy_folder(dir, NULL);
    CHECK_EQ_INT(kiln__clip_tok_load_folder(dir, &t), KILN_OK);
    if (t) CHECK_EQ_INT(kiln__clip_tok_pad_id(t), 518);
    kiln__clip_tok_free(t);
    write_toy_folder(dir, "{\"pad_token\": \"<pad>\"}");
    CHECK_EQ_INT(kiln__clip_tok_load_folder(dir, &t), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "<pad>");
    /* Sparse ids (the start and end tokens far above the merges, as the
     * tiny test models once had them) are refused with a message. */
    write_toy_folder(dir, NULL);
    char path[600];
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    json_t *vocab = json_load_file(path, 0, NULL);
    REQUIRE(vocab != NULL);
    json_object_set_new(vocab, "<|startoftext|>", json_integer(998));
    json_dump_file(vocab, path, 0);
    json_decref(vocab);
    CHECK_EQ_INT(kiln__clip_tok_load_folder(dir, &t), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "dense");
}

static void test_padded_sequence(void) {
    kiln_clip_tok *t = toy_tok();
    REQUIRE(t != NULL);
    int32_t seq[KILN_CLIP_SEQ_LEN];
    size_t n;
    CHECK_EQ_INT(kiln__clip_encode_padded(t, "hello ab", 8, kiln__clip_tok_pad_id(t), seq, &n), KILN_OK);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(seq[0], 517);
    CHECK_EQ_INT(seq[1], 515);
    CHECK_EQ_INT(seq[2], 516);
    for (int i = 3; i < KILN_CLIP_SEQ_LEN; i++) CHECK_EQ_INT(seq[i], 518);
    /* OpenCLIP pads with 0. */
    CHECK_EQ_INT(kiln__clip_encode_padded(t, "", 0, 0, seq, &n), KILN_OK);
    CHECK_EQ_INT(n, 0);
    CHECK(seq[0] == 517 && seq[1] == 518 && seq[2] == 0 && seq[76] == 0);
    /* 100 words: the first 75 are kept, then the end token. */
    char text[400] = "";
    for (int i = 0; i < 100; i++) strcat(text, "ab ");
    CHECK_EQ_INT(kiln__clip_encode_padded(t, text, strlen(text), 518, seq, &n), KILN_OK);
    CHECK_EQ_INT(n, 100);
    CHECK(seq[0] == 517 && seq[1] == 516 && seq[75] == 516 && seq[76] == 518);
    CHECK_EQ_INT(kiln__clip_encode_padded(t, "a", 1, 519, seq, &n), KILN_ERR_INVALID_ARG);
    kiln__clip_tok_free(t);
}

/* ---- emphasis ---- */

/* One expected fragment. */
struct part {
    const char *text;
    double weight;
};

/* Parse and compare with the expected fragments (weights exactly). */
static void check_parse(const char *prompt, const struct part *want, size_t n, int line) {
    kiln_attn_parts p = {0};
    kiln_status st = kiln__prompt_parse_attention(prompt, strlen(prompt), &p);
    int ok = st == KILN_OK && p.n == n;
    for (size_t i = 0; ok && i < n; i++)
        ok = strcmp(p.v[i].text, want[i].text) == 0 && p.v[i].len == strlen(want[i].text) &&
             p.v[i].weight == want[i].weight;
    if (!ok) {
        fprintf(stderr, "  line %d: \"%s\" parsed as:", line, prompt);
        for (size_t i = 0; i < p.n; i++) fprintf(stderr, " [\"%s\" %.17g]", p.v[i].text, p.v[i].weight);
        fputc('\n', stderr);
        test_failures_++;
    }
    kiln__attn_parts_free(&p);
}

#define PARSE(prompt, ...)                                                              \
    do {                                                                                \
        static const struct part want_[] = {__VA_ARGS__};                               \
        check_parse(prompt, want_, sizeof want_ / sizeof want_[0], __LINE__);           \
    } while (0)

static void test_emphasis_parsing(void) {
    const double up = 1.1, down = 1 / 1.1;
    PARSE("normal text", {"normal text", 1.0});
    PARSE("", {"", 1.0});
    PARSE("an (important) word", {"an ", 1.0}, {"important", up}, {" word", 1.0});
    PARSE("((a))", {"a", 1.0 * up * up});
    PARSE("(((a)))", {"a", 1.0 * up * up * up});
    PARSE("[a]", {"a", 1.0 * down});
    PARSE("[[a]] b", {"a", 1.0 * down * down}, {" b", 1.0});
    PARSE("(a:1.5)", {"a", 1.5});
    PARSE("( a : 1.5 )", {" a ", 1.5});
    PARSE("(a:-1)", {"a", -1.0});
    PARSE("(a:.5) (b:2.)", {"a", 0.5}, {" ", 1.0}, {"b", 2.0});
    PARSE("(a (b:2) c)", {"a ", up}, {"b", 1.0 * 2.0 * up}, {" c", up});
    PARSE("(unbalanced", {"unbalanced", up});
    PARSE("[open (both", {"open ", down}, {"both", 1.0 * up * down});
    PARSE("(unnecessary)(parens)", {"unnecessaryparens", up});
    PARSE("\\(literal\\] \\\\ x\\y", {"(literal] \\ xy", 1.0});
    PARSE("a:1.5) b ) c ]", {"a:1.5) b ) c ]", 1.0});
    PARSE("(a][b)", {"a]", up}, {"b", 1.0 * up * down});
    PARSE("a BREAK b", {"a", 1.0}, {"BREAK", -1.0}, {"b", 1.0});
    PARSE("aBREAK BREAKb BREAK_x", {"aBREAK BREAKb BREAK_x", 1.0});
    PARSE("x\tBREAK\n y", {"x", 1.0}, {"BREAK", -1.0}, {"y", 1.0});
    PARSE("(a BREAK b)", {"a", up}, {"BREAK", -1.0 * up}, {"b", up});
    PARSE("a (b:1.1) c", {"a ", 1.0}, {"b", 1.1}, {" c", 1.0});
    /* 1.1 * 1.1 is not 1.21 in doubles: the fragments stay apart. */
    PARSE("((a)) (b:1.21)", {"a", 1.0 * up * up}, {" ", 1.0}, {"b", 1.21});
    /* Unicode digits and spaces as Python's \d and \s read them. */
    PARSE("(a:\xD9\xA1.\xD9\xA5\xC2\xA0)", {"a", 1.5});

    kiln_attn_parts p = {0};
    CHECK_EQ_INT(kiln__prompt_parse_attention("(a:1.2.3)", 9, &p), KILN_ERR_INVALID_ARG);
    CHECK_CONTAINS(kiln_last_error(), "1.2.3");
    CHECK_EQ_INT(kiln__prompt_parse_attention("(a:.)", 5, &p), KILN_ERR_INVALID_ARG);
    CHECK(p.n == 0);
    /* A BREAK inside brackets is no break any more. */
    CHECK_EQ_INT(kiln__prompt_parse_attention("(a BREAK b)", 11, &p), KILN_OK);
    CHECK(p.n == 3 && !kiln__attn_part_is_break(&p.v[1]));
    CHECK_EQ_INT(kiln__prompt_parse_attention("a BREAK b", 9, &p), KILN_OK);
    CHECK(p.n == 3 && kiln__attn_part_is_break(&p.v[1]));
    kiln__attn_parts_free(&p);
}

/* ---- chunks ---- */

/* "a" repeated n times with separator sep. */
static char *repeat(const char *word, int n) {
    size_t l = strlen(word);
    char *s = malloc(l * (size_t)n + 1);
    for (int i = 0; i < n; i++) memcpy(s + l * (size_t)i, word, l);
    s[l * (size_t)n] = '\0';
    return s;
}

static void test_weighted_chunks(void) {
    kiln_clip_tok *t = toy_tok();
    REQUIRE(t != NULL);
    const int32_t A = 256 + 'a' - 0x21, COMMA = 256 + ',' - 0x21, BOS = 517, EOS = 518;
    kiln_clip_weight_params p = kiln__clip_weight_default_params();
    kiln_clip_chunks c;

    /* Weights per token; start, end and padding weigh 1. */
    CHECK_EQ_INT(kiln__clip_encode_weighted(t, "(a) [a] (a:1.5) hello", 21, &p, &c), KILN_OK);
    CHECK_EQ_INT(c.n_chunks, 1);
    CHECK_EQ_INT(c.token_count, 4);
    CHECK(c.ids[0] == BOS && c.ids[1] == A && c.ids[2] == A && c.ids[3] == A && c.ids[4] == 515);
    CHECK(c.ids[5] == EOS && c.ids[76] == EOS);
    CHECK(c.weights[0] == 1.0f && c.weights[1] == (float)1.1 && c.weights[2] == (float)(1 / 1.1) &&
          c.weights[3] == 1.5f && c.weights[4] == 1.0f && c.weights[76] == 1.0f);
    kiln__clip_chunks_free(&c);

    /* Emphasis off: brackets are text ("(" and ")" tokens). */
    p.emphasis = false;
    CHECK_EQ_INT(kiln__clip_encode_weighted(t, "(a)", 3, &p, &c), KILN_OK);
    CHECK(c.ids[1] == 256 + '(' - 0x21 && c.ids[2] == A && c.ids[3] == 256 + ')' - 0x21 && c.weights[2] == 1.0f);
    kiln__clip_chunks_free(&c);
    p.emphasis = true;

    /* An empty prompt: one chunk of padding; token count 0. */
    CHECK_EQ_INT(kiln__clip_encode_weighted(t, "", 0, &p, &c), KILN_OK);
    CHECK(c.n_chunks == 1 && c.token_count == 0 && c.ids[0] == BOS && c.ids[1] == EOS);
    kiln__clip_chunks_free(&c);

    /* BREAK closes a chunk. */
    CHECK_EQ_INT(kiln__clip_encode_weighted(t, "a BREAK a", 9, &p, &c), KILN_OK);
    CHECK_EQ_INT(c.n_chunks, 2);
    CHECK_EQ_INT(c.token_count, 76);
    CHECK(c.ids[1] == A && c.ids[2] == EOS && c.ids[77] == BOS && c.ids[78] == A);
    kiln__clip_chunks_free(&c);

    /* 80 tokens: 75 + 5. */
    char *s = repeat("a ", 80);
    CHECK_EQ_INT(kiln__clip_encode_weighted(t, s, strlen(s), &p, &c), KILN_OK);
    CHECK_EQ_INT(c.n_chunks, 2);
    CHECK_EQ_INT(c.token_count, 80);
    CHECK(c.ids[75] == A && c.ids[76] == EOS && c.ids[77 + 5] == A && c.ids[77 + 6] == EOS);
    kiln__clip_chunks_free(&c);
    p.max_chunks = 1;
    CHECK_EQ_INT(kiln__clip_encode_weighted(t, s, strlen(s), &p, &c), KILN_ERR_TOO_LARGE);
    p.max_chunks = 0;
    free(s);

    /* 70 a, a comma, 10 a: the chunk fills after the comma and 4 more; with
     * backtracking those 4 move on and the next chunk holds 10. */
    char *head = repeat("a ", 70), *tail = repeat("a ", 10);
    size_t len = strlen(head) + 2 + strlen(tail);
    char *text = malloc(len + 1);
    snprintf(text, len + 1, "%s, %s", head, tail);
    CHECK_EQ_INT(kiln__clip_encode_weighted(t, text, len, &p, &c), KILN_OK);
    CHECK_EQ_INT(c.n_chunks, 2);
    CHECK_EQ_INT(c.token_count, 85);
    CHECK(c.ids[70] == A && c.ids[71] == COMMA && c.ids[72] == EOS && c.ids[75] == EOS);
    CHECK(c.ids[77 + 10] == A && c.ids[77 + 11] == EOS);
    kiln__clip_chunks_free(&c);
    p.comma_backtrack = 0;
    CHECK_EQ_INT(kiln__clip_encode_weighted(t, text, len, &p, &c), KILN_OK);
    CHECK_EQ_INT(c.token_count, 81);
    CHECK(c.ids[71] == COMMA && c.ids[75] == A && c.ids[77 + 6] == A && c.ids[77 + 7] == EOS);
    kiln__clip_chunks_free(&c);
    p.comma_backtrack = 20;

    /* SD 2.x: padding 0 after the first end token. */
    p.pad_id = 0;
    CHECK_EQ_INT(kiln__clip_encode_weighted(t, text, len, &p, &c), KILN_OK);
    CHECK(c.ids[72] == EOS && c.ids[73] == 0 && c.ids[76] == 0 && c.ids[77 + 11] == EOS && c.ids[77 + 12] == 0);
    kiln__clip_chunks_free(&c);
    free(head);
    free(tail);
    free(text);

    /* Errors from the parser come through. */
    p.pad_id = -1;
    CHECK_EQ_INT(kiln__clip_encode_weighted(t, "(a:1..2)", 8, &p, &c), KILN_ERR_INVALID_ARG);
    CHECK(c.ids == NULL && c.n_chunks == 0);
    kiln__clip_tok_free(t);
}

/* A1111 prompts with the real vocabulary: each fragment is tokenized on its
 * own, so "(red)dish" is red + dish. */
static void test_weighted_real_vocab(void) {
    kiln_clip_tok *t = real_tok();
    if (!t) SKIP_TEST("%s not found", MERGES_GZ);
    kiln_clip_weight_params p = kiln__clip_weight_default_params();
    kiln_clip_chunks c;
    int32_t red[4], dish[4];
    size_t nr, nd;
    REQUIRE(kiln__clip_encode(t, "red", 3, red, 4, &nr) == KILN_OK && nr == 1);
    REQUIRE(kiln__clip_encode(t, "dish", 4, dish, 4, &nd) == KILN_OK && nd == 1);
    CHECK_EQ_INT(kiln__clip_encode_weighted(t, "(red)dish", 9, &p, &c), KILN_OK);
    CHECK(c.ids[0] == 49406 && c.ids[1] == red[0] && c.ids[2] == dish[0] && c.ids[3] == 49407);
    CHECK(c.weights[1] == (float)1.1 && c.weights[2] == 1.0f);
    kiln__clip_chunks_free(&c);
    kiln__clip_tok_free(t);
}

int main(void) {
    RUN(test_shared_tokenizer_tests);
    RUN(test_cleanup_goldens);
    RUN(test_missing_vocab_says_clip_vocab);
    RUN(test_toy_vocabulary_layout_and_merges);
    RUN(test_malformed_merges);
    RUN(test_tokenizer_folder);
    RUN(test_padded_sequence);
    RUN(test_emphasis_parsing);
    RUN(test_weighted_chunks);
    RUN(test_weighted_real_vocab);
    return TEST_REPORT();
}
