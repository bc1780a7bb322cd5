/* src/llm/hparams.c - a decoder's hyperparameters from GGUF metadata
 * ("<general.architecture>.<key>", as llama.cpp's converter writes them) or
 * from a Hugging Face config.json, with the family's defaults where a key is
 * absent, then checked for consistency. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "formats/json_util.h"
#include "formats/weights.h"
#include "llm/llm_internal.h"

/* Largest width, head count, layer count or context kiln accepts: far above
 * any real model, low enough that products of two never overflow. */
#define HP_MAX (1 << 24)

/* ---- GGUF ---- */

/* "<arch>.<suffix>" into buf. */
static const char *gguf_key(char *buf, size_t size, const char *arch, const char *suffix) {
    snprintf(buf, size, "%s.%s", arch, suffix);
    return buf;
}

/* An integer key; *found false (and *out untouched) when absent. A key of
 * the wrong type is an error naming it. */
static kiln_status gguf_int(const struct kiln_gguf *g, const char *arch, const char *suffix,
                            bool required, int32_t *out) {
    char key[160];
    gguf_key(key, sizeof key, arch, suffix);
    if (!kiln__gguf_find_kv(g, key)) {
        if (required) return kiln__fail(KILN_ERR_FORMAT, "gguf: missing hyperparameter '%s'", key);
        return KILN_OK;
    }
    int64_t v;
    if (!kiln__gguf_get_i64(g, key, &v)) return KILN_ERR_FORMAT; /* message set by the getter */
    if (v < 0 || v > HP_MAX)
        return kiln__fail(KILN_ERR_FORMAT, "gguf: hyperparameter '%s' = %lld is out of range", key,
                          (long long)v);
    *out = (int32_t)v;
    return KILN_OK;
}

/* A float key, left untouched when absent. */
static kiln_status gguf_float(const struct kiln_gguf *g, const char *arch, const char *suffix,
                              float *out) {
    char key[160];
    gguf_key(key, sizeof key, arch, suffix);
    if (!kiln__gguf_find_kv(g, key)) return KILN_OK;
    if (!kiln__gguf_get_f32(g, key, out)) return KILN_ERR_FORMAT;
    return KILN_OK;
}

static kiln_status read_gguf(struct kiln_llm *m, const struct kiln_gguf *g) {
    struct kiln_llm_hparams *hp = &m->hp;
    const char *s;
    size_t len;
    if (!kiln__gguf_get_str(g, "general.architecture", &s, &len))
        return kiln__fail(KILN_ERR_FORMAT, "gguf: missing general.architecture");
    char arch[64];
    snprintf(arch, sizeof arch, "%.*s", (int)(len < 63 ? len : 63), s);

    kiln_status st;
    hp->head_dim = 0;
    hp->n_rot = -1;
    hp->n_head_kv = -1;
    if ((st = gguf_int(g, arch, "context_length", false, &hp->n_ctx_train)) != KILN_OK ||
        (st = gguf_int(g, arch, "embedding_length", true, &hp->n_embd)) != KILN_OK ||
        (st = gguf_int(g, arch, "block_count", true, &hp->n_layer)) != KILN_OK ||
        (st = gguf_int(g, arch, "feed_forward_length", true, &hp->n_ff)) != KILN_OK ||
        (st = gguf_int(g, arch, "attention.head_count", true, &hp->n_head)) != KILN_OK ||
        (st = gguf_int(g, arch, "attention.head_count_kv", false, &hp->n_head_kv)) != KILN_OK ||
        (st = gguf_int(g, arch, "attention.key_length", false, &hp->head_dim)) != KILN_OK ||
        (st = gguf_int(g, arch, "rope.dimension_count", false, &hp->n_rot)) != KILN_OK ||
        (st = gguf_int(g, arch, "attention.sliding_window", false, &hp->sliding_window)) != KILN_OK ||
        (st = gguf_float(g, arch, m->impl->quirks.norm_eps_key, &hp->norm_eps)) != KILN_OK ||
        (st = gguf_float(g, arch, "rope.freq_base", &hp->rope_theta)) != KILN_OK)
        return st;
    if (hp->n_head_kv < 0) hp->n_head_kv = hp->n_head;

    /* The value length must equal the key length (kiln keeps one head size). */
    int32_t value_len = hp->head_dim;
    if ((st = gguf_int(g, arch, "attention.value_length", false, &value_len)) != KILN_OK) return st;
    if (value_len != hp->head_dim)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "gguf: %s.attention.value_length %d differs from "
                          "key_length %d", arch, (int)value_len, (int)hp->head_dim);

    char key[160];
    gguf_key(key, sizeof key, arch, "rope.scaling.type");
    if (kiln__gguf_find_kv(g, key)) {
        if (!kiln__gguf_get_str(g, key, &s, &len)) return KILN_ERR_FORMAT;
        if (len == 4 && memcmp(s, "none", 4) == 0) {
            hp->rope_scaling = KILN_ROPE_SCALING_NONE;
        } else if (len == 6 && memcmp(s, "linear", 6) == 0) {
            hp->rope_scaling = KILN_ROPE_SCALING_LINEAR;
            hp->rope_factor = 1.0f;
            if ((st = gguf_float(g, arch, "rope.scaling.factor", &hp->rope_factor)) != KILN_OK) return st;
        } else {
            return kiln__fail(KILN_ERR_UNSUPPORTED, "gguf: rope scaling type '%.*s' is not supported",
                              (int)len, s);
        }
    }
    /* Llama 3.1 writes its per-frequency factors as the rope_freqs tensor,
     * Phi-3's long-context models their two longrope lists (tensors.c reads
     * them); the longrope numbers that go with them are keys. 0 = absent. */
    hp->rope_attn_factor = 0.0f;
    if ((st = gguf_float(g, arch, "rope.scaling.attn_factor", &hp->rope_attn_factor)) != KILN_OK ||
        (st = gguf_int(g, arch, "rope.scaling.original_context_length", false, &hp->rope_orig_ctx)) != KILN_OK)
        return st;
    return KILN_OK;
}

