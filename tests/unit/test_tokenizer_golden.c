/* tests/unit/test_tokenizer_golden.c - the tokenizers against goldens made
 * by the reference implementations (tools/make_tokenizer_goldens.py):
 *   - bpe.json: a small byte-level BPE vocabulary with Hugging Face
 *     tokenizers' ids for each pre-tokenizer (gpt-2, llama3, qwen2,
 *     deepseek-llm) and the words each pre-tokenizer cuts;
 *   - spm.json: a small SentencePiece BPE model (Llama's settings, byte
 *     fallback) with SentencePiece's ids.
 * Every case must match exactly and detokenize back to its (normalized) text. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/status.h"
#include "test.h"
#include "text/pretok.h"
#include "text/tokenizer.h"
#include "text/vocab.h"

#define GOLDEN_DIR KILN_SOURCE_DIR "/tests/data/tokenizer/"

static json_t *load_json(const char *name) {
    json_error_t err;
    json_t *j = json_load_file(name, 0, &err);
    if (!j) fprintf(stderr, "  %s:%d: %s\n", name, err.line, err.text);
    return j;
}

/* A vocabulary from a golden's "tokens", "types" and optional "scores" and
 * "merges"; NULL on failure (reported). */
static kiln_vocab *vocab_from_json(const json_t *j, kiln_vocab_model model, kiln_vocab_pre pre) {
    const json_t *tokens = json_object_get(j, "tokens"), *types = json_object_get(j, "types");
    const json_t *scores = json_object_get(j, "scores"), *merges = json_object_get(j, "merges");
    kiln_vocab *v;
    if (kiln__vocab_new(model, pre, (int32_t)json_array_size(tokens), &v) != KILN_OK) return NULL;
    kiln_status st = KILN_OK;
    for (size_t i = 0; i < json_array_size(tokens) && st == KILN_OK; i++) {
        const json_t *t = json_array_get(tokens, i);
        float score = scores ? (float)json_number_value(json_array_get(scores, i)) : 0.0f;
        st = kiln__vocab_set_token(v, (int32_t)i, json_string_value(t), json_string_length(t), score,
                                   (kiln_token_type)json_integer_value(json_array_get(types, i)));
    }
    for (size_t i = 0; i < json_array_size(merges) && st == KILN_OK; i++) {
        const json_t *m = json_array_get(merges, i);
        st = kiln__vocab_add_merge(v, json_string_value(m), json_string_length(m));
    }
    if (model == KILN_VOCAB_SPM) {
        v->unk_id = (int32_t)json_integer_value(json_object_get(j, "unk_id"));
        v->bos_id = (int32_t)json_integer_value(json_object_get(j, "bos_id"));
        v->eos_id = (int32_t)json_integer_value(json_object_get(j, "eos_id"));
        v->add_bos = true;
        v->add_space_prefix = true;
    }
    if (st == KILN_OK) st = kiln__vocab_finalize(v);
    if (st != KILN_OK) {
        fprintf(stderr, "  vocabulary: %s\n", kiln_last_error());
        kiln__vocab_free(v);
        return NULL;
    }
    return v;
}

/* Whether the ids equal the JSON array `want`. */
static bool ids_equal(const int32_t *ids, size_t n, const json_t *want) {
    if (n != json_array_size(want)) return false;
    for (size_t i = 0; i < n; i++)
        if (ids[i] != json_integer_value(json_array_get(want, i))) return false;
    return true;
}

static void show(const char *what, const char *text, const int32_t *ids, size_t n, const json_t *want) {
    fprintf(stderr, "  %s \"%s\"\n    want:", what, text);
    for (size_t i = 0; i < json_array_size(want); i++)
        fprintf(stderr, " %lld", (long long)json_integer_value(json_array_get(want, i)));
    fprintf(stderr, "\n    got: ");
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fputc('\n', stderr);
}

