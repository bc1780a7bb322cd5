/* src/image/clip_text.c - the CLIP text transformer of Stable Diffusion
 * (see clip_text.h): binding transformers' CLIPTextModel tensors and the
 * forward pass. */
#include "image/clip_text.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "formats/json_util.h"
#include "image/sd_weights.h"
#include "kernels/image_ops.h"
#include "kernels/ops.h"
#include "tensor/dequant.h"
#include "tensor/tensor.h"

/* One pre-LayerNorm transformer layer. */
struct clip_layer {
    struct kiln_sd_norm ln1, ln2;         /* before attention, before the MLP */
    struct kiln_sd_linear q, k, v, o;     /* attention projections (with biases) */
    struct kiln_sd_linear fc1, fc2;       /* MLP */
};

struct kiln_clip_text {
    struct kiln_clip_text_opts opts; /* heads, activation, epsilon */
    int width;                       /* hidden size */
    int ffn;                         /* MLP inner size */
    int n_layers;                    /* transformer layers */
    int n_vocab;                     /* token embedding rows */
    int n_pos;                       /* position embedding rows (77) */
    int openclip;                    /* OpenCLIP names (ldm SD 2.x files) instead of transformers' */
    const struct kiln_tensor *tok;   /* token embedding [n_vocab][width] (borrowed) */
    float *pos;                      /* position embedding [n_pos][width] */
    struct clip_layer *layers;       /* n_layers layers */
    struct kiln_sd_norm final_ln;    /* final LayerNorm */
};

kiln_status kiln__clip_text_opts_json(const char *config_path, struct kiln_clip_text_opts *out) {
    out->n_heads = 12;
    out->gelu = 0;
    out->ln_eps = 1e-5f;
    json_t *cfg = NULL;
    kiln_status st = kiln__json_load_file(config_path, 0, &cfg);
    if (st != KILN_OK) return st;
    int64_t heads = 0;
    double eps = 0.0;
    const char *act = NULL;
    st = kiln__json_get_int(cfg, "num_attention_heads", 12, &heads);
    if (st == KILN_OK) st = kiln__json_get_real(cfg, "layer_norm_eps", 1e-5, &eps);
    if (st == KILN_OK) st = kiln__json_get_string(cfg, "hidden_act", "quick_gelu", &act);
    if (st == KILN_OK && (heads < 1 || heads > 1024))
        st = kiln__fail(KILN_ERR_FORMAT, "%s: num_attention_heads %lld out of range", config_path,
                        (long long)heads);
    if (st == KILN_OK && strcmp(act, "quick_gelu") != 0 && strcmp(act, "gelu") != 0)
        st = kiln__fail(KILN_ERR_UNSUPPORTED, "%s: hidden_act \"%s\" (quick_gelu or gelu expected)",
                        config_path, act);
    if (st == KILN_OK) {
        out->n_heads = (int)heads;
        out->gelu = strcmp(act, "gelu") == 0;
        out->ln_eps = (float)eps;
    }
    json_decref(cfg);
    return st;
}

static void layer_free(struct clip_layer *l) {
    kiln__sd_norm_free(&l->ln1);
    kiln__sd_norm_free(&l->ln2);
    kiln__sd_linear_free(&l->q);
    kiln__sd_linear_free(&l->k);
    kiln__sd_linear_free(&l->v);
    kiln__sd_linear_free(&l->o);
    kiln__sd_linear_free(&l->fc1);
    kiln__sd_linear_free(&l->fc2);
}

void kiln__clip_text_free(struct kiln_clip_text *m) {
    if (!m) return;
    if (m->layers)
        for (int i = 0; i < m->n_layers; i++) layer_free(&m->layers[i]);
    free(m->layers);
    free(m->pos);
    kiln__sd_norm_free(&m->final_ln);
    free(m);
}

/* Parameter names of the two layouts: transformers' CLIPTextModel and
 * OpenCLIP's (whose attention q, k, v are one fused in_proj). */
