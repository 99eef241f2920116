/* auth.c — PostgreSQL authentication as pure state machines fed one message
 * at a time: the client side the gateway speaks to the upstream server
 * (SCRAM-SHA-256 per RFC 5802/7677, with tls-server-end-point channel
 * binding (SCRAM-SHA-256-PLUS, RFC 5929) over TLS as libpq does, md5, cleartext),
 * and the server side of SCRAM-SHA-256 for clients of the gateway. */
#include "hoopctl/pgwire.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/md5.h>
#include <openssl/objects.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define SCRAM_MAX_ITERATIONS 4096 /* keep fuzzing fast; the parser is the same */
#else
#define SCRAM_MAX_ITERATIONS 1000000
#endif
#define SCRAM_MAX_MESSAGE 2048

enum auth_state { AUTH_START = 0, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL, AUTH_WAIT_OK, AUTH_DONE };

void pgwire_md5_password(const char *user, const char *password, const uint8_t salt[4],
                         char out[36])
{
    uint8_t digest[16];
    char hex[33];
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c, EVP_md5(), NULL);
    EVP_DigestUpdate(c, password, strlen(password));
    EVP_DigestUpdate(c, user, strlen(user));
    EVP_DigestFinal_ex(c, digest, NULL);
    util_hex_encode(digest, 16, hex);
    EVP_DigestInit_ex(c, EVP_md5(), NULL);
    EVP_DigestUpdate(c, hex, 32);
    EVP_DigestUpdate(c, salt, 4);
    EVP_DigestFinal_ex(c, digest, NULL);
    EVP_MD_CTX_free(c);
    memcpy(out, "md5", 3);
    util_hex_encode(digest, 16, out + 3);
    util_secure_zero(hex, sizeof hex);
}

bool pgwire_sqlstate_valid(const char *code)
{
    for (int i = 0; i < 5; i++)
        if (!((code[i] >= '0' && code[i] <= '9') || (code[i] >= 'A' && code[i] <= 'Z')))
            return false;
    return code[5] == '\0';
}

static int b64_encode(const uint8_t *in, size_t len, struct buf *out)
{
    size_t need = 4 * ((len + 2) / 3);
    if (buf_reserve(out, need + 1) < 0)
        return -1;
    int n = EVP_EncodeBlock(out->data + out->len, in, (int)len);
    out->len += (size_t)n;
    return 0;
}

/* Decode standard base64; returns the byte count or -1. */
static int b64_decode(const char *in, size_t len, uint8_t *out, size_t outlen)
{
    if (len % 4 || len / 4 * 3 > outlen)
        return -1;
    int n = EVP_DecodeBlock(out, (const uint8_t *)in, (int)len);
    if (n < 0)
        return -1;
    if (len && in[len - 1] == '=')
        n--;
    if (len > 1 && in[len - 2] == '=')
        n--;
    return n;
}

static void hmac256(const uint8_t *key, size_t klen, const void *data, size_t dlen, uint8_t out[32])
{
    unsigned int olen = 32;
    HMAC(EVP_sha256(), key, (int)klen, data, dlen, out, &olen);
}

/* The value of attribute `name` ("r", "s", "i", "v", "e") in a SCRAM message. */
static bool scram_attr(const char *msg, char name, const char **val, size_t *vlen)
{
    const char *p = msg;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n >= 2 && p[0] == name && p[1] == '=') {
            *val = p + 2;
            *vlen = n - 2;
            return true;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return false;
}

