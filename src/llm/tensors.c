/* src/llm/tensors.c - binding a decoder's tensors to their roles: each one
 * found by its GGUF or Hugging Face name, its shape checked against the
 * hyperparameters and its type against what the kernels read. Matrices are
 * used in place from the mapping; the few small vectors (norms, biases)
 * stored in a type other than float32 are converted once. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "formats/weights.h"
#include "kernels/matmul.h"
#include "llm/llm_internal.h"
#include "tensor/dequant.h"
#include "tensor/tensor.h"

/* pi, spelled out (M_PI is not in strict C11). */
#define PI 3.14159265358979323846

/* Longest tensor name built here. */
#define NAME_MAX_LEN 256

/* Build "<template with %d = layer><suffix>". */
static void tensor_name(char *buf, const char *tmpl, int layer, const char *suffix) {
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#endif
    int n = snprintf(buf, NAME_MAX_LEN, tmpl, layer);
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
    if (n >= 0 && n < NAME_MAX_LEN) snprintf(buf + n, (size_t)(NAME_MAX_LEN - n), "%s", suffix);
}

/* "[a, b]" of a tensor's shape. */
static void shape_str(char *buf, size_t size, const int64_t *shape, int n_dims) {
    size_t used = 0;
    used += (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < n_dims && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

/* The tensor `name`, required to have shape dims[0..n_dims). NULL with the
 * status in *st when it is missing (and required) or has another shape. */
static const struct kiln_tensor *get(const struct kiln_llm *m, const char *name, bool required,
                                     int n_dims, const int64_t *dims, kiln_status *st) {
    *st = KILN_OK;
    const struct kiln_tensor *t = kiln__weights_find(m->w, name);
    if (!t) {
        if (required) *st = kiln__fail(KILN_ERR_FORMAT, "missing tensor '%s'", name);
        return NULL;
    }
    bool same = t->n_dims == n_dims;
    for (int d = 0; same && d < n_dims; d++) same = t->shape[d] == dims[d];
    if (!same) {
        char got[96], want[96];
        shape_str(got, sizeof got, t->shape, t->n_dims);
        shape_str(want, sizeof want, dims, n_dims);
        *st = kiln__fail(KILN_ERR_FORMAT, "tensor '%s' has shape %s, expected %s from the "
                         "hyperparameters", name, got, want);
        return NULL;
    }
    return t;
}

/* A weight matrix [rows][cols]: any type the matmul decodes, rows of whole
 * blocks. */
static kiln_status get_mat(struct kiln_llm *m, const char *name, bool required, int64_t rows,
                           int64_t cols, struct kiln_wmat *out) {
    kiln_status st;
    const int64_t dims[2] = {rows, cols};
    memset(out, 0, sizeof *out);
    const struct kiln_tensor *t = get(m, name, required, 2, dims, &st);
    if (!t) return st;
    if (!kiln__matmul_supports(t->dtype))
        return kiln__fail(KILN_ERR_UNSUPPORTED, "tensor '%s' has type %s, which kiln cannot use as "
                          "weights", name, kiln_dtype_name(t->dtype));
    if (kiln__tensor_bytes(t->dtype, (size_t)cols) == 0)
        return kiln__fail(KILN_ERR_FORMAT, "tensor '%s': rows of %lld values are not whole %s blocks",
                          name, (long long)cols, kiln_dtype_name(t->dtype));
    *out = (struct kiln_wmat){t->dtype, t->data, rows, cols, KILN_QLAYOUT_ROWS};
    m->weight_bytes += t->nbytes;
    return KILN_OK;
}

/* Keep a buffer to free with the model. */
static kiln_status own(struct kiln_llm *m, void *p) {
    void **grown = realloc(m->owned, (m->n_owned + 1) * sizeof *grown);
    if (!grown) {
        free(p);
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "out of memory for model vectors");
    }
    m->owned = grown;
    m->owned[m->n_owned++] = p;
    return KILN_OK;
}

/* A float32 vector of n values: in place when stored as F32, else decoded
 * into a buffer the model owns. *out stays NULL for an absent optional one. */
static kiln_status get_vec(struct kiln_llm *m, const char *name, bool required, int64_t n,
                           const float **out) {
    kiln_status st;
    *out = NULL;
    const struct kiln_tensor *t = get(m, name, required, 1, &n, &st);
    if (!t) return st;
    m->weight_bytes += t->nbytes;
    if (t->dtype == KILN_DTYPE_F32) {
        *out = t->data;
        return KILN_OK;
    }
    float *buf = malloc((size_t)n * sizeof *buf);
    if (!buf) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "out of memory for tensor '%s'", name);
    st = kiln__dequantize(t->dtype, t->data, buf, (size_t)n);
    if (st != KILN_OK) {
        free(buf);
        return kiln__fail(st == KILN_ERR_UNSUPPORTED ? KILN_ERR_UNSUPPORTED : KILN_ERR_FORMAT,
                          "tensor '%s' has type %s, which kiln cannot read as a vector", name,
                          kiln_dtype_name(t->dtype));
    }
    if ((st = own(m, buf)) != KILN_OK) return st;
    *out = buf;
    return KILN_OK;
}

