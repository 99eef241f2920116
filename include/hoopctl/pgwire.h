/* pgwire.h — the PostgreSQL v3 wire protocol as pure functions: message
 * framing checks, a bounds-checked reader, message builders, startup packets,
 * libpq-style conninfo, and the client side of upstream authentication
 * (SCRAM-SHA-256, md5, cleartext). No I/O here; the gateway does the I/O. */
#ifndef HOOPCTL_PGWIRE_H
#define HOOPCTL_PGWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hoopctl/util.h"

#define PGWIRE_PROTOCOL_3_0 196608u       /* 3 << 16 */
#define PGWIRE_SSL_REQUEST 80877103u
#define PGWIRE_GSSENC_REQUEST 80877104u
#define PGWIRE_CANCEL_REQUEST 80877102u
#define PGWIRE_STARTUP_MAX 10000u         /* as PostgreSQL's MAX_STARTUP_PACKET_LENGTH */
#define PGWIRE_STARTUP_MAX_PARAMS 64
#define PGWIRE_DEFAULT_MAX_MESSAGE (1u << 30) /* 1 GiB, PostgreSQL's MaxAllocSize */
#define PGWIRE_HEADER_LEN 5               /* type byte + int32 length */

/* ---- reading ------------------------------------------------------------ */

/* A cursor over one message body. Every read is bounds-checked; a read past
 * the end sets bad and returns zero/NULL, so callers check bad once. */
struct pgwire_reader {
    const uint8_t *data;
    size_t len, pos;
    bool bad;
};

void pgwire_reader_init(struct pgwire_reader *r, const void *data, size_t len);
uint8_t pgwire_read_u8(struct pgwire_reader *r);
int16_t pgwire_read_i16(struct pgwire_reader *r);
int32_t pgwire_read_i32(struct pgwire_reader *r);
/* A NUL-terminated string inside the body (not copied); NULL when missing. */
const char *pgwire_read_cstr(struct pgwire_reader *r);
/* len bytes (not copied); NULL when fewer remain. */
const uint8_t *pgwire_read_bytes(struct pgwire_reader *r, size_t len);
bool pgwire_reader_done(const struct pgwire_reader *r); /* consumed exactly, not bad */

uint32_t pgwire_get_u32(const uint8_t *p);
void pgwire_put_u32(uint8_t *p, uint32_t v);

/* Check a 5-byte message header: length >= 4 and the whole message within
 * max_message bytes. Returns the body length, or -1 with a message. */
long pgwire_check_header(const uint8_t header[PGWIRE_HEADER_LEN], size_t max_message,
                         char *err, size_t errlen);

/* ---- building ----------------------------------------------------------- */

/* Start a message of the given type in out (reserves the length); finish
 * fills the length in. Returns 0 or -1 when memory runs out. */
int pgwire_msg_begin(struct buf *out, uint8_t type, size_t *start);
int pgwire_msg_finish(struct buf *out, size_t start);
int pgwire_put_i16(struct buf *out, int16_t v);
int pgwire_put_i32(struct buf *out, int32_t v);
int pgwire_put_cstr(struct buf *out, const char *s);

/* ErrorResponse ('E') or NoticeResponse ('N') with severity, SQLSTATE and message. */
int pgwire_build_error(struct buf *out, bool notice, const char *severity, const char *sqlstate,
                       const char *message);
/* The same with a DETAIL and a HINT (either NULL or "" for none). */
int pgwire_build_error_detail(struct buf *out, bool notice, const char *severity, const char *sqlstate,
                              const char *message, const char *detail, const char *hint);
int pgwire_build_ready(struct buf *out, char status);
int pgwire_build_auth_ok(struct buf *out);
int pgwire_build_backend_key(struct buf *out, uint32_t pid, uint32_t secret);
/* NegotiateProtocolVersion: the newest version we speak, whole as
 * PostgreSQL sends it (PGWIRE_PROTOCOL_3_0, not its minor), and the _pq_
 * options we do not know. */
int pgwire_build_negotiate(struct buf *out, uint32_t version, const char *const *options, int n);