/* ---- config.json ---- */

/* Re-raise a json_util error ("json: 'key' is a ...") as a config.json one.
 * The message is copied first: kiln__fail writes the buffer it came from. */
static kiln_status config_error(kiln_status st, const char *where) {
    char msg[KILN_ERROR_MAX];
    const char *e = kiln_last_error();
    snprintf(msg, sizeof msg, "%s", strncmp(e, "json: ", 6) == 0 ? e + 6 : e);
    return kiln__fail(st, "config.json: %s%s", where, msg);
}

/* An integer config key with a default (-1 = required). */
static kiln_status cfg_int(const json_t *c, const char *key, int64_t def, int32_t *out) {
    int64_t v;
    kiln_status st = kiln__json_get_int(c, key, def, &v);
    if (st != KILN_OK) return config_error(st, "");
    if (v == -1 && def == -1)
        return kiln__fail(KILN_ERR_FORMAT, "config.json: missing hyperparameter '%s'", key);
    if (v < 0 || v > HP_MAX)
        return kiln__fail(KILN_ERR_FORMAT, "config.json: '%s' = %lld is out of range", key,
                          (long long)v);
    *out = (int32_t)v;
    return KILN_OK;
}

static kiln_status cfg_float(const json_t *c, const char *key, double def, float *out) {
    double v;
    kiln_status st = kiln__json_get_real(c, key, def, &v);
    if (st != KILN_OK) return config_error(st, "");
    *out = (float)v;
    return KILN_OK;
}

float kiln__longrope_attn_factor(int32_t n_ctx_train, int32_t orig_ctx) {
    double scale = (double)n_ctx_train / (double)orig_ctx;
    if (scale <= 1.0 || orig_ctx <= 1) return 1.0f;
    return (float)sqrt(1.0 + log(scale) / log((double)orig_ctx));
}

/* config.json "rope_scaling": null, {"rope_type"|"type": "linear", "factor"},
 * {"rope_type": "llama3", factor, low_freq_factor, high_freq_factor,
 * original_max_position_embeddings} or Phi-3's {"type": "longrope" (or the
 * older "su"), short_factor, long_factor} with the top-level
 * original_max_position_embeddings. */
