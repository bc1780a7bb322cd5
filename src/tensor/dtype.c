/* src/tensor/dtype.c - the dtype table generated from kiln/dtype.h. */
#include <string.h>

#include "kiln/dtype.h"

/* One row per type: name, GGML id, block geometry. */
static const struct dtype_info {
    const char *name;   /* static name */
    int ggml;           /* GGML type id, -1 when none */
    size_t block_elems; /* values per block */
    size_t block_bytes; /* bytes per block */
} dtypes[KILN_DTYPE_UNKNOWN] = {
#define KILN_X_DTYPE_INFO(id, name, ggml, elems, bytes) [KILN_DTYPE_##id] = {name, ggml, elems, bytes},
    KILN_DTYPE_LIST(KILN_X_DTYPE_INFO)
#undef KILN_X_DTYPE_INFO
};

const char *kiln_dtype_name(kiln_dtype type) {
    return (unsigned)type < KILN_DTYPE_UNKNOWN ? dtypes[type].name : "unknown";
}

kiln_dtype kiln_dtype_from_name(const char *name) {
    if (!name) return KILN_DTYPE_UNKNOWN;
    for (int i = 0; i < KILN_DTYPE_UNKNOWN; i++)
        if (strcmp(dtypes[i].name, name) == 0) return (kiln_dtype)i;
    return KILN_DTYPE_UNKNOWN;
}

kiln_dtype kiln_dtype_from_ggml(uint32_t ggml_type) {
    for (int i = 0; i < KILN_DTYPE_UNKNOWN; i++)
        if (dtypes[i].ggml >= 0 && (uint32_t)dtypes[i].ggml == ggml_type) return (kiln_dtype)i;
    return KILN_DTYPE_UNKNOWN;
}

int kiln_dtype_ggml_id(kiln_dtype type) {
    return (unsigned)type < KILN_DTYPE_UNKNOWN ? dtypes[type].ggml : -1;
}

size_t kiln_dtype_block_elems(kiln_dtype type) {
    return (unsigned)type < KILN_DTYPE_UNKNOWN ? dtypes[type].block_elems : 0;
}

size_t kiln_dtype_block_bytes(kiln_dtype type) {
    return (unsigned)type < KILN_DTYPE_UNKNOWN ? dtypes[type].block_bytes : 0;
}
