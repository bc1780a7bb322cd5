/* src/formats/weights.c - open a model path's weight files and list their
 * tensors in one sorted table. */
#define _GNU_SOURCE /* madvise */
#include "formats/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"

static int by_name(const void *a, const void *b) {
    return strcmp(((const struct kiln_tensor *)a)->name, ((const struct kiln_tensor *)b)->name);
}

/* Tensors a source holds. */
static size_t source_count(const struct kiln_weight_source *s) {
    return s->gguf ? (size_t)s->gguf->n_tensors : s->st->n_tensors;
}

/* Append the tensors of source `s` at tensors[*n]; prefixed names go to
 * the arena at *arena. */
static void append_source(const struct kiln_weight_source *s, struct kiln_tensor *tensors,
                          size_t *n, char **arena) {
    size_t count = source_count(s);
    size_t prefix_len = strlen(s->prefix);
    for (size_t i = 0; i < count; i++) {
        struct kiln_tensor *t = &tensors[(*n)++];
        memset(t, 0, sizeof *t);
        const char *name;
        if (s->gguf) {
            const struct kiln_gguf_tensor *g = &s->gguf->tensors[i];
            name = g->name;
            t->dtype = g->dtype;
            t->n_dims = (int)g->n_dims;
            /* ggml lists the fastest dimension first; PyTorch order is the reverse. */
            for (uint32_t d = 0; d < g->n_dims; d++) t->shape[d] = (int64_t)g->ne[g->n_dims - 1 - d];
            t->n_elems = (int64_t)g->n_elems;
            t->data = g->data;
            t->nbytes = g->nbytes;
        } else {
            const struct kiln_st_tensor *st = s->st->tensors[i];
            name = st->name;
            t->dtype = st->dtype;
            t->n_dims = st->n_dims;
            memcpy(t->shape, st->shape, sizeof t->shape);
            t->n_elems = st->n_elements;
            t->data = st->data;
            t->nbytes = st->nbytes;
        }
        if (prefix_len == 0) {
            t->name = name;
        } else {
            size_t len = strlen(name);
            memcpy(*arena, s->prefix, prefix_len);
            memcpy(*arena + prefix_len, name, len + 1);
            t->name = *arena;
            *arena += prefix_len + len + 1;
        }
    }
}

/* Open one weight file as a new source with the given name prefix. */
static kiln_status add_source(struct kiln_weights *w, const char *file, const char *prefix,
                              int is_gguf) {
    struct kiln_weight_source *grown =
        realloc(w->sources, (w->n_sources + 1) * sizeof *w->sources);
    if (!grown) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "weights: out of memory");
    w->sources = grown;
    struct kiln_weight_source *s = &w->sources[w->n_sources];
    memset(s, 0, sizeof *s);
    s->prefix = strdup(prefix);
    if (!s->prefix) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "weights: out of memory");
    w->n_sources++; /* counted now so kiln__weights_free releases it on any failure */
    return is_gguf ? kiln__gguf_open(file, &s->gguf) : kiln__safetensors_set_open(file, &s->st);
}

/* Open every weight file the detected path names. */
static kiln_status open_sources(struct kiln_weights *w) {
    const struct kiln_model_path *mp = &w->path;
    switch (mp->kind) {
    case KILN_MODEL_GGUF:
        return add_source(w, mp->path, "", 1);
    case KILN_MODEL_SAFETENSORS:
        return add_source(w, mp->path, "", 0);
    case KILN_MODEL_HF_LLM:
        return add_source(w, mp->weights_path, "", 0);
    case KILN_MODEL_DIFFUSERS:
        for (size_t i = 0; i < mp->n_components; i++) {
            const struct kiln_diffusers_component *c = &mp->components[i];
            if (!c->weights_path) continue; /* tokenizers and schedulers hold no weights */
            char prefix[256];
            snprintf(prefix, sizeof prefix, "%s/", c->name);
            kiln_status st = add_source(w, c->weights_path, prefix, 0);
            if (st != KILN_OK) return st;
        }
        return KILN_OK;
    }
    return kiln__fail(KILN_ERR_INTERNAL, "weights: unhandled model kind");
}

