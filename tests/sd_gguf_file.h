/* tests/sd_gguf_file.h - rewriting an SD single file (safetensors, ldm
 * names) as GGUF for the model tests: the same tensors under the same
 * names, with GGUF's reversed shapes, in F32, in F16 (1-D ones kept F32) or
 * with Q8_0 where the innermost size is whole Q8_0 blocks (the rest F16). */
#ifndef KILN_TESTS_SD_GGUF_FILE_H
#define KILN_TESTS_SD_GGUF_FILE_H

#include <stdio.h>
#include <stdlib.h>

#include "formats/gguf.h"
#include "formats/weights.h"
#include "kiln/kiln.h"
#include "tensor/dequant.h"
#include "tensor/quantize.h"
#include "tensor/tensor.h"

/* How sd_write_gguf stores the tensors. */
enum sd_gguf_kind {
    SD_GGUF_F32,  /* every tensor F32 (the same values as an F32 source) */
    SD_GGUF_F16,  /* 1-D tensors F32, the others F16 */
    SD_GGUF_Q8_0, /* 1-D F32; Q8_0 when the innermost size is a multiple of 32, else F16 */
};

/* Write the tensors of `src` to the GGUF file `path`; 1 on success, 0
 * after a message on stderr. */
static inline int sd_write_gguf(const char *src, const char *path, enum sd_gguf_kind kind) {
    struct kiln_weights *w = NULL;
    if (kiln__weights_open(src, &w) != KILN_OK) {
        fprintf(stderr, "  opening %s: %s\n", src, kiln_last_error());
        return 0;
    }
    struct kiln_gguf_writer *gw = NULL;
    void **bufs = calloc(w->n_tensors, sizeof *bufs);
    int ok = bufs && kiln__gguf_writer_new(&gw) == KILN_OK;
    for (size_t i = 0; ok && i < w->n_tensors; i++) {
        const struct kiln_tensor *t = &w->tensors[i];
        size_t n = (size_t)t->n_elems;
        float *f = malloc(n * sizeof *f);
        ok = f && kiln__dequantize(t->dtype, t->data, f, n) == KILN_OK;
        uint64_t ne[4] = {1, 1, 1, 1};
        for (int d = 0; d < t->n_dims; d++) ne[d] = (uint64_t)t->shape[t->n_dims - 1 - d];
        kiln_dtype type = kind == SD_GGUF_F32 || t->n_dims < 2 ? KILN_DTYPE_F32
                          : kind == SD_GGUF_Q8_0 && ne[0] % 32 == 0 ? KILN_DTYPE_Q8_0
                                                                    : KILN_DTYPE_F16;
        size_t nbytes = kiln__tensor_bytes(type, n);
        bufs[i] = ok ? malloc(nbytes) : NULL;
        ok = ok && bufs[i] && kiln__quantize(type, f, bufs[i], n) == KILN_OK;
        ok = ok && kiln__gguf_writer_add_tensor(gw, t->name, type, (uint32_t)(t->n_dims ? t->n_dims : 1), ne,
                                                bufs[i], nbytes) == KILN_OK;
        free(f);
    }
    ok = ok && kiln__gguf_writer_write(gw, path) == KILN_OK;
    if (!ok) fprintf(stderr, "  writing %s: %s\n", path, kiln_last_error());
    kiln__gguf_writer_free(gw);
    for (size_t i = 0; bufs && i < w->n_tensors; i++) free(bufs[i]);
    free(bufs);
    kiln__weights_free(w);
    return ok;
}

#endif /* KILN_TESTS_SD_GGUF_FILE_H */
