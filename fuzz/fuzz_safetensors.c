/* fuzz/fuzz_safetensors.c - libFuzzer target for the safetensors parser.
 *
 * Any input must be either rejected with a message or parsed into tensors
 * that lie inside the input; a parsed file must survive variant detection
 * and a write/parse round trip with the same tensors. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"
#include "formats/sd_detect.h"
#include "kiln/status.h"

/* Stop the fuzzer with a crash report (an invariant broke). */
#define ENSURE(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) __builtin_trap();                                                             \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct kiln_safetensors *st = NULL;
    kiln_status s = kiln__safetensors_parse(data, size, &st);
    if (s != KILN_OK) {
        ENSURE(st == NULL && kiln_last_error()[0] != '\0');
        return 0;
    }
    /* Every tensor lies inside the input and is found by its name. */
    struct kiln_st_write_tensor *w = calloc(st->n_tensors ? st->n_tensors : 1, sizeof *w);
    ENSURE(w != NULL);
    for (size_t i = 0; i < st->n_tensors; i++) {
        const struct kiln_st_tensor *t = &st->tensors[i];
        ENSURE(kiln__safetensors_find(st, t->name) == t);
        ENSURE(t->file_offset + t->nbytes <= size);
        if (t->nbytes) {
            ENSURE(t->data >= data && t->data + t->nbytes <= data + size);
            volatile uint8_t first = t->data[0], last = t->data[t->nbytes - 1]; /* ASan checks these reads */
            (void)first;
            (void)last;
        }
        w[i] = (struct kiln_st_write_tensor){t->name, t->dtype, t->n_dims, t->shape, t->data, t->nbytes};
    }
    struct kiln_sd_info info;
    struct kiln_tensor_lookup lk = kiln__safetensors_lookup(st);
    kiln__sd_detect_tensors(&lk, &info);

    /* Write it again and parse the copy: same tensors, same metadata. */
    uint8_t *copy = NULL;
    size_t copy_size = 0;
    if (kiln__safetensors_write_mem(w, st->n_tensors, st->meta, st->n_meta, &copy, &copy_size) == KILN_OK) {
        struct kiln_safetensors *again = NULL;
        ENSURE(kiln__safetensors_parse(copy, copy_size, &again) == KILN_OK);
        ENSURE(again->n_tensors == st->n_tensors && again->n_meta == st->n_meta);
        for (size_t i = 0; i < st->n_tensors; i++) {
            const struct kiln_st_tensor *t = kiln__safetensors_find(again, st->tensors[i].name);
            ENSURE(t && t->nbytes == st->tensors[i].nbytes && t->dtype == st->tensors[i].dtype);
            ENSURE(t->nbytes == 0 || memcmp(t->data, st->tensors[i].data, t->nbytes) == 0);
        }
        kiln__safetensors_free(again);
        free(copy);
    }
    free(w);
    kiln__safetensors_free(st);
    return 0;
}
