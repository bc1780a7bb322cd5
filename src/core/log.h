/* src/core/log.h - leveled logging to stderr, as text or JSON lines.
 *
 * Text:  "2026-11-27T10:00:00.123Z INFO  loaded 291 tensors"
 * JSON:  {"ts":"2026-11-27T10:00:00.123Z","level":"info","msg":"loaded 291 tensors"}
 * The JSON form is for the daemon, whose logs go to collectors. Writes are
 * serialized so lines from different threads never interleave.
 */
#ifndef KILN_CORE_LOG_H
#define KILN_CORE_LOG_H

#include <stdio.h>

#include "core/error.h"

typedef enum kiln_log_level {
    KILN_LOG_DEBUG,
    KILN_LOG_INFO,
    KILN_LOG_WARN,
    KILN_LOG_ERROR,
    KILN_LOG_OFF, /* as a threshold: print nothing */
} kiln_log_level;

typedef enum kiln_log_format {
    KILN_LOG_TEXT, /* human-readable line */
    KILN_LOG_JSON, /* one JSON object per line */
} kiln_log_format;

/* Messages below `level` are dropped. Default: KILN_LOG_INFO, or the value
 * of KILN_LOG_LEVEL (debug|info|warn|error|off) read at the first log call. */
void kiln__log_set_level(kiln_log_level level);
kiln_log_level kiln__log_get_level(void);
void kiln__log_set_format(kiln_log_format format);
/* Send output to `stream` instead of stderr (tests); NULL restores stderr. */
void kiln__log_set_stream(FILE *stream);
/* Level from its name ("debug", ...); returns -1 for an unknown name. */
int kiln__log_level_from_name(const char *name);

void kiln__log(kiln_log_level level, const char *fmt, ...) KILN_PRINTF(2, 3);

#define KILN_LOG_DEBUG(...) kiln__log(KILN_LOG_DEBUG, __VA_ARGS__)
#define KILN_LOG_INFO(...) kiln__log(KILN_LOG_INFO, __VA_ARGS__)
#define KILN_LOG_WARN(...) kiln__log(KILN_LOG_WARN, __VA_ARGS__)
#define KILN_LOG_ERROR(...) kiln__log(KILN_LOG_ERROR, __VA_ARGS__)

#endif /* KILN_CORE_LOG_H */
