/* src/text/vocab_gguf.c - a tokenizer vocabulary from GGUF metadata (see
 * vocab_gguf.h). Key names and defaults follow llama.cpp (llama-vocab.cpp,
 * llama_vocab::impl::load), which wrote the files. */
#include "text/vocab_gguf.h"

#include <stdint.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"

#define KEY(name) "tokenizer.ggml." name

/* The GGUF getters leave the message; pass their failure on. */
static kiln_status getter_failed(void) { return KILN_ERR_FORMAT; }

/* An optional array key with n elements of the kind the caller reads, or
 * NULL when absent. */
static kiln_status opt_array(const struct kiln_gguf *g, const char *key, uint64_t n,
                             const struct kiln_gguf_arr **out) {
    *out = NULL;
    if (!kiln__gguf_find_kv(g, key)) return KILN_OK;
    const struct kiln_gguf_arr *a = kiln__gguf_get_arr(g, key);
    if (!a) return getter_failed();
    if (a->count != n)
        return kiln__fail(KILN_ERR_FORMAT, "tokenizer: %s has %llu entries for %llu tokens", key,
                          (unsigned long long)a->count, (unsigned long long)n);
    *out = a;
    return KILN_OK;
}

/* A special token id: the key's value when present and in range, else `def`.
 * An id outside the vocabulary is ignored with a warning, as llama.cpp does. */
static kiln_status read_id(const struct kiln_gguf *g, const char *key, int32_t n_tokens, int32_t def,
                           int32_t *out) {
    *out = def < n_tokens ? def : -1;
    if (!kiln__gguf_find_kv(g, key)) return KILN_OK;
    int64_t id;
    if (!kiln__gguf_get_i64(g, key, &id)) return getter_failed();
    if (id < 0 || id >= n_tokens) {
        KILN_LOG_WARN("tokenizer: %s = %lld is not a token id (%d tokens); ignored", key, (long long)id,
                      n_tokens);
        return KILN_OK;
    }
    *out = (int32_t)id;
    return KILN_OK;
}

/* An optional flag. */
static kiln_status read_flag(const struct kiln_gguf *g, const char *key, bool *out) {
    if (!kiln__gguf_find_kv(g, key)) return KILN_OK;
    return kiln__gguf_get_bool(g, key, out) ? KILN_OK : getter_failed();
}

/* tokenizer.ggml.model and .pre. */
static kiln_status read_kind(const struct kiln_gguf *g, kiln_vocab_model *model, kiln_vocab_pre *pre) {
    const char *s;
    size_t n;
    if (!kiln__gguf_find_kv(g, KEY("model")))
        return kiln__fail(KILN_ERR_FORMAT, "tokenizer: no %s in the GGUF metadata", KEY("model"));
    if (!kiln__gguf_get_str(g, KEY("model"), &s, &n)) return getter_failed();
    if (n == 5 && memcmp(s, "llama", 5) == 0) {
        *model = KILN_VOCAB_SPM;
        *pre = KILN_PRE_DEFAULT; /* SentencePiece has no pre-tokenizer, whatever .pre says */
        return KILN_OK;
    }
    if (!(n == 4 && memcmp(s, "gpt2", 4) == 0))
        return kiln__fail(KILN_ERR_UNSUPPORTED, "tokenizer: %s '%.*s' is not supported (llama, gpt2 are)",
                          KEY("model"), (int)(n > 64 ? 64 : n), s);
    *model = KILN_VOCAB_BPE;
    s = "default";
    n = 7;
    if (kiln__gguf_find_kv(g, KEY("pre")) && !kiln__gguf_get_str(g, KEY("pre"), &s, &n)) return getter_failed();
    if (!kiln__vocab_pre_from_name(s, n, pre))
        return kiln__fail(KILN_ERR_UNSUPPORTED,
                          "tokenizer: pre-tokenizer '%.*s' is not supported (gpt-2, phi-2, llama-bpe, "
                          "llama3, qwen2, deepseek-llm are)",
                          (int)(n > 64 ? 64 : n), s);
    if (*pre == KILN_PRE_DEFAULT) {
        /* Files converted before llama.cpp named pre-tokenizers: GPT-2's
         * regex is the closest there is. */
        KILN_LOG_WARN("tokenizer: byte-level BPE without a named pre-tokenizer; using gpt-2's");
        *pre = KILN_PRE_GPT2;
    }
    return KILN_OK;
}

