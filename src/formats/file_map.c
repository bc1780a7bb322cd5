/* src/formats/file_map.c - open and mmap a file read-only (see file_map.h). */
#include "formats/file_map.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

kiln_status kiln__file_map_open(const char *path, struct kiln_file_map *out) {
    if (!out) return kiln__fail(KILN_ERR_INVALID_ARG, "file map: no output given");
    out->data = NULL;
    out->size = 0;
    if (!path) return kiln__fail(KILN_ERR_INVALID_ARG, "file map: no path given");

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        return kiln__fail(err == ENOENT ? KILN_ERR_NOT_FOUND : KILN_ERR_IO, "cannot open '%s': %s",
                          path, strerror(err));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return kiln__fail(KILN_ERR_IO, "cannot stat '%s': %s", path, strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return kiln__fail(KILN_ERR_IO, "'%s' is not a regular file", path);
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return kiln__fail(KILN_ERR_TOO_LARGE, "'%s' is too large to map", path);
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) { /* mmap rejects a zero length; an empty map is valid */
        close(fd);
        return KILN_OK;
    }
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd); /* the mapping keeps its own reference to the file */
    if (p == MAP_FAILED) return kiln__fail(KILN_ERR_IO, "cannot map '%s': %s", path, strerror(err));
    out->data = p;
    out->size = size;
    return KILN_OK;
}

void kiln__file_map_close(struct kiln_file_map *m) {
    if (!m) return;
    if (m->data) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}