/* Field `code` ('C' SQLSTATE, 'M' message, 'S' severity...) of an
 * ErrorResponse/NoticeResponse body, copied into out; false when absent. */
bool pgwire_error_field(const uint8_t *body, size_t len, char code, char *out, size_t outlen);
/* A SQLSTATE as PostgreSQL writes one: five characters of [0-9A-Z]. */
bool pgwire_sqlstate_valid(const char *code);

/* ---- startup ------------------------------------------------------------ */

struct pgwire_param {
    const char *name, *value;
};

/* A parsed startup-phase packet (the bytes after the int32 length). Strings
 * point into `storage`, a private copy. */
struct pgwire_startup {
    uint32_t code;                /* protocol version or a request code */
    uint32_t cancel_pid, cancel_secret;
    int nparams;
    struct pgwire_param params[PGWIRE_STARTUP_MAX_PARAMS];
    char storage[PGWIRE_STARTUP_MAX];
};

/* Parse a startup packet body (length already checked to be 4..MAX-4 by the
 * caller via pgwire_startup_length). Returns 0 or -1 with a message. */
int pgwire_parse_startup(const uint8_t *body, size_t len, struct pgwire_startup *out,
                         char *err, size_t errlen);
/* Check the int32 length prefix of a startup packet: 8..PGWIRE_STARTUP_MAX. */
long pgwire_startup_length(const uint8_t prefix[4], char *err, size_t errlen);
const char *pgwire_startup_get(const struct pgwire_startup *s, const char *name);

/* Whether a client_encoding name (any spelling PostgreSQL accepts) is one
 * whose multibyte characters may hold ASCII bytes such as a quote or a
 * backslash (SJIS, BIG5, GBK, UHC, GB18030, JOHAB, SHIFT_JIS_2004): text
 * in it means something else to the server than to a parser that reads it
 * as UTF-8, so a statement can hide in what looks like a literal. */
bool pgwire_encoding_hides_ascii(const char *name);

/* ---- extended-protocol message bodies ------------------------------------ */

struct pgwire_parse_msg {
    const char *statement, *query;
    int ntypes;                 /* parameter types the client gave (0: unspecified) */
    const uint8_t *types;       /* ntypes big-endian OIDs, in body */
};
int pgwire_parse_parse(const uint8_t *body, size_t len, struct pgwire_parse_msg *out);

/* A parameter sent in binary format, as PostgreSQL would print it: for the
 * types whose binary form is fixed and simple (bool, int2/4/8, oid, float4/8,
 * text-like types, json, jsonb, uuid, date, timestamp[tz]), appended to out
 * as text; returns 0, or -1 (out untouched) for another type, a length that
 * does not fit the type, or text that is not valid UTF-8. */
struct buf;
int pgwire_binary_to_text(uint32_t type_oid, const uint8_t *v, size_t len, struct buf *out);

#define PGWIRE_MAX_PARAMS 65535
/* A Bind body; arrays are allocated (pgwire_bind_free releases them). */
struct pgwire_bind {
    const char *portal, *statement;
    int nformats;
    int16_t *formats;
    int nparams;
    const uint8_t **values;  /* NULL for SQL NULL */
    int32_t *lengths;        /* -1 for SQL NULL */
    int nresult_formats;
};
int pgwire_parse_bind(const uint8_t *body, size_t len, struct pgwire_bind *out);
void pgwire_bind_free(struct pgwire_bind *b);

/* Execute, Describe, Close: a kind byte (Describe/Close) and a name. */
int pgwire_parse_named(const uint8_t *body, size_t len, bool has_kind, char *kind,
                       const char **name);

/* RowDescription columns. names point into the body. */
struct pgwire_column {
    const char *name;
    uint32_t table_oid;
    int16_t attnum;
    uint32_t type_oid;
    int16_t type_len;
    int32_t typmod;
    int16_t format;
};
/* Returns the column count (columns allocated into *out, free() them), or -1. */
int pgwire_parse_row_description(const uint8_t *body, size_t len, struct pgwire_column **out);

