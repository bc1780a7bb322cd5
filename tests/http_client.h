/* tests/http_client.h - a small blocking HTTP/1.1 client over loopback
 * sockets for the worker tests: whole requests (Connection: close, chunked
 * bodies decoded) and raw sockets for streams, slow clients and
 * disconnects. Header-only; every function is static inline. Include it first:
 * it needs _GNU_SOURCE (strcasestr). */
#ifndef KILN_TESTS_HTTP_CLIENT_H
#define KILN_TESTS_HTTP_CLIENT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A response. */
struct tc_resp {
    int status;      /* HTTP status, or -1 when none arrived */
    char *head;      /* status line and headers (NUL-terminated) */
    char *body;      /* body, de-chunked (NUL-terminated) */
    size_t body_len; /* bytes of body */
};

static inline double tc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void tc_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A socket connected to 127.0.0.1:port, or -1. */
static inline int tc_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static inline int tc_send_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k <= 0) return -1;
        c += k, n -= (size_t)k;
    }
    return 0;
}

/* Read into a growing buffer until `needle` appears, EOF, or the timeout.
 * Returns bytes read so far (buffer NUL-terminated), and *eof. */
static inline size_t tc_read_until(int fd, char **buf, size_t *len, size_t *cap, const char *needle, int timeout_ms,
                            int *eof) {
    double deadline = tc_now() + timeout_ms / 1e3;
    *eof = 0;
    for (;;) {
        if (needle && *buf && strstr(*buf, needle)) break;
        double left = deadline - tc_now();
        if (left <= 0) break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(left * 1000) + 1) <= 0) continue;
        if (*len + 4097 > *cap) {
            size_t nc = *cap ? *cap * 2 : 8192;
            while (nc < *len + 4097) nc *= 2;
            char *nb = realloc(*buf, nc);
            if (!nb) break;
            *buf = nb, *cap = nc;
        }
        ssize_t k = recv(fd, *buf + *len, 4096, 0);
        if (k <= 0) {
            *eof = 1;
            if (*buf) (*buf)[*len] = '\0';
            break;
        }
        *len += (size_t)k;
        (*buf)[*len] = '\0';
    }
    return *len;
}

/* Decode a chunked body in place; returns its length. */
static inline size_t tc_dechunk(char *b, size_t n) {
    size_t in = 0, out = 0;
    while (in < n) {
        char *end;
        unsigned long sz = strtoul(b + in, &end, 16);
        char *crlf = strstr(b + in, "\r\n");
        if (!crlf || end == b + in) break;
        in = (size_t)(crlf - b) + 2;
        if (sz == 0 || in + sz > n) break;
        memmove(b + out, b + in, sz);
        out += sz, in += sz + 2;
    }
    b[out] = '\0';
    return out;
}

/* Split raw response bytes into *r. */
static inline void tc_parse(char *raw, size_t len, struct tc_resp *r) {
    r->status = -1;
    r->head = raw;
    r->body = NULL;
    r->body_len = 0;
    if (!raw) return;
    if (len >= 12 && strncmp(raw, "HTTP/1.", 7) == 0) r->status = atoi(raw + 9);
    char *sep = strstr(raw, "\r\n\r\n");
    if (!sep) return;
    *sep = '\0';
    r->body = sep + 4;
    r->body_len = len - (size_t)(r->body - raw);
    if (strcasestr(raw, "Transfer-Encoding: chunked")) r->body_len = tc_dechunk(r->body, r->body_len);
}

static inline void tc_resp_free(struct tc_resp *r) {
    free(r->head);
    memset(r, 0, sizeof *r);
}

/* The value of a header in r (static copy), or NULL. */
static inline const char *tc_header(const struct tc_resp *r, const char *name) {
    static char value[256];
    if (!r->head) return NULL;
    size_t nl = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
            const char *v = p + 3 + nl;
            while (*v == ' ') v++;
            size_t vl = strcspn(v, "\r\n");
            if (vl >= sizeof value) vl = sizeof value - 1;
            memcpy(value, v, vl);
            value[vl] = '\0';
            return value;
        }
    }
    return NULL;
}

/* Send raw bytes and read the whole answer until the server closes (or
 * timeout_ms). */
static inline int tc_raw(int port, const char *raw, size_t raw_len, int timeout_ms, struct tc_resp *r) {
    memset(r, 0, sizeof *r);
    r->status = -1;
    int fd = tc_connect(port);
    if (fd < 0) return -1;
    if (tc_send_all(fd, raw, raw_len) != 0) {
        /* The server may answer and close before reading everything. */
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int eof;
    tc_read_until(fd, &buf, &len, &cap, NULL, timeout_ms, &eof);
    close(fd);
    tc_parse(buf, len, r); /* r owns buf now */
    return r->status >= 0 ? 0 : -1;
}

/* One request with Connection: close. extra_headers: "Name: value\r\n"...
 * or NULL; body may be NULL. */
static inline int tc_request(int port, const char *method, const char *path, const char *extra_headers, const char *body,
                      struct tc_resp *r) {
    memset(r, 0, sizeof *r);
    r->status = -1;
    size_t blen = body ? strlen(body) : 0;
    size_t cap = strlen(method) + strlen(path) + (extra_headers ? strlen(extra_headers) : 0) + blen + 256;
    char *raw = malloc(cap);
    if (!raw) return -1;
    int n = snprintf(raw, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s", method, path,
                     extra_headers ? extra_headers : "");
    if (body) n += snprintf(raw + n, cap - (size_t)n, "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
    n += snprintf(raw + n, cap - (size_t)n, "\r\n");
    if (body) memcpy(raw + n, body, blen);
    /* A guard against a hung server, not a speed check: generous, since the
     * sanitizer builds and a loaded machine make answers slow. */
    int rc = tc_raw(port, raw, (size_t)n + blen, 120000, r);
    free(raw);
    return rc;
}

/* Open a request and leave the socket open (streams, disconnects). */
static inline int tc_open(int port, const char *method, const char *path, const char *extra_headers, const char *body) {
    int fd = tc_connect(port);
    if (fd < 0) return -1;
    char head[1024];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s", method, path,
                     extra_headers ? extra_headers : "");
    if (body) n += snprintf(head + n, sizeof head - (size_t)n, "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    if (tc_send_all(fd, head, (size_t)n) != 0 || (body && tc_send_all(fd, body, blen) != 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

#endif /* KILN_TESTS_HTTP_CLIENT_H */