int pgwire_tls_server_end_point(const struct x509_st *cert, uint8_t out[PGWIRE_CB_DATA_MAX], size_t *len,
                                char *err, size_t errlen)
{
    /* RFC 5929 section 4.1, as PostgreSQL computes it on both sides. */
    int algo_nid = NID_undef;
    *len = 0;
    if (!cert || !OBJ_find_sigid_algs(X509_get_signature_nid(cert), &algo_nid, NULL)) {
        snprintf(err, errlen, "cannot tell the upstream certificate's signature algorithm");
        return -1;
    }
    const EVP_MD *md = NULL;
    if (algo_nid == NID_md5 || algo_nid == NID_sha1)
        md = EVP_sha256();
    else
        md = EVP_get_digestbynid(algo_nid);
    if (!md || EVP_MD_size(md) <= 0 || EVP_MD_size(md) > PGWIRE_CB_DATA_MAX) {
        snprintf(err, errlen, "no hash for the upstream certificate's signature algorithm (%s)",
                 algo_nid == NID_undef ? "none" : OBJ_nid2sn(algo_nid));
        return -1;
    }
    unsigned int n = 0;
    if (!X509_digest(cert, md, out, &n)) {
        snprintf(err, errlen, "cannot hash the upstream certificate");
        return -1;
    }
    *len = n;
    return 0;
}

int pgwire_scram_client_final(const char *password, const char *client_first_bare,
                              const char *server_first, const char *client_nonce,
                              struct buf *out, uint8_t server_signature[32], char *err,
                              size_t errlen)
{
    return pgwire_scram_client_final_cb(password, client_first_bare, server_first, client_nonce, "n,,", NULL, 0,
                                        out, server_signature, err, errlen);
}

/* pgwire_scram_client_final_cb, with the salted password taken from *cache
 * when its salt and count are the server's, and left there otherwise (cache
 * may be NULL). */
static int scram_client_final(const char *password, const char *client_first_bare, const char *server_first,
                              const char *client_nonce, const char *gs2_header, const uint8_t *cb_data,
                              size_t cb_len, struct pgwire_scram_salted *cache, struct buf *out,
                              uint8_t server_signature[32], char *err, size_t errlen)
{
    const char *nonce, *salt64, *iter;
    size_t nlen, slen, ilen;
    if (strncmp(server_first, "r=", 2) != 0 || !scram_attr(server_first, 'r', &nonce, &nlen) ||
        !scram_attr(server_first, 's', &salt64, &slen) ||
        !scram_attr(server_first, 'i', &iter, &ilen) || strstr(server_first, ",m=")) {
        snprintf(err, errlen, "malformed SCRAM server-first message");
        return -1;
    }
    size_t cnlen = strlen(client_nonce);
    if (nlen <= cnlen || strncmp(nonce, client_nonce, cnlen) != 0) {
        snprintf(err, errlen, "SCRAM server nonce does not extend the client nonce");
        return -1;
    }
    for (size_t i = 0; i < nlen; i++)
        if (nonce[i] < 0x21 || nonce[i] > 0x7e || nonce[i] == ',') {
            snprintf(err, errlen, "invalid SCRAM nonce");
            return -1;
        }
    char ibuf[16];
    if (ilen == 0 || ilen >= sizeof ibuf) {
        snprintf(err, errlen, "invalid SCRAM iteration count");
        return -1;
    }
    memcpy(ibuf, iter, ilen);
    ibuf[ilen] = 0;
    char *end;
    long iterations = strtol(ibuf, &end, 10);
    if (*end || iterations < 1 || iterations > SCRAM_MAX_ITERATIONS) {
        snprintf(err, errlen, "invalid SCRAM iteration count");
        return -1;
    }
    uint8_t salt[256];
    int saltlen = b64_decode(salt64, slen, salt, sizeof salt);
    if (saltlen <= 0) {
        snprintf(err, errlen, "invalid SCRAM salt");
        return -1;
    }
    uint8_t salted[32], client_key[32], stored_key[32], server_key[32], sig[32], proof[32];
    if (cache && cache->valid && cache->iterations == (int)iterations && cache->saltlen == saltlen &&
        memcmp(cache->salt, salt, (size_t)saltlen) == 0) {
        memcpy(salted, cache->key, 32);
    } else {
        if (!PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, saltlen, (int)iterations, EVP_sha256(),
                               32, salted)) {
            snprintf(err, errlen, "PBKDF2 failed");
            return -1;
        }
        if (cache) {
            cache->valid = true;
            cache->iterations = (int)iterations;
            cache->saltlen = saltlen;
            memcpy(cache->salt, salt, (size_t)saltlen);
            memcpy(cache->key, salted, 32);
        }
    }
    hmac256(salted, 32, "Client Key", 10, client_key);
    SHA256(client_key, 32, stored_key);
    hmac256(salted, 32, "Server Key", 10, server_key);

    /* c=: base64 of the GS2 header and, when bound, the channel binding data. */
    struct buf without_proof = {0}, auth_message = {0}, cbind = {0};
    int rc = buf_append_str(&cbind, gs2_header);
    if (cb_len)
        rc |= buf_append(&cbind, cb_data, cb_len);
    rc |= buf_append_str(&without_proof, "c=");
    if (rc == 0)
        rc |= b64_encode(cbind.data, cbind.len, &without_proof);
    buf_free(&cbind);
    rc |= buf_append_str(&without_proof, ",r=") | buf_append(&without_proof, nonce, nlen);
    rc |= buf_append_str(&auth_message, client_first_bare) | buf_append_str(&auth_message, ",");
    rc |= buf_append_str(&auth_message, server_first) | buf_append_str(&auth_message, ",");
    rc |= buf_append(&auth_message, without_proof.data, without_proof.len);
    if (rc == 0) {
        hmac256(stored_key, 32, auth_message.data, auth_message.len, sig);
        for (int i = 0; i < 32; i++)
            proof[i] = client_key[i] ^ sig[i];
        hmac256(server_key, 32, auth_message.data, auth_message.len, server_signature);
        rc |= buf_append(out, without_proof.data, without_proof.len);
        rc |= buf_append_str(out, ",p=") | b64_encode(proof, 32, out);
    }
    util_secure_zero(salted, 32);
    util_secure_zero(client_key, 32);
    util_secure_zero(stored_key, 32);
    util_secure_zero(server_key, 32);
    buf_free(&without_proof);
    buf_free(&auth_message);
    if (rc) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int pgwire_scram_client_final_cb(const char *password, const char *client_first_bare,
                                 const char *server_first, const char *client_nonce,
                                 const char *gs2_header, const uint8_t *cb_data, size_t cb_len,
                                 struct buf *out, uint8_t server_signature[32], char *err,
                                 size_t errlen)
{
    return scram_client_final(password, client_first_bare, server_first, client_nonce, gs2_header, cb_data,
                              cb_len, NULL, out, server_signature, err, errlen);
}

