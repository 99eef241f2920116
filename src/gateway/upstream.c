/* upstream.c — the gateway's connection to the upstream PostgreSQL: TCP or
 * Unix socket, SSLRequest and TLS per sslmode (OpenSSL on the socket, see
 * conn.c), the authentication exchange, and CancelRequests sent over fresh
 * connections. */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

/* What upstream may send between AuthenticationOk and ReadyForQuery
 * (ParameterStatus, BackendKeyData, notices): PostgreSQL sends a few
 * kilobytes. Past it the session fails, so that an upstream cannot have the
 * gateway queue without end for a client that does not read. */
#define UPSTREAM_STARTUP_MAX_BYTES (4u << 20)

/* The SQLSTATE of an upstream ErrorResponse body, or fallback when it has
 * none or one that is not five characters of [0-9A-Z]. */
static void upstream_sqlstate(const uint8_t *body, size_t len, char out[8], const char *fallback)
{
    if (!pgwire_error_field(body, len, 'C', out, 8) || !pgwire_sqlstate_valid(out))
        snprintf(out, 8, "%s", fallback);
}

int gw_upstream_tls_context(struct gateway *gw, SSL_CTX **out, char *err, size_t errlen)
{
    const struct pgwire_conninfo *ci = &gw->cfg.upstream;
    *out = NULL;
    if (ci->sslmode == PGWIRE_SSL_DISABLE)
        return 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot create a TLS context");
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* libpq's rule: verify-ca and verify-full always check the chain; prefer
     * and require do when given an sslrootcert (here one that cannot be read
     * is an error, where libpq would quietly not verify). */
    if (ci->sslmode >= PGWIRE_SSL_VERIFY_CA || ci->sslrootcert[0]) {
        if (SSL_CTX_load_verify_locations(ctx, ci->sslrootcert, NULL) != 1) {
            snprintf(err, errlen, "cannot read sslrootcert %s", ci->sslrootcert);
            SSL_CTX_free(ctx);
            return -1;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    *out = ctx;
    return 0;
}

/* The upstream address: a Unix socket path or the first resolved address. */
static int upstream_address(struct gateway *gw, struct sockaddr_storage *ss, socklen_t *len, char *err,
                            size_t errlen)
{
    const struct pgwire_conninfo *ci = &gw->cfg.upstream;
    memset(ss, 0, sizeof *ss);
    if (ci->host[0] == '/') {
        struct sockaddr_un *sun = (struct sockaddr_un *)ss;
        sun->sun_family = AF_UNIX;
        int n = snprintf(sun->sun_path, sizeof sun->sun_path, "%s/.s.PGSQL.%s", ci->host, ci->port);
        if (n < 0 || (size_t)n >= sizeof sun->sun_path) {
            snprintf(err, errlen, "upstream socket path %s/.s.PGSQL.%s is too long", ci->host, ci->port);
            return -1;
        }
        *len = sizeof *sun;
        return 0;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(ci->host, ci->port, &hints, &res);
    if (rc != 0 || !res || res->ai_addrlen > sizeof *ss) {
        snprintf(err, errlen, "cannot resolve upstream host %s: %s", ci->host, rc ? gai_strerror(rc) : "no address");
        if (res)
            freeaddrinfo(res);
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = (socklen_t)res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* Open a nonblocking connection to the upstream address. */
static struct gw_conn *upstream_connect(struct gw_session *s, char *err, size_t errlen)
{
    struct gateway *gw = s->gw;
    const struct pgwire_conninfo *ci = &gw->cfg.upstream;
    struct sockaddr_storage ss;
    socklen_t len;
    if (upstream_address(gw, &ss, &len, err, errlen) < 0)
        return NULL;
    struct gw_conn *c = gw_conn_connect(s->base, (struct sockaddr *)&ss, len);
    if (!c) {
        if (ci->host[0] == '/')
            snprintf(err, errlen, "cannot connect to upstream socket %s/.s.PGSQL.%s: %s", ci->host, ci->port,
                     strerror(errno));
        else
            snprintf(err, errlen, "cannot connect to upstream %s:%s: %s", ci->host, ci->port, strerror(errno));
    }
    return c;
}

static void upstream_send_startup(struct gw_session *s)
{
    struct gateway *gw = s->gw;
    struct buf m = {0};
    int rc = pgwire_put_i32(&m, 0) | pgwire_put_i32(&m, (int32_t)PGWIRE_PROTOCOL_3_0);
    rc |= pgwire_put_cstr(&m, "user") | pgwire_put_cstr(&m, gw->cfg.upstream.user);
    rc |= pgwire_put_cstr(&m, "database") | pgwire_put_cstr(&m, gw->cfg.upstream.dbname);
    for (int i = 0; s->startup && i < s->startup->nparams; i++) {
        const struct pgwire_param *p = &s->startup->params[i];
        if (strcmp(p->name, "user") == 0 || strcmp(p->name, "database") == 0 ||
            strncmp(p->name, "_pq_.", 5) == 0)
            continue;
        rc |= pgwire_put_cstr(&m, p->name) | pgwire_put_cstr(&m, p->value);
    }
    rc |= buf_append(&m, "", 1);
    if (rc) {
        buf_free(&m);
        gw_session_fail(s, "53200", "out of memory");
        return;
    }
    pgwire_put_u32(m.data, (uint32_t)m.len);
    free(s->startup);
    s->startup = NULL;
    s->phase = GW_UPSTREAM_AUTH;
    s->auth.user = gw->cfg.upstream.user;
    s->auth.password = gw->upstream_password;
    s->auth.channel_binding = gw->cfg.upstream.channel_binding;
    pthread_mutex_lock(&gw->lock);
    s->auth.salted = gw->scram_salted;
    pthread_mutex_unlock(&gw->lock);
    gw_conn_write(s->upstream, m.data, m.len);
    buf_free(&m);
}

static void upstream_fail_tls(struct gw_session *s)
{
    char msg[512];
    unsigned long e = gw_conn_tls_error(s->upstream);
    long verify = X509_V_OK;
    SSL *ssl = gw_conn_ssl(s->upstream);
    if (ssl)
        verify = SSL_get_verify_result(ssl);
    const char *hint = s->gw->cfg.system_roots_hint ? s->gw->cfg.system_roots_hint
                                                    : "give the connection sslrootcert=FILE for a private CA";
    if (verify != X509_V_OK)
        snprintf(msg, sizeof msg, "TLS handshake with upstream %s:%s failed: certificate verify failed: %s%s%s%s",
                 s->gw->cfg.upstream.host, s->gw->cfg.upstream.port, X509_verify_cert_error_string(verify),
                 s->gw->cfg.upstream.sslrootcert_system ? " (checked against the system trust store: " : "",
                 s->gw->cfg.upstream.sslrootcert_system ? hint : "", s->gw->cfg.upstream.sslrootcert_system ? ")" : "");
    else
        snprintf(msg, sizeof msg, "TLS handshake with upstream %s:%s failed: %s",
                 s->gw->cfg.upstream.host, s->gw->cfg.upstream.port,
                 e ? ERR_reason_error_string(e) : "connection closed");
    gw_session_fail(s, "08001", msg);
}

/* A client that asked for another database than the one this gateway
 * serves (psql pointed at the wrong port, a default dbname) is told which it
 * got, before its session starts: its database and user names are not used
 * upstream. pg_dump and pg_dumpall (their libpq default application_name)
 * would write the served database's contents under the name they asked
 * for (pg_dumpall: under every database's name, with the NOTICE shown by
 * none of them): their session is refused instead, as PostgreSQL refuses a
 * database that does not exist (FATAL, 3D000). False, with the refusal's
 * message, for those. */
static bool note_other_database(struct gw_session *s, char *refusal, size_t len)
{
    const char *want = s->client_database, *have = s->gw->cfg.upstream.dbname;
    if (!want[0] || strcmp(want, have) == 0)
        return true;
    const char *app = s->application_name;
    if (strcmp(app, "pg_dump") == 0 || strcmp(app, "pg_dumpall") == 0) {
        snprintf(refusal, len, "hoopctl: this gateway serves database \"%.120s\" only, not \"%.120s\"", have, want);
        return false;
    }
    char text[512];
    snprintf(text, sizeof text, "hoopctl: this gateway serves database \"%.120s\" as user \"%.120s\", not the"
             " \"%.120s\" the client asked for", have, s->gw->cfg.upstream.user, want);
    struct buf m = {0};
    if (pgwire_build_error(&m, true, "NOTICE", "00000", text) == 0)
        gw_conn_write(s->client, m.data, m.len);
    buf_free(&m);
    return true;
}

static void upstream_startup_read(struct gw_conn *c, void *arg);
static void upstream_startup_event(struct gw_conn *c, short what, void *arg);

static int upstream_begin_tls(struct gw_session *s)
{
    struct gateway *gw = s->gw;
    SSL *ssl = SSL_new(s->worker->upstream_tls);
    if (!ssl)
        return -1;
    const struct pgwire_conninfo *ci = &gw->cfg.upstream;
    if (ci->host[0] != '/') {
        struct in6_addr a6;
        struct in_addr a4;
        bool is_ip = inet_pton(AF_INET, ci->host, &a4) == 1 || inet_pton(AF_INET6, ci->host, &a6) == 1;
        if (!is_ip)
            SSL_set_tlsext_host_name(ssl, ci->host);
        if (ci->sslmode == PGWIRE_SSL_VERIFY_FULL) {
            X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
            if (is_ip)
                X509_VERIFY_PARAM_set1_ip_asc(param, ci->host);
            else
                SSL_set1_host(ssl, ci->host);
        }
    }
    s->phase = GW_UPSTREAM_TLS;
    return gw_conn_start_tls(s->upstream, ssl, false);
}

static void upstream_startup_event(struct gw_conn *c, short what, void *arg)
{
    (void)c;
    struct gw_session *s = arg;
    const struct pgwire_conninfo *ci = &s->gw->cfg.upstream;
    if (what & BEV_EVENT_CONNECTED) {
        if (s->phase == GW_UPSTREAM_TLS) {
            /* SCRAM binds to the certificate the server showed us: a relay
             * with a certificate of its own cannot pass our proof on. */
            SSL *ssl = gw_conn_ssl(s->upstream);
            X509 *peer = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
            s->auth.tls = true;
            if (pgwire_tls_server_end_point(peer, s->auth.cb_data, &s->auth.cb_len, s->auth.cb_error,
                                            sizeof s->auth.cb_error) < 0)
                s->auth.cb_len = 0;
            X509_free(peer);
            upstream_send_startup(s);
            return;
        }
        if (ci->sslmode == PGWIRE_SSL_DISABLE || ci->host[0] == '/') {
            upstream_send_startup(s);
        } else {
            uint8_t req[8];
            pgwire_put_u32(req, 8);
            pgwire_put_u32(req + 4, PGWIRE_SSL_REQUEST);
            s->phase = GW_UPSTREAM_SSL_ANSWER;
            gw_conn_write(s->upstream, req, 8);
        }
        return;
    }
    if (s->phase == GW_UPSTREAM_AUTH || s->phase == GW_UPSTREAM_STARTUP) {
        upstream_startup_read(s->upstream, s); /* an ErrorResponse may precede the close */
        if (s->phase == GW_CLOSING || s->phase == GW_RELAY)
            return;
    }
    if (s->phase == GW_UPSTREAM_TLS && (what & BEV_EVENT_ERROR)) {
        upstream_fail_tls(s);
        return;
    }
    char msg[512];
    if (s->phase == GW_UPSTREAM_CONNECTING)
        snprintf(msg, sizeof msg, "cannot connect to upstream PostgreSQL at %s:%s: %s", ci->host,
                 ci->port, evutil_socket_error_to_string(gw_conn_socket_error(s->upstream)));
    else
        snprintf(msg, sizeof msg, "upstream PostgreSQL at %s:%s closed the connection during startup",
                 ci->host, ci->port);
    gw_session_fail(s, "08006", msg);
}

static void upstream_startup_read(struct gw_conn *conn, void *arg)
{
    struct gw_session *s = arg;
    struct evbuffer *in = gw_conn_input(conn);
    const struct pgwire_conninfo *ci = &s->gw->cfg.upstream;
    if (s->phase == GW_UPSTREAM_SSL_ANSWER) {
        uint8_t answer;
        if (evbuffer_remove(in, &answer, 1) != 1)
            return;
        if (answer == 'S') {
            if (evbuffer_get_length(in) > 0) {
                gw_session_fail(s, "08P01", "upstream sent data before the TLS handshake");
                return;
            }
            if (upstream_begin_tls(s) < 0)
                gw_session_fail(s, "08001", "cannot start TLS with upstream");
            return;
        }
        if (answer == 'N' && ci->sslmode <= PGWIRE_SSL_PREFER) {
            upstream_send_startup(s);
            return;
        }
        char msg[256];
        snprintf(msg, sizeof msg, answer == 'N' ? "upstream PostgreSQL at %s:%s does not support TLS (sslmode %s)"
                                                : "upstream PostgreSQL at %s:%s answered the SSL request oddly (sslmode %s)",
                 ci->host, ci->port, pgwire_sslmode_name(ci->sslmode));
        gw_session_fail(s, "08001", msg);
        return;
    }
    /* Authentication and then the startup messages up to ReadyForQuery. */
    while (s->phase == GW_UPSTREAM_AUTH || s->phase == GW_UPSTREAM_STARTUP) {
        uint8_t hdr[5];
        char err[512];
        if (evbuffer_copyout(in, hdr, 5) < 5)
            return;
        long blen = pgwire_check_header(hdr, 64 * 1024, err, sizeof err);
        if (blen < 0) {
            gw_session_fail(s, "08P01", "protocol error from upstream during startup");
            return;
        }
        if (evbuffer_get_length(in) < (size_t)blen + 5)
            return;
        uint8_t *msg = evbuffer_pullup(in, blen + 5);
        uint8_t type = msg[0];
        const uint8_t *body = msg + 5;
        if (s->phase == GW_UPSTREAM_AUTH) {
            struct buf reply = {0};
            enum pgwire_auth_result r = pgwire_auth_step(&s->auth, type, body, (size_t)blen, &reply,
                                                         err, sizeof err);
            char sqlstate[8] = "28000";
            if (type == 'E')
                upstream_sqlstate(body, (size_t)blen, sqlstate, "08P01");
            evbuffer_drain(in, (size_t)blen + 5); /* body is invalid from here */
            if (reply.len)
                gw_conn_write(s->upstream, reply.data, reply.len);
            if (reply.data)
                util_secure_zero(reply.data, reply.cap);
            buf_free(&reply);
            if (r == PGWIRE_AUTH_FAILED) {
                if (s->auth.needed_password) {
                    size_t n = strlen(err);
                    snprintf(err + n, sizeof err - n, " (%s)",
                             s->gw->cfg.no_password_hint ? s->gw->cfg.no_password_hint
                                                         : "--upstream-password-file or HOOPCTL_UPSTREAM_PASSWORD");
                }
                gw_session_fail(s, sqlstate, err);
                return;
            }
            if (r == PGWIRE_AUTH_OK) {
                if (s->auth.salted.valid) { /* the next session skips PBKDF2 */
                    pthread_mutex_lock(&s->gw->lock);
                    s->gw->scram_salted = s->auth.salted;
                    pthread_mutex_unlock(&s->gw->lock);
                }
                pgwire_auth_free(&s->auth);
                s->phase = GW_UPSTREAM_STARTUP;
                struct buf ok = {0};
                pgwire_build_auth_ok(&ok);
                gw_conn_write(s->client, ok.data, ok.len);
                buf_free(&ok);
            }
            continue;
        }
        /* GW_UPSTREAM_STARTUP: ParameterStatus, BackendKeyData, notices, ReadyForQuery */
        if (type == 'K') {
            struct pgwire_reader r;
            pgwire_reader_init(&r, body, (size_t)blen);
            s->backend_pid = (uint32_t)pgwire_read_i32(&r);
            s->backend_secret = (uint32_t)pgwire_read_i32(&r);
            evbuffer_drain(in, (size_t)blen + 5);
            if (!pgwire_reader_done(&r)) {
                gw_session_fail(s, "08P01", "malformed BackendKeyData from upstream");
                return;
            }
            s->info.backend_pid = s->backend_pid;
            struct buf k = {0};
            pgwire_build_backend_key(&k, s->backend_pid, s->client_secret);
            gw_conn_write(s->client, k.data, k.len);
            buf_free(&k);
            continue;
        }
        if (type == 'E') {
            /* As PostgreSQL said it (message, detail, hint), so the client
             * sees what it would see directly; whose words they are goes
             * in the hint when upstream gives none. */
            char m[1024] = "", d[1024] = "", h[512] = "", c[8];
            pgwire_error_field(body, (size_t)blen, 'M', m, sizeof m);
            pgwire_error_field(body, (size_t)blen, 'D', d, sizeof d);
            if (!pgwire_error_field(body, (size_t)blen, 'H', h, sizeof h) || !h[0])
                snprintf(h, sizeof h, "the upstream server refused the session the gateway opened for you");
            upstream_sqlstate(body, (size_t)blen, c, "08P01");
            evbuffer_drain(in, (size_t)blen + 5);
            gw_session_fail_detail(s, c, m, d, h);
            return;
        }
        if (type != 'S' && type != 'N' && type != 'Z') {
            gw_session_fail(s, "08P01", "protocol error: unexpected message from upstream during startup");
            return;
        }
        s->startup_bytes += (size_t)blen + 5;
        if (s->startup_bytes > UPSTREAM_STARTUP_MAX_BYTES) {
            char m[512];
            snprintf(m, sizeof m, "upstream PostgreSQL at %s:%s sent more than %u MiB of startup messages "
                     "before ReadyForQuery", ci->host, ci->port, UPSTREAM_STARTUP_MAX_BYTES >> 20);
            gw_session_fail(s, "08P01", m);
            return;
        }
        /* The role's or database's own defaults can start the session with
         * settings the policy cannot read SQL under. */
        char why[256];
        if (type == 'S' && s->gw->cfg.hooks.statement &&
            gw_parameter_status_refusal(body, (size_t)blen, why, sizeof why)) {
            evbuffer_drain(in, (size_t)blen + 5);
            gw_session_fail(s, "0A000", why);
            return;
        }
        if (type == 'S' && s->gw->cfg.hooks.statement)
            gw_note_parameter_status(s, body, (size_t)blen);
        char refusal[320];
        if (type == 'Z' && !note_other_database(s, refusal, sizeof refusal)) {
            evbuffer_drain(in, (size_t)blen + 5);
            gw_session_fail_detail(s, "3D000", refusal,
                                   "The gateway serves one database whatever a client asks for: a dump would hold"
                                   " it under the name asked for.",
                                   "Dump the database the gateway serves, by its name (pg_dumpall: --globals-only"
                                   " with -l naming it).");
            return;
        }
        gw_conn_write(s->client, msg, (size_t)blen + 5);
        evbuffer_drain(in, (size_t)blen + 5);
        if (type == 'Z') {
            gw_session_upstream_ready(s);
            return;
        }
    }
}

int gw_upstream_start(struct gw_session *s, char *err, size_t errlen)
{
    s->upstream = upstream_connect(s, err, errlen);
    if (!s->upstream)
        return -1;
    s->phase = GW_UPSTREAM_CONNECTING;
    gw_conn_setcb(s->upstream, upstream_startup_read, NULL, upstream_startup_event, s);
    gw_conn_read_on(s->upstream);
    return 0;
}

/* ---- cancel ------------------------------------------------------------- */

/* A cancel on its way upstream, in its worker's list (touched only on that
 * worker's loop) until upstream closed it, or the gateway stops. */
struct gw_cancel {
    struct bufferevent *bev;
    struct gw_session *requester; /* NULL once it went away */
    struct gw_worker *worker;
    struct gw_cancel *prev, *next;
};

static void cancel_free(struct gw_cancel *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->worker->cancels = c->next;
    if (c->next)
        c->next->prev = c->prev;
    bufferevent_free(c->bev);
    free(c);
}

/* The cancel's connection ended: upstream closed it once it had signalled
 * the backend (or it failed, or timed out). The requester's connection is
 * closed only now, as PostgreSQL closes it only after signalling: a driver
 * that waits for that close (libpq's PQcancel, pgjdbc) knows its cancel has
 * landed before it sends the next statement, which a late cancel would
 * otherwise hit. (PostgreSQL signals the backend twice, kill(pid) then
 * kill(-pid): a statement sent between the two is cancelled too.) */
static void cancel_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & BEV_EVENT_CONNECTED)
        return;
    struct gw_cancel *c = arg;
    struct gw_session *requester = c->requester;
    cancel_free(c);
    if (requester)
        gw_session_cancel_done(requester);
}

static void cancel_written(struct bufferevent *bev, void *arg)
{
    /* Sent; the server closes the connection. Wait for that (event cb). */
    bufferevent_setcb(bev, NULL, NULL, cancel_event, arg);
    bufferevent_enable(bev, EV_READ);
}

void gw_cancel_detach(struct gw_cancel *c)
{
    c->requester = NULL;
}

void gw_cancels_free(struct gw_worker *w)
{
    while (w->cancels) {
        if (w->cancels->requester)
            w->cancels->requester->cancel = NULL;
        cancel_free(w->cancels);
    }
}

struct gw_cancel *gw_cancel_send(struct gw_worker *w, uint32_t pid, uint32_t secret, struct gw_session *requester)
{
    char err[256];
    struct sockaddr_storage ss;
    socklen_t len;
    if (upstream_address(w->gw, &ss, &len, err, sizeof err) < 0)
        return NULL; /* best effort: a cancel that cannot be delivered changes nothing */
    struct gw_cancel *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->bev = bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        free(c);
        return NULL;
    }
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss, (int)len) < 0) {
        bufferevent_free(c->bev);
        free(c);
        return NULL;
    }
    c->requester = requester;
    c->worker = w;
    c->next = w->cancels;
    if (w->cancels)
        w->cancels->prev = c;
    w->cancels = c;
    uint8_t req[16];
    pgwire_put_u32(req, 16);
    pgwire_put_u32(req + 4, PGWIRE_CANCEL_REQUEST);
    pgwire_put_u32(req + 8, pid);
    pgwire_put_u32(req + 12, secret);
    struct timeval tv = {GW_CANCEL_TIMEOUT_S, 0};
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    bufferevent_setcb(c->bev, NULL, cancel_written, cancel_event, c);
    bufferevent_write(c->bev, req, sizeof req);
    bufferevent_enable(c->bev, EV_WRITE | EV_READ);
    util_secure_zero(req, sizeof req);
    return c;
}
