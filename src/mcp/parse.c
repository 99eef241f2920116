/* parse.c — small parsers of the MCP server: durations and sizes from the
 * command line, and the gateway's "statement held for review" notice. */
#include "hoopctl/mcp.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOLD_PREFIX "hoopctl: statement held for review "

bool mcp_hold_notice_parse(const char *msg, char *id, size_t idlen)
{
    size_t plen = strlen(HOLD_PREFIX);
    if (!msg || strncmp(msg, HOLD_PREFIX, plen) != 0 || idlen == 0)
        return false;
    const char *p = msg + plen;
    size_t n = 0;
    /* An id is a run of letters, digits, '-', '_', '.' or ':'. */
    while (p[n] && (isalnum((unsigned char)p[n]) || strchr("-_.:", p[n])))
        n++;
    if (n == 0 || n >= idlen || (p[n] && p[n] != ' ' && p[n] != ';' && p[n] != ','))
        return false;
    memcpy(id, p, n);
    id[n] = '\0';
    return true;
}

struct unit {
    const char *name;
    unsigned long long scale;
};

/* A non-negative decimal number and one of units (NULL-terminated), at most
 * limit after scaling. Returns 0 or -1. */
static int scaled_number(const char *s, const struct unit *units, unsigned long long limit,
                         unsigned long long *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno)
        return -1;
    for (const struct unit *u = units; u->name; u++)
        if (strcmp(end, u->name) == 0) {
            if (n > limit / u->scale)
                return -1;
            *out = n * u->scale;
            return 0;
        }
    return -1;
}

int mcp_duration_parse_ms(const char *s, long *out)
{
    static const struct unit units[] = {
        {"ms", 1}, {"", 1000}, {"s", 1000}, {"m", 60000}, {"min", 60000}, {"h", 3600000}, {NULL, 0},
    };
    unsigned long long ms;
    /* statement_timeout is an int of milliseconds in PostgreSQL. */
    if (scaled_number(s, units, INT32_MAX, &ms) < 0)
        return -1;
    *out = (long)ms;
    return 0;
}

int mcp_size_parse(const char *s, size_t *out)
{
    static const struct unit units[] = {
        {"", 1}, {"B", 1}, {"k", 1024}, {"K", 1024}, {"KiB", 1024}, {"M", 1048576}, {"MiB", 1048576},
        {NULL, 0},
    };
    unsigned long long n;
    if (scaled_number(s, units, 1ULL << 40, &n) < 0)
        return -1;
    *out = (size_t)n;
    return 0;
}
