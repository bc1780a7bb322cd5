/* src/worker/request.c - request body parsing and validation.
 *
 * Every rule names the field it checks; null counts as absent for optional
 * fields (some clients send every field); fields this worker does not know
 * are ignored, so newer clients keep working. Features the worker does not
 * offer (tools, logprobs, n > 1, echo) are refused rather than ignored, since
 * ignoring them would return something other than what was asked. */
#include "worker/request.h"
#include "worker/request_image.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *kiln__operation_name(enum kiln__operation op) {
    switch (op) {
    case KILN__OP_INFER: return "infer";
    case KILN__OP_IMAGE_GENERATION: return "image_generation";
    case KILN__OP_IMAGE_TRANSFORM: return "image_transform";
    case KILN__OP_IMAGE_INPAINT: return "image_inpaint";
    }
    return "infer";
}

unsigned kiln__operation_cap(enum kiln__operation op) {
    switch (op) {
    case KILN__OP_INFER: return KILN__CAP_TEXT;
    case KILN__OP_IMAGE_GENERATION: return KILN__CAP_IMAGE_GENERATION;
    case KILN__OP_IMAGE_TRANSFORM: return KILN__CAP_IMAGE_TRANSFORM;
    case KILN__OP_IMAGE_INPAINT: return KILN__CAP_IMAGE_INPAINT;
    }
    return KILN__CAP_TEXT;
}

