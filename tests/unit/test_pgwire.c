/* test_pgwire.c — the wire codec: header checks, reader bounds, builders,
 * startup packets, Parse/Bind/RowDescription/DataRow decoding, conninfo
 * parsing, and the upstream authentication state machine (SCRAM RFC 7677
 * vector, channel binding, md5, cleartext, and the ways a server can get it
 * wrong). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/x509.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "hoopctl/pgwire.h"

static void header_checks(void **state)
{
    (void)state;
    char err[128];
    uint8_t h[5] = {'Q', 0, 0, 0, 4};
    assert_int_equal(pgwire_check_header(h, 1024, err, sizeof err), 0);
    h[4] = 3;
    assert_int_equal(pgwire_check_header(h, 1024, err, sizeof err), -1);
    assert_non_null(strstr(err, "invalid message length 3"));
    pgwire_put_u32(h + 1, 2000);
    assert_int_equal(pgwire_check_header(h, 1024, err, sizeof err), -1);
    assert_non_null(strstr(err, "over the 1024-byte limit"));
    pgwire_put_u32(h + 1, 0xffffffffu);
    assert_int_equal(pgwire_check_header(h, PGWIRE_DEFAULT_MAX_MESSAGE, err, sizeof err), -1);
}

static void reader_is_bounded(void **state)
{
    (void)state;
    const uint8_t data[] = {0, 1, 'a', 'b', 0, 0xff};
    struct pgwire_reader r;
    pgwire_reader_init(&r, data, sizeof data);
    assert_int_equal(pgwire_read_i16(&r), 1);
    assert_string_equal(pgwire_read_cstr(&r), "ab");
    assert_int_equal(pgwire_read_u8(&r), 0xff);
    assert_true(pgwire_reader_done(&r));
    assert_int_equal(pgwire_read_i32(&r), 0);
    assert_true(r.bad);
    pgwire_reader_init(&r, "abc", 3); /* no NUL inside */
    assert_null(pgwire_read_cstr(&r));
    assert_true(r.bad);
    pgwire_reader_init(&r, data, 2);
    assert_null(pgwire_read_bytes(&r, 3));
}

static void builders_round_trip(void **state)
{
    (void)state;
    struct buf b = {0};
    assert_int_equal(pgwire_build_error(&b, false, "ERROR", "42501", "no way"), 0);
    assert_int_equal(b.data[0], 'E');
    assert_int_equal(pgwire_get_u32(b.data + 1), b.len - 1);
    char f[64];
    assert_true(pgwire_error_field(b.data + 5, b.len - 5, 'C', f, sizeof f));
    assert_string_equal(f, "42501");
    assert_true(pgwire_error_field(b.data + 5, b.len - 5, 'M', f, sizeof f));
    assert_string_equal(f, "no way");
    assert_false(pgwire_error_field(b.data + 5, b.len - 5, 'D', f, sizeof f));
    assert_false(pgwire_error_field((const uint8_t *)"Cabc", 4, 'C', f, sizeof f)); /* unterminated */
    buf_reset(&b);
    assert_int_equal(pgwire_build_ready(&b, 'T'), 0);
    assert_memory_equal(b.data, "Z\0\0\0\5T", 6);
    buf_reset(&b);
    assert_int_equal(pgwire_build_backend_key(&b, 1234, 0xdeadbeef), 0);
    assert_int_equal(pgwire_get_u32(b.data + 5), 1234);
    assert_int_equal(pgwire_get_u32(b.data + 9), 0xdeadbeef);
    buf_reset(&b);
    const char *opts[] = {"_pq_.x"};
    assert_int_equal(pgwire_build_negotiate(&b, PGWIRE_PROTOCOL_3_0, opts, 1), 0);
    assert_int_equal(b.data[0], 'v');
    assert_int_equal(pgwire_get_u32(b.data + 5), 196608); /* 3.0 whole, as PostgreSQL sends it */
    assert_int_equal(b.len, 5 + 4 + 4 + 7);
    buf_free(&b);
}

static void startup_packets(void **state)
{
    (void)state;
    static struct pgwire_startup st;
    char err[128];
    uint8_t pkt[64];
    size_t n = 0;
    pgwire_put_u32(pkt, PGWIRE_PROTOCOL_3_0);
    n = 4;
    const char kv[] = "user\0alice\0database\0db\0application_name\0psql\0";
    memcpy(pkt + n, kv, sizeof kv); /* includes the final NUL terminator */
    n += sizeof kv;
    assert_int_equal(pgwire_parse_startup(pkt, n, &st, err, sizeof err), 0);
    assert_int_equal(st.nparams, 3);
    assert_string_equal(pgwire_startup_get(&st, "user"), "alice");
    assert_string_equal(pgwire_startup_get(&st, "application_name"), "psql");
    assert_null(pgwire_startup_get(&st, "nope"));
    /* missing final terminator */
    assert_int_equal(pgwire_parse_startup(pkt, n - 1, &st, err, sizeof err), -1);
    /* cancel request */
    pgwire_put_u32(pkt, PGWIRE_CANCEL_REQUEST);
    pgwire_put_u32(pkt + 4, 77);
    pgwire_put_u32(pkt + 8, 99);
    assert_int_equal(pgwire_parse_startup(pkt, 12, &st, err, sizeof err), 0);
    assert_int_equal(st.cancel_pid, 77);
    assert_int_equal(st.cancel_secret, 99);
    assert_int_equal(pgwire_parse_startup(pkt, 10, &st, err, sizeof err), -1);
    /* protocol 2 */
    pgwire_put_u32(pkt, 2u << 16);
    assert_int_equal(pgwire_parse_startup(pkt, 5, &st, err, sizeof err), -1);
    assert_non_null(strstr(err, "unsupported frontend protocol 2.0"));
    uint8_t len[4];
    pgwire_put_u32(len, 7);
    assert_int_equal(pgwire_startup_length(len, err, sizeof err), -1);
    pgwire_put_u32(len, PGWIRE_STARTUP_MAX + 1);
    assert_int_equal(pgwire_startup_length(len, err, sizeof err), -1);
    pgwire_put_u32(len, 8);
    assert_int_equal(pgwire_startup_length(len, err, sizeof err), 4);
}

