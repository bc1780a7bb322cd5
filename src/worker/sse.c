/* src/worker/sse.c - SSE messages, written by hand on the token path (no
 * JSON tree per token) with kiln__buf_json_string doing the escaping. */
#include "worker/sse.h"

#include <string.h>

int kiln__sse_comment(struct kiln__buf *b, const char *text) { return kiln__buf_printf(b, ": %s\n\n", text); }

int kiln__sse_done(struct kiln__buf *b) { return kiln__buf_puts(b, "data: [DONE]\n\n"); }

int kiln__sse_rbee_started(struct kiln__buf *b, const char *job_id, const char *model, int32_t prompt_tokens,
                           double queue_ms) {
    kiln__buf_puts(b, "data: {\"type\":\"started\",\"job_id\":");
    kiln__buf_json_string(b, job_id, strlen(job_id));
    kiln__buf_puts(b, ",\"model\":");
    kiln__buf_json_string(b, model, strlen(model));
    return kiln__buf_printf(b, ",\"prompt_tokens\":%d,\"queue_time_ms\":%.1f}\n\n", prompt_tokens, queue_ms);
}

int kiln__sse_rbee_token(struct kiln__buf *b, const char *text, size_t len, size_t index) {
    kiln__buf_puts(b, "data: {\"type\":\"token\",\"t\":");
    kiln__buf_json_string(b, text, len);
    return kiln__buf_printf(b, ",\"i\":%zu}\n\n", index);
}

int kiln__sse_rbee_end(struct kiln__buf *b, const struct kiln__text_stats *s) {
    return kiln__buf_printf(b,
                            "data: {\"type\":\"end\",\"tokens_in\":%d,\"tokens_out\":%d,\"prompt_time_ms\":%.1f,"
                            "\"decode_time_ms\":%.1f,\"stop_reason\":\"%s\"}\n\n",
                            s->prompt_tokens, s->completion_tokens, s->prompt_ms, s->decode_ms,
                            kiln__stop_reason_name(s->stop_reason));
}

int kiln__sse_rbee_error(struct kiln__buf *b, const char *code, const char *message) {
    kiln__buf_puts(b, "data: {\"type\":\"error\",\"code\":");
    kiln__buf_json_string(b, code, strlen(code));
    kiln__buf_puts(b, ",\"message\":");
    kiln__buf_json_string(b, message, strlen(message));
    return kiln__buf_puts(b, "}\n\n");
}

const char *kiln__openai_finish_reason(enum kiln__stop_reason r) {
    switch (r) {
    case KILN__STOP_MAX_TOKENS: return "length";
    case KILN__STOP_EOS:
    case KILN__STOP_SEQUENCE: return "stop";
    case KILN__STOP_CANCELLED:
    case KILN__STOP_ERROR: return NULL;
    }
    return NULL;
}

/* data: {"id":..,"object":..,"created":..,"model":..,"choices":  */
static void chunk_head(struct kiln__buf *b, const struct kiln__openai_stream_id *sid) {
    kiln__buf_puts(b, "data: {\"id\":");
    kiln__buf_json_string(b, sid->id, strlen(sid->id));
    kiln__buf_printf(b, ",\"object\":\"%s\",\"created\":%lld,\"model\":",
                     sid->kind == KILN__OPENAI_CHAT ? "chat.completion.chunk" : "text_completion", sid->created);
    kiln__buf_json_string(b, sid->model, strlen(sid->model));
    kiln__buf_puts(b, ",\"choices\":");
}

