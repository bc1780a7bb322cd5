/* src/formats/file_map.h - a whole file mapped read-only into memory (internal).
 *
 * The format readers (GGUF, safetensors) parse a byte buffer; this helper
 * gives them one for a path: open, check it is a regular file, mmap it
 * read-only and private. An empty file maps to data NULL, size 0 (success):
 * the caller decides whether empty is an error.
 */
#ifndef KILN_FORMATS_FILE_MAP_H
#define KILN_FORMATS_FILE_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/status.h"

struct kiln_file_map {
    const uint8_t *data; /* first byte of the mapping; NULL for an empty file */
    size_t size;         /* file size in bytes (the mapping's length) */
};

/* Map `path` read-only. On success *out holds the mapping (release it with
 * kiln__file_map_close); on failure *out is {NULL, 0} and kiln_last_error()
 * names the path and the reason (KILN_ERR_NOT_FOUND when it does not exist,
 * KILN_ERR_IO for other system errors, KILN_ERR_TOO_LARGE when the size does
 * not fit in memory addresses). */
kiln_status kiln__file_map_open(const char *path, struct kiln_file_map *out);

/* Unmap and reset *m to {NULL, 0}. NULL or an already closed map is fine. */
void kiln__file_map_close(struct kiln_file_map *m);

#endif /* KILN_FORMATS_FILE_MAP_H */
