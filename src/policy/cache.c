/* cache.c — the decision cache: direct-mapped slots keyed by the user's
 * groups and the exact statement text, or the statement's shape (its tokens
 * with literals left out). Only statements that read or change no session
 * state (no PREPARE/EXECUTE/DEALLOCATE/DISCARD, cursors) are put here. */
#include "policy_internal.h"

#include <pg_query.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libpg_query's token numbers (pg_query.proto, enum Token) for literals. */
enum {
    SHAPE_FCONST = 260, SHAPE_SCONST = 261, SHAPE_USCONST = 262, SHAPE_BCONST = 263,
    SHAPE_XCONST = 264, SHAPE_ICONST = 266,
    SHAPE_UESCAPE = 685, /* its string says how U&"..." names read: no shape */
};

/* One protobuf varint from [*p, end); false when truncated or too long. */
static bool pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

/* Skip a field of wire type wt; false when malformed. */
static bool pb_skip(const uint8_t **p, const uint8_t *end, unsigned wt)
{
    uint64_t v;
    switch (wt) {
    case 0: return pb_varint(p, end, &v);
    case 1: if (end - *p < 8) return false; *p += 8; return true;
    case 2: if (!pb_varint(p, end, &v) || v > (uint64_t)(end - *p)) return false; *p += v; return true;
    case 5: if (end - *p < 4) return false; *p += 4; return true;
    default: return false;
    }
}

/* One ScanToken message {1 start, 2 end, 4 token}; false when malformed. */
static bool pb_scan_token(const uint8_t *p, const uint8_t *end, uint64_t *start, uint64_t *stop, uint64_t *token)
{
    *start = *stop = *token = 0;
    while (p < end) {
        uint64_t tag, v;
        if (!pb_varint(&p, end, &tag))
            return false;
        unsigned field = (unsigned)(tag >> 3), wt = (unsigned)(tag & 7);
        if (wt == 0 && (field == 1 || field == 2 || field == 4)) {
            if (!pb_varint(&p, end, &v))
                return false;
            *(field == 1 ? start : field == 2 ? stop : token) = v;
        } else if (!pb_skip(&p, end, wt)) {
            return false;
        }
    }
    return true;
}

/* v in decimal and then sep, appended (buf_printf per token costs more
 * than the scanner itself). */
static int put_num(struct buf *b, uint64_t v, char sep)
{
    char t[24];
    size_t i = sizeof t - 1;
    t[i] = sep;
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return buf_append(b, t + i, sizeof t - i);
}

char *policy_shape_key(const char *sql)
{
    size_t len = strlen(sql);
    PgQueryScanResult r = pg_query_scan(sql);
    if (r.error) {
        pg_query_free_scan_result(r);
        return NULL;
    }
    struct buf key = {0};
    bool ok = true, literal = false;
    const uint8_t *p = (const uint8_t *)r.pbuf.data, *end = p + r.pbuf.len;
    while (ok && p < end) {
        uint64_t tag, n;
        ok = pb_varint(&p, end, &tag);
        if (!ok)
            break;
        if ((tag >> 3) != 2 || (tag & 7) != 2) {
            ok = pb_skip(&p, end, (unsigned)(tag & 7));
            continue;
        }
        ok = pb_varint(&p, end, &n) && n <= (uint64_t)(end - p);
        uint64_t start, stop, token;
        ok = ok && pb_scan_token(p, p + n, &start, &stop, &token) && start <= stop && stop <= len;
        if (!ok)
            break;
        p += n;
        if (token == SHAPE_UESCAPE) {
            ok = false;
            break;
        }
        /* Length-prefixed, so that no two token lists give the same key. */
        if (token == SHAPE_FCONST || token == SHAPE_SCONST || token == SHAPE_USCONST || token == SHAPE_BCONST ||
            token == SHAPE_XCONST || token == SHAPE_ICONST) {
            literal = true;
            ok = put_num(&key, token, ':') == 0 && buf_append(&key, "L;", 2) == 0;
        } else {
            ok = put_num(&key, token, ':') == 0 && put_num(&key, stop - start, ':') == 0 &&
                 buf_append(&key, sql + start, (size_t)(stop - start)) == 0;
        }
    }
    pg_query_free_scan_result(r);
    if (!ok || !literal || buf_cstr(&key) == NULL) {
        buf_free(&key);
        return NULL;
    }
    return (char *)key.data;
}

void policy_cache_init(struct policy_cache *c)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
}

void policy_cache_destroy(struct policy_cache *c)
{
    for (size_t i = 0; i < POLICY_CACHE_SLOTS; i++) {
        free(c->slots[i].key);
        policy_analysis_free(&c->slots[i].analysis);
    }
    pthread_mutex_destroy(&c->lock);
}

/* FNV-1a over groups, a separator and the text. */
static uint64_t key_hash(const char *groups, const char *sql)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *s = groups; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    h = (h ^ 0x1f) * 1099511628211ULL;
    for (const char *s = sql; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

static bool key_equal(const char *key, const char *groups, const char *sql)
{
    size_t gl = strlen(groups);
    return strncmp(key, groups, gl) == 0 && key[gl] == 0x1f && strcmp(key + gl + 1, sql) == 0;
}

bool policy_cache_get(struct policy_cache *c, const char *groups, const char *sql, struct policy_decision *out,
                      struct policy_analysis *analysis)
{
    uint64_t h = key_hash(groups, sql);
    struct policy_cache_entry *e = &c->slots[h % POLICY_CACHE_SLOTS];
    bool hit = false;
    pthread_mutex_lock(&c->lock);
    if (e->key && e->hash == h && key_equal(e->key, groups, sql) &&
        (!analysis || policy_analysis_copy(analysis, &e->analysis) == 0)) {
        *out = e->decision;
        hit = true;
        c->hits++;
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

void policy_cache_put(struct policy_cache *c, const char *groups, const char *sql, const struct policy_decision *d,
                      struct policy_analysis *a, bool take)
{
    uint64_t h = key_hash(groups, sql);
    size_t gl = strlen(groups), sl = strlen(sql);
    char *key = malloc(gl + sl + 2);
    struct policy_analysis copy;
    if (key && take) {
        copy = *a;
        memset(a, 0, sizeof(*a));
    } else if (!key || policy_analysis_copy(&copy, a) < 0) {
        free(key);
        return; /* not caching is always safe (a taken analysis is the caller's to free) */
    }
    memcpy(key, groups, gl);
    key[gl] = 0x1f;
    memcpy(key + gl + 1, sql, sl + 1);
    pthread_mutex_lock(&c->lock);
    struct policy_cache_entry *e = &c->slots[h % POLICY_CACHE_SLOTS];
    free(e->key);
    policy_analysis_free(&e->analysis);
    e->analysis = copy;
    e->key = key;
    e->hash = h;
    e->decision = *d;
    e->decision.cached = false;
    pthread_mutex_unlock(&c->lock);
}