/* Build the sorted tensor table over all sources. */
static kiln_status build_table(struct kiln_weights *w) {
    size_t total = 0, arena_bytes = 0;
    for (size_t i = 0; i < w->n_sources; i++) {
        const struct kiln_weight_source *s = &w->sources[i];
        size_t count = source_count(s);
        total += count;
        if (s->prefix[0] == '\0') continue;
        for (size_t j = 0; j < count; j++)
            arena_bytes += strlen(s->prefix) + strlen(s->st->tensors[j]->name) + 1;
    }
    w->tensors = calloc(total ? total : 1, sizeof *w->tensors);
    w->names_ = malloc(arena_bytes ? arena_bytes : 1);
    if (!w->tensors || !w->names_) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "weights: out of memory");
    char *arena = w->names_;
    for (size_t i = 0; i < w->n_sources; i++) append_source(&w->sources[i], w->tensors, &w->n_tensors, &arena);
    qsort(w->tensors, w->n_tensors, sizeof *w->tensors, by_name);
    for (size_t i = 1; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i - 1].name, w->tensors[i].name) == 0)
            return kiln__fail(KILN_ERR_FORMAT, "weights: tensor '%s' appears in two files",
                              w->tensors[i].name);
    return KILN_OK;
}

kiln_status kiln__weights_open(const char *path, struct kiln_weights **out) {
    if (!out) return kiln__fail(KILN_ERR_INVALID_ARG, "weights: no output given");
    *out = NULL;
    struct kiln_weights *w = calloc(1, sizeof *w);
    if (!w) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "weights: out of memory");
    kiln_status st = kiln__model_path_detect(path, &w->path);
    if (st == KILN_OK) st = open_sources(w);
    if (st == KILN_OK) st = build_table(w);
    if (st == KILN_OK && w->path.kind == KILN_MODEL_GGUF) {
        /* GGUF image checkpoints carry no general.architecture of ours: name
         * the variant from the tensors, as for safetensors files. */
        if (!kiln__gguf_find_kv(w->sources[0].gguf, "general.architecture")) {
            struct kiln_tensor_lookup lk = kiln__weights_lookup(w);
            kiln__sd_detect_tensors(&lk, &w->path.sd);
        }
    }
    if (st != KILN_OK) {
        kiln__weights_free(w);
        return st;
    }
    *out = w;
    return KILN_OK;
}

void kiln__weights_free(struct kiln_weights *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_sources; i++) {
        kiln__gguf_free(w->sources[i].gguf);
        kiln__safetensors_set_free(w->sources[i].st);
        free(w->sources[i].prefix);
    }
    free(w->sources);
    free(w->tensors);
    free(w->names_);
    kiln__huge_free(w->mem_, w->mem_size_);
    kiln__model_path_free(&w->path);
    free(w);
}

/* Drop this process's pages of [p, p + n) of a read-only file mapping
 * (whole pages inside the range only); a later read faults them back in. */
static void release_pages(const void *p, size_t n) {
    long ps = sysconf(_SC_PAGESIZE);
    uintptr_t page = ps > 0 ? (uintptr_t)ps : 4096u;
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1), b = ((uintptr_t)p + n) & ~(page - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED); /* advisory: failure only costs memory */
}

void kiln__weights_release(const struct kiln_weights *w, const void *p, size_t n) {
    if (!w->mem_) release_pages(p, n);
}

/* Bytes of the file copied per pool run: the file pages of one slice are
 * mapped in at once before their release, so this bounds the extra peak. */
#define COPY_SLICE ((size_t)8 << 20)

/* One slice of the copy, shared by the pool's threads. */
struct copy_job {
    uint8_t *dst;      /* where the slice goes */
    const uint8_t *src; /* the slice in the file mapping */
    size_t n;          /* bytes */
};

/* Thread ith copies its part of the slice (cut at 4 KiB boundaries) and
 * drops the file pages it read. */