struct clip_names {
    const char *tok, *pos, *layer, *final_ln;        /* embeddings, layer prefix format, final norm */
    const char *ln1, *ln2, *out, *fc1, *fc2;         /* parts of a layer */
};
static const struct clip_names hf_names = {
    "text_model.embeddings.token_embedding.weight", "text_model.embeddings.position_embedding.weight",
    "text_model.encoder.layers.%d.", "text_model.final_layer_norm",
    "layer_norm1", "layer_norm2", "self_attn.out_proj", "mlp.fc1", "mlp.fc2"};
static const struct clip_names openclip_names = {
    "token_embedding.weight", "positional_embedding", "transformer.resblocks.%d.", "ln_final",
    "ln_1", "ln_2", "attn.out_proj", "mlp.c_fc", "mlp.c_proj"};

/* Bind layer i. */
static kiln_status layer_load(const struct kiln_sd_binder *b, struct kiln_clip_text *m, int i) {
    const struct clip_names *nm = m->openclip ? &openclip_names : &hf_names;
    struct clip_layer *l = &m->layers[i];
    char pre[64], name[128];
    snprintf(pre, sizeof pre, nm->layer, i);
    int d = m->width;
    kiln_status st;
#define LAYER_NAME(part) (snprintf(name, sizeof name, "%s%s", pre, part), name)
    if ((st = kiln__sd_norm(b, LAYER_NAME(nm->ln1), d, &l->ln1)) != KILN_OK) return st;
    if ((st = kiln__sd_norm(b, LAYER_NAME(nm->ln2), d, &l->ln2)) != KILN_OK) return st;
    if (m->openclip) {
        LAYER_NAME("attn.in_proj");
        if ((st = kiln__sd_linear_part(b, name, 0, 3, d, &l->q)) != KILN_OK) return st;
        if ((st = kiln__sd_linear_part(b, name, 1, 3, d, &l->k)) != KILN_OK) return st;
        if ((st = kiln__sd_linear_part(b, name, 2, 3, d, &l->v)) != KILN_OK) return st;
    } else {
        if ((st = kiln__sd_linear(b, LAYER_NAME("self_attn.q_proj"), d, d, 1, &l->q)) != KILN_OK) return st;
        if ((st = kiln__sd_linear(b, LAYER_NAME("self_attn.k_proj"), d, d, 1, &l->k)) != KILN_OK) return st;
        if ((st = kiln__sd_linear(b, LAYER_NAME("self_attn.v_proj"), d, d, 1, &l->v)) != KILN_OK) return st;
    }
    if ((st = kiln__sd_linear(b, LAYER_NAME(nm->out), d, d, 1, &l->o)) != KILN_OK) return st;
    if ((st = kiln__sd_linear(b, LAYER_NAME(nm->fc1), d, 0, 1, &l->fc1)) != KILN_OK) return st;
    if (i == 0) m->ffn = (int)l->fc1.w.n_out;
    if ((int)l->fc1.w.n_out != m->ffn)
        return kiln__fail(KILN_ERR_FORMAT, "clip: layer %d MLP width differs from layer 0's", i);
    return kiln__sd_linear(b, LAYER_NAME(nm->fc2), m->ffn, d, 1, &l->fc2);
#undef LAYER_NAME
}