void kiln__api_error_set(struct kiln__api_error *err, int status, const char *type, const char *code,
                         const char *param, const char *fmt, ...) {
    err->status = status;
    err->type = type;
    err->code = code;
    err->retry_after = 0;
    snprintf(err->param, sizeof err->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

json_t *kiln__api_error_json(const struct kiln__api_error *err) {
    return json_pack("{s:{s:s, s:s, s:s, s:s?}}", "error", "message", err->message, "type", err->type,
                     "code", err->code, "param", err->param[0] ? err->param : NULL);
}

static int unsupported(struct kiln__api_error *err, const char *field, const char *what) {
    kiln__api_error_set(err, 400, "invalid_request_error", "unsupported", field, "%s: %s is not supported by this worker",
                        field, what);
    return -1;
}

/* `stop`: a string or an array of strings. */
static int parse_stop(json_t *obj, struct kiln__gen_request *r, struct kiln__api_error *err) {
    json_t *v = kiln__req_field(obj, "stop");
    if (!v) return 0;
    size_t n = json_is_string(v) ? 1 : json_is_array(v) ? json_array_size(v) : 0;
    if (!json_is_string(v) && !json_is_array(v)) return kiln__req_bad(err, "stop", "must be a string or an array of strings");
    if (n > KILN__MAX_STOP) return kiln__req_bad(err, "stop", "at most %d stop strings, got %zu", KILN__MAX_STOP, n);
    if (n == 0) return 0;
    r->stop = calloc(n, sizeof *r->stop);
    if (!r->stop) return kiln__req_oom(err);
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_string(v) ? v : json_array_get(v, i);
        if (!json_is_string(s)) return kiln__req_bad(err, "stop", "element %zu must be a string", i);
        size_t sl = json_string_length(s);
        if (sl == 0 || sl > KILN__MAX_STOP_LEN)
            return kiln__req_bad(err, "stop", "element %zu must be 1 to %d bytes long", i, KILN__MAX_STOP_LEN);
        r->stop[r->n_stop++] = json_string_value(s);
    }
    return 0;
}

/* Sampling, length and streaming fields shared by every API. */
static int parse_common(json_t *obj, struct kiln__gen_request *r, struct kiln__api_error *err) {
    double d = 0;
    long long i = 0;
    int given;
    kiln_sampling_params *s = &r->sampling;
    if (kiln__req_number(obj, "temperature", 0, 2, &d, &given, err)) return -1;
    if (given) s->temperature = (float)d;
    if (kiln__req_number(obj, "top_p", 0, 1, &d, &given, err)) return -1;
    if (given) s->top_p = (float)d;
    if (kiln__req_number(obj, "min_p", 0, 1, &d, &given, err)) return -1;
    if (given) s->min_p = (float)d;
    if (kiln__req_number(obj, "repetition_penalty", 0.01, 10, &d, &given, err)) return -1;
    if (given) s->repetition_penalty = (float)d;
    if (kiln__req_number(obj, "presence_penalty", -2, 2, &d, &given, err)) return -1;
    if (given) s->presence_penalty = (float)d;
    if (kiln__req_number(obj, "frequency_penalty", -2, 2, &d, &given, err)) return -1;
    if (given) s->frequency_penalty = (float)d;
    if (kiln__req_int(obj, "top_k", 0, 1 << 20, &i, &given, err)) return -1;
    if (given) s->top_k = (int32_t)i;
    if (kiln__req_int(obj, "seed", INT64_MIN, INT64_MAX, &i, &r->seed_given, err)) return -1;
    if (r->seed_given) s->seed = (uint64_t)i;
    if (kiln__req_int(obj, "max_tokens", 1, KILN__MAX_TOKENS_LIMIT, &i, &given, err)) return -1;
    if (given) r->max_tokens = (int32_t)i;
    json_t *v = kiln__req_field(obj, "n");
    if (v && !json_is_integer(v)) return kiln__req_bad(err, "n", "must be an integer");
    if (v && json_integer_value(v) != 1) return unsupported(err, "n", "more than one choice");
    v = kiln__req_field(obj, "stream");
    if (v && !json_is_boolean(v)) return kiln__req_bad(err, "stream", "must be true or false");
    r->stream = json_is_true(v);
    if (kiln__req_string(obj, "model", &r->model, err)) return -1;
    return parse_stop(obj, r, err);
}

/* Message content: a string, or an array of {"type":"text","text":...}
 * parts, which is joined and stored back into the message as a string. */
static int message_content(json_t *msg, size_t idx, const char **out, struct kiln__api_error *err) {
    char name[48];
    snprintf(name, sizeof name, "messages[%zu].content", idx);
    json_t *c = kiln__req_field(msg, "content");
    if (!c) {
        *out = "";
        return 0;
    }
    if (json_is_string(c)) {
        *out = json_string_value(c);
        return 0;
    }
    if (!json_is_array(c)) return kiln__req_bad(err, name, "must be a string or an array of text parts");
    size_t total = 0;
    for (size_t k = 0; k < json_array_size(c); k++) {
        json_t *part = json_array_get(c, k);
        const char *type = json_string_value(json_object_get(part, "type"));
        json_t *text = json_object_get(part, "text");
        if (!json_is_object(part) || !type) return kiln__req_bad(err, name, "part %zu must be an object with a type", k);
        if (strcmp(type, "text") != 0) return unsupported(err, name, "a content part other than text");
        if (!json_is_string(text)) return kiln__req_bad(err, name, "part %zu: text must be a string", k);
        total += json_string_length(text);
    }
    char *joined = malloc(total + 1);
    if (!joined) return kiln__req_oom(err);
    size_t at = 0;
    for (size_t k = 0; k < json_array_size(c); k++) {
        json_t *text = json_object_get(json_array_get(c, k), "text");
        memcpy(joined + at, json_string_value(text), json_string_length(text));
        at += json_string_length(text);
    }
    joined[at] = '\0';
    json_t *str = json_stringn(joined, at);
    free(joined);
    if (!str || json_object_set_new(msg, "content", str) != 0) return kiln__req_oom(err);
    *out = json_string_value(json_object_get(msg, "content"));
    return 0;
}

static int parse_messages(json_t *v, struct kiln__gen_request *r, struct kiln__api_error *err) {
    static const char *const roles[] = {"system", "developer", "user", "assistant", "tool"};
    if (!json_is_array(v)) return kiln__req_bad(err, "messages", "must be an array of messages");
    size_t n = json_array_size(v);
    if (n == 0) return kiln__req_bad(err, "messages", "must hold at least one message");
    if (n > KILN__MAX_MESSAGES) return kiln__req_bad(err, "messages", "at most %d messages, got %zu", KILN__MAX_MESSAGES, n);
    r->messages = calloc(n, sizeof *r->messages);
    if (!r->messages) return kiln__req_oom(err);
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(v, i);
        char name[48];
        snprintf(name, sizeof name, "messages[%zu]", i);
        if (!json_is_object(m)) return kiln__req_bad(err, name, "must be an object");
        const char *role = json_string_value(json_object_get(m, "role"));
        snprintf(name, sizeof name, "messages[%zu].role", i);
        if (!role) return kiln__req_bad(err, name, "must be a string");
        int known = 0;
        for (size_t k = 0; k < sizeof roles / sizeof roles[0]; k++) known |= strcmp(role, roles[k]) == 0;
        if (!known) return kiln__req_bad(err, name, "must be system, developer, user, assistant or tool, got '%.40s'", role);
        r->messages[i].role = role;
        if (message_content(m, i, &r->messages[i].content, err)) return -1;
        r->n_messages++;
    }
    return 0;
}