static void copy_part(void *ctx, int ith, int nth) {
    const struct copy_job *j = ctx;
    size_t a, b;
    kiln__pool_share((j->n + 4095) / 4096, ith, nth, &a, &b);
    a *= 4096, b *= 4096;
    if (b > j->n) b = j->n;
    if (a >= b) return;
    memcpy(j->dst + a, j->src + a, b - a);
    release_pages(j->src + a, b - a); /* so the peak is one copy, not two */
}

kiln_status kiln__weights_to_memory(struct kiln_weights *w, kiln_pool *pool, kiln_weights_progress_fn progress,
                                    void *user) {
    if (w->mem_) return KILN_OK;
    size_t total = 0, data = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        size_t n = (w->tensors[i].nbytes + KILN_ALIGN - 1) & ~(size_t)(KILN_ALIGN - 1);
        if (n < w->tensors[i].nbytes || total > SIZE_MAX - n)
            return kiln__fail(KILN_ERR_TOO_LARGE, "weights: tensors too large to copy");
        total += n;
        data += w->tensors[i].nbytes;
    }
    if (total == 0) return KILN_OK;
    /* A copy that would crowd out most of RAM is refused: the mapping can
     * page from the file under memory pressure, a copy cannot. */
    long pages = sysconf(_SC_PHYS_PAGES), ps = sysconf(_SC_PAGESIZE);
    if (pages > 0 && ps > 0 && (uint64_t)total > (uint64_t)pages * (uint64_t)ps / 4 * 3)
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "weights: a %zu MiB copy would not leave enough memory",
                          total >> 20);
    uint8_t *mem = kiln__huge_alloc(total);
    if (!mem) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "weights: no memory for a %zu MiB copy", total >> 20);
    /* Copy everything first, then repoint: a cancel leaves the tensors as they were. */
    size_t off = 0, done = 0, next_report = 0;
    if (progress && progress(0, data, user)) goto cancelled;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const struct kiln_tensor *t = &w->tensors[i];
        /* in slices, so progress is reported (and a cancel seen) within big tensors */
        for (size_t at = 0; at < t->nbytes;) {
            size_t n = t->nbytes - at < COPY_SLICE ? t->nbytes - at : COPY_SLICE;
            struct copy_job job = {mem + off + at, (const uint8_t *)t->data + at, n};
            if (pool) kiln__pool_run(pool, copy_part, &job);
            else copy_part(&job, 0, 1);
            at += n;
            done += n;
            if (progress && (done >= next_report || done == data)) {
                if (progress(done, data, user)) goto cancelled;
                next_report = done + data / 100;
            }
        }
        off += (t->nbytes + KILN_ALIGN - 1) & ~(size_t)(KILN_ALIGN - 1);
    }
    off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        struct kiln_tensor *t = &w->tensors[i];
        t->data = mem + off;
        off += (t->nbytes + KILN_ALIGN - 1) & ~(size_t)(KILN_ALIGN - 1);
    }
    w->mem_ = mem;
    w->mem_size_ = total;
    return KILN_OK;
cancelled:
    kiln__huge_free(mem, total);
    return kiln__fail(KILN_ERR_CANCELLED, "model load cancelled");
}

const struct kiln_tensor *kiln__weights_find(const struct kiln_weights *w, const char *name) {
    if (!w || !name) return NULL;
    struct kiln_tensor key = {.name = name};
    return bsearch(&key, w->tensors, w->n_tensors, sizeof *w->tensors, by_name);
}

static bool lookup_find(void *ctx, const char *name, int64_t shape[KILN_LOOKUP_MAX_DIMS], int *n_dims) {
    const struct kiln_tensor *t = kiln__weights_find(ctx, name);
    if (!t) return false;
    *n_dims = t->n_dims;
    for (int d = 0; d < KILN_LOOKUP_MAX_DIMS; d++) shape[d] = d < t->n_dims ? t->shape[d] : 0;
    return true;
}

struct kiln_tensor_lookup kiln__weights_lookup(const struct kiln_weights *w) {
    return (struct kiln_tensor_lookup){lookup_find, (void *)w};
}
