/* src/formats/model_report.c - gather and print `kiln info`'s description. */
#include "formats/model_report.h"

#include <string.h>

#include "formats/json_util.h"
#include "kiln/kiln.h"

/* An LLM hyperparameter: the report's name, the GGUF key under
 * "<general.architecture>.", and the config.json key. */
static const struct hparam {
    const char *name;       /* key in the report */
    const char *gguf_key;   /* suffix after "<arch>." in GGUF metadata */
    const char *config_key; /* Hugging Face config.json key */
    int is_float;           /* a real number rather than an integer */
} hparams[] = {
    {"context_length", "context_length", "max_position_embeddings", 0},
    {"embedding_length", "embedding_length", "hidden_size", 0},
    {"block_count", "block_count", "num_hidden_layers", 0},
    {"feed_forward_length", "feed_forward_length", "intermediate_size", 0},
    {"head_count", "attention.head_count", "num_attention_heads", 0},
    {"head_count_kv", "attention.head_count_kv", "num_key_value_heads", 0},
    {"vocab_size", "vocab_size", "vocab_size", 0},
    {"rope_freq_base", "rope.freq_base", "rope_theta", 1},
    {"rope_dimension_count", "rope.dimension_count", NULL, 0},
    {"norm_rms_eps", "attention.layer_norm_rms_epsilon", "rms_norm_eps", 1},
    {"norm_eps", "attention.layer_norm_epsilon", "layer_norm_eps", 1},
    {"sliding_window", NULL, "sliding_window", 0},
};

static const char *format_name(const struct kiln_weights *w) {
    switch (w->path.kind) {
    case KILN_MODEL_GGUF: return "gguf";
    case KILN_MODEL_SAFETENSORS: return "safetensors";
    case KILN_MODEL_HF_LLM: return "huggingface-folder";
    case KILN_MODEL_DIFFUSERS: return "diffusers-folder";
    }
    return "unknown";
}

/* Hyperparameters from GGUF metadata "<arch>.<key>". */
static void gguf_hparams(const struct kiln_gguf *g, const char *arch, json_t *out) {
    char key[256];
    for (size_t i = 0; i < sizeof hparams / sizeof hparams[0]; i++) {
        if (!hparams[i].gguf_key) continue;
        snprintf(key, sizeof key, "%s.%s", arch, hparams[i].gguf_key);
        if (!kiln__gguf_find_kv(g, key)) continue;
        int64_t iv;
        double fv;
        if (hparams[i].is_float ? kiln__gguf_get_f64(g, key, &fv) : kiln__gguf_get_i64(g, key, &iv))
            json_object_set_new(out, hparams[i].name, hparams[i].is_float ? json_real(fv) : json_integer(iv));
    }
}

/* Hyperparameters from config.json (present keys only). */
static void config_hparams(const json_t *config, json_t *out) {
    for (size_t i = 0; i < sizeof hparams / sizeof hparams[0]; i++) {
        if (!hparams[i].config_key) continue;
        const json_t *v = json_object_get(config, hparams[i].config_key);
        if (json_is_number(v)) json_object_set(out, hparams[i].name, (json_t *)v);
    }
}

/* Tokenizer facts from GGUF metadata: model kind, pre-tokenizer, size. */
static json_t *gguf_tokenizer(const struct kiln_gguf *g) {
    const char *s;
    size_t len;
    if (!kiln__gguf_find_kv(g, "tokenizer.ggml.model") || !kiln__gguf_get_str(g, "tokenizer.ggml.model", &s, &len))
        return NULL;
    json_t *tok = json_object();
    json_object_set_new(tok, "model", json_stringn(s, len));
    if (kiln__gguf_find_kv(g, "tokenizer.ggml.pre") && kiln__gguf_get_str(g, "tokenizer.ggml.pre", &s, &len))
        json_object_set_new(tok, "pre", json_stringn(s, len));
    const struct kiln_gguf_arr *tokens = kiln__gguf_find_kv(g, "tokenizer.ggml.tokens")
                                             ? kiln__gguf_get_arr(g, "tokenizer.ggml.tokens") : NULL;
    if (tokens) json_object_set_new(tok, "tokens", json_integer((json_int_t)tokens->count));
    const struct kiln_gguf_arr *merges = kiln__gguf_find_kv(g, "tokenizer.ggml.merges")
                                             ? kiln__gguf_get_arr(g, "tokenizer.ggml.merges") : NULL;
    if (merges) json_object_set_new(tok, "merges", json_integer((json_int_t)merges->count));
    json_object_set_new(tok, "chat_template",
                        json_boolean(kiln__gguf_find_kv(g, "tokenizer.chat_template") != NULL));
    return tok;
}

