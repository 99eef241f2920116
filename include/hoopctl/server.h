/* server.h — `hoopctl server`: the HTTP/JSON API over a store, with bearer
 * token verification (a chain of auth_verifier), RBAC, reviews with long
 * polls, audit ingest, metrics and graceful shutdown. Also the pieces the CLI
 * uses directly: master-key loading, secret sealing and API-key minting. */
#ifndef HOOPCTL_SERVER_H
#define HOOPCTL_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "hoopctl/auth.h"
#include "hoopctl/store.h"

#define SERVER_MAX_VERIFIERS 4

struct server_options {
    const char *listen;              /* "HOST:PORT" */
    const char *store_url;
    const char *tls_cert, *tls_key;  /* both or neither */
    bool have_master_key;
    unsigned char master_key[32];
    json_t *config;                  /* the server config object (borrowed) */
    /* Extra verifiers tried after API keys and dev tokens; the OIDC JWT
     * verifier goes here (owned by the caller). */
    struct auth_verifier *verifiers[SERVER_MAX_VERIFIERS];
    int nverifiers;
    int64_t retention_ms;            /* 0: keep everything */
    /* Called once the address is bound and the server is about to serve,
     * with its URL (the real port when ":0" was asked); may be NULL. */
    void (*on_listening)(void *arg, const char *url);
    void *on_listening_arg;
};

/* Run until SIGTERM or SIGINT; requests in flight finish first. Returns 0, or
 * -1 with err set when the server cannot start. */
int server_run(const struct server_options *opt, char *err, size_t errlen);

/* A number of the configuration at section.key: dflt when it is absent,
 * else a whole number from min to max; anything else is -1 with err naming
 * the key (never the default in its place). */
int server_config_count(json_t *cfg, const char *section, const char *key, int64_t dflt, int64_t min, int64_t max,
                        int64_t *out, char *err, size_t errlen);

/* The master key: 32 raw bytes or 64 hex characters, from file, else from
 * the environment variable HOOPCTL_MASTER_KEY (64 hex). Returns 1 loaded,
 * 0 none configured, -1 error. */
int server_master_key_load(const char *file, unsigned char key[32], char *err, size_t errlen);
/* AES-256-GCM. Sealed form: "v1:" + hex(nonce[12] | ciphertext | tag[16]);
 * aad binds the secret to its connection name. *out is malloc'd. */
int server_secret_seal(const unsigned char key[32], const char *aad, const char *plain, char **out,
                       char *err, size_t errlen);
int server_secret_open(const unsigned char key[32], const char *aad, const char *sealed, char **out,
                       char *err, size_t errlen);

struct store;
/* How many connection secrets in the store key does not open (every one but
 * the connection named skip, which may be NULL), with the first few names,
 * comma-separated, in names; -1 with err set when the store fails. Servers
 * that share a store must share its master key: a secret one seals that the
 * others cannot open splits the store. */
int server_secrets_unopened(struct store *st, const unsigned char key[32], const char *skip, char *names,
                            size_t nameslen, char *err, size_t errlen);

/* A new API key token ("hk_" + 43 url-safe characters) and its SHA-256. */
int server_apikey_mint(char token[64], char hash[65]);
/* Verifiers built into the server (src/server/verifiers.c). */
struct auth_verifier *server_apikey_verifier_new(struct store *st);
/* tokens: {"TOKEN": {"subject": "...", "groups": [...], "name": "..."}}. */
struct auth_verifier *server_devtoken_verifier_new(json_t *tokens, char *err, size_t errlen);
void server_verifier_free(struct auth_verifier *v);

/* Whether "HOST:PORT" names a loopback address. */
bool server_listen_is_loopback(const char *listen);

/* Request-body checking: a field spec per allowed key. kinds: 's' string,
 * 'i' integer, 'b' boolean, 'o' object, 'a' array, 'S' array of strings,
 * 'n' name ([A-Za-z0-9._-], 1..63), 'I' id ([A-Za-z0-9_-], 1..128). A '!'
 * after the kind makes it required. Unknown keys, wrong kinds and strings over
 * max_string bytes are refused with a message naming the field. */
struct server_field {
    const char *name;
    const char *kind;
};
int server_json_check(json_t *obj, const struct server_field *fields, size_t max_string, char *err,
                      size_t errlen);
bool server_valid_name(const char *s);
bool server_valid_id(const char *s);

#endif
