/* src/llm/llm.c - the text-model handle: load (weights, architecture,
 * hyperparameters, tensors, KV cache, scratch, capabilities), free, and
 * the low-level evaluation of tokens at positions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/cpu.h"
#include "core/error.h"
#include "formats/json_util.h"
#include "formats/weights.h"
#include "kernels/flash_attention.h"
#include "llm/llm_internal.h"
#include "llm/llm_text.h"
#include "text/chat_template.h"
#include "text/vocab.h"

/* Prompt tokens per forward pass when the caller does not say. */
#define DEFAULT_BATCH 256
/* Most threads a model runs (far above any machine kiln targets). */
#define MAX_THREADS 512

kiln_llm_params kiln_llm_default_params(void) {
    return (kiln_llm_params){
        .n_threads = 0,
        .n_ctx = 0,
        .n_batch = 0,
        .kv_type = KILN_KV_F16,
        .vocab_only = false,
        .use_mmap = false,
        .progress = NULL,
        .progress_user = NULL,
        .exact_matmul = false,
        .f16_as_bf16 = false,
    };
}

/* ---- architecture ---- */

/* The architecture the file declares: GGUF general.architecture or the
 * folder's config.json model_type. */
static kiln_status find_arch(const struct kiln_weights *w, kiln_arch *out) {
    const struct kiln_gguf *g = kiln__weights_gguf(w);
    char name[64] = "";
    if (g) {
        const char *s;
        size_t len;
        if (!kiln__gguf_find_kv(g, "general.architecture") ||
            !kiln__gguf_get_str(g, "general.architecture", &s, &len))
            return kiln__fail(KILN_ERR_FORMAT, "gguf: missing general.architecture");
        snprintf(name, sizeof name, "%.*s", (int)(len < 63 ? len : 63), s);
        *out = kiln_arch_from_name(name);
    } else if (w->path.kind == KILN_MODEL_HF_LLM) {
        *out = w->path.arch;
        snprintf(name, sizeof name, "%s", w->path.model_type ? w->path.model_type : "(none)");
    } else {
        return kiln__fail(KILN_ERR_UNSUPPORTED, "%s is not a text model (expected a GGUF file or a "
                          "Hugging Face folder with config.json)", w->path.path);
    }
    if (*out == KILN_ARCH_UNKNOWN || kiln_arch_worker(*out) != KILN_WORKER_LLM)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "architecture '%s' is not a text model kiln runs "
                          "(llama, mistral, qwen2, phi2, phi3)", name);
    return KILN_OK;
}

/* ---- capabilities ---- */

/* Add an end-of-sequence id once; ids outside the vocabulary are ignored. */
static void add_eos(struct kiln_llm *m, int64_t id) {
    kiln_text_caps *c = &m->caps;
    if (id < 0 || (m->hp.n_vocab > 0 && id >= m->hp.n_vocab)) return;
    for (uint32_t i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] == id) return;
    if (c->n_eos < KILN_MAX_EOS_IDS) c->eos_ids[c->n_eos++] = (int32_t)id;
}

/* "eos_token_id": an integer or a list of integers (config.json and
 * generation_config.json). */
static void add_eos_json(struct kiln_llm *m, const json_t *obj) {
    const json_t *v = json_is_object(obj) ? json_object_get(obj, "eos_token_id") : NULL;
    if (json_is_integer(v)) add_eos(m, json_integer_value(v));
    if (json_is_array(v)) {
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e) if (json_is_integer(e)) add_eos(m, json_integer_value(e));
    }
}

/* A copy of a template string. */
static kiln_status set_template(struct kiln_llm *m, const char *s, size_t len) {
    m->chat_template = malloc(len + 1);
    if (!m->chat_template) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "out of memory for the chat template");
    memcpy(m->chat_template, s, len);
    m->chat_template[len] = '\0';
    m->caps.chat_template = m->chat_template;
    return KILN_OK;
}

/* tokenizer_config.json "chat_template" (a string, or the "default" entry
 * of a list). */
