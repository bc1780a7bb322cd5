/* src/worker/sse.h - Server-Sent Events framing and the events the worker
 * streams: rbee job events and OpenAI completion / chat chunks. Each
 * function appends one complete SSE message to a buffer. */
#ifndef KILN_WORKER_SSE_H
#define KILN_WORKER_SSE_H

#include <stddef.h>
#include <stdint.h>

#include "worker/backend.h"
#include "worker/buf.h"

/* ": text\n\n" - a comment, which clients ignore (keep-alive). */
int kiln__sse_comment(struct kiln__buf *b, const char *text);
/* "data: [DONE]\n\n" - the end of every stream. */
int kiln__sse_done(struct kiln__buf *b);

/* rbee: {"type":"started","job_id","model","prompt_tokens","queue_time_ms"} */
int kiln__sse_rbee_started(struct kiln__buf *b, const char *job_id, const char *model, int32_t prompt_tokens,
                           double queue_ms);
/* rbee: {"type":"token","t":text,"i":index} */
int kiln__sse_rbee_token(struct kiln__buf *b, const char *text, size_t len, size_t index);
/* rbee: {"type":"end","tokens_in","tokens_out","prompt_time_ms","decode_time_ms","stop_reason"} */
int kiln__sse_rbee_end(struct kiln__buf *b, const struct kiln__text_stats *s);
/* rbee: {"type":"error","code","message"} */
int kiln__sse_rbee_error(struct kiln__buf *b, const char *code, const char *message);

/* Image jobs: named events ("event: NAME\ndata: {...}\n\n").
 * progress: {"step","total","percent","eta_ms"} */
int kiln__sse_image_progress(struct kiln__buf *b, uint32_t step, uint32_t total, double eta_ms);
/* preview: {"step","total","image","format":"png"} (image is base64) */
int kiln__sse_image_preview(struct kiln__buf *b, uint32_t step, uint32_t total, const char *b64);
/* started: {"job_id","model","queue_time_ms"} */
int kiln__sse_image_started(struct kiln__buf *b, const char *job_id, const char *model, double queue_ms);
/* complete: {"images":[base64...],"seed","parameters":[infotext...],"width","height","format"} */
int kiln__sse_image_complete(struct kiln__buf *b, const char *const *b64, const char *const *parameters,
                             uint32_t count, uint64_t seed, uint32_t width, uint32_t height, const char *format);
/* error: {"code","message"} */
int kiln__sse_image_error(struct kiln__buf *b, const char *code, const char *message);

/* The OpenAI finish_reason of a stop reason: "length" for max_tokens,
 * "stop" for EOS and stop strings, NULL for cancelled and error. */
const char *kiln__openai_finish_reason(enum kiln__stop_reason r);

/* Which OpenAI object a stream is made of. */
enum kiln__openai_kind {
    KILN__OPENAI_COMPLETION, /* text_completion chunks: choices[].text */
    KILN__OPENAI_CHAT,       /* chat.completion.chunk: choices[].delta */
};

/* The identity every chunk of one OpenAI response repeats. */
struct kiln__openai_stream_id {
    enum kiln__openai_kind kind; /* completion or chat */
    const char *id;              /* "cmpl-..." or "chatcmpl-..." */
    long long created;           /* unix seconds */
    const char *model;           /* model id */
};

/* One chunk: text (may be empty), the assistant role on the first chat
 * chunk (with_role), and finish_reason (NULL = null) on the last. */
int kiln__sse_openai_chunk(struct kiln__buf *b, const struct kiln__openai_stream_id *sid, const char *text,
                           size_t len, int with_role, const char *finish_reason);
/* The usage chunk: "choices":[] and "usage":{prompt,completion,total}. */
int kiln__sse_openai_usage(struct kiln__buf *b, const struct kiln__openai_stream_id *sid, int32_t prompt_tokens,
                           int32_t completion_tokens);
/* An error in the middle of a stream: {"error":{"message","type","code"}}. */
int kiln__sse_openai_error(struct kiln__buf *b, const char *code, const char *message);

#endif /* KILN_WORKER_SSE_H */
