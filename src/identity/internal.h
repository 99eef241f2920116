/* internal.h — helpers shared by the identity module's files only: bounded
 * HTTP via libcurl, base64url, and JSON field copying. Not a public face. */
#ifndef HOOPCTL_IDENTITY_INTERNAL_H
#define HOOPCTL_IDENTITY_INTERNAL_H

#include <jansson.h>
#include <stddef.h>

#include "hoopctl/util.h"

#define IDENTITY_HTTP_MAX_BODY (1024 * 1024)

/* GET url, or POST form (application/x-www-form-urlencoded) when form is not
 * NULL. Fills *status and body (capped at IDENTITY_HTTP_MAX_BODY). Returns 0
 * when an HTTP answer came, -1 with err on transport failure. */
int identity_http(const char *url, const char *form, long *status, struct buf *body,
                  char *err, size_t errlen);
/* identity_http_abort_on is public (hoopctl/identity.h). Whether the
 * calling thread has an abort flag, and whether it is set. */
#include "hoopctl/identity.h"
bool identity_http_abortable(void);
bool identity_http_aborted(void);
/* The same, parsing the answer as a JSON object (any status). */
json_t *identity_http_json(const char *url, const char *form, long *status, char *err, size_t errlen);
/* Append "name=urlencoded(value)" (with & when needed) to a form buffer. */
int identity_form_add(struct buf *form, const char *name, const char *value);

/* Decode base64url (no padding) into out; returns the length or -1. */
long identity_b64url_decode(const char *in, size_t inlen, unsigned char *out, size_t outcap);

/* Copy a string member into dst; 0, or -1 when missing/not a string/too long
 * (dst is then ""). */
int identity_json_copy(json_t *obj, const char *key, char *dst, size_t dstlen);

/* ---- JWKs and JWS (jwt.c) ---- */
#include <openssl/evp.h>

enum identity_key_type { IDENTITY_KEY_RSA = 1, IDENTITY_KEY_P256, IDENTITY_KEY_P384, IDENTITY_KEY_ED25519 };

struct identity_jwk {
    char kid[128];                 /* "" when the JWK has none */
    char alg[16];                  /* "" when the JWK does not pin one */
    enum identity_key_type type;
    EVP_PKEY *pkey;
};

#define IDENTITY_MAX_KEYS 32

/* Import the usable public signing keys of a JWKS document (others are
 * skipped). Returns the count (0..max) or -1 with err when it is malformed. */
int identity_jwks_parse(json_t *jwks, struct identity_jwk *keys, int max, char *err, size_t errlen);
void identity_jwks_free(struct identity_jwk *keys, int n);

/* A JWS compact token split and decoded. */
struct identity_jws {
    json_t *header, *claims;
    const char *signing_input;     /* points into the token: header.payload */
    size_t signing_input_len;
    unsigned char sig[512];
    size_t siglen;
};
/* Split and decode; returns 0, or -1 with a reason (never echoing the token). */
int identity_jws_decode(const char *token, struct identity_jws *out, char *err, size_t errlen);
void identity_jws_free(struct identity_jws *j);
/* The key type an alg needs, or 0 for algorithms we refuse. */
enum identity_key_type identity_alg_key_type(const char *alg);
/* Verify the signature with key for alg (already matched). 0 ok, -1 err. */
int identity_jws_verify(const struct identity_jws *j, const char *alg, const struct identity_jwk *key,
                        char *err, size_t errlen);

#endif