static kiln_status hf_template(struct kiln_llm *m, const char *path) {
    json_t *cfg = NULL;
    kiln_status st = kiln__llm_load_tokenizer_config(path, &cfg);
    if (st != KILN_OK) return st;
    const char *text = NULL;
    st = kiln__chat_template_from_config(cfg, &text);
    if (st == KILN_OK) st = set_template(m, text, strlen(text));
    else if (st == KILN_ERR_NOT_FOUND) st = KILN_OK; /* no template: a base model */
    json_decref(cfg);
    return st;
}

static kiln_status fill_caps(struct kiln_llm *m) {
    kiln_text_caps *c = &m->caps;
    memset(c, 0, sizeof *c);
    c->context_length = (uint32_t)m->hp.n_ctx_train;
    const struct kiln_gguf *g = kiln__weights_gguf(m->w);
    kiln_status st;
    if (g) {
        static const char *const keys[] = {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                                           "tokenizer.ggml.eom_token_id"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            int64_t id;
            if (kiln__gguf_find_kv(g, keys[i]) && kiln__gguf_get_i64(g, keys[i], &id)) add_eos(m, id);
        }
        const char *s;
        size_t len;
        if (kiln__gguf_find_kv(g, "tokenizer.chat_template") &&
            kiln__gguf_get_str(g, "tokenizer.chat_template", &s, &len) &&
            (st = set_template(m, s, len)) != KILN_OK)
            return st;
    } else {
        add_eos_json(m, m->w->path.config);
        if (m->w->path.generation_config_path) {
            json_t *gen = NULL;
            if ((st = kiln__json_load_file(m->w->path.generation_config_path, 0, &gen)) != KILN_OK)
                return st;
            add_eos_json(m, gen);
            json_decref(gen);
        }
        if (m->w->path.tokenizer_config_path &&
            (st = hf_template(m, m->w->path.tokenizer_config_path)) != KILN_OK)
            return st;
    }
    kiln__llm_text_caps(m);

    /* The type holding most matrix elements. */
    int64_t count[KILN_DTYPE_UNKNOWN + 1] = {0};
    for (size_t i = 0; i < m->w->n_tensors; i++)
        if (m->w->tensors[i].n_dims == 2) count[m->w->tensors[i].dtype] += m->w->tensors[i].n_elems;
    c->dtype = KILN_DTYPE_F32;
    for (int d = 0; d < KILN_DTYPE_UNKNOWN; d++)
        if (count[d] > count[c->dtype]) c->dtype = (kiln_dtype)d;
    c->quantized = kiln_dtype_block_elems(c->dtype) > 1;
    return KILN_OK;
}

/* ---- buffers ---- */

/* *p = a x b floats, aligned; KILN_ERR_OUT_OF_MEMORY (or too large). */
static kiln_status alloc_floats(float **p, size_t a, size_t b) {
    size_t n, bytes;
    if (kiln__mul_overflows(a, b, &n) || kiln__mul_overflows(n, sizeof(float), &bytes))
        return kiln__fail(KILN_ERR_TOO_LARGE, "scratch buffer of %zu x %zu values is too large", a, b);
    *p = kiln__aligned_alloc(bytes ? bytes : sizeof(float), KILN_ALIGN);
    if (!*p) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "out of memory for %zu MiB of scratch", bytes >> 20);
    return KILN_OK;
}

