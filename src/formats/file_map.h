/* src/formats/file_map.h - read-only memory mapping of a whole model file
 * (internal). Parsers read headers through it and tensors point into it. */
#ifndef KILN_FORMATS_FILE_MAP_H
#define KILN_FORMATS_FILE_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/status.h"

/* A mapped file. Zero-initialise before use; close with kiln__file_map_close. */
struct kiln_file_map {
    const uint8_t *data; /* first byte of the file; NULL for an empty file */
    size_t size;         /* file size in bytes */
    /* private */
    void *base_;         /* address returned by mmap (NULL when nothing is mapped) */
};

/* Map `path` read-only. On success *out holds the mapping (an empty file gives
 * data NULL, size 0). Fails with KILN_ERR_IO (path and strerror in the
 * message) when the file cannot be opened, is not a regular file or cannot be
 * mapped, KILN_ERR_TOO_LARGE when it does not fit the address space. On
 * failure *out is zeroed. */
kiln_status kiln__file_map_open(const char *path, struct kiln_file_map *out);

/* Unmap and zero *m. A zeroed or already closed map (or NULL) is fine. */
void kiln__file_map_close(struct kiln_file_map *m);

#endif /* KILN_FORMATS_FILE_MAP_H */