/* rbee: operation, prompt or messages, and the orchestrator's fields. */
static int parse_job(json_t *obj, struct kiln__gen_request *r, struct kiln__api_error *err) {
    static const enum kiln__operation ops[] = {KILN__OP_INFER, KILN__OP_IMAGE_GENERATION, KILN__OP_IMAGE_TRANSFORM,
                                               KILN__OP_IMAGE_INPAINT};
    const char *op = "infer";
    if (kiln__req_string(obj, "operation", &op, err)) return -1;
    int found = 0;
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        if (strcmp(op, kiln__operation_name(ops[k])) == 0) r->op = ops[k], found = 1;
    if (!found)
        return kiln__req_bad(err, "operation", "must be infer, image_generation, image_transform or image_inpaint, got '%.40s'",
                   op);
    const char *ignored = NULL;
    if (kiln__req_string(obj, "hive_id", &ignored, err) || kiln__req_string(obj, "worker_id", &ignored, err) ||
        kiln__req_string(obj, "job_id", &ignored, err))
        return -1;
    if (r->op != KILN__OP_INFER) return 0;
    json_t *msgs = kiln__req_field(obj, "messages");
    if (msgs) {
        if (kiln__req_field(obj, "prompt")) return kiln__req_bad(err, "prompt", "give prompt or messages, not both");
        if (parse_messages(msgs, r, err)) return -1;
    } else {
        json_t *p = kiln__req_field(obj, "prompt");
        if (!p) return kiln__req_bad(err, "prompt", "is required (a non-empty string)");
        if (!json_is_string(p) || json_string_length(p) == 0) return kiln__req_bad(err, "prompt", "must be a non-empty string");
        r->prompt = json_string_value(p);
    }
    return parse_common(obj, r, err);
}

static int parse_completion(json_t *obj, struct kiln__gen_request *r, struct kiln__api_error *err) {
    json_t *p = kiln__req_field(obj, "prompt");
    if (!p) return kiln__req_bad(err, "prompt", "is required");
    if (json_is_array(p)) {
        if (json_array_size(p) != 1 || !json_is_string(json_array_get(p, 0)))
            return unsupported(err, "prompt", "a prompt other than one string");
        p = json_array_get(p, 0);
    }
    if (!json_is_string(p)) return kiln__req_bad(err, "prompt", "must be a string");
    r->prompt = json_string_value(p);
    json_t *v;
    if ((v = kiln__req_field(obj, "echo")) && !json_is_boolean(v)) return kiln__req_bad(err, "echo", "must be true or false");
    if (json_is_true(v)) return unsupported(err, "echo", "echoing the prompt");
    if ((v = kiln__req_field(obj, "logprobs")) && !(json_is_integer(v) && json_integer_value(v) == 0))
        return unsupported(err, "logprobs", "returning log probabilities");
    if ((v = kiln__req_field(obj, "suffix")) && !(json_is_string(v) && json_string_length(v) == 0))
        return unsupported(err, "suffix", "a suffix");
    if ((v = kiln__req_field(obj, "best_of")) && !(json_is_integer(v) && json_integer_value(v) == 1))
        return unsupported(err, "best_of", "best_of other than 1");
    return parse_common(obj, r, err);
}

