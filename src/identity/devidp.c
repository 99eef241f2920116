/* devidp.c — the development OpenID provider of `hoopctl server --dev`:
 * discovery, JWKS, the device grant (RFC 8628), refresh with rotation,
 * revocation and a small approval page, on its own loopback listener and
 * thread, so that the server can fetch its JWKS with the ordinary verifier. */
#include "internal.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "hoopctl/devidp.h"
#include "hoopctl/identity.h"
#include "hoopctl/log.h"

#define MOD "dev-idp"
#define DEVIDP_MAX_USERS 16
#define DEVIDP_MAX_GROUPS 8
#define DEVIDP_MAX_DEVICES 64
#define DEVIDP_MAX_REFRESH 512
#define DEVIDP_MAX_BODY 16384
#define DEVIDP_REFRESH_TTL_S (8 * 3600)
#define DEVICE_GRANT "urn:ietf:params:oauth:grant-type:device_code"
/* User codes avoid vowels and look-alikes (RFC 8628 section 6.1). */
#define USER_CODE_ALPHABET "BCDFGHJKLMNPQRSTVWXZ"

struct devidp_user {
    char name[64];
    char email[128];
    int ngroups;
    char groups[DEVIDP_MAX_GROUPS][64];
};

enum devidp_device_state { DEVICE_FREE = 0, DEVICE_PENDING, DEVICE_APPROVED, DEVICE_DENIED };

struct devidp_device {
    enum devidp_device_state state;
    char device_code[65];
    char user_code[10];           /* "BCDF-GHJK" */
    int user;                     /* index into users once approved */
    int64_t expires_ms, last_poll_ms;
    int interval;
};

struct devidp_refresh {
    bool used;
    char hash[65];                /* SHA-256 of the token; the token itself is not kept */
    int user;
    int64_t expires_ms;
};

struct devidp {
    char issuer[IDENTITY_URL_LEN];
    int port;                     /* the one bound */
    char authority[160];          /* HOST:PORT as the Host header must name it */
    char alt_authority[160];      /* localhost:PORT */
    char audience[IDENTITY_URL_LEN];
    char client_id[128];
    int access_ttl, device_ttl, interval;
    struct devidp_user users[DEVIDP_MAX_USERS];
    int nusers;
    char *key_pem;                /* the private signing key, PEM */
    int key_pem_len;
    char kid[24];
    char *jwks;                   /* the JWKS document, serialized */
    char csrf[65];                /* per-process form token of the approval page */
    /* Touched only by the provider's thread once it runs. */
    struct devidp_device devices[DEVIDP_MAX_DEVICES];
    struct devidp_refresh refresh[DEVIDP_MAX_REFRESH];
    struct event_base *base;
    struct evhttp *http;
    struct event *ev_stop;
    int stop_pipe[2];
    pthread_t thread;
    bool running;
};

/* ---- small helpers ------------------------------------------------------- */

static void b64url_encode(const unsigned char *in, size_t len, char *out, size_t outcap)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < outcap; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < len ? in[i + 2] : 0);
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        if (i + 1 < len)
            out[o++] = tab[v >> 6 & 63];
        if (i + 2 < len)
            out[o++] = tab[v & 63];
    }
    out[o] = '\0';
}

static bool name_ok(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9') ||
              strchr("._-", s[n])))
            return false;
    return n > 0 && n <= max;
}

/* "bcdf ghjk" / "BCDFGHJK" / "BCDF-GHJK" -> "BCDF-GHJK"; false when it cannot be a code. */
static bool user_code_normalize(const char *in, char out[10])
{
    char raw[9];
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        char c = *p;
        if (c == '-' || c == ' ')
            continue;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (n >= 8 || !strchr(USER_CODE_ALPHABET, c) || c == '\0')
            return false;
        raw[n++] = c;
    }
    if (n != 8)
        return false;
    snprintf(out, 10, "%.4s-%.4s", raw, raw + 4);
    return true;
}

static bool device_live(const struct devidp_device *dv, int64_t now)
{
    return dv->state != DEVICE_FREE && dv->expires_ms > now;
}

/* ---- users --------------------------------------------------------------- */