static void extended_bodies(void **state)
{
    (void)state;
    struct pgwire_parse_msg pm;
    const uint8_t parse[] = "s1\0select $1\0\0\1\0\0\0\x17";
    assert_int_equal(pgwire_parse_parse(parse, sizeof parse - 1, &pm), 0);
    assert_string_equal(pm.statement, "s1");
    assert_string_equal(pm.query, "select $1");
    assert_int_equal(pm.ntypes, 1);
    assert_int_equal(pgwire_get_u32(pm.types), 23);
    assert_int_equal(pgwire_parse_parse(parse, sizeof parse - 2, &pm), -1);

    /* Bind: portal p, statement s1, 1 format (binary), 2 params ("hi", NULL), 0 result formats */
    const uint8_t bind[] = "p\0s1\0\0\1\0\1\0\2\0\0\0\2hi\xff\xff\xff\xff\0\0";
    struct pgwire_bind b;
    assert_int_equal(pgwire_parse_bind(bind, sizeof bind - 1, &b), 0);
    assert_string_equal(b.portal, "p");
    assert_int_equal(b.nparams, 2);
    assert_int_equal(b.lengths[0], 2);
    assert_memory_equal(b.values[0], "hi", 2);
    assert_null(b.values[1]);
    assert_int_equal(b.lengths[1], -1);
    assert_int_equal(b.formats[0], 1);
    pgwire_bind_free(&b);
    assert_int_equal(pgwire_parse_bind(bind, sizeof bind - 3, &b), -1);
    const uint8_t badlen[] = "\0\0\0\0\0\1\xff\xff\xff\xfe";
    assert_int_equal(pgwire_parse_bind(badlen, sizeof badlen - 1, &b), -1);

    char kind;
    const char *name;
    assert_int_equal(pgwire_parse_named((const uint8_t *)"Sabc", 5, true, &kind, &name), 0);
    assert_int_equal(kind, 'S');
    assert_string_equal(name, "abc");
    assert_int_equal(pgwire_parse_named((const uint8_t *)"Xabc", 5, true, &kind, &name), -1);
    assert_int_equal(pgwire_parse_named((const uint8_t *)"p\0\0\0\0\5", 6, false, &kind, &name), 0);

    /* RowDescription with one column "a" int4 */
    const uint8_t rd[] = "\0\1a\0\0\0\0\0\0\0\0\0\0\x17\0\4\xff\xff\xff\xff\0\0";
    struct pgwire_column *cols;
    assert_int_equal(pgwire_parse_row_description(rd, sizeof rd - 1, &cols), 1);
    assert_string_equal(cols[0].name, "a");
    assert_int_equal(cols[0].type_oid, 23);
    free(cols);
    assert_int_equal(pgwire_parse_row_description(rd, sizeof rd - 2, &cols), -1);

    const uint8_t dr[] = "\0\2\0\0\0\3abc\xff\xff\xff\xff";
    const uint8_t **vals;
    int32_t *lens;
    assert_int_equal(pgwire_parse_data_row(dr, sizeof dr - 1, &vals, &lens), 2);
    assert_int_equal(lens[0], 3);
    assert_int_equal(lens[1], -1);
    free(vals);
    free(lens);
    assert_int_equal(pgwire_parse_data_row(dr, 8, &vals, &lens), -1);
}

