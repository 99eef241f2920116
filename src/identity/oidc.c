/* oidc.c — the OpenID client side: the server's auth config, discovery, the
 * device authorization grant (RFC 8628) with its polling rules, client
 * credentials, refresh with rotation and revocation (RFC 7009). */
#include "internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hoopctl/identity.h"
#include "hoopctl/log.h"

#define DEVICE_GRANT "urn:ietf:params:oauth:grant-type:device_code"

/* Whether the host of an http URL (after "http://") is a loopback address:
 * localhost, [::1] or 127.x.y.z written with digits and dots only. */
static bool url_host_is_loopback(const char *h)
{
    size_t n = strcspn(h, ":/?#");
    if ((n == 9 && strncmp(h, "localhost", 9) == 0) || (n == 5 && strncmp(h, "[::1]", 5) == 0))
        return true;
    if (strncmp(h, "[::1]", 5) == 0 && (h[5] == ':' || h[5] == '/' || h[5] == '\0'))
        return true;
    if (n < 9 || strncmp(h, "127.", 4) != 0)
        return false;
    int dots = 0;
    for (size_t i = 0; i < n; i++) {
        if (h[i] == '.')
            dots++;
        else if (h[i] < '0' || h[i] > '9')
            return false;
    }
    return dots == 3;
}

int identity_check_url(const char *url, char *err, size_t errlen)
{
    /* The host is what follows "//" up to the path: userinfo ("a@b") would
     * make the text before the '@' look like the host to a reader, and to
     * the checks here. URLs with it are refused. */
    const char *auth = strstr(url, "://");
    if (auth && memchr(auth + 3, '@', strcspn(auth + 3, "/?#"))) {
        snprintf(err, errlen, "'%.200s': a URL with user information (user@host) is not allowed", url);
        return -1;
    }
    if (strncmp(url, "https://", 8) == 0 && url[8] && url[8] != '/')
        return 0;
    if (strncmp(url, "http://", 7) == 0 && url_host_is_loopback(url + 7))
        return 0;
    snprintf(err, errlen, "'%.200s': only https URLs are allowed (plain http only on loopback)", url);
    return -1;
}

