/* tests/llm_tiny.h - tiny random-weight decoders for the LLM engine's tests
 * (header-only, static functions).
 *
 * tiny_build() draws the weights of one model of any family kiln runs in
 * the Hugging Face layout (separate q/k/v and gate/up, q/k unpermuted).
 * tiny_write_gguf() writes them as llama.cpp's converter would (q/k rows
 * permuted for llama, fused qkv / gate_up for phi3, the GGUF tensor names
 * and metadata keys, a byte-level BPE vocabulary of 260 tokens), with the
 * matrices in any type kiln__quantize writes; tiny_write_hf() writes a
 * transformers folder (config.json + model.safetensors). tiny_ref_logits()
 * is an independent, plain double-precision forward pass over the HF
 * layout, written from the transformers model files: the oracle the engine
 * is compared with until the transformers goldens cover a case.
 */
#ifndef KILN_TESTS_LLM_TINY_H
#define KILN_TESTS_LLM_TINY_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "kiln/kiln.h"
#include "tensor/dequant.h"
#include "tensor/quantize.h"
#include "tensor/tensor.h"

/* The vocabulary every tiny model carries: 256 byte tokens, 3 merges and
 * <|endoftext|> (the end-of-sequence token). */
#define TINY_VOCAB 260
#define TINY_EOS 259

/* What to build. Zero fields take the defaults of tiny_cfg_default(). */
struct tiny_cfg {
    kiln_arch arch;       /* family */
    int n_embd, n_layer, n_ff, n_head, n_head_kv;
    int n_rot;            /* rotated values per head (phi2: partial) */
    int n_ctx_train;      /* context_length */
    float eps, theta;     /* norm epsilon, rope base */
    bool tied;            /* no separate LM head */
    int sliding_window;   /* 0 = none */
    bool llama3_rope;     /* Llama 3.1 rope scaling (factor 8, 1, 4, original 32) */
    bool gguf_fused_qkv;  /* phi2: write one attn_qkv in GGUF */
    const char *gguf_arch;     /* general.architecture to write instead of the family's */
    const char *omit_key;      /* "<arch>." key suffix left out of the GGUF metadata */
    uint64_t seed;        /* weight draw */
};

static inline struct tiny_cfg tiny_cfg_default(kiln_arch arch) {
    struct tiny_cfg c = {0};
    c.arch = arch;
    c.n_embd = 64;
    c.n_layer = 2;
    c.n_ff = 96;
    c.n_head = 4;
    c.n_head_kv = arch == KILN_ARCH_PHI2 ? 4 : 2;
    c.n_rot = arch == KILN_ARCH_PHI2 ? 8 : 16;
    c.n_ctx_train = 128;
    c.eps = 1e-5f;
    c.theta = 10000.0f;
    c.seed = 1;
    return c;
}

/* One block's weights, HF layout, float32 row-major [out][in]. */
struct tiny_layer {
    float *attn_norm, *attn_norm_b;
    float *wq, *wk, *wv, *bq, *bk, *bv;
    float *wo, *bo;
    float *ffn_norm;
    float *wg, *wu, *bu, *wd, *bd;
};

struct tiny_model {
    struct tiny_cfg c;
    int head_dim;
    float *embd;              /* [V][D] */
    struct tiny_layer *L;     /* [n_layer] */
    float *out_norm, *out_norm_b;
    float *output, *output_b; /* output NULL when tied */
    float rope_ff[64];        /* llama3 frequency divisors (n_rot/2 used) */
};

static inline bool tiny_is_phi2(const struct tiny_model *m) { return m->c.arch == KILN_ARCH_PHI2; }

/* splitmix64 draws in [-1, 1). */
static inline float tiny_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)((double)(z >> 11) / 4503599627370496.0 - 1.0);
}

/* n values: offset + scale * uniform(-1, 1). */
static inline float *tiny_fill(uint64_t *s, size_t n, float offset, float scale) {
    float *p = malloc(n * sizeof *p);
    if (!p) abort();
    for (size_t i = 0; i < n; i++) p[i] = offset + scale * tiny_rand(s);
    return p;
}

static inline void tiny_free(struct tiny_model *m) {
    if (!m->L) return;
    for (int l = 0; l < m->c.n_layer; l++) {
        struct tiny_layer *L = &m->L[l];
        float *all[] = {L->attn_norm, L->attn_norm_b, L->wq, L->wk, L->wv, L->bq, L->bk, L->bv, L->wo,
                        L->bo, L->ffn_norm, L->wg, L->wu, L->bu, L->wd, L->bd};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    }
    free(m->L);
    free(m->embd);
    free(m->out_norm);
    free(m->out_norm_b);
    free(m->output);
    free(m->output_b);
    memset(m, 0, sizeof *m);
}

