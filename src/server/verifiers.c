/* verifiers.c — the bearer-token verifiers the server itself provides:
 * server-issued API keys (looked up by SHA-256 in the store) and static dev
 * tokens from the config file (tests and local development only). */
#include "hoopctl/server.h"
#include "hoopctl/util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int server_apikey_mint(char token[64], char hash[65])
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[43];
    if (util_random_bytes(raw, sizeof raw) < 0)
        return -1;
    memcpy(token, "hk_", 3);
    for (size_t i = 0; i < sizeof raw; i++)
        token[3 + i] = alphabet[raw[i] & 63];
    token[3 + sizeof raw] = '\0';
    util_secure_zero(raw, sizeof raw);
    util_sha256_hex(token, strlen(token), hash);
    return 0;
}

static void groups_from_json(struct auth_identity *id, json_t *groups)
{
    size_t i;
    json_t *g;
    id->ngroups = 0;
    json_array_foreach(groups, i, g) {
        if (id->ngroups >= AUTH_MAX_GROUPS || !json_is_string(g))
            continue;
        snprintf(id->groups[id->ngroups++], AUTH_GROUP_LEN, "%s", json_string_value(g));
    }
}

static enum auth_result apikey_verify(void *ctx, const char *token, struct auth_identity *out,
                                      char *err, size_t errlen)
{
    if (strncmp(token, "hk_", 3) != 0)
        return AUTH_NOT_MINE;
    if (strlen(token) != 46) {
        snprintf(err, errlen, "malformed API key");
        return AUTH_REFUSED;
    }
    char hash[65], serr[256];
    util_sha256_hex(token, strlen(token), hash);
    json_t *key = NULL;
    int rc = store_apikey_lookup(ctx, hash, &key, serr, sizeof serr);
    if (rc == STORE_NOT_FOUND) {
        snprintf(err, errlen, "unknown or revoked API key");
        return AUTH_REFUSED;
    }
    if (rc != 0) {
        snprintf(err, errlen, "API key lookup failed: %s", serr);
        return AUTH_UNAVAILABLE;
    }
    memset(out, 0, sizeof *out);
    snprintf(out->issuer, sizeof out->issuer, "hoopctl-apikey");
    snprintf(out->subject, sizeof out->subject, "apikey:%.200s",
             json_string_value(json_object_get(key, "name")));
    snprintf(out->name, sizeof out->name, "%.127s", json_string_value(json_object_get(key, "name")));
    snprintf(out->kind, sizeof out->kind, "apikey");
    groups_from_json(out, json_object_get(key, "groups"));
    json_decref(key);
    return AUTH_OK;
}

static enum auth_result devtoken_verify(void *ctx, const char *token, struct auth_identity *out,
                                        char *err, size_t errlen)
{
    json_t *entry = json_object_get(ctx, token);
    if (!entry) {
        snprintf(err, errlen, "unknown dev token");
        return AUTH_NOT_MINE;
    }
    memset(out, 0, sizeof *out);
    snprintf(out->issuer, sizeof out->issuer, "hoopctl-dev");
    snprintf(out->subject, sizeof out->subject, "%s", json_string_value(json_object_get(entry, "subject")));
    const char *name = json_string_value(json_object_get(entry, "name"));
    snprintf(out->name, sizeof out->name, "%.127s", name ? name : out->subject);
    const char *email = json_string_value(json_object_get(entry, "email"));
    if (email)
        snprintf(out->email, sizeof out->email, "%s", email);
    snprintf(out->kind, sizeof out->kind, "dev");
    groups_from_json(out, json_object_get(entry, "groups"));
    return AUTH_OK;
}

static void devtoken_destroy(void *ctx) { json_decref(ctx); }

struct auth_verifier *server_apikey_verifier_new(struct store *st)
{
    struct auth_verifier *v = calloc(1, sizeof *v);
    if (v) {
        v->ctx = st;
        v->verify = apikey_verify;
    }
    return v;
}

