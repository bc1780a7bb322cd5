/* src/core/error.h - recording why a call failed (internal).
 *
 * Library code reports failure as `return kiln__fail(KILN_ERR_FORMAT, "gguf:
 * ...", ...)`: the message goes to the calling thread's buffer, which the
 * public kiln_last_error() returns.
 */
#ifndef KILN_CORE_ERROR_H
#define KILN_CORE_ERROR_H

#include "kiln/status.h"

#if defined(__GNUC__)
#define KILN_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))
#else
#define KILN_PRINTF(fmt_idx, arg_idx)
#endif

/* Longest message kept (bytes, including the terminating NUL). */
#define KILN_ERROR_MAX 512

/* Store a printf-style message for this thread and return `status`. */
kiln_status kiln__fail(kiln_status status, const char *fmt, ...) KILN_PRINTF(2, 3);
/* Forget this thread's message. */
void kiln__clear_error(void);

#endif /* KILN_CORE_ERROR_H */