static int users_add(struct devidp *d, const char *name, json_t *spec, char *err, size_t errlen)
{
    if (d->nusers >= DEVIDP_MAX_USERS) {
        snprintf(err, errlen, "dev users: at most %d", DEVIDP_MAX_USERS);
        return -1;
    }
    if (!name_ok(name, 63)) {
        snprintf(err, errlen, "dev users: '%.80s' is not a user name ([A-Za-z0-9._-], 1..63)", name);
        return -1;
    }
    struct devidp_user *u = &d->users[d->nusers];
    memset(u, 0, sizeof *u);
    snprintf(u->name, sizeof u->name, "%s", name);
    snprintf(u->email, sizeof u->email, "%s@dev.hoopctl.invalid", name);
    json_t *groups = spec;
    if (json_is_object(spec)) {
        json_t *em = json_object_get(spec, "email");
        if (json_is_string(em) && json_string_length(em) < sizeof u->email)
            snprintf(u->email, sizeof u->email, "%s", json_string_value(em));
        groups = json_object_get(spec, "groups");
    }
    if (!json_is_array(groups)) {
        snprintf(err, errlen, "dev users: %s needs a list of groups", name);
        return -1;
    }
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g) {
        if (!json_is_string(g) || !name_ok(json_string_value(g), 63) || u->ngroups >= DEVIDP_MAX_GROUPS) {
            snprintf(err, errlen, "dev users: %s: groups are up to %d names ([A-Za-z0-9._-])", name,
                     DEVIDP_MAX_GROUPS);
            return -1;
        }
        snprintf(u->groups[u->ngroups++], sizeof u->groups[0], "%s", json_string_value(g));
    }
    d->nusers++;
    return 0;
}

static int users_load(struct devidp *d, json_t *users, char *err, size_t errlen)
{
    json_t *own = NULL;
    if (!users)
        users = own = json_pack("{s:[s],s:[s,s],s:[s]}", "alice", "eng", "bob", "dba", "eng", "admin", "admin");
    if (!json_is_object(users) || json_object_size(users) == 0) {
        snprintf(err, errlen, "dev users: an object of user -> groups is needed");
        return -1;
    }
    const char *name;
    json_t *spec;
    int rc = 0;
    json_object_foreach(users, name, spec) if (rc == 0) rc = users_add(d, name, spec, err, errlen);
    json_decref(own);
    return rc;
}

static int users_find(const struct devidp *d, const char *name)
{
    for (int i = 0; name && i < d->nusers; i++)
        if (strcmp(d->users[i].name, name) == 0)
            return i;
    return -1;
}

void devidp_describe_users(const struct devidp *d, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < d->nusers; i++) {
        const struct devidp_user *u = &d->users[i];
        int n = snprintf(out + used, len - used, "%s%s (", i ? ", " : "", u->name);
        for (int g = 0; n >= 0 && (size_t)n < len - used && g < u->ngroups; g++)
            n += snprintf(out + used + n, len - used - (size_t)n, "%s%s", g ? ", " : "", u->groups[g]);
        if (n >= 0 && (size_t)n < len - used)
            n += snprintf(out + used + n, len - used - (size_t)n, ")");
        if (n < 0 || (size_t)n >= len - used)
            return;
        used += (size_t)n;
    }
}

/* ---- the signing key and JWKS -------------------------------------------- */

static int key_make(struct devidp *d, char *err, size_t errlen)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    BIO *bio = BIO_new(BIO_s_mem());
    BIGNUM *n = NULL, *e = NULL;
    int rc = -1;
    if (!pkey || !bio || PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
        EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
        EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
        snprintf(err, errlen, "cannot generate the dev IdP's signing key");
        goto out;
    }
    char *mem;
    long ml = BIO_get_mem_data(bio, &mem);
    d->key_pem = malloc((size_t)ml + 1);
    if (!d->key_pem)
        goto out;
    memcpy(d->key_pem, mem, (size_t)ml);
    d->key_pem[ml] = '\0';
    d->key_pem_len = (int)ml;
    unsigned char nb[512], eb[16];
    int nl = BN_bn2bin(n, nb), el = BN_bn2bin(e, eb);
    char n64[700], e64[32], hash[65];
    b64url_encode(nb, (size_t)nl, n64, sizeof n64);
    b64url_encode(eb, (size_t)el, e64, sizeof e64);
    util_sha256_hex(nb, (size_t)nl, hash);
    snprintf(d->kid, sizeof d->kid, "dev-%.16s", hash);
    json_t *jwks = json_pack("{s:[{s:s,s:s,s:s,s:s,s:s,s:s}]}", "keys", "kty", "RSA", "use", "sig", "alg",
                             "RS256", "kid", d->kid, "n", n64, "e", e64);
    d->jwks = jwks ? json_dumps(jwks, JSON_COMPACT) : NULL;
    json_decref(jwks);
    rc = d->jwks ? 0 : -1;
out:
    if (rc < 0 && !err[0])
        snprintf(err, errlen, "out of memory");
    BN_free(n);
    BN_free(e);
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    return rc;
}