kiln_status kiln__clip_text_load(const struct kiln_weights *w, const char *prefix,
                                 const struct kiln_clip_text_opts *opts,
                                 struct kiln_clip_text **out) {
    *out = NULL;
    struct kiln_sd_binder b = {w, prefix, KILN_SD_NAMES_DIFFUSERS, 0};
    const struct clip_names *nm = &hf_names;
    const struct kiln_tensor *tok = kiln__sd_find(&b, "%s", nm->tok);
    if (!tok) {
        nm = &openclip_names;
        tok = kiln__sd_find(&b, "%s", nm->tok);
    }
    const struct kiln_tensor *pos = kiln__sd_find(&b, "%s", nm->pos);
    if (!tok || !pos)
        return kiln__fail(KILN_ERR_FORMAT, "clip: no CLIP text encoder embeddings under \"%s\"", prefix);
    if (tok->n_dims != 2 || pos->n_dims != 2 || tok->shape[1] != pos->shape[1] ||
        tok->shape[1] < 1 || tok->shape[1] > 65536 || tok->shape[0] > (1 << 24) || pos->shape[0] > 4096)
        return kiln__fail(KILN_ERR_FORMAT, "clip: embedding shapes do not match");
    if (opts->n_heads < 1 || tok->shape[1] % opts->n_heads != 0)
        return kiln__fail(KILN_ERR_INVALID_ARG, "clip: %d heads do not divide width %lld",
                          opts->n_heads, (long long)tok->shape[1]);
    if (kiln__tensor_bytes(tok->dtype, (size_t)tok->shape[1]) == 0)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "clip: token embedding type %s", kiln_dtype_name(tok->dtype));
    struct kiln_clip_text *m = calloc(1, sizeof *m);
    if (!m) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "clip: out of memory");
    m->opts = *opts;
    m->width = (int)tok->shape[1];
    m->n_vocab = (int)tok->shape[0];
    m->n_pos = (int)pos->shape[0];
    m->tok = tok;
    m->openclip = nm == &openclip_names;
    char probe[128];
    for (;;) {
        int n = snprintf(probe, sizeof probe, nm->layer, m->n_layers);
        snprintf(probe + n, sizeof probe - (size_t)n, "%s.weight", nm->ln1);
        if (!kiln__sd_find(&b, "%s", probe)) break;
        m->n_layers++;
    }
    kiln_status st = KILN_OK;
    if (m->n_layers == 0) st = kiln__fail(KILN_ERR_FORMAT, "clip: no encoder layers under \"%s\"", prefix);
    if (st == KILN_OK) st = kiln__sd_copy_f32(pos, pos->n_elems, &m->pos);
    if (st == KILN_OK && !(m->layers = calloc((size_t)m->n_layers, sizeof *m->layers)))
        st = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "clip: out of memory");
    for (int i = 0; st == KILN_OK && i < m->n_layers; i++) st = layer_load(&b, m, i);
    if (st == KILN_OK) st = kiln__sd_norm(&b, nm->final_ln, m->width, &m->final_ln);
    if (st != KILN_OK) {
        kiln__clip_text_free(m);
        return st;
    }
    *out = m;
    return KILN_OK;
}

int kiln__clip_text_width(const struct kiln_clip_text *m) { return m->width; }
int kiln__clip_text_layers(const struct kiln_clip_text *m) { return m->n_layers; }
int kiln__clip_text_max_tokens(const struct kiln_clip_text *m) { return m->n_pos; }

/* Working buffers of one encode. */
struct clip_bufs {
    float *h;        /* normalized rows [n][width] */
    float *q, *k, *v; /* projections [n][width] */
    float *a;        /* attention output [n][width] */
    float *f;        /* MLP inner [n][ffn] */
    float *scratch;  /* matmul scratch */
};

