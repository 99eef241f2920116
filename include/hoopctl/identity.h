/* identity.h — OpenID Connect for hoopctl: discovery, the device authorization
 * grant (RFC 8628), client credentials, refresh with rotation, revocation, the
 * per-server token store, and the server-side JWT verifier (an auth_verifier). */
#ifndef HOOPCTL_IDENTITY_H
#define HOOPCTL_IDENTITY_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hoopctl/auth.h"

#define IDENTITY_URL_LEN 512
#define IDENTITY_TOKEN_LEN 8192

/* ---- server-side verification ------------------------------------------ */

struct identity_jwt_config {
    const char *issuer;        /* required; tokens' iss must equal it */
    const char *audience;      /* required; one of the tokens' aud values */
    const char *jwks_uri;      /* optional; else taken from the issuer's discovery */
    const char *jwks_json;     /* optional fixed JWKS document (tests, offline): never fetched */
    const char *groups_claim;  /* claim holding the groups, dotted path allowed; "groups" */
    int clock_skew;            /* seconds allowed on exp/nbf/iat; 0 gives 60 */
    int refetch_interval;      /* least seconds between JWKS fetches; 0 gives 60, <0 no limit */
    int fetch_wait_ms;         /* how long after a JWKS fetch began verifies may wait for it
                                  before they answer AUTH_UNAVAILABLE ("retry"); 0 gives 30000 */
    int jwks_max_age_ms;       /* how long fetched keys are used before the JWKS is fetched again
                                  (so a key the issuer removed stops verifying); the refetch waits
                                  out refetch_interval after the last fetch, and a failed one keeps
                                  the keys. 0 gives 600000 (10 min), <0 never */
};

/* Build a verifier for tokens of one issuer. Accepted algorithms: RS256,
 * RS384, RS512, ES256, ES384, EdDSA (Ed25519); the header's alg must match
 * the key's type and curve. The JWKS is fetched at once, and again when an
 * unknown kid arrives (at most once per refetch_interval), always on a thread
 * of its own: verifies wait for a fetch until fetch_wait_ms after it began
 * (a hung fetch stalls its callers that long in all, not each), and meanwhile
 * tokens with known keys verify as usual.
 * Returns 0 and
 * fills *out, or -1 with err. */
int identity_jwt_verifier_new(const struct identity_jwt_config *cfg, struct auth_verifier *out,
                              char *err, size_t errlen);
/* How many times the verifier fetched the JWKS (for tests and metrics). */
unsigned identity_jwt_verifier_fetches(const struct auth_verifier *v);

/* Decode a JWT's header and claims WITHOUT checking its signature, for
 * display on the client (whoami). Returns new references or -1 with err. */
struct json_t;
int identity_jwt_peek(const char *token, struct json_t **header, struct json_t **claims,
                      char *err, size_t errlen);

/* ---- discovery and grants ---------------------------------------------- */

struct identity_provider {
    char issuer[IDENTITY_URL_LEN];
    char device_authorization_endpoint[IDENTITY_URL_LEN];
    char token_endpoint[IDENTITY_URL_LEN];
    char revocation_endpoint[IDENTITY_URL_LEN];  /* "" when not advertised */
    char jwks_uri[IDENTITY_URL_LEN];
};

/* What to log in to: from a server's /api/v1/auth/config or the command line. */
struct identity_login_config {
    char server[IDENTITY_URL_LEN];   /* "" when logging in straight at an issuer */
    char issuer[IDENTITY_URL_LEN];
    char client_id[256];
    char scopes[512];                /* space separated */
    char audience[IDENTITY_URL_LEN]; /* sent as the resource indicator; may be "" */
};

/* http(s) URLs only; plain http only on loopback. Returns 0 or -1 with err. */
int identity_check_url(const char *url, char *err, size_t errlen);
/* GET <server>/api/v1/auth/config (no token) into *out. */
int identity_fetch_server_config(const char *server_url, struct identity_login_config *out,
                                 char *err, size_t errlen);
/* GET <issuer>/.well-known/openid-configuration; its issuer must match. */
int identity_discover(const char *issuer, struct identity_provider *out, char *err, size_t errlen);

struct identity_tokens {
    char access_token[IDENTITY_TOKEN_LEN];
    char refresh_token[IDENTITY_TOKEN_LEN];
    char id_token[IDENTITY_TOKEN_LEN];
    char token_type[32];
    int64_t expires_at;              /* unix seconds, 0 when unknown */
};

struct identity_device_auth {
    char device_code[1024];
    char user_code[128];
    char verification_uri[IDENTITY_URL_LEN];
    char verification_uri_complete[IDENTITY_URL_LEN]; /* "" when not given */
    int expires_in;
    int interval;                    /* seconds; 5 when the provider gave none */
};

enum identity_device_result {
    IDENTITY_DEVICE_OK = 0,
    IDENTITY_DEVICE_DENIED,          /* access_denied */
    IDENTITY_DEVICE_EXPIRED,         /* expired_token, or expires_in passed */
    IDENTITY_DEVICE_CANCELLED,       /* *cancel became non-zero */
    IDENTITY_DEVICE_ERROR,
};

int identity_device_start(const struct identity_provider *p, const struct identity_login_config *lc,
                          struct identity_device_auth *out, char *err, size_t errlen);
/* Poll the token endpoint until the user acts: honours interval, slow_down
 * (+5 s) and authorization_pending; returns early when *cancel is set. */
enum identity_device_result identity_device_wait(const struct identity_provider *p,
                                                 const struct identity_login_config *lc,
                                                 const struct identity_device_auth *dev,
                                                 volatile sig_atomic_t *cancel,
                                                 struct identity_tokens *out, char *err, size_t errlen);