int kiln__sse_openai_chunk(struct kiln__buf *b, const struct kiln__openai_stream_id *sid, const char *text,
                           size_t len, int with_role, const char *finish_reason) {
    chunk_head(b, sid);
    if (sid->kind == KILN__OPENAI_CHAT) {
        kiln__buf_puts(b, "[{\"index\":0,\"delta\":{");
        if (with_role) kiln__buf_puts(b, "\"role\":\"assistant\",");
        kiln__buf_puts(b, "\"content\":");
        kiln__buf_json_string(b, text, len);
        kiln__buf_puts(b, "},\"logprobs\":null");
    } else {
        kiln__buf_puts(b, "[{\"index\":0,\"text\":");
        kiln__buf_json_string(b, text, len);
        kiln__buf_puts(b, ",\"logprobs\":null");
    }
    if (finish_reason) return kiln__buf_printf(b, ",\"finish_reason\":\"%s\"}]}\n\n", finish_reason);
    return kiln__buf_puts(b, ",\"finish_reason\":null}]}\n\n");
}

int kiln__sse_openai_usage(struct kiln__buf *b, const struct kiln__openai_stream_id *sid, int32_t prompt_tokens,
                           int32_t completion_tokens) {
    chunk_head(b, sid);
    return kiln__buf_printf(b,
                            "[],\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n",
                            prompt_tokens, completion_tokens, prompt_tokens + completion_tokens);
}

int kiln__sse_openai_error(struct kiln__buf *b, const char *code, const char *message) {
    kiln__buf_puts(b, "data: {\"error\":{\"message\":");
    kiln__buf_json_string(b, message, strlen(message));
    kiln__buf_puts(b, ",\"type\":\"server_error\",\"code\":");
    kiln__buf_json_string(b, code, strlen(code));
    return kiln__buf_puts(b, "}}\n\n");
}

int kiln__sse_image_progress(struct kiln__buf *b, uint32_t step, uint32_t total, double eta_ms) {
    double pct = total ? 100.0 * step / total : 0;
    return kiln__buf_printf(b,
                            "event: progress\ndata: {\"step\":%u,\"total\":%u,\"percent\":%.1f,\"eta_ms\":%.0f}\n\n",
                            step, total, pct, eta_ms);
}

int kiln__sse_image_preview(struct kiln__buf *b, uint32_t step, uint32_t total, const char *b64) {
    kiln__buf_printf(b, "event: preview\ndata: {\"step\":%u,\"total\":%u,\"image\":\"", step, total);
    kiln__buf_puts(b, b64); /* the base64 alphabet needs no escaping */
    return kiln__buf_puts(b, "\",\"format\":\"png\"}\n\n");
}

int kiln__sse_image_started(struct kiln__buf *b, const char *job_id, const char *model, double queue_ms) {
    kiln__buf_puts(b, "event: started\ndata: {\"job_id\":");
    kiln__buf_json_string(b, job_id, strlen(job_id));
    kiln__buf_puts(b, ",\"model\":");
    kiln__buf_json_string(b, model, strlen(model));
    return kiln__buf_printf(b, ",\"queue_time_ms\":%.1f}\n\n", queue_ms);
}

int kiln__sse_image_complete(struct kiln__buf *b, const char *const *b64, const char *const *parameters,
                             uint32_t count, uint64_t seed, uint32_t width, uint32_t height, const char *format) {
    kiln__buf_puts(b, "event: complete\ndata: {\"images\":[");
    for (uint32_t i = 0; i < count; i++) {
        kiln__buf_puts(b, i ? ",\"" : "\"");
        kiln__buf_puts(b, b64[i]);
        kiln__buf_puts(b, "\"");
    }
    kiln__buf_printf(b, "],\"seed\":%llu,\"parameters\":[", (unsigned long long)seed);
    for (uint32_t i = 0; i < count; i++) {
        if (i) kiln__buf_puts(b, ",");
        kiln__buf_json_string(b, parameters[i], strlen(parameters[i]));
    }
    return kiln__buf_printf(b, "],\"width\":%u,\"height\":%u,\"format\":\"%s\"}\n\n", width, height, format);
}

int kiln__sse_image_error(struct kiln__buf *b, const char *code, const char *message) {
    kiln__buf_puts(b, "event: error\ndata: {\"code\":");
    kiln__buf_json_string(b, code, strlen(code));
    kiln__buf_puts(b, ",\"message\":");
    kiln__buf_json_string(b, message, strlen(message));
    return kiln__buf_puts(b, "}\n\n");
}