static kiln_status read_rope_scaling(struct kiln_llm_hparams *hp, const json_t *c) {
    const json_t *rs = json_object_get(c, "rope_scaling");
    if (!rs || json_is_null(rs)) return KILN_OK;
    if (!json_is_object(rs))
        return kiln__fail(KILN_ERR_FORMAT, "config.json: 'rope_scaling' is a %s, expected an object",
                          kiln__json_kind(rs));
    const char *type = NULL;
    kiln_status st = kiln__json_get_string(rs, "rope_type", NULL, &type);
    if (st == KILN_OK && !type) st = kiln__json_get_string(rs, "type", NULL, &type);
    if (st != KILN_OK) return config_error(st, "rope_scaling: ");
    if (!type || strcmp(type, "default") == 0) return KILN_OK;
    if (strcmp(type, "longrope") == 0 || strcmp(type, "su") == 0) {
        /* the factor lists are read with the tensors (tensors.c) */
        hp->rope_scaling = KILN_ROPE_SCALING_LONGROPE;
        if ((st = cfg_int(c, "original_max_position_embeddings", -1, &hp->rope_orig_ctx)) != KILN_OK)
            return st;
        if (hp->rope_orig_ctx == 0)
            return kiln__fail(KILN_ERR_FORMAT, "config.json: original_max_position_embeddings must be > 0");
        hp->rope_attn_factor = kiln__longrope_attn_factor(hp->n_ctx_train, hp->rope_orig_ctx);
        return KILN_OK;
    }
    if ((st = cfg_float(rs, "factor", 1.0, &hp->rope_factor)) != KILN_OK) return st;
    if (!(hp->rope_factor > 0.0f) || !isfinite(hp->rope_factor))
        return kiln__fail(KILN_ERR_FORMAT, "config.json: rope_scaling factor must be > 0");
    if (strcmp(type, "linear") == 0) {
        hp->rope_scaling = KILN_ROPE_SCALING_LINEAR;
        return KILN_OK;
    }
    if (strcmp(type, "llama3") == 0) {
        hp->rope_scaling = KILN_ROPE_SCALING_LLAMA3;
        if ((st = cfg_float(rs, "low_freq_factor", 1.0, &hp->rope_low_freq)) != KILN_OK ||
            (st = cfg_float(rs, "high_freq_factor", 4.0, &hp->rope_high_freq)) != KILN_OK ||
            (st = cfg_int(rs, "original_max_position_embeddings", 8192, &hp->rope_orig_ctx)) != KILN_OK)
            return st;
        if (!(hp->rope_high_freq > hp->rope_low_freq) || !(hp->rope_low_freq > 0.0f) ||
            hp->rope_orig_ctx == 0)
            return kiln__fail(KILN_ERR_FORMAT, "config.json: llama3 rope_scaling needs "
                              "high_freq_factor > low_freq_factor > 0 and an original context");
        return KILN_OK;
    }
    return kiln__fail(KILN_ERR_UNSUPPORTED, "config.json: rope scaling type '%s' is not supported",
                      type);
}

static kiln_status read_config(struct kiln_llm *m, const json_t *c,
                               const struct kiln_llm_defaults *def) {
    struct kiln_llm_hparams *hp = &m->hp;
    kiln_status st;
    int32_t head_dim = 0;
    if ((st = cfg_int(c, "max_position_embeddings", def->n_ctx_train, &hp->n_ctx_train)) != KILN_OK ||
        (st = cfg_int(c, "hidden_size", -1, &hp->n_embd)) != KILN_OK ||
        (st = cfg_int(c, "num_hidden_layers", -1, &hp->n_layer)) != KILN_OK ||
        (st = cfg_int(c, "intermediate_size", -1, &hp->n_ff)) != KILN_OK ||
        (st = cfg_int(c, "num_attention_heads", -1, &hp->n_head)) != KILN_OK ||
        (st = cfg_int(c, "head_dim", 0, &head_dim)) != KILN_OK ||
        (st = cfg_float(c, def->hf_eps_key, def->norm_eps, &hp->norm_eps)) != KILN_OK ||
        (st = cfg_float(c, "rope_theta", def->rope_theta, &hp->rope_theta)) != KILN_OK)
        return st;
    if ((st = cfg_int(c, "num_key_value_heads", hp->n_head, &hp->n_head_kv)) != KILN_OK) return st;
    hp->head_dim = head_dim;

    /* The activation is the family's (silu for SwiGLU, gelu_new for phi2). */
    const char *act = NULL;
    if ((st = kiln__json_get_string(c, "hidden_act", def->hf_act, &act)) != KILN_OK) return config_error(st, "");
    if (strcmp(act, def->hf_act) != 0)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "config.json: hidden_act '%s' is not supported (this family "
                          "runs '%s')", act, def->hf_act);
    /* Phi's optional q/k LayerNorms (qk_layernorm) are not implemented. */
    bool qk_norm = false;
    if ((st = kiln__json_get_bool(c, "qk_layernorm", false, &qk_norm)) != KILN_OK) return config_error(st, "");
    if (qk_norm) return kiln__fail(KILN_ERR_UNSUPPORTED, "config.json: qk_layernorm is not supported");

    /* Tied embeddings: every family kiln runs defaults to untied. */
    if ((st = kiln__json_get_bool(c, "tie_word_embeddings", false, &hp->tied_embeddings)) != KILN_OK)
        return config_error(st, "");

    if (def->hf_sliding_window) {
        /* Mistral and Phi-3 apply "sliding_window" when it is set (null = off). */
        if ((st = cfg_int(c, "sliding_window", 0, &hp->sliding_window)) != KILN_OK) return st;
    } else {
        /* Qwen2 only uses its window with use_sliding_window, and then only
         * from layer max_window_layers on; kiln does not run that mix. */
        bool use_swa = false;
        if ((st = kiln__json_get_bool(c, "use_sliding_window", false, &use_swa)) != KILN_OK)
            return config_error(st, "");
        if (use_swa)
            return kiln__fail(KILN_ERR_UNSUPPORTED, "config.json: use_sliding_window is not supported");
    }

    float partial = def->partial_rotary;
    if ((st = cfg_float(c, "partial_rotary_factor", def->partial_rotary, &partial)) != KILN_OK) return st;
    if (!(partial > 0.0f && partial <= 1.0f))
        return kiln__fail(KILN_ERR_FORMAT, "config.json: partial_rotary_factor must be in (0, 1]");
    if (hp->head_dim == 0 && hp->n_head > 0) {
        if (hp->n_embd % hp->n_head != 0)
            return kiln__fail(KILN_ERR_FORMAT, "config.json: inconsistent hyperparameters: "
                              "hidden_size %d is not a multiple of %d heads and no head_dim is given",
                              (int)hp->n_embd, (int)hp->n_head);
        hp->head_dim = hp->n_embd / hp->n_head;
    }
    /* transformers: int(head_dim * partial_rotary_factor). */
    hp->n_rot = (int32_t)((float)hp->head_dim * partial);
    return read_rope_scaling(hp, c);
}

