/* test_identity.c — the JWT verifier's rules with keys made here: every
 * accepted algorithm, alg/key matching, refused algorithms, the claim checks
 * (iss, aud, exp/nbf/iat with skew, sub, groups), malformed tokens, base64url. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <unistd.h>

#include "../../src/identity/internal.h"
#include "hoopctl/identity.h"

#define ISS "https://issuer.test"
#define AUD "https://hoopctl.test"

struct keys {
    EVP_PKEY *rsa, *rsa2, *p256, *p384, *ed;
    char *jwks; /* rsa (kid r1, alg RS256), rsa2 (kid r2), p256 (e1), p384 (e2), ed (d1) */
};
static struct keys K;

static char *b64url(const unsigned char *d, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    int len = EVP_EncodeBlock((unsigned char *)out, d, (int)n);
    for (int i = 0; i < len; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    return out;
}

static json_t *b64_json(const unsigned char *d, size_t n)
{
    char *s = b64url(d, n);
    json_t *j = json_string(s);
    free(s);
    return j;
}

static json_t *jwk_of(EVP_PKEY *k, const char *kid, const char *alg)
{
    json_t *j = json_pack("{s:s, s:s}", "kid", kid, "use", "sig");
    if (alg)
        json_object_set_new(j, "alg", json_string(alg));
    unsigned char buf[1024];
    size_t len = 0;
    if (EVP_PKEY_is_a(k, "RSA")) {
        BIGNUM *n = NULL, *e = NULL;
        EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n);
        EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e);
        json_object_set_new(j, "kty", json_string("RSA"));
        len = (size_t)BN_bn2bin(n, buf);
        json_object_set_new(j, "n", b64_json(buf, len));
        len = (size_t)BN_bn2bin(e, buf);
        json_object_set_new(j, "e", b64_json(buf, len));
        BN_free(n);
        BN_free(e);
    } else if (EVP_PKEY_is_a(k, "EC")) {
        EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf, sizeof buf, &len);
        size_t c = (len - 1) / 2;
        json_object_set_new(j, "kty", json_string("EC"));
        json_object_set_new(j, "crv", json_string(c == 32 ? "P-256" : "P-384"));
        json_object_set_new(j, "x", b64_json(buf + 1, c));
        json_object_set_new(j, "y", b64_json(buf + 1 + c, c));
    } else {
        len = sizeof buf;
        EVP_PKEY_get_raw_public_key(k, buf, &len);
        json_object_set_new(j, "kty", json_string("OKP"));
        json_object_set_new(j, "crv", json_string("Ed25519"));
        json_object_set_new(j, "x", b64_json(buf, len));
    }
    return j;
}

static int setup_keys(void **state)
{
    (void)state;
    K.rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    K.rsa2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    K.p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    K.p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    K.ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    json_t *keys = json_pack("[o,o,o,o,o]", jwk_of(K.rsa, "r1", "RS256"), jwk_of(K.rsa2, "r2", NULL),
                             jwk_of(K.p256, "e1", NULL), jwk_of(K.p384, "e2", NULL), jwk_of(K.ed, "d1", NULL));
    json_t *doc = json_pack("{s:o}", "keys", keys);
    K.jwks = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return K.rsa && K.rsa2 && K.p256 && K.p384 && K.ed ? 0 : -1;
}

static int teardown_keys(void **state)
{
    (void)state;
    EVP_PKEY_free(K.rsa);
    EVP_PKEY_free(K.rsa2);
    EVP_PKEY_free(K.p256);
    EVP_PKEY_free(K.p384);
    EVP_PKEY_free(K.ed);
    free(K.jwks);
    return 0;
}