/* A signed RS256 JWT of claims (libjwt's old API); malloc'd or NULL. */
static char *jwt_sign(const struct devidp *d, json_t *claims)
{
    jwt_t *jwt = NULL;
    char *out = NULL, *cj = json_dumps(claims, JSON_COMPACT);
    if (cj && jwt_new(&jwt) == 0 && jwt_add_grants_json(jwt, cj) == 0 &&
        jwt_add_header(jwt, "kid", d->kid) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_RS256, (const unsigned char *)d->key_pem, d->key_pem_len) == 0)
        out = jwt_encode_str(jwt);
    jwt_free(jwt);
    free(cj);
    return out;
}

/* ---- replies ------------------------------------------------------------- */

static void reply_text(struct evhttp_request *r, int code, const char *type, const char *body, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(r);
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, len);
    evhttp_send_reply(r, code, code == 200 ? "OK" : "Error", b);
    evbuffer_free(b);
}

static void reply_json(struct evhttp_request *r, int code, json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    reply_text(r, code, "application/json", s ? s : "{}", s ? strlen(s) : 2);
    if (s) {
        util_secure_zero(s, strlen(s));
        free(s);
    }
}

static void reply_oauth_error(struct evhttp_request *r, int code, const char *error, const char *desc)
{
    reply_json(r, code, json_pack("{s:s,s:s}", "error", error, "error_description", desc));
}

static void html_escape(struct buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': buf_append_str(b, "&lt;"); break;
        case '>': buf_append_str(b, "&gt;"); break;
        case '&': buf_append_str(b, "&amp;"); break;
        case '"': buf_append_str(b, "&quot;"); break;
        case '\'': buf_append_str(b, "&#39;"); break;
        default: buf_append(b, s, 1);
        }
    }
}

static void reply_page(struct evhttp_request *r, int code, const char *title, const char *msg)
{
    struct buf b = {0};
    buf_append_str(&b, "<!doctype html><html><head><meta charset=\"utf-8\"><title>hoopctl dev IdP</title>"
                       "</head><body style=\"font-family:sans-serif;max-width:36em;margin:3em auto\"><h1>");
    html_escape(&b, title);
    buf_append_str(&b, "</h1><p>");
    html_escape(&b, msg);
    buf_append_str(&b, "</p></body></html>\n");
    reply_text(r, code, "text/html; charset=utf-8", (const char *)b.data, b.len);
    buf_free(&b);
}

/* ---- requests ------------------------------------------------------------ */

/* The request body parsed as a form into kv (cleared by the caller). */
static int form_parse(struct evhttp_request *r, struct evkeyvalq *kv)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r);
    size_t n = evbuffer_get_length(in);
    if (n > DEVIDP_MAX_BODY)
        return -1;
    char body[DEVIDP_MAX_BODY + 1];
    evbuffer_copyout(in, body, n);
    body[n] = '\0';
    int rc = evhttp_parse_query_str(body, kv);
    util_secure_zero(body, n);
    return rc;
}

static bool host_ok(const struct devidp *d, struct evhttp_request *r)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(r), "Host");
    return h && (strcmp(h, d->authority) == 0 || strcmp(h, d->alt_authority) == 0);
}

/* The form token, compared in constant time; a browser on another origin
 * can neither read it (no CORS) nor post with our Origin. */
static bool csrf_ok(const struct devidp *d, struct evhttp_request *r, const char *token)
{
    const char *origin = evhttp_find_header(evhttp_request_get_input_headers(r), "Origin");
    if (origin) {
        char want[200], alt[200];
        snprintf(want, sizeof want, "http://%s", d->authority);
        snprintf(alt, sizeof alt, "http://%s", d->alt_authority);
        if (strcmp(origin, want) != 0 && strcmp(origin, alt) != 0)
            return false;
    }
    return token && strlen(token) == strlen(d->csrf) && CRYPTO_memcmp(token, d->csrf, strlen(d->csrf)) == 0;
}

static void on_discovery(struct devidp *d, struct evhttp_request *r)
{
    char dev[IDENTITY_URL_LEN + 32], tok[IDENTITY_URL_LEN + 32], jwks[IDENTITY_URL_LEN + 32],
        rev[IDENTITY_URL_LEN + 32];
    snprintf(dev, sizeof dev, "%s/device_authorization", d->issuer);
    snprintf(tok, sizeof tok, "%s/token", d->issuer);
    snprintf(jwks, sizeof jwks, "%s/jwks", d->issuer);
    snprintf(rev, sizeof rev, "%s/revoke", d->issuer);
    reply_json(r, 200,
               json_pack("{s:s,s:s,s:s,s:s,s:s,s:[s,s],s:[s],s:[s],s:[s],s:[s,s,s,s,s],s:[s]}", "issuer",
                         d->issuer, "device_authorization_endpoint", dev, "token_endpoint", tok, "jwks_uri",
                         jwks, "revocation_endpoint", rev, "grant_types_supported", DEVICE_GRANT,
                         "refresh_token", "response_types_supported", "none", "subject_types_supported",
                         "public", "id_token_signing_alg_values_supported", "RS256", "scopes_supported",
                         "openid", "email", "profile", "groups", "offline_access",
                         "token_endpoint_auth_methods_supported", "none"));
}

