/* src/llm/llm_text.c - tokenizing and detokenizing through the model
 * handle, and which tokens end a generation. */
#include <string.h>

#include "core/error.h"
#include "formats/weights.h"
#include "llm/llm_internal.h"
#include "llm/llm_text.h"
#include "text/tokenizer.h"
#include "text/vocab_gguf.h"

kiln_status kiln__llm_load_vocab(struct kiln_llm *m) {
    const struct kiln_gguf *g = kiln__weights_gguf(m->w);
    if (!g || !kiln__gguf_find_kv(g, "tokenizer.ggml.model")) return KILN_OK;
    return kiln__vocab_from_gguf(g, &m->vocab);
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

kiln_status kiln_llm_tokenize(const kiln_llm *m, const char *text, size_t len, bool add_special,
                              bool parse_special, int32_t *out, size_t cap, size_t *n_out) {
    if (!m || (!text && len) || !n_out || (!out && cap))
        return kiln__fail(KILN_ERR_INVALID_ARG, "kiln_llm_tokenize: NULL argument");
    if (!m->vocab)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "this model has no tokenizer kiln can run "
                          "(GGUF tokenizer.ggml.* metadata is needed)");
    return kiln__tokenize(m->vocab, text ? text : "", len, add_special, parse_special, out, cap, n_out);
}

kiln_status kiln_llm_detokenize(const kiln_llm *m, const int32_t *tokens, size_t n, bool special,
                                char *out, size_t cap, size_t *n_out) {
    if (!m || (!tokens && n) || !n_out || (!out && cap))
        return kiln__fail(KILN_ERR_INVALID_ARG, "kiln_llm_detokenize: NULL argument");
    if (!m->vocab)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "this model has no tokenizer kiln can run");
    return kiln__detokenize(m->vocab, tokens, n, special ? KILN_DETOK_SPECIAL : 0u, out, cap, n_out);
}

int32_t kiln_llm_token_bos(const kiln_llm *m) { return m && m->vocab ? m->vocab->bos_id : -1; }
int32_t kiln_llm_token_eos(const kiln_llm *m) { return m && m->vocab ? m->vocab->eos_id : -1; }