/* Tokens, scores and types. */
static kiln_status read_tokens(const struct kiln_gguf *g, kiln_vocab *v) {
    const struct kiln_gguf_arr *tokens = kiln__gguf_get_arr(g, KEY("tokens")), *scores, *types;
    uint64_t n = (uint64_t)v->n_tokens;
    kiln_status st = opt_array(g, KEY("scores"), n, &scores);
    if (st == KILN_OK) st = opt_array(g, KEY("token_type"), n, &types);
    for (uint64_t i = 0; i < n && st == KILN_OK; i++) {
        const char *s;
        size_t len;
        float score = 0.0f;
        int64_t type = KILN_TOKEN_NORMAL;
        if (!kiln__gguf_arr_str(tokens, i, &s, &len))
            return kiln__fail(KILN_ERR_FORMAT, "tokenizer: %s[%llu] is not a string", KEY("tokens"),
                              (unsigned long long)i);
        if (scores && !kiln__gguf_arr_f32(scores, i, &score))
            return kiln__fail(KILN_ERR_FORMAT, "tokenizer: %s[%llu] is not a number", KEY("scores"),
                              (unsigned long long)i);
        if (types && !kiln__gguf_arr_i64(types, i, &type))
            return kiln__fail(KILN_ERR_FORMAT, "tokenizer: %s[%llu] is not an integer", KEY("token_type"),
                              (unsigned long long)i);
        if (type < KILN_TOKEN_UNDEFINED || type > KILN_TOKEN_BYTE)
            return kiln__fail(KILN_ERR_FORMAT, "tokenizer: %s[%llu] = %lld is not a token type",
                              KEY("token_type"), (unsigned long long)i, (long long)type);
        st = kiln__vocab_set_token(v, (int32_t)i, s, len, score, (kiln_token_type)type);
    }
    return st;
}

/* BPE merges, in rank order. */
static kiln_status read_merges(const struct kiln_gguf *g, kiln_vocab *v) {
    if (!kiln__gguf_find_kv(g, KEY("merges")))
        return kiln__fail(KILN_ERR_FORMAT, "tokenizer: byte-level BPE without %s", KEY("merges"));
    const struct kiln_gguf_arr *m = kiln__gguf_get_arr(g, KEY("merges"));
    if (!m) return getter_failed();
    kiln_status st = KILN_OK;
    for (uint64_t i = 0; i < m->count && st == KILN_OK; i++) {
        const char *s;
        size_t len;
        if (!kiln__gguf_arr_str(m, i, &s, &len))
            return kiln__fail(KILN_ERR_FORMAT, "tokenizer: %s[%llu] is not a string", KEY("merges"),
                              (unsigned long long)i);
        st = kiln__vocab_add_merge(v, s, len);
    }
    return st;
}

kiln_status kiln__vocab_from_gguf(const struct kiln_gguf *g, kiln_vocab **out) {
    *out = NULL;
    kiln_vocab_model model;
    kiln_vocab_pre pre;
    kiln_status st = read_kind(g, &model, &pre);
    if (st != KILN_OK) return st;
    if (!kiln__gguf_find_kv(g, KEY("tokens")))
        return kiln__fail(KILN_ERR_FORMAT, "tokenizer: no %s in the GGUF metadata", KEY("tokens"));
    const struct kiln_gguf_arr *tokens = kiln__gguf_get_arr(g, KEY("tokens"));
    if (!tokens) return getter_failed();
    if (tokens->count == 0 || tokens->count > INT32_MAX)
        return kiln__fail(KILN_ERR_FORMAT, "tokenizer: %s has %llu entries", KEY("tokens"),
                          (unsigned long long)tokens->count);
    kiln_vocab *v;
    if ((st = kiln__vocab_new(model, pre, (int32_t)tokens->count, &v)) != KILN_OK) return st;
    st = read_tokens(g, v);
    if (st == KILN_OK && model == KILN_VOCAB_BPE) st = read_merges(g, v);

    /* llama.cpp's defaults: SentencePiece <unk> 0, <s> 1, </s> 2, a BOS and
     * a space prefix; byte-level BPE none of these, except a BOS for Llama 3. */
    bool spm = model == KILN_VOCAB_SPM;
    int32_t n = v->n_tokens;
    v->add_bos = spm || pre == KILN_PRE_LLAMA3;
    v->add_eos = false;
    v->add_space_prefix = spm;
    if (st == KILN_OK) st = read_id(g, KEY("bos_token_id"), n, spm ? 1 : -1, &v->bos_id);
    if (st == KILN_OK) st = read_id(g, KEY("eos_token_id"), n, spm ? 2 : -1, &v->eos_id);
    if (st == KILN_OK) st = read_id(g, KEY("unknown_token_id"), n, spm ? 0 : -1, &v->unk_id);
    if (st == KILN_OK) st = read_id(g, KEY("padding_token_id"), n, -1, &v->pad_id);
    if (st == KILN_OK) st = read_id(g, KEY("eot_token_id"), n, -1, &v->eot_id);
    if (st == KILN_OK) st = read_flag(g, KEY("add_bos_token"), &v->add_bos);
    if (st == KILN_OK) st = read_flag(g, KEY("add_eos_token"), &v->add_eos);
    if (st == KILN_OK) st = read_flag(g, KEY("add_space_prefix"), &v->add_space_prefix);
    if (st == KILN_OK) st = kiln__vocab_finalize(v);
    if (st != KILN_OK) {
        kiln__vocab_free(v);
        return st;
    }
    *out = v;
    return KILN_OK;
}

kiln_status kiln__vocab_load_gguf(const char *path, kiln_vocab **out) {
    *out = NULL;
    struct kiln_gguf *g;
    kiln_status st = kiln__gguf_open(path, &g);
    if (st != KILN_OK) return st;
    st = kiln__vocab_from_gguf(g, out);
    kiln__gguf_free(g);
    return st;
}