static void on_device_authorization(struct devidp *d, struct evhttp_request *r, struct evkeyvalq *kv)
{
    const char *cid = evhttp_find_header(kv, "client_id"), *res = evhttp_find_header(kv, "resource");
    if (!cid || strcmp(cid, d->client_id) != 0) {
        reply_oauth_error(r, 401, "invalid_client", "unknown client_id");
        return;
    }
    if (res && strcmp(res, d->audience) != 0) {
        reply_oauth_error(r, 400, "invalid_target", "this provider issues tokens for one audience only");
        return;
    }
    int64_t now = util_now_ms();
    struct devidp_device *dv = NULL;
    for (int i = 0; i < DEVIDP_MAX_DEVICES && !dv; i++)
        if (!device_live(&d->devices[i], now))
            dv = &d->devices[i];
    if (!dv) {
        reply_oauth_error(r, 503, "temporarily_unavailable", "too many logins pending; try again later");
        return;
    }
    unsigned char rnd[32];
    if (util_random_bytes(rnd, sizeof rnd) < 0) {
        reply_oauth_error(r, 500, "server_error", "no randomness");
        return;
    }
    memset(dv, 0, sizeof *dv);
    util_hex_encode(rnd, 24, dv->device_code);
    char raw[9];
    for (int i = 0; i < 8; i++)
        raw[i] = USER_CODE_ALPHABET[rnd[24 + i] % (sizeof USER_CODE_ALPHABET - 1)];
    raw[8] = '\0';
    user_code_normalize(raw, dv->user_code);
    dv->state = DEVICE_PENDING;
    dv->user = -1;
    dv->expires_ms = now + (int64_t)d->device_ttl * 1000;
    dv->interval = d->interval;
    char uri[IDENTITY_URL_LEN + 32], full[IDENTITY_URL_LEN + 64];
    snprintf(uri, sizeof uri, "%s/device", d->issuer);
    snprintf(full, sizeof full, "%s?user_code=%s", uri, dv->user_code);
    log_info(MOD, "login %s started; approve it at %s or with hoopctl server dev-approve", dv->user_code, uri);
    reply_json(r, 200, json_pack("{s:s,s:s,s:s,s:s,s:i,s:i}", "device_code", dv->device_code, "user_code",
                                 dv->user_code, "verification_uri", uri, "verification_uri_complete", full,
                                 "expires_in", d->device_ttl, "interval", d->interval));
    util_secure_zero(rnd, sizeof rnd);
}

/* Access, ID and a new refresh token for user u. */
static void issue_tokens(struct devidp *d, struct evhttp_request *r, int u)
{
    const struct devidp_user *us = &d->users[u];
    int64_t now_ms = util_now_ms(), now = now_ms / 1000;
    struct devidp_refresh *slot = NULL;
    for (int i = 0; i < DEVIDP_MAX_REFRESH && !slot; i++)
        if (!d->refresh[i].used || d->refresh[i].expires_ms <= now_ms)
            slot = &d->refresh[i];
    unsigned char rnd[32];
    char jti[33], refresh[80];
    if (!slot || util_random_bytes(rnd, sizeof rnd) < 0) {
        reply_oauth_error(r, 503, "temporarily_unavailable", "too many sessions; restart the dev server");
        return;
    }
    util_hex_encode(rnd, 16, jti);
    memcpy(refresh, "dr_", 3);
    util_hex_encode(rnd + 16, 16, refresh + 3);
    json_t *groups = json_array();
    for (int g = 0; g < us->ngroups; g++)
        json_array_append_new(groups, json_string(us->groups[g]));
    json_t *claims = json_pack("{s:s,s:s,s:s,s:s,s:s,s:O,s:I,s:I,s:I,s:s,s:s,s:s}", "iss", d->issuer, "aud",
                               d->audience, "sub", us->name, "email", us->email, "name", us->name, "groups",
                               groups, "iat", (json_int_t)now, "nbf", (json_int_t)now, "exp",
                               (json_int_t)(now + d->access_ttl), "jti", jti, "client_id", d->client_id,
                               "scope", "openid email profile groups offline_access");
    char *access = claims ? jwt_sign(d, claims) : NULL;
    if (claims) {   /* the ID token: for the client, aud = client id */
        json_object_set_new(claims, "aud", json_string(d->client_id));
        json_object_del(claims, "scope");
    }
    char *idt = access ? jwt_sign(d, claims) : NULL;
    json_decref(claims);
    json_decref(groups);
    if (!access || !idt) {
        free(access);
        free(idt);
        reply_oauth_error(r, 500, "server_error", "cannot sign the token");
        return;
    }
    slot->used = true;
    slot->user = u;
    slot->expires_ms = now_ms + (int64_t)DEVIDP_REFRESH_TTL_S * 1000;
    util_sha256_hex(refresh, strlen(refresh), slot->hash);
    reply_json(r, 200, json_pack("{s:s,s:s,s:i,s:s,s:s,s:s}", "access_token", access, "token_type", "Bearer",
                                 "expires_in", d->access_ttl, "refresh_token", refresh, "id_token", idt,
                                 "scope", "openid email profile groups offline_access"));
    util_secure_zero(access, strlen(access));
    util_secure_zero(refresh, sizeof refresh);
    util_secure_zero(rnd, sizeof rnd);
    free(access);
    free(idt);
}