/* Names of one role in the file's scheme. */
struct role {
    char weight[NAME_MAX_LEN]; /* "<stem>.weight" */
    char bias[NAME_MAX_LEN];   /* "<stem>.bias" */
};

static void role(struct role *r, const char *tmpl, int layer) {
    tensor_name(r->weight, tmpl, layer, ".weight");
    tensor_name(r->bias, tmpl, layer, ".bias");
}

/* A norm's weight, and its bias when the family uses LayerNorm. */
static kiln_status get_norm(struct kiln_llm *m, const char *tmpl, int layer, const float **w,
                            const float **b) {
    struct role r;
    role(&r, tmpl, layer);
    int64_t n = m->hp.n_embd;
    kiln_status st = get_vec(m, r.weight, true, n, w);
    if (st != KILN_OK) return st;
    return get_vec(m, r.bias, m->impl->quirks.norm == KILN_NORM_LAYER, n, b);
}

/* A matrix with an optional or required bias of `rows` values. */
static kiln_status get_linear(struct kiln_llm *m, const char *tmpl, int layer, int64_t rows,
                              int64_t cols, bool bias_required, struct kiln_wmat *w,
                              const float **b) {
    struct role r;
    role(&r, tmpl, layer);
    kiln_status st = get_mat(m, r.weight, true, rows, cols, w);
    if (st != KILN_OK) return st;
    return get_vec(m, r.bias, bias_required, rows, b);
}

