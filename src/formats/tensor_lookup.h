/* src/formats/tensor_lookup.h - a format-neutral "find a tensor's shape by
 * name" interface (internal), so that model detection (sd_detect.c) serves
 * safetensors and GGUF files alike. */
#ifndef KILN_FORMATS_TENSOR_LOOKUP_H
#define KILN_FORMATS_TENSOR_LOOKUP_H

#include <stdbool.h>
#include <stdint.h>

/* Most dimensions a lookup reports. */
#define KILN_LOOKUP_MAX_DIMS 8

struct kiln_tensor_lookup {
    /* True when the tensor `name` exists; then shape[0..*n_dims) holds its
     * sizes, outermost first (PyTorch order; GGUF sources reverse their
     * ggml order). shape and n_dims are always valid pointers. */
    bool (*find)(void *ctx, const char *name, int64_t shape[KILN_LOOKUP_MAX_DIMS], int *n_dims);
    void *ctx; /* passed to find; owned by whoever built the lookup */
};

#endif /* KILN_FORMATS_TENSOR_LOOKUP_H */