static struct devidp_refresh *refresh_find(struct devidp *d, const char *token)
{
    char hash[65];
    util_sha256_hex(token, strlen(token), hash);
    int64_t now = util_now_ms();
    for (int i = 0; i < DEVIDP_MAX_REFRESH; i++)
        if (d->refresh[i].used && d->refresh[i].expires_ms > now && strcmp(d->refresh[i].hash, hash) == 0)
            return &d->refresh[i];
    return NULL;
}

static void on_token_device(struct devidp *d, struct evhttp_request *r, const char *code)
{
    int64_t now = util_now_ms();
    struct devidp_device *dv = NULL;
    for (int i = 0; code && i < DEVIDP_MAX_DEVICES && !dv; i++)
        if (d->devices[i].state != DEVICE_FREE && strcmp(d->devices[i].device_code, code) == 0)
            dv = &d->devices[i];
    if (!dv) {
        reply_oauth_error(r, 400, "invalid_grant", "unknown or used device_code");
        return;
    }
    if (dv->expires_ms <= now) {
        dv->state = DEVICE_FREE;
        reply_oauth_error(r, 400, "expired_token", "the user code expired before it was approved");
        return;
    }
    /* Polling faster than the interval (with a quarter second of slack). */
    if (dv->last_poll_ms && now - dv->last_poll_ms < (int64_t)dv->interval * 1000 - 250) {
        dv->last_poll_ms = now;
        dv->interval += 5;
        reply_oauth_error(r, 400, "slow_down", "polling too fast");
        return;
    }
    dv->last_poll_ms = now;
    switch (dv->state) {
    case DEVICE_PENDING:
        reply_oauth_error(r, 400, "authorization_pending", "waiting for the user");
        return;
    case DEVICE_DENIED:
        dv->state = DEVICE_FREE;
        reply_oauth_error(r, 400, "access_denied", "the login was denied");
        return;
    default:
        dv->state = DEVICE_FREE;
        log_info(MOD, "login %s: tokens issued to %s", dv->user_code, d->users[dv->user].name);
        issue_tokens(d, r, dv->user);
    }
}

static void on_token(struct devidp *d, struct evhttp_request *r, struct evkeyvalq *kv)
{
    const char *grant = evhttp_find_header(kv, "grant_type"), *cid = evhttp_find_header(kv, "client_id");
    if (!cid || strcmp(cid, d->client_id) != 0) {
        reply_oauth_error(r, 401, "invalid_client", "unknown client_id");
        return;
    }
    if (grant && strcmp(grant, DEVICE_GRANT) == 0) {
        on_token_device(d, r, evhttp_find_header(kv, "device_code"));
    } else if (grant && strcmp(grant, "refresh_token") == 0) {
        const char *rt = evhttp_find_header(kv, "refresh_token");
        struct devidp_refresh *slot = rt ? refresh_find(d, rt) : NULL;
        if (!slot) {
            log_info(MOD, "refresh refused: unknown, used or revoked refresh token");
            reply_oauth_error(r, 400, "invalid_grant", "unknown, used or revoked refresh token");
            return;
        }
        int u = slot->user;
        slot->used = false;   /* rotation: each refresh token works once */
        issue_tokens(d, r, u);
    } else {
        reply_oauth_error(r, 400, "unsupported_grant_type", "device_code and refresh_token only");
    }
}

