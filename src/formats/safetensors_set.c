/* src/formats/safetensors_set.c - several safetensors files seen as one model:
 * the shards named by a Hugging Face *.safetensors.index.json, e.g.
 *   {"metadata": {"total_size": 123}, "weight_map": {"lm_head.weight":
 *    "model-00002-of-00002.safetensors", ...}}
 * Each shard is opened (mapped) once; one table finds any tensor by name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "formats/json_util.h"
#include "formats/safetensors.h"

/* Largest index file read (bytes); real ones are well under 1 MB. */
#define MAX_INDEX_FILE (32u << 20)

/* A new set with room for n shards. */
static struct kiln_safetensors_set *set_new(size_t n) {
    struct kiln_safetensors_set *set = calloc(1, sizeof *set);
    if (!set) return NULL;
    set->shards = calloc(n ? n : 1, sizeof *set->shards);
    set->shard_paths = calloc(n ? n : 1, sizeof *set->shard_paths);
    if (!set->shards || !set->shard_paths) {
        kiln__safetensors_set_free(set);
        return NULL;
    }
    return set;
}

/* Gather every shard's tensors into one list and one table; a name found in
 * two shards is an error naming both. */
static kiln_status set_index(struct kiln_safetensors_set *set) {
    size_t total = 0;
    for (size_t i = 0; i < set->n_shards; i++) total += set->shards[i]->n_tensors;
    set->tensors = malloc((total ? total : 1) * sizeof *set->tensors);
    if (!set->tensors) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    for (size_t i = 0; i < set->n_shards; i++)
        for (size_t j = 0; j < set->shards[i]->n_tensors; j++)
            set->tensors[set->n_tensors++] = &set->shards[i]->tensors[j];
    const struct kiln_st_tensor *dup = NULL;
    kiln_status s = kiln__st_table_build(&set->table_, set->tensors, set->n_tensors, &dup);
    if (s != KILN_OK && dup) {
        const char *where[2] = {"?", "?"};
        int found = 0;
        for (size_t i = 0; i < set->n_shards && found < 2; i++)
            if (kiln__safetensors_find(set->shards[i], dup->name)) where[found++] = set->shard_paths[i];
        return kiln__fail(KILN_ERR_FORMAT, "safetensors: tensor '%s' is in two shards: %s and %s", dup->name,
                          where[0], where[1]);
    }
    return s;
}

