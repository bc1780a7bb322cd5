/* src/core/log.c - leveled text / JSON-line logging. */
#include "core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Threshold; -1 until the environment has been read. */
static int log_level = -1;
static kiln_log_format log_format = KILN_LOG_TEXT;
static FILE *log_stream; /* NULL means stderr */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

int kiln__log_level_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i <= KILN_LOG_OFF; i++)
        if (strcmp(name, level_names[i]) == 0) return i;
    return -1;
}

void kiln__log_set_level(kiln_log_level level) { log_level = (int)level; }

kiln_log_level kiln__log_get_level(void) {
    if (log_level < 0) {
        int from_env = kiln__log_level_from_name(getenv("KILN_LOG_LEVEL"));
        log_level = from_env >= 0 ? from_env : KILN_LOG_INFO;
    }
    return (kiln_log_level)log_level;
}

void kiln__log_set_format(kiln_log_format format) { log_format = format; }
void kiln__log_set_stream(FILE *stream) { log_stream = stream; }

/* Write `s` as the body of a JSON string (without quotes). */
static void put_json_escaped(FILE *out, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*p < 0x20) fprintf(out, "\\u%04x", *p);
            else fputc(*p, out);
        }
    }
}

void kiln__log(kiln_log_level level, const char *fmt, ...) {
    if (level >= KILN_LOG_OFF || level < kiln__log_get_level()) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm utc;
    gmtime_r(&now.tv_sec, &utc);
    char ts[40];
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", now.tv_nsec / 1000000L);

    pthread_mutex_lock(&log_lock);
    FILE *out = log_stream ? log_stream : stderr;
    if (log_format == KILN_LOG_JSON) {
        fprintf(out, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, level_names[level]);
        put_json_escaped(out, msg);
        fputs("\"}\n", out);
    } else {
        static const char *const tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
        fprintf(out, "%s %s %s\n", ts, tags[level], msg);
    }
    fflush(out);
    pthread_mutex_unlock(&log_lock);
}