/* A token with header h and the given claims, signed with key as alg. */
static char *sign_token_header(json_t *h, const char *alg, json_t *claims, EVP_PKEY *key)
{
    char *hs = json_dumps(h, JSON_COMPACT), *cs = json_dumps(claims, JSON_COMPACT);
    char *h64 = b64url((unsigned char *)hs, strlen(hs)), *c64 = b64url((unsigned char *)cs, strlen(cs));
    size_t inlen = strlen(h64) + 1 + strlen(c64);
    char *input = malloc(inlen + 1);
    sprintf(input, "%s.%s", h64, c64);
    unsigned char sig[1024];
    size_t siglen = sizeof sig;
    if (key) {
        const EVP_MD *md = strstr(alg, "384") ? EVP_sha384() : strstr(alg, "512") ? EVP_sha512()
                           : strcmp(alg, "EdDSA") == 0 ? NULL : EVP_sha256();
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, key), 1);
        assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)input, inlen), 1);
        EVP_MD_CTX_free(ctx);
        if (EVP_PKEY_is_a(key, "EC")) { /* DER -> r||s */
            const unsigned char *p = sig;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
            int c = EVP_PKEY_get_bits(key) / 8;
            BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, c);
            BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + c, c);
            siglen = (size_t)(2 * c);
            ECDSA_SIG_free(es);
        }
    } else {
        siglen = 0;
    }
    char *s64 = b64url(sig, siglen);
    char *tok = malloc(inlen + strlen(s64) + 2);
    sprintf(tok, "%s.%s", input, s64);
    free(hs), free(cs), free(h64), free(c64), free(input), free(s64);
    return tok;
}

/* A signed token: header {alg, typ, kid?}. */
static char *sign_token(const char *alg, const char *kid, json_t *claims, EVP_PKEY *key)
{
    json_t *h = json_pack("{s:s, s:s}", "alg", alg, "typ", "at+jwt");
    if (kid)
        json_object_set_new(h, "kid", json_string(kid));
    char *tok = sign_token_header(h, alg, claims, key);
    json_decref(h);
    return tok;
}

static json_t *good_claims(void)
{
    long now = (long)time(NULL);
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:[s,s]}", "iss", ISS, "aud", AUD, "sub", "alice", "email",
                     "alice@example.test", "iat", (json_int_t)now, "exp", (json_int_t)(now + 300), "groups",
                     "dba", "eng");
}

static enum auth_result run_cfg(const struct identity_jwt_config *cfg, const char *tok,
                                struct auth_identity *id, char *err, size_t errlen)
{
    struct auth_verifier v;
    char e[256];
    assert_int_equal(identity_jwt_verifier_new(cfg, &v, e, sizeof e), 0);
    err[0] = '\0';
    enum auth_result r = v.verify(v.ctx, tok, id, err, errlen);
    v.destroy(v.ctx);
    return r;
}

/* Verify tok with the test JWKS; err gets the reason. */
static enum auth_result run(const char *tok, struct auth_identity *id, char *err, size_t errlen)
{
    struct identity_jwt_config cfg = {.issuer = ISS, .audience = AUD, .jwks_json = K.jwks};
    return run_cfg(&cfg, tok, id, err, errlen);
}

/* Sign claims (consumed) and expect refusal with reason. */
static void expect_refused(const char *alg, const char *kid, json_t *claims, EVP_PKEY *key, const char *reason)
{
    char *tok = sign_token(alg, kid, claims, key);
    json_decref(claims);
    struct auth_identity id;
    char err[512];
    enum auth_result r = run(tok, &id, err, sizeof err);
    if (r != AUTH_REFUSED || !strstr(err, reason))
        fail_msg("expected refusal [%s], got %d [%s]", reason, r, err);
    free(tok);
}

static void expect_ok(const char *alg, const char *kid, json_t *claims, EVP_PKEY *key, struct auth_identity *id)
{
    char *tok = sign_token(alg, kid, claims, key);
    json_decref(claims);
    char err[512];
    enum auth_result r = run(tok, id, err, sizeof err);
    if (r != AUTH_OK)
        fail_msg("%s token refused: %s", alg, err);
    free(tok);
}