/* A single file's derived SD architecture (sd_detect.h) as a JSON object. */
static json_t *sd_arch_json(const struct kiln_sd_arch *a) {
    json_t *o = json_object(), *ch = json_array(), *heads = json_array(), *attn = json_array();
    if (!o || !ch || !heads || !attn) {
        json_decref(o), json_decref(ch), json_decref(heads), json_decref(attn);
        return NULL;
    }
    for (int l = 0; l < a->levels; l++) {
        json_array_append_new(ch, json_integer(a->channels[l]));
        json_array_append_new(heads, json_integer(a->heads[l]));
        json_array_append_new(attn, json_boolean(a->attn_levels >> l & 1u));
    }
    json_object_set_new(o, "family", json_string(a->family == 1 ? "sd1" : "sd2"));
    if (a->text_width) {
        json_object_set_new(o, "text_width", json_integer(a->text_width));
        json_object_set_new(o, "text_layers", json_integer(a->text_layers));
        json_object_set_new(o, "text_heads", json_integer(a->text_heads));
    }
    json_object_set_new(o, "unet_in_channels", json_integer(a->in_channels));
    json_object_set_new(o, "unet_context_dim", json_integer(a->context_dim));
    json_object_set_new(o, "unet_channels", ch);
    json_object_set_new(o, "unet_attention", attn);
    json_object_set_new(o, "unet_heads", heads);
    json_object_set_new(o, "unet_resnets_per_level", json_integer(a->resnets));
    json_object_set_new(o, "unet_transformer_depth", json_integer(a->depth));
    json_object_set_new(o, "unet_groups", json_integer(a->unet_groups));
    if (a->vae_width) {
        json_object_set_new(o, "vae_width", json_integer(a->vae_width));
        json_object_set_new(o, "vae_groups", json_integer(a->vae_groups));
    }
    return o;
}

/* Family, variant and hyperparameters. */
static void describe_model(const struct kiln_weights *w, json_t *r) {
    const struct kiln_gguf *g = kiln__weights_gguf(w);
    kiln_arch arch = KILN_ARCH_UNKNOWN;
    json_t *hp = json_object();
    const char *s;
    size_t len;
    if (g && kiln__gguf_find_kv(g, "general.architecture") &&
        kiln__gguf_get_str(g, "general.architecture", &s, &len)) {
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(len < 127 ? len : 127), s);
        arch = kiln_arch_from_name(name);
        if (arch == KILN_ARCH_UNKNOWN) json_object_set_new(r, "file_architecture", json_string(name));
        gguf_hparams(g, name, hp);
        if (kiln__gguf_find_kv(g, "general.name") && kiln__gguf_get_str(g, "general.name", &s, &len))
            json_object_set_new(r, "name", json_stringn(s, len));
        json_t *tok = gguf_tokenizer(g);
        if (tok) json_object_set_new(r, "tokenizer", tok);
    } else if (w->path.kind == KILN_MODEL_HF_LLM) {
        arch = w->path.arch;
        if (arch == KILN_ARCH_UNKNOWN && w->path.model_type)
            json_object_set_new(r, "file_architecture", json_string(w->path.model_type));
        config_hparams(w->path.config, hp);
        if (w->path.tokenizer_path) json_object_set_new(r, "tokenizer_file", json_string(w->path.tokenizer_path));
    }
    kiln_variant variant = w->path.sd.variant;
    if (arch == KILN_ARCH_UNKNOWN && variant != KILN_VARIANT_UNKNOWN) arch = kiln_variant_family(variant);
    json_object_set_new(r, "architecture", json_string(kiln_arch_name(arch)));
    json_object_set_new(r, "worker", json_string(arch == KILN_ARCH_UNKNOWN ? "none"
                                                  : kiln_arch_worker(arch) == KILN_WORKER_LLM ? "llm" : "image"));
    if (variant != KILN_VARIANT_UNKNOWN) {
        json_object_set_new(r, "variant", json_string(kiln_variant_name(variant)));
        json_object_set_new(r, "layout", json_string(w->path.sd.layout));
        if (w->path.sd.unet_in_channels) json_object_set_new(r, "unet_in_channels", json_integer(w->path.sd.unet_in_channels));
        if (w->path.sd.context_dim) json_object_set_new(r, "text_context_dim", json_integer(w->path.sd.context_dim));
        if (w->path.sd.note) json_object_set_new(r, "note", json_string(w->path.sd.note));
        if (w->path.sd.arch.family) json_object_set_new(r, "derived", sd_arch_json(&w->path.sd.arch));
    }
    if (arch == KILN_ARCH_UNKNOWN && !json_object_get(r, "note"))
        json_object_set_new(r, "note", json_string("not a model architecture kiln supports"));
    if (json_object_size(hp)) json_object_set_new(r, "hyperparameters", hp);
    else json_decref(hp);
}