static kiln_status alloc_scratch(struct kiln_llm *m) {
    const struct kiln_llm_hparams *hp = &m->hp;
    struct kiln_llm_scratch *s = &m->s;
    size_t nb = (size_t)m->params.n_batch, nt = (size_t)kiln__pool_size(m->pool);
    size_t n_embd = (size_t)hp->n_embd, n_ff = (size_t)hp->n_ff;
    size_t n_q = (size_t)hp->n_head * (size_t)hp->head_dim;
    size_t n_kv = (size_t)hp->n_head_kv * (size_t)hp->head_dim;
    size_t widest = n_embd > n_q ? n_embd : n_q;
    if (n_ff > widest) widest = n_ff;
    kiln_status st;
    if ((st = alloc_floats(&s->x, nb, n_embd)) != KILN_OK || (st = alloc_floats(&s->h, nb, n_embd)) != KILN_OK ||
        (st = alloc_floats(&s->o, nb, n_embd)) != KILN_OK || (st = alloc_floats(&s->q, nb, n_q)) != KILN_OK ||
        (st = alloc_floats(&s->att, nb, n_q)) != KILN_OK || (st = alloc_floats(&s->k, nb, n_kv)) != KILN_OK ||
        (st = alloc_floats(&s->v, nb, n_kv)) != KILN_OK ||
        (st = alloc_floats(&s->qkv, nb, n_q + 2 * n_kv)) != KILN_OK ||
        (st = alloc_floats(&s->ff, nb, 2 * n_ff)) != KILN_OK || (st = alloc_floats(&s->ff2, nb, n_ff)) != KILN_OK ||
        (st = alloc_floats(&s->scores, nt, (size_t)m->params.n_ctx)) != KILN_OK ||
        (st = alloc_floats(&s->mm, nt, widest)) != KILN_OK ||
        (st = alloc_floats(&s->flash, nt, kiln__flash_scratch_floats(hp->head_dim))) != KILN_OK ||
        (st = alloc_floats(&m->logits, 1, (size_t)hp->n_vocab)) != KILN_OK)
        return st;
    m->cache_tokens = calloc((size_t)m->params.n_ctx, sizeof *m->cache_tokens);
    if (!m->cache_tokens) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "out of memory for the token history");
    return KILN_OK;
}

/* ---- load ---- */

/* Read one byte per page of every tensor, so the weights are resident
 * before the first token, reporting progress. */
static kiln_status prefault(struct kiln_llm *m) {
    uint64_t total = 0, done = 0, next_report = 0;
    for (size_t i = 0; i < m->w->n_tensors; i++) total += m->w->tensors[i].nbytes;
    long page = sysconf(_SC_PAGESIZE);
    size_t step = page > 0 ? (size_t)page : 4096;
    volatile unsigned char sink = 0;
    kiln_load_progress_fn cb = m->params.progress;
    if (cb && cb(0, total, m->params.progress_user)) goto cancelled;
    for (size_t i = 0; i < m->w->n_tensors; i++) {
        const struct kiln_tensor *t = &m->w->tensors[i];
        const unsigned char *p = t->data;
        for (size_t off = 0; off < t->nbytes; off += step) sink ^= p[off];
        done += t->nbytes;
        if (cb && (done >= next_report || done == total)) {
            if (cb(done, total, m->params.progress_user)) goto cancelled;
            next_report = done + total / 100;
        }
    }
    (void)sink;
    return KILN_OK;
cancelled:
    return kiln__fail(KILN_ERR_CANCELLED, "model load cancelled");
}

/* Check the parameters and fill in the thread count (0 = one per core):
 * what needs no hyperparameters, done before the weights are touched. */
static kiln_status check_params(kiln_llm_params *p) {
    if (p->n_threads < 0 || p->n_threads > MAX_THREADS || p->n_ctx < 0 || p->n_batch < 0)
        return kiln__fail(KILN_ERR_INVALID_ARG, "llm params: n_threads (0..%d), n_ctx and n_batch "
                          "must not be negative", MAX_THREADS);
    if (p->kv_type != KILN_KV_F16 && p->kv_type != KILN_KV_F32)
        return kiln__fail(KILN_ERR_INVALID_ARG, "llm params: unknown kv_type %d", (int)p->kv_type);
    if (p->n_threads == 0) p->n_threads = kiln__cpu_count();
    return KILN_OK;
}

/* The 0 = automatic context and batch of m->params, from the hyperparameters. */
static void resolve_sizes(struct kiln_llm *m) {
    kiln_llm_params *p = &m->params;
    if (p->n_ctx == 0)
        p->n_ctx = m->hp.n_ctx_train < KILN_LLM_DEFAULT_MAX_CTX ? m->hp.n_ctx_train : KILN_LLM_DEFAULT_MAX_CTX;
    if (p->n_batch == 0) p->n_batch = DEFAULT_BATCH;
    if (p->n_batch > p->n_ctx) p->n_batch = p->n_ctx;
}