static void test_every_algorithm_accepted(void **state)
{
    (void)state;
    struct auth_identity id;
    expect_ok("RS256", "r1", good_claims(), K.rsa, &id);
    assert_string_equal(id.subject, "alice");
    assert_string_equal(id.issuer, ISS);
    assert_string_equal(id.email, "alice@example.test");
    assert_string_equal(id.kind, "oidc");
    assert_int_equal(id.ngroups, 2);
    assert_string_equal(id.groups[1], "eng");
    assert_true(auth_identity_in_group(&id, "dba"));
    assert_true(id.expires_at > time(NULL));
    expect_ok("RS384", "r2", good_claims(), K.rsa2, &id);
    expect_ok("RS512", "r2", good_claims(), K.rsa2, &id);
    expect_ok("ES256", "e1", good_claims(), K.p256, &id);
    expect_ok("ES384", "e2", good_claims(), K.p384, &id);
    expect_ok("EdDSA", "d1", good_claims(), K.ed, &id);
    /* no kid: the only key of the alg's type */
    expect_ok("ES256", NULL, good_claims(), K.p256, &id);
}

static void test_refused_algorithms(void **state)
{
    (void)state;
    expect_refused("none", "r1", good_claims(), NULL, "alg 'none' refused");
    expect_refused("HS256", "r1", good_claims(), K.rsa, "HMAC alg 'HS256' refused");
    expect_refused("PS256", "r1", good_claims(), K.rsa, "alg 'PS256' not supported");
    expect_refused("hs256", "r1", good_claims(), K.rsa, "HMAC alg 'hs256' refused");
    expect_refused("nOnE", "r1", good_claims(), NULL, "alg 'none' refused");
    /* header alg against the key's type, curve and pinned alg */
    expect_refused("ES256", "r1", good_claims(), K.p256, "does not match the type or curve of key 'r1'");
    expect_refused("ES384", "e1", good_claims(), K.p384, "does not match the type or curve of key 'e1'");
    expect_refused("RS256", "d1", good_claims(), K.rsa, "does not match the type or curve");
    expect_refused("RS384", "r1", good_claims(), K.rsa, "which is for RS256");
    /* two RSA keys and no kid: ambiguous */
    expect_refused("RS256", NULL, good_claims(), K.rsa, "no kid in the header");
    expect_refused("RS256", "zz", good_claims(), K.rsa, "unknown key id 'zz'");
    /* critical header extensions we do not know */
    json_t *h = json_pack("{s:s, s:s, s:[s]}", "alg", "RS256", "kid", "r1", "crit", "b64");
    json_t *c = good_claims();
    char *tok = sign_token_header(h, "RS256", c, K.rsa);
    struct auth_identity id;
    char err[256];
    assert_int_equal(run(tok, &id, err, sizeof err), AUTH_REFUSED);
    assert_non_null(strstr(err, "header 'crit'"));
    free(tok);
    json_decref(h);
    json_decref(c);
    /* the right kid, the wrong key's signature */
    expect_refused("RS256", "r1", good_claims(), K.rsa2, "bad signature");
    expect_refused("ES256", "e1", good_claims(), K.p384, "bad signature");
}

static void test_issuer_and_audience(void **state)
{
    (void)state;
    struct auth_identity id;
    json_t *c = good_claims();
    json_object_set_new(c, "iss", json_string("https://issuer.test/"));
    expect_refused("RS256", "r1", c, K.rsa, "wrong issuer");
    c = good_claims();
    json_object_del(c, "iss");
    expect_refused("RS256", "r1", c, K.rsa, "wrong issuer: '(none)'");
    c = good_claims();
    json_object_set_new(c, "aud", json_pack("[s,s]", "other", AUD));
    expect_ok("RS256", "r1", c, K.rsa, &id);
    c = good_claims();
    json_object_set_new(c, "aud", json_pack("[s,s]", "other", "x"));
    expect_refused("RS256", "r1", c, K.rsa, "wrong audience");
    c = good_claims();
    json_object_del(c, "aud");
    expect_refused("RS256", "r1", c, K.rsa, "wrong audience");
}

