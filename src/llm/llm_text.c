/* src/llm/llm_text.c - tokenizing and detokenizing through the model
 * handle, and which tokens end a generation. */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "formats/json_util.h"
#include "formats/weights.h"
#include "llm/llm_internal.h"
#include "llm/llm_text.h"
#include "text/tokenizer.h"
#include "text/vocab_gguf.h"
#include "text/vocab_hf.h"

kiln_status kiln__llm_load_vocab(struct kiln_llm *m) {
    const struct kiln_gguf *g = kiln__weights_gguf(m->w);
    if (g) {
        if (!kiln__gguf_find_kv(g, "tokenizer.ggml.model")) return KILN_OK;
        return kiln__vocab_from_gguf(g, &m->vocab);
    }
    /* Hugging Face folder: tokenizer.json (+ tokenizer_config.json) */
    if (m->w->path.kind != KILN_MODEL_HF_LLM || !m->w->path.tokenizer_path) return KILN_OK;
    json_t *tok = NULL, *config = NULL;
    kiln_status st = kiln__json_load_file(m->w->path.tokenizer_path, 0, &tok);
    if (st == KILN_OK && m->w->path.tokenizer_config_path)
        st = kiln__llm_load_tokenizer_config(m->w->path.tokenizer_config_path, &config);
    if (st == KILN_OK) st = kiln__vocab_from_hf_json(tok, config, &m->vocab);
    json_decref(tok);
    json_decref(config);
    if (st == KILN_ERR_UNSUPPORTED) {
        /* A tokenizer kiln cannot reproduce exactly: the model still runs
         * from token ids; tokenizing repeats why it cannot. */
        snprintf(m->vocab_error, sizeof m->vocab_error, "%s", kiln_last_error());
        KILN_LOG_WARN("%s: %s; only token ids can be used", m->w->path.tokenizer_path, m->vocab_error);
        return KILN_OK;
    }
    return st;
}

kiln_status kiln__llm_load_tokenizer_config(const char *path, json_t **out) {
    json_error_t err;
    *out = json_load_file(path, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &err);
    if (!*out)
        return kiln__fail(KILN_ERR_FORMAT, "%s: not valid JSON: %s (line %d, column %d)", path, err.text,
                          err.line, err.column);
    return KILN_OK;
}

void kiln__llm_free_vocab(struct kiln_llm *m) {
    kiln__vocab_free(m->vocab);
    m->vocab = NULL;
}

/* Control tokens that end a turn in the chat formats kiln knows, matched by
 * text (llama.cpp does the same: some files name only one end token). */
static const char *const end_of_turn_texts[] = {
    "<|eot_id|>",    /* Llama 3 */
    "<|eom_id|>",    /* Llama 3.1 tool calls */
    "<|im_end|>",    /* ChatML: Qwen2 */
    "<|end|>",       /* Phi-3 */
    "<|endoftext|>", /* GPT-2 style: Phi-2, Qwen2, Phi-3 */
};

void kiln__llm_text_caps(struct kiln_llm *m) {
    kiln_text_caps *c = &m->caps;
    const kiln_vocab *v = m->vocab;
    if (!v) return;
    int32_t ids[2 + sizeof end_of_turn_texts / sizeof end_of_turn_texts[0]];
    size_t n = 0;
    ids[n++] = v->eos_id;
    ids[n++] = v->eot_id;
    for (size_t i = 0; i < sizeof end_of_turn_texts / sizeof end_of_turn_texts[0]; i++) {
        int32_t id = kiln__vocab_find(v, end_of_turn_texts[i], strlen(end_of_turn_texts[i]));
        if (id >= 0 && (v->type[id] == KILN_TOKEN_CONTROL || v->type[id] == KILN_TOKEN_USER_DEFINED))
            ids[n++] = id;
    }
    int32_t limit = m->hp.n_vocab > 0 ? m->hp.n_vocab : v->n_tokens;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= limit) continue;
        bool seen = false;
        for (uint32_t j = 0; j < c->n_eos; j++) seen = seen || c->eos_ids[j] == id;
        if (!seen && c->n_eos < KILN_MAX_EOS_IDS) c->eos_ids[c->n_eos++] = id;
    }
}

/* Why a model without a vocabulary cannot tokenize. */
static kiln_status no_tokenizer(const kiln_llm *m) {
    if (m->vocab_error[0])
        return kiln__fail(KILN_ERR_UNSUPPORTED, "this model's tokenizer cannot be used: %s", m->vocab_error);
    return kiln__fail(KILN_ERR_UNSUPPORTED, "this model has no tokenizer kiln can run "
                      "(GGUF tokenizer.ggml.* metadata or a tokenizer.json is needed)");
}

kiln_status kiln_llm_tokenize(const kiln_llm *m, const char *text, size_t len, bool add_special,
                              bool parse_special, int32_t *out, size_t cap, size_t *n_out) {
    if (!m || (!text && len) || !n_out || (!out && cap))
        return kiln__fail(KILN_ERR_INVALID_ARG, "kiln_llm_tokenize: NULL argument");
    if (!m->vocab) return no_tokenizer(m);
    return kiln__tokenize(m->vocab, text ? text : "", len, add_special, parse_special, out, cap, n_out);
}

kiln_status kiln_llm_detokenize(const kiln_llm *m, const int32_t *tokens, size_t n, bool special,
                                char *out, size_t cap, size_t *n_out) {
    if (!m || (!tokens && n) || !n_out || (!out && cap))
        return kiln__fail(KILN_ERR_INVALID_ARG, "kiln_llm_detokenize: NULL argument");
    if (!m->vocab) return no_tokenizer(m);
    return kiln__detokenize(m->vocab, tokens, n, special ? KILN_DETOK_SPECIAL : 0u, out, cap, n_out);
}

int32_t kiln_llm_token_bos(const kiln_llm *m) { return m && m->vocab ? m->vocab->bos_id : -1; }
int32_t kiln_llm_token_eos(const kiln_llm *m) { return m && m->vocab ? m->vocab->eos_id : -1; }
