/* tests/unit/test_tokenizer_hf_malformed.c - tokenizer.json files that kiln
 * must refuse: malformed ones (KILN_ERR_FORMAT: not JSON, no model, bad
 * merges, ids out of range or given twice, ...) and components kiln cannot
 * reproduce exactly (KILN_ERR_UNSUPPORTED, with a message naming the
 * component). Each case is a small valid file with one thing changed; the
 * valid files themselves load, and a few choices of the loader (config
 * overrides, holes in the ids, both merge forms) are checked on them. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/status.h"
#include "test.h"
#include "text/tokenizer.h"
#include "text/vocab.h"
#include "text/vocab_hf.h"

/* A SentencePiece-style file as transformers writes Llama's (legacy). */
static const char SPM_DOC[] =
    "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,"
    "\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true,\"normalized\":false},"
    "{\"id\":1,\"content\":\"<s>\",\"special\":true,\"normalized\":false},"
    "{\"id\":2,\"content\":\"</s>\",\"special\":true,\"normalized\":false}],"
    "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\xE2\x96\x81\"},"
    "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xE2\x96\x81\"}]},"
    "\"pre_tokenizer\":null,"
    "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\","
    "\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[],"
    "\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]}}},"
    "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":"
    "\"\xE2\x96\x81\"},\"content\":\" \"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \","
    "\"start\":1,\"stop\":0}]},"
    "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\",\"continuing_subword_prefix\":null,"
    "\"end_of_word_suffix\":null,\"fuse_unk\":false,\"byte_fallback\":false,\"ignore_merges\":false,"
    "\"vocab\":{\"<unk>\":0,\"<s>\":1,\"</s>\":2,\"\xE2\x96\x81\":3,\"a\":4,\"b\":5,\"\xE2\x96\x81"
    "a\":6,\"ab\":7},"
    "\"merges\":[[\"\xE2\x96\x81\",\"a\"],\"a b\"]}}";

/* A byte-level file as GPT-2's. */
static const char BPE_DOC[] =
    "{\"added_tokens\":[{\"id\":4,\"content\":\"<|endoftext|>\",\"special\":true,\"normalized\":true}],"
    "\"normalizer\":null,"
    "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,"
    "\"use_regex\":true},"
    "\"post_processor\":{\"type\":\"ByteLevel\",\"trim_offsets\":false},"
    "\"decoder\":{\"type\":\"ByteLevel\"},"
    "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2,\"\xC4\xA0\":3},\"merges\":[\"a b\"]}}";

/* Load `doc` with the value at `path` ("model/merges/0": object keys and
 * array indices; the index one past an array's end appends) replaced by the
 * JSON `value` (NULL: removed), and with the
 * tokenizer_config.json `config` (NULL: none). Returns the status; the
 * vocabulary, if any, goes to *out (or is freed when out is NULL). */
static kiln_status load_mut(const char *doc, const char *path, const char *value, const char *config,
                            kiln_vocab **out) {
    json_error_t err;
    json_t *root = json_loads(doc, JSON_REJECT_DUPLICATES, &err);
    json_t *cfg = config ? json_loads(config, 0, &err) : NULL;
    if (!root || (config && !cfg)) {
        fprintf(stderr, "  test document: %s\n", err.text);
        json_decref(root);
        return KILN_ERR_INTERNAL;
    }
    if (path) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", path);
        json_t *parent = root;
        char *seg = buf, *slash;
        while ((slash = strchr(seg, '/'))) {
            *slash = '\0';
            parent = json_is_array(parent) ? json_array_get(parent, (size_t)atoi(seg)) : json_object_get(parent, seg);
            seg = slash + 1;
        }
        json_t *v = value ? json_loads(value, JSON_DECODE_ANY, &err) : NULL;
        if (json_is_array(parent)) {
            size_t i = (size_t)atoi(seg);
            if (v && i == json_array_size(parent)) json_array_append_new(parent, v); /* one past the end */
            else if (v) json_array_set_new(parent, i, v);
            else json_array_remove(parent, (size_t)atoi(seg));
        } else {
            if (v) json_object_set_new(parent, seg, v);
            else json_object_del(parent, seg);
        }
    }
    kiln_vocab *v = NULL;
    kiln_status st = kiln__vocab_from_hf_json(root, cfg, &v);
    if (out) *out = v;
    else kiln__vocab_free(v);
    json_decref(root);
    json_decref(cfg);
    return st;
}