static enum pgwire_auth_result auth_fail(struct pgwire_auth *a, char *err, size_t errlen,
                                         const char *msg)
{
    a->state = AUTH_DONE;
    snprintf(err, errlen, "%s", msg);
    return PGWIRE_AUTH_FAILED;
}

#define NO_PASSWORD "upstream asks for a password but none was given"

static enum pgwire_auth_result no_password(struct pgwire_auth *a, char *err, size_t errlen)
{
    a->needed_password = true;
    return auth_fail(a, err, errlen, NO_PASSWORD);
}

/* The GS2 header of the client-first message (RFC 5802 section 7), as libpq
 * picks it: "p=tls-server-end-point" when bound; "y" when TLS is up and
 * binding allowed but the server offered no PLUS mechanism (so a server that
 * does support it sees the downgrade); otherwise "n". */
static const char *gs2_header(const struct pgwire_auth *a)
{
    return a->gs2 == 'p' ? "p=tls-server-end-point,," : a->gs2 == 'y' ? "y,," : "n,,";
}

static enum pgwire_auth_result sasl_start(struct pgwire_auth *a, struct pgwire_reader *r,
                                          struct buf *reply, char *err, size_t errlen)
{
    bool plain = false, plus = false;
    for (;;) {
        const char *mech = pgwire_read_cstr(r);
        if (!mech)
            return auth_fail(a, err, errlen, "malformed SASL mechanism list from upstream");
        if (!*mech)
            break;
        if (strcmp(mech, "SCRAM-SHA-256") == 0)
            plain = true;
        else if (strcmp(mech, "SCRAM-SHA-256-PLUS") == 0)
            plus = true;
    }
    if (!pgwire_reader_done(r))
        return auth_fail(a, err, errlen, "malformed SASL mechanism list from upstream");
    bool bind = plus && a->tls && a->channel_binding != PGWIRE_CB_DISABLE;
    if (a->channel_binding == PGWIRE_CB_REQUIRE && !bind)
        return auth_fail(a, err, errlen,
                         !a->tls ? "channel_binding=require, but the connection to upstream is not TLS"
                                 : "channel_binding=require, but upstream does not offer SCRAM-SHA-256-PLUS "
                                   "(SCRAM with channel binding)");
    if (!bind && !plain)
        return auth_fail(a, err, errlen,
                         plus && !a->tls ? "upstream offers only SCRAM-SHA-256-PLUS, which needs TLS"
                                         : "upstream offers no SASL mechanism we support (SCRAM-SHA-256)");
    if (bind && !a->cb_len) {
        char m[256];
        snprintf(m, sizeof m, "cannot bind SCRAM to the upstream's TLS certificate: %s",
                 a->cb_error[0] ? a->cb_error : "no certificate");
        return auth_fail(a, err, errlen, m);
    }
    if (!a->password)
        return no_password(a, err, errlen);
    a->gs2 = bind ? 'p' : a->tls && a->channel_binding != PGWIRE_CB_DISABLE ? 'y' : 'n';
    if (!a->client_nonce[0]) {
        uint8_t raw[18];
        if (util_random_bytes(raw, sizeof raw) < 0)
            return auth_fail(a, err, errlen, "no randomness for the SCRAM nonce");
        EVP_EncodeBlock((uint8_t *)a->client_nonce, raw, sizeof raw);
    }
    buf_reset(&a->client_first_bare);
    const char *gs2 = gs2_header(a);
    int rc = buf_printf(&a->client_first_bare, "n=,r=%s", a->client_nonce);
    size_t start;
    rc |= pgwire_msg_begin(reply, 'p', &start) | pgwire_put_cstr(reply, bind ? "SCRAM-SHA-256-PLUS" : "SCRAM-SHA-256");
    rc |= pgwire_put_i32(reply, (int32_t)(a->client_first_bare.len + strlen(gs2)));
    rc |= buf_append_str(reply, gs2);
    rc |= buf_append(reply, a->client_first_bare.data, a->client_first_bare.len);
    if (rc || pgwire_msg_finish(reply, start))
        return auth_fail(a, err, errlen, "out of memory");
    a->state = AUTH_SASL_CONTINUE;
    return PGWIRE_AUTH_CONTINUE;
}