/* URL + suffix without a doubled slash. */
static int url_join(char *out, size_t len, const char *base, const char *suffix)
{
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    int n = snprintf(out, len, "%.*s%s", (int)bl, base, suffix);
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

/* GET base+suffix as a JSON object; an answer other than 200 is an error.
 * url receives the full URL for messages. */
static json_t *get_json_doc(const char *base, const char *suffix, char *url, size_t urllen, char *err,
                            size_t errlen)
{
    if (url_join(url, urllen, base, suffix) < 0) {
        snprintf(err, errlen, "URL too long: %.200s", base);
        return NULL;
    }
    long status = 0;
    json_t *j = identity_http_json(url, NULL, &status, err, errlen);
    if (j && status != 200) {
        snprintf(err, errlen, "%s: HTTP %ld", url, status);
        json_decref(j);
        j = NULL;
    }
    return j;
}

int identity_fetch_server_config(const char *server_url, struct identity_login_config *out,
                                 char *err, size_t errlen)
{
    char url[IDENTITY_URL_LEN + 64];
    memset(out, 0, sizeof *out);
    if (strlen(server_url) >= sizeof out->server) {
        snprintf(err, errlen, "server URL too long");
        return -1;
    }
    json_t *j = get_json_doc(server_url, "/api/v1/auth/config", url, sizeof url, err, errlen);
    if (!j)
        return -1;
    int rc = -1;
    if (identity_json_copy(j, "issuer", out->issuer, sizeof out->issuer) < 0 ||
             identity_json_copy(j, "client_id", out->client_id, sizeof out->client_id) < 0)
        snprintf(err, errlen, "%s: the answer lacks issuer or client_id", url);
    else {
        identity_json_copy(j, "audience", out->audience, sizeof out->audience);
        json_t *sc = json_object_get(j, "scopes");
        if (json_is_string(sc))
            identity_json_copy(j, "scopes", out->scopes, sizeof out->scopes);
        else if (json_is_array(sc)) { /* a list of scope names is fine too */
            size_t i;
            json_t *s;
            size_t used = 0;
            json_array_foreach(sc, i, s) if (json_is_string(s)) {
                int n = snprintf(out->scopes + used, sizeof out->scopes - used, "%s%s", used ? " " : "",
                                 json_string_value(s));
                if (n < 0 || (size_t)n >= sizeof out->scopes - used)
                    break;
                used += (size_t)n;
            }
        }
        snprintf(out->server, sizeof out->server, "%s", server_url);
        rc = 0;
    }
    json_decref(j);
    return rc;
}

int identity_discover(const char *issuer, struct identity_provider *out, char *err, size_t errlen)
{
    char url[IDENTITY_URL_LEN + 64];
    memset(out, 0, sizeof *out);
    json_t *j = get_json_doc(issuer, "/.well-known/openid-configuration", url, sizeof url, err, errlen);
    if (!j)
        return -1;
    int rc = -1;
    if (identity_json_copy(j, "issuer", out->issuer, sizeof out->issuer) < 0 ||
               strcmp(out->issuer, issuer) != 0) {
        snprintf(err, errlen, "discovery %s names issuer '%.200s', not '%.200s'", url, out->issuer, issuer);
    } else if (identity_json_copy(j, "token_endpoint", out->token_endpoint, sizeof out->token_endpoint) < 0 ||
               identity_json_copy(j, "jwks_uri", out->jwks_uri, sizeof out->jwks_uri) < 0) {
        snprintf(err, errlen, "discovery %s lacks token_endpoint or jwks_uri", url);
    } else {
        identity_json_copy(j, "device_authorization_endpoint", out->device_authorization_endpoint,
                           sizeof out->device_authorization_endpoint);
        identity_json_copy(j, "revocation_endpoint", out->revocation_endpoint, sizeof out->revocation_endpoint);
        rc = 0;
    }
    json_decref(j);
    return rc;
}

/* POST a form to the token endpoint; j gets the JSON answer. */
static json_t *token_post(const char *endpoint, struct buf *form, long *status, char *err, size_t errlen)
{
    json_t *j = identity_http_json(endpoint, buf_cstr(form), status, err, errlen);
    util_secure_zero(form->data, form->len);
    buf_free(form);
    return j;
}

/* Copy a successful token answer into *t (keeping the old refresh token when
 * no new one came). */
static int tokens_from_json(json_t *j, struct identity_tokens *t, char *err, size_t errlen)
{
    struct identity_tokens n = {0};
    if (identity_json_copy(j, "access_token", n.access_token, sizeof n.access_token) < 0) {
        snprintf(err, errlen, "token answer has no usable access_token");
        return -1;
    }
    identity_json_copy(j, "token_type", n.token_type, sizeof n.token_type);
    if (identity_json_copy(j, "refresh_token", n.refresh_token, sizeof n.refresh_token) < 0)
        memcpy(n.refresh_token, t->refresh_token, sizeof n.refresh_token);
    if (identity_json_copy(j, "id_token", n.id_token, sizeof n.id_token) < 0)
        memcpy(n.id_token, t->id_token, sizeof n.id_token);
    json_t *exp = json_object_get(j, "expires_in");
    if (json_is_integer(exp) && json_integer_value(exp) > 0 && json_integer_value(exp) < 10 * 365 * 86400)
        n.expires_at = util_now_ms() / 1000 + json_integer_value(exp);
    else {
        /* no expires_in: take the JWT's exp when the access token is one */
        json_t *h = NULL, *c = NULL;
        char e2[64];
        if (identity_jwt_peek(n.access_token, &h, &c, e2, sizeof e2) == 0 &&
            json_is_integer(json_object_get(c, "exp")))
            n.expires_at = json_integer_value(json_object_get(c, "exp"));
        json_decref(h);
        json_decref(c);
    }
    *t = n;
    util_secure_zero(&n, sizeof n);
    return 0;
}

/* "error: description" from an OAuth error answer. */
static void oauth_error(json_t *j, long status, const char *what, char *err, size_t errlen)
{
    const char *e = json_string_value(json_object_get(j, "error"));
    const char *d = json_string_value(json_object_get(j, "error_description"));
    /* the provider's words: escaped, on one line, wherever err is shown */
    char *se = e ? util_terminal_safe(e, false) : NULL, *sd = d ? util_terminal_safe(d, false) : NULL;
    snprintf(err, errlen, "%s: %.100s%s%.200s (HTTP %ld)", what, se ? se : "unexpected answer", sd ? ": " : "",
             sd ? sd : "", status);
    free(se);
    free(sd);
}

/* POST a grant's form to the token endpoint and take the tokens into *t. */
static int token_grant(const struct identity_provider *p, struct buf *form, const char *what,
                       struct identity_tokens *t, char *err, size_t errlen)
{
    long status = 0;
    json_t *j = token_post(p->token_endpoint, form, &status, err, errlen);
    if (!j)
        return -1;
    int rc = -1;
    if (status != 200)
        oauth_error(j, status, what, err, errlen);
    else
        rc = tokens_from_json(j, t, err, errlen);
    json_decref(j);
    return rc;
}

int identity_device_start(const struct identity_provider *p, const struct identity_login_config *lc,
                          struct identity_device_auth *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!p->device_authorization_endpoint[0]) {
        snprintf(err, errlen, "the identity provider %s does not offer the device authorization grant",
                 p->issuer);
        return -1;
    }
    struct buf form = {.secret = true};
    identity_form_add(&form, "client_id", lc->client_id);
    identity_form_add(&form, "scope", lc->scopes[0] ? lc->scopes : "openid email profile offline_access");
    if (lc->audience[0])
        identity_form_add(&form, "resource", lc->audience);
    long status = 0;
    json_t *j = token_post(p->device_authorization_endpoint, &form, &status, err, errlen);
    if (!j)
        return -1;
    int rc = -1;
    json_t *ei = json_object_get(j, "expires_in"), *iv = json_object_get(j, "interval");
    if (status != 200) {
        oauth_error(j, status, "device authorization", err, errlen);
    } else if (identity_json_copy(j, "device_code", out->device_code, sizeof out->device_code) < 0 ||
               identity_json_copy(j, "user_code", out->user_code, sizeof out->user_code) < 0 ||
               identity_json_copy(j, "verification_uri", out->verification_uri, sizeof out->verification_uri) < 0 ||
               !json_is_integer(ei) || json_integer_value(ei) <= 0) {
        snprintf(err, errlen, "device authorization: the answer lacks device_code, user_code, "
                              "verification_uri or expires_in");
    } else {
        identity_json_copy(j, "verification_uri_complete", out->verification_uri_complete,
                           sizeof out->verification_uri_complete);
        out->expires_in = json_integer_value(ei) > 86400 ? 86400 : (int)json_integer_value(ei);
        /* RFC 8628 3.2: 5 seconds when absent */
        out->interval = json_is_integer(iv) && json_integer_value(iv) > 0 && json_integer_value(iv) <= 300
                            ? (int)json_integer_value(iv)
                            : 5;
        rc = 0;
    }
    json_decref(j);
    return rc;
}