/* Expect status `want` and a message that contains `needle`. */
#define EXPECT(doc, path, value, want, needle)                                        \
    do {                                                                              \
        kiln_status st_ = load_mut(doc, path, value, NULL, NULL);                     \
        CHECK_EQ_INT(st_, want);                                                      \
        if (st_ != KILN_OK) CHECK_CONTAINS(kiln_last_error(), needle);                \
    } while (0)

/* Tokenize `text` with specials and compare with the ids given. */
static void check_tokens(const kiln_vocab *v, const char *text, const int32_t *want, size_t n_want) {
    int32_t ids[32];
    size_t n;
    CHECK_EQ_INT(kiln__tokenize(v, text, strlen(text), true, true, ids, 32, &n), KILN_OK);
    CHECK_EQ_INT(n, n_want);
    for (size_t i = 0; i < n && i < n_want; i++) CHECK_EQ_INT(ids[i], want[i]);
}

static void test_valid_documents_load(void) {
    kiln_vocab *v;
    REQUIRE(load_mut(SPM_DOC, NULL, NULL, NULL, &v) == KILN_OK);
    /* "ab a" -> "▁ab▁a": "▁ a" (rank 0) twice, leftmost first, then nothing:
     * "a b" is gone with the a. */
    static const int32_t ids[] = {1, 6, 5, 6};
    check_tokens(v, "ab a", ids, 4);
    CHECK_EQ_INT(v->type[0], KILN_TOKEN_UNKNOWN);
    CHECK_EQ_INT(v->type[1], KILN_TOKEN_CONTROL);
    CHECK_EQ_INT(v->type[4], KILN_TOKEN_NORMAL);
    kiln__vocab_free(v);
    REQUIRE(load_mut(BPE_DOC, NULL, NULL, NULL, &v) == KILN_OK);
    static const int32_t bids[] = {2, 3, 0, 4};
    check_tokens(v, "ab a<|endoftext|>", bids, 4);
    CHECK_EQ_INT(v->type[4], KILN_TOKEN_CONTROL);
    kiln__vocab_free(v);
}

/* Replace(" ", "▁") without Prepend: no prefix, and then no Strip in the
 * decoder either. */
static void test_replace_without_prefix(void) {
    json_error_t err;
    json_t *doc = json_loads(SPM_DOC, 0, &err);
    REQUIRE(doc != NULL);
    json_array_remove(json_object_get(json_object_get(doc, "normalizer"), "normalizers"), 0);
    json_t *decoders = json_object_get(json_object_get(doc, "decoder"), "decoders");
    json_array_remove(decoders, 2);
    kiln_vocab *v;
    REQUIRE(kiln__vocab_from_hf_json(doc, NULL, &v) == KILN_OK);
    CHECK(!v->add_space_prefix);
    static const int32_t ids[] = {1, 7, 6}; /* "ab▁a": "▁ a" first, then "a b" */
    check_tokens(v, "ab a", ids, 3);
    kiln__vocab_free(v);
    /* With the Strip back, the decoder would drop a space never added. */
    json_array_append_new(decoders, json_loads("{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}",
                                               0, &err));
    CHECK_EQ_INT(kiln__vocab_from_hf_json(doc, NULL, &v), KILN_ERR_UNSUPPORTED);
    CHECK_CONTAINS(kiln_last_error(), "Strip differs");
    json_decref(doc);
}

static void test_not_json(void) {
    const char *path = KILN_TEST_TMP "/hf-not-json.json";
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    fputs("{\"model\": {\"type\": \"BPE\",", f);
    fclose(f);
    kiln_vocab *v;
    CHECK_EQ_INT(kiln__vocab_load_hf(path, NULL, &v), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "not valid JSON");
    CHECK(v == NULL);
    CHECK_EQ_INT(kiln__vocab_load_hf(KILN_TEST_TMP "/hf-absent.json", NULL, &v), KILN_ERR_NOT_FOUND);
    /* A config that is not an object. */
    json_t *doc = json_loads(SPM_DOC, 0, NULL), *cfg = json_array();
    REQUIRE(doc && cfg);
    CHECK_EQ_INT(kiln__vocab_from_hf_json(doc, cfg, &v), KILN_ERR_FORMAT);
    CHECK_EQ_INT(kiln__vocab_from_hf_json(cfg, NULL, &v), KILN_ERR_FORMAT);
    json_decref(doc);
    json_decref(cfg);
}