static enum pgwire_auth_result sasl_continue(struct pgwire_auth *a, struct pgwire_reader *r,
                                             struct buf *reply, char *err, size_t errlen)
{
    size_t n = r->len - r->pos;
    if (n == 0 || n > SCRAM_MAX_MESSAGE)
        return auth_fail(a, err, errlen, "malformed SCRAM server-first message");
    const uint8_t *p = pgwire_read_bytes(r, n);
    if (memchr(p, 0, n))
        return auth_fail(a, err, errlen, "malformed SCRAM server-first message");
    buf_reset(&a->server_first);
    if (buf_append(&a->server_first, p, n) < 0)
        return auth_fail(a, err, errlen, "out of memory");
    struct buf final = {0};
    if (scram_client_final(a->password, buf_cstr(&a->client_first_bare), buf_cstr(&a->server_first),
                           a->client_nonce, gs2_header(a), a->cb_data, a->gs2 == 'p' ? a->cb_len : 0, &a->salted,
                           &final, a->server_signature, err, errlen) < 0) {
        buf_free(&final);
        a->state = AUTH_DONE;
        return PGWIRE_AUTH_FAILED;
    }
    size_t start;
    int rc = pgwire_msg_begin(reply, 'p', &start) | buf_append(reply, final.data, final.len);
    buf_free(&final);
    if (rc || pgwire_msg_finish(reply, start))
        return auth_fail(a, err, errlen, "out of memory");
    a->state = AUTH_SASL_FINAL;
    return PGWIRE_AUTH_CONTINUE;
}