/* Client credentials for non-human callers: the id and secret come from the
 * environment (HOOPCTL_CLIENT_ID, HOOPCTL_CLIENT_SECRET) or from a file of
 * "client_id=..." / "client_secret=..." lines (mode 0600 advised). */
struct identity_client_secret {
    char client_id[256];
    char client_secret[512];
    char source[IDENTITY_URL_LEN];   /* "env" or the file path, to find it again */
};
int identity_client_secret_load(const char *file, struct identity_client_secret *out,
                                char *err, size_t errlen);
int identity_client_credentials(const struct identity_provider *p, const struct identity_login_config *lc,
                                const struct identity_client_secret *cs, struct identity_tokens *out,
                                char *err, size_t errlen);

/* refresh_token grant; the provider may rotate the refresh token: *t is
 * updated in place, keeping the old refresh token only when none came back. */
int identity_refresh(const struct identity_provider *p, const char *client_id,
                     struct identity_tokens *t, char *err, size_t errlen);
/* RFC 7009 revocation of one token: 0 revoked, 1 no revocation endpoint
 * advertised, 2 the provider cannot revoke this kind (unsupported_token_type),
 * -1 with err. A confidential client passes its secret, others NULL. */
int identity_revoke(const struct identity_provider *p, const char *client_id, const char *client_secret,
                    const char *token, const char *type_hint, char *err, size_t errlen);

/* ---- the token store: one 0600 JSON file per server (or issuer) --------- */

struct identity_session {
    char profile[IDENTITY_URL_LEN];  /* the server URL, or the issuer when none */
    struct identity_login_config login;
    char grant[24];                  /* "device" or "client_credentials" */
    char secret_source[IDENTITY_URL_LEN]; /* client credentials: "env" or a file */
    struct identity_tokens tokens;
};

/* Path of the file holding a profile's tokens (<config dir>/tokens/<hash>.json).
 * Trailing slashes of a URL do not count: http://h:8780/ is http://h:8780. */
int identity_store_path(const char *profile, char *out, size_t len);
/* Write atomically with mode 0600 and remember it as the current profile. */
int identity_store_save(const struct identity_session *s, char *err, size_t errlen);
/* Load a profile; NULL or "" means: HOOPCTL_SERVER_URL / config server.url,
 * else the profile of the last login. Returns 0, 1 when not logged in, -1 on error.
 * On -1 out->profile is set only when the profile's token file itself could
 * not be read or is damaged (identity_store_delete can still remove it). */
int identity_store_load(const char *profile, struct identity_session *out, char *err, size_t errlen);
/* Whether a login could be saved: the token directory made (0700) if need
 * be, and a file created in it. 0, or -1 with err naming the directory and
 * why (hoopctl login asks this before it starts a flow). */
int identity_store_check_writable(char *err, size_t errlen);
/* Delete a profile's tokens (and the current marker when it names it). */
int identity_store_delete(const char *profile, char *err, size_t errlen);
/* For a logout that names no server (no --server, no server.url): when
 * <tokens>/current is there but names no saved login (not a URL, empty, too
 * long, or a login since deleted), remove it and look at the saved logins:
 * *saved gets how many there are, list their profiles (or file names when a
 * file cannot be read), comma-separated, and only the profile when exactly one
 * is saved and readable ("" otherwise). Returns 0 when there is nothing to
 * repair (current absent or fine, or the config names the server), 1 when
 * current was damaged and removed (err then says so), 2 when it named a URL
 * that has no saved login and was removed (err says so; only stays "": the
 * current login is known to be gone), -1 with err when it could not be
 * removed. */
int identity_store_repair_current(char *only, size_t len, size_t *saved, char *list, size_t listlen,
                                  char *err, size_t errlen);

/* Load a profile (as identity_store_load) into a new session and, when
 * min_valid >= 0, make sure its access token is valid that long (refreshing).
 * Returns 0; 1 when not logged in or the session cannot be renewed (log in
 * again); -1 on other errors. Close with identity_session_close. */
int identity_session_open(const char *profile, int min_valid, struct identity_session **out,
                          char *err, size_t errlen);
/* Wipe the session's secrets and free it. */
void identity_session_close(struct identity_session *s);
/* The client id and secret of a client-credentials session, from where the
 * login took them (the environment or its file). */
int identity_session_client_secret(const struct identity_session *s, struct identity_client_secret *out,
                                   char *err, size_t errlen);

/* Make sure the access token is valid for at least min_valid seconds more,
 * refreshing (and saving the rotated tokens) when not. Safe against another
 * hoopctl process refreshing at the same time (a lock file). 0 or -1 with err. */
int identity_session_ensure_fresh(struct identity_session *s, int min_valid, char *err, size_t errlen);
/* For a long-running process (hoopctl connect) to call from a timer: refresh
 * when due and return the seconds until it should be called again (>= 1), or
 * -1 with err when the session can no longer be refreshed. */
int identity_session_refresh_tick(struct identity_session *s, char *err, size_t errlen);

/* While *flag is set on this thread (NULL: never), a transfer this thread
 * makes is abandoned within about a second ("cancelled"), and so is a wait
 * for the lock file of identity_session_ensure_fresh: a thread that fetches
 * or refreshes in the background calls this so that its owner can stop it
 * without waiting out a hung peer. The flag is read atomically. */
void identity_http_abort_on(const atomic_bool *flag);

/* Seconds before expiry at which tokens are refreshed. */
#define IDENTITY_REFRESH_MARGIN 60

#endif