static void conninfo(void **state)
{
    (void)state;
    struct pgwire_conninfo ci;
    char err[256];
    assert_int_equal(pgwire_conninfo_parse("host=db.example port=6543 dbname='my db' user=u "
                                           "sslmode=verify-full sslrootcert=/ca.pem connect_timeout=3",
                                           &ci, err, sizeof err), 0);
    assert_string_equal(ci.host, "db.example");
    assert_string_equal(ci.port, "6543");
    assert_string_equal(ci.dbname, "my db");
    assert_int_equal(ci.sslmode, PGWIRE_SSL_VERIFY_FULL);
    assert_int_equal(ci.connect_timeout, 3);
    assert_int_equal(pgwire_conninfo_parse("user=u", &ci, err, sizeof err), 0);
    assert_int_equal(ci.sslmode, PGWIRE_SSL_PREFER);
    assert_string_equal(ci.host, "localhost");
    assert_string_equal(ci.dbname, "u");
    assert_int_equal(pgwire_conninfo_parse("user=u password=hunter2", &ci, err, sizeof err), -1);
    assert_null(strstr(err, "hunter2"));
    assert_int_equal(pgwire_conninfo_parse("user=u sslmode=sometimes", &ci, err, sizeof err), -1);
    /* verify-ca/full without a CA file: the system trust store, as libpq's
     * sslrootcert=system; SSL_CERT_FILE moves it. */
    unsetenv("SSL_CERT_FILE");
    assert_int_equal(pgwire_conninfo_parse("user=u sslmode=verify-ca", &ci, err, sizeof err), 0);
    assert_true(ci.sslrootcert_system);
    assert_string_equal(ci.sslrootcert, X509_get_default_cert_file());
    setenv("SSL_CERT_FILE", "/etc/test-ca.pem", 1);
    assert_int_equal(pgwire_conninfo_parse("user=u sslmode=verify-full sslrootcert=system", &ci, err, sizeof err), 0);
    assert_true(ci.sslrootcert_system);
    assert_string_equal(ci.sslrootcert, "/etc/test-ca.pem");
    unsetenv("SSL_CERT_FILE");
    assert_int_equal(pgwire_conninfo_parse("user=u sslmode=verify-full sslrootcert=/ca.pem", &ci, err, sizeof err), 0);
    assert_false(ci.sslrootcert_system);
    assert_string_equal(ci.sslrootcert, "/ca.pem");
    assert_int_equal(pgwire_conninfo_parse("user=u sslmode=require", &ci, err, sizeof err), 0);
    assert_false(ci.sslrootcert_system);
    assert_string_equal(ci.sslrootcert, "");
    assert_int_equal(ci.channel_binding, PGWIRE_CB_PREFER);
    assert_int_equal(pgwire_conninfo_parse("user=u sslmode=require channel_binding=require", &ci, err, sizeof err), 0);
    assert_int_equal(ci.channel_binding, PGWIRE_CB_REQUIRE);
    assert_int_equal(pgwire_conninfo_parse("user=u channel_binding=disable", &ci, err, sizeof err), 0);
    assert_int_equal(ci.channel_binding, PGWIRE_CB_DISABLE);
    assert_string_equal(pgwire_channel_binding_name(ci.channel_binding), "disable");
    assert_int_equal(pgwire_conninfo_parse("user=u channel_binding=maybe", &ci, err, sizeof err), -1);
    assert_non_null(strstr(err, "invalid channel_binding"));
    /* require can never be met without TLS */
    assert_int_equal(pgwire_conninfo_parse("user=u sslmode=disable channel_binding=require", &ci, err, sizeof err), -1);
    assert_non_null(strstr(err, "sslmode=disable"));
    assert_int_equal(pgwire_conninfo_parse("user=u host=/run/pg channel_binding=require", &ci, err, sizeof err), -1);
    assert_non_null(strstr(err, "Unix socket"));
    assert_int_equal(pgwire_conninfo_parse("user=u port=70000", &ci, err, sizeof err), -1);
    assert_int_equal(pgwire_conninfo_parse("user='unterminated", &ci, err, sizeof err), -1);
    assert_int_equal(pgwire_conninfo_parse("host=x", &ci, err, sizeof err), -1);
    assert_int_equal(pgwire_conninfo_parse("user=u bogus=1", &ci, err, sizeof err), -1);
    assert_int_equal(pgwire_conninfo_parse("user=u host", &ci, err, sizeof err), -1);
}

