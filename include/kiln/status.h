/* kiln/status.h - status codes returned by every fallible kiln call.
 *
 * The list is written once (KILN_STATUS_LIST) and generates both the enum and
 * the strings returned by kiln_status_str(). A failing call also leaves a
 * human-readable message for the calling thread in kiln_last_error().
 */
#ifndef KILN_STATUS_H
#define KILN_STATUS_H

#include "kiln/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(enum suffix, short description) */
#define KILN_STATUS_LIST(X)                                                  \
    X(OK, "success")                                                         \
    X(ERR_INVALID_ARG, "invalid argument")                                   \
    X(ERR_OUT_OF_MEMORY, "out of memory")                                    \
    X(ERR_IO, "input/output error")                                          \
    X(ERR_NOT_FOUND, "not found")                                            \
    X(ERR_FORMAT, "malformed file")                                          \
    X(ERR_UNSUPPORTED, "unsupported")                                        \
    X(ERR_TOO_LARGE, "too large")                                            \
    X(ERR_CANCELLED, "cancelled")                                            \
    X(ERR_CONTEXT_FULL, "context full")                                      \
    X(ERR_INTERNAL, "internal error")

typedef enum kiln_status {
#define KILN_X_STATUS_ENUM(id, text) KILN_##id,
    KILN_STATUS_LIST(KILN_X_STATUS_ENUM)
#undef KILN_X_STATUS_ENUM
    KILN_STATUS_COUNT /* number of status codes; not a status */
} kiln_status;

/* Short description of a status code. Returns a static string (never free
 * it); an out-of-range value gives "unknown status". */
KILN_API const char *kiln_status_str(kiln_status status);

/* The message left by the last failing kiln call on this thread, e.g.
 * "gguf: tensor 'blk.0.attn_q.weight' data ends past the end of the file".
 * Returns a thread-local string owned by kiln, valid until the next kiln call
 * on the same thread; "" when no error was recorded. */
KILN_API const char *kiln_last_error(void);

#ifdef __cplusplus
}
#endif
#endif /* KILN_STATUS_H */
