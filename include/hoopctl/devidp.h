/* devidp.h — the development OpenID provider of `hoopctl server --dev`: a
 * loopback-only IdP (discovery, JWKS, device grant, refresh, revocation, an
 * approval page) on its own listener and thread, and the client call that
 * approves or denies a pending login from a terminal. */
#ifndef HOOPCTL_DEVIDP_H
#define HOOPCTL_DEVIDP_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

struct devidp_options {
    const char *host;          /* loopback address to listen on ("127.0.0.1", "::1", "localhost") */
    int port;                  /* 0: a free port */
    const char *client_id;     /* the public client hoopctl logs in as; "hoopctl" */
    const char *audience;      /* aud of the access tokens; required */
    json_t *users;             /* {"name": ["group", ...]} or {"name": {"email": .., "groups": [..]}};
                                * NULL: alice (eng), bob (dba, eng), admin (admin) */
    int access_ttl;            /* seconds; 0 gives 600 */
    int device_ttl;            /* seconds a user code stays valid; 0 gives 600 */
    int interval;              /* polling interval announced; 0 gives 1 */
};

struct devidp;

/* Generate a signing key (RSA 2048, RS256), bind the listener and start the
 * provider's thread. Refuses a host that is not loopback. NULL with err. */
struct devidp *devidp_start(const struct devidp_options *opt, char *err, size_t errlen);
/* "http://127.0.0.1:PORT/dev-idp": the issuer, also the base of every endpoint. */
const char *devidp_issuer(const struct devidp *d);
/* The port bound (the one asked for, or the free one taken for 0). */
int devidp_port(const struct devidp *d);
/* "alice (eng), bob (dba, eng), ..." for the start-up message. */
void devidp_describe_users(const struct devidp *d, char *out, size_t len);
/* Stop the thread and free everything (NULL is fine). */
void devidp_stop(struct devidp *d);

/* Client side, for `hoopctl server dev-approve`: approve (or deny) the
 * pending login with user_code at the provider of issuer, as user. Goes
 * through the same form and CSRF check as the page. 0, or -1 with err. */
int devidp_decide(const char *issuer, const char *user_code, const char *user, bool approve,
                  char *err, size_t errlen);

#endif
