/* src/worker/httpc.h - a minimal HTTP/1.1 client over plain sockets, enough
 * for the worker's heartbeat POSTs to the hive (http:// URLs only). */
#ifndef KILN_WORKER_HTTPC_H
#define KILN_WORKER_HTTPC_H

#include <stddef.h>

#include "kiln/status.h"

/* A parsed http:// URL. */
struct kiln__http_url {
    char host[256]; /* host name or address (IPv6 without brackets) */
    char port[8];   /* port as text ("80" when the URL has none) */
    char path[512]; /* path without a trailing slash ("" for the root) */
};

/* Parse "http://host[:port][/path]". Returns KILN_OK, or
 * KILN_ERR_INVALID_ARG / KILN_ERR_UNSUPPORTED (https) with kiln_last_error(). */
kiln_status kiln__http_url_parse(const char *url, struct kiln__http_url *out);

/* POST `len` bytes of JSON to url->path + suffix, with one overall timeout
 * for connecting, sending and reading the status line. *status receives
 * the HTTP status code. KILN_ERR_IO on a network failure or timeout. */
kiln_status kiln__http_post_json(const struct kiln__http_url *url, const char *suffix, const char *body, size_t len,
                                 int timeout_ms, int *status);

/* The status code in an HTTP/1.x status line ("HTTP/1.1 204 No Content"),
 * or -1 when the bytes are not one. */
int kiln__http_parse_status_line(const char *line, size_t len);

#endif /* KILN_WORKER_HTTPC_H */