/* True when name is a plain file name: no folder part, not "." or "..". */
static bool plain_file_name(const char *name) {
    return name[0] && !strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* "dir/name" (dir may be empty: then just name). malloc'd; NULL on failure. */
static char *join_path(const char *dir, size_t dir_len, const char *name) {
    size_t n = strlen(name);
    char *p = malloc(dir_len + 1 + n + 1);
    if (!p) return NULL;
    memcpy(p, dir, dir_len);
    size_t pos = dir_len;
    if (dir_len) p[pos++] = '/';
    memcpy(p + pos, name, n + 1);
    return p;
}

/* The work of kiln__safetensors_open_index once the index is decoded. */
static kiln_status open_index(const char *index_path, const json_t *root, struct kiln_safetensors_set **out) {
    const json_t *wm = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
    if (!json_is_object(wm))
        return kiln__fail(KILN_ERR_FORMAT, "%s: no \"weight_map\" object", index_path);
    size_t n_entries = json_object_size(wm);
    if (n_entries == 0) return kiln__fail(KILN_ERR_FORMAT, "%s: \"weight_map\" is empty", index_path);

    /* Shard names in order of first appearance (a handful: linear search). */
    const char **names = calloc(n_entries, sizeof *names);
    if (!names) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    size_t n_names = 0;
    const char *key;
    json_t *val;
    kiln_status s = KILN_OK;
    json_object_foreach((json_t *)wm, key, val) {
        if (!json_is_string(val)) {
            s = kiln__fail(KILN_ERR_FORMAT, "%s: weight_map value of '%s' is a %s, not a file name", index_path,
                           key, kiln__json_kind(val));
            break;
        }
        const char *file = json_string_value(val);
        if (!plain_file_name(file)) {
            s = kiln__fail(KILN_ERR_FORMAT, "%s: shard '%s' is not a file name in the index's folder",
                           index_path, file);
            break;
        }
        size_t k = 0;
        while (k < n_names && strcmp(names[k], file) != 0) k++;
        if (k == n_names) names[n_names++] = file;
    }
    if (s != KILN_OK) {
        free(names);
        return s;
    }

    struct kiln_safetensors_set *set = set_new(n_names);
    if (!set) {
        free(names);
        return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    }
    const char *slash = strrchr(index_path, '/');
    size_t dir_len = slash ? (size_t)(slash - index_path) : 0;
    for (size_t k = 0; k < n_names && s == KILN_OK; k++) {
        set->shard_paths[k] = join_path(index_path, dir_len, names[k]);
        if (!set->shard_paths[k]) {
            s = kiln__fail(KILN_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
            break;
        }
        set->n_shards = k + 1; /* on failure shards[k] stays NULL: freeing copes */
        s = kiln__safetensors_open(set->shard_paths[k], &set->shards[k]);
    }
    if (s == KILN_OK) s = set_index(set);

    /* Every tensor the index lists must be in the shard it names. */
    if (s == KILN_OK) {
        json_object_foreach((json_t *)wm, key, val) {
            const char *file = json_string_value(val);
            size_t k = 0;
            while (strcmp(names[k], file) != 0) k++;
            if (!kiln__safetensors_find(set->shards[k], key)) {
                s = kiln__fail(KILN_ERR_FORMAT, "%s: tensor '%s' is listed in shard %s, which does not hold it",
                               index_path, key, file);
                break;
            }
        }
    }
    free(names);
    if (s != KILN_OK) {
        kiln__safetensors_set_free(set);
        return s;
    }
    *out = set;
    return KILN_OK;
}

kiln_status kiln__safetensors_open_index(const char *index_path, struct kiln_safetensors_set **out) {
    if (!out) return kiln__fail(KILN_ERR_INVALID_ARG, "safetensors: no output given");
    *out = NULL;
    json_t *root = NULL;
    kiln_status s = kiln__json_load_file(index_path, MAX_INDEX_FILE, &root);
    if (s != KILN_OK) return s;
    s = open_index(index_path, root, out);
    json_decref(root);
    return s;
}

kiln_status kiln__safetensors_open_single(const char *path, struct kiln_safetensors_set **out) {
    if (!out) return kiln__fail(KILN_ERR_INVALID_ARG, "safetensors: no output given");
    *out = NULL;
    if (!path) return kiln__fail(KILN_ERR_INVALID_ARG, "safetensors: no path given");
    struct kiln_safetensors_set *set = set_new(1);
    if (!set) return kiln__fail(KILN_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    set->shard_paths[0] = strdup(path);
    set->n_shards = 1; /* shards[0] stays NULL until opened: freeing copes */
    kiln_status s = set->shard_paths[0] ? KILN_OK : kiln__fail(KILN_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    if (s == KILN_OK) s = kiln__safetensors_open(path, &set->shards[0]);
    if (s == KILN_OK) s = set_index(set);
    if (s != KILN_OK) {
        kiln__safetensors_set_free(set);
        return s;
    }
    *out = set;
    return KILN_OK;
}

kiln_status kiln__safetensors_set_open(const char *path, struct kiln_safetensors_set **out) {
    static const char suffix[] = ".json";
    size_t n = path ? strlen(path) : 0, m = sizeof suffix - 1;
    if (n > m && strcmp(path + n - m, suffix) == 0) return kiln__safetensors_open_index(path, out);
    return kiln__safetensors_open_single(path, out);
}

const struct kiln_st_tensor *kiln__safetensors_set_find(const struct kiln_safetensors_set *set,
                                                        const char *name) {
    return set ? kiln__st_table_find(&set->table_, name) : NULL;
}

/* kiln_tensor_lookup.find over a set. */
static bool set_lookup_find(void *ctx, const char *name, int64_t shape[KILN_LOOKUP_MAX_DIMS], int *n_dims) {
    const struct kiln_st_tensor *t = kiln__safetensors_set_find(ctx, name);
    if (!t) return false;
    *n_dims = t->n_dims;
    for (int d = 0; d < t->n_dims; d++) shape[d] = t->shape[d];
    return true;
}

struct kiln_tensor_lookup kiln__safetensors_set_lookup(const struct kiln_safetensors_set *set) {
    struct kiln_tensor_lookup lk = {set_lookup_find, (void *)set};
    return lk;
}

void kiln__safetensors_set_free(struct kiln_safetensors_set *set) {
    if (!set) return;
    kiln__st_table_free(&set->table_);
    for (size_t i = 0; i < set->n_shards; i++) {
        kiln__safetensors_free(set->shards[i]);
        free(set->shard_paths[i]);
    }
    free(set->shards);
    free(set->shard_paths);
    free(set->tensors);
    free(set);
}