/* DataRow: value i is values[i]/lengths[i] (-1 for NULL). Arrays allocated. */
int pgwire_parse_data_row(const uint8_t *body, size_t len, const uint8_t ***values,
                          int32_t **lengths);

/* ---- upstream connection string ----------------------------------------- */

enum pgwire_sslmode {
    PGWIRE_SSL_DISABLE = 0,
    PGWIRE_SSL_PREFER,
    PGWIRE_SSL_REQUIRE,
    PGWIRE_SSL_VERIFY_CA,
    PGWIRE_SSL_VERIFY_FULL,
};

/* SCRAM channel binding (tls-server-end-point), as libpq's channel_binding:
 * prefer (the default) binds when TLS is up and the server offers
 * SCRAM-SHA-256-PLUS; require refuses any other authentication; disable
 * never binds. */
enum pgwire_channel_binding {
    PGWIRE_CB_PREFER = 0,
    PGWIRE_CB_DISABLE,
    PGWIRE_CB_REQUIRE,
};
const char *pgwire_channel_binding_name(enum pgwire_channel_binding cb);

struct pgwire_conninfo {
    char host[256];        /* name, address, or a Unix socket directory (starts with '/') */
    char port[16];
    char dbname[128];
    char user[128];
    char sslrootcert[1024];
    bool sslrootcert_system; /* verify-ca/full without one of its own: the system trust store's file */
    enum pgwire_sslmode sslmode;
    enum pgwire_channel_binding channel_binding;
    int connect_timeout;   /* seconds */
};

/* Parse "host=H port=P dbname=D user=U sslmode=M sslrootcert=F
 * channel_binding=B connect_timeout=S" (values may be single-quoted, with
 * backslash escapes). A password key is refused: passwords never travel on the command
 * line. verify-ca and verify-full without sslrootcert (or with
 * sslrootcert=system) check against the system trust store: sslrootcert is set
 * to OpenSSL's default CA file (SSL_CERT_FILE when set) and sslrootcert_system
 * to true. prefer and require with an sslrootcert verify the certificate's
 * chain against it, as verify-ca does (libpq's rule). channel_binding=require
 * with sslmode=disable or a Unix socket host is refused: no TLS, no binding. */
int pgwire_conninfo_parse(const char *s, struct pgwire_conninfo *out, char *err, size_t errlen);
const char *pgwire_sslmode_name(enum pgwire_sslmode m);

/* ---- upstream authentication (client side) ------------------------------ */

#define PGWIRE_SCRAM_NONCE_LEN 24

enum pgwire_auth_result {
    PGWIRE_AUTH_CONTINUE = 0, /* send `reply` (may be empty) and wait for the next message */
    PGWIRE_AUTH_OK,           /* AuthenticationOk received */
    PGWIRE_AUTH_FAILED,       /* err says why (server error or our refusal) */
};

#define PGWIRE_CB_DATA_MAX 64 /* EVP_MAX_MD_SIZE */

/* The SaltedPassword (RFC 5802) of a SCRAM exchange: PBKDF2 of the password
 * with the server's salt and iteration count. That costs about a millisecond
 * of CPU at PostgreSQL's default 4096 iterations and up to a second at the
 * 1,000,000 accepted, and a server answers one role with the same salt and
 * count every time, so a caller that keeps it between exchanges with the same
 * password pays it once. Secret: password-equivalent for that server. */
struct pgwire_scram_salted {
    bool valid;
    int iterations;
    int saltlen;
    uint8_t salt[256];
    uint8_t key[32];
};

/* The client side of one authentication exchange. Zero-initialise, set
 * user/password (password may be NULL: then only trust works), and over TLS
 * tls, channel_binding and the tls-server-end-point data (see
 * pgwire_tls_server_end_point; cb_len 0 with cb_error when it could not be
 * computed). */