/* Tensor, parameter and byte counts, per dtype too. */
static void describe_tensors(const struct kiln_weights *w, json_t *r) {
    size_t count[KILN_DTYPE_UNKNOWN + 1] = {0};
    uint64_t bytes[KILN_DTYPE_UNKNOWN + 1] = {0};
    uint64_t params = 0, total = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const struct kiln_tensor *t = &w->tensors[i];
        unsigned d = (unsigned)t->dtype <= KILN_DTYPE_UNKNOWN ? (unsigned)t->dtype : KILN_DTYPE_UNKNOWN;
        count[d]++;
        bytes[d] += t->nbytes;
        params += (uint64_t)t->n_elems;
        total += t->nbytes;
    }
    json_object_set_new(r, "contents", json_string(w->n_tensors ? "weights" : "vocabulary only"));
    json_object_set_new(r, "tensors", json_integer((json_int_t)w->n_tensors));
    json_object_set_new(r, "parameters", json_integer((json_int_t)params));
    json_object_set_new(r, "tensor_bytes", json_integer((json_int_t)total));
    json_t *by = json_object();
    for (int d = 0; d <= KILN_DTYPE_UNKNOWN; d++) {
        if (!count[d]) continue;
        json_t *e = json_object();
        json_object_set_new(e, "tensors", json_integer((json_int_t)count[d]));
        json_object_set_new(e, "bytes", json_integer((json_int_t)bytes[d]));
        json_object_set_new(by, kiln_dtype_name((kiln_dtype)d), e);
    }
    json_object_set_new(r, "dtypes", by);
}

/* Bytes of every weight file opened. */
static uint64_t file_bytes(const struct kiln_weights *w) {
    uint64_t sum = 0;
    for (size_t i = 0; i < w->n_sources; i++) {
        const struct kiln_weight_source *s = &w->sources[i];
        if (s->gguf) sum += s->gguf->size;
        for (size_t j = 0; s->st && j < s->st->n_shards; j++)
            sum += 8 + s->st->shards[j]->header_size + s->st->shards[j]->data_size;
    }
    return sum;
}

json_t *kiln__model_report(const struct kiln_weights *w) {
    json_t *r = json_object();
    if (!r) return NULL;
    json_object_set_new(r, "path", json_string(w->path.path));
    json_object_set_new(r, "format", json_string(format_name(w)));
    const struct kiln_gguf *g = kiln__weights_gguf(w);
    if (g) {
        json_object_set_new(r, "gguf_version", json_integer(g->version));
        json_object_set_new(r, "metadata_keys", json_integer((json_int_t)g->n_kv));
    }
    if (w->path.kind == KILN_MODEL_DIFFUSERS && w->path.pipeline_class)
        json_object_set_new(r, "pipeline", json_string(w->path.pipeline_class));
    describe_model(w, r);
    describe_tensors(w, r);
    json_object_set_new(r, "file_bytes", json_integer((json_int_t)file_bytes(w)));
    return r;
}

/* Print a byte count with a binary unit. */
static void print_bytes(FILE *out, json_int_t b) {
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024.0 && u < 4) { v /= 1024.0; u++; }
    if (u == 0) fprintf(out, "%lld B", (long long)b);
    else fprintf(out, "%.2f %s (%lld bytes)", v, units[u], (long long)b);
}

static void print_value(FILE *out, const json_t *v) {
    if (json_is_string(v)) fputs(json_string_value(v), out);
    else if (json_is_integer(v)) fprintf(out, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v)) fprintf(out, "%g", json_real_value(v));
    else if (json_is_boolean(v)) fputs(json_is_true(v) ? "yes" : "no", out);
    else if (json_is_array(v)) {
        /* A list of scalars (the derived per-level shapes): "8, 16". */
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) fputs(", ", out);
            print_value(out, json_array_get(v, i));
        }
    }
}

void kiln__model_report_print(const json_t *r, FILE *out) {
    /* Scalar fields in a fixed order; objects get their own blocks below. */
    static const char *const order[] = {"path", "format", "gguf_version", "metadata_keys", "name",
                                        "pipeline", "architecture", "file_architecture", "worker",
                                        "variant", "layout", "unet_in_channels", "text_context_dim",
                                        "note", "tokenizer_file", "contents", "tensors", "parameters"};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const json_t *v = json_object_get(r, order[i]);
        if (!v) continue;
        fprintf(out, "%-18s ", order[i]);
        print_value(out, v);
        fputc('\n', out);
    }
    const char *blocks[] = {"hyperparameters", "tokenizer", "derived"};
    for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
        const json_t *obj = json_object_get(r, blocks[b]);
        if (!obj) continue;
        fprintf(out, "%s:\n", blocks[b]);
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)obj, k, v) {
            fprintf(out, "  %-24s ", k);
            print_value(out, v);
            fputc('\n', out);
        }
    }
    fprintf(out, "%-18s ", "tensor bytes");
    print_bytes(out, json_integer_value(json_object_get(r, "tensor_bytes")));
    fputc('\n', out);
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)json_object_get(r, "dtypes"), k, v) {
        fprintf(out, "  %-10s %6lld tensors  ", k, (long long)json_integer_value(json_object_get(v, "tensors")));
        print_bytes(out, json_integer_value(json_object_get(v, "bytes")));
        fputc('\n', out);
    }
    fprintf(out, "%-18s ", "file bytes");
    print_bytes(out, json_integer_value(json_object_get(r, "file_bytes")));
    fputc('\n', out);
}
