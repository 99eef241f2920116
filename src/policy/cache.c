/* cache.c — the decision cache: direct-mapped slots keyed by the user's
 * groups and the exact statement text. Only statements that read or change no
 * session state (no PREPARE/EXECUTE/DEALLOCATE/DISCARD) are put here. */
#include "policy_internal.h"

#include <stdlib.h>
#include <string.h>

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
