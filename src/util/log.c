/* log.c — leveled logging to stderr with a timestamp and module tag. */
#include "hoopctl/log.h"
#include "hoopctl/util.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Atomic: threads of their own (the JWKS fetcher, the shipper) log while the
 * main thread may still be settling the level. */
static atomic_int current_level = LOG_WARN;

void log_set_level(enum log_level level) { atomic_store_explicit(&current_level, (int)level, memory_order_relaxed); }
enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load_explicit(&current_level, memory_order_relaxed);
}

int log_level_parse(const char *s)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    return -1;
}

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
    static const char *const tags[] = {"error", "warn", "info", "debug"};
    if ((int)level > atomic_load_explicit(&current_level, memory_order_relaxed))
        return;
    char stamp[32];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);

    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* A message may quote what a peer sent (a token's key id, a header, a
     * server's error): controls (a newline too), C1 and bidirectional
     * controls and bytes that are not UTF-8 are shown as escapes, so that no
     * input can forge a log line or steer a terminal. */
    struct buf safe = {0};
    const char *shown = buf_append_terminal_safe(&safe, line, strlen(line), false) == 0 && buf_cstr(&safe)
                            ? buf_cstr(&safe)
                            : "(a message that could not be escaped)";
    /* One fprintf so concurrent writers do not interleave within a line. */
    fprintf(stderr, "%s.%03ldZ %s [%s] %s\n", stamp, ts.tv_nsec / 1000000L,
            tags[level], module ? module : "hoopctl", shown);
    buf_free(&safe);
}