static kiln_status bind_layer(struct kiln_llm *m, const struct kiln_llm_names *nm, int il) {
    const struct kiln_llm_hparams *hp = &m->hp;
    const kiln_llm_quirks *qk = &m->impl->quirks;
    struct kiln_llm_layer *L = &m->layers[il];
    int64_t n_embd = hp->n_embd, n_q = (int64_t)hp->n_head * hp->head_dim;
    int64_t n_kv = (int64_t)hp->n_head_kv * hp->head_dim, n_ff = hp->n_ff;
    kiln_status st;
    struct role r;

    if ((st = get_norm(m, nm->attn_norm, il, &L->attn_norm, &L->attn_norm_b)) != KILN_OK) return st;

    /* q, k, v: one fused matrix when the family always fuses them (phi3) or
     * the file has one (GGUF phi2 may); otherwise three. */
    bool fused = false;
    if (nm->wqkv) {
        role(&r, nm->wqkv, il);
        fused = qk->fused_qkv || kiln__weights_find(m->w, r.weight) != NULL;
    }
    if (fused) {
        const float *b = NULL;
        if ((st = get_linear(m, nm->wqkv, il, n_q + 2 * n_kv, n_embd, qk->qkv_bias, &L->wqkv, &b)) != KILN_OK)
            return st;
        if (b) {
            L->bq = b;
            L->bk = b + n_q;
            L->bv = b + n_q + n_kv;
        }
    } else {
        if ((st = get_linear(m, nm->wq, il, n_q, n_embd, qk->qkv_bias, &L->wq, &L->bq)) != KILN_OK ||
            (st = get_linear(m, nm->wk, il, n_kv, n_embd, qk->qkv_bias, &L->wk, &L->bk)) != KILN_OK ||
            (st = get_linear(m, nm->wv, il, n_kv, n_embd, qk->qkv_bias, &L->wv, &L->bv)) != KILN_OK)
            return st;
        /* A bias on some but not all of q, k, v would be a broken file. */
        if ((L->bq != NULL) != (L->bk != NULL) || (L->bq != NULL) != (L->bv != NULL)) {
            role(&r, nm->wq, il);
            return kiln__fail(KILN_ERR_FORMAT, "block %d: q, k and v must all have biases or none "
                              "(see '%s')", il, r.bias);
        }
    }
    if ((st = get_linear(m, nm->wo, il, n_embd, n_q, qk->proj_bias, &L->wo, &L->bo)) != KILN_OK)
        return st;

    if (!qk->parallel_block &&
        (st = get_norm(m, nm->ffn_norm, il, &L->ffn_norm, &L->ffn_norm_b)) != KILN_OK)
        return st;

    switch (qk->ffn) {
    case KILN_FFN_SWIGLU:
        if (qk->fused_gate_up) {
            /* [gate; up] in one matrix of 2 x n_ff rows (gate first). */
            if ((st = get_linear(m, nm->w_up, il, 2 * n_ff, n_embd, false, &L->w_up, &L->b_up)) != KILN_OK)
                return st;
        } else {
            const float *b_gate = NULL;
            if ((st = get_linear(m, nm->w_gate, il, n_ff, n_embd, false, &L->w_gate, &b_gate)) != KILN_OK ||
                (st = get_linear(m, nm->w_up, il, n_ff, n_embd, false, &L->w_up, &L->b_up)) != KILN_OK)
                return st;
            if (b_gate || L->b_up) {
                role(&r, nm->w_gate, il);
                return kiln__fail(KILN_ERR_UNSUPPORTED, "block %d: feed-forward biases ('%s') are not "
                                  "supported in SwiGLU models", il, b_gate ? r.bias : "up");
            }
        }
        break;
    case KILN_FFN_GELU:
        if ((st = get_linear(m, nm->w_up, il, n_ff, n_embd, qk->proj_bias, &L->w_up, &L->b_up)) != KILN_OK)
            return st;
        break;
    }
    return get_linear(m, nm->w_down, il, n_embd, n_ff, qk->proj_bias, &L->w_down, &L->b_down);
}

/* config.json's rope_scaling[key]: n positive finite numbers into a
 * buffer the model owns. */
static kiln_status config_factors(struct kiln_llm *m, const char *key, int n, const float **out) {
    const json_t *rs = json_object_get(m->w->path.config, "rope_scaling");
    const json_t *arr = json_object_get(rs, key);
    if (!json_is_array(arr) || json_array_size(arr) != (size_t)n)
        return kiln__fail(KILN_ERR_FORMAT, "config.json: rope_scaling '%s' must be a list of %d "
                          "numbers (half the rotary dimensions)", key, n);
    float *f = malloc((size_t)n * sizeof *f);
    kiln_status st;
    if (!f) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "out of memory for rope factors");
    if ((st = own(m, f)) != KILN_OK) return st;
    for (int i = 0; i < n; i++) {
        const json_t *v = json_array_get(arr, (size_t)i);
        f[i] = (float)json_number_value(v);
        if (!json_is_number(v) || !(f[i] > 0.0f) || !isfinite(f[i]))
            return kiln__fail(KILN_ERR_FORMAT, "config.json: rope_scaling '%s'[%d] must be a "
                              "positive number", key, i);
    }
    *out = f;
    return KILN_OK;
}

