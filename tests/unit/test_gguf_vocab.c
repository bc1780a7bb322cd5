/* tests/unit/test_gguf_vocab.c - the reader on real tokenizer-only GGUF files
 * from llama.cpp (../shared/data/vocab; skipped when absent): the tokenizer
 * model, the vocabulary sizes documented in shared/data/README.md, merges for
 * byte-level BPE, and O(1) access to well-known tokens. */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "formats/gguf.h"
#include "kiln/kiln.h"
#include "test.h"

#define VOCAB_DIR KILN_SHARED_DATA_DIR "/vocab"

/* Token `id` of the vocabulary equals `want`. */
static void check_token(const struct kiln_gguf_arr *toks, uint64_t id, const char *want) {
    const char *s = NULL;
    size_t len = 0;
    CHECK(kiln__gguf_arr_str(toks, id, &s, &len));
    CHECK(s && len == strlen(want) && memcmp(s, want, len) == 0);
}

/* Open one vocab file and check what every tokenizer file has. Returns the
 * parsed file (caller frees) or NULL when skipped or failed. */
static struct kiln_gguf *open_vocab(const char *file, const char *model, uint64_t n_vocab) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", VOCAB_DIR, file);
    if (access(path, R_OK) != 0) return NULL;
    struct kiln_gguf *g = NULL;
    clock_t t0 = clock();
    kiln_status st = kiln__gguf_open(path, &g);
    double ms = 1000.0 * (double)(clock() - t0) / CLOCKS_PER_SEC;
    if (st != KILN_OK) fprintf(stderr, "  %s\n", kiln_last_error());
    CHECK_EQ_INT(st, KILN_OK);
    if (!g) return NULL;
    fprintf(stderr, "  %s: %llu pairs parsed in %.1f ms\n", file, (unsigned long long)g->n_kv, ms);
    CHECK_EQ_INT(g->version, 3);
    CHECK_EQ_INT(g->n_tensors, 0);
    const char *s;
    size_t len;
    CHECK(kiln__gguf_get_str(g, "tokenizer.ggml.model", &s, &len) && len == strlen(model) &&
          memcmp(s, model, len) == 0);
    const struct kiln_gguf_arr *toks = kiln__gguf_get_arr(g, "tokenizer.ggml.tokens");
    CHECK(toks && toks->type == KILN_GGUF_STRING && toks->count == n_vocab);
    const struct kiln_gguf_arr *types = kiln__gguf_get_arr(g, "tokenizer.ggml.token_type");
    CHECK(types && types->count == n_vocab);
    return g;
}

static void test_llama_spm_vocab(void) {
    struct kiln_gguf *g = open_vocab("ggml-vocab-llama-spm.gguf", "llama", 32000);
    if (!g) {
        if (test_failures_ == 0) SKIP_TEST("%s/ggml-vocab-llama-spm.gguf not found", VOCAB_DIR);
        return;
    }
    const struct kiln_gguf_arr *toks = kiln__gguf_get_arr(g, "tokenizer.ggml.tokens");
    check_token(toks, 0, "<unk>");
    check_token(toks, 1, "<s>");
    check_token(toks, 2, "</s>");
    check_token(toks, 3, "<0x00>");
    const struct kiln_gguf_arr *scores = kiln__gguf_get_arr(g, "tokenizer.ggml.scores");
    CHECK(scores && scores->type == KILN_GGUF_F32 && scores->count == 32000);
    uint32_t bos = 0;
    CHECK(kiln__gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &bos) && bos == 1);
    kiln__gguf_free(g);
}

/* Byte-level BPE: merges are "left right" strings. */
static void check_merges(const struct kiln_gguf *g) {
    const struct kiln_gguf_arr *merges = kiln__gguf_get_arr(g, "tokenizer.ggml.merges");
    REQUIRE(merges != NULL);
    CHECK(merges->type == KILN_GGUF_STRING && merges->count > 1000);
    int bad = 0;
    for (uint64_t i = 0; i < merges->count; i++) {
        const char *s;
        size_t len;
        if (!kiln__gguf_arr_str(merges, i, &s, &len) || len < 3 || !memchr(s + 1, ' ', len - 2)) bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_gpt2_vocab(void) {
    struct kiln_gguf *g = open_vocab("ggml-vocab-gpt-2.gguf", "gpt2", 50257);
    if (!g) {
        if (test_failures_ == 0) SKIP_TEST("%s/ggml-vocab-gpt-2.gguf not found", VOCAB_DIR);
        return;
    }
    const struct kiln_gguf_arr *toks = kiln__gguf_get_arr(g, "tokenizer.ggml.tokens");
    check_token(toks, 0, "!");
    check_token(toks, 50256, "<|endoftext|>");
    check_merges(g);
    kiln__gguf_free(g);
}

static void test_deepseek_vocab(void) {
    struct kiln_gguf *g = open_vocab("ggml-vocab-deepseek-llm.gguf", "gpt2", 102400);
    if (!g) {
        if (test_failures_ == 0) SKIP_TEST("%s/ggml-vocab-deepseek-llm.gguf not found", VOCAB_DIR);
        return;
    }
    check_merges(g);
    const char *pre;
    size_t len;
    CHECK(kiln__gguf_get_str(g, "tokenizer.ggml.pre", &pre, &len) && len == 12 &&
          memcmp(pre, "deepseek-llm", 12) == 0);
    kiln__gguf_free(g);
}

int main(void) {
    RUN(test_llama_spm_vocab);
    RUN(test_gpt2_vocab);
    RUN(test_deepseek_vocab);
    return TEST_REPORT();
}
