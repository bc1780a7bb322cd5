/* src/core/status.c - status strings, the per-thread error message and the
 * library version. */
#include <stdarg.h>
#include <stdio.h>

#include "core/error.h"
#include "kiln/status.h"
#include "kiln/version.h"

static const char *const status_text[KILN_STATUS_COUNT] = {
#define KILN_X_STATUS_TEXT(id, text) [KILN_##id] = text,
    KILN_STATUS_LIST(KILN_X_STATUS_TEXT)
#undef KILN_X_STATUS_TEXT
};

const char *kiln_status_str(kiln_status status) {
    if ((unsigned)status >= KILN_STATUS_COUNT) return "unknown status";
    return status_text[status];
}

/* The last failure message of this thread. */
static _Thread_local char last_error[KILN_ERROR_MAX];

kiln_status kiln__fail(kiln_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

void kiln__clear_error(void) { last_error[0] = '\0'; }

const char *kiln_last_error(void) { return last_error; }

const char *kiln_version(void) { return KILN_VERSION_STRING; }