/* Phi-3's longrope: the short and long factor lists (GGUF tensors
 * rope_factors_short/long, or config.json's short_factor/long_factor); the
 * list in use is picked once the context size is known (llm.c). */
static kiln_status longrope_factors(struct kiln_llm *m) {
    struct kiln_llm_hparams *hp = &m->hp;
    int half = hp->n_rot / 2;
    struct kiln_llm_scratch *s = &m->s;
    kiln_status st;
    if (m->from_gguf) {
        if ((st = get_vec(m, "rope_factors_short.weight", true, half, &s->rope_ff_short)) != KILN_OK ||
            (st = get_vec(m, "rope_factors_long.weight", true, half, &s->rope_ff_long)) != KILN_OK)
            return st;
        for (int i = 0; i < half; i++)
            if (!(s->rope_ff_short[i] > 0.0f) || !(s->rope_ff_long[i] > 0.0f) ||
                !isfinite(s->rope_ff_short[i]) || !isfinite(s->rope_ff_long[i]))
                return kiln__fail(KILN_ERR_FORMAT, "rope factor %d is not a positive number", i);
        if (hp->rope_orig_ctx <= 0)
            return kiln__fail(KILN_ERR_FORMAT, "gguf: longrope factors without "
                              "rope.scaling.original_context_length");
        /* Files converted before llama.cpp wrote attn_factor: transformers' value. */
        if (!(hp->rope_attn_factor > 0.0f))
            hp->rope_attn_factor = kiln__longrope_attn_factor(hp->n_ctx_train, hp->rope_orig_ctx);
        return KILN_OK;
    }
    if ((st = config_factors(m, "short_factor", half, &s->rope_ff_short)) != KILN_OK) return st;
    return config_factors(m, "long_factor", half, &s->rope_ff_long);
}

/* Rope frequency divisors for the scaling kind, or none. */
static kiln_status rope_factors(struct kiln_llm *m) {
    struct kiln_llm_hparams *hp = &m->hp;
    int half = hp->n_rot / 2;
    const float *from_file = NULL;
    kiln_status st;
    if (m->from_gguf) {
        /* Llama 3.1 GGUFs carry the factors (llama.cpp's rope_freqs); Phi-3's
         * long-context files the two longrope lists. */
        if ((st = get_vec(m, "rope_freqs.weight", false, half, &from_file)) != KILN_OK) return st;
        if (from_file) hp->rope_scaling = KILN_ROPE_SCALING_LLAMA3;
        if (kiln__weights_find(m->w, "rope_factors_long.weight"))
            hp->rope_scaling = KILN_ROPE_SCALING_LONGROPE;
    }
    if (hp->rope_scaling != KILN_ROPE_SCALING_LONGROPE) hp->rope_attn_factor = 1.0f;
    if (hp->rope_scaling == KILN_ROPE_SCALING_LONGROPE) return longrope_factors(m);
    if (hp->rope_scaling == KILN_ROPE_SCALING_NONE) return KILN_OK;
    float *ff = malloc((size_t)half * sizeof *ff);
    if (!ff || (st = own(m, ff)) != KILN_OK) {
        if (!ff) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "out of memory for rope factors");
        return st;
    }
    for (int i = 0; i < half; i++) {
        float f = 1.0f;
        switch (hp->rope_scaling) {
        case KILN_ROPE_SCALING_NONE: case KILN_ROPE_SCALING_LONGROPE: break;
        case KILN_ROPE_SCALING_LINEAR: f = hp->rope_factor; break;
        case KILN_ROPE_SCALING_LLAMA3:
            if (from_file) {
                f = from_file[i];
            } else {
                /* transformers' llama3 rule: long wavelengths slow down by
                 * `factor`, short ones stay, the band between blends. */
                double inv_freq = 1.0 / pow(hp->rope_theta, (double)(2 * i) / hp->n_rot);
                double wavelen = 2.0 * PI / inv_freq;
                double lo_wl = hp->rope_orig_ctx / hp->rope_low_freq;
                double hi_wl = hp->rope_orig_ctx / hp->rope_high_freq;
                if (wavelen < hi_wl) {
                    f = 1.0f;
                } else if (wavelen > lo_wl) {
                    f = hp->rope_factor;
                } else {
                    double smooth = (hp->rope_orig_ctx / wavelen - hp->rope_low_freq) /
                                    (hp->rope_high_freq - hp->rope_low_freq);
                    f = (float)(1.0 / ((1.0 - smooth) / hp->rope_factor + smooth));
                }
            }
            break;
        }
        if (!(f > 0.0f) || !isfinite(f))
            return kiln__fail(KILN_ERR_FORMAT, "rope frequency factor %d is %g, expected > 0", i, f);
        ff[i] = f;
    }
    m->s.rope_ff = ff;
    return KILN_OK;
}

