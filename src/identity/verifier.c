/* verifier.c — the server's OIDC JWT verifier (struct auth_verifier): the
 * issuer's JWKS cached and refetched on an unknown kid at most once per
 * interval, and once it is older than its max age (10 min), header alg checked against the key BEFORE any signature check,
 * then iss, aud, exp/nbf/iat with skew, sub, and groups from a claim.
 * Fetches run on a thread of their own; callers wait for one until at most
 * fetch_wait_ms after it began, and are told to retry after that
 * (AUTH_UNAVAILABLE). */
#include "internal.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "hoopctl/identity.h"
#include "hoopctl/log.h"

struct jwt_verifier {
    char issuer[IDENTITY_URL_LEN];
    char audience[IDENTITY_URL_LEN];
    char jwks_uri[IDENTITY_URL_LEN];  /* set before the first fetch, or by it (discovery) */
    char groups_claim[128];
    json_t *fixed_jwks;            /* set: never fetch */
    int clock_skew, refetch_interval, fetch_wait_ms, max_age_ms;
    pthread_mutex_t lock;          /* guards everything below; never held over HTTP */
    pthread_cond_t fetched;        /* broadcast when a fetch ends */
    struct identity_jwk keys[IDENTITY_MAX_KEYS];
    int nkeys;
    bool loaded;                   /* keys came from a fetch (or the fixed JWKS) */
    int64_t last_fetch_us;         /* monotonic start of the last fetch; 0 = never */
    int64_t keys_fetch_us;         /* monotonic start of the fetch the keys came from */
    uint64_t fetch_gen;            /* fetches ended so far, failed ones included */
    char fetch_err[256];           /* why the last fetch failed ("" when it did not) */
    unsigned fetches;
    bool fetching;                 /* a fetch thread is running */
    pthread_t fetcher;
    bool fetcher_joinable;
    atomic_bool stopping;          /* set by destroy: a running fetch gives up */
};

