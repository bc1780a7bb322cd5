/* kiln/dtype.h - element types of tensors, from one list.
 *
 * Covers the float types, the GGUF block-quantized types (layouts bit-exact
 * with the GGUF format) and the extra safetensors element types kiln
 * recognises. Block types store block_elems values in block_bytes bytes.
 */
#ifndef KILN_DTYPE_H
#define KILN_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(enum suffix, name, GGML type id or -1, elements per block, bytes per block) */
#define KILN_DTYPE_LIST(X)                                                   \
    X(F32, "F32", 0, 1, 4)                                                   \
    X(F16, "F16", 1, 1, 2)                                                   \
    X(Q4_0, "Q4_0", 2, 32, 18)                                               \
    X(Q4_1, "Q4_1", 3, 32, 20)                                               \
    X(Q5_0, "Q5_0", 6, 32, 22)                                               \
    X(Q5_1, "Q5_1", 7, 32, 24)                                               \
    X(Q8_0, "Q8_0", 8, 32, 34)                                               \
    X(Q8_1, "Q8_1", 9, 32, 36)                                               \
    X(Q2_K, "Q2_K", 10, 256, 84)                                             \
    X(Q3_K, "Q3_K", 11, 256, 110)                                            \
    X(Q4_K, "Q4_K", 12, 256, 144)                                            \
    X(Q5_K, "Q5_K", 13, 256, 176)                                            \
    X(Q6_K, "Q6_K", 14, 256, 210)                                            \
    X(Q8_K, "Q8_K", 15, 256, 292)                                            \
    X(I8, "I8", 24, 1, 1)                                                    \
    X(I16, "I16", 25, 1, 2)                                                  \
    X(I32, "I32", 26, 1, 4)                                                  \
    X(I64, "I64", 27, 1, 8)                                                  \
    X(F64, "F64", 28, 1, 8)                                                  \
    X(BF16, "BF16", 30, 1, 2)                                                \
    X(U8, "U8", -1, 1, 1)                                                    \
    X(BOOL, "BOOL", -1, 1, 1)                                                \
    X(F8_E4M3, "F8_E4M3", -1, 1, 1)                                          \
    X(F8_E5M2, "F8_E5M2", -1, 1, 1)

typedef enum kiln_dtype {
#define KILN_X_DTYPE_ENUM(id, name, ggml, elems, bytes) KILN_DTYPE_##id,
    KILN_DTYPE_LIST(KILN_X_DTYPE_ENUM)
#undef KILN_X_DTYPE_ENUM
    KILN_DTYPE_UNKNOWN /* not a type kiln knows; also the count of known ones */
} kiln_dtype;

/* Name ("F16", "Q4_K", ...); "unknown" for anything else. Static string. */
KILN_API const char *kiln_dtype_name(kiln_dtype type);
/* Type from its exact name; KILN_DTYPE_UNKNOWN when none matches. */
KILN_API kiln_dtype kiln_dtype_from_name(const char *name);
/* Type from a GGML/GGUF type id; KILN_DTYPE_UNKNOWN for an id kiln lacks. */
KILN_API kiln_dtype kiln_dtype_from_ggml(uint32_t ggml_type);
/* GGML type id, or -1 when the type has none. */
KILN_API int kiln_dtype_ggml_id(kiln_dtype type);
/* Elements per block (1 for plain types); 0 for an unknown type. */
KILN_API size_t kiln_dtype_block_elems(kiln_dtype type);
/* Bytes per block; 0 for an unknown type. */
KILN_API size_t kiln_dtype_block_bytes(kiln_dtype type);

#ifdef __cplusplus
}
#endif
#endif /* KILN_DTYPE_H */