static enum pgwire_auth_result sasl_final(struct pgwire_auth *a, struct pgwire_reader *r,
                                          char *err, size_t errlen)
{
    size_t n = r->len - r->pos;
    const uint8_t *p = pgwire_read_bytes(r, n);
    char msg[256];
    if (n < 3 || n >= sizeof msg)
        return auth_fail(a, err, errlen, "malformed SCRAM server-final message");
    memcpy(msg, p, n);
    msg[n] = 0;
    const char *v;
    size_t vlen;
    if (scram_attr(msg, 'e', &v, &vlen)) {
        snprintf(err, errlen, "upstream SCRAM error: %.*s", (int)vlen, v);
        a->state = AUTH_DONE;
        return PGWIRE_AUTH_FAILED;
    }
    uint8_t sig[64];
    if (!scram_attr(msg, 'v', &v, &vlen) || b64_decode(v, vlen, sig, sizeof sig) != 32 ||
        CRYPTO_memcmp(sig, a->server_signature, 32) != 0)
        return auth_fail(a, err, errlen, "upstream server signature did not verify (SCRAM)");
    a->state = AUTH_WAIT_OK;
    return PGWIRE_AUTH_CONTINUE;
}

enum pgwire_auth_result pgwire_auth_step(struct pgwire_auth *a, uint8_t type, const uint8_t *body,
                                         size_t len, struct buf *reply, char *err, size_t errlen)
{
    struct pgwire_reader r;
    pgwire_reader_init(&r, body, len);
    if (a->state == AUTH_DONE)
        return auth_fail(a, err, errlen, "authentication already finished");
    if (type == 'E') {
        char m[512] = "", c[8] = "";
        pgwire_error_field(body, len, 'M', m, sizeof m);
        if (!pgwire_error_field(body, len, 'C', c, sizeof c) || !pgwire_sqlstate_valid(c))
            c[0] = 0;
        snprintf(err, errlen, "upstream refused the connection: %s%s%s%s", m, c[0] ? " (SQLSTATE " : "",
                 c, c[0] ? ")" : "");
        a->state = AUTH_DONE;
        return PGWIRE_AUTH_FAILED;
    }
    if (type != 'R')
        return auth_fail(a, err, errlen, "protocol error: unexpected message during authentication");
    int32_t code = pgwire_read_i32(&r);
    if (r.bad)
        return auth_fail(a, err, errlen, "malformed authentication request");
    switch (code) {
    case 0:
        if (!pgwire_reader_done(&r))
            return auth_fail(a, err, errlen, "malformed AuthenticationOk");
        if (a->state == AUTH_SASL_CONTINUE || a->state == AUTH_SASL_FINAL)
            return auth_fail(a, err, errlen, "upstream ended SCRAM authentication early");
        if (a->channel_binding == PGWIRE_CB_REQUIRE && a->gs2 != 'p')
            return auth_fail(a, err, errlen, "channel_binding=require, but upstream authenticated us "
                                             "without channel binding");
        a->state = AUTH_DONE;
        return PGWIRE_AUTH_OK;
    case 3: /* cleartext */
    case 5: { /* md5 */
        if (a->state != AUTH_START)
            return auth_fail(a, err, errlen, "unexpected password request");
        const uint8_t *salt = code == 5 ? pgwire_read_bytes(&r, 4) : NULL;
        if (!pgwire_reader_done(&r))
            return auth_fail(a, err, errlen, "malformed password request");
        if (a->channel_binding == PGWIRE_CB_REQUIRE)
            return auth_fail(a, err, errlen, code == 5 ? "channel_binding=require, but upstream asks for an md5 password"
                                                       : "channel_binding=require, but upstream asks for a cleartext password");
        if (!a->password)
            return no_password(a, err, errlen);
        size_t start;
        int rc = pgwire_msg_begin(reply, 'p', &start);
        if (code == 5) {
            char md5[36];
            pgwire_md5_password(a->user ? a->user : "", a->password, salt, md5);
            rc |= pgwire_put_cstr(reply, md5);
            util_secure_zero(md5, sizeof md5);
        } else {
            rc |= pgwire_put_cstr(reply, a->password);
        }
        if (rc || pgwire_msg_finish(reply, start))
            return auth_fail(a, err, errlen, "out of memory");
        a->state = AUTH_WAIT_OK;
        return PGWIRE_AUTH_CONTINUE;
    }
    case 10:
        if (a->state != AUTH_START)
            return auth_fail(a, err, errlen, "unexpected SASL request");
        return sasl_start(a, &r, reply, err, errlen);
    case 11:
        if (a->state != AUTH_SASL_CONTINUE)
            return auth_fail(a, err, errlen, "unexpected SASL continue");
        return sasl_continue(a, &r, reply, err, errlen);
    case 12:
        if (a->state != AUTH_SASL_FINAL)
            return auth_fail(a, err, errlen, "unexpected SASL final");
        return sasl_final(a, &r, err, errlen);
    default: {
        char m[96];
        snprintf(m, sizeof m, "upstream asks for an authentication method we do not support (%d)", code);
        return auth_fail(a, err, errlen, m);
    }
    }
}