static void on_revoke(struct devidp *d, struct evhttp_request *r, struct evkeyvalq *kv)
{
    const char *tok = evhttp_find_header(kv, "token");
    struct devidp_refresh *slot = tok ? refresh_find(d, tok) : NULL;
    if (slot) {
        slot->used = false;
        log_info(MOD, "refresh token of %s revoked", d->users[slot->user].name);
    }
    reply_json(r, 200, json_object());   /* RFC 7009: unknown tokens are fine too */
}

static void on_page(struct devidp *d, struct evhttp_request *r)
{
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r));
    char code[10] = "";
    if (query && evhttp_parse_query_str(query, &q) == 0) {
        const char *c = evhttp_find_header(&q, "user_code");
        if (c && strlen(c) < 32)
            user_code_normalize(c, code);
    }
    evhttp_clear_headers(&q);
    struct buf b = {0};
    buf_append_str(&b, "<!doctype html><html><head><meta charset=\"utf-8\"><title>hoopctl dev IdP</title>"
                       "</head><body style=\"font-family:sans-serif;max-width:36em;margin:3em auto\">"
                       "<h1>hoopctl development sign-in</h1>"
                       "<p>For development on this machine only: pick who you are.</p>"
                       "<form method=\"post\" action=\"");
    html_escape(&b, d->issuer);
    buf_printf(&b, "/device\"><input type=\"hidden\" name=\"csrf\" value=\"%s\">"
                   "<p><label>Code <input name=\"user_code\" value=\"%s\" autocomplete=\"off\"></label></p>"
                   "<p><label>User <select name=\"user\">",
               d->csrf, code);
    for (int i = 0; i < d->nusers; i++) {
        buf_append_str(&b, "<option value=\"");
        html_escape(&b, d->users[i].name);
        buf_append_str(&b, "\">");
        html_escape(&b, d->users[i].name);
        buf_append_str(&b, " (");
        for (int g = 0; g < d->users[i].ngroups; g++) {
            buf_append_str(&b, g ? ", " : "");
            html_escape(&b, d->users[i].groups[g]);
        }
        buf_append_str(&b, ")</option>");
    }
    buf_append_str(&b, "</select></label></p>"
                       "<p><button name=\"action\" value=\"approve\">Approve</button> "
                       "<button name=\"action\" value=\"deny\">Deny</button></p></form></body></html>\n");
    reply_text(r, 200, "text/html; charset=utf-8", (const char *)b.data, b.len);
    buf_free(&b);
}

/* The page's form (and `hoopctl server dev-approve`, which sends reply=json). */
static void on_decide(struct devidp *d, struct evhttp_request *r, struct evkeyvalq *kv)
{
    const char *reply = evhttp_find_header(kv, "reply");
    bool json = reply && strcmp(reply, "json") == 0;
    const char *action = evhttp_find_header(kv, "action"), *code_in = evhttp_find_header(kv, "user_code");
    int code = 200;
    const char *title = "", *msg = "";
    char text[200], code_n[10] = "";
    int u = users_find(d, evhttp_find_header(kv, "user"));
    struct devidp_device *dv = NULL;
    int64_t now = util_now_ms();
    if (!csrf_ok(d, r, evhttp_find_header(kv, "csrf"))) {
        code = 403, title = "Refused", msg = "the form token is missing or wrong; reload the page";
    } else if (!action || (strcmp(action, "approve") && strcmp(action, "deny"))) {
        code = 400, title = "Refused", msg = "action must be approve or deny";
    } else if (!code_in || strlen(code_in) > 32 || !user_code_normalize(code_in, code_n)) {
        code = 400, title = "Refused", msg = "that is not a user code (like BCDF-GHJK)";
    } else if (u < 0) {
        code = 400, title = "Refused", msg = "no such dev user";
    } else {
        for (int i = 0; i < DEVIDP_MAX_DEVICES && !dv; i++)
            if (device_live(&d->devices[i], now) && strcmp(d->devices[i].user_code, code_n) == 0)
                dv = &d->devices[i];
        if (!dv) {
            code = 404, title = "Unknown code", msg = "no pending login has that code (expired or used?)";
        } else if (dv->state != DEVICE_PENDING) {
            code = 409, title = "Already decided", msg = "that login was approved or denied already";
        }
    }
    if (code == 200) {
        bool approve = strcmp(action, "approve") == 0;
        dv->state = approve ? DEVICE_APPROVED : DEVICE_DENIED;
        dv->user = u;
        log_info(MOD, "login %s %s as %s", dv->user_code, approve ? "approved" : "denied", d->users[u].name);
        snprintf(text, sizeof text, "login %s %s as %s; you can go back to your terminal", dv->user_code,
                 approve ? "approved" : "denied", d->users[u].name);
        title = approve ? "Approved" : "Denied";
        msg = text;
    }
    if (json)
        reply_json(r, code, code == 200 ? json_pack("{s:s}", "status", msg)
                                        : json_pack("{s:s,s:s}", "error", "invalid_request",
                                                    "error_description", msg));
    else
        reply_page(r, code, title, msg);
}

