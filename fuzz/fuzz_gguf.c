/* fuzz/fuzz_gguf.c - libFuzzer target for the GGUF reader.
 *
 * Any input must either be refused with a message or parse into a file whose
 * every value, array element and tensor byte can be read. A file that parses
 * is then copied through the writer, and the copy must parse again with the
 * same pairs and tensors (the writer never produces what the reader rejects).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/gguf.h"
#include "kiln/kiln.h"

/* Read every element of an array (recursively); returns a checksum so the
 * reads are not optimised away. */
static uint64_t touch_arr(const struct kiln_gguf_arr *a) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < a->count; i++) {
        int64_t x;
        uint64_t u;
        double d;
        bool b;
        const char *s;
        size_t len;
        if (kiln__gguf_arr_i64(a, i, &x)) sum += (uint64_t)x;
        if (kiln__gguf_arr_u64(a, i, &u)) sum += u;
        if (kiln__gguf_arr_f64(a, i, &d)) sum += d == d;
        if (kiln__gguf_arr_bool(a, i, &b)) sum += b;
        if (kiln__gguf_arr_str(a, i, &s, &len)) sum += len ? (uint8_t)s[0] + (uint8_t)s[len - 1] : 0;
        const struct kiln_gguf_arr *sub = kiln__gguf_arr_sub(a, i);
        if (sub) sum += touch_arr(sub);
    }
    return sum;
}

/* Copy g through the writer into memory and parse the copy. */
static void rewrite(const struct kiln_gguf *g) {
    struct kiln_gguf_writer *w = NULL;
    if (kiln__gguf_writer_new(&w) != KILN_OK) return;
    if (kiln__gguf_find_kv(g, "general.alignment"))
        if (kiln__gguf_writer_set_alignment(w, g->alignment) != KILN_OK) abort();
    for (uint64_t i = 0; i < g->n_kv; i++) {
        if (strcmp(g->kv[i].key, "general.alignment") == 0) continue;
        if (kiln__gguf_writer_key(w, g->kv[i].key) != KILN_OK ||
            kiln__gguf_writer_copy_value(w, &g->kv[i].value) != KILN_OK)
            abort(); /* whatever the reader accepts, the writer must take */
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const struct kiln_gguf_tensor *t = &g->tensors[i];
        if (kiln__gguf_writer_add_tensor(w, t->name, t->dtype, t->n_dims, t->ne, t->data, t->nbytes) != KILN_OK)
            abort();
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem) {
        kiln__gguf_writer_free(w);
        return;
    }
    kiln_status st = kiln__gguf_writer_write_file(w, mem);
    fclose(mem);
    kiln__gguf_writer_free(w);
    struct kiln_gguf *copy = NULL;
    if (st == KILN_OK) {
        if (kiln__gguf_parse((const uint8_t *)buf, len, &copy) != KILN_OK) abort();
        if (copy->n_kv != g->n_kv || copy->n_tensors != g->n_tensors) abort();
        for (uint64_t i = 0; i < g->n_tensors; i++)
            if (memcmp(copy->tensors[i].data, g->tensors[i].data, g->tensors[i].nbytes) != 0) abort();
    }
    kiln__gguf_free(copy);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where the checksums go, so that the reads happen. */
static volatile uint64_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct kiln_gguf *g = NULL;
    kiln_status st = kiln__gguf_parse(data, size, &g);
    if (st != KILN_OK) {
        if (g != NULL || kiln_last_error()[0] == '\0') abort();
        return 0;
    }
    uint64_t sum = 0;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const struct kiln_gguf_kv *kv = &g->kv[i];
        if (kiln__gguf_find_kv(g, kv->key) != kv) abort();
        uint64_t u;
        const char *s;
        size_t len;
        if (kiln__gguf_get_u64(g, kv->key, &u)) sum += u;
        if (kiln__gguf_get_str(g, kv->key, &s, &len) && len) sum += (uint8_t)s[len - 1];
        const struct kiln_gguf_arr *a = kv->value.type == KILN_GGUF_ARRAY ? kiln__gguf_get_arr(g, kv->key) : NULL;
        if (a) sum += touch_arr(a);
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const struct kiln_gguf_tensor *t = &g->tensors[i];
        if (kiln__gguf_find_tensor(g, t->name) != t) abort();
        const uint8_t *p = t->data;
        sum += p[0] + p[t->nbytes - 1];
    }
    sink = sum;
    rewrite(g);
    kiln__gguf_free(g);
    return 0;
}