static void test_times_with_skew(void **state)
{
    (void)state;
    struct auth_identity id;
    json_int_t now = (json_int_t)time(NULL);
    json_t *c = good_claims();
    json_object_set_new(c, "exp", json_integer(now - 30)); /* within the 60 s skew */
    expect_ok("RS256", "r1", c, K.rsa, &id);
    c = good_claims();
    json_object_set_new(c, "exp", json_integer(now - 120));
    expect_refused("RS256", "r1", c, K.rsa, "token expired");
    c = good_claims();
    json_object_del(c, "exp");
    expect_refused("RS256", "r1", c, K.rsa, "claim 'exp' is missing");
    c = good_claims();
    json_object_set_new(c, "exp", json_string("tomorrow"));
    expect_refused("RS256", "r1", c, K.rsa, "claim 'exp' is not a time");
    c = good_claims();
    json_object_set_new(c, "nbf", json_integer(now + 30));
    expect_ok("RS256", "r1", c, K.rsa, &id);
    c = good_claims();
    json_object_set_new(c, "nbf", json_integer(now + 600));
    expect_refused("RS256", "r1", c, K.rsa, "token not valid yet");
    c = good_claims();
    json_object_set_new(c, "iat", json_integer(now + 600));
    expect_refused("RS256", "r1", c, K.rsa, "token issued in the future");

    /* a configured skew */
    c = good_claims();
    json_object_set_new(c, "exp", json_integer(now - 30));
    char *tok = sign_token("RS256", "r1", c, K.rsa);
    json_decref(c);
    struct identity_jwt_config cfg = {.issuer = ISS, .audience = AUD, .jwks_json = K.jwks, .clock_skew = 5};
    char err[256];
    assert_int_equal(run_cfg(&cfg, tok, &id, err, sizeof err), AUTH_REFUSED);
    assert_non_null(strstr(err, "token expired"));
    free(tok);
}

static void test_subject_and_groups(void **state)
{
    (void)state;
    struct auth_identity id;
    json_t *c = good_claims();
    json_object_del(c, "sub");
    expect_refused("RS256", "r1", c, K.rsa, "claim 'sub' is missing");
    c = good_claims();
    json_object_set_new(c, "sub", json_string(""));
    expect_refused("RS256", "r1", c, K.rsa, "claim 'sub' is not a usable string");
    c = good_claims();
    json_object_set_new(c, "sub", json_integer(7));
    expect_refused("RS256", "r1", c, K.rsa, "claim 'sub' is not a usable string");
    c = good_claims();
    json_object_set_new(c, "groups", json_string("solo"));
    expect_ok("RS256", "r1", c, K.rsa, &id);
    assert_int_equal(id.ngroups, 1);
    assert_string_equal(id.groups[0], "solo");
    c = good_claims();
    json_object_del(c, "groups");
    expect_ok("RS256", "r1", c, K.rsa, &id);
    assert_int_equal(id.ngroups, 0);
    c = good_claims();
    json_object_set_new(c, "groups", json_pack("[s,i]", "a", 1));
    expect_refused("RS256", "r1", c, K.rsa, "has a group that is not a string");
    c = good_claims();
    json_t *many = json_array();
    for (int i = 0; i < AUTH_MAX_GROUPS + 1; i++)
        json_array_append_new(many, json_string("g"));
    json_object_set_new(c, "groups", many);
    expect_refused("RS256", "r1", c, K.rsa, "lists more than 32 groups");
    c = good_claims();
    char longname[AUTH_GROUP_LEN + 10];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    json_object_set_new(c, "groups", json_pack("[s]", longname));
    expect_refused("RS256", "r1", c, K.rsa, "not a string of 1..63 bytes");

    /* groups from a configured, nested claim */
    c = good_claims();
    json_object_set_new(c, "realm_access", json_pack("{s:[s,s,s]}", "roles", "r-a", "r-b", "r-c"));
    char *tok = sign_token("RS256", "r1", c, K.rsa);
    json_decref(c);
    struct identity_jwt_config cfg = {.issuer = ISS, .audience = AUD, .jwks_json = K.jwks,
                                      .groups_claim = "realm_access.roles"};
    char err[256];
    assert_int_equal(run_cfg(&cfg, tok, &id, err, sizeof err), AUTH_OK);
    assert_int_equal(id.ngroups, 3);
    assert_string_equal(id.groups[2], "r-c");
    free(tok);
}

