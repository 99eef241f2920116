/* parse.c — small parsers of the MCP server: durations and sizes from the
 * command line, and the gateway's "statement held for review" notice. */
#include "hoopctl/mcp.h"
#include "hoopctl/util.h"

#include <libpq-fe.h>

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

bool mcp_conninfo_check(const char *conninfo, char *why, size_t whylen)
{
    /* libpq's parse errors, by a phrase of their own, and what we say instead. */
    static const struct {
        const char *libpq, *ours;
    } kinds[] = {
        {"percent-encoded", "a %-escape in the URI is not two hex digits or is %00 (a literal % is %25)"},
        {"missing \"=\"", "a word is not a keyword=value pair"},
        {"unterminated quoted string", "a quoted value has no closing quote"},
        {"invalid connection option", "a keyword is not a libpq connection option"},
        {"URI query parameter", "a ?keyword=value parameter of the URI is malformed"},
        {"URI", "the URI is malformed"},
        {"out of memory", "out of memory"},
    };
    /* As libpq's dbname expansion: anything else is a bare database name. */
    if (strncmp(conninfo, "postgresql://", 13) != 0 && strncmp(conninfo, "postgres://", 11) != 0 &&
        !strchr(conninfo, '='))
        return true;
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
    if (opts) {
        for (PQconninfoOption *o = opts; o->keyword; o++)
            if (o->val)
                util_secure_zero(o->val, strlen(o->val));
        PQconninfoFree(opts);
        return true;
    }
    const char *ours = "libpq cannot parse it";
    for (size_t i = 0; err && i < sizeof kinds / sizeof kinds[0]; i++)
        if (strstr(err, kinds[i].libpq)) {
            ours = kinds[i].ours;
            break;
        }
    if (!err)
        ours = "out of memory";
    snprintf(why, whylen, "%s", ours);
    if (err) {
        util_secure_zero(err, strlen(err));
        PQfreemem(err);
    }
    return false;
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
