/* src/worker/request.h - parsing and validating generation requests (the rbee
 * POST /v1/jobs body and the OpenAI completion and chat bodies) into one
 * form the job queue runs, and the JSON error shape every route answers. */
#ifndef KILN_WORKER_REQUEST_H
#define KILN_WORKER_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "worker/backend.h"

struct kiln__image_request;

/* Which API a request came through (decides field rules and output shape). */
enum kiln__api_kind {
    KILN__API_JOB,        /* rbee POST /v1/jobs */
    KILN__API_COMPLETION, /* OpenAI POST /v1/completions */
    KILN__API_CHAT,       /* OpenAI POST /v1/chat/completions */
};

/* What an rbee job asks for. */
enum kiln__operation {
    KILN__OP_INFER,            /* text generation */
    KILN__OP_IMAGE_GENERATION, /* txt2img (image models only) */
    KILN__OP_IMAGE_TRANSFORM,  /* img2img (image models only) */
    KILN__OP_IMAGE_INPAINT,    /* inpainting (image models only) */
};

/* Name of an operation as it appears in requests (static string). */
const char *kiln__operation_name(enum kiln__operation op);
/* The KILN__CAP_* flag a backend needs for an operation. */
unsigned kiln__operation_cap(enum kiln__operation op);

/* Largest max_tokens accepted in a request (the context clamps it further). */
#define KILN__MAX_TOKENS_LIMIT (1 << 20)
/* max_tokens when a request gives none (then clamped to the context). */
#define KILN__DEFAULT_MAX_TOKENS 256
/* Most stop strings, and the longest one in bytes. */
#define KILN__MAX_STOP 16
#define KILN__MAX_STOP_LEN 256
/* Most chat messages in one request. */
#define KILN__MAX_MESSAGES 4096

/* A validated request. Strings point into `root`, which it owns. */
struct kiln__gen_request {
    enum kiln__api_kind api;            /* the API it came through */
    enum kiln__operation op;            /* what to do (always INFER for OpenAI) */
    json_t *root;                       /* the parsed body (owned); strings below live in it */
    const char *prompt;                 /* raw prompt, or NULL when messages are used */
    struct kiln__chat_message *messages;/* chat turns (owned array), or NULL */
    size_t n_messages;                  /* entries of messages */
    const char **stop;                  /* stop strings (owned array of borrowed strings) */
    size_t n_stop;                      /* entries of stop */
    kiln_sampling_params sampling;      /* sampling with the request's values filled in */
    int32_t max_tokens;                 /* as asked, or 0 when not given */
    int stream;                         /* the client asked for a streamed answer */
    int seed_given;                     /* the request named a seed (else one is drawn) */
    const char *model;                  /* the model the client named, or NULL */
    struct kiln__image_request *image;  /* image operations: what to make (owned), else NULL */
};

/* An error answer: HTTP status and the OpenAI-style error object
 * {"error":{"message","type","code","param"}}. */
struct kiln__api_error {
    int status;        /* HTTP status code */
    const char *type;  /* static: "invalid_request_error", "not_found_error", ... */
    const char *code;  /* static machine-readable code: "invalid_value", "queue_full", ... */
    char param[64];    /* the offending field, or "" */
    char message[320]; /* what is wrong, naming the field */
    int retry_after;   /* seconds for a Retry-After header (429, 503); 0 = none */
};

/* Fill *err (printf-style message). */
void kiln__api_error_set(struct kiln__api_error *err, int status, const char *type, const char *code,
                         const char *param, const char *fmt, ...) KILN_PRINTF(6, 7);

/* ---- request_fields.c: one field of a body, with its rule. Null counts as
 * absent; each returns 0, or -1 after filling *err. ---- */

/* A 400 invalid_value naming `field` ("field: why"). */
int kiln__req_bad(struct kiln__api_error *err, const char *field, const char *fmt, ...) KILN_PRINTF(3, 4);
/* A 500 out_of_memory. */
int kiln__req_oom(struct kiln__api_error *err);
/* The field, or NULL when absent or null. */
json_t *kiln__req_field(json_t *obj, const char *name);
/* An optional number in [lo, hi] into *out; *given (may be NULL) says whether it was there. */
int kiln__req_number(json_t *obj, const char *name, double lo, double hi, double *out, int *given,
                     struct kiln__api_error *err);
/* An optional integer in [lo, hi] into *out; *given as above. */
int kiln__req_int(json_t *obj, const char *name, long long lo, long long hi, long long *out, int *given,
                  struct kiln__api_error *err);
/* An optional string into *out (borrowed from obj). */
int kiln__req_string(json_t *obj, const char *name, const char **out, struct kiln__api_error *err);
/* An optional boolean into *out. */
int kiln__req_bool(json_t *obj, const char *name, bool *out, struct kiln__api_error *err);
/* The error as a new JSON object (NULL when out of memory). */
json_t *kiln__api_error_json(const struct kiln__api_error *err);

/* Parse and validate `len` bytes of a request body for `api`. On success
 * returns 0 and *out owns a new request (free with kiln__gen_request_free).
 * On failure returns -1 and fills *err (status 400 with the field and why,
 * or 500 when out of memory). Operations other than infer are parsed only
 * as far as the operation name: the caller refuses them or hands them on. */
int kiln__gen_request_parse(enum kiln__api_kind api, const char *body, size_t len,
                            struct kiln__gen_request **out, struct kiln__api_error *err);
/* Release a request; NULL is fine. */
void kiln__gen_request_free(struct kiln__gen_request *r);
/* The backend's view of the request (pointers borrowed from r). */
void kiln__gen_request_text_job(const struct kiln__gen_request *r, int32_t max_tokens,
                                struct kiln__text_job *job);

#endif /* KILN_WORKER_REQUEST_H */