static void test_malformed_tokens(void **state)
{
    (void)state;
    struct auth_identity id;
    char err[256];
    const char *bad[] = {"a.b", "a.b.c.d", "..", ".e30.", "e30..", "!!!.e30.e30", "e30.e30.!!",
                         "bm90IGpzb24.e30.", "e30.bm90IGpzb24.", "W10.e30."};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        enum auth_result r = run(bad[i], &id, err, sizeof err);
        if (r != AUTH_REFUSED)
            fail_msg("[%s] not refused: %d %s", bad[i], r, err);
        assert_null(strstr(err, bad[i][0] ? bad[i] : "\x01"));
    }
    assert_int_equal(run("e30.e30.", &id, err, sizeof err), AUTH_REFUSED);
    assert_non_null(strstr(err, "header has no alg"));
    assert_int_equal(run("opaque-api-key", &id, err, sizeof err), AUTH_NOT_MINE);
    /* oversized */
    char *big = malloc(20001);
    memset(big, 'A', 20000);
    big[20000] = '\0';
    big[10] = '.';
    big[20] = '.';
    assert_int_equal(run(big, &id, err, sizeof err), AUTH_REFUSED);
    assert_non_null(strstr(err, "longer than"));
    free(big);
    /* an ES256 signature cut short */
    json_t *c = good_claims();
    char *tok = sign_token("ES256", "e1", c, K.p256);
    json_decref(c);
    tok[strlen(tok) - 4] = '\0';
    assert_int_equal(run(tok, &id, err, sizeof err), AUTH_REFUSED);
    assert_non_null(strstr(err, "signature"));
    free(tok);
}

static void test_base64url(void **state)
{
    (void)state;
    unsigned char out[16];
    assert_int_equal(identity_b64url_decode("", 0, out, sizeof out), 0);
    assert_int_equal(identity_b64url_decode("Zg", 2, out, sizeof out), 1);
    assert_memory_equal(out, "f", 1);
    assert_int_equal(identity_b64url_decode("Zm9vYg", 6, out, sizeof out), 4);
    assert_memory_equal(out, "foob", 4);
    assert_int_equal(identity_b64url_decode("-_8", 3, out, sizeof out), 2);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(identity_b64url_decode("Z", 1, out, sizeof out), -1);     /* impossible length */
    assert_int_equal(identity_b64url_decode("Zh", 2, out, sizeof out), -1);    /* non-canonical bits */
    assert_int_equal(identity_b64url_decode("+/8", 3, out, sizeof out), -1);   /* base64, not base64url */
    assert_int_equal(identity_b64url_decode("Zm9v", 4, out, 2), -1);           /* does not fit */
}

