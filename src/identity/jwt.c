/* jwt.c — JWKs to OpenSSL public keys (EVP_PKEY_fromdata), JWS compact
 * decoding with bounded sizes, and signature checks for RS256/384/512,
 * ES256/384 and EdDSA. (libjwt 1.10 refuses RFC 9068 "at+jwt" access tokens
 * and has no EdDSA, so signatures are checked with OpenSSL directly.) */
#include "internal.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/param_build.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hoopctl/identity.h"

#define JWT_MAX_TOKEN 16384
#define JWT_MAX_PART 12288

static long jwk_b64_member(json_t *jwk, const char *name, unsigned char *out, size_t cap)
{
    json_t *v = json_object_get(jwk, name);
    if (!json_is_string(v))
        return -1;
    return identity_b64url_decode(json_string_value(v), json_string_length(v), out, cap);
}

static EVP_PKEY *jwk_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params && ctx && EVP_PKEY_fromdata_init(ctx) > 0)
        if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
            pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static EVP_PKEY *jwk_rsa(json_t *jwk, const char **why)
{
    unsigned char n[1024], e[16];
    long nl = jwk_b64_member(jwk, "n", n, sizeof n), el = jwk_b64_member(jwk, "e", e, sizeof e);
    if (nl <= 0 || el <= 0) {
        *why = "RSA key without valid n/e";
        return NULL;
    }
    if (nl < 256) {
        *why = "RSA key shorter than 2048 bits";
        return NULL;
    }
    BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
        pkey = jwk_from_params("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    if (!pkey)
        *why = "RSA key OpenSSL refused";
    return pkey;
}

static EVP_PKEY *jwk_ec(json_t *jwk, enum identity_key_type *type, const char **why)
{
    json_t *crv = json_object_get(jwk, "crv");
    const char *c = json_is_string(crv) ? json_string_value(crv) : "";
    size_t coord;
    const char *group;
    if (strcmp(c, "P-256") == 0) {
        coord = 32, group = "prime256v1", *type = IDENTITY_KEY_P256;
    } else if (strcmp(c, "P-384") == 0) {
        coord = 48, group = "secp384r1", *type = IDENTITY_KEY_P384;
    } else {
        *why = "EC key on an unsupported curve";
        return NULL;
    }
    unsigned char pub[1 + 2 * 48];
    pub[0] = 0x04; /* uncompressed point */
    long xl = jwk_b64_member(jwk, "x", pub + 1, 48), yl = jwk_b64_member(jwk, "y", pub + 1 + coord, 48);
    if (xl != (long)coord || yl != (long)coord) {
        *why = "EC key with a bad x/y";
        return NULL;
    }
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * coord))
        pkey = jwk_from_params("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    if (!pkey)
        *why = "EC key OpenSSL refused (not on the curve?)";
    return pkey;
}

static EVP_PKEY *jwk_okp(json_t *jwk, const char **why)
{
    json_t *crv = json_object_get(jwk, "crv");
    if (!json_is_string(crv) || strcmp(json_string_value(crv), "Ed25519") != 0) {
        *why = "OKP key on an unsupported curve";
        return NULL;
    }
    unsigned char x[32];
    if (jwk_b64_member(jwk, "x", x, sizeof x) != 32) {
        *why = "Ed25519 key with a bad x";
        return NULL;
    }
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, sizeof x);
    if (!pkey)
        *why = "Ed25519 key OpenSSL refused";
    return pkey;
}

int identity_jwks_parse(json_t *jwks, struct identity_jwk *keys, int max, char *err, size_t errlen)
{
    json_t *arr = json_is_object(jwks) ? json_object_get(jwks, "keys") : NULL;
    if (!json_is_array(arr)) {
        snprintf(err, errlen, "JWKS has no \"keys\" array");
        return -1;
    }
    int n = 0;
    size_t i;
    json_t *jwk;
    json_array_foreach(arr, i, jwk) {
        if (n >= max)
            break;
        if (!json_is_object(jwk))
            continue;
        json_t *use = json_object_get(jwk, "use");
        if (use && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0))
            continue; /* an encryption key */
        const char *kty = json_string_value(json_object_get(jwk, "kty"));
        const char *why = "unsupported key type";
        struct identity_jwk k = {0};
        if (!kty)
            continue;
        if (strcmp(kty, "RSA") == 0) {
            k.type = IDENTITY_KEY_RSA;
            k.pkey = jwk_rsa(jwk, &why);
        } else if (strcmp(kty, "EC") == 0) {
            k.pkey = jwk_ec(jwk, &k.type, &why);
        } else if (strcmp(kty, "OKP") == 0) {
            k.type = IDENTITY_KEY_ED25519;
            k.pkey = jwk_okp(jwk, &why);
        }
        if (!k.pkey)
            continue; /* skipped: keys we cannot use never match a token */
        (void)why;
        identity_json_copy(jwk, "kid", k.kid, sizeof k.kid);
        identity_json_copy(jwk, "alg", k.alg, sizeof k.alg);
        keys[n++] = k;
    }
    return n;
}

void identity_jwks_free(struct identity_jwk *keys, int n)
{
    for (int i = 0; i < n; i++) {
        EVP_PKEY_free(keys[i].pkey);
        keys[i].pkey = NULL;
    }
}