static void test_malformed(void) {
    EXPECT(SPM_DOC, "model", NULL, KILN_ERR_FORMAT, "no model");
    EXPECT(SPM_DOC, "model", "[]", KILN_ERR_FORMAT, "no model");
    EXPECT(SPM_DOC, "model/vocab", "[]", KILN_ERR_FORMAT, "model.vocab");
    EXPECT(SPM_DOC, "model/merges", NULL, KILN_ERR_FORMAT, "model.merges");
    EXPECT(SPM_DOC, "model/vocab", "{}", KILN_ERR_FORMAT, "not in the vocabulary");
    EXPECT(SPM_DOC, "added_tokens", "{}", KILN_ERR_FORMAT, "added_tokens");
    /* merges */
    EXPECT(SPM_DOC, "model/merges/1", "\"a zz\"", KILN_ERR_FORMAT, "'zz' is not in the vocabulary");
    EXPECT(SPM_DOC, "model/merges/1", "\"ab\"", KILN_ERR_FORMAT, "not two tokens and one space");
    EXPECT(SPM_DOC, "model/merges/1", "\"a  b\"", KILN_ERR_FORMAT, "not two tokens and one space");
    EXPECT(SPM_DOC, "model/merges/1", "[\"a\"]", KILN_ERR_FORMAT, "neither");
    EXPECT(SPM_DOC, "model/merges/1", "7", KILN_ERR_FORMAT, "neither");
    EXPECT(SPM_DOC, "model/merges/1", "[\"b\", \"a\"]", KILN_ERR_FORMAT, "makes 'ba'");
    EXPECT(SPM_DOC, "model/merges/1", "[\"\xE2\x96\x81\", \"a\"]", KILN_ERR_FORMAT, "repeats");
    /* ids */
    EXPECT(SPM_DOC, "model/vocab/b", "-1", KILN_ERR_FORMAT, "has id -1");
    EXPECT(SPM_DOC, "model/vocab/b", "99999999", KILN_ERR_FORMAT, "has id 99999999");
    EXPECT(SPM_DOC, "model/vocab/b", "\"5\"", KILN_ERR_FORMAT, "non-integer");
    EXPECT(SPM_DOC, "model/vocab/b", "4", KILN_ERR_FORMAT, "id 4 is both");
    EXPECT(SPM_DOC, "model/vocab/b", "5000", KILN_ERR_FORMAT, "for only");
    EXPECT(SPM_DOC, "added_tokens/1/id", "4", KILN_ERR_FORMAT, "id 4 is both 'a' and added token '<s>'");
    EXPECT(SPM_DOC, "added_tokens/1/id", "9", KILN_ERR_FORMAT, "has id 9, the vocabulary 1");
    EXPECT(SPM_DOC, "added_tokens/3", "{\"id\":8,\"content\":\"<x>\",\"normalized\":false}", KILN_OK, "");
    EXPECT(SPM_DOC, "added_tokens/3", "{\"id\":8,\"content\":\"<s>\"}", KILN_ERR_FORMAT, "has id 8");
    EXPECT(BPE_DOC, "added_tokens/1", "{\"id\":5,\"content\":\"<|endoftext|>\",\"special\":true}", KILN_ERR_FORMAT,
           "twice");
    EXPECT(SPM_DOC, "added_tokens/3", "{\"id\":8}", KILN_ERR_FORMAT, "no content");
    EXPECT(SPM_DOC, "added_tokens/3", "{\"id\":8,\"content\":\"\"}", KILN_ERR_FORMAT, "empty");
    EXPECT(SPM_DOC, "added_tokens/3", "{\"id\":8,\"content\":\"<x>\",\"special\":1}", KILN_ERR_FORMAT, "special");
    EXPECT(SPM_DOC, "model/unk_token", "\"<nope>\"", KILN_ERR_FORMAT, "unk_token '<nope>'");
    EXPECT(SPM_DOC, "model/unk_token", "3", KILN_ERR_FORMAT, "unk_token");
    EXPECT(SPM_DOC, "model/byte_fallback", "\"yes\"", KILN_ERR_FORMAT, "byte_fallback");
    /* post-processor */
    EXPECT(SPM_DOC, "post_processor/special_tokens/<s>/ids", "[77]", KILN_ERR_FORMAT, "out of range");
    EXPECT(SPM_DOC, "post_processor/special_tokens/<s>", NULL, KILN_ERR_FORMAT, "without ids");
    EXPECT(SPM_DOC, "post_processor/single", NULL, KILN_ERR_FORMAT, "without single");
    EXPECT(SPM_DOC, "post_processor/single/0", "{\"Other\":{}}", KILN_ERR_FORMAT, "neither");
}

