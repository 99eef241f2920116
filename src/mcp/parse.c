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

/* A non-negative decimal number followed by a unit word; returns 0 or -1. */
static int number_unit(const char *s, unsigned long long *num, const char **unit)
{
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    *num = strtoull(s, &end, 10);
    if (errno)
        return -1;
    *unit = end;
    return 0;
}

int mcp_duration_parse_ms(const char *s, long *out)
{
    unsigned long long n;
    const char *unit;
    if (number_unit(s, &n, &unit) < 0)
        return -1;
    unsigned long long mult;
    if (strcmp(unit, "ms") == 0)
        mult = 1;
    else if (strcmp(unit, "") == 0 || strcmp(unit, "s") == 0)
        mult = 1000;
    else if (strcmp(unit, "m") == 0 || strcmp(unit, "min") == 0)
        mult = 60000;
    else if (strcmp(unit, "h") == 0)
        mult = 3600000;
    else
        return -1;
    /* statement_timeout is an int of milliseconds in PostgreSQL. */
    if (n > INT32_MAX / mult)
        return -1;
    *out = (long)(n * mult);
    return 0;
}

int mcp_size_parse(const char *s, size_t *out)
{
    unsigned long long n;
    const char *unit;
    if (number_unit(s, &n, &unit) < 0)
        return -1;
    unsigned long long mult;
    if (strcmp(unit, "") == 0 || strcmp(unit, "B") == 0)
        mult = 1;
    else if (strcmp(unit, "k") == 0 || strcmp(unit, "K") == 0 || strcmp(unit, "KiB") == 0)
        mult = 1024;
    else if (strcmp(unit, "M") == 0 || strcmp(unit, "MiB") == 0)
        mult = 1024 * 1024;
    else
        return -1;
    if (n > (unsigned long long)SIZE_MAX / mult || n * mult > (1ULL << 40))
        return -1;
    *out = (size_t)(n * mult);
    return 0;
}