static void devidp_handle(struct evhttp_request *r, void *arg)
{
    struct devidp *d = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(r);
    if (!host_ok(d, r)) {
        reply_oauth_error(r, 421, "invalid_request", "wrong Host header for this provider");
        return;
    }
    if (!path || strncmp(path, "/dev-idp/", 9) != 0) {
        reply_oauth_error(r, 404, "not_found", "no such endpoint");
        return;
    }
    const char *p = path + 9;
    if (cmd == EVHTTP_REQ_GET) {
        if (strcmp(p, ".well-known/openid-configuration") == 0)
            on_discovery(d, r);
        else if (strcmp(p, "jwks") == 0)
            reply_text(r, 200, "application/json", d->jwks, strlen(d->jwks));
        else if (strcmp(p, "device") == 0)
            on_page(d, r);
        else if (strcmp(p, "device/csrf") == 0)
            reply_json(r, 200, json_pack("{s:s}", "csrf", d->csrf));
        else
            reply_oauth_error(r, 404, "not_found", "no such endpoint");
        return;
    }
    if (cmd != EVHTTP_REQ_POST) {
        reply_oauth_error(r, 405, "invalid_request", "GET or POST only");
        return;
    }
    struct evkeyvalq kv;
    TAILQ_INIT(&kv);
    if (form_parse(r, &kv) < 0) {
        reply_oauth_error(r, 400, "invalid_request", "the body is not a form of at most 16 KiB");
    } else if (strcmp(p, "device_authorization") == 0) {
        on_device_authorization(d, r, &kv);
    } else if (strcmp(p, "token") == 0) {
        on_token(d, r, &kv);
    } else if (strcmp(p, "revoke") == 0) {
        on_revoke(d, r, &kv);
    } else if (strcmp(p, "device") == 0) {
        on_decide(d, r, &kv);
    } else {
        reply_oauth_error(r, 404, "not_found", "no such endpoint");
    }
    /* Wipe the tokens the form carried before freeing it. */
    struct evkeyval *e;
    TAILQ_FOREACH(e, &kv, next) util_secure_zero(e->value, strlen(e->value));
    evhttp_clear_headers(&kv);
}

/* ---- life cycle ---------------------------------------------------------- */

static void devidp_on_stop(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd;
    (void)ev;
    event_base_loopbreak(((struct devidp *)arg)->base);
}

static void *devidp_thread(void *arg)
{
    struct devidp *d = arg;
    event_base_dispatch(d->base);
    return NULL;
}

static bool host_is_loopback(const char *h)
{
    return strcmp(h, "localhost") == 0 || strcmp(h, "::1") == 0 ||
           (strncmp(h, "127.", 4) == 0 && strspn(h, "0123456789.") == strlen(h));
}