/* Sleep ms milliseconds in short steps; returns 1 when cancelled. */
static int sleep_cancellable(int64_t ms, volatile sig_atomic_t *cancel)
{
    int64_t end = util_monotonic_us() + ms * 1000;
    while (!(cancel && *cancel)) {
        int64_t left = end - util_monotonic_us();
        if (left <= 0)
            return 0;
        if (left > 100000)
            left = 100000;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)left * 1000};
        nanosleep(&ts, NULL);
    }
    return 1;
}

enum identity_device_result identity_device_wait(const struct identity_provider *p,
                                                 const struct identity_login_config *lc,
                                                 const struct identity_device_auth *dev,
                                                 volatile sig_atomic_t *cancel,
                                                 struct identity_tokens *out, char *err, size_t errlen)
{
    int interval = dev->interval;
    int64_t deadline = util_monotonic_us() + (int64_t)dev->expires_in * 1000000;
    memset(out, 0, sizeof *out);
    for (;;) {
        if (sleep_cancellable((int64_t)interval * 1000, cancel)) {
            snprintf(err, errlen, "login cancelled");
            return IDENTITY_DEVICE_CANCELLED;
        }
        if (util_monotonic_us() > deadline + 5000000LL) { /* the provider should have said so */
            snprintf(err, errlen, "the code expired before it was approved; run login again");
            return IDENTITY_DEVICE_EXPIRED;
        }
        struct buf form = {.secret = true};
        identity_form_add(&form, "grant_type", DEVICE_GRANT);
        identity_form_add(&form, "device_code", dev->device_code);
        identity_form_add(&form, "client_id", lc->client_id);
        long status = 0;
        json_t *j = token_post(p->token_endpoint, &form, &status, err, errlen);
        if (!j)
            return IDENTITY_DEVICE_ERROR;
        if (status == 200) {
            int rc = tokens_from_json(j, out, err, errlen);
            json_decref(j);
            return rc == 0 ? IDENTITY_DEVICE_OK : IDENTITY_DEVICE_ERROR;
        }
        const char *e = json_string_value(json_object_get(j, "error"));
        e = e ? e : "";
        if (strcmp(e, "authorization_pending") == 0) {
            log_debug("identity", "authorization pending; next poll in %d s", interval);
        } else if (strcmp(e, "slow_down") == 0) {
            interval += 5;
            log_info("identity", "slow_down: polling every %d s now", interval);
        } else if (strcmp(e, "access_denied") == 0) {
            snprintf(err, errlen, "the login was denied at the identity provider");
            json_decref(j);
            return IDENTITY_DEVICE_DENIED;
        } else if (strcmp(e, "expired_token") == 0) {
            snprintf(err, errlen, "the code expired before it was approved; run login again");
            json_decref(j);
            return IDENTITY_DEVICE_EXPIRED;
        } else {
            oauth_error(j, status, "token endpoint", err, errlen);
            json_decref(j);
            return IDENTITY_DEVICE_ERROR;
        }
        json_decref(j);
    }
}

