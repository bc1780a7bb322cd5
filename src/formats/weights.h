/* src/formats/weights.h - one view of a model's tensors, whatever the files
 * (internal).
 *
 * kiln__weights_open() takes any model path kiln reads (a GGUF file, a
 * safetensors file, a Hugging Face folder with plain or sharded safetensors,
 * a diffusers folder), opens every weight file once, and lists all tensors
 * with the same record: name, dtype, shape outermost-first (PyTorch order;
 * GGUF's ggml order is reversed), data pointer and size. Model loaders and
 * `kiln info` use this instead of the format readers.
 *
 * Diffusers folders hold one weight file per component; their tensors are
 * named "<component>/<name>" (e.g. "unet/conv_in.weight") so names stay
 * unique.
 *
 * Ownership: everything (names, mappings, parsed config) lives until
 * kiln__weights_free(). Data pointers point into read-only file mappings.
 */
#ifndef KILN_FORMATS_WEIGHTS_H
#define KILN_FORMATS_WEIGHTS_H

#include "core/threadpool.h"
#include <stddef.h>
#include <stdint.h>

#include "formats/gguf.h"
#include "formats/model_folder.h"
#include "formats/safetensors.h"
#include "formats/tensor_lookup.h"
#include "kiln/dtype.h"
#include "kiln/status.h"

/* Most dimensions a tensor has (safetensors allows 8, GGUF 4). */
#define KILN_MAX_DIMS 8

/* One tensor of the model. */
struct kiln_tensor {
    const char *name;              /* NUL-terminated, owned by the weights */
    kiln_dtype dtype;              /* element type */
    int n_dims;                    /* 0..KILN_MAX_DIMS (0 = scalar) */
    int64_t shape[KILN_MAX_DIMS];  /* sizes, outermost first; unused entries 0 */
    int64_t n_elems;               /* product of the shape */
    const void *data;              /* first byte, inside a read-only mapping (or the copy
                                      of kiln__weights_to_memory) */
    size_t nbytes;                 /* bytes of data */
};

/* A weight file opened for the model (diffusers folders have several). */
struct kiln_weight_source {
    char *prefix;                      /* "unet/" etc. for diffusers components, "" otherwise */
    struct kiln_gguf *gguf;            /* a GGUF file, or NULL */
    struct kiln_safetensors_set *st;   /* safetensors (one file or shards), or NULL */
};

/* All tensors of a model path. Read the fields; do not modify them. */
struct kiln_weights {
    struct kiln_model_path path;        /* what the path is (kind, config.json, detection) */
    struct kiln_weight_source *sources; /* n_sources opened weight files */
    size_t n_sources;                   /* number of sources */
    struct kiln_tensor *tensors;        /* n_tensors tensors, sorted by name */
    size_t n_tensors;                   /* number of tensors */
    char *names_;                       /* arena of prefixed names (diffusers) */
    void *mem_;                         /* the tensors' copy in anonymous memory, or NULL */
    size_t mem_size_;                   /* its size in bytes */
};

/* Open `path` and list its tensors. On failure *out is NULL and
 * kiln_last_error() says why. Free with kiln__weights_free(). */
kiln_status kiln__weights_open(const char *path, struct kiln_weights **out);
/* Release everything; NULL is fine. */
void kiln__weights_free(struct kiln_weights *w);

/* Called with bytes copied so far and in all; nonzero cancels. */
typedef int (*kiln_weights_progress_fn)(uint64_t done, uint64_t total, void *user);

/* Copy every tensor into one block of anonymous memory (2 MiB aligned,
 * advised for transparent huge pages) and point tensors[].data at the
 * copies (each 64-byte aligned); the file pages read for the copy are
 * released from this process as it goes (the mapping stays for the
 * metadata), so the peak is about one copy. Token generation streams every
 * weight per token, and on the development machine anonymous huge pages
 * read faster than the file mapping (see
 * docs/performance.md). The copy runs on pool's threads (NULL: the calling
 * thread alone), a slice of the file at a time, each thread copying and
 * releasing its share of the slice: fresh memory is slow to fault in on
 * some machines, and the threads fault it in side by side. progress may be
 * NULL. Errors: KILN_ERR_OUT_OF_MEMORY (tensors untouched: they stay in the
 * mapping), KILN_ERR_CANCELLED (the same). Call before anything keeps
 * tensor data pointers. */
kiln_status kiln__weights_to_memory(struct kiln_weights *w, kiln_pool *pool, kiln_weights_progress_fn progress,
                                    void *user);

/* Hint that this process no longer reads the tensor bytes [p, p + n) (a
 * packed copy replaced them): while the tensors are in the file mapping,
 * its whole pages inside the range are dropped from this process (a later
 * read faults them back in from the file); a no-op for the anonymous copy
 * of kiln__weights_to_memory, whose pages could not be read back. */
void kiln__weights_release(const struct kiln_weights *w, const void *p, size_t n);

/* The tensor with this name, or NULL (binary search). */
const struct kiln_tensor *kiln__weights_find(const struct kiln_weights *w, const char *name);

/* The GGUF metadata when the model is one GGUF file, else NULL. */
static inline const struct kiln_gguf *kiln__weights_gguf(const struct kiln_weights *w) {
    return w->n_sources == 1 ? w->sources[0].gguf : NULL;
}

/* A shape lookup over these tensors (for variant detection). */
struct kiln_tensor_lookup kiln__weights_lookup(const struct kiln_weights *w);

#endif /* KILN_FORMATS_WEIGHTS_H */