void pgwire_auth_free(struct pgwire_auth *a)
{
    if (a->client_first_bare.data)
        util_secure_zero(a->client_first_bare.data, a->client_first_bare.cap);
    if (a->server_first.data)
        util_secure_zero(a->server_first.data, a->server_first.cap);
    buf_free(&a->client_first_bare);
    buf_free(&a->server_first);
    util_secure_zero(a->server_signature, sizeof a->server_signature);
    util_secure_zero(&a->salted, sizeof a->salted);
}

/* ---- server side: SCRAM-SHA-256 for clients of the gateway -------------- */

int pgwire_scram_secret_make(const char *password, int iterations, struct pgwire_scram_secret *out)
{
    memset(out, 0, sizeof *out);
    if (iterations < 1 || util_random_bytes(out->salt, sizeof out->salt) < 0)
        return -1;
    uint8_t salted[32];
    if (!PKCS5_PBKDF2_HMAC(password, (int)strlen(password), out->salt, (int)sizeof out->salt,
                           iterations, EVP_sha256(), 32, salted))
        return -1;
    uint8_t client_key[32];
    hmac256(salted, 32, "Client Key", 10, client_key);
    SHA256(client_key, 32, out->stored_key);
    hmac256(salted, 32, "Server Key", 10, out->server_key);
    out->iterations = iterations;
    util_secure_zero(salted, sizeof salted);
    util_secure_zero(client_key, sizeof client_key);
    return 0;
}

int pgwire_scram_server_begin(struct buf *out)
{
    size_t start;
    int rc = pgwire_msg_begin(out, 'R', &start) | pgwire_put_i32(out, 10);
    rc |= pgwire_put_cstr(out, "SCRAM-SHA-256") | buf_append(out, "", 1);
    return rc ? -1 : pgwire_msg_finish(out, start);
}

static enum pgwire_auth_result scram_server_fail(struct pgwire_scram_server *s, char *err,
                                                 size_t errlen, const char *msg)
{
    s->state = AUTH_DONE;
    snprintf(err, errlen, "%s", msg);
    return PGWIRE_AUTH_FAILED;
}

/* An authentication request 'R' with a code and SCRAM data. */
static int scram_server_reply(struct buf *out, int32_t code, const char *data, size_t len)
{
    size_t start;
    int rc = pgwire_msg_begin(out, 'R', &start) | pgwire_put_i32(out, code) | buf_append(out, data, len);
    return rc ? -1 : pgwire_msg_finish(out, start);
}