static inline void tiny_build(struct tiny_model *m, struct tiny_cfg c) {
    memset(m, 0, sizeof *m);
    m->c = c;
    m->head_dim = c.n_embd / c.n_head;
    uint64_t s = c.seed * 7919u + 17u;
    size_t D = (size_t)c.n_embd, F = (size_t)c.n_ff, hd = (size_t)m->head_dim;
    size_t nq = (size_t)c.n_head * hd, nkv = (size_t)c.n_head_kv * hd;
    bool phi2 = c.arch == KILN_ARCH_PHI2, qkv_bias = phi2 || c.arch == KILN_ARCH_QWEN2;
    float wD = 1.0f / sqrtf((float)D), wF = 1.0f / sqrtf((float)F);
    m->embd = tiny_fill(&s, (size_t)TINY_VOCAB * D, 0.0f, 1.0f);
    m->L = calloc((size_t)c.n_layer, sizeof *m->L);
    if (!m->L) abort();
    for (int l = 0; l < c.n_layer; l++) {
        struct tiny_layer *L = &m->L[l];
        L->attn_norm = tiny_fill(&s, D, 1.0f, 0.2f);
        if (phi2) L->attn_norm_b = tiny_fill(&s, D, 0.0f, 0.1f);
        L->wq = tiny_fill(&s, nq * D, 0.0f, 2.0f * wD);
        L->wk = tiny_fill(&s, nkv * D, 0.0f, 2.0f * wD);
        L->wv = tiny_fill(&s, nkv * D, 0.0f, wD);
        if (qkv_bias) {
            L->bq = tiny_fill(&s, nq, 0.0f, 0.3f);
            L->bk = tiny_fill(&s, nkv, 0.0f, 0.3f);
            L->bv = tiny_fill(&s, nkv, 0.0f, 0.3f);
        }
        L->wo = tiny_fill(&s, D * nq, 0.0f, wD);
        if (phi2) L->bo = tiny_fill(&s, D, 0.0f, 0.1f);
        if (!phi2) {
            L->ffn_norm = tiny_fill(&s, D, 1.0f, 0.2f);
            L->wg = tiny_fill(&s, F * D, 0.0f, 2.0f * wD);
        }
        L->wu = tiny_fill(&s, F * D, 0.0f, 2.0f * wD);
        if (phi2) L->bu = tiny_fill(&s, F, 0.0f, 0.1f);
        L->wd = tiny_fill(&s, D * F, 0.0f, wF);
        if (phi2) L->bd = tiny_fill(&s, D, 0.0f, 0.1f);
    }
    m->out_norm = tiny_fill(&s, D, 1.0f, 0.2f);
    if (phi2) m->out_norm_b = tiny_fill(&s, D, 0.0f, 0.1f);
    if (!c.tied) m->output = tiny_fill(&s, (size_t)TINY_VOCAB * D, 0.0f, 2.0f * wD);
    if (phi2) m->output_b = tiny_fill(&s, TINY_VOCAB, 0.0f, 0.3f);
    if (c.llama3_rope) {
        /* transformers' llama3 rule for factor 8, low 1, high 4, original 32. */
        for (int i = 0; i < c.n_rot / 2; i++) {
            double inv = 1.0 / pow(c.theta, (double)(2 * i) / c.n_rot);
            double wl = 2.0 * 3.14159265358979323846 / inv, lo = 32.0 / 1.0, hi = 32.0 / 4.0;
            double f = 1.0;
            if (wl > lo) f = 8.0;
            else if (wl >= hi) {
                double sm = (32.0 / wl - 1.0) / (4.0 - 1.0);
                f = 1.0 / ((1.0 - sm) / 8.0 + sm);
            }
            m->rope_ff[i] = (float)f;
        }
    }
}

/* ---- a list of tensors to write ---- */

struct tiny_tensor {
    char name[128];
    int n_dims;
    int64_t shape[2];  /* outermost first */
    float *data;       /* float32 values (owned by the list) */
    bool matrix;       /* a weight matrix (quantizable) */
    bool as_i32;       /* write as I32 (truncated values): an unsupported weight type */
};

struct tiny_list {
    struct tiny_tensor t[256];
    int n;
};

