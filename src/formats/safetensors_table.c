/* src/formats/safetensors_table.c - name -> tensor hash table used by single
 * safetensors files and by sharded sets (a model has ~100-2000 tensors and
 * loaders look each one up by name). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "formats/safetensors.h"

/* FNV-1a, 64 bits: short and good enough for tensor names. */
static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

kiln_status kiln__st_table_build(struct kiln_st_table *t, const struct kiln_st_tensor *const *items,
                                 size_t n, const struct kiln_st_tensor **dup) {
    memset(t, 0, sizeof *t);
    if (dup) *dup = NULL;
    /* Capacity: the smallest power of two >= 2n (load factor <= 1/2), at least 8. */
    size_t cap = 8;
    while (cap < n * 2) {
        if (cap > SIZE_MAX / 4) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "safetensors: too many tensors");
        cap *= 2;
    }
    t->slots = calloc(cap, sizeof *t->slots);
    if (!t->slots) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "safetensors: out of memory for the name table");
    t->cap = cap;
    for (size_t i = 0; i < n; i++) {
        size_t j = (size_t)hash_name(items[i]->name) & (cap - 1);
        while (t->slots[j]) { /* linear probing */
            if (strcmp(t->slots[j]->name, items[i]->name) == 0) {
                if (dup) *dup = items[i];
                kiln__st_table_free(t);
                return kiln__fail(KILN_ERR_FORMAT, "safetensors: duplicate tensor name '%s'", items[i]->name);
            }
            j = (j + 1) & (cap - 1);
        }
        t->slots[j] = items[i];
    }
    return KILN_OK;
}

const struct kiln_st_tensor *kiln__st_table_find(const struct kiln_st_table *t, const char *name) {
    if (!t->slots || !name) return NULL;
    size_t j = (size_t)hash_name(name) & (t->cap - 1);
    while (t->slots[j]) {
        if (strcmp(t->slots[j]->name, name) == 0) return t->slots[j];
        j = (j + 1) & (t->cap - 1);
    }
    return NULL;
}

void kiln__st_table_free(struct kiln_st_table *t) {
    free(t->slots);
    memset(t, 0, sizeof *t);
}