kiln_status kiln__llm_bind_tensors(struct kiln_llm *m, const struct kiln_llm_names *gguf,
                                   const struct kiln_llm_names *hf) {
    const struct kiln_llm_names *nm = m->from_gguf ? gguf : hf;
    const struct kiln_llm_hparams *hp = &m->hp;
    kiln_status st;
    struct role r;

    /* The embedding fixes the vocabulary size. */
    role(&r, nm->tok_embd, 0);
    const struct kiln_tensor *emb = kiln__weights_find(m->w, r.weight);
    if (!emb) return kiln__fail(KILN_ERR_FORMAT, "missing tensor '%s'", r.weight);
    if (emb->n_dims != 2 || emb->shape[1] != hp->n_embd || emb->shape[0] <= 0 ||
        emb->shape[0] > (1 << 24)) {
        char got[96];
        shape_str(got, sizeof got, emb->shape, emb->n_dims);
        return kiln__fail(KILN_ERR_FORMAT, "tensor '%s' has shape %s, expected [n_vocab, %d]",
                          r.weight, got, (int)hp->n_embd);
    }
    m->hp.n_vocab = (int32_t)emb->shape[0];
    struct kiln_wmat embd;
    if ((st = get_mat(m, r.weight, true, m->hp.n_vocab, hp->n_embd, &embd)) != KILN_OK) return st;
    m->tok_embd = embd.data;
    m->tok_embd_type = embd.dtype;

    /* Every block has several tensors: a block count beyond the tensor
     * count is wrong, and must not size an allocation. */
    if ((size_t)hp->n_layer > m->w->n_tensors)
        return kiln__fail(KILN_ERR_FORMAT, "inconsistent model: %d blocks declared but the file holds "
                          "only %zu tensors", (int)hp->n_layer, m->w->n_tensors);
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "out of memory for %d blocks", (int)hp->n_layer);
    for (int il = 0; il < hp->n_layer; il++)
        if ((st = bind_layer(m, nm, il)) != KILN_OK) return st;

    if ((st = get_norm(m, nm->out_norm, 0, &m->out_norm, &m->out_norm_b)) != KILN_OK) return st;

    /* LM head: its own matrix, or the embedding when tied (no such tensor
     * in GGUF; tie_word_embeddings in config.json). */
    role(&r, nm->output, 0);
    bool tied = !kiln__weights_find(m->w, r.weight) && (m->from_gguf || hp->tied_embeddings);
    if (tied) {
        m->output = embd;
    } else if ((st = get_mat(m, r.weight, true, hp->n_vocab, hp->n_embd, &m->output)) != KILN_OK) {
        return st;
    }
    if ((st = get_vec(m, r.bias, m->impl->quirks.output_bias, hp->n_vocab, &m->output_b)) != KILN_OK)
        return st;
    return rope_factors(m);
}