/* A "key=value" line of a credentials file. */
static int secret_line(const char *line, const char *key, char *dst, size_t len)
{
    size_t kl = strlen(key);
    if (strncmp(line, key, kl) != 0 || line[kl] != '=')
        return 0;
    const char *v = line + kl + 1;
    size_t vl = strcspn(v, "\r\n");
    if (vl == 0 || vl >= len)
        return -1;
    memcpy(dst, v, vl);
    dst[vl] = '\0';
    return 1;
}

int identity_client_secret_load(const char *file, struct identity_client_secret *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!file || !*file) {
        const char *id = getenv("HOOPCTL_CLIENT_ID"), *sec = getenv("HOOPCTL_CLIENT_SECRET");
        if (!id || !*id || !sec || !*sec) {
            snprintf(err, errlen, "set HOOPCTL_CLIENT_ID and HOOPCTL_CLIENT_SECRET, or give --secret-file");
            return -1;
        }
        if (strlen(id) >= sizeof out->client_id || strlen(sec) >= sizeof out->client_secret) {
            snprintf(err, errlen, "client id or secret too long");
            return -1;
        }
        strcpy(out->client_id, id);
        strcpy(out->client_secret, sec);
        strcpy(out->source, "env");
        return 0;
    }
    FILE *f = fopen(file, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", file, strerror(errno));
        return -1;
    }
    char line[1024];
    int bad = 0;
    while (fgets(line, sizeof line, f)) {
        if (secret_line(line, "client_id", out->client_id, sizeof out->client_id) < 0 ||
            secret_line(line, "client_secret", out->client_secret, sizeof out->client_secret) < 0)
            bad = 1;
    }
    util_secure_zero(line, sizeof line);
    fclose(f);
    if (bad || !out->client_id[0] || !out->client_secret[0]) {
        snprintf(err, errlen, "%s: needs lines client_id=... and client_secret=...", file);
        util_secure_zero(out, sizeof *out);
        return -1;
    }
    if (strlen(file) >= sizeof out->source) {
        snprintf(err, errlen, "secret file path too long");
        return -1;
    }
    strcpy(out->source, file);
    return 0;
}

int identity_client_credentials(const struct identity_provider *p, const struct identity_login_config *lc,
                                const struct identity_client_secret *cs, struct identity_tokens *out,
                                char *err, size_t errlen)
{
    struct buf form = {.secret = true};
    identity_form_add(&form, "grant_type", "client_credentials");
    identity_form_add(&form, "client_id", cs->client_id);
    identity_form_add(&form, "client_secret", cs->client_secret);
    if (lc->audience[0])
        identity_form_add(&form, "resource", lc->audience);
    memset(out, 0, sizeof *out);
    return token_grant(p, &form, "client credentials", out, err, errlen);
}

int identity_refresh(const struct identity_provider *p, const char *client_id, struct identity_tokens *t,
                     char *err, size_t errlen)
{
    if (!t->refresh_token[0]) {
        snprintf(err, errlen, "no refresh token; run hoopctl login again");
        return -1;
    }
    struct buf form = {.secret = true};
    identity_form_add(&form, "grant_type", "refresh_token");
    identity_form_add(&form, "refresh_token", t->refresh_token);
    identity_form_add(&form, "client_id", client_id);
    int rc = token_grant(p, &form, "refresh", t, err, errlen);
    /* The provider no longer honours the refresh token (expired, revoked,
     * or spent): only a new login helps. */
    if (rc < 0 && strncmp(err, "refresh: invalid_grant", 22) == 0) {
        char detail[320];
        snprintf(detail, sizeof detail, "%s", err);
        snprintf(err, errlen, "your login has expired; run 'hoopctl login' (%s)", detail);
    }
    return rc;
}

int identity_revoke(const struct identity_provider *p, const char *client_id, const char *client_secret,
                    const char *token, const char *type_hint, char *err, size_t errlen)
{
    if (!p->revocation_endpoint[0])
        return 1;
    struct buf form = {.secret = true};
    identity_form_add(&form, "token", token);
    identity_form_add(&form, "token_type_hint", type_hint);
    identity_form_add(&form, "client_id", client_id);
    if (client_secret)
        identity_form_add(&form, "client_secret", client_secret);
    long status = 0;
    json_t *j = token_post(p->revocation_endpoint, &form, &status, err, errlen);
    if (!j && status == 200)
        return 0; /* RFC 7009: 200 with any (or no) body */
    if (!j)
        return -1;
    const char *e = json_string_value(json_object_get(j, "error"));
    int rc = 0;
    if (status == 200)
        rc = 0;
    else if (e && strcmp(e, "unsupported_token_type") == 0)
        rc = 2; /* e.g. self-contained JWT access tokens: they expire on their own */
    else {
        oauth_error(j, status, "revocation", err, errlen);
        rc = -1;
    }
    json_decref(j);
    return rc;
}