/* ---- both ---- */

static kiln_status check(const struct kiln_llm_hparams *hp, const char *src) {
    if (hp->n_embd <= 0 || hp->n_layer <= 0 || hp->n_ff <= 0 || hp->n_head <= 0 || hp->n_head_kv <= 0)
        return kiln__fail(KILN_ERR_FORMAT, "%s: width, layers, feed-forward width and head counts must "
                          "be positive (embd %d, layers %d, ff %d, heads %d, kv heads %d)", src,
                          (int)hp->n_embd, (int)hp->n_layer, (int)hp->n_ff, (int)hp->n_head,
                          (int)hp->n_head_kv);
    if (hp->n_head % hp->n_head_kv != 0)
        return kiln__fail(KILN_ERR_FORMAT, "%s: inconsistent hyperparameters: %d heads are not a "
                          "multiple of %d key/value heads", src, (int)hp->n_head, (int)hp->n_head_kv);
    if (hp->head_dim <= 0 || hp->head_dim % 2 != 0)
        return kiln__fail(KILN_ERR_FORMAT, "%s: inconsistent hyperparameters: head size %d (width %d, "
                          "%d heads) must be a positive even number", src, (int)hp->head_dim,
                          (int)hp->n_embd, (int)hp->n_head);
    if (hp->n_rot <= 0 || hp->n_rot % 2 != 0 || hp->n_rot > hp->head_dim)
        return kiln__fail(KILN_ERR_FORMAT, "%s: inconsistent hyperparameters: %d rotary dimensions "
                          "for heads of %d", src, (int)hp->n_rot, (int)hp->head_dim);
    if (!(hp->norm_eps > 0.0f) || !isfinite(hp->norm_eps) || !(hp->rope_theta > 0.0f) ||
        !isfinite(hp->rope_theta))
        return kiln__fail(KILN_ERR_FORMAT, "%s: norm epsilon and rope base must be positive", src);
    if (hp->rope_scaling == KILN_ROPE_SCALING_LINEAR && !(hp->rope_factor > 0.0f))
        return kiln__fail(KILN_ERR_FORMAT, "%s: rope scaling factor must be positive", src);
    if (hp->n_ctx_train <= 0)
        return kiln__fail(KILN_ERR_FORMAT, "%s: context length must be positive", src);
    return KILN_OK;
}

kiln_status kiln__llm_read_hparams(struct kiln_llm *m, const struct kiln_llm_defaults *def) {
    struct kiln_llm_hparams *hp = &m->hp;
    memset(hp, 0, sizeof *hp);
    hp->n_ctx_train = def->n_ctx_train;
    hp->norm_eps = def->norm_eps;
    hp->rope_theta = def->rope_theta;
    hp->rope_pairing = m->impl->quirks.rope;
    const struct kiln_gguf *g = kiln__weights_gguf(m->w);
    kiln_status st;
    if (g) {
        if ((st = read_gguf(m, g)) != KILN_OK) return st;
        if (hp->head_dim == 0) {
            if (hp->n_head <= 0 || hp->n_embd % hp->n_head != 0)
                return kiln__fail(KILN_ERR_FORMAT, "gguf: inconsistent hyperparameters: width %d is "
                                  "not a multiple of %d heads", (int)hp->n_embd, (int)hp->n_head);
            hp->head_dim = hp->n_embd / hp->n_head;
        }
        if (hp->n_rot < 0) hp->n_rot = hp->head_dim;
        return check(hp, "gguf");
    }
    if (!m->w->path.config)
        return kiln__fail(KILN_ERR_FORMAT, "%s: no GGUF metadata and no config.json to read "
                          "hyperparameters from", m->w->path.path);
    if ((st = read_config(m, m->w->path.config, def)) != KILN_OK) return st;
    return check(hp, "config.json");
}