static void scram_rfc7677_vector(void **state)
{
    (void)state;
    struct buf out = {0};
    uint8_t sig[32], want[33];
    char err[128];
    assert_int_equal(pgwire_scram_client_final(
                         "pencil", "n=user,r=rOprNGfwEbeRWgbNEkqO",
                         "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                         "rOprNGfwEbeRWgbNEkqO", &out, sig, err, sizeof err), 0);
    assert_string_equal(buf_cstr(&out), "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                                        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    assert_int_equal(EVP_DecodeBlock(want, (const uint8_t *)"6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", 44), 33);
    assert_memory_equal(sig, want, 32);
    buf_reset(&out);
    /* A server nonce that does not extend ours, a zero iteration count, a bad salt. */
    assert_int_equal(pgwire_scram_client_final("p", "n=,r=abc", "r=xyz123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                                               "abc", &out, sig, err, sizeof err), -1);
    assert_int_equal(pgwire_scram_client_final("p", "n=,r=abc", "r=abc123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
                                               "abc", &out, sig, err, sizeof err), -1);
    assert_int_equal(pgwire_scram_client_final("p", "n=,r=abc", "r=abc123,s=!!,i=4096", "abc", &out, sig,
                                               err, sizeof err), -1);
    buf_free(&out);
}

static enum pgwire_auth_result step(struct pgwire_auth *a, int32_t code, const void *extra,
                                    size_t extra_len, struct buf *reply, char *err)
{
    uint8_t body[512];
    pgwire_put_u32(body, (uint32_t)code);
    memcpy(body + 4, extra, extra_len);
    buf_reset(reply);
    return pgwire_auth_step(a, 'R', body, 4 + extra_len, reply, err, 256);
}

static void auth_scram_exchange(void **state)
{
    (void)state;
    struct pgwire_auth a = {.user = "postgres", .password = "pencil"};
    snprintf(a.client_nonce, sizeof a.client_nonce, "fyko+d2lbbFgONRv9qkxdawL");
    struct buf reply = {0};
    char err[256];
    assert_int_equal(step(&a, 10, "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0", 34, &reply, err), PGWIRE_AUTH_CONTINUE);
    assert_int_equal(reply.data[0], 'p');
    assert_string_equal((char *)reply.data + 5, "SCRAM-SHA-256");
    assert_memory_equal(reply.data + 5 + 14 + 4, "n,,n=,r=fyko+d2lbbFgONRv9qkxdawL", 32);
    const char *server_first = "r=fyko+d2lbbFgONRv9qkxdawLsrvnonce,s=QSXCR+Q6sek8bf92,i=4096";
    assert_int_equal(step(&a, 11, server_first, strlen(server_first), &reply, err), PGWIRE_AUTH_CONTINUE);
    assert_int_equal(reply.data[0], 'p');
    /* The server's signature computed independently must verify. */
    struct buf final = {0};
    uint8_t sig[32];
    assert_int_equal(pgwire_scram_client_final("pencil", "n=,r=fyko+d2lbbFgONRv9qkxdawL", server_first,
                                               "fyko+d2lbbFgONRv9qkxdawL", &final, sig, err, sizeof err), 0);
    assert_memory_equal(reply.data + 5, final.data, final.len);
    char v[64] = "v=";
    EVP_EncodeBlock((uint8_t *)v + 2, sig, 32);
    struct pgwire_auth bad = a; /* copy before the final step to try a forged signature */
    assert_int_equal(step(&a, 12, v, strlen(v), &reply, err), PGWIRE_AUTH_CONTINUE);
    assert_int_equal(step(&a, 0, "", 0, &reply, err), PGWIRE_AUTH_OK);
    v[3] ^= 1;
    bad.client_first_bare = (struct buf){0};
    bad.server_first = (struct buf){0};
    assert_int_equal(step(&bad, 12, v, strlen(v), &reply, err), PGWIRE_AUTH_FAILED);
    assert_non_null(strstr(err, "did not verify"));
    pgwire_auth_free(&a);
    buf_free(&final);
    buf_free(&reply);
}

/* The client-final message of a SCRAM exchange fed server_first, with the
 * salted password already in a->salted (if any) offered for reuse. */
static void scram_final_with(struct pgwire_auth *a, const char *server_first, struct buf *reply)
{
    char err[256];
    snprintf(a->client_nonce, sizeof a->client_nonce, "fyko+d2lbbFgONRv9qkxdawL");
    buf_reset(reply);
    assert_int_equal(step(a, 10, "SCRAM-SHA-256\0", 15, reply, err), PGWIRE_AUTH_CONTINUE);
    buf_reset(reply);
    assert_int_equal(step(a, 11, server_first, strlen(server_first), reply, err), PGWIRE_AUTH_CONTINUE);
}

/* A login keeps its salted password; the next one with the same salt and
 * count uses it instead of PBKDF2 of its password, and one with another count
 * or salt does not. */
static void auth_scram_salted_reuse(void **state)
{
    (void)state;
    const char *first = "r=fyko+d2lbbFgONRv9qkxdawLsrvnonce,s=QSXCR+Q6sek8bf92,i=4096";
    struct buf right = {0}, reply = {0};
    struct pgwire_auth a = {.user = "postgres", .password = "pencil"};
    scram_final_with(&a, first, &right);
    assert_true(a.salted.valid);
    assert_int_equal(a.salted.iterations, 4096);
    assert_int_equal(a.salted.saltlen, 12);
    struct pgwire_scram_salted keep = a.salted;
    pgwire_auth_free(&a);
    assert_false(a.salted.valid); /* wiped */

    /* The wrong password with the kept key gives the right proof: the key was used. */
    struct pgwire_auth b = {.user = "postgres", .password = "not pencil", .salted = keep};
    scram_final_with(&b, first, &reply);
    assert_int_equal(reply.len, right.len);
    assert_memory_equal(reply.data, right.data, right.len);
    pgwire_auth_free(&b);

    /* Without it, the wrong password's proof differs. */
    struct pgwire_auth c = {.user = "postgres", .password = "not pencil"};
    scram_final_with(&c, first, &reply);
    assert_int_equal(reply.len, right.len);
    assert_memory_not_equal(reply.data, right.data, right.len);
    pgwire_auth_free(&c);

    /* Another count or salt: PBKDF2 again, and the key is replaced. */
    const char *others[] = {"r=fyko+d2lbbFgONRv9qkxdawLsrvnonce,s=QSXCR+Q6sek8bf92,i=4097",
                            "r=fyko+d2lbbFgONRv9qkxdawLsrvnonce,s=QSXCR+Q6sek8bf93,i=4096"};
    for (int i = 0; i < 2; i++) {
        struct pgwire_auth d = {.user = "postgres", .password = "pencil", .salted = keep};
        scram_final_with(&d, others[i], &reply);
        assert_true(d.salted.valid);
        assert_memory_not_equal(d.salted.key, keep.key, 32);
        struct pgwire_auth e = {.user = "postgres", .password = "pencil"};
        struct buf fresh = {0};
        scram_final_with(&e, others[i], &fresh);
        assert_memory_equal(d.salted.key, e.salted.key, 32);
        assert_int_equal(reply.len, fresh.len);
        assert_memory_equal(reply.data, fresh.data, fresh.len);
        pgwire_auth_free(&d);
        pgwire_auth_free(&e);
        buf_free(&fresh);
    }
    buf_free(&right);
    buf_free(&reply);
}

/* Our SCRAM client against our SCRAM server: returns the server's verdict. */
static enum pgwire_auth_result scram_pair(const char *client_pw, const struct pgwire_scram_secret *secret,
                                          char *err)
{
    struct pgwire_auth c = {.user = "u", .password = client_pw};
    struct pgwire_scram_server srv = {0};
    struct buf to_client = {0}, to_server = {0};
    assert_int_equal(pgwire_scram_server_begin(&to_client), 0);
    assert_int_equal(to_client.data[0], 'R');
    enum pgwire_auth_result r = PGWIRE_AUTH_CONTINUE;
    for (int round = 0; round < 3 && r == PGWIRE_AUTH_CONTINUE; round++) {
        buf_reset(&to_server);
        assert_int_equal(pgwire_auth_step(&c, 'R', to_client.data + 5, to_client.len - 5, &to_server, err, 256),
                         PGWIRE_AUTH_CONTINUE);
        assert_int_equal(to_server.data[0], 'p');
        buf_reset(&to_client);
        r = pgwire_scram_server_step(&srv, secret, 'p', to_server.data + 5, to_server.len - 5, &to_client, err, 256);
    }
    if (r == PGWIRE_AUTH_OK) { /* the client checks the server's signature, then AuthenticationOk */
        char cerr[256];
        struct buf none = {0};
        assert_int_equal(pgwire_auth_step(&c, 'R', to_client.data + 5, to_client.len - 5, &none, cerr, sizeof cerr),
                         PGWIRE_AUTH_CONTINUE);
        assert_int_equal(pgwire_auth_step(&c, 'R', (const uint8_t *)"\0\0\0\0", 4, &none, cerr, sizeof cerr),
                         PGWIRE_AUTH_OK);
        buf_free(&none);
    }
    pgwire_auth_free(&c);
    pgwire_scram_server_free(&srv);
    buf_free(&to_client);
    buf_free(&to_server);
    return r;
}

static void scram_server_side(void **state)
{
    (void)state;
    char err[256];
    struct pgwire_scram_secret secret;
    assert_int_equal(pgwire_scram_secret_make("run-password", 4096, &secret), 0);
    assert_int_equal(scram_pair("run-password", &secret, err), PGWIRE_AUTH_OK);
    assert_int_equal(scram_pair("run-passwore", &secret, err), PGWIRE_AUTH_FAILED);
    assert_string_equal(err, "wrong password");
    assert_int_equal(scram_pair("", &secret, err), PGWIRE_AUTH_FAILED);

    /* Malformed or hostile client messages: a clear failure, never OK. */
    static const struct { const char *body; size_t len; const char *why; } bad_first[] = {
        {"secret\0", 7, "malformed SASLInitialResponse"},                        /* a cleartext password */
        {"SCRAM-SHA-256\0\0\0\0\x09n,,n=", 23, "malformed SASLInitialResponse"}, /* length past the end */
        {"SCRAM-SHA-256\0\0\0\0\x0dp=x,,n=,r=abc", 31, "channel binding"},
        {"SCRAM-SHA-256\0\0\0\0\x08n,,n=,r=", 26, "malformed SCRAM client-first"}, /* empty nonce */
        {"OTHER\0\0\0\0\x0dn,,n=,r=abcdef", 23, "does not offer"},
        {"SCRAM-SHA-256\0\xff\xff\xff\xff", 18, "malformed SASLInitialResponse"},
    };
    for (size_t i = 0; i < sizeof bad_first / sizeof bad_first[0]; i++) {
        struct pgwire_scram_server srv = {0};
        struct buf reply = {0};
        assert_int_equal(pgwire_scram_server_step(&srv, &secret, 'p', (const uint8_t *)bad_first[i].body,
                                                  bad_first[i].len, &reply, err, sizeof err),
                         PGWIRE_AUTH_FAILED);
        if (!strstr(err, bad_first[i].why))
            fail_msg("case %zu: %s", i, err);
        pgwire_scram_server_free(&srv);
        buf_free(&reply);
    }
    /* A good first message, then a final message with the wrong nonce or binding. */
    static const char *bad_final[] = {"c=biws,r=other,p=AAAA", "c=eSws,r=%s,p=AAAA", "c=biws,r=%s",
                                      "c=biws,r=%s,p=short"};
    for (size_t i = 0; i < sizeof bad_final / sizeof bad_final[0]; i++) {
        struct pgwire_scram_server srv = {0};
        struct buf reply = {0};
        const char first[] = "SCRAM-SHA-256\0\0\0\0\x0fn,,n=,r=cnonce1";
        assert_int_equal(pgwire_scram_server_step(&srv, &secret, 'p', (const uint8_t *)first, sizeof first - 1,
                                                  &reply, err, sizeof err),
                         PGWIRE_AUTH_CONTINUE);
        char msg[256];
        snprintf(msg, sizeof msg, bad_final[i], buf_cstr(&srv.nonce));
        assert_int_equal(pgwire_scram_server_step(&srv, &secret, 'p', (const uint8_t *)msg, strlen(msg), &reply,
                                                  err, sizeof err),
                         PGWIRE_AUTH_FAILED);
        assert_int_equal(pgwire_scram_server_step(&srv, &secret, 'p', (const uint8_t *)msg, strlen(msg), &reply,
                                                  err, sizeof err),
                         PGWIRE_AUTH_FAILED); /* finished stays finished */
        pgwire_scram_server_free(&srv);
        buf_free(&reply);
    }
    struct pgwire_scram_server srv = {0};
    struct buf reply = {0};
    assert_int_equal(pgwire_scram_server_step(&srv, &secret, 'Q', (const uint8_t *)"x", 1, &reply, err, sizeof err),
                     PGWIRE_AUTH_FAILED);
    buf_free(&reply);
}

static void auth_other_methods_and_failures(void **state)
{
    (void)state;
    struct buf reply = {0};
    char err[256];
    struct pgwire_auth a = {.user = "postgres", .password = "secret"};
    assert_int_equal(step(&a, 5, "\1\2\3\4", 4, &reply, err), PGWIRE_AUTH_CONTINUE);
    assert_string_equal((char *)reply.data + 5, "md5bb41a296aab6baccb36ff243a562abff");
    assert_int_equal(step(&a, 0, "", 0, &reply, err), PGWIRE_AUTH_OK);

    struct pgwire_auth c = {.user = "u", .password = "clear"};
    assert_int_equal(step(&c, 3, "", 0, &reply, err), PGWIRE_AUTH_CONTINUE);
    assert_string_equal((char *)reply.data + 5, "clear");

    struct pgwire_auth nopw = {.user = "u"};
    assert_int_equal(step(&nopw, 10, "SCRAM-SHA-256\0\0", 15, &reply, err), PGWIRE_AUTH_FAILED);
    assert_non_null(strstr(err, "none was given"));
    assert_true(nopw.needed_password); /* the caller adds how to give one */
    assert_null(strstr(err, "--upstream-password-file"));

    struct pgwire_auth early = {.user = "u", .password = "p"};
    assert_int_equal(step(&early, 10, "SCRAM-SHA-256\0\0", 15, &reply, err), PGWIRE_AUTH_CONTINUE);
    assert_int_equal(step(&early, 0, "", 0, &reply, err), PGWIRE_AUTH_FAILED); /* no mutual auth */
    pgwire_auth_free(&early);

    struct pgwire_auth gss = {.user = "u", .password = "p"};
    assert_int_equal(step(&gss, 7, "", 0, &reply, err), PGWIRE_AUTH_FAILED);
    struct pgwire_auth mech = {.user = "u", .password = "p"};
    assert_int_equal(step(&mech, 10, "OTHER\0\0", 7, &reply, err), PGWIRE_AUTH_FAILED);

    struct pgwire_auth e = {.user = "u", .password = "p"};
    const uint8_t ebody[] = "SFATAL\0C28P01\0Mpassword authentication failed\0";
    assert_int_equal(pgwire_auth_step(&e, 'E', ebody, sizeof ebody, &reply, err, sizeof err), PGWIRE_AUTH_FAILED);
    assert_non_null(strstr(err, "password authentication failed"));
    assert_non_null(strstr(err, "28P01"));
    struct pgwire_auth odd = {.user = "u", .password = "p"};
    assert_int_equal(pgwire_auth_step(&odd, 'D', ebody, 3, &reply, err, sizeof err), PGWIRE_AUTH_FAILED);
    struct pgwire_auth shortr = {.user = "u", .password = "p"};
    assert_int_equal(pgwire_auth_step(&shortr, 'R', (const uint8_t *)"\0\0", 2, &reply, err, sizeof err),
                     PGWIRE_AUTH_FAILED);
    buf_free(&reply);
}

/* Binary parameters of simple types read as PostgreSQL prints them; others,
 * and values whose length does not fit the type, are left to the caller. */
static void binary_parameters_as_text(void **state)
{
    (void)state;
    static const struct {
        uint32_t oid;
        const char *bytes;
        size_t len;
        const char *want; /* NULL: refused */
    } cases[] = {
        {16, "\1", 1, "t"}, {16, "\0", 1, "f"}, {21, "\0\x58", 2, "88"}, {21, "\xff\xfe", 2, "-2"},
        {23, "\x80\0\0\0", 4, "-2147483648"}, {20, "\x7f\xff\xff\xff\xff\xff\xff\xff", 8, "9223372036854775807"},
        {26, "\xff\xff\xff\xff", 4, "4294967295"}, {701, "\x3f\xb9\x99\x99\x99\x99\x99\x9a", 8, "0.1"},
        {700, "\x3d\xcc\xcc\xcd", 4, "0.1"}, {701, "\x7f\xf0\0\0\0\0\0\0", 8, "Infinity"},
        {701, "\x40\x59\0\0\0\0\0\0", 8, "100"}, {701, "\x40\x5e\0\0\0\0\0\0", 8, "120"},
        {701, "\x43\x0c\x6b\xf5\x26\x34\0\0", 8, "1e+15"}, {701, "\x3e\xe4\xf8\xb5\x88\xe3\x68\xf1", 8, "1e-05"},
        {700, "\x4b\x80\0\0", 4, "1.6777216e+07"}, {701, "\0\0\0\0\0\0\0\0", 8, "0"},
        {701, "\xc0\x09\x21\xfb\x54\x44\x2d\x18", 8, "-3.141592653589793"},
        {701, "\x7f\xf8\0\0\0\0\0\0", 8, "NaN"}, {25, "caf\xc3\xa9", 5, "caf\xc3\xa9"},
        {3802, "\1{\"a\": 1}", 9, "{\"a\": 1}"},
        {2950, "\x12\x34\x56\x78\x9a\xbc\xde\xf0\x12\x34\x56\x78\x9a\xbc\xde\xf0", 16,
         "12345678-9abc-def0-1234-56789abcdef0"},
        {1082, "\0\0\0\0", 4, "2000-01-01"}, {1082, "\xff\xff\xff\xff", 4, "1999-12-31"},
        {1114, "\0\0\0\0\0\0\0\0", 8, "2000-01-01 00:00:00"},
        {1184, "\0\0\0\0\0\x0f\x42\x41", 8, "2000-01-01 00:00:01.000001+00"},
        {1114, "\0\0\0\0\0\x07\xa1\x20", 8, "2000-01-01 00:00:00.5"},
        {1114, "\x7f\xff\xff\xff\xff\xff\xff\xff", 8, "infinity"},
        /* refused: wrong length, not UTF-8, a NUL, an unknown jsonb version, a type not decoded */
        {23, "\0\0\0", 3, NULL}, {25, "\xc3", 1, NULL}, {25, "a\0b", 3, NULL}, {25, "\xed\xa0\x80", 3, NULL},
        {3802, "\2{}", 3, NULL}, {1700, "\0\1\0\0\0\0\0\0\0\1", 10, NULL}, {17, "ab", 2, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct buf b = {0};
        buf_append_str(&b, "x");
        int rc = pgwire_binary_to_text(cases[i].oid, (const uint8_t *)cases[i].bytes, cases[i].len, &b);
        if (!cases[i].want) {
            assert_int_equal(rc, -1);
            assert_int_equal(b.len, 1); /* untouched */
        } else {
            assert_int_equal(rc, 0);
            assert_string_equal(buf_cstr(&b) + 1, cases[i].want);
        }
        buf_free(&b);
    }
}

/* A self-signed certificate signed with md (EC P-256 key). */
static X509 *cert_signed_with(const EVP_MD *md)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(key);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"t", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, key);
    assert_true(X509_sign(x, key, md) > 0);
    EVP_PKEY_free(key);
    return x;
}

/* tls-server-end-point (RFC 5929 4.1): the certificate's hash with its
 * signature's hash algorithm, SHA-256 in place of MD5 and SHA-1. */
static void channel_binding_data(void **state)
{
    (void)state;
    static const struct { const char *sign, *hash; size_t len; } cases[] = {
        {"SHA256", "SHA256", 32}, {"SHA384", "SHA384", 48}, {"SHA512", "SHA512", 64}, {"SHA1", "SHA256", 32},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        X509 *x = cert_signed_with(EVP_get_digestbyname(cases[i].sign));
        uint8_t got[PGWIRE_CB_DATA_MAX], want[EVP_MAX_MD_SIZE];
        size_t len = 0;
        unsigned int wlen = 0;
        char err[160];
        assert_int_equal(pgwire_tls_server_end_point(x, got, &len, err, sizeof err), 0);
        assert_true(X509_digest(x, EVP_get_digestbyname(cases[i].hash), want, &wlen));
        assert_int_equal(len, cases[i].len);
        assert_int_equal(wlen, cases[i].len);
        assert_memory_equal(got, want, len);
        X509_free(x);
    }
    uint8_t out[PGWIRE_CB_DATA_MAX];
    size_t len = 1;
    char err[160];
    assert_int_equal(pgwire_tls_server_end_point(NULL, out, &len, err, sizeof err), -1);
    assert_int_equal(len, 0);
}

/* The client-final message's c= for a GS2 header and binding data. */
static char *final_c(const struct buf *reply)
{
    static char c[256];
    const char *p = (const char *)reply->data + 5;
    size_t n = strcspn(p, ",");
    snprintf(c, sizeof c, "%.*s", (int)n, p);
    return c;
}

/* SCRAM-SHA-256-PLUS over TLS, "y,," and "n,,", and channel_binding=require. */
static void auth_channel_binding(void **state)
{
    (void)state;
    const char *server_first = "r=fyko+d2lbbFgONRv9qkxdawLsrvnonce,s=QSXCR+Q6sek8bf92,i=4096";
    const char plus_list[] = "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0";
    struct buf reply = {0}, final = {0};
    char err[256];
    uint8_t sig[32];

    /* Bound: mechanism PLUS, GS2 "p=tls-server-end-point,,", c= = base64(header + hash). */
    struct pgwire_auth a = {.user = "postgres", .password = "pencil", .tls = true, .cb_len = 32};
    for (int i = 0; i < 32; i++)
        a.cb_data[i] = (uint8_t)(0xa0 + i);
    snprintf(a.client_nonce, sizeof a.client_nonce, "fyko+d2lbbFgONRv9qkxdawL");
    assert_int_equal(step(&a, 10, plus_list, sizeof plus_list, &reply, err), PGWIRE_AUTH_CONTINUE);
    assert_string_equal((char *)reply.data + 5, "SCRAM-SHA-256-PLUS");
    const char *first = (char *)reply.data + 5 + 19;
    assert_int_equal(pgwire_get_u32((const uint8_t *)first), 24 + 29);
    assert_memory_equal(first + 4, "p=tls-server-end-point,,n=,r=fyko+d2lbbFgONRv9qkxdawL", 24 + 29);
    assert_int_equal(step(&a, 11, server_first, strlen(server_first), &reply, err), PGWIRE_AUTH_CONTINUE);
    uint8_t cbind[24 + 32];
    char want[128] = "c=";
    memcpy(cbind, "p=tls-server-end-point,,", 24);
    memcpy(cbind + 24, a.cb_data, 32);
    EVP_EncodeBlock((uint8_t *)want + 2, cbind, sizeof cbind);
    assert_string_equal(final_c(&reply), want);
    /* The proof is over the same c=: computed independently it matches. */
    assert_int_equal(pgwire_scram_client_final_cb("pencil", "n=,r=fyko+d2lbbFgONRv9qkxdawL", server_first,
                                                  "fyko+d2lbbFgONRv9qkxdawL", "p=tls-server-end-point,,", a.cb_data,
                                                  32, &final, sig, err, sizeof err), 0);
    assert_int_equal(reply.len - 5, final.len);
    assert_memory_equal(reply.data + 5, final.data, final.len);
    char v[64] = "v=";
    EVP_EncodeBlock((uint8_t *)v + 2, sig, 32);
    assert_int_equal(step(&a, 12, v, strlen(v), &reply, err), PGWIRE_AUTH_CONTINUE);
    assert_int_equal(step(&a, 0, "", 0, &reply, err), PGWIRE_AUTH_OK);
    pgwire_auth_free(&a);
    buf_reset(&final);

    /* TLS, the server offers no PLUS: "y,," (c=eSws); without TLS or with
     * channel_binding=disable: "n,," (c=biws) and SCRAM-SHA-256. */
    static const struct { bool tls; enum pgwire_channel_binding cb; const char *list; size_t len; const char *gs2, *c; } plain[] = {
        {true, PGWIRE_CB_PREFER, "SCRAM-SHA-256\0", 15, "y,,", "c=eSws"},
        {false, PGWIRE_CB_PREFER, "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0", 34, "n,,", "c=biws"},
        {true, PGWIRE_CB_DISABLE, "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0", 34, "n,,", "c=biws"},
        {true, PGWIRE_CB_DISABLE, "SCRAM-SHA-256\0", 15, "n,,", "c=biws"},
    };
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++) {
        struct pgwire_auth b = {.user = "u", .password = "pencil", .tls = plain[i].tls, .channel_binding = plain[i].cb, .cb_len = 32};
        snprintf(b.client_nonce, sizeof b.client_nonce, "fyko+d2lbbFgONRv9qkxdawL");
        assert_int_equal(step(&b, 10, plain[i].list, plain[i].len, &reply, err), PGWIRE_AUTH_CONTINUE);
        assert_string_equal((char *)reply.data + 5, "SCRAM-SHA-256");
        assert_memory_equal(reply.data + 5 + 14 + 4, plain[i].gs2, 3);
        assert_int_equal(step(&b, 11, server_first, strlen(server_first), &reply, err), PGWIRE_AUTH_CONTINUE);
        assert_string_equal(final_c(&reply), plain[i].c);
        pgwire_auth_free(&b);
    }

    /* PLUS chosen but the certificate's hash is missing: a clear failure. */
    struct pgwire_auth nohash = {.user = "u", .password = "p", .tls = true};
    snprintf(nohash.cb_error, sizeof nohash.cb_error, "no hash for it");
    assert_int_equal(step(&nohash, 10, plus_list, sizeof plus_list, &reply, err), PGWIRE_AUTH_FAILED);
    assert_non_null(strstr(err, "no hash for it"));

    /* require: no PLUS, no TLS, md5, cleartext, trust: all refused, no password sent. */
    struct pgwire_auth r1 = {.user = "u", .password = "p", .tls = true, .channel_binding = PGWIRE_CB_REQUIRE, .cb_len = 32};
    assert_int_equal(step(&r1, 10, "SCRAM-SHA-256\0", 15, &reply, err), PGWIRE_AUTH_FAILED);
    assert_non_null(strstr(err, "does not offer SCRAM-SHA-256-PLUS"));
    assert_int_equal(reply.len, 0);
    struct pgwire_auth r2 = {.user = "u", .password = "p", .channel_binding = PGWIRE_CB_REQUIRE};
    assert_int_equal(step(&r2, 10, plus_list, sizeof plus_list, &reply, err), PGWIRE_AUTH_FAILED);
    assert_non_null(strstr(err, "not TLS"));
    struct pgwire_auth r3 = {.user = "u", .password = "p", .tls = true, .channel_binding = PGWIRE_CB_REQUIRE, .cb_len = 32};
    assert_int_equal(step(&r3, 5, "\1\2\3\4", 4, &reply, err), PGWIRE_AUTH_FAILED);
    assert_int_equal(reply.len, 0);
    struct pgwire_auth r4 = {.user = "u", .password = "p", .tls = true, .channel_binding = PGWIRE_CB_REQUIRE, .cb_len = 32};
    assert_int_equal(step(&r4, 3, "", 0, &reply, err), PGWIRE_AUTH_FAILED);
    assert_int_equal(reply.len, 0);
    struct pgwire_auth r5 = {.user = "u", .password = "p", .tls = true, .channel_binding = PGWIRE_CB_REQUIRE, .cb_len = 32};
    assert_int_equal(step(&r5, 0, "", 0, &reply, err), PGWIRE_AUTH_FAILED);
    assert_non_null(strstr(err, "without channel binding"));
    /* A server that offers only PLUS, without TLS. */
    struct pgwire_auth onlyplus = {.user = "u", .password = "p"};
    assert_int_equal(step(&onlyplus, 10, "SCRAM-SHA-256-PLUS\0", 20, &reply, err), PGWIRE_AUTH_FAILED);
    assert_non_null(strstr(err, "needs TLS"));
    buf_free(&final);
    buf_free(&reply);
}

static void sqlstates(void **state)
{
    (void)state;
    assert_true(pgwire_sqlstate_valid("28P01"));
    assert_true(pgwire_sqlstate_valid("08006"));
    assert_false(pgwire_sqlstate_valid("XX\n00"));
    assert_false(pgwire_sqlstate_valid("28p01"));
    assert_false(pgwire_sqlstate_valid("2800"));
    assert_false(pgwire_sqlstate_valid("280000"));
    assert_false(pgwire_sqlstate_valid(""));
    /* The error text of an authentication failure leaves a bad SQLSTATE out. */
    struct pgwire_auth e = {.user = "u", .password = "p"};
    struct buf reply = {0};
    char err[256];
    const uint8_t ebody[] = "SFATAL\0CXX\n00\0Mnope\0";
    assert_int_equal(pgwire_auth_step(&e, 'E', ebody, sizeof ebody, &reply, err, sizeof err), PGWIRE_AUTH_FAILED);
    assert_string_equal(err, "upstream refused the connection: nope");
    buf_free(&reply);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(header_checks),
        cmocka_unit_test(reader_is_bounded),
        cmocka_unit_test(builders_round_trip),
        cmocka_unit_test(startup_packets),
        cmocka_unit_test(extended_bodies),
        cmocka_unit_test(conninfo),
        cmocka_unit_test(scram_rfc7677_vector),
        cmocka_unit_test(auth_scram_exchange),
        cmocka_unit_test(auth_scram_salted_reuse),
        cmocka_unit_test(auth_other_methods_and_failures),
        cmocka_unit_test(scram_server_side),
        cmocka_unit_test(binary_parameters_as_text),
        cmocka_unit_test(channel_binding_data),
        cmocka_unit_test(auth_channel_binding),
        cmocka_unit_test(sqlstates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