static void test_unsupported(void) {
    EXPECT(SPM_DOC, "model/type", "\"WordPiece\"", KILN_ERR_UNSUPPORTED, "model type 'WordPiece'");
    EXPECT(SPM_DOC, "model/type", "\"Unigram\"", KILN_ERR_UNSUPPORTED, "model type 'Unigram'");
    EXPECT(SPM_DOC, "model/dropout", "0.1", KILN_ERR_UNSUPPORTED, "dropout");
    EXPECT(SPM_DOC, "model/continuing_subword_prefix", "\"##\"", KILN_ERR_UNSUPPORTED, "continuing_subword_prefix");
    EXPECT(SPM_DOC, "model/end_of_word_suffix", "\"</w>\"", KILN_ERR_UNSUPPORTED, "end_of_word_suffix");
    EXPECT(SPM_DOC, "model/ignore_merges", "true", KILN_ERR_UNSUPPORTED, "ignore_merges");
    EXPECT(SPM_DOC, "model/fuse_unk", "true", KILN_ERR_UNSUPPORTED, "fuse_unk");
    EXPECT(SPM_DOC, "truncation", "{\"max_length\":512}", KILN_ERR_UNSUPPORTED, "truncation");
    EXPECT(SPM_DOC, "padding", "{\"strategy\":{\"Fixed\":8}}", KILN_ERR_UNSUPPORTED, "padding");
    EXPECT(SPM_DOC, "padding", "{\"strategy\":\"BatchLongest\"}", KILN_OK, "");
    /* normalizer */
    EXPECT(SPM_DOC, "normalizer/normalizers/1", "{\"type\":\"Lowercase\"}", KILN_ERR_UNSUPPORTED,
           "normalizer 'Lowercase'");
    EXPECT(SPM_DOC, "normalizer", "{\"type\":\"NFKC\"}", KILN_ERR_UNSUPPORTED, "normalizer 'NFKC'");
    EXPECT(SPM_DOC, "normalizer/normalizers/0/prepend", "\"_\"", KILN_ERR_UNSUPPORTED, "normalizer 'Prepend'");
    EXPECT(SPM_DOC, "normalizer/normalizers/1/content", "\"_\"", KILN_ERR_UNSUPPORTED, "normalizer 'Replace'");
    EXPECT(SPM_DOC, "normalizer/normalizers/0", "{\"type\":\"NFC\"}", KILN_ERR_UNSUPPORTED, "NFC without ByteLevel");
    EXPECT(SPM_DOC, "normalizer", NULL, KILN_ERR_UNSUPPORTED, "neither ByteLevel nor");
    EXPECT(BPE_DOC, "normalizer", "{\"type\":\"NFC\"}", KILN_ERR_UNSUPPORTED, "normalizer NFC with the gpt-2");
    /* pre-tokenizer */
    EXPECT(SPM_DOC, "pre_tokenizer", "{\"type\":\"Whitespace\"}", KILN_ERR_UNSUPPORTED, "pre-tokenizer 'Whitespace'");
    EXPECT(SPM_DOC, "pre_tokenizer", "{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\"}",
           KILN_ERR_UNSUPPORTED, "Prepend/Replace with Metaspace");
    EXPECT(BPE_DOC, "pre_tokenizer/add_prefix_space", "true", KILN_ERR_UNSUPPORTED, "add_prefix_space");
    /* Metaspace: the scheme ("always" when absent) and an older file's
     * add_prefix_space must agree; other schemes and replacements. */
    static const char meta_decoder[] = "{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\"}";
    kiln_vocab *v;
    json_error_t err;
    json_t *doc = json_loads(SPM_DOC, 0, &err);
    REQUIRE(doc != NULL);
    json_object_set_new(doc, "normalizer", json_null());
    json_object_set_new(doc, "decoder", json_loads(meta_decoder, 0, &err));
    static const struct {
        const char *pre;
        kiln_status want;
        const char *needle;
    } metas[] = {
        {"{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\"}", KILN_OK, ""},
        {"{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\",\"add_prefix_space\":true}", KILN_OK, ""},
        {"{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\",\"add_prefix_space\":false}", KILN_ERR_FORMAT,
         "does not match"},
        {"{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\",\"prepend_scheme\":\"sometimes\"}",
         KILN_ERR_UNSUPPORTED, "prepend_scheme"},
        {"{\"type\":\"Metaspace\",\"replacement\":\"_\"}", KILN_ERR_UNSUPPORTED, "replacement"},
        {"{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\",\"prepend_scheme\":\"never\"}",
         KILN_ERR_UNSUPPORTED, "Strip differs"}, /* the decoder strips a prefix never added */
    };
    for (size_t i = 0; i < sizeof metas / sizeof metas[0]; i++) {
        json_object_set_new(doc, "pre_tokenizer", json_loads(metas[i].pre, 0, &err));
        kiln_status st = kiln__vocab_from_hf_json(doc, NULL, &v);
        CHECK_EQ_INT(st, metas[i].want);
        if (st == KILN_OK) {
            CHECK(v->add_space_prefix && v->spm_split && v->spm_prefix == KILN_SPM_PREFIX_METASPACE);
            kiln__vocab_free(v);
        } else {
            CHECK_CONTAINS(kiln_last_error(), metas[i].needle);
        }
    }
    json_decref(doc);
    EXPECT(BPE_DOC, "pre_tokenizer/use_regex", "false", KILN_ERR_UNSUPPORTED, "ByteLevel without a regex");
    EXPECT(BPE_DOC, "pre_tokenizer",
           "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+\"},"
           "\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
           "\"use_regex\":false}]}",
           KILN_ERR_UNSUPPORTED, "not those of Llama 3, Qwen2 or DeepSeek LLM (the first: '\\s+')");
    EXPECT(BPE_DOC, "pre_tokenizer",
           "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+\"},"
           "\"behavior\":\"Removed\",\"invert\":false},{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
           "\"use_regex\":false}]}",
           KILN_ERR_UNSUPPORTED, "behavior Isolated");
    EXPECT(BPE_DOC, "pre_tokenizer",
           "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"ByteLevel\",\"add_prefix_space\":false},"
           "{\"type\":\"Digits\"}]}",
           KILN_ERR_UNSUPPORTED, "'Digits' after ByteLevel");
    EXPECT(BPE_DOC, "pre_tokenizer", NULL, KILN_ERR_UNSUPPORTED, "neither ByteLevel nor");
    EXPECT(BPE_DOC, "model/ignore_merges", "true", KILN_ERR_UNSUPPORTED, "ignore_merges set with the gpt-2");
    EXPECT(BPE_DOC, "model/byte_fallback", "true", KILN_ERR_UNSUPPORTED, "byte_fallback in a byte-level");
    /* decoder */
    EXPECT(SPM_DOC, "decoder", NULL, KILN_ERR_UNSUPPORTED, "no decoder");
    EXPECT(SPM_DOC, "decoder", "{\"type\":\"WordPiece\"}", KILN_ERR_UNSUPPORTED, "decoder 'WordPiece'");
    EXPECT(SPM_DOC, "decoder", "{\"type\":\"ByteLevel\"}", KILN_ERR_UNSUPPORTED, "not a '▁' decoder");
    EXPECT(SPM_DOC, "decoder/decoders/2/start", "2", KILN_ERR_UNSUPPORTED, "Strip other than one leading space");
    EXPECT(SPM_DOC, "decoder/decoders/2", NULL, KILN_ERR_UNSUPPORTED, "Strip differs");
    EXPECT(SPM_DOC, "decoder/decoders/0", "{\"type\":\"Fuse\"}", KILN_ERR_UNSUPPORTED, "out of order");
    EXPECT(SPM_DOC, "decoder/decoders/1", "{\"type\":\"ByteFallback\"}", KILN_ERR_UNSUPPORTED, "without Replace and Fuse");
    EXPECT(SPM_DOC, "decoder/decoders/1", "{\"type\":\"CTC\"}", KILN_ERR_UNSUPPORTED, "'CTC' is not supported");
    EXPECT(BPE_DOC, "decoder", "{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\"}", KILN_ERR_UNSUPPORTED,
           "without the ByteLevel decoder");
    /* added tokens */
    EXPECT(SPM_DOC, "added_tokens/1/lstrip", "true", KILN_ERR_UNSUPPORTED, "with lstrip");
    EXPECT(SPM_DOC, "added_tokens/1/single_word", "true", KILN_ERR_UNSUPPORTED, "with single_word");
    EXPECT(SPM_DOC, "added_tokens/1/normalized", "true", KILN_ERR_UNSUPPORTED, "normalized by Prepend");
    EXPECT(SPM_DOC, "added_tokens/3", "{\"id\":8,\"content\":\"<x>\"}", KILN_ERR_UNSUPPORTED,
           "normalized by Prepend"); /* normalized is true by default for non-special tokens */
    /* "<|endoftext|>" (normalized) against tokens matched in the raw text
     * first: where one could cut the other, Hugging Face and kiln differ. */
    EXPECT(BPE_DOC, "added_tokens/1", "{\"id\":5,\"content\":\"<|end\",\"normalized\":false}",
           KILN_ERR_UNSUPPORTED, "added tokens '<|endoftext|>' (normalized) and '<|end' overlap");
    EXPECT(BPE_DOC, "added_tokens/1", "{\"id\":5,\"content\":\"|>x\",\"normalized\":false}", KILN_ERR_UNSUPPORTED,
           "overlap");
    EXPECT(BPE_DOC, "added_tokens/1", "{\"id\":5,\"content\":\"x<|endoftext|>\",\"normalized\":false}", KILN_OK,
           "");
    EXPECT(BPE_DOC, "added_tokens/1", "{\"id\":5,\"content\":\"<|endoftext|>x\",\"normalized\":false}", KILN_OK,
           "");
    EXPECT(BPE_DOC, "added_tokens/1", "{\"id\":5,\"content\":\"|>x\",\"normalized\":true}", KILN_OK, "");
    /* post-processor and merges */
    EXPECT(SPM_DOC, "post_processor", "{\"type\":\"BertProcessing\"}", KILN_ERR_UNSUPPORTED, "'BertProcessing'");
    EXPECT(SPM_DOC, "post_processor/single/1", "{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}}",
           KILN_ERR_UNSUPPORTED, "more than one token before");
    EXPECT(SPM_DOC, "post_processor/special_tokens/<s>/ids", "[1, 1]", KILN_ERR_UNSUPPORTED, "of 2 ids");
    EXPECT(SPM_DOC, "model/merges/1", "[\"<unk>\", \"a\"]", KILN_ERR_FORMAT, "makes");
}