struct auth_verifier *server_devtoken_verifier_new(json_t *tokens, char *err, size_t errlen)
{
    if (!json_is_object(tokens)) {
        snprintf(err, errlen, "auth.dev_tokens must be an object of token -> identity");
        return NULL;
    }
    const char *tok;
    json_t *e;
    json_object_foreach(tokens, tok, e) {
        if (strlen(tok) < 8 || !json_is_object(e) || !json_is_string(json_object_get(e, "subject")) ||
            (json_object_get(e, "groups") && !json_is_array(json_object_get(e, "groups")))) {
            snprintf(err, errlen, "auth.dev_tokens: each token needs 8+ characters and an object "
                                  "with a string subject and a groups array");
            return NULL;
        }
    }
    struct auth_verifier *v = calloc(1, sizeof *v);
    if (v) {
        v->ctx = json_incref(tokens);
        v->verify = devtoken_verify;
        v->destroy = devtoken_destroy;
    }
    return v;
}

void server_verifier_free(struct auth_verifier *v)
{
    if (!v)
        return;
    if (v->destroy)
        v->destroy(v->ctx);
    free(v);
}

bool server_listen_is_loopback(const char *listen)
{
    if (!listen)
        return false;
    return strncmp(listen, "127.", 4) == 0 || strncmp(listen, "[::1]:", 6) == 0 ||
           strncmp(listen, "localhost:", 10) == 0;
}

static bool chars_ok(const char *s, size_t max, const char *extra)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr(extra, c)))
            return false;
    }
    return n > 0 && n <= max;
}

bool server_valid_name(const char *s)
{
    return s && chars_ok(s, 63, "._-") && s[0] != '.';
}

bool server_valid_id(const char *s)
{
    return s && chars_ok(s, 128, "_-");
}

int server_json_check(json_t *obj, const struct server_field *fields, size_t max_string, char *err,
                      size_t errlen)
{
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "expected a JSON object");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        const struct server_field *f = fields;
        while (f->name && strcmp(f->name, key) != 0)
            f++;
        if (!f->name) {
            snprintf(err, errlen, "unknown field '%.64s'", key);
            return -1;
        }
        if (json_is_null(v))
            continue;
        bool ok;
        switch (f->kind[0]) {
        case 's': ok = json_is_string(v) && json_string_length(v) <= max_string; break;
        case 'n': ok = json_is_string(v) && server_valid_name(json_string_value(v)); break;
        case 'I': ok = json_is_string(v) && server_valid_id(json_string_value(v)); break;
        case 'i': ok = json_is_integer(v); break;
        case 'b': ok = json_is_boolean(v); break;
        case 'o': ok = json_is_object(v); break;
        case 'a': ok = json_is_array(v); break;
        case 'S': {
            ok = json_is_array(v) && json_array_size(v) <= AUTH_MAX_GROUPS;
            size_t i;
            json_t *g;
            json_array_foreach(v, i, g) if (!json_is_string(g) || !server_valid_name(json_string_value(g)))
                ok = false;
            break;
        }
        default: ok = false;
        }
        if (!ok) {
            static const char *const what[] = {"s", "a string", "n", "a name (letters, digits, . _ -)",
                                               "I", "an id (letters, digits, _ -)", "i", "an integer",
                                               "b", "a boolean", "o", "an object", "a", "an array",
                                               "S", "an array of names"};
            const char *w = "valid";
            for (size_t k = 0; k < sizeof what / sizeof what[0]; k += 2)
                if (what[k][0] == f->kind[0])
                    w = what[k + 1];
            snprintf(err, errlen, "field '%s' must be %s%s", key, w,
                     f->kind[0] == 's' ? " (within the size limit)" : "");
            return -1;
        }
    }
    for (const struct server_field *f = fields; f->name; f++)
        if (f->kind[1] == '!' && (!json_object_get(obj, f->name) || json_is_null(json_object_get(obj, f->name)))) {
            snprintf(err, errlen, "field '%s' is required", f->name);
            return -1;
        }
    return 0;
}