struct devidp *devidp_start(const struct devidp_options *opt, char *err, size_t errlen)
{
    err[0] = '\0';
    if (!opt->host || !host_is_loopback(opt->host)) {
        snprintf(err, errlen, "the dev identity provider listens on loopback only, not on '%.100s'",
                 opt->host ? opt->host : "");
        return NULL;
    }
    if (!opt->audience || !opt->audience[0] || strlen(opt->audience) >= IDENTITY_URL_LEN) {
        snprintf(err, errlen, "the dev identity provider needs an audience");
        return NULL;
    }
    struct devidp *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->stop_pipe[0] = d->stop_pipe[1] = -1;
    snprintf(d->audience, sizeof d->audience, "%s", opt->audience);
    snprintf(d->client_id, sizeof d->client_id, "%s", opt->client_id ? opt->client_id : "hoopctl");
    d->access_ttl = opt->access_ttl > 0 ? opt->access_ttl : 600;
    d->device_ttl = opt->device_ttl > 0 ? opt->device_ttl : 600;
    d->interval = opt->interval > 0 ? opt->interval : 1;
    unsigned char rnd[32];
    if (users_load(d, opt->users, err, errlen) < 0 || key_make(d, err, errlen) < 0)
        goto fail;
    if (util_random_bytes(rnd, sizeof rnd) < 0) {
        snprintf(err, errlen, "no randomness");
        goto fail;
    }
    util_hex_encode(rnd, sizeof rnd, d->csrf);
    d->base = event_base_new();
    d->http = d->base ? evhttp_new(d->base) : NULL;
    if (!d->http || pipe(d->stop_pipe) < 0) {
        snprintf(err, errlen, "cannot create the dev IdP's event loop");
        goto fail;
    }
    evhttp_set_max_body_size(d->http, DEVIDP_MAX_BODY);
    evhttp_set_max_headers_size(d->http, 16384);
    evhttp_set_timeout(d->http, 30);
    evhttp_set_allowed_methods(d->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    evhttp_set_gencb(d->http, devidp_handle, d);
    struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(d->http, opt->host,
                                                                      (ev_uint16_t)opt->port);
    if (!bound) {
        snprintf(err, errlen, "the dev identity provider cannot listen on %s port %d: %s", opt->host, opt->port,
                 strerror(errno));
        goto fail;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    /* The name said loopback (localhost may resolve anywhere): the address
     * bound must be loopback too. */
    if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sl) != 0 ||
        !util_sockaddr_is_loopback((const struct sockaddr *)&ss)) {
        snprintf(err, errlen, "the dev identity provider listens on loopback only; '%.100s' is not a loopback address",
                 opt->host);
        goto fail;
    }
    int port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    d->port = port;
    bool v6 = strchr(opt->host, ':') != NULL;
    snprintf(d->authority, sizeof d->authority, "%s%s%s:%d", v6 ? "[" : "", opt->host, v6 ? "]" : "", port);
    snprintf(d->alt_authority, sizeof d->alt_authority, "localhost:%d", port);
    snprintf(d->issuer, sizeof d->issuer, "http://%s/dev-idp", d->authority);
    d->ev_stop = event_new(d->base, d->stop_pipe[0], EV_READ, devidp_on_stop, d);
    if (!d->ev_stop || event_add(d->ev_stop, NULL) < 0 || pthread_create(&d->thread, NULL, devidp_thread, d)) {
        snprintf(err, errlen, "cannot start the dev IdP's thread");
        goto fail;
    }
    d->running = true;
    util_secure_zero(rnd, sizeof rnd);
    return d;
fail:
    util_secure_zero(rnd, sizeof rnd);
    devidp_stop(d);
    return NULL;
}

const char *devidp_issuer(const struct devidp *d)
{
    return d->issuer;
}

int devidp_port(const struct devidp *d)
{
    return d->port;
}

void devidp_stop(struct devidp *d)
{
    if (!d)
        return;
    if (d->running) {
        ssize_t w;
        do
            w = write(d->stop_pipe[1], "x", 1);
        while (w < 0 && errno == EINTR);
        pthread_join(d->thread, NULL);
    }
    if (d->ev_stop)
        event_free(d->ev_stop);
    if (d->http)
        evhttp_free(d->http);
    if (d->base)
        event_base_free(d->base);
    for (int i = 0; i < 2; i++)
        if (d->stop_pipe[i] >= 0)
            close(d->stop_pipe[i]);
    if (d->key_pem) {
        util_secure_zero(d->key_pem, (size_t)d->key_pem_len);
        free(d->key_pem);
    }
    free(d->jwks);
    util_secure_zero(d, sizeof *d);
    free(d);
}

/* ---- client side: approve or deny from a terminal ------------------------ */

int devidp_decide(const char *issuer, const char *user_code, const char *user, bool approve,
                  char *err, size_t errlen)
{
    char url[IDENTITY_URL_LEN + 32], csrf[128] = "";
    long status = 0;
    if (snprintf(url, sizeof url, "%s/device/csrf", issuer) >= (int)sizeof url) {
        snprintf(err, errlen, "issuer URL too long");
        return -1;
    }
    json_t *j = identity_http_json(url, NULL, &status, err, errlen);
    if (!j)
        return -1;
    if (status != 200 || identity_json_copy(j, "csrf", csrf, sizeof csrf) < 0) {
        snprintf(err, errlen, "%s: HTTP %ld; is this server running with --dev?", url, status);
        json_decref(j);
        return -1;
    }
    json_decref(j);
    struct buf form = {0};
    identity_form_add(&form, "csrf", csrf);
    identity_form_add(&form, "user_code", user_code);
    identity_form_add(&form, "user", user);
    identity_form_add(&form, "action", approve ? "approve" : "deny");
    identity_form_add(&form, "reply", "json");
    snprintf(url, sizeof url, "%s/device", issuer);
    j = identity_http_json(url, buf_cstr(&form), &status, err, errlen);
    buf_free(&form);
    if (!j)
        return -1;
    int rc = 0;
    if (status != 200) {
        const char *d = json_string_value(json_object_get(j, "error_description"));
        snprintf(err, errlen, "%s (HTTP %ld)", d ? d : "refused", status);
        rc = -1;
    }
    json_decref(j);
    return rc;
}