/* Merges of the unknown token or of byte-fallback tokens would apply in
 * Hugging Face (which makes those symbols before merging) and not in kiln. */
static void test_merges_of_fallback_tokens(void) {
    kiln_status st = load_mut(SPM_DOC, "model/vocab/<unk>a", "8", NULL, NULL);
    CHECK_EQ_INT(st, KILN_OK);
    json_error_t err;
    json_t *doc = json_loads(SPM_DOC, 0, &err);
    REQUIRE(doc != NULL);
    json_t *vocab = json_object_get(json_object_get(doc, "model"), "vocab");
    json_object_set_new(vocab, "<unk>a", json_integer(8));
    json_array_append_new(json_object_get(json_object_get(doc, "model"), "merges"), json_string("<unk> a"));
    kiln_vocab *v;
    CHECK_EQ_INT(kiln__vocab_from_hf_json(doc, NULL, &v), KILN_ERR_UNSUPPORTED);
    CHECK_CONTAINS(kiln_last_error(), "unknown or a byte-fallback");
    json_decref(doc);
}

/* tokenizer_config.json: names as strings or objects, and add_bos_token /
 * add_eos_token over the post-processor. */
static void test_config(void) {
    kiln_vocab *v;
    REQUIRE(load_mut(SPM_DOC, NULL, NULL,
                     "{\"bos_token\":{\"content\":\"<s>\"},\"eos_token\":\"</s>\",\"add_bos_token\":false,"
                     "\"add_eos_token\":true,\"pad_token\":null}",
                     &v) == KILN_OK);
    CHECK_EQ_INT(v->bos_id, 1);
    CHECK_EQ_INT(v->eos_id, 2);
    CHECK_EQ_INT(v->pad_id, -1);
    CHECK(!v->add_bos);
    CHECK(v->add_eos);
    static const int32_t ids[] = {6, 2};
    check_tokens(v, "a", ids, 2);
    kiln__vocab_free(v);
    /* A bos_token other than the one the template adds. */
    CHECK_EQ_INT(load_mut(SPM_DOC, NULL, NULL, "{\"bos_token\":\"</s>\"}", NULL), KILN_ERR_UNSUPPORTED);
    CHECK_CONTAINS(kiln_last_error(), "but bos_token is 2");
    /* Malformed names; a name that is no token is ignored. */
    CHECK_EQ_INT(load_mut(SPM_DOC, NULL, NULL, "{\"eos_token\":7}", NULL), KILN_ERR_FORMAT);
    CHECK_CONTAINS(kiln_last_error(), "eos_token");
    CHECK_EQ_INT(load_mut(SPM_DOC, NULL, NULL, "{\"eos_token\":{\"text\":\"x\"}}", NULL), KILN_ERR_FORMAT);
    REQUIRE(load_mut(SPM_DOC, NULL, NULL, "{\"eos_token\":\"<eos>\"}", &v) == KILN_OK);
    CHECK_EQ_INT(v->eos_id, -1);
    kiln__vocab_free(v);
    /* Adding a token that does not exist. */
    CHECK_EQ_INT(load_mut(SPM_DOC, NULL, NULL, "{\"add_eos_token\":true}", NULL), KILN_ERR_UNSUPPORTED);
    CHECK_CONTAINS(kiln_last_error(), "add_eos_token without");
    CHECK_EQ_INT(load_mut(SPM_DOC, NULL, NULL, "{\"add_bos_token\":\"yes\"}", NULL), KILN_ERR_FORMAT);
}

