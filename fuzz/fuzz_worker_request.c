/* fuzz/fuzz_worker_request.c - libFuzzer target for the worker's parsers of
 * untrusted input: the request bodies (rbee job, OpenAI completion and
 * chat; the first byte picks which), the JSON string escaper, the hive URL
 * and HTTP status-line parsers.
 *
 * Invariants: a rejected body has a 4xx/5xx status, a type, a code and a
 * message; an accepted one has a prompt or messages, in-range numbers and
 * valid stop strings; the escaper always produces one valid JSON string. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "worker/buf.h"
#include "worker/httpc.h"
#include "worker/request.h"

/* Stop the fuzzer with a crash report (an invariant broke). */
#define ENSURE(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) __builtin_trap();                                                             \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_request(enum kiln__api_kind api, const char *body, size_t len) {
    struct kiln__gen_request *r = NULL;
    struct kiln__api_error err;
    memset(&err, 0, sizeof err);
    if (kiln__gen_request_parse(api, body, len, &r, &err) != 0) {
        ENSURE(r == NULL);
        ENSURE(err.status >= 400 && err.status <= 599);
        ENSURE(err.type && err.code && err.message[0]);
        return;
    }
    ENSURE(r != NULL);
    if (r->op == KILN__OP_INFER) {
        ENSURE((r->prompt != NULL) != (r->messages != NULL) || (api != KILN__API_JOB && r->prompt));
        for (size_t i = 0; i < r->n_messages; i++) ENSURE(r->messages[i].role && r->messages[i].content);
        ENSURE(r->n_stop <= KILN__MAX_STOP);
        for (size_t i = 0; i < r->n_stop; i++) ENSURE(strlen(r->stop[i]) >= 1 && strlen(r->stop[i]) <= KILN__MAX_STOP_LEN);
        ENSURE(r->max_tokens >= 0 && r->max_tokens <= KILN__MAX_TOKENS_LIMIT);
        ENSURE(r->sampling.temperature >= 0 && r->sampling.temperature <= 2);
        ENSURE(r->sampling.top_p >= 0 && r->sampling.top_p <= 1);
    }
    kiln__gen_request_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    check_request((enum kiln__api_kind)(data[0] % 3), body, len);

    /* The escaper: any bytes give one JSON string. */
    struct kiln__buf b = {0};
    ENSURE(kiln__buf_json_string(&b, body, len) == 0);
    json_t *j = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    ENSURE(j && json_is_string(j));
    json_decref(j);
    kiln__buf_free(&b);

    /* URL and status line: never crash; an accepted URL has a host and port. */
    char url[600];
    size_t ul = len < sizeof url - 1 ? len : sizeof url - 1;
    memcpy(url, body, ul);
    url[ul] = '\0';
    struct kiln__http_url u;
    if (kiln__http_url_parse(url, &u) == KILN_OK) ENSURE(u.host[0] && atoi(u.port) >= 1 && atoi(u.port) <= 65535);
    int code = kiln__http_parse_status_line(body, len);
    ENSURE(code == -1 || (code >= 100 && code <= 599));
    return 0;
}