/* x += layer(x) for the n rows of x. */
static kiln_status layer_run(const struct kiln_clip_text *m, const struct clip_layer *l, kiln_pool *pool,
                             float *x, int n, struct clip_bufs *s) {
    size_t d = (size_t)m->width, nn = (size_t)n;
    kiln_status st;
    for (size_t t = 0; t < nn; t++)
        kiln__layernorm(s->h + t * d, x + t * d, l->ln1.w, l->ln1.b, d, m->opts.ln_eps);
    if ((st = kiln__sd_linear_apply(pool, &l->q, s->h, nn, s->q, s->scratch)) != KILN_OK) return st;
    if ((st = kiln__sd_linear_apply(pool, &l->k, s->h, nn, s->k, s->scratch)) != KILN_OK) return st;
    if ((st = kiln__sd_linear_apply(pool, &l->v, s->h, nn, s->v, s->scratch)) != KILN_OK) return st;
    st = kiln__mha(pool, s->a, d, s->q, d, s->k, s->v, d, n, n, m->opts.n_heads,
                   m->width / m->opts.n_heads, 1);
    if (st != KILN_OK) return st;
    if ((st = kiln__sd_linear_apply(pool, &l->o, s->a, nn, s->h, s->scratch)) != KILN_OK) return st;
    for (size_t i = 0; i < nn * d; i++) x[i] += s->h[i];
    for (size_t t = 0; t < nn; t++)
        kiln__layernorm(s->h + t * d, x + t * d, l->ln2.w, l->ln2.b, d, m->opts.ln_eps);
    if ((st = kiln__sd_linear_apply(pool, &l->fc1, s->h, nn, s->f, s->scratch)) != KILN_OK) return st;
    size_t nf = nn * (size_t)m->ffn;
    if (m->opts.gelu)
        kiln__gelu_erf(s->f, nf);
    else
        kiln__quick_gelu(s->f, nf);
    if ((st = kiln__sd_linear_apply(pool, &l->fc2, s->f, nn, s->h, s->scratch)) != KILN_OK) return st;
    for (size_t i = 0; i < nn * d; i++) x[i] += s->h[i];
    return KILN_OK;
}

kiln_status kiln__clip_text_encode(const struct kiln_clip_text *m, kiln_pool *pool,
                                   const int32_t *ids, int n_tokens, int clip_skip, float *out) {
    if (n_tokens < 1 || n_tokens > m->n_pos)
        return kiln__fail(KILN_ERR_INVALID_ARG, "clip: %d tokens (1..%d allowed)", n_tokens, m->n_pos);
    if (clip_skip < 1 || clip_skip > m->n_layers)
        return kiln__fail(KILN_ERR_INVALID_ARG, "clip: clip skip %d (1..%d allowed)", clip_skip, m->n_layers);
    for (int i = 0; i < n_tokens; i++)
        if (ids[i] < 0 || ids[i] >= m->n_vocab)
            return kiln__fail(KILN_ERR_INVALID_ARG, "clip: token id %d outside the vocabulary of %d",
                              (int)ids[i], m->n_vocab);
    size_t d = (size_t)m->width, n = (size_t)n_tokens;
    size_t widest = (size_t)(m->ffn > m->width ? m->ffn : m->width);
    struct clip_bufs s = {0};
    float *x = malloc(n * d * sizeof *x);
    s.h = malloc(n * d * sizeof *s.h);
    s.q = malloc(n * d * sizeof *s.q);
    s.k = malloc(n * d * sizeof *s.k);
    s.v = malloc(n * d * sizeof *s.v);
    s.a = malloc(n * d * sizeof *s.a);
    s.f = malloc(n * (size_t)m->ffn * sizeof *s.f);
    s.scratch = malloc((size_t)kiln__pool_size(pool) * widest * sizeof *s.scratch);
    kiln_status st = KILN_OK;
    if (!x || !s.h || !s.q || !s.k || !s.v || !s.a || !s.f || !s.scratch)
        st = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "clip: out of memory");
    /* Token rows decoded from their stored type, plus positions. */
    size_t row_bytes = kiln__tensor_bytes(m->tok->dtype, d);
    for (size_t t = 0; st == KILN_OK && t < n; t++) {
        st = kiln__dequantize(m->tok->dtype, (const char *)m->tok->data + (size_t)ids[t] * row_bytes,
                              x + t * d, d);
        for (size_t i = 0; st == KILN_OK && i < d; i++) x[t * d + i] += m->pos[t * d + i];
    }
    int run = m->n_layers - (clip_skip - 1);
    for (int l = 0; st == KILN_OK && l < run; l++) st = layer_run(m, &m->layers[l], pool, x, n_tokens, &s);
    if (st == KILN_OK)
        for (size_t t = 0; t < n; t++)
            kiln__layernorm(out + t * d, x + t * d, m->final_ln.w, m->final_ln.b, d, m->opts.ln_eps);
    free(x);
    free(s.h);
    free(s.q);
    free(s.k);
    free(s.v);
    free(s.a);
    free(s.f);
    free(s.scratch);
    return st;
}