struct pgwire_auth {
    const char *user, *password;
    enum pgwire_channel_binding channel_binding;
    bool tls;                  /* the connection to the server is TLS */
    uint8_t cb_data[PGWIRE_CB_DATA_MAX];
    size_t cb_len;
    char cb_error[160];
    bool needed_password;      /* set when it failed because the server wants a password and none was given */
    int state;                 /* internal */
    int gs2;                   /* internal: 'n', 'y' or 'p' (bound) */
    char client_nonce[64];     /* base64 of random bytes; tests may preset */
    struct buf client_first_bare, server_first;
    uint8_t server_signature[32];
    /* In: an earlier exchange's salted password with the same password (or
     * valid false); SCRAM reuses it when the server's salt and count match.
     * Out, after PGWIRE_AUTH_OK of a SCRAM exchange: this exchange's. Wiped
     * by pgwire_auth_free. */
    struct pgwire_scram_salted salted;
};

/* tls-server-end-point channel binding data (RFC 5929) of the server's
 * certificate: its hash with the certificate's signature hash algorithm,
 * SHA-256 when that is MD5 or SHA-1. cert is an X509 *. Returns 0 with the
 * hash in out (*len bytes), or -1 with a message. */
struct x509_st;
int pgwire_tls_server_end_point(const struct x509_st *cert, uint8_t out[PGWIRE_CB_DATA_MAX], size_t *len,
                                char *err, size_t errlen);

/* Feed one backend message received during authentication (type and body).
 * 'R' messages advance the exchange; 'E' fails with the server's message;
 * other types are a protocol error. Fills reply with the frontend message(s)
 * to send. */
enum pgwire_auth_result pgwire_auth_step(struct pgwire_auth *a, uint8_t type, const uint8_t *body,
                                         size_t len, struct buf *reply, char *err, size_t errlen);
/* Wipe and free the exchange's memory. */
void pgwire_auth_free(struct pgwire_auth *a);

/* Building blocks, exposed for tests: md5 password ("md5" + 32 hex + NUL). */
void pgwire_md5_password(const char *user, const char *password, const uint8_t salt[4],
                         char out[36]);
/* SCRAM client-final message for a server-first message; fills the expected
 * server signature. Returns 0 or -1 with a message. Without channel binding
 * (GS2 header "n,,"). */
int pgwire_scram_client_final(const char *password, const char *client_first_bare,
                              const char *server_first, const char *client_nonce,
                              struct buf *out, uint8_t server_signature[32], char *err,
                              size_t errlen);
/* The same with a GS2 header ("n,,", "y,," or "p=tls-server-end-point,,")
 * and channel binding data (cb_len 0 but for "p="): c= is their base64. */
int pgwire_scram_client_final_cb(const char *password, const char *client_first_bare,
                                 const char *server_first, const char *client_nonce,
                                 const char *gs2_header, const uint8_t *cb_data, size_t cb_len,
                                 struct buf *out, uint8_t server_signature[32], char *err,
                                 size_t errlen);

/* ---- client authentication (server side): SCRAM-SHA-256 ------------------ */

/* What the server keeps of a password (RFC 5802): never the password itself. */
struct pgwire_scram_secret {
    uint8_t salt[16];
    int iterations;
    uint8_t stored_key[32], server_key[32];
};
/* Derive a secret with a fresh random salt. Returns 0 or -1. */
int pgwire_scram_secret_make(const char *password, int iterations, struct pgwire_scram_secret *out);

/* One exchange with one client. Zero-initialise; free with pgwire_scram_server_free. */
struct pgwire_scram_server {
    int state;                 /* internal */
    bool gs2_y;
    struct buf client_first_bare, server_first, nonce;
};
/* AuthenticationSASL offering SCRAM-SHA-256 (send it after the StartupMessage). */
int pgwire_scram_server_begin(struct buf *out);
/* Feed one frontend message (type and body). CONTINUE: send reply (the
 * server-first message) and wait; OK: the proof verified, send reply
 * (AuthenticationSASLFinal) and go on; FAILED: err says why (a wrong password
 * is "wrong password"); answer with a FATAL 28P01. */
enum pgwire_auth_result pgwire_scram_server_step(struct pgwire_scram_server *s,
                                                 const struct pgwire_scram_secret *secret,
                                                 uint8_t type, const uint8_t *body, size_t len,
                                                 struct buf *reply, char *err, size_t errlen);
void pgwire_scram_server_free(struct pgwire_scram_server *s);

#endif