enum identity_key_type identity_alg_key_type(const char *alg)
{
    if (strcmp(alg, "RS256") == 0 || strcmp(alg, "RS384") == 0 || strcmp(alg, "RS512") == 0)
        return IDENTITY_KEY_RSA;
    if (strcmp(alg, "ES256") == 0)
        return IDENTITY_KEY_P256;
    if (strcmp(alg, "ES384") == 0)
        return IDENTITY_KEY_P384;
    if (strcmp(alg, "EdDSA") == 0)
        return IDENTITY_KEY_ED25519;
    return 0;
}

static json_t *jws_json_part(const char *p, size_t len, const char *what, char *err, size_t errlen)
{
    static const size_t cap = JWT_MAX_PART;
    unsigned char *raw = malloc(cap);
    if (!raw) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    long n = identity_b64url_decode(p, len, raw, cap);
    json_t *j = NULL;
    if (n < 0) {
        snprintf(err, errlen, "malformed token: %s is not base64url", what);
    } else {
        json_error_t jerr;
        j = json_loadb((const char *)raw, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
        if (!j || !json_is_object(j)) {
            snprintf(err, errlen, "malformed token: %s is not a JSON object", what);
            json_decref(j);
            j = NULL;
        }
    }
    free(raw);
    return j;
}

int identity_jws_decode(const char *token, struct identity_jws *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t len = strnlen(token, JWT_MAX_TOKEN + 1);
    if (len > JWT_MAX_TOKEN) {
        snprintf(err, errlen, "malformed token: longer than %d bytes", JWT_MAX_TOKEN);
        return -1;
    }
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token))) {
        snprintf(err, errlen, "malformed token: not three dot-separated parts");
        return -1;
    }
    if (d1 == token || d2 == d1 + 1) {
        snprintf(err, errlen, "malformed token: empty header or payload");
        return -1;
    }
    out->header = jws_json_part(token, (size_t)(d1 - token), "header", err, errlen);
    if (!out->header)
        return -1;
    out->claims = jws_json_part(d1 + 1, (size_t)(d2 - d1 - 1), "payload", err, errlen);
    if (!out->claims) {
        identity_jws_free(out);
        return -1;
    }
    long sl = identity_b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - token), out->sig, sizeof out->sig);
    if (sl < 0) {
        snprintf(err, errlen, "malformed token: signature is not base64url or too long");
        identity_jws_free(out);
        return -1;
    }
    out->siglen = (size_t)sl;
    out->signing_input = token;
    out->signing_input_len = (size_t)(d2 - token);
    return 0;
}

void identity_jws_free(struct identity_jws *j)
{
    json_decref(j->header);
    json_decref(j->claims);
    j->header = j->claims = NULL;
}

/* JWS ECDSA signatures are r||s; OpenSSL wants DER. */
static int ecdsa_raw_to_der(const unsigned char *sig, size_t siglen, size_t coord,
                            unsigned char **der, int *derlen)
{
    if (siglen != 2 * coord)
        return -1;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)coord, NULL), *s = BN_bin2bn(sig + coord, (int)coord, NULL);
    if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
        ECDSA_SIG_free(es);
        BN_free(r);
        BN_free(s);
        return -1;
    }
    *der = NULL;
    *derlen = i2d_ECDSA_SIG(es, der);
    ECDSA_SIG_free(es);
    return *derlen > 0 ? 0 : -1;
}

int identity_jws_verify(const struct identity_jws *j, const char *alg, const struct identity_jwk *key,
                        char *err, size_t errlen)
{
    const EVP_MD *md = NULL;
    const unsigned char *sig = j->sig;
    size_t siglen = j->siglen;
    unsigned char *der = NULL;
    if (strcmp(alg, "RS256") == 0 || strcmp(alg, "ES256") == 0)
        md = EVP_sha256();
    else if (strcmp(alg, "RS384") == 0 || strcmp(alg, "ES384") == 0)
        md = EVP_sha384();
    else if (strcmp(alg, "RS512") == 0)
        md = EVP_sha512();
    if (key->type == IDENTITY_KEY_P256 || key->type == IDENTITY_KEY_P384) {
        int dl;
        if (ecdsa_raw_to_der(j->sig, j->siglen, key->type == IDENTITY_KEY_P256 ? 32 : 48, &der, &dl) < 0) {
            snprintf(err, errlen, "bad signature: wrong length for %s", alg);
            return -1;
        }
        sig = der;
        siglen = (size_t)dl;
    } else if (key->type == IDENTITY_KEY_ED25519 && siglen != 64) {
        snprintf(err, errlen, "bad signature: wrong length for EdDSA");
        return -1;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, key->pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)j->signing_input,
                              j->signing_input_len) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    if (!ok) {
        snprintf(err, errlen, "bad signature (%s, key id '%s')", alg, key->kid);
        return -1;
    }
    return 0;
}

int identity_jwt_peek(const char *token, json_t **header, json_t **claims, char *err, size_t errlen)
{
    struct identity_jws j;
    if (identity_jws_decode(token, &j, err, errlen) < 0)
        return -1;
    *header = j.header;
    *claims = j.claims;
    return 0;
}