/* Copy a string that was length-checked already (cut when it was not). */
static void snprintf_trunc(char *dst, size_t len, const char *src)
{
    size_t n = strnlen(src, len - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Fetch the JWKS over HTTP and parse it into fresh[]: no lock held, so that
 * tokens with known keys verify meanwhile. Returns the key count or -1. */
static int verifier_fetch_keys(const char *issuer, char *jwks_uri, size_t urilen,
                               struct identity_jwk fresh[IDENTITY_MAX_KEYS], char *err, size_t errlen)
{
    if (!jwks_uri[0]) {
        struct identity_provider p;
        if (identity_discover(issuer, &p, err, errlen) < 0)
            return -1;
        snprintf_trunc(jwks_uri, urilen, p.jwks_uri);
    }
    long status = 0;
    json_t *doc = identity_http_json(jwks_uri, NULL, &status, err, errlen);
    if (doc && status != 200) {
        snprintf(err, errlen, "JWKS %.200s: HTTP %ld", jwks_uri, status);
        json_decref(doc);
        doc = NULL;
    }
    if (!doc)
        return -1;
    int n = identity_jwks_parse(doc, fresh, IDENTITY_MAX_KEYS, err, errlen);
    json_decref(doc);
    return n;
}

/* The fetch thread: one fetch, then the keys swapped in under the lock. */
static void *verifier_fetch_main(void *arg)
{
    struct jwt_verifier *v = arg;
    char uri[IDENTITY_URL_LEN], err[256] = "";
    pthread_mutex_lock(&v->lock);
    memcpy(uri, v->jwks_uri, sizeof uri);
    int64_t started_us = v->last_fetch_us;
    pthread_mutex_unlock(&v->lock);
    struct identity_jwk fresh[IDENTITY_MAX_KEYS];
    identity_http_abort_on(&v->stopping);
    int n = verifier_fetch_keys(v->issuer, uri, sizeof uri, fresh, err, sizeof err);
    pthread_mutex_lock(&v->lock);
    memcpy(v->jwks_uri, uri, sizeof uri);
    if (n >= 0) {
        v->keys_fetch_us = started_us;
        identity_jwks_free(v->keys, v->nkeys);
        memcpy(v->keys, fresh, sizeof(struct identity_jwk) * (size_t)n);
        v->nkeys = n;
        v->loaded = true;
        v->fetches++;
        v->fetch_err[0] = '\0';
        log_debug("identity", "JWKS of %s: %d usable keys", v->issuer, n);
    } else {
        snprintf(v->fetch_err, sizeof v->fetch_err, "%s", err);
        if (!atomic_load(&v->stopping))
            log_warn("identity", "JWKS of %s not fetched: %s", v->issuer, err);
    }
    v->fetch_gen++;
    v->fetching = false;
    pthread_cond_broadcast(&v->fetched);
    pthread_mutex_unlock(&v->lock);
    return NULL;
}

/* Start a fetch on a thread of its own unless one runs. Called locked. */
static void verifier_start_fetch(struct jwt_verifier *v)
{
    if (v->fetching)
        return;
    if (v->fetcher_joinable) /* it has ended (fetching is false): reap it */
        pthread_join(v->fetcher, NULL);
    v->fetcher_joinable = false;
    v->last_fetch_us = util_monotonic_us();
    v->fetching = true;
    if (pthread_create(&v->fetcher, NULL, verifier_fetch_main, v) != 0) {
        v->fetching = false;
        snprintf(v->fetch_err, sizeof v->fetch_err, "cannot start a thread to fetch the JWKS");
        v->fetch_gen++;
        return;
    }
    v->fetcher_joinable = true;
}

/* Wait (locked) for the running fetch to end, until fetch_wait_ms after it
 * began: so a fetch that hangs costs the callers that wait on it that long
 * in all, not that long each (tokens with forged key ids, one after another,
 * would otherwise stall the server's loop 250 ms apiece). Returns true when
 * it ended. */
static bool verifier_wait_fetch(struct jwt_verifier *v)
{
    if (!v->fetching)
        return true;
    int64_t left_ms = v->fetch_wait_ms - (util_monotonic_us() - v->last_fetch_us) / 1000;
    if (left_ms <= 0)
        return false;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    int64_t ns = until.tv_nsec + left_ms * 1000000;
    until.tv_sec += (time_t)(ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    while (v->fetching)
        if (pthread_cond_timedwait(&v->fetched, &v->lock, &until) != 0)
            break;
    return !v->fetching;
}

/* The key for (kid, alg): by kid when the token names one, else the only
 * key of the alg's type. NULL when none. */
static const struct identity_jwk *verifier_find_key(struct jwt_verifier *v, const char *kid,
                                                    enum identity_key_type want)
{
    const struct identity_jwk *found = NULL;
    int matches = 0;
    for (int i = 0; i < v->nkeys; i++) {
        if (kid) {
            if (strcmp(v->keys[i].kid, kid) == 0)
                return &v->keys[i];
        } else if (v->keys[i].type == want) {
            found = &v->keys[i];
            matches++;
        }
    }
    return matches == 1 ? found : NULL;
}

static bool claim_has_audience(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    size_t i;
    json_t *a;
    if (json_is_array(aud))
        json_array_foreach(aud, i, a) if (json_is_string(a) && strcmp(json_string_value(a), want) == 0) return true;
    return false;
}

/* A NumericDate claim: -1 absent, 0 present (in *out), -2 not a number. */
static int claim_time(json_t *claims, const char *name, int64_t *out)
{
    json_t *v = json_object_get(claims, name);
    if (!v)
        return -1;
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return -2;
    double d = json_number_value(v);
    if (d < 0 || d > 1e11)
        return -2;
    *out = (int64_t)d;
    return 0;
}

static int copy_claim(json_t *claims, const char *name, char *dst, size_t len, bool required,
                      char *err, size_t errlen)
{
    json_t *v = json_object_get(claims, name);
    if (!v && !required) {
        dst[0] = '\0';
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= len ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(err, errlen, "claim '%s' is %s", name, v ? "not a usable string" : "missing");
        return -1;
    }
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int claims_groups(json_t *claims, const char *path, struct auth_identity *out, char *err,
                         size_t errlen)
{
    json_t *node = claims;
    char part[128];
    for (const char *s = path; node && *s;) {
        const char *dot = strchr(s, '.');
        size_t n = dot ? (size_t)(dot - s) : strlen(s);
        if (n >= sizeof part)
            return 0;
        memcpy(part, s, n);
        part[n] = '\0';
        node = json_object_get(node, part);
        s += n + (dot ? 1 : 0);
    }
    if (!node)
        return 0; /* no groups */
    if (json_is_string(node)) { /* a single group */
        if (json_string_length(node) == 0 || json_string_length(node) >= AUTH_GROUP_LEN) {
            snprintf(err, errlen, "claim '%s' is not a string of 1..%d bytes", path, AUTH_GROUP_LEN - 1);
            return -1;
        }
        memcpy(out->groups[out->ngroups++], json_string_value(node), json_string_length(node) + 1);
        return 0;
    }
    if (!json_is_array(node)) {
        snprintf(err, errlen, "claim '%s' is neither a list nor a string", path);
        return -1;
    }
    if (json_array_size(node) > AUTH_MAX_GROUPS) {
        snprintf(err, errlen, "claim '%s' lists more than %d groups", path, AUTH_MAX_GROUPS);
        return -1;
    }
    size_t i;
    json_t *g;
    json_array_foreach(node, i, g) {
        if (!json_is_string(g) || json_string_length(g) == 0 || json_string_length(g) >= AUTH_GROUP_LEN) {
            snprintf(err, errlen, "claim '%s' has a group that is not a string of 1..%d bytes", path,
                     AUTH_GROUP_LEN - 1);
            return -1;
        }
        memcpy(out->groups[out->ngroups++], json_string_value(g), json_string_length(g) + 1);
    }
    return 0;
}

static int verifier_check_claims(struct jwt_verifier *v, json_t *c, struct auth_identity *out,
                                 char *err, size_t errlen)
{
    const char *iss = json_string_value(json_object_get(c, "iss"));
    if (!iss || strcmp(iss, v->issuer) != 0) {
        snprintf(err, errlen, "wrong issuer: '%.200s', expected '%.200s'", iss ? iss : "(none)", v->issuer);
        return -1;
    }
    if (!claim_has_audience(json_object_get(c, "aud"), v->audience)) {
        snprintf(err, errlen, "wrong audience: token is not for '%.200s'", v->audience);
        return -1;
    }
    int64_t now = util_now_ms() / 1000, exp = 0, nbf = 0, iat = 0;
    int r = claim_time(c, "exp", &exp);
    if (r < 0) {
        snprintf(err, errlen, "claim 'exp' is %s", r == -1 ? "missing" : "not a time");
        return -1;
    }
    if (now > exp + v->clock_skew) {
        snprintf(err, errlen, "token expired %lld s ago", (long long)(now - exp));
        return -1;
    }
    r = claim_time(c, "nbf", &nbf);
    if (r == -2 || (r == 0 && nbf > now + v->clock_skew)) {
        snprintf(err, errlen, r == -2 ? "claim 'nbf' is not a time" : "token not valid yet (nbf in %lld s)",
                 (long long)(nbf - now));
        return -1;
    }
    r = claim_time(c, "iat", &iat);
    if (r == -2 || (r == 0 && iat > now + v->clock_skew)) {
        snprintf(err, errlen, r == -2 ? "claim 'iat' is not a time" : "token issued in the future (iat in %lld s)",
                 (long long)(iat - now));
        return -1;
    }
    memset(out, 0, sizeof *out);
    if (copy_claim(c, "sub", out->subject, sizeof out->subject, true, err, errlen) < 0 ||
        copy_claim(c, "email", out->email, sizeof out->email, false, err, errlen) < 0 ||
        copy_claim(c, "name", out->name, sizeof out->name, false, err, errlen) < 0 ||
        claims_groups(c, v->groups_claim, out, err, errlen) < 0)
        return -1;
    snprintf_trunc(out->issuer, sizeof out->issuer, v->issuer);
    snprintf_trunc(out->kind, sizeof out->kind, "oidc");
    out->expires_at = exp;
    return 0;
}

static enum auth_result verifier_verify(void *ctx, const char *token, struct auth_identity *out,
                                        char *err, size_t errlen)
{
    struct jwt_verifier *v = ctx;
    if (!token || !strchr(token, '.')) {
        snprintf(err, errlen, "not a JWT");
        return AUTH_NOT_MINE;
    }
    struct identity_jws j;
    if (identity_jws_decode(token, &j, err, errlen) < 0)
        return AUTH_REFUSED;
    enum auth_result res = AUTH_REFUSED;
    const char *alg = json_string_value(json_object_get(j.header, "alg"));
    json_t *kidv = json_object_get(j.header, "kid");
    const char *kid = json_is_string(kidv) ? json_string_value(kidv) : NULL;
    enum identity_key_type want = alg ? identity_alg_key_type(alg) : 0;
    if (!alg) {
        snprintf(err, errlen, "header has no alg");
        goto out;
    }
    if (strcasecmp(alg, "none") == 0) {
        snprintf(err, errlen, "alg 'none' refused: tokens must be signed");
        goto out;
    }
    if (strncasecmp(alg, "HS", 2) == 0) {
        snprintf(err, errlen, "HMAC alg '%.16s' refused: only the issuer's public-key signatures are accepted", alg);
        goto out;
    }
    if (!want) {
        snprintf(err, errlen, "alg '%.32s' not supported", alg);
        goto out;
    }
    if (json_object_get(j.header, "crit")) { /* RFC 7515 4.1.11: we understand no extension */
        snprintf(err, errlen, "header 'crit' names extensions this verifier does not support");
        goto out;
    }
    if (kidv && (!kid || strlen(kid) >= sizeof v->keys[0].kid)) {
        snprintf(err, errlen, "header kid is not a short string");
        goto out;
    }

    pthread_mutex_lock(&v->lock);
    const struct identity_jwk *key = NULL;
    bool refetched = false;
    /* Never fetched, or every fetch failed: fetch (one thread at a time; a
     * failed fetch is retried at most once a second). */
    if (!v->loaded) {
        uint64_t gen = v->fetch_gen;
        if (!v->fetching && (v->last_fetch_us == 0 || util_monotonic_us() - v->last_fetch_us >= 1000000))
            verifier_start_fetch(v);
        if (!verifier_wait_fetch(v) || !v->loaded) {
            if (v->fetching)
                snprintf(err, errlen, "the signing keys of %.200s are still being fetched; retry", v->issuer);
            else
                snprintf(err, errlen, "cannot fetch the signing keys of %.200s: %.200s", v->issuer,
                         v->fetch_gen != gen || v->fetch_err[0] ? v->fetch_err : "not fetched yet");
            pthread_mutex_unlock(&v->lock);
            res = AUTH_UNAVAILABLE;
            goto out;
        }
        refetched = true;
    }
    /* Keys fetched longer ago than the max age: fetch again (after the
     * refetch interval, so that an issuer that cannot be reached is not
     * asked on every verify), waiting as for an unknown kid; a key the
     * issuer removed then stops verifying. Until the refetch ends, or when
     * it fails, the keys held still serve. */
    if (!refetched && !v->fixed_jwks && v->max_age_ms > 0 &&
        util_monotonic_us() - v->keys_fetch_us >= (int64_t)v->max_age_ms * 1000 &&
        (v->fetching || v->refetch_interval < 0 ||
         util_monotonic_us() - v->last_fetch_us >= (int64_t)v->refetch_interval * 1000000)) {
        if (!v->fetching)
            log_info("identity", "the JWKS of %s is older than %d s: refetching", v->issuer, v->max_age_ms / 1000);
        uint64_t gen = v->fetch_gen;
        verifier_start_fetch(v);
        if (verifier_wait_fetch(v) && v->fetch_gen != gen && !v->fetch_err[0])
            refetched = true;
    }
    key = verifier_find_key(v, kid, want);
    if (!key && !refetched && !v->fixed_jwks &&
        (v->fetching || v->refetch_interval < 0 ||
         util_monotonic_us() - v->last_fetch_us >= (int64_t)v->refetch_interval * 1000000)) {
        /* A new key (rotation) or a forged kid: refetch, rate-limited, and
         * wait for it only fetch_wait_ms, so that a slow issuer cannot
         * stall the caller (the server's loop) for longer. */
        if (!v->fetching)
            log_info("identity", "unknown key id '%s': refetching the JWKS of %s", kid ? kid : "", v->issuer);
        verifier_start_fetch(v);
        if (!verifier_wait_fetch(v)) {
            snprintf(err, errlen, "unknown key id '%.100s': the signing keys of %.200s are being refetched; retry",
                     kid ? kid : "", v->issuer);
            pthread_mutex_unlock(&v->lock);
            res = AUTH_UNAVAILABLE;
            goto out;
        }
        refetched = true;
        key = verifier_find_key(v, kid, want);
    }
    struct identity_jwk chosen = {0};
    if (key) {
        chosen = *key;
        EVP_PKEY_up_ref(chosen.pkey); /* survive a concurrent refetch */
    }
    pthread_mutex_unlock(&v->lock);

    if (!chosen.pkey) {
        if (kid)
            snprintf(err, errlen, "unknown key id '%.100s'%s", kid,
                     refetched ? " (not in the issuer's JWKS, refetched)"
                               : " (not in the issuer's JWKS; refetched less than the refetch interval ago)");
        else
            snprintf(err, errlen, "no kid in the header and no single %s key in the JWKS", alg);
        goto out;
    }
    if (chosen.type != want) {
        snprintf(err, errlen, "alg '%s' does not match the type or curve of key '%.100s'", alg, chosen.kid);
    } else if (chosen.alg[0] && strcmp(chosen.alg, alg) != 0) {
        snprintf(err, errlen, "alg '%s' does not match key '%.100s', which is for %s", alg, chosen.kid, chosen.alg);
    } else if (identity_jws_verify(&j, alg, &chosen, err, errlen) == 0 &&
               verifier_check_claims(v, j.claims, out, err, errlen) == 0) {
        res = AUTH_OK;
    }
    EVP_PKEY_free(chosen.pkey);
out:
    identity_jws_free(&j);
    return res;
}

static void verifier_destroy(void *ctx)
{
    struct jwt_verifier *v = ctx;
    if (!v)
        return;
    atomic_store(&v->stopping, true); /* a fetch from a hung issuer ends within a second */
    if (v->fetcher_joinable)
        pthread_join(v->fetcher, NULL);
    identity_jwks_free(v->keys, v->nkeys);
    json_decref(v->fixed_jwks);
    pthread_cond_destroy(&v->fetched);
    pthread_mutex_destroy(&v->lock);
    free(v);
}

int identity_jwt_verifier_new(const struct identity_jwt_config *cfg, struct auth_verifier *out,
                              char *err, size_t errlen)
{
    if (!cfg->issuer || !*cfg->issuer || !cfg->audience || !*cfg->audience) {
        snprintf(err, errlen, "the JWT verifier needs an issuer and an audience");
        return -1;
    }
    if (strlen(cfg->issuer) >= sizeof(((struct auth_identity *)0)->issuer) || strlen(cfg->audience) >= IDENTITY_URL_LEN ||
        (cfg->jwks_uri && strlen(cfg->jwks_uri) >= IDENTITY_URL_LEN) ||
        (cfg->groups_claim && strlen(cfg->groups_claim) >= 128)) {
        snprintf(err, errlen, "issuer, audience, jwks_uri or groups claim too long");
        return -1;
    }
    struct jwt_verifier *v = calloc(1, sizeof *v);
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf_trunc(v->issuer, sizeof v->issuer, cfg->issuer);
    snprintf_trunc(v->audience, sizeof v->audience, cfg->audience);
    snprintf_trunc(v->jwks_uri, sizeof v->jwks_uri, cfg->jwks_uri ? cfg->jwks_uri : "");
    snprintf_trunc(v->groups_claim, sizeof v->groups_claim,
                   cfg->groups_claim && *cfg->groups_claim ? cfg->groups_claim : "groups");
    v->clock_skew = cfg->clock_skew > 0 ? cfg->clock_skew : 60;
    v->refetch_interval = cfg->refetch_interval != 0 ? cfg->refetch_interval : 60;
    v->fetch_wait_ms = cfg->fetch_wait_ms > 0 ? cfg->fetch_wait_ms : 30000;
    v->max_age_ms = cfg->jwks_max_age_ms != 0 ? cfg->jwks_max_age_ms : 600000;
    pthread_mutex_init(&v->lock, NULL);
    pthread_cond_init(&v->fetched, NULL);
    atomic_init(&v->stopping, false);
    if (cfg->jwks_json) {
        json_error_t jerr;
        v->fixed_jwks = json_loads(cfg->jwks_json, JSON_REJECT_DUPLICATES, &jerr);
        if (!v->fixed_jwks) {
            snprintf(err, errlen, "JWKS: %s", jerr.text);
            verifier_destroy(v);
            return -1;
        }
        int n = identity_jwks_parse(v->fixed_jwks, v->keys, IDENTITY_MAX_KEYS, err, errlen);
        if (n < 0) {
            verifier_destroy(v);
            return -1;
        }
        v->nkeys = n;
        v->loaded = true;
    } else if ((v->jwks_uri[0] && identity_check_url(v->jwks_uri, err, errlen) < 0) ||
               identity_check_url(v->issuer, err, errlen) < 0) {
        verifier_destroy(v);
        return -1;
    }
    out->ctx = v;
    out->verify = verifier_verify;
    out->destroy = verifier_destroy;
    /* The first fetch starts now, so that the first request need not wait for it. */
    if (!v->loaded) {
        pthread_mutex_lock(&v->lock);
        verifier_start_fetch(v);
        pthread_mutex_unlock(&v->lock);
    }
    return 0;
}

unsigned identity_jwt_verifier_fetches(const struct auth_verifier *av)
{
    struct jwt_verifier *v = av->ctx;
    pthread_mutex_lock(&v->lock);
    unsigned n = v->fetches;
    pthread_mutex_unlock(&v->lock);
    return n;
}
