/* src/worker/httpc.c - blocking HTTP/1.1 POST with a deadline (heartbeats).
 * Sockets are non-blocking and every step polls against the deadline, so
 * a hive that hangs can never hold the heartbeat thread. */
#include "worker/httpc.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/error.h"
#include "kiln/version.h"
#include "worker/jobs.h"

kiln_status kiln__http_url_parse(const char *url, struct kiln__http_url *out) {
    memset(out, 0, sizeof *out);
    if (strncmp(url, "https://", 8) == 0)
        return kiln__fail(KILN_ERR_UNSUPPORTED, "hive URL '%s': https is not supported (use http:// on a trusted network)", url);
    if (strncmp(url, "http://", 7) != 0) return kiln__fail(KILN_ERR_INVALID_ARG, "hive URL '%s': must start with http://", url);
    const char *p = url + 7;
    const char *host_end;
    const char *after;
    if (*p == '[') { /* [IPv6]:port */
        host_end = strchr(p, ']');
        if (!host_end) return kiln__fail(KILN_ERR_INVALID_ARG, "hive URL '%s': unclosed '['", url);
        p++;
        after = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/?#");
        after = host_end;
    }
    size_t hl = (size_t)(host_end - p);
    if (hl == 0 || hl >= sizeof out->host) return kiln__fail(KILN_ERR_INVALID_ARG, "hive URL '%s': bad host", url);
    memcpy(out->host, p, hl);
    strcpy(out->port, "80");
    if (*after == ':') {
        after++;
        size_t pl = strspn(after, "0123456789");
        long port = pl ? strtol(after, NULL, 10) : 0;
        if (pl == 0 || pl > 5 || port < 1 || port > 65535)
            return kiln__fail(KILN_ERR_INVALID_ARG, "hive URL '%s': bad port", url);
        snprintf(out->port, sizeof out->port, "%ld", port);
        after += pl;
    }
    if (*after && *after != '/') return kiln__fail(KILN_ERR_INVALID_ARG, "hive URL '%s': unexpected '%c'", url, *after);
    size_t len = strcspn(after, "?#");
    if (after[len]) return kiln__fail(KILN_ERR_INVALID_ARG, "hive URL '%s': queries and fragments are not allowed", url);
    while (len > 0 && after[len - 1] == '/') len--;
    if (len >= sizeof out->path) return kiln__fail(KILN_ERR_INVALID_ARG, "hive URL '%s': path too long", url);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)after[i] <= ' ' || after[i] == 0x7f)
            return kiln__fail(KILN_ERR_INVALID_ARG, "hive URL '%s': control character or space in the path", url);
    memcpy(out->path, after, len);
    return KILN_OK;
}

int kiln__http_parse_status_line(const char *line, size_t len) {
    /* "HTTP/1.x SSS" at least */
    if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') || line[8] != ' ') return -1;
    int code = 0;
    for (int i = 9; i < 12; i++) {
        if (line[i] < '0' || line[i] > '9') return -1;
        code = code * 10 + (line[i] - '0');
    }
    if (len > 12 && line[12] != ' ' && line[12] != '\r' && line[12] != '\n') return -1;
    return code >= 100 && code <= 599 ? code : -1;
}

/* Wait until fd is ready for `events` or the deadline passes. */
static int wait_fd(int fd, short events, double deadline) {
    for (;;) {
        double left = deadline - kiln__now();
        if (left <= 0) return -1;
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, (int)(left * 1000) + 1);
        if (rc > 0) return 0;
        if (rc < 0 && errno != EINTR) return -1;
    }
}

/* A connected non-blocking socket to host:port, or -1. */
static int connect_to(const struct kiln__http_url *url, double deadline) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(url->host, url->port, &hints, &res);
    if (gai != 0) {
        kiln__fail(KILN_ERR_IO, "heartbeat: cannot resolve '%s': %s", url->host, gai_strerror(gai));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 0) {
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            rc = soerr == 0 ? 0 : -1;
            errno = soerr ? soerr : ETIMEDOUT;
        } else if (rc != 0 && errno == EINPROGRESS) {
            errno = ETIMEDOUT;
        }
        if (rc != 0) {
            kiln__fail(KILN_ERR_IO, "heartbeat: cannot connect to %s:%s: %s", url->host, url->port, strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* Send all of buf before the deadline. */
static int send_all(int fd, const char *buf, size_t len, double deadline) {
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n, len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            if (wait_fd(fd, POLLOUT, deadline) != 0) return -1;
        } else {
            return -1;
        }
    }
    return 0;
}

kiln_status kiln__http_post_json(const struct kiln__http_url *url, const char *suffix, const char *body, size_t len,
                                 int timeout_ms, int *status) {
    *status = 0;
    double deadline = kiln__now() + timeout_ms / 1e3;
    int fd = connect_to(url, deadline);
    if (fd < 0) return KILN_ERR_IO;
    int ipv6 = strchr(url->host, ':') != NULL;
    char head[1200];
    int hl = snprintf(head, sizeof head,
                      "POST %s%s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: kiln/%s\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                      url->path, suffix, ipv6 ? "[" : "", url->host, ipv6 ? "]" : "", url->port, KILN_VERSION_STRING,
                      len);
    kiln_status st = KILN_OK;
    if (hl < 0 || (size_t)hl >= sizeof head || send_all(fd, head, (size_t)hl, deadline) != 0 ||
        send_all(fd, body, len, deadline) != 0) {
        st = kiln__fail(KILN_ERR_IO, "heartbeat: sending to %s:%s failed: %s", url->host, url->port,
                        errno ? strerror(errno) : "timeout");
        goto out;
    }
    /* Read until the end of the status line. */
    char line[256];
    size_t got = 0;
    while (got < sizeof line && !memchr(line, '\n', got)) {
        ssize_t n = recv(fd, line + got, sizeof line - got, 0);
        if (n > 0) {
            got += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            if (wait_fd(fd, POLLIN, deadline) != 0) break;
        } else {
            break;
        }
    }
    int code = kiln__http_parse_status_line(line, got);
    if (code < 0) {
        st = kiln__fail(KILN_ERR_IO, "heartbeat: no HTTP answer from %s:%s within %d ms", url->host, url->port,
                        timeout_ms);
        goto out;
    }
    *status = code;
out:
    close(fd);
    return st;
}