static int parse_chat(json_t *obj, struct kiln__gen_request *r, struct kiln__api_error *err) {
    json_t *m = kiln__req_field(obj, "messages");
    if (!m) return kiln__req_bad(err, "messages", "is required");
    if (parse_messages(m, r, err)) return -1;
    json_t *v;
    if ((v = kiln__req_field(obj, "tools")) && !(json_is_array(v) && json_array_size(v) == 0))
        return unsupported(err, "tools", "tool calling");
    if ((v = kiln__req_field(obj, "functions")) && !(json_is_array(v) && json_array_size(v) == 0))
        return unsupported(err, "functions", "function calling");
    if ((v = kiln__req_field(obj, "logprobs")) && !json_is_boolean(v)) return kiln__req_bad(err, "logprobs", "must be true or false");
    if (json_is_true(v)) return unsupported(err, "logprobs", "returning log probabilities");
    if ((v = kiln__req_field(obj, "response_format"))) {
        const char *type = json_string_value(json_object_get(v, "type"));
        if (!json_is_object(v) || !type) return kiln__req_bad(err, "response_format", "must be an object with a type");
        if (strcmp(type, "text") != 0) return unsupported(err, "response_format", "a response format other than text");
    }
    if ((v = kiln__req_field(obj, "stream_options")) && !json_is_object(v))
        return kiln__req_bad(err, "stream_options", "must be an object");
    long long i = 0;
    int given;
    if (kiln__req_int(obj, "max_completion_tokens", 1, KILN__MAX_TOKENS_LIMIT, &i, &given, err)) return -1;
    if (parse_common(obj, r, err)) return -1;
    if (given && !r->max_tokens) r->max_tokens = (int32_t)i;
    return 0;
}

int kiln__gen_request_parse(enum kiln__api_kind api, const char *body, size_t len,
                            struct kiln__gen_request **out, struct kiln__api_error *err) {
    *out = NULL;
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        kiln__api_error_set(err, 400, "invalid_request_error", "invalid_json", NULL,
                            "request body: not valid JSON (line %d, column %d: %s)", jerr.line, jerr.column, jerr.text);
        return -1;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return kiln__req_bad(err, "request body", "must be a JSON object");
    }
    struct kiln__gen_request *r = calloc(1, sizeof *r);
    if (!r) {
        json_decref(root);
        return kiln__req_oom(err);
    }
    r->api = api;
    r->op = KILN__OP_INFER;
    r->root = root;
    r->sampling = kiln_sampling_default_params();
    int rc = -1;
    switch (api) {
    case KILN__API_JOB: rc = parse_job(root, r, err); break;
    case KILN__API_COMPLETION: rc = parse_completion(root, r, err); break;
    case KILN__API_CHAT: rc = parse_chat(root, r, err); break;
    }
    if (rc != 0) {
        kiln__gen_request_free(r);
        return -1;
    }
    *out = r;
    return 0;
}

void kiln__gen_request_free(struct kiln__gen_request *r) {
    if (!r) return;
    free(r->messages);
    free(r->stop);
    kiln__image_request_free(r->image);
    json_decref(r->root);
    free(r);
}

void kiln__gen_request_text_job(const struct kiln__gen_request *r, int32_t max_tokens, struct kiln__text_job *job) {
    memset(job, 0, sizeof *job);
    job->prompt = r->messages ? NULL : r->prompt;
    job->messages = r->messages;
    job->n_messages = r->n_messages;
    job->sampling = r->sampling;
    job->max_tokens = max_tokens;
    job->stop = r->stop;
    job->n_stop = r->n_stop;
}
