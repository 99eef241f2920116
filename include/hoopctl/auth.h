/* auth.h — who is calling: the identity a verified bearer token stands for,
 * and the verifier interface the server checks every request with. The OIDC
 * JWT verifier (src/identity), server-issued API keys and the dev-token mode
 * (src/server) all implement struct auth_verifier. */
#ifndef HOOPCTL_AUTH_H
#define HOOPCTL_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_MAX_GROUPS 32
#define AUTH_GROUP_LEN 64

struct auth_identity {
    char issuer[256];       /* identity is issuer + subject */
    char subject[256];
    char email[256];        /* for display only */
    char name[128];
    int ngroups;
    char groups[AUTH_MAX_GROUPS][AUTH_GROUP_LEN];
    int64_t expires_at;     /* unix seconds; 0 when the credential does not expire */
    char kind[16];          /* "oidc", "apikey" or "dev" */
};

enum auth_result {
    AUTH_OK = 0,
    AUTH_REFUSED = -1,      /* bad, expired or unknown credential: HTTP 401 */
    AUTH_UNAVAILABLE = -2,  /* could not check now (JWKS unreachable): HTTP 503 */
    AUTH_NOT_MINE = -3,     /* not a credential of this verifier's kind; try the next */
};

struct auth_verifier {
    void *ctx;
    /* Verify token; on AUTH_OK fill *out. On failure write a reason fit for
     * the server log (never the token itself) into err. */
    enum auth_result (*verify)(void *ctx, const char *token, struct auth_identity *out,
                               char *err, size_t errlen);
    void (*destroy)(void *ctx);
};

static inline bool auth_identity_in_group(const struct auth_identity *id, const char *group)
{
    for (int i = 0; i < id->ngroups; i++) {
        const char *a = id->groups[i], *b = group;
        while (*a && *a == *b) {
            a++;
            b++;
        }
        if (*a == *b)
            return true;
    }
    return false;
}

#endif