static kiln_status load(struct kiln_llm *m, const char *path, kiln_llm_params params) {
    kiln_status st = kiln__weights_open(path, &m->w);
    if (st != KILN_OK) return st;
    m->from_gguf = kiln__weights_gguf(m->w) != NULL;
    kiln_arch arch = KILN_ARCH_UNKNOWN;
    st = find_arch(m->w, &arch);
    /* Tokenizing needs no architecture kiln runs (vocabulary files of
     * other families tokenize too). */
    if (st != KILN_OK && !params.vocab_only) return st;
    m->impl = kiln__llm_impl(arch);
    if ((st = kiln__llm_load_vocab(m)) != KILN_OK) return st;
    m->params = params;
    if (params.vocab_only) {
        if (!m->vocab && m->vocab_error[0])
            return kiln__fail(KILN_ERR_UNSUPPORTED, "%s: its tokenizer cannot be used: %s", path, m->vocab_error);
        if (!m->vocab)
            return kiln__fail(KILN_ERR_UNSUPPORTED, "%s has no tokenizer kiln can read", path);
        m->hp.n_vocab = m->vocab->n_tokens;
        return fill_caps(m);
    }
    if (m->w->n_tensors == 0)
        return kiln__fail(KILN_ERR_FORMAT, "%s has no weights (a vocabulary-only file? it can only "
                          "tokenize)", path);
    if (!m->impl->load || !m->impl->forward)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "architecture '%s' has no implementation", kiln_arch_name(arch));
    if ((st = check_params(&params)) != KILN_OK) return st;
    m->params = params;
    /* the pool first: the weight copy runs on it */
    m->pool = kiln__pool_create(params.n_threads);
    if (!m->pool) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "cannot start %d threads", (int)params.n_threads);
    if (!params.use_mmap &&
        (st = kiln__weights_to_memory(m->w, m->pool, params.progress, params.progress_user)) != KILN_OK) {
        if (st != KILN_ERR_OUT_OF_MEMORY) return st;
        kiln__clear_error(); /* no room for a copy: stream from the mapping */
    }
    if ((st = m->impl->load(m, m->w)) != KILN_OK) return st;
    if (m->vocab && m->vocab->n_tokens > m->hp.n_vocab)
        return kiln__fail(KILN_ERR_FORMAT, "inconsistent model: the tokenizer has %d tokens but the "
                          "embedding only %d rows", (int)m->vocab->n_tokens, (int)m->hp.n_vocab);
    resolve_sizes(m);
    /* Longrope: the long factors when the context goes past the pretrained
     * one (llama.cpp's rule; transformers switches by the current sequence
     * length instead, which gives the same result for any sequence when the
     * context fits the pretrained one). */
    if (m->hp.rope_scaling == KILN_ROPE_SCALING_LONGROPE)
        m->s.rope_ff = m->params.n_ctx > m->hp.rope_orig_ctx ? m->s.rope_ff_long : m->s.rope_ff_short;
    if ((st = kiln__llm_arrange_weights(m)) != KILN_OK) return st;
    if ((st = kiln__kv_init(&m->kv, m->params.kv_type, m->hp.n_layer, m->params.n_ctx,
                            m->hp.n_head_kv * m->hp.head_dim)) != KILN_OK ||
        (st = alloc_scratch(m)) != KILN_OK || (st = fill_caps(m)) != KILN_OK)
        return st;
    return m->w->mem_ ? KILN_OK : prefault(m); /* a copy is resident already */
}

kiln_status kiln_llm_load(const char *path, kiln_llm_params params, kiln_llm **out) {
    if (!out) return kiln__fail(KILN_ERR_INVALID_ARG, "kiln_llm_load: out is NULL");
    *out = NULL;
    if (!path) return kiln__fail(KILN_ERR_INVALID_ARG, "kiln_llm_load: path is NULL");
    kiln__clear_error();
    struct kiln_llm *m = calloc(1, sizeof *m);
    if (!m) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "out of memory for a model");
    kiln_status st = load(m, path, params);
    if (st != KILN_OK) {
        kiln_llm_free(m);
        return st;
    }
    *out = m;
    return KILN_OK;
}

