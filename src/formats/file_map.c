/* src/formats/file_map.c - read-only mmap of a model file. */
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
    if (!out) return kiln__fail(KILN_ERR_INVALID_ARG, "file_map: no output given");
    memset(out, 0, sizeof *out);
    if (!path) return kiln__fail(KILN_ERR_INVALID_ARG, "file_map: no path given");

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return kiln__fail(KILN_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return kiln__fail(KILN_ERR_IO, "cannot stat %s: %s", path, strerror(e));
    }
    /* Directories, pipes and devices cannot be mapped as a model file. */
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return kiln__fail(KILN_ERR_IO, "cannot map %s: %s", path,
                          S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
    }
    if ((uintmax_t)st.st_size > (uintmax_t)SIZE_MAX) {
        close(fd);
        return kiln__fail(KILN_ERR_TOO_LARGE, "cannot map %s: %jd bytes exceed the address space",
                          path, (intmax_t)st.st_size);
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) { /* mmap refuses length 0: an empty file maps to nothing */
        close(fd);
        return KILN_OK;
    }
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps its own reference to the file */
    if (p == MAP_FAILED)
        return kiln__fail(KILN_ERR_IO, "cannot mmap %s (%zu bytes): %s", path, size, strerror(e));
    out->base_ = p;
    out->data = p;
    out->size = size;
    return KILN_OK;
}

void kiln__file_map_close(struct kiln_file_map *m) {
    if (!m) return;
    if (m->base_) munmap(m->base_, m->size);
    memset(m, 0, sizeof *m);
}