static void test_url_rules(void **state)
{
    (void)state;
    char err[256];
    const char *good[] = {"https://idp.example.com", "http://127.0.0.1:8080/x", "http://127.1.2.3",
                          "http://localhost:99", "http://localhost", "http://[::1]:5/",
                          "https://idp.example.com/path?login=a@b"};
    const char *bad[] = {"http://idp.example.com", "http://127.0.0.1.evil.example/", "http://127.0.0.1@evil/",
                         "http://localhost.evil.example", "ftp://127.0.0.1/", "https://", "file:///etc/passwd",
                         "http://127.0.0/", "http://127.0.0.1:x@192.0.2.2:18999", "http://localhost:x@evil/",
                         "http://[::1]:x@evil", "https://user:pw@idp.example.com/"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        if (identity_check_url(good[i], err, sizeof err) != 0)
            fail_msg("%s refused: %s", good[i], err);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (identity_check_url(bad[i], err, sizeof err) == 0)
            fail_msg("%s accepted", bad[i]);
}

static void test_config_refused(void **state)
{
    (void)state;
    struct auth_verifier v;
    char err[256];
    struct identity_jwt_config none = {0};
    assert_int_equal(identity_jwt_verifier_new(&none, &v, err, sizeof err), -1);
    struct identity_jwt_config plain = {.issuer = "http://idp.example.com", .audience = AUD};
    assert_int_equal(identity_jwt_verifier_new(&plain, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "only https"));
    struct identity_jwt_config badjwks = {.issuer = ISS, .audience = AUD, .jwks_json = "{"};
    assert_int_equal(identity_jwt_verifier_new(&badjwks, &v, err, sizeof err), -1);
}

/* A running connect renews its login from memory; after `hoopctl logout`
 * removed the login, it must not renew and save it again. */
static void test_logout_sticks(void **state)
{
    (void)state;
    char dir[] = "/tmp/hoopctl-logout-XXXXXX";
    assert_non_null(mkdtemp(dir));
    setenv("HOOPCTL_CONFIG_DIR", dir, 1);
    struct identity_session *s = calloc(1, sizeof *s);
    assert_non_null(s);
    snprintf(s->profile, sizeof s->profile, "http://127.0.0.1:9");
    snprintf(s->login.issuer, sizeof s->login.issuer, "http://127.0.0.1:9");
    snprintf(s->login.client_id, sizeof s->login.client_id, "hoopctl");
    snprintf(s->grant, sizeof s->grant, "device");
    snprintf(s->tokens.access_token, sizeof s->tokens.access_token, "expired-access");
    snprintf(s->tokens.refresh_token, sizeof s->tokens.refresh_token, "refresh-secret");
    s->tokens.expires_at = time(NULL) - 10;
    char err[512], path[4200];
    assert_int_equal(identity_store_save(s, err, sizeof err), 0);
    assert_int_equal(identity_store_path(s->profile, path, sizeof path), 0);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(identity_store_delete(s->profile, err, sizeof err), 0); /* what logout does */
    assert_int_equal(identity_session_ensure_fresh(s, 60, err, sizeof err), -1);
    assert_non_null(strstr(err, "logged out"));
    assert_int_not_equal(access(path, F_OK), 0); /* not written back */
    free(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    unsetenv("HOOPCTL_CONFIG_DIR");
}

static void *set_after_300ms(void *arg)
{
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    atomic_store((atomic_bool *)arg, true);
    return NULL;
}

/* hoopctl connect stops a refresh by its abort flag: a wait for the lock
 * file, held by another process through a hung refresh, ends too. */
static void test_refresh_lock_wait_aborts(void **state)
{
    (void)state;
    char dir[] = "/tmp/hoopctl-lockwait-XXXXXX";
    assert_non_null(mkdtemp(dir));
    setenv("HOOPCTL_CONFIG_DIR", dir, 1);
    struct identity_session *s = calloc(1, sizeof *s);
    assert_non_null(s);
    snprintf(s->profile, sizeof s->profile, "http://127.0.0.1:9");
    snprintf(s->login.issuer, sizeof s->login.issuer, "http://127.0.0.1:9");
    snprintf(s->login.client_id, sizeof s->login.client_id, "hoopctl");
    snprintf(s->grant, sizeof s->grant, "device");
    snprintf(s->tokens.refresh_token, sizeof s->tokens.refresh_token, "refresh-secret");
    s->tokens.expires_at = time(NULL) - 10;
    char err[512], path[4200], lockpath[4300];
    assert_int_equal(identity_store_save(s, err, sizeof err), 0);
    assert_int_equal(identity_store_path(s->profile, path, sizeof path), 0);
    snprintf(lockpath, sizeof lockpath, "%s.lock", path);
    int held = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600); /* another open file: another holder */
    assert_true(held >= 0);
    assert_int_equal(flock(held, LOCK_EX), 0);
    atomic_bool stop;
    atomic_init(&stop, false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, set_after_300ms, &stop), 0);
    identity_http_abort_on(&stop);
    time_t t0 = time(NULL);
    assert_int_equal(identity_session_ensure_fresh(s, 60, err, sizeof err), -1);
    identity_http_abort_on(NULL);
    assert_true(time(NULL) - t0 < 10);
    assert_non_null(strstr(err, "cancelled"));
    pthread_join(t, NULL);
    close(held);
    free(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    unsetenv("HOOPCTL_CONFIG_DIR");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_algorithm_accepted),
        cmocka_unit_test(test_refused_algorithms),
        cmocka_unit_test(test_issuer_and_audience),
        cmocka_unit_test(test_times_with_skew),
        cmocka_unit_test(test_subject_and_groups),
        cmocka_unit_test(test_malformed_tokens),
        cmocka_unit_test(test_base64url),
        cmocka_unit_test(test_url_rules),
        cmocka_unit_test(test_config_refused),
        cmocka_unit_test(test_logout_sticks),
        cmocka_unit_test(test_refresh_lock_wait_aborts),
    };
    return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