static inline void tiny_add(struct tiny_list *ls, const char *name, const float *src, int64_t rows,
                     int64_t cols) {
    if (!src) return;
    struct tiny_tensor *t = &ls->t[ls->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = rows ? 2 : 1;
    t->shape[0] = rows ? rows : cols;
    t->shape[1] = rows ? cols : 0;
    size_t n = (size_t)(rows ? rows : 1) * (size_t)cols;
    t->data = malloc(n * sizeof(float));
    if (!t->data) abort();
    memcpy(t->data, src, n * sizeof(float));
    t->matrix = rows != 0;
}

static inline void tiny_list_free(struct tiny_list *ls) {
    for (int i = 0; i < ls->n; i++) free(ls->t[i].data);
    ls->n = 0;
}

static inline struct tiny_tensor *tiny_find(struct tiny_list *ls, const char *name) {
    for (int i = 0; i < ls->n; i++)
        if (strcmp(ls->t[i].name, name) == 0) return &ls->t[i];
    return NULL;
}

/* Drop a tensor from the list (malformed-model tests). */
static inline void tiny_remove(struct tiny_list *ls, const char *name) {
    struct tiny_tensor *t = tiny_find(ls, name);
    if (!t) return;
    free(t->data);
    *t = ls->t[--ls->n];
}

/* llama.cpp's permutation of q/k rows: within each head, row 2i+j of the
 * GGUF matrix is HF row i + j*hd/2. */
static inline float *tiny_permute(const float *w, int n_head, int hd, int cols) {
    float *p = malloc((size_t)n_head * hd * cols * sizeof *p);
    if (!p) abort();
    for (int h = 0; h < n_head; h++)
        for (int i = 0; i < hd / 2; i++)
            for (int j = 0; j < 2; j++)
                memcpy(p + ((size_t)h * hd + 2 * i + j) * cols, w + ((size_t)h * hd + i + j * hd / 2) * cols,
                       (size_t)cols * sizeof *p);
    return p;
}

/* Rows of a then rows of b (then c). */
static inline float *tiny_concat(const float *a, size_t na, const float *b, size_t nb, const float *c, size_t nc) {
    float *p = malloc((na + nb + nc) * sizeof *p);
    if (!p) abort();
    memcpy(p, a, na * sizeof *p);
    memcpy(p + na, b, nb * sizeof *p);
    if (c) memcpy(p + na + nb, c, nc * sizeof *p);
    return p;
}

/* The GGUF tensors of m (names and layout of llama.cpp's converter). */
static inline void tiny_gguf_tensors(const struct tiny_model *m, struct tiny_list *ls) {
    const struct tiny_cfg c = m->c;
    int64_t D = c.n_embd, F = c.n_ff, hd = m->head_dim;
    int64_t nq = c.n_head * hd, nkv = c.n_head_kv * hd;
    bool permute = c.arch == KILN_ARCH_LLAMA || c.arch == KILN_ARCH_MISTRAL;
    char n[96];
    tiny_add(ls, "token_embd.weight", m->embd, TINY_VOCAB, D);
    for (int l = 0; l < c.n_layer; l++) {
        const struct tiny_layer *L = &m->L[l];
#define NM(fmt) (snprintf(n, sizeof n, fmt, l), n)
        tiny_add(ls, NM("blk.%d.attn_norm.weight"), L->attn_norm, 0, D);
        tiny_add(ls, NM("blk.%d.attn_norm.bias"), L->attn_norm_b, 0, D);
        bool fused = c.arch == KILN_ARCH_PHI3 || (c.arch == KILN_ARCH_PHI2 && c.gguf_fused_qkv);
        if (fused) {
            float *w = tiny_concat(L->wq, (size_t)(nq * D), L->wk, (size_t)(nkv * D), L->wv, (size_t)(nkv * D));
            tiny_add(ls, NM("blk.%d.attn_qkv.weight"), w, nq + 2 * nkv, D);
            free(w);
            if (L->bq) {
                float *b = tiny_concat(L->bq, (size_t)nq, L->bk, (size_t)nkv, L->bv, (size_t)nkv);
                tiny_add(ls, NM("blk.%d.attn_qkv.bias"), b, 0, nq + 2 * nkv);
                free(b);
            }
        } else {
            float *wq = permute ? tiny_permute(L->wq, c.n_head, (int)hd, (int)D) : NULL;
            float *wk = permute ? tiny_permute(L->wk, c.n_head_kv, (int)hd, (int)D) : NULL;
            tiny_add(ls, NM("blk.%d.attn_q.weight"), wq ? wq : L->wq, nq, D);
            tiny_add(ls, NM("blk.%d.attn_k.weight"), wk ? wk : L->wk, nkv, D);
            tiny_add(ls, NM("blk.%d.attn_v.weight"), L->wv, nkv, D);
            free(wq);
            free(wk);
            tiny_add(ls, NM("blk.%d.attn_q.bias"), L->bq, 0, nq);
            tiny_add(ls, NM("blk.%d.attn_k.bias"), L->bk, 0, nkv);
            tiny_add(ls, NM("blk.%d.attn_v.bias"), L->bv, 0, nkv);
        }
        tiny_add(ls, NM("blk.%d.attn_output.weight"), L->wo, D, nq);
        tiny_add(ls, NM("blk.%d.attn_output.bias"), L->bo, 0, D);
        tiny_add(ls, NM("blk.%d.ffn_norm.weight"), L->ffn_norm, 0, D);
        if (c.arch == KILN_ARCH_PHI3) {
            float *w = tiny_concat(L->wg, (size_t)(F * D), L->wu, (size_t)(F * D), NULL, 0);
            tiny_add(ls, NM("blk.%d.ffn_up.weight"), w, 2 * F, D);
            free(w);
        } else {
            tiny_add(ls, NM("blk.%d.ffn_gate.weight"), L->wg, F, D);
            tiny_add(ls, NM("blk.%d.ffn_up.weight"), L->wu, F, D);
        }
        tiny_add(ls, NM("blk.%d.ffn_up.bias"), L->bu, 0, F);
        tiny_add(ls, NM("blk.%d.ffn_down.weight"), L->wd, D, F);
        tiny_add(ls, NM("blk.%d.ffn_down.bias"), L->bd, 0, D);
#undef NM
    }
    tiny_add(ls, "output_norm.weight", m->out_norm, 0, D);
    tiny_add(ls, "output_norm.bias", m->out_norm_b, 0, D);
    tiny_add(ls, "output.weight", m->output, TINY_VOCAB, D);
    tiny_add(ls, "output.bias", m->output_b, 0, TINY_VOCAB);
    if (c.llama3_rope) tiny_add(ls, "rope_freqs.weight", m->rope_ff, 0, c.n_rot / 2);
}

/* GPT-2's byte-to-character map: printable bytes stand for themselves, the
 * others for U+0100 onwards, in byte order. Writes the UTF-8 of byte b. */
static inline void tiny_byte_char(int b, char out[3]) {
    int cp;
    if ((b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)) {
        cp = b;
    } else {
        int k = 0;
        for (int x = 0; x < b; x++)
            if (!((x >= '!' && x <= '~') || (x >= 0xa1 && x <= 0xac) || (x >= 0xae && x <= 0xff))) k++;
        cp = 256 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        out[2] = 0;
    }
}

/* Add the tokenizer keys: byte-level BPE, gpt-2 pre-tokenizer. */
static inline kiln_status tiny_gguf_vocab(struct kiln_gguf_writer *w) {
    static char texts[TINY_VOCAB][16];
    const char *tokens[TINY_VOCAB];
    int32_t types[TINY_VOCAB];
    for (int b = 0; b < 256; b++) {
        tiny_byte_char(b, texts[b]);
        tokens[b] = texts[b];
        types[b] = 1;
    }
    const char *extra[] = {"he", "ll", "\xc4\xa0t", "<|endoftext|>"};
    for (int i = 0; i < 4; i++) {
        tokens[256 + i] = extra[i];
        types[256 + i] = i == 3 ? 3 : 1;
    }
    const char *merges[] = {"h e", "l l", "\xc4\xa0 t"};
    kiln_status st;
    if ((st = kiln__gguf_writer_kv_str(w, "tokenizer.ggml.model", "gpt2")) != KILN_OK ||
        (st = kiln__gguf_writer_kv_str(w, "tokenizer.ggml.pre", "gpt-2")) != KILN_OK ||
        (st = kiln__gguf_writer_kv_str_arr(w, "tokenizer.ggml.tokens", tokens, TINY_VOCAB)) != KILN_OK ||
        (st = kiln__gguf_writer_kv_arr(w, "tokenizer.ggml.token_type", KILN_GGUF_I32, types, TINY_VOCAB)) != KILN_OK ||
        (st = kiln__gguf_writer_kv_str_arr(w, "tokenizer.ggml.merges", merges, 3)) != KILN_OK ||
        (st = kiln__gguf_writer_kv_u32(w, "tokenizer.ggml.bos_token_id", TINY_EOS)) != KILN_OK ||
        (st = kiln__gguf_writer_kv_u32(w, "tokenizer.ggml.eos_token_id", TINY_EOS)) != KILN_OK ||
        (st = kiln__gguf_writer_kv_bool(w, "tokenizer.ggml.add_bos_token", false)) != KILN_OK)
        return st;
    return KILN_OK;
}

/* The GGUF architecture name and its metadata keys. */
static inline kiln_status tiny_gguf_meta(const struct tiny_model *m, struct kiln_gguf_writer *w) {
    const struct tiny_cfg c = m->c;
    const char *arch = c.gguf_arch ? c.gguf_arch : c.arch == KILN_ARCH_MISTRAL ? "llama" : kiln_arch_name(c.arch);
    /* "<arch>.<suffix>" = value (u32, or f32 when is_float) */
    const struct { const char *suffix; uint32_t u; float f; bool is_float; } keys[] = {
        {"context_length", (uint32_t)c.n_ctx_train, 0, false},
        {"embedding_length", (uint32_t)c.n_embd, 0, false},
        {"block_count", (uint32_t)c.n_layer, 0, false},
        {"feed_forward_length", (uint32_t)c.n_ff, 0, false},
        {"attention.head_count", (uint32_t)c.n_head, 0, false},
        {"attention.head_count_kv", (uint32_t)c.n_head_kv, 0, false},
        {c.arch == KILN_ARCH_PHI2 ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon", 0,
         c.eps, true},
        {"rope.freq_base", 0, c.theta, true},
        {"rope.dimension_count", (uint32_t)c.n_rot, 0, false},
        {"attention.sliding_window", (uint32_t)c.sliding_window, 0, false},
    };
    kiln_status st = kiln__gguf_writer_kv_str(w, "general.architecture", arch);
    for (size_t i = 0; st == KILN_OK && i < sizeof keys / sizeof keys[0]; i++) {
        if (c.omit_key && strcmp(c.omit_key, keys[i].suffix) == 0) continue;
        if (strcmp(keys[i].suffix, "attention.sliding_window") == 0 && !c.sliding_window) continue;
        char k[128];
        snprintf(k, sizeof k, "%s.%s", arch, keys[i].suffix);
        st = keys[i].is_float ? kiln__gguf_writer_kv_f32(w, k, keys[i].f) : kiln__gguf_writer_kv_u32(w, k, keys[i].u);
    }
    return st == KILN_OK ? tiny_gguf_vocab(w) : st;
}

/* Write a tensor list as GGUF, matrices in `mtype` (vectors stay F32).
 * `meta` may add or change keys after the standard ones (NULL = none). */
static inline kiln_status tiny_write_gguf_list(const struct tiny_model *m, struct tiny_list *ls, kiln_dtype mtype,
                                        const char *path,
                                        kiln_status (*meta)(struct kiln_gguf_writer *w, void *ctx), void *ctx) {
    struct kiln_gguf_writer *w = NULL;
    kiln_status st = kiln__gguf_writer_new(&w);
    if (st != KILN_OK) return st;
    void *bufs[256] = {0};
    if ((st = tiny_gguf_meta(m, w)) != KILN_OK) goto done;
    if (meta && (st = meta(w, ctx)) != KILN_OK) goto done;
    for (int i = 0; i < ls->n; i++) {
        struct tiny_tensor *t = &ls->t[i];
        kiln_dtype type = t->as_i32 ? KILN_DTYPE_I32 : t->matrix ? mtype : KILN_DTYPE_F32;
        size_t n = (size_t)t->shape[0] * (size_t)(t->n_dims == 2 ? t->shape[1] : 1);
        size_t bytes = kiln__tensor_bytes(type, n);
        bufs[i] = malloc(bytes ? bytes : 1);
        if (!bufs[i]) abort();
        if (t->as_i32) {
            for (size_t j = 0; j < n; j++) ((int32_t *)bufs[i])[j] = (int32_t)t->data[j];
        } else if ((st = kiln__quantize(type, t->data, bufs[i], n)) != KILN_OK) {
            goto done;
        }
        uint64_t ne[2] = {(uint64_t)(t->n_dims == 2 ? t->shape[1] : t->shape[0]), (uint64_t)t->shape[0]};
        if ((st = kiln__gguf_writer_add_tensor(w, t->name, type, (uint32_t)t->n_dims, ne, bufs[i], bytes)) != KILN_OK)
            goto done;
    }
    st = kiln__gguf_writer_write(w, path);
done:
    kiln__gguf_writer_free(w);
    for (int i = 0; i < 256; i++) free(bufs[i]);
    return st;
}

static inline kiln_status tiny_write_gguf(const struct tiny_model *m, kiln_dtype mtype, const char *path) {
    struct tiny_list ls = {.n = 0};
    tiny_gguf_tensors(m, &ls);
    kiln_status st = tiny_write_gguf_list(m, &ls, mtype, path, NULL, NULL);
    tiny_list_free(&ls);
    return st;
}

/* Replace every matrix of m by its round trip through `type` (what a
 * quantized file holds, as floats). */
static inline void tiny_round_trip(struct tiny_model *m, kiln_dtype type) {
    const struct tiny_cfg c = m->c;
    size_t D = (size_t)c.n_embd, F = (size_t)c.n_ff, hd = (size_t)m->head_dim;
    size_t nq = (size_t)c.n_head * hd, nkv = (size_t)c.n_head_kv * hd;
    struct tiny_mat { float *p; size_t n; } mats[8 * 64 + 2];
    int k = 0;
    mats[k++] = (struct tiny_mat){m->embd, TINY_VOCAB * D};
    if (m->output) mats[k++] = (struct tiny_mat){m->output, TINY_VOCAB * D};
    for (int l = 0; l < c.n_layer; l++) {
        struct tiny_layer *L = &m->L[l];
        mats[k++] = (struct tiny_mat){L->wq, nq * D};
        mats[k++] = (struct tiny_mat){L->wk, nkv * D};
        mats[k++] = (struct tiny_mat){L->wv, nkv * D};
        mats[k++] = (struct tiny_mat){L->wo, D * nq};
        mats[k++] = (struct tiny_mat){L->wg, F * D};
        mats[k++] = (struct tiny_mat){L->wu, F * D};
        mats[k++] = (struct tiny_mat){L->wd, D * F};
    }
    for (int i = 0; i < k; i++) {
        if (!mats[i].p) continue;
        void *q = malloc(kiln__tensor_bytes(type, mats[i].n));
        if (!q) abort();
        kiln__quantize(type, mats[i].p, q, mats[i].n);
        kiln__dequantize(type, q, mats[i].p, mats[i].n);
        free(q);
    }
}

/* ---- Hugging Face folder ---- */

static inline kiln_status tiny_write_hf(const struct tiny_model *m, const char *dir) {
    const struct tiny_cfg c = m->c;
    int64_t D = c.n_embd, F = c.n_ff, hd = m->head_dim;
    int64_t nq = c.n_head * hd, nkv = c.n_head_kv * hd;
    bool phi2 = c.arch == KILN_ARCH_PHI2, phi3 = c.arch == KILN_ARCH_PHI3;
    mkdir(dir, 0755);
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return KILN_ERR_IO;
    const char *type = phi2 ? "phi" : kiln_arch_name(c.arch);
    fprintf(f, "{\"model_type\": \"%s\", \"hidden_size\": %d, \"num_hidden_layers\": %d, "
               "\"intermediate_size\": %d, \"num_attention_heads\": %d, \"num_key_value_heads\": %d, "
               "\"max_position_embeddings\": %d, \"%s\": %.9g, \"rope_theta\": %.9g, "
               "\"tie_word_embeddings\": %s, \"vocab_size\": %d, \"eos_token_id\": %d",
            type, c.n_embd, c.n_layer, c.n_ff, c.n_head, c.n_head_kv, c.n_ctx_train,
            phi2 ? "layer_norm_eps" : "rms_norm_eps", (double)c.eps, (double)c.theta,
            c.tied ? "true" : "false", TINY_VOCAB, TINY_EOS);
    if (phi2) fprintf(f, ", \"partial_rotary_factor\": %.9g", (double)c.n_rot / (double)hd);
    if (c.sliding_window) fprintf(f, ", \"sliding_window\": %d", c.sliding_window);
    else if (c.arch == KILN_ARCH_MISTRAL || phi3) fprintf(f, ", \"sliding_window\": null");
    if (c.llama3_rope)
        fprintf(f, ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, "
                   "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 32}");
    fprintf(f, "}\n");
    if (fclose(f) != 0) return KILN_ERR_IO;

    struct tiny_list ls = {.n = 0};
    char n[128];
    tiny_add(&ls, "model.embed_tokens.weight", m->embd, TINY_VOCAB, D);
    for (int l = 0; l < c.n_layer; l++) {
        const struct tiny_layer *L = &m->L[l];
#define NM(fmt) (snprintf(n, sizeof n, "model.layers.%d." fmt, l), n)
        tiny_add(&ls, NM("input_layernorm.weight"), L->attn_norm, 0, D);
        tiny_add(&ls, NM("input_layernorm.bias"), L->attn_norm_b, 0, D);
        if (phi3) {
            float *w = tiny_concat(L->wq, (size_t)(nq * D), L->wk, (size_t)(nkv * D), L->wv, (size_t)(nkv * D));
            tiny_add(&ls, NM("self_attn.qkv_proj.weight"), w, nq + 2 * nkv, D);
            free(w);
            w = tiny_concat(L->wg, (size_t)(F * D), L->wu, (size_t)(F * D), NULL, 0);
            tiny_add(&ls, NM("mlp.gate_up_proj.weight"), w, 2 * F, D);
            free(w);
        } else {
            tiny_add(&ls, NM("self_attn.q_proj.weight"), L->wq, nq, D);
            tiny_add(&ls, NM("self_attn.k_proj.weight"), L->wk, nkv, D);
            tiny_add(&ls, NM("self_attn.v_proj.weight"), L->wv, nkv, D);
            tiny_add(&ls, NM("self_attn.q_proj.bias"), L->bq, 0, nq);
            tiny_add(&ls, NM("self_attn.k_proj.bias"), L->bk, 0, nkv);
            tiny_add(&ls, NM("self_attn.v_proj.bias"), L->bv, 0, nkv);
        }
        tiny_add(&ls, phi2 ? NM("self_attn.dense.weight") : NM("self_attn.o_proj.weight"), L->wo, D, nq);
        tiny_add(&ls, NM("self_attn.dense.bias"), L->bo, 0, D);
        tiny_add(&ls, NM("post_attention_layernorm.weight"), L->ffn_norm, 0, D);
        if (phi2) {
            tiny_add(&ls, NM("mlp.fc1.weight"), L->wu, F, D);
            tiny_add(&ls, NM("mlp.fc1.bias"), L->bu, 0, F);
            tiny_add(&ls, NM("mlp.fc2.weight"), L->wd, D, F);
            tiny_add(&ls, NM("mlp.fc2.bias"), L->bd, 0, D);
        } else {
            if (!phi3) {
                tiny_add(&ls, NM("mlp.gate_proj.weight"), L->wg, F, D);
                tiny_add(&ls, NM("mlp.up_proj.weight"), L->wu, F, D);
            }
            tiny_add(&ls, NM("mlp.down_proj.weight"), L->wd, D, F);
        }
#undef NM
    }
    tiny_add(&ls, phi2 ? "model.final_layernorm.weight" : "model.norm.weight", m->out_norm, 0, D);
    tiny_add(&ls, "model.final_layernorm.bias", m->out_norm_b, 0, D);
    tiny_add(&ls, "lm_head.weight", m->output, TINY_VOCAB, D);
    tiny_add(&ls, "lm_head.bias", m->output_b, 0, TINY_VOCAB);

    struct kiln_st_write_tensor wt[256];
    for (int i = 0; i < ls.n; i++) {
        struct tiny_tensor *t = &ls.t[i];
        size_t cnt = (size_t)t->shape[0] * (size_t)(t->n_dims == 2 ? t->shape[1] : 1);
        wt[i] = (struct kiln_st_write_tensor){t->name, KILN_DTYPE_F32, t->n_dims, t->shape, t->data,
                                              cnt * sizeof(float)};
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    kiln_status st = kiln__safetensors_write(path, wt, (size_t)ls.n, NULL, 0);
    tiny_list_free(&ls);
    return st;
}

/* ---- the reference forward pass (double precision, HF semantics) ---- */

/* y[o] = sum_i w[o][i] x[i] (+ b[o]). */
static inline void ref_linear(double *y, const float *w, const float *b, const double *x, int n_out, int n_in) {
    for (int o = 0; o < n_out; o++) {
        double s = b ? b[o] : 0.0;
        for (int i = 0; i < n_in; i++) s += (double)w[(size_t)o * n_in + i] * x[i];
        y[o] = s;
    }
}

static inline void ref_norm(double *y, const double *x, const float *w, const float *b, int n, float eps,
                     bool layer) {
    double mean = 0.0, var = 0.0;
    if (layer) {
        for (int i = 0; i < n; i++) mean += x[i];
        mean /= n;
    }
    for (int i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= n;
    double inv = 1.0 / sqrt(var + eps);
    for (int i = 0; i < n; i++) y[i] = (x[i] - mean) * inv * w[i] + (b ? b[i] : 0.0);
}

/* rotate_half rope on the first n_rot values of each head. */
static inline void ref_rope(double *v, int n_heads, int hd, int n_rot, int pos, const struct tiny_model *m) {
    int half = n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        double *x = v + (size_t)h * hd;
        for (int i = 0; i < half; i++) {
            double inv = 1.0 / pow(m->c.theta, (double)(2 * i) / n_rot);
            if (m->c.llama3_rope) inv /= m->rope_ff[i];
            double a = pos * inv, c = cos(a), s = sin(a);
            double x0 = x[i], x1 = x[i + half];
            x[i] = x0 * c - x1 * s;
            x[i + half] = x1 * c + x0 * s;
        }
    }
}

/* Logits [n][TINY_VOCAB] of tokens at positions 0..n-1. */
static inline double *tiny_ref_logits(const struct tiny_model *m, const int32_t *tok, int n) {
    const struct tiny_cfg c = m->c;
    int D = c.n_embd, F = c.n_ff, hd = m->head_dim, H = c.n_head, HK = c.n_head_kv;
    bool phi2 = tiny_is_phi2(m);
    size_t nq = (size_t)H * hd, nkv = (size_t)HK * hd;
    double *x = calloc((size_t)n * D, sizeof *x), *h = malloc((size_t)D * sizeof *h);
    double *q = malloc((size_t)n * nq * sizeof *q), *k = malloc((size_t)n * nkv * sizeof *k);
    double *v = malloc((size_t)n * nkv * sizeof *v), *att = malloc(nq * sizeof *att);
    double *o = malloc((size_t)D * sizeof *o), *g = malloc((size_t)F * sizeof *g);
    double *u = malloc((size_t)F * sizeof *u), *f = malloc((size_t)D * sizeof *f);
    double *sc = malloc((size_t)n * sizeof *sc);
    double *hn = malloc((size_t)n * D * sizeof *hn);
    double *logits = malloc((size_t)n * TINY_VOCAB * sizeof *logits);
    if (!x || !h || !q || !k || !v || !att || !o || !g || !u || !f || !sc || !hn || !logits) abort();
    for (int t = 0; t < n; t++)
        for (int i = 0; i < D; i++) x[(size_t)t * D + i] = m->embd[(size_t)tok[t] * D + i];
    for (int l = 0; l < c.n_layer; l++) {
        const struct tiny_layer *L = &m->L[l];
        for (int t = 0; t < n; t++) {
            double *ht = hn + (size_t)t * D;
            ref_norm(ht, x + (size_t)t * D, L->attn_norm, L->attn_norm_b, D, c.eps, phi2);
            ref_linear(q + t * nq, L->wq, L->bq, ht, (int)nq, D);
            ref_linear(k + t * nkv, L->wk, L->bk, ht, (int)nkv, D);
            ref_linear(v + t * nkv, L->wv, L->bv, ht, (int)nkv, D);
            ref_rope(q + t * nq, H, hd, c.n_rot, t, m);
            ref_rope(k + t * nkv, HK, hd, c.n_rot, t, m);
        }
        for (int t = 0; t < n; t++) {
            for (int hh = 0; hh < H; hh++) {
                int kvh = hh / (H / HK);
                int first = c.sliding_window && t - c.sliding_window + 1 > 0 ? t - c.sliding_window + 1 : 0;
                double mx = -1e300, sum = 0.0;
                for (int j = first; j <= t; j++) {
                    double d = 0.0;
                    for (int i = 0; i < hd; i++) d += q[t * nq + hh * hd + i] * k[j * nkv + kvh * hd + i];
                    sc[j] = d / sqrt((double)hd);
                    if (sc[j] > mx) mx = sc[j];
                }
                for (int j = first; j <= t; j++) sum += (sc[j] = exp(sc[j] - mx));
                for (int i = 0; i < hd; i++) {
                    double a = 0.0;
                    for (int j = first; j <= t; j++) a += sc[j] / sum * v[j * nkv + kvh * hd + i];
                    att[hh * hd + i] = a;
                }
            }
            ref_linear(o, L->wo, L->bo, att, D, (int)nq);
            double *ht = hn + (size_t)t * D, *xt = x + (size_t)t * D;
            if (phi2) {
                ref_linear(u, L->wu, L->bu, ht, F, D);
                for (int i = 0; i < F; i++)
                    u[i] = 0.5 * u[i] * (1.0 + tanh(0.7978845608028654 * (u[i] + 0.044715 * u[i] * u[i] * u[i])));
                ref_linear(f, L->wd, L->bd, u, D, F);
                for (int i = 0; i < D; i++) f[i] += o[i];
            } else {
                for (int i = 0; i < D; i++) xt[i] += o[i];
                ref_norm(h, xt, L->ffn_norm, NULL, D, c.eps, false);
                ref_linear(g, L->wg, NULL, h, F, D);
                ref_linear(u, L->wu, NULL, h, F, D);
                for (int i = 0; i < F; i++) g[i] = g[i] / (1.0 + exp(-g[i])) * u[i];
                ref_linear(f, L->wd, NULL, g, D, F);
            }
            for (int i = 0; i < D; i++) xt[i] += f[i];
        }
    }
    for (int t = 0; t < n; t++) {
        ref_norm(h, x + (size_t)t * D, m->out_norm, m->out_norm_b, D, c.eps, phi2);
        ref_linear(logits + (size_t)t * TINY_VOCAB, m->output ? m->output : m->embd, m->output_b, h,
                   TINY_VOCAB, D);
    }
    free(x); free(h); free(q); free(k); free(v); free(att); free(o); free(g); free(u); free(f);
    free(sc); free(hn);
    return logits;
}

/* max |a - b| / max |b| over n values. */
static inline double tiny_rel_err(const float *a, const double *b, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > num || d != d) num = d;
        if (fabs(b[i]) > den) den = fabs(b[i]);
    }
    return den > 0.0 ? num / den : num;
}

/* The same between two float arrays. */
static inline double tiny_rel_err_f(const float *a, const float *b, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > num || d != d) num = d;
        if (fabs((double)b[i]) > den) den = fabs((double)b[i]);
    }
    return den > 0.0 ? num / den : num;
}

#endif /* KILN_TESTS_LLM_TINY_H */