/* Ids no token has are unused tokens; both merge forms read alike. */
static void test_holes_and_merge_forms(void) {
    kiln_vocab *v;
    REQUIRE(load_mut(SPM_DOC, "model/vocab/ab", "20", NULL, &v) == KILN_OK);
    CHECK_EQ_INT(v->n_tokens, 21);
    CHECK_EQ_INT(v->type[10], KILN_TOKEN_UNUSED);
    static const int32_t ids[] = {1, 3, 5, 20}; /* "▁bab": "a b" is the only merge */
    check_tokens(v, "bab", ids, 4);
    kiln__vocab_free(v);
    REQUIRE(load_mut(SPM_DOC, "model/merges/0", "\"\xE2\x96\x81 a\"", NULL, &v) == KILN_OK);
    static const int32_t ids2[] = {1, 6, 5}; /* "▁a" then "b" */
    check_tokens(v, "ab", ids2, 3);
    kiln__vocab_free(v);
    /* A merge of tokens with a space cannot be written the old way. */
    json_error_t err;
    json_t *doc = json_loads(BPE_DOC, 0, &err);
    REQUIRE(doc != NULL);
    json_t *model = json_object_get(doc, "model");
    json_object_set_new(model, "vocab", json_loads("{\"a \":0,\"b\":1,\"a b\":2}", 0, &err));
    json_object_set_new(model, "merges", json_loads("[[\"a \",\"b\"]]", 0, &err));
    json_object_del(doc, "added_tokens");
    CHECK_EQ_INT(kiln__vocab_from_hf_json(doc, NULL, &v), KILN_ERR_UNSUPPORTED);
    CHECK_CONTAINS(kiln_last_error(), "with a space");
    json_decref(doc);
}

int main(void) {
    RUN(test_valid_documents_load);
    RUN(test_replace_without_prefix);
    RUN(test_not_json);
    RUN(test_malformed);
    RUN(test_unsupported);
    RUN(test_merges_of_fallback_tokens);
    RUN(test_config);
    RUN(test_holes_and_merge_forms);
    return TEST_REPORT();
}
