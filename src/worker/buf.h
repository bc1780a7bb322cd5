/* src/worker/buf.h - a growable byte buffer and JSON string escaping for the
 * worker's hand-written output (SSE events, heartbeat bodies). */
#ifndef KILN_WORKER_BUF_H
#define KILN_WORKER_BUF_H

#include <stddef.h>

#include "core/error.h"

/* Bytes with a length; data is always NUL-terminated when non-NULL. Start
 * from all zeros. After a failed allocation `failed` is set and every later
 * append is refused, so callers may check once at the end. */
struct kiln__buf {
    char *data; /* the bytes (owned), or NULL while empty */
    size_t len; /* bytes in use, not counting the terminating NUL */
    size_t cap; /* bytes allocated */
    int failed; /* an allocation failed; the contents are incomplete */
};

/* Append n bytes. Returns 0, or -1 when out of memory (sets b->failed). */
int kiln__buf_append(struct kiln__buf *b, const void *p, size_t n);
/* Append a NUL-terminated string. */
int kiln__buf_puts(struct kiln__buf *b, const char *s);
/* Append printf-style text. */
int kiln__buf_printf(struct kiln__buf *b, const char *fmt, ...) KILN_PRINTF(2, 3);
/* Append `n` bytes of s as a quoted JSON string. Control characters, quotes
 * and backslashes are escaped; bytes that are not valid UTF-8 become U+FFFD,
 * so the output is always valid JSON whatever the input. */
int kiln__buf_json_string(struct kiln__buf *b, const char *s, size_t n);
/* Append n bytes of text, each byte that is not part of valid UTF-8
 * replaced by U+FFFD. */
int kiln__buf_append_utf8(struct kiln__buf *b, const char *s, size_t n);
/* Forget the contents (keeps the allocation and clears `failed`). */
void kiln__buf_clear(struct kiln__buf *b);
/* Release the allocation; the buffer is empty afterwards. */
void kiln__buf_free(struct kiln__buf *b);

/* Length of the valid UTF-8 sequence starting at s[0] (1..4), or 0 when the
 * bytes there (at most n of them) are not one. */
size_t kiln__utf8_seq_len(const unsigned char *s, size_t n);

#endif /* KILN_WORKER_BUF_H */