/* SASLInitialResponse: "SCRAM-SHA-256", then "n,,n=...,r=<client nonce>". */
static enum pgwire_auth_result scram_server_first(struct pgwire_scram_server *s,
                                                  const struct pgwire_scram_secret *secret,
                                                  struct pgwire_reader *r, struct buf *reply,
                                                  char *err, size_t errlen)
{
    const char *mech = pgwire_read_cstr(r);
    int32_t n = pgwire_read_i32(r);
    if (r->bad || !mech || n < 0 || n > SCRAM_MAX_MESSAGE)
        return scram_server_fail(s, err, errlen, "malformed SASLInitialResponse");
    const uint8_t *data = pgwire_read_bytes(r, (size_t)n);
    if (!data || !pgwire_reader_done(r) || memchr(data, 0, (size_t)n))
        return scram_server_fail(s, err, errlen, "malformed SASLInitialResponse");
    if (strcmp(mech, "SCRAM-SHA-256") != 0)
        return scram_server_fail(s, err, errlen, "client chose a SASL mechanism the gateway does not offer");
    /* gs2 header: no channel binding ("n,,") or "y,," (client could but we do not offer it). */
    if (n < 3 || (memcmp(data, "n,,", 3) != 0 && memcmp(data, "y,,", 3) != 0))
        return scram_server_fail(s, err, errlen, "unsupported SCRAM channel binding or authzid");
    char bare[SCRAM_MAX_MESSAGE + 1];
    memcpy(bare, data + 3, (size_t)n - 3);
    bare[n - 3] = 0;
    const char *cnonce;
    size_t cnlen;
    if (strncmp(bare, "n=", 2) != 0 || !scram_attr(bare, 'r', &cnonce, &cnlen) || cnlen == 0 ||
        cnlen > 256 || strstr(bare, ",m="))
        return scram_server_fail(s, err, errlen, "malformed SCRAM client-first message");
    for (size_t i = 0; i < cnlen; i++)
        if (cnonce[i] < 0x21 || cnonce[i] > 0x7e || cnonce[i] == ',')
            return scram_server_fail(s, err, errlen, "invalid SCRAM nonce");
    s->gs2_y = data[0] == 'y';
    uint8_t raw[18];
    char snonce[32];
    if (util_random_bytes(raw, sizeof raw) < 0)
        return scram_server_fail(s, err, errlen, "no randomness for the SCRAM nonce");
    EVP_EncodeBlock((uint8_t *)snonce, raw, sizeof raw);
    buf_reset(&s->client_first_bare);
    buf_reset(&s->server_first);
    buf_reset(&s->nonce);
    int rc = buf_append_str(&s->client_first_bare, bare);
    rc |= buf_append(&s->nonce, cnonce, cnlen) | buf_append_str(&s->nonce, snonce);
    rc |= buf_append_str(&s->server_first, "r=") | buf_append(&s->server_first, s->nonce.data, s->nonce.len);
    rc |= buf_append_str(&s->server_first, ",s=") | b64_encode(secret->salt, sizeof secret->salt, &s->server_first);
    rc |= buf_printf(&s->server_first, ",i=%d", secret->iterations);
    if (rc || scram_server_reply(reply, 11, (const char *)s->server_first.data, s->server_first.len) < 0)
        return scram_server_fail(s, err, errlen, "out of memory");
    s->state = AUTH_SASL_CONTINUE;
    return PGWIRE_AUTH_CONTINUE;
}