void kiln_llm_free(kiln_llm *m) {
    if (!m) return;
    kiln__pool_free(m->pool);
    kiln__kv_free(&m->kv);
    struct kiln_llm_scratch *s = &m->s;
    float *bufs[] = {s->x, s->h, s->q, s->k, s->v, s->qkv, s->att, s->o, s->ff, s->ff2, s->scores, s->mm, s->flash,
                    m->logits};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) kiln__aligned_free(bufs[i]);
    for (size_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    free(m->cache_tokens);
    free(m->chat_template);
    kiln__llm_free_vocab(m);
    if (m->impl && m->impl->free_extra) m->impl->free_extra(m);
    kiln__weights_free(m->w);
    free(m);
}

/* ---- queries ---- */

kiln_status kiln_llm_caps(const kiln_llm *m, kiln_text_caps *caps) {
    if (!m || !caps) return kiln__fail(KILN_ERR_INVALID_ARG, "kiln_llm_caps: NULL argument");
    *caps = m->caps;
    return KILN_OK;
}

kiln_arch kiln_llm_arch(const kiln_llm *m) { return m && m->impl ? m->impl->arch : KILN_ARCH_UNKNOWN; }
int32_t kiln_llm_n_vocab(const kiln_llm *m) { return m ? m->hp.n_vocab : 0; }
int32_t kiln_llm_n_ctx(const kiln_llm *m) { return m ? m->params.n_ctx : 0; }
uint64_t kiln_llm_weight_bytes(const kiln_llm *m) { return m ? m->weight_bytes : 0; }
int32_t kiln_llm_n_past(const kiln_llm *m) { return m ? m->n_past : 0; }

void kiln_llm_kv_clear(kiln_llm *m) {
    if (m) m->n_past = 0;
}

/* ---- evaluation ---- */

kiln_status kiln_llm_eval(kiln_llm *m, const int32_t *tokens, int32_t n_tokens, int32_t pos,
                          kiln_logits_mode mode, float *logits) {
    if (!m || !tokens || n_tokens <= 0)
        return kiln__fail(KILN_ERR_INVALID_ARG, "kiln_llm_eval: no model or no tokens");
    if (m->params.vocab_only || !m->pool)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "kiln_llm_eval: the model was loaded for its vocabulary only");
    if (mode != KILN_LOGITS_NONE && mode != KILN_LOGITS_LAST && mode != KILN_LOGITS_ALL)
        return kiln__fail(KILN_ERR_INVALID_ARG, "kiln_llm_eval: unknown logits mode %d", (int)mode);
    if (mode != KILN_LOGITS_NONE && !logits)
        return kiln__fail(KILN_ERR_INVALID_ARG, "kiln_llm_eval: logits requested into NULL");
    if (pos < 0 || pos > m->n_past)
        return kiln__fail(KILN_ERR_INVALID_ARG, "kiln_llm_eval: position %d is past the %d cached tokens",
                          (int)pos, (int)m->n_past);
    if ((int64_t)pos + n_tokens > m->params.n_ctx)
        return kiln__fail(KILN_ERR_CONTEXT_FULL, "context full: %d tokens at position %d need %lld "
                          "positions, the context holds %d (raise n_ctx / -c)", (int)n_tokens, (int)pos,
                          (long long)pos + n_tokens, (int)m->params.n_ctx);
    for (int32_t i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= m->hp.n_vocab)
            return kiln__fail(KILN_ERR_INVALID_ARG, "kiln_llm_eval: token %d (index %d) is outside the "
                              "vocabulary of %d", (int)tokens[i], (int)i, (int)m->hp.n_vocab);
    m->n_past = pos;
    m->logits_all = mode == KILN_LOGITS_ALL;
    for (int32_t done = 0; done < n_tokens;) {
        int32_t n = n_tokens - done < m->params.n_batch ? n_tokens - done : m->params.n_batch;
        float *out = NULL;
        if (mode == KILN_LOGITS_ALL) out = logits + (size_t)done * (size_t)m->hp.n_vocab;
        else if (mode == KILN_LOGITS_LAST && done + n == n_tokens) out = logits;
        kiln_status st = m->impl->forward(m, tokens + done, n, pos + done, out);
        if (st != KILN_OK) return st;
        memcpy(m->cache_tokens + pos + done, tokens + done, (size_t)n * sizeof *tokens);
        m->n_past = pos + done + n;
        done += n;
    }
    return KILN_OK;
}