/* Tokenize every case of `cases` and compare; then detokenize. */
static void check_cases(const char *name, const kiln_vocab *v, const json_t *cases, bool parse_special,
                        unsigned detok_flags) {
    size_t exact = 0, round = 0, n_cases = json_array_size(cases);
    for (size_t i = 0; i < n_cases; i++) {
        const json_t *c = json_array_get(cases, i);
        const json_t *jt = json_object_get(c, "text"), *jn = json_object_get(c, "norm");
        const char *text = json_string_value(jt);
        size_t len = json_string_length(jt);
        int32_t ids[512];
        size_t n;
        kiln_status st = kiln__tokenize(v, text, len, false, parse_special, ids, 512, &n);
        CHECK_EQ_INT(st, KILN_OK);
        if (st != KILN_OK) continue;
        if (ids_equal(ids, n, json_object_get(c, "ids")))
            exact++;
        else
            show(name, text, ids, n, json_object_get(c, "ids"));
        /* Back to the text the model saw (after normalization). */
        const char *want = jn ? json_string_value(jn) : text;
        size_t want_len = jn ? json_string_length(jn) : len, got_len;
        char out[2048];
        st = kiln__detokenize(v, ids, n, detok_flags, out, sizeof out, &got_len);
        if (st == KILN_OK && got_len == want_len && memcmp(out, want, got_len) == 0)
            round++;
        else
            fprintf(stderr, "  %s: \"%s\" detokenizes to \"%.*s\"\n", name, text, (int)got_len, out);
    }
    fprintf(stderr, "  %s: %zu/%zu cases exact, %zu round trips\n", name, exact, n_cases, round);
    CHECK(n_cases > 0);
    CHECK_EQ_INT(exact, n_cases);
    CHECK_EQ_INT(round, n_cases);
}

/* The pre-tokenizer's words against the golden ones. */
static void check_words(const char *name, kiln_vocab_pre pre, const json_t *cases) {
    kiln_pretok *p;
    REQUIRE(kiln__pretok_new(pre, &p) == KILN_OK);
    kiln_spans words = {0}, tmp = {0};
    size_t same = 0, checked = 0;
    for (size_t i = 0; i < json_array_size(cases); i++) {
        const json_t *c = json_array_get(cases, i), *jn = json_object_get(c, "norm");
        const json_t *want = json_object_get(c, "words");
        if (!jn) continue; /* a case with added tokens: no pre-tokenizer golden */
        checked++;
        REQUIRE(kiln__pretok_split(p, json_string_value(jn), json_string_length(jn), &words, &tmp) == KILN_OK);
        bool ok = words.n == json_array_size(want);
        for (size_t k = 0; ok && k < words.n; k++) {
            const json_t *w = json_array_get(want, k);
            ok = (json_int_t)words.v[k].off == json_integer_value(json_array_get(w, 0)) &&
                 (json_int_t)(words.v[k].off + words.v[k].len) == json_integer_value(json_array_get(w, 1));
        }
        if (ok)
            same++;
        else
            fprintf(stderr, "  %s: words of \"%s\" differ (%zu words, want %zu)\n", name,
                    json_string_value(jn), words.n, json_array_size(want));
    }
    fprintf(stderr, "  %s: %zu/%zu word splits exact\n", name, same, checked);
    CHECK(checked > 0);
    CHECK_EQ_INT(same, checked);
    kiln__spans_free(&words);
    kiln__spans_free(&tmp);
    kiln__pretok_free(p);
}

static void test_bpe_goldens(void) {
    json_t *j = load_json(GOLDEN_DIR "bpe.json");
    REQUIRE(j != NULL);
    const json_t *pres = json_object_get(j, "pretokenizers");
    const char *name;
    const json_t *cases;
    size_t n_pre = 0;
    json_object_foreach((json_t *)pres, name, cases) {
        kiln_vocab_pre pre;
        CHECK(kiln__vocab_pre_from_name(name, strlen(name), &pre));
        if (!kiln__vocab_pre_from_name(name, strlen(name), &pre)) continue;
        n_pre++;
        kiln_vocab *v = vocab_from_json(j, KILN_VOCAB_BPE, pre);
        CHECK(v != NULL);
        if (!v) continue;
        /* Hugging Face always splits out added tokens, special ones too. */
        check_cases(name, v, cases, true, KILN_DETOK_SPECIAL);
        check_words(name, pre, cases);
        kiln__vocab_free(v);
    }
    CHECK_EQ_INT(n_pre, 4);
    json_decref(j);
}

static void test_spm_goldens(void) {
    json_t *j = load_json(GOLDEN_DIR "spm.json");
    REQUIRE(j != NULL);
    kiln_vocab *v = vocab_from_json(j, KILN_VOCAB_SPM, KILN_PRE_DEFAULT);
    CHECK(v != NULL);
    /* SentencePiece treats "<s>" in text as text, as parse_special=false does. */
    if (v) check_cases("spm", v, json_object_get(j, "cases"), false, KILN_DETOK_STRIP_SPACE);
    kiln__vocab_free(v);
    json_decref(j);
}

int main(void) {
    RUN(test_bpe_goldens);
    RUN(test_spm_goldens);
    return TEST_REPORT();
}