/* SASLResponse: "c=<gs2 header b64>,r=<nonce>,p=<proof>"; check the proof. */
static enum pgwire_auth_result scram_server_final(struct pgwire_scram_server *s,
                                                  const struct pgwire_scram_secret *secret,
                                                  struct pgwire_reader *r, struct buf *reply,
                                                  char *err, size_t errlen)
{
    size_t n = r->len - r->pos;
    const uint8_t *data = pgwire_read_bytes(r, n);
    if (n == 0 || n > SCRAM_MAX_MESSAGE || memchr(data, 0, n))
        return scram_server_fail(s, err, errlen, "malformed SCRAM client-final message");
    char msg[SCRAM_MAX_MESSAGE + 1];
    memcpy(msg, data, n);
    msg[n] = 0;
    const char *cb, *nonce, *proof64;
    size_t cblen, nlen, plen;
    const char *at_proof = strstr(msg, ",p=");
    if (strncmp(msg, "c=", 2) != 0 || !scram_attr(msg, 'c', &cb, &cblen) ||
        !scram_attr(msg, 'r', &nonce, &nlen) || !at_proof || strchr(at_proof + 3, ','))
        return scram_server_fail(s, err, errlen, "malformed SCRAM client-final message");
    proof64 = at_proof + 3;
    plen = strlen(proof64);
    const char *want_cb = s->gs2_y ? "eSws" : "biws"; /* base64 of "y,," / "n,," */
    if (cblen != 4 || memcmp(cb, want_cb, 4) != 0)
        return scram_server_fail(s, err, errlen, "SCRAM channel binding does not match");
    if (nlen != s->nonce.len || memcmp(nonce, s->nonce.data, nlen) != 0)
        return scram_server_fail(s, err, errlen, "SCRAM nonce does not match");
    uint8_t proof[64];
    if (b64_decode(proof64, plen, proof, sizeof proof) != 32)
        return scram_server_fail(s, err, errlen, "malformed SCRAM proof");
    struct buf auth_message = {0};
    int rc = buf_append(&auth_message, s->client_first_bare.data, s->client_first_bare.len);
    rc |= buf_append_str(&auth_message, ",") | buf_append(&auth_message, s->server_first.data, s->server_first.len);
    rc |= buf_append_str(&auth_message, ",") | buf_append(&auth_message, msg, (size_t)(at_proof - msg));
    if (rc) {
        buf_free(&auth_message);
        return scram_server_fail(s, err, errlen, "out of memory");
    }
    uint8_t sig[32], client_key[32], stored[32], server_sig[32];
    hmac256(secret->stored_key, 32, auth_message.data, auth_message.len, sig);
    for (int i = 0; i < 32; i++)
        client_key[i] = proof[i] ^ sig[i];
    SHA256(client_key, 32, stored);
    bool ok = CRYPTO_memcmp(stored, secret->stored_key, 32) == 0;
    hmac256(secret->server_key, 32, auth_message.data, auth_message.len, server_sig);
    buf_free(&auth_message);
    util_secure_zero(client_key, sizeof client_key);
    if (!ok)
        return scram_server_fail(s, err, errlen, "wrong password");
    struct buf v = {0};
    rc = buf_append_str(&v, "v=") | b64_encode(server_sig, 32, &v);
    if (rc == 0)
        rc = scram_server_reply(reply, 12, (const char *)v.data, v.len);
    buf_free(&v);
    if (rc)
        return scram_server_fail(s, err, errlen, "out of memory");
    s->state = AUTH_DONE;
    return PGWIRE_AUTH_OK;
}

enum pgwire_auth_result pgwire_scram_server_step(struct pgwire_scram_server *s,
                                                 const struct pgwire_scram_secret *secret,
                                                 uint8_t type, const uint8_t *body, size_t len,
                                                 struct buf *reply, char *err, size_t errlen)
{
    struct pgwire_reader r;
    pgwire_reader_init(&r, body, len);
    if (type != 'p')
        return scram_server_fail(s, err, errlen, "expected a password message (SASL response)");
    if (s->state == AUTH_START)
        return scram_server_first(s, secret, &r, reply, err, errlen);
    if (s->state == AUTH_SASL_CONTINUE)
        return scram_server_final(s, secret, &r, reply, err, errlen);
    return scram_server_fail(s, err, errlen, "authentication already finished");
}

void pgwire_scram_server_free(struct pgwire_scram_server *s)
{
    buf_free(&s->client_first_bare);
    buf_free(&s->server_first);
    buf_free(&s->nonce);
}
