/* session.c — one client session: the client's startup (SSL/GSS/cancel
 * requests, protocol negotiation), then the relay in both directions with
 * pgbouncer-style framing: read a 5-byte header, decide, and move bodies the
 * gateway need not inspect as evbuffer chains. Statement hooks, holds,
 * refusals and row filters hang off this relay. */
#include "internal.h"
#include "hoopctl/log.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define GW_STARTUP_TIMEOUT_S 60
#define GW_CLOSE_TIMEOUT_S 5

static void client_read(struct gw_conn *c, void *arg);
static void client_write(struct gw_conn *c, void *arg);
static void client_event(struct gw_conn *c, short what, void *arg);
static void upstream_read(struct gw_conn *c, void *arg);
static void upstream_event(struct gw_conn *c, short what, void *arg);
static void c2u_process(struct gw_session *s);
static void u2c_process(struct gw_session *s);
static void session_resume_cb(evutil_socket_t fd, short what, void *arg);

static size_t buffer_limit(const struct gw_session *s)
{
    return s->gw->cfg.buffer_limit;
}

static void session_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_session *s = arg;
    if (s->phase == GW_CLOSING) {
        gw_session_free(s);
        return;
    }
    if (s->phase < GW_RELAY) {
        char msg[256];
        snprintf(msg, sizeof msg, s->phase == GW_CLIENT_STARTUP ? "timed out waiting for the client's startup packet"
                                  : s->phase == GW_CLIENT_AUTH  ? "timed out waiting for the client's password"
                                                                : "timed out connecting to upstream PostgreSQL at %s:%s",
                 s->gw->cfg.upstream.host, s->gw->cfg.upstream.port);
        gw_session_fail(s, "08006", msg);
    }
}

/* ---- the session cap ---------------------------------------------------- */

#define GW_CAP_MESSAGE "sorry, too many clients already"
#define GW_CAP_LOG_S 10

/* 53300 as PostgreSQL words it, with a hint naming the option. */
static void cap_error(const struct gateway *gw, struct buf *m)
{
    char hint[160];
    snprintf(hint, sizeof hint, "this hoopctl gateway serves at most %zu sessions at a time (--max-sessions)",
             gw->cfg.max_sessions);
    pgwire_build_error_detail(m, false, "FATAL", "53300", GW_CAP_MESSAGE, NULL, hint);
}

enum gw_admission { GW_ADMIT, GW_OVER_CAP, GW_REFUSE };

/* Count a new connection in (under the lock, so that loops on other
 * threads never take the same last slot): a session, one past the cap that
 * may still carry out a CancelRequest, or one refused unread. Past the cap,
 * one message at most every GW_CAP_LOG_S, as for accept() errors. */
static enum gw_admission admit(struct gateway *gw)
{
    enum gw_admission a = GW_ADMIT;
    bool say = false;
    uint64_t more = 0;
    size_t now_open;
    pthread_mutex_lock(&gw->lock);
    now_open = gw->nsessions - gw->nover;
    if (now_open >= gw->cfg.max_sessions) {
        a = gw->nover < GATEWAY_OVER_CAP_SLOTS ? GW_OVER_CAP : GW_REFUSE;
        int64_t now = util_monotonic_us();
        if (!gw->cap_logged_us || now - gw->cap_logged_us >= (int64_t)GW_CAP_LOG_S * 1000000) {
            say = true;
            more = gw->cap_refusals;
            gw->cap_logged_us = now;
            gw->cap_refusals = 0;
        } else {
            gw->cap_refusals++;
        }
    }
    if (a != GW_REFUSE)
        gw->nsessions++;
    if (a == GW_OVER_CAP)
        gw->nover++;
    pthread_mutex_unlock(&gw->lock);
    if (say && more)
        log_warn("gateway", "refusing clients: %zu sessions open, the most --max-sessions allows (%llu more "
                 "refused since the last message)", now_open, (unsigned long long)more);
    else if (say)
        log_warn("gateway", "refusing clients: %zu sessions open, the most --max-sessions allows; they get "
                 "SQLSTATE 53300 (said again at most every %d s while it lasts)", now_open, GW_CAP_LOG_S);
    return a;
}

/* A connection admitted but never made a session. */
static void unadmit(struct gateway *gw, bool over_cap)
{
    pthread_mutex_lock(&gw->lock);
    gw->nsessions--;
    if (over_cap)
        gw->nover--;
    pthread_mutex_unlock(&gw->lock);
}

/* Past the cap and its slots: 53300 at once, unread (a client's SSLRequest
 * or startup packet may be on its way), as PostgreSQL's postmaster answers
 * when it cannot start a backend. libpq reads it in answer to either, but
 * shows its text only for a startup packet: for an SSLRequest (sslmode
 * prefer, its default) it says "server sent an error response during SSL
 * exchange" (the answer comes before any TLS, so it does not trust it).
 * The socket is new and nonblocking, so the few bytes go at once and the
 * loop never waits; what the client sent already is read and dropped
 * first, so that the close is a FIN, not a reset that could overtake the
 * message. */
static void refuse_unread(struct gateway *gw, evutil_socket_t fd)
{
    struct buf m = {0};
    cap_error(gw, &m);
    if (m.data)
        (void)send(fd, m.data, m.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    buf_free(&m);
    shutdown(fd, SHUT_WR);
    char sink[4096];
    for (int i = 0; i < 16 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
        ;
    evutil_closesocket(fd);
}

void gw_session_accept(struct gw_worker *w, evutil_socket_t fd, const struct sockaddr *addr, int alen)
{
    (void)alen;
    struct gateway *gw = w->gw;
    enum gw_admission a = admit(gw);
    if (a == GW_REFUSE) {
        refuse_unread(gw, fd);
        return;
    }
    struct gw_session *s = calloc(1, sizeof *s);
    if (!s) {
        unadmit(gw, a == GW_OVER_CAP);
        evutil_closesocket(fd);
        return;
    }
    s->over_cap = a == GW_OVER_CAP;
    s->gw = gw;
    s->tracking.max_held = gw->cfg.max_held_bytes;
    s->worker = w;
    s->base = w->base;
    s->client = gw_conn_new(s->base, fd);
    s->client_inject = evbuffer_new();
    s->staged = evbuffer_new();
    s->timer = evtimer_new(s->base, session_timer, s);
    s->resume = event_new(s->base, -1, 0, session_resume_cb, s);
    if (!s->client || !s->client_inject || !s->timer || !s->resume) {
        if (s->client)
            gw_conn_free(s->client);
        else
            evutil_closesocket(fd);
        if (s->client_inject)
            evbuffer_free(s->client_inject);
        if (s->timer)
            event_free(s->timer);
        if (s->resume)
            event_free(s->resume);
        unadmit(gw, s->over_cap);
        free(s);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        char ip[INET_ADDRSTRLEN] = "";
        evutil_inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        snprintf(s->client_addr, sizeof s->client_addr, "%s:%u", ip, ntohs(in->sin_port));
    } else {
        snprintf(s->client_addr, sizeof s->client_addr, "local");
    }
    util_random_bytes(&s->client_secret, sizeof s->client_secret);
    util_random_bytes(s->tracking.key, sizeof s->tracking.key);
    s->info.client_user = s->client_user;
    s->info.client_database = s->client_database;
    s->info.application_name = s->application_name;
    s->info.client_addr = s->client_addr;
    s->info.txn_status = 'I';
    pthread_mutex_lock(&gw->lock);
    s->info.id = s->id = ++gw->next_session_id;
    s->next = w->sessions;
    if (w->sessions)
        w->sessions->prev = s;
    w->sessions = s;
    pthread_mutex_unlock(&gw->lock);
    struct timeval tv = {s->over_cap ? GATEWAY_OVER_CAP_TIMEOUT_S : GW_STARTUP_TIMEOUT_S, 0};
    evtimer_add(s->timer, &tv);
    gw_conn_setcb(s->client, client_read, client_write, client_event, s);
    gw_conn_read_on(s->client);
}

/* Bytes queued towards a peer, not yet sent. */
static size_t queued(const struct gw_conn *c)
{
    return evbuffer_get_length(gw_conn_output(c));
}

void gw_session_free(struct gw_session *s)
{
    struct gateway *gw = s->gw;
    const struct gateway_hooks *h = &gw->cfg.hooks;
    if (s->held && h->hold_abandoned)
        h->hold_abandoned(h->user, s->hold_id);
    if (s->started && h->session_end)
        h->session_end(h->user, &s->info);
    pthread_mutex_lock(&gw->lock);
    if (s->prev)
        s->prev->next = s->next;
    else
        s->worker->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    gw->nsessions--;
    if (s->over_cap)
        gw->nover--;
    pthread_mutex_unlock(&gw->lock);
    if (s->client) {
        /* A last try (it never blocks) to send what is queued: when the
         * gateway stops, a session is freed without waiting for its client,
         * whose last message may be the 57P01 of the shutdown. */
        gw_conn_flush(s->client);
        /* End a TLS session as PostgreSQL does, so the client sees an orderly close. */
        gw_conn_close_notify(s->client);
        gw_conn_free(s->client);
    }
    if (s->cancel) /* its cancel goes on without it */
        gw_cancel_detach(s->cancel);
    gw_encoding_free(s);
    gw_conn_free(s->upstream);
    event_free(s->timer);
    event_free(s->resume);
    evbuffer_free(s->client_inject);
    evbuffer_free(s->staged);
    free(s->startup);
    pgwire_auth_free(&s->auth);
    pgwire_scram_server_free(&s->client_scram);
    gw_tracking_free(&s->tracking);
    free(s->inflight.items);
    buf_free(&s->redacted);
    free(s->filter.mask);
    bool listeners_loop = s->worker == &gw->workers[0];
    free(s);
    if (listeners_loop) /* its descriptors came back: accepts paused for want of one may go on */
        gw_accepts_maybe_resume(gw);
}

/* Stop relaying; free once the client has its last bytes (or after a while). */
static void session_close(struct gw_session *s)
{
    if (s->phase == GW_CLOSING)
        return;
    s->phase = GW_CLOSING;
    gw_conn_free(s->upstream);
    s->upstream = NULL;
    gw_conn_read_off(s->client);
    gw_conn_flush_later(s->client);
    evtimer_del(s->timer);
    struct timeval tv = {GW_CLOSE_TIMEOUT_S, 0};
    if (s->cancel) /* until upstream closed the cancel (gw_session_cancel_done); both its steps may time out */
        tv.tv_sec = 2 * GW_CANCEL_TIMEOUT_S + 1;
    else if (queued(s->client) == 0)
        tv.tv_sec = 0;
    evtimer_add(s->timer, &tv);
}

void gw_session_cancel_done(struct gw_session *s)
{
    s->cancel = NULL;
    evtimer_del(s->timer);
    struct timeval tv = {0, 0};
    evtimer_add(s->timer, &tv);
}

/* Queue a message for the client at the next message boundary. */
static void inject_to_client(struct gw_session *s, const struct buf *m)
{
    if (s->u2c_remaining == 0)
        gw_conn_write(s->client, m->data, m->len);
    else
        evbuffer_add(s->client_inject, m->data, m->len);
}

void gw_session_fail(struct gw_session *s, const char *sqlstate, const char *message)
{
    gw_session_fail_detail(s, sqlstate, message, NULL, NULL);
}

void gw_session_fail_detail(struct gw_session *s, const char *sqlstate, const char *message, const char *detail,
                            const char *hint)
{
    if (s->phase == GW_CLOSING)
        return;
    if (s->over_cap) {
        /* Past the cap, whatever the client sent or failed to send (a
         * CancelRequest is not failed): 53300, and nothing logged (a
         * message every GW_CAP_LOG_S says so). */
        struct buf m = {0};
        cap_error(s->gw, &m);
        if (m.data)
            gw_conn_write(s->client, m.data, m.len);
        buf_free(&m);
        session_close(s);
        return;
    }
    if (s->u2c_remaining == 0) {
        struct buf m = {0};
        if (pgwire_build_error_detail(&m, false, "FATAL", sqlstate, message, detail, hint) == 0)
            gw_conn_write(s->client, m.data, m.len);
        buf_free(&m);
    }
    log_info("gateway", "session %llu: %s%s%s%s", (unsigned long long)s->id, message, hint && *hint ? " (" : "",
             hint && *hint ? hint : "", hint && *hint ? ")" : "");
    session_close(s);
}

void gw_session_shutdown(struct gw_session *s)
{
    if (s->phase == GW_CLOSING)
        return;
    if (s->phase == GW_CLIENT_STARTUP) {
        session_close(s);
        return;
    }
    gw_session_fail(s, "57P01", "terminating connection because the gateway is shutting down");
}

/* ---- client startup ------------------------------------------------------ */

static void copy_param(char *dst, size_t len, const char *v)
{
    snprintf(dst, len, "%s", v ? v : "");
}

static int client_begin_tls(struct gw_session *s)
{
    SSL *ssl = SSL_new(s->worker->client_tls);
    if (!ssl)
        return -1;
    gw_conn_flush(s->client); /* the 'S' goes out in clear first */
    if (queued(s->client) != 0) {
        SSL_free(ssl);
        return -1;
    }
    return gw_conn_start_tls(s->client, ssl, true);
}

/* The upstream key of the session a client's cancel key names, on any
 * worker. Returns false when none does. */
static bool find_cancel_target(struct gateway *gw, uint32_t pid, uint32_t secret, uint32_t *upid,
                               uint32_t *usecret, uint64_t *held)
{
    bool found = false;
    *held = 0;
    pthread_mutex_lock(&gw->lock);
    for (int i = 0; i < gw->nworkers && !found; i++)
        for (struct gw_session *t = gw->workers[i].sessions; t && !found; t = t->next) {
            if (!t->cancel_ready || t->backend_pid != pid)
                continue;
            /* compare without an early exit on the secret */
            volatile uint32_t diff = t->client_secret ^ secret;
            if (diff == 0) {
                *upid = t->backend_pid;
                *usecret = t->backend_secret;
                *held = t->held ? t->hold_id : 0;
                found = true;
            }
        }
    pthread_mutex_unlock(&gw->lock);
    return found;
}

/* A cancel of a session whose statement is held: it fails as PostgreSQL's
 * cancel would, and the hook hears the hold was abandoned (a review is
 * withdrawn). Holds need the statement hook, so the gateway has one loop:
 * this one, which runs the held session too. */
static void cancel_hold(struct gateway *gw, uint64_t hold_id)
{
    struct gateway_refusal r = {0};
    snprintf(r.sqlstate, sizeof r.sqlstate, "57014");
    snprintf(r.message, sizeof r.message, "canceling statement due to user request");
    const struct gateway_hooks *h = &gw->cfg.hooks;
    if (gateway_resolve(gw, hold_id, GATEWAY_REFUSE, &r) == 0 && h->hold_abandoned)
        h->hold_abandoned(h->user, hold_id);
}

/* The client is who it says (or trusted): connect upstream. */
static void start_upstream(struct gw_session *s)
{
    char err[256];
    if (gw_upstream_start(s, err, sizeof err) < 0) {
        gw_session_fail(s, "08006", err);
        return;
    }
    struct timeval tv = {s->gw->cfg.upstream.connect_timeout, 0};
    evtimer_del(s->timer);
    evtimer_add(s->timer, &tv);
}

#define GW_CLIENT_AUTH_MAX_MESSAGE 4096

/* SCRAM-SHA-256 with the client against the run's password (client_password). */
static void client_auth_read(struct gw_session *s)
{
    struct evbuffer *in = gw_conn_input(s->client);
    while (s->phase == GW_CLIENT_AUTH) {
        uint8_t hdr[PGWIRE_HEADER_LEN];
        char err[256];
        if (evbuffer_copyout(in, hdr, sizeof hdr) < (ev_ssize_t)sizeof hdr)
            return;
        long blen = pgwire_check_header(hdr, GW_CLIENT_AUTH_MAX_MESSAGE, err, sizeof err);
        if (blen < 0) {
            gw_session_fail(s, "08P01", "invalid password packet from the client");
            return;
        }
        if (evbuffer_get_length(in) < (size_t)blen + PGWIRE_HEADER_LEN)
            return;
        const uint8_t *msg = evbuffer_pullup(in, blen + PGWIRE_HEADER_LEN);
        struct buf reply = {0};
        enum pgwire_auth_result r = pgwire_scram_server_step(&s->client_scram, &s->gw->client_verifier, msg[0],
                                                             msg + PGWIRE_HEADER_LEN, (size_t)blen, &reply,
                                                             err, sizeof err);
        evbuffer_drain(in, (size_t)blen + PGWIRE_HEADER_LEN);
        if (r == PGWIRE_AUTH_FAILED) {
            buf_free(&reply);
            char m[512];
            if (strcmp(err, "wrong password") == 0)
                snprintf(m, sizeof m, "password authentication failed for user \"%s\" (the gateway's password "
                         "for this run)", s->client_user);
            else
                snprintf(m, sizeof m, "password authentication failed for user \"%s\": %s", s->client_user, err);
            gw_session_fail(s, "28P01", m);
            return;
        }
        gw_conn_write(s->client, reply.data, reply.len);
        buf_free(&reply);
        if (r == PGWIRE_AUTH_OK) {
            pgwire_scram_server_free(&s->client_scram);
            start_upstream(s);
            return;
        }
    }
}

static void client_startup_read(struct gw_session *s)
{
    struct evbuffer *in = gw_conn_input(s->client);
    while (s->phase == GW_CLIENT_STARTUP) {
        uint8_t prefix[4];
        char err[256];
        if (evbuffer_copyout(in, prefix, 4) < 4)
            return;
        long blen = pgwire_startup_length(prefix, err, sizeof err);
        if (blen < 0) {
            gw_session_fail(s, "08P01", err);
            return;
        }
        /* Past the cap, as PostgreSQL at max_connections, a CancelRequest
         * (16 bytes) is carried out and SSL and GSS requests (8) are answered
         * as ever; a startup packet gets 53300 (libpq shows the message of
         * one that answers the startup packet, over TLS or not, but not of
         * one that answers an SSLRequest). */
        if (s->over_cap && blen + 4 != 16 && blen + 4 != 8) {
            gw_session_fail(s, "53300", GW_CAP_MESSAGE);
            return;
        }
        if (evbuffer_get_length(in) < (size_t)blen + 4)
            return;
        struct pgwire_startup *st = malloc(sizeof *st);
        if (!st) {
            gw_session_fail(s, "53200", "out of memory");
            return;
        }
        uint8_t *p = evbuffer_pullup(in, blen + 4);
        int rc = pgwire_parse_startup(p + 4, (size_t)blen, st, err, sizeof err);
        evbuffer_drain(in, (size_t)blen + 4);
        if (rc < 0) {
            /* a major version other than 3 is PostgreSQL's feature_not_supported */
            bool version = st->code && st->code >> 16 != 3 &&
                           st->code >> 16 != 1234; /* (1234: SSL, GSS, cancel requests) */
            free(st);
            gw_session_fail(s, version ? "0A000" : "08P01", err);
            return;
        }
        if (s->over_cap && st->code != PGWIRE_CANCEL_REQUEST && st->code != PGWIRE_SSL_REQUEST &&
            st->code != PGWIRE_GSSENC_REQUEST) {
            free(st);
            gw_session_fail(s, "53300", GW_CAP_MESSAGE);
            return;
        }
        if (st->code == PGWIRE_SSL_REQUEST || st->code == PGWIRE_GSSENC_REQUEST) {
            bool tls = st->code == PGWIRE_SSL_REQUEST && s->worker->client_tls;
            free(st);
            if (evbuffer_get_length(in) > 0) {
                gw_session_fail(s, "08P01", "received unencrypted data after SSL request");
                return;
            }
            gw_conn_write(s->client, tls ? "S" : "N", 1);
            if (tls) {
                if (client_begin_tls(s) < 0)
                    gw_session_fail(s, "08P01", "cannot start TLS");
                return;
            }
            continue;
        }
        if (st->code == PGWIRE_CANCEL_REQUEST) {
            uint32_t upid, usecret;
            uint64_t held;
            if (find_cancel_target(s->gw, st->cancel_pid, st->cancel_secret, &upid, &usecret, &held)) {
                if (held) /* a held statement has not reached the server: it is cancelled here */
                    cancel_hold(s->gw, held);
                else
                    s->cancel = gw_cancel_send(s->worker, upid, usecret, s);
            } else
                log_info("gateway", "ignored a cancel request with an unknown key");
            free(st);
            session_close(s);
            return;
        }
        /* StartupMessage 3.x */
        copy_param(s->client_user, sizeof s->client_user, pgwire_startup_get(st, "user"));
        copy_param(s->client_database, sizeof s->client_database, pgwire_startup_get(st, "database"));
        if (!s->client_database[0])
            copy_param(s->client_database, sizeof s->client_database, s->client_user);
        copy_param(s->application_name, sizeof s->application_name,
                   pgwire_startup_get(st, "application_name"));
        if (!s->client_user[0]) {
            free(st);
            gw_session_fail(s, "28000", "no PostgreSQL user name specified in startup packet");
            return;
        }
        if (s->gw->cfg.only_user && strcmp(s->client_user, s->gw->cfg.only_user) != 0) {
            free(st);
            log_warn("gateway", "refused a client from %s: this listener serves one client only",
                     s->info.client_addr);
            gw_session_fail(s, "28000", "hoopctl: this listener serves one client only");
            return;
        }
        /* A parameter given twice is refused first: the server takes the
         * last, and a check here would read the first. */
        char why[256];
        if (gw_startup_duplicate(st, why, sizeof why) ||
            (s->gw->cfg.hooks.statement && gw_startup_refusal(st, &s->info.search_path_set, why, sizeof why))) {
            free(st);
            gw_session_fail(s, "0A000", why);
            return;
        }
        const char *repl = pgwire_startup_get(st, "replication");
        if (repl && strcmp(repl, "false") != 0 && strcmp(repl, "0") != 0 && strcmp(repl, "off") != 0) {
            free(st);
            gw_session_fail(s, "0A000", "replication connections are not supported by the gateway");
            return;
        }
        const char *unknown[PGWIRE_STARTUP_MAX_PARAMS];
        int nunknown = 0;
        for (int i = 0; i < st->nparams; i++)
            if (strncmp(st->params[i].name, "_pq_.", 5) == 0)
                unknown[nunknown++] = st->params[i].name;
        if ((st->code & 0xffff) != 0 || nunknown) {
            struct buf m = {0};
            if (pgwire_build_negotiate(&m, PGWIRE_PROTOCOL_3_0, unknown, nunknown) == 0)
                gw_conn_write(s->client, m.data, m.len);
            buf_free(&m);
        }
        s->startup = st;
        if (s->gw->client_auth) {
            struct buf m = {0};
            if (pgwire_scram_server_begin(&m) == 0)
                gw_conn_write(s->client, m.data, m.len);
            buf_free(&m);
            s->phase = GW_CLIENT_AUTH;
            client_auth_read(s); /* a client may have sent more already */
            return;
        }
        start_upstream(s);
        return;
    }
}

/* Bytes left for a peer: a paused direction may go on. The work happens in
 * session_resume_cb, on its own loop turn. */
static void relay_wrote(struct gw_conn *c, void *arg)
{
    (void)c;
    struct gw_session *s = arg;
    if (s->phase == GW_RELAY && (s->c2u_paused || s->u2c_paused))
        event_active(s->resume, EV_TIMEOUT, 1);
}

void gw_session_upstream_ready(struct gw_session *s)
{
    const struct gateway_hooks *h = &s->gw->cfg.hooks;
    s->phase = GW_RELAY;
    pthread_mutex_lock(&s->gw->lock);
    s->cancel_ready = true;
    pthread_mutex_unlock(&s->gw->lock);
    evtimer_del(s->timer);
    gw_conn_setcb(s->upstream, upstream_read, relay_wrote, upstream_event, s);
    gw_conn_read_on(s->upstream);
    gw_conn_read_on(s->client); /* it stopped at the buffer limit while upstream was being set up */
    s->started = true;
    if (h->session_start)
        h->session_start(h->user, &s->info);
    u2c_process(s);
    c2u_process(s);
}

/* ---- relay: shared helpers -------------------------------------------- */

/* When dst has too much queued, stop reading src until dst drains. */
static bool pause_if_full(struct gw_session *s, bool client_to_upstream)
{
    struct gw_conn *dst = client_to_upstream ? s->upstream : s->client;
    struct gw_conn *src = client_to_upstream ? s->client : s->upstream;
    if (queued(dst) < buffer_limit(s))
        return false;
    gw_conn_read_off(src);
    if (client_to_upstream)
        s->c2u_paused = true;
    else
        s->u2c_paused = true;
    return true;
}

static void protocol_error(struct gw_session *s, const char *who, const char *what)
{
    char msg[512];
    snprintf(msg, sizeof msg, "protocol error from %s: %s", who, what);
    gw_session_fail(s, "08P01", msg);
}

/* ---- statement completion (the statement_complete hook) ----------------- */

#define GW_INFLIGHT_MAX 65536

static void inflight_pop(struct gw_session *s)
{
    struct gw_inflight *q = &s->inflight;
    if (q->items[q->head].may_copy)
        s->copy_items--;
    q->head = (q->head + 1) % q->cap;
    q->len--;
}

/* Whether the session keeps its messages in flight: for the completion
 * hook, and for the answer position the hooks that see results read. */
static bool tracks_answers(const struct gateway *gw)
{
    const struct gateway_hooks *h = &gw->cfg.hooks;
    return h->statement_complete || h->statement || h->row_description;
}

/* Whose answer upstream is sending now, into the session's info. */
static void note_answer_position(struct gw_session *s)
{
    const struct gw_inflight *q = &s->inflight;
    const struct gw_inflight_item *it = q->len ? &q->items[q->head] : NULL;
    s->info.answer_id = it && it->type != 'S' && !it->refused ? it->statement_id : 0;
    s->info.answer_index = it ? it->done : 0;
}

/* A message went upstream that upstream will answer: 'Q', 'E' or 'S'.
 * -1 when it cannot be counted (the session must end: every later answer
 * would be paired with the wrong statement). */
static int inflight_push(struct gw_session *s, char type, enum gateway_statement_kind kind, bool refused,
                         bool may_copy)
{
    struct gw_inflight *q = &s->inflight;
    if (!tracks_answers(s->gw))
        return 0;
    if (q->len == q->cap) {
        size_t ncap = q->cap ? q->cap * 2 : 16;
        struct gw_inflight_item *n = ncap <= GW_INFLIGHT_MAX ? malloc(ncap * sizeof *n) : NULL;
        if (!n)
            return -1;
        for (size_t i = 0; i < q->len; i++)
            n[i] = q->items[(q->head + i) % q->cap];
        free(q->items);
        q->items = n;
        q->cap = ncap;
        q->head = 0;
    }
    q->items[(q->head + q->len) % q->cap] = (struct gw_inflight_item){
        type, refused, type == 'S' ? 0 : s->decided_id, util_monotonic_us(), kind, 0, may_copy, 0, s->copy_ends};
    q->len++;
    s->copy_items += may_copy;
    return 0;
}

/* The tag's trailing row count ("INSERT 0 5" -> 5), or -1. */
static int64_t tag_rows(const char *tag)
{
    const char *sp = strrchr(tag, ' ');
    if (!sp || !sp[1])
        return -1;
    int64_t n = 0;
    for (const char *p = sp + 1; *p; p++) {
        if (*p < '0' || *p > '9' || n > INT64_MAX / 10 - 10)
            return -1;
        n = n * 10 + (*p - '0');
    }
    return n;
}

/* Upstream answered ('C', 'I', 's', 'E' or 'Z'): report the completion of
 * the oldest statement in flight, and retire what the answer ends. */
static void inflight_answer(struct gw_session *s, char type, const uint8_t *body, size_t len)
{
    const struct gateway_hooks *h = &s->gw->cfg.hooks;
    struct gw_inflight *q = &s->inflight;
    if (q->len == 0)
        return;
    if (type == 'Z') { /* ends a Query, or an extended segment up to its Sync */
        while (q->len) {
            char t = q->items[q->head].type;
            inflight_pop(s);
            if (t != 'E')
                break;
        }
        return;
    }
    struct gw_inflight_item *it = &q->items[q->head];
    if (it->type == 'S')
        return; /* an error of a Parse or Bind: the ReadyForQuery retires the Sync */
    int64_t now = util_monotonic_us();
    if (h->statement_complete && !it->refused) {
        char tag[128] = "", state[6] = "", msg[512] = "";
        struct gateway_completion d = {.statement_kind = it->kind, .statement_id = it->statement_id,
                                       .command_tag = tag, .rows = -1,
                                       .sqlstate = state, .message = msg, .duration_us = now - it->since_us};
        if (type == 'C') {
            const uint8_t *nul = memchr(body, 0, len);
            size_t n = nul ? (size_t)(nul - body) : 0;
            if (n >= sizeof tag)
                n = sizeof tag - 1;
            memcpy(tag, body, n);
            tag[n] = '\0';
            d.rows = tag_rows(tag);
        } else if (type == 'E') {
            d.kind = GATEWAY_COMPLETE_ERROR;
            pgwire_error_field(body, len, 'C', state, sizeof state);
            pgwire_error_field(body, len, 'M', msg, sizeof msg);
        } else {
            d.kind = type == 'I' ? GATEWAY_COMPLETE_EMPTY : GATEWAY_COMPLETE_SUSPENDED;
        }
        h->statement_complete(h->user, &s->info, &d);
    }
    it->since_us = now; /* the next statement of a Query starts now */
    if (it->type != 'E') { /* a Query's statements end at its ReadyForQuery */
        if (type == 'C' || type == 'I')
            it->done++;
        return;
    }
    inflight_pop(s);
    if (type == 'E') /* upstream skips the rest of the segment up to its Sync */
        while (q->len && q->items[q->head].type == 'E')
            inflight_pop(s);
}

/* ---- COPY FROM STDIN: the Syncs upstream ignores ------------------------- */

static void note_upstream_message(struct gw_session *s, char type);

/* A client's CopyDone or CopyFail went upstream: copy-in mode ends there. */
static void count_copy_message(struct gw_session *s, char type)
{
    if (type == 'd' || type == 'c' || type == 'f')
        s->copy_data_sent = true;
    if (type == 'c' || type == 'f') {
        s->copy_ends++;
        s->copy_in = false;
    }
}

/* Whether the text may run COPY FROM STDIN: only a statement sent as a
 * Query or a Parse can, and its text then holds the keyword. */
static bool text_may_copy(const char *sql)
{
    return !sql || strcasestr(sql, "copy") != NULL;
}

/* Upstream ignores a Sync (and fails on other messages) in copy-in mode,
 * but answers it when the COPY failed before reading it (COPY FREEZE on an
 * old table, a BEFORE STATEMENT trigger), so a Sync is never sent upstream
 * while it may be in copy-in mode. While a statement that may start COPY
 * FROM STDIN is in flight, the client's next message that is not COPY data
 * waits until it either started copy-in mode (CopyInResponse) or finished.
 * In copy-in mode a Sync is dropped, as upstream drops it, and anything
 * else ends the session; when the COPY then fails before any CopyData went
 * (upstream would have answered those Syncs, being out of copy-in mode when
 * it read them), they are sent after all (copy_failed). True when the
 * client's message must wait. */
static bool copy_may_start(const struct gw_session *s)
{
    return s->copy_items > 0 && !s->copy_in;
}

/* Upstream entered copy-in mode (CopyInResponse) for the statement it is
 * answering. 0, or -1 when the session was ended. */
static int copy_in_started(struct gw_session *s)
{
    struct gw_inflight *q = &s->inflight;
    if (q->len == 0 || q->items[q->head].type == 'S') {
        protocol_error(s, "upstream", "CopyInResponse with no statement in flight");
        return -1;
    }
    struct gw_inflight_item *h = &q->items[q->head];
    /* the client may have ended this COPY already (data sent without
     * waiting for the CopyInResponse) */
    s->copy_in = s->copy_ends == h->copy_ends_at + h->copies;
    h->copies++;
    s->copy_data_sent = false;
    s->copy_syncs_dropped = 0;
    return 0;
}

/* Upstream sent an ErrorResponse. A COPY that failed while nothing after
 * the Syncs dropped in its copy-in mode had gone (no CopyData, CopyDone or
 * CopyFail) failed before reading them, and would have answered them: they
 * are sent now. Had anything gone after them, upstream may have read them
 * in copy-in mode and failed later: they stay dropped (the client gets a
 * ReadyForQuery fewer, never one more). 0, or -1 when the session was
 * ended. */
static int copy_failed(struct gw_session *s)
{
    s->copy_in = false;
    if (s->copy_data_sent)
        s->copy_syncs_dropped = 0;
    for (; s->copy_syncs_dropped; s->copy_syncs_dropped--) {
        static const uint8_t sync[] = {'S', 0, 0, 0, 4};
        evbuffer_add(gw_conn_output(s->upstream), sync, sizeof sync);
        note_upstream_message(s, 'S');
        if (gw_tracking_client(&s->tracking, 'S', NULL, 0) < 0 ||
            inflight_push(s, 'S', GATEWAY_STATEMENT_SIMPLE, false, false) < 0) {
            protocol_error(s, "gateway", "out of memory while counting a Sync");
            return -1;
        }
    }
    return 0;
}

/* ---- idle: every answer came (the idle hook) ----------------------------- */

/* A client message goes upstream: count what ReadyForQuery will answer. */
static void note_upstream_message(struct gw_session *s, char type)
{
    if (type == 'Q' || type == 'F' || type == 'E')
        s->encoding_unsettled = true; /* it may change client_encoding: reported at its ReadyForQuery */
    if (type == 'Q' || type == 'F' || type == 'S') {
        s->awaiting_ready++;
        s->unsynced = false; /* a Query ends an extended segment that did not fail, as a Sync does */
    } else if (strchr("PBDECH", type)) {
        s->unsynced = true;
    }
}

/* Upstream sent ReadyForQuery. */
static void note_ready(struct gw_session *s)
{
    const struct gateway_hooks *h = &s->gw->cfg.hooks;
    if (s->awaiting_ready)
        s->awaiting_ready--;
    if (s->awaiting_ready == 0 && !s->unsynced)
        s->encoding_unsettled = false; /* every ParameterStatus has come */
    /* A statement decided but not sent yet (held, or released and waiting
     * for its turn) is in flight for the hooks: not idle. */
    if (s->awaiting_ready == 0 && !s->unsynced && !s->held && !s->have_verdict && h->idle)
        h->idle(h->user, &s->info);
}

/* ---- relay: client to upstream ----------------------------------------- */

static void send_hold_notice(struct gw_session *s, const struct gateway_refusal *r)
{
    struct buf m = {0};
    const char *text = r->hold_notice[0] ? r->hold_notice
                                         : "statement held for approval by the gateway; waiting";
    if (pgwire_build_error(&m, true, "NOTICE", "00000", text) == 0)
        inject_to_client(s, &m);
    buf_free(&m);
}

/* Replace the refused message by a marker statement that fails upstream. */
static void send_refusal_marker(struct gw_session *s, char type, const struct gateway_refusal *r)
{
    uint32_t seq = ++s->refusal_seq;
    unsigned slot = seq % 16;
    s->refusals[slot].seq = seq;
    snprintf(s->refusals[slot].sqlstate, sizeof s->refusals[slot].sqlstate, "%s",
             r && r->sqlstate[0] ? r->sqlstate : "42501");
    snprintf(s->refusals[slot].message, sizeof s->refusals[slot].message, "%s",
             r && r->message[0] ? r->message : "statement refused by gateway policy");
    s->refusals_outstanding++;
    char name[64];
    snprintf(name, sizeof name, "%s_%u", s->gw->refusal_marker, seq);
    struct buf m = {0};
    size_t start;
    int rc;
    if (type == 'E') {
        rc = pgwire_msg_begin(&m, 'E', &start) | pgwire_put_cstr(&m, name) | pgwire_put_i32(&m, 0);
        s->skip_to_sync = true;
    } else {
        char q[96];
        snprintf(q, sizeof q, "FETCH ALL FROM %s", name);
        rc = pgwire_msg_begin(&m, 'Q', &start) | pgwire_put_cstr(&m, q);
        gw_tracking_client(&s->tracking, 'Q', (const uint8_t *)q, strlen(q) + 1);
    }
    if (rc == 0 && pgwire_msg_finish(&m, start) == 0)
        evbuffer_add(gw_conn_output(s->upstream), m.data, m.len);
    buf_free(&m);
}

/* Ask the statement hook about a Query/Execute/FunctionCall. Returns the
 * verdict; -1 means wait (barrier) and -2 a malformed message. */
/* Whether Bind may have made a portal of this name (one being tracked
 * still counts). */
static bool portal_exists(void *ctx, const char *name)
{
    struct gw_session *s = ctx;
    struct gw_portal_info pi;
    return gw_tracking_portal(&s->tracking, name, &pi) != 0;
}

static int decide(struct gw_session *s, char type, const uint8_t *body, size_t len,
                  struct gateway_refusal *refusal)
{
    const struct gateway_hooks *h = &s->gw->cfg.hooks;
    struct gateway_statement st = {
        .portal_exists = portal_exists, .portal_ctx = s, .portal_closes = s->tracking.portal_closes};
    struct pgwire_bind bind = {0};
    int16_t *formats = NULL;
    if (type == 'Q') {
        if (len == 0 || body[len - 1] != 0 || memchr(body, 0, len) != body + len - 1)
            return -2;
        st.kind = GATEWAY_STATEMENT_SIMPLE;
        st.sql = (const char *)body;
    } else if (type == 'F') {
        st.kind = GATEWAY_STATEMENT_FUNCTION_CALL;
        st.sql = "";
    } else {
        char kind;
        const char *portal;
        struct gw_portal_info pi;
        if (pgwire_parse_named(body, len, false, &kind, &portal) < 0)
            return -2;
        int found = gw_tracking_portal(&s->tracking, portal, &pi);
        if (found < 0)
            return -1;
        st.kind = GATEWAY_STATEMENT_EXECUTE;
        st.sql = pi.sql;
        s->decided_may_copy = !found || text_may_copy(pi.sql); /* before the hook's forget may free it */
        st.portal_name = portal;
        if (found && pi.bind && pgwire_parse_bind(pi.bind, pi.bind_len, &bind) == 0) {
            st.statement_name = bind.statement;
            st.nparams = bind.nparams;
            st.param_values = bind.values;
            st.param_lengths = bind.lengths;
            st.ntypes = pi.ntypes;
            st.param_types = pi.types;
            formats = calloc((size_t)bind.nparams + 1, sizeof *formats);
            for (int i = 0; formats && i < bind.nparams; i++)
                formats[i] = bind.nformats == 0 ? 0 : bind.nformats == 1 ? bind.formats[0]
                                                                          : bind.formats[i < bind.nformats ? i : 0];
            st.param_formats = formats;
        }
    }
    uint64_t hold_id = atomic_fetch_add_explicit(&s->gw->next_hold_id, 1, memory_order_relaxed) + 1;
    s->decided_id = hold_id;
    char *utf8 = NULL; /* the hook reads the text as UTF-8, whatever the client_encoding */
    st.sql = gw_text_utf8(s, st.sql, &utf8);
    st.converted_from = utf8 ? s->client_encoding : NULL;
    enum gateway_verdict v = h->statement(h->user, &s->info, &st, hold_id, refusal);
    free(utf8);
    gw_tracking_forget(&s->tracking, &refusal->forget);
    pgwire_bind_free(&bind);
    free(formats);
    if (v == GATEWAY_HOLD && s->gw->nworkers > 1) { /* holds are resolved on the one loop: refused */
        snprintf(refusal->sqlstate, sizeof refusal->sqlstate, "42501");
        snprintf(refusal->message, sizeof refusal->message,
                 "hoopctl: this statement needs a hold, which a gateway with several loops cannot do");
        v = GATEWAY_REFUSE;
    }
    if (v == GATEWAY_HOLD)
        s->hold_id = hold_id;
    return (int)v;
}

/* Before an Execute, describe its portal ourselves so that the row filter
 * always matches the rows that follow, whether or not the client asked. */
static int inject_describe(struct gw_session *s, const uint8_t *body, size_t len)
{
    char kind;
    const char *portal;
    if (pgwire_parse_named(body, len, false, &kind, &portal) < 0)
        return -1;
    struct buf m = {0};
    size_t start;
    int rc = pgwire_msg_begin(&m, 'D', &start) | buf_append(&m, "P", 1) | pgwire_put_cstr(&m, portal);
    if (rc == 0 && pgwire_msg_finish(&m, start) == 0 && gw_tracking_injected_describe(&s->tracking) == 0)
        evbuffer_add(gw_conn_output(s->upstream), m.data, m.len);
    else
        rc = -1;
    buf_free(&m);
    return rc;
}

/* Move (or drop) what has arrived of a message being streamed through;
 * false when there is nothing to move yet. */
static bool stream_rest(struct evbuffer *in, struct evbuffer *out, size_t *remaining, bool discard)
{
    size_t avail = evbuffer_get_length(in);
    if (!avail)
        return false;
    size_t n = avail < *remaining ? avail : *remaining;
    if (discard)
        evbuffer_drain(in, n);
    else
        evbuffer_remove_buffer(in, out, n);
    *remaining -= n;
    return true;
}

static bool c2u_run_member(struct gw_session *s, char type)
{
    (void)s;
    return type != 'X';
}

static size_t pass_run(struct gw_session *s, struct evbuffer *in, size_t first, size_t avail,
                       bool (*member)(struct gw_session *, char));

/* Send the staged messages upstream, ahead of whatever comes next. */
static void unstage(struct gw_session *s)
{
    if (evbuffer_get_length(s->staged))
        evbuffer_add_buffer(gw_conn_output(s->upstream), s->staged);
}

/* Wait for upstream's answers before the client's next message; a Flush
 * makes upstream send what it holds back until a Sync (once per wait). */
static void barrier_wait(struct gw_session *s)
{
    unstage(s);
    if (!s->flush_sent) {
        static const uint8_t flush[] = {'H', 0, 0, 0, 4};
        evbuffer_add(gw_conn_output(s->upstream), flush, sizeof flush);
        s->flush_sent = true;
    }
    s->waiting_barrier = true;
}

/* Whether a Query's text, or the SQL behind an Execute's portal, may start
 * COPY FROM STDIN (unknown SQL may). With a statement hook, decide looked
 * the portal up for this Execute already. */
static bool message_may_copy(struct gw_session *s, char type, const uint8_t *body, size_t len)
{
    if (type == 'Q') {
        for (size_t i = 0; i + 4 <= len; i++)
            if (strncasecmp((const char *)body + i, "copy", 4) == 0)
                return true;
        return false;
    }
    if (type != 'E')
        return false;
    if (s->gw->cfg.hooks.statement)
        return s->decided_may_copy;
    char kind;
    const char *portal;
    struct gw_portal_info pi;
    if (pgwire_parse_named(body, len, false, &kind, &portal) < 0 || gw_tracking_portal(&s->tracking, portal, &pi) != 1)
        return true;
    return text_may_copy(pi.sql);
}

static void c2u_relay(struct gw_session *s)
{
    struct gateway *gw = s->gw;
    const bool hooks = gw->cfg.hooks.statement || gw->cfg.hooks.row_description;
    while (s->phase == GW_RELAY && !s->held && !s->waiting_barrier) {
        struct evbuffer *in = gw_conn_input(s->client);
        struct evbuffer *out = gw_conn_output(s->upstream);
        if (pause_if_full(s, true))
            return;
        size_t avail = evbuffer_get_length(in);
        if (s->c2u_remaining) {
            if (!stream_rest(in, out, &s->c2u_remaining, s->c2u_discard))
                return;
            continue;
        }
        if (avail < PGWIRE_HEADER_LEN)
            return;
        uint8_t hdr[PGWIRE_HEADER_LEN];
        char err[256];
        evbuffer_copyout(in, hdr, sizeof hdr);
        long blen = pgwire_check_header(hdr, gw->cfg.max_message_size, err, sizeof err);
        if (blen < 0) {
            gw_session_fail(s, (pgwire_get_u32(hdr + 1) >= 4) ? "54000" : "08P01", err);
            return;
        }
        char type = (char)hdr[0];
        size_t total = (size_t)blen + PGWIRE_HEADER_LEN;
        if (type == 'X') { /* Terminate: pass it on (after what came before) and end */
            unstage(s);
            evbuffer_remove_buffer(in, out, total);
            gw_conn_flush(s->upstream);
            session_close(s);
            return;
        }
        if (!hooks) {
            s->c2u_remaining = pass_run(s, in, total, avail, c2u_run_member);
            s->c2u_discard = false;
            continue;
        }
        if (!(type && strchr("QPBEFCSD", type))) {
            unstage(s);
            if (!s->skip_to_sync)
                count_copy_message(s, type);
            s->c2u_remaining = total;
            s->c2u_discard = s->skip_to_sync;
            continue;
        }
        if (s->skip_to_sync && type != 'S') {
            s->c2u_remaining = total;
            s->c2u_discard = true;
            continue;
        }
        /* What upstream will skip or ignore must not be counted as answered. */
        if (s->copy_in && type == 'S') { /* upstream ignores it: so does the gateway */
            s->copy_syncs_dropped += !s->copy_data_sent;
            s->c2u_remaining = total;
            s->c2u_discard = true;
            continue;
        }
        if (s->copy_in) {
            protocol_error(s, "client", "a message other than CopyData, CopyDone, CopyFail, Flush or Sync during"
                                        " COPY FROM STDIN");
            return;
        }
        if (copy_may_start(s)) {
            barrier_wait(s);
            return;
        }
        if ((type == 'Q' || type == 'F') && s->unsynced) {
            /* After extended-protocol messages with no Sync (asyncpg's COPY
             * does this), upstream runs it, or skips it when one of them
             * failed: wait until they are answered to know which. */
            if (s->inflight.len || s->tracking.npending) {
                barrier_wait(s);
                return;
            }
            if (s->upstream_skipping) { /* upstream would drop it unanswered: so does the gateway */
                s->c2u_remaining = total;
                s->c2u_discard = true;
                continue;
            }
        }
        if (avail < total)
            return; /* wait for the whole message (bounded by max_message_size) */
        const uint8_t *body = evbuffer_pullup(in, (ev_ssize_t)total) + PGWIRE_HEADER_LEN;
        int verdict = GATEWAY_ALLOW;
        struct gateway_refusal refusal = {0};
        if ((type == 'Q' || type == 'E' || type == 'F') && gw->cfg.hooks.statement) {
            if (s->have_verdict) {
                verdict = (int)s->verdict;
                refusal = s->verdict_refusal;
                s->have_verdict = false;
            } else {
                verdict = decide(s, type, body, (size_t)blen, &refusal);
            }
            if (verdict == -1) {
                unstage(s); /* the barrier waits for their answers */
                s->waiting_barrier = true;
                return;
            }
            if (verdict == -2) {
                protocol_error(s, "client", "malformed message");
                return;
            }
            if (verdict == GATEWAY_HOLD) {
                s->held = true; /* keep reading (to see the client go away) up to the limit */
                if (!refusal.hold_silent)
                    send_hold_notice(s, &refusal);
                return;
            }
        }
        /* Tracking records what the message defines (a refused one defines nothing). */
        int rc = verdict == GATEWAY_REFUSE ? 0 : gw_tracking_client(&s->tracking, type, body, (size_t)blen);
        if (rc == GW_TRACKING_FULL) {
            /* What the session's statements and portals hold is bounded: the
             * message fails as PostgreSQL's own would, and the rest of its
             * pipeline is skipped to Sync (an Execute marker does both). */
            verdict = GATEWAY_REFUSE;
            snprintf(refusal.sqlstate, sizeof refusal.sqlstate, "54000");
            snprintf(refusal.message, sizeof refusal.message,
                     "hoopctl: this %s would make the session's prepared statements and open portals hold more"
                     " than the gateway's limit of %zu MiB (SQL text and parameters): close or deallocate some,"
                     " or end the transaction",
                     type == 'P' ? "Parse" : "Bind", gw->cfg.max_held_bytes >> 20);
            type = 'E';
        }
        if (verdict == GATEWAY_REFUSE) {
            evbuffer_drain(in, total);
            unstage(s);
            send_refusal_marker(s, type, &refusal);
            note_upstream_message(s, type == 'E' ? 'E' : 'Q');
            if (inflight_push(s, type == 'E' ? 'E' : 'Q', GATEWAY_STATEMENT_SIMPLE, true, false) < 0) {
                protocol_error(s, "client", "more messages awaiting upstream's answers than the gateway counts");
                return;
            }
            continue;
        }
        if (rc < 0) {
            protocol_error(s, "client", "malformed or too many extended-protocol messages");
            return;
        }
        if (rc > 0) {
            unstage(s);
            s->waiting_barrier = true;
            return;
        }
        if (type == 'S')
            s->skip_to_sync = false;
        /* Parse, Bind, Describe and Close wait for the Execute after them (a
         * staging past the buffer limit goes on at once); anything else
         * that goes upstream, and the Describe injected for an Execute,
         * goes after them. */
        bool stage = gw->cfg.hooks.statement && strchr("PBDC", type) &&
                     evbuffer_get_length(s->staged) + total <= buffer_limit(s);
        if (!stage)
            unstage(s);
        if (type == 'E' && gw->cfg.hooks.row_description && inject_describe(s, body, (size_t)blen) < 0) {
            protocol_error(s, "client", "malformed Execute");
            return;
        }
        note_upstream_message(s, type);
        if ((type == 'Q' || type == 'F' || type == 'E' || type == 'S') &&
            inflight_push(s, type == 'F' ? 'Q' : type,
                          type == 'Q'   ? GATEWAY_STATEMENT_SIMPLE
                          : type == 'F' ? GATEWAY_STATEMENT_FUNCTION_CALL
                                        : GATEWAY_STATEMENT_EXECUTE,
                          false, tracks_answers(gw) && message_may_copy(s, type, body, (size_t)blen)) < 0) {
            protocol_error(s, "client", "more messages awaiting upstream's answers than the gateway counts");
            return;
        }
        evbuffer_remove_buffer(in, stage ? s->staged : out, total);
    }
}

void gw_session_resume(struct gw_session *s, enum gateway_verdict v, const struct gateway_refusal *r)
{
    if (!s->held)
        return;
    s->held = false;
    s->have_verdict = true;
    s->verdict = v == GATEWAY_ALLOW ? GATEWAY_ALLOW : GATEWAY_REFUSE;
    memset(&s->verdict_refusal, 0, sizeof s->verdict_refusal);
    if (r)
        s->verdict_refusal = *r;
    gw_conn_read_on(s->client);
    c2u_process(s);
}

/* ---- relay: upstream to client ----------------------------------------- */

static void clear_filter(struct gw_session *s)
{
    if (!s->filter_active)
        return;
    free(s->filter.mask);
    memset(&s->filter, 0, sizeof s->filter);
    s->filter_active = false;
}

/* An upstream error that is one of our refusal markers becomes the refusal. */
static bool rewrite_refusal(struct gw_session *s, const uint8_t *body, size_t len)
{
    char m[512];
    if (!pgwire_error_field(body, len, 'M', m, sizeof m))
        return false;
    const char *at = strstr(m, s->gw->refusal_marker);
    if (!at)
        return false;
    at += strlen(s->gw->refusal_marker);
    uint32_t seq = 0;
    if (*at == '_')
        seq = (uint32_t)strtoul(at + 1, NULL, 10);
    unsigned slot = seq % 16;
    const char *state = "42501", *msg = "statement refused by gateway policy";
    if (s->refusals[slot].seq == seq && seq) {
        state = s->refusals[slot].sqlstate;
        msg = s->refusals[slot].message;
    }
    if (s->refusals_outstanding)
        s->refusals_outstanding--;
    struct buf e = {0};
    if (pgwire_build_error(&e, false, "ERROR", state, msg) == 0)
        evbuffer_add(gw_conn_output(s->client), e.data, e.len);
    buf_free(&e);
    return true;
}

/* An upstream ErrorResponse or NoticeResponse (type) whose text the
 * error_redact hook hides: the severity, SQLSTATE and identifier fields
 * stay; the message says why; the fields that may quote data values
 * (detail, hint, context, query, position) are dropped. True when the
 * rewritten message was queued for the client. */
/* PostgreSQL's condition name of the commonest SQLSTATEs (its Appendix A),
 * so that a hidden error still says what kind it is; NULL for the rest. */
static const char *sqlstate_name(const char *state)
{
    static const char *const names[][2] = {
        {"42703", "undefined_column"},      {"42P01", "undefined_table"},
        {"42883", "undefined_function"},    {"42702", "ambiguous_column"},
        {"42804", "datatype_mismatch"},     {"42846", "cannot_coerce"},
        {"22P02", "invalid_text_representation"}, {"22007", "invalid_datetime_format"},
        {"22008", "datetime_field_overflow"}, {"22003", "numeric_value_out_of_range"},
        {"22001", "string_data_right_truncation"}, {"22012", "division_by_zero"},
        {"23505", "unique_violation"},      {"23503", "foreign_key_violation"},
        {"23502", "not_null_violation"},    {"23514", "check_violation"},
        {"42501", "insufficient_privilege"}, {"42601", "syntax_error"},
        {"21000", "cardinality_violation"}, {"P0001", "raise_exception"},
        {"42P07", "duplicate_table"},       {"42P06", "duplicate_schema"},
        {"42710", "duplicate_object"},      {"42701", "duplicate_column"},
        {"42723", "duplicate_function"},    {"3F000", "invalid_schema_name"},
        {"42704", "undefined_object"},      {"40001", "serialization_failure"},
        {"40P01", "deadlock_detected"},     {"55P03", "lock_not_available"},
        {"57014", "query_canceled"},        {"25P02", "in_failed_sql_transaction"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(state, names[i][0]) == 0)
            return names[i][1];
    return NULL;
}

static bool redact_error(struct gw_session *s, char type, const uint8_t *body, size_t len)
{
    struct buf *e = &s->redacted;
    e->len = 0;
    const struct gateway_hooks *h = &s->gw->cfg.hooks;
    char state[6] = "";
    pgwire_error_field(body, len, 'C', state, sizeof state);
    if (!h->error_redact || !h->error_redact(h->user, &s->info, state))
        return false;
    static const char keep[] = "SVCstcdn";
    size_t start;
    int rc = pgwire_msg_begin(e, type, &start);
    for (const char *k = keep; *k && rc == 0; k++) {
        char v[256];
        if (pgwire_error_field(body, len, *k, v, sizeof v))
            rc |= buf_append(e, k, 1) | pgwire_put_cstr(e, v);
    }
    char msg[192];
    const char *name = sqlstate_name(state);
    snprintf(msg, sizeof msg,
             "hoopctl: the database's %s text is hidden: the statement may read masked columns (SQLSTATE %s%s%s)",
             type == 'E' ? "error" : "notice", state[0] ? state : "unknown", name ? " " : "", name ? name : "");
    rc |= buf_append(e, "M", 1) | pgwire_put_cstr(e, msg) | buf_append(e, "", 1);
    if (rc == 0 && pgwire_msg_finish(e, start) == 0) {
        evbuffer_add(gw_conn_output(s->client), e->data, e->len);
    } else {
        e->len = 0;
        protocol_error(s, "gateway", "out of memory while hiding an error's text");
    }
    return true;
}

/* With a statement hook, messages that start "hoopctl:" are the gateway's
 * own (a hold, a refusal): an upstream error or notice whose text starts so
 * (a function's RAISE NOTICE 'hoopctl: statement held for review ...') goes
 * to the client as "database: hoopctl: ...", every other field as it was,
 * so that no client (an MCP server waiting on a hold) takes it for one.
 * With a text_mask hook, every field but the severity and SQLSTATE goes
 * through it ("invalid input syntax for type integer: \"<a card number>\"").
 * True when the rewritten message was queued (or the session failed);
 * false to forward the original. A malformed body is forwarded as it came
 * (the client reads it as it can). */
static bool mark_foreign_hoopctl(struct gw_session *s, char type, const uint8_t *body, size_t len)
{
    static const char mark[] = "hoopctl:", prefix[] = "database: ";
    const struct gateway_hooks *h = &s->gw->cfg.hooks;
    if (!h->statement && !h->text_mask)
        return false;
    const uint8_t *p = body, *end = body + len;
    bool found = false;
    while (p < end && *p) { /* fields: a code byte and a string, then a 0 */
        const uint8_t *nul = memchr(p + 1, 0, (size_t)(end - p - 1));
        if (!nul)
            return false;
        if (h->statement && *p == 'M' && (size_t)(nul - p - 1) >= sizeof mark - 1 &&
            strncasecmp((const char *)p + 1, mark, sizeof mark - 1) == 0)
            found = true;
        p = nul + 1;
    }
    if ((!found && !h->text_mask) || p >= end)
        return false;
    struct buf *e = &s->redacted;
    e->len = 0;
    size_t start;
    bool changed = found, failed = false;
    int rc = pgwire_msg_begin(e, type, &start);
    for (p = body; rc == 0 && *p; p += strlen((const char *)p) + 1) {
        const char *v = (const char *)p + 1;
        char *masked = NULL;
        size_t mlen = 0;
        int m = 0;
        if (h->text_mask && *p != 'S' && *p != 'V' && *p != 'C')
            m = h->text_mask(h->user, &s->info, v, strlen(v), &masked, &mlen);
        if (m < 0) {
            failed = true;
            break;
        }
        rc |= buf_append(e, p, 1);
        if (h->statement && *p == 'M' && strncasecmp(v, mark, sizeof mark - 1) == 0)
            rc |= buf_append_str(e, prefix);
        rc |= pgwire_put_cstr(e, m == 1 ? masked : v);
        changed = changed || m == 1;
        free(masked);
    }
    rc |= buf_append(e, "", 1);
    /* out of memory with a text mask: later fields were not read, so the
     * message as it came may hold what it would mask (fail closed) */
    if (failed || (rc != 0 && (changed || h->text_mask))) {
        e->len = 0;
        protocol_error(s, "gateway", failed ? "cannot mask a database message's text" :
                                              "out of memory while masking a database message's text");
        return true;
    }
    if (changed && rc == 0 && pgwire_msg_finish(e, start) == 0) {
        evbuffer_add(gw_conn_output(s->client), e->data, e->len);
        return true;
    }
    e->len = 0;
    return false;
}

/* A NotificationResponse's payload or a ParameterStatus's value through the
 * text_mask hook: the message (type; body's first `keep` bytes and the
 * string at `text`, then what follows it) rebuilt with the masked text.
 * 1 when it was queued for the client, 0 to forward it as it came, -1 when
 * the session was failed. */
static int mask_message_text(struct gw_session *s, char type, const uint8_t *body, size_t len, size_t text_at)
{
    const struct gateway_hooks *h = &s->gw->cfg.hooks;
    if (!h->text_mask || text_at >= len)
        return 0;
    const char *text = (const char *)body + text_at;
    const uint8_t *nul = memchr(text, 0, len - text_at);
    if (!nul)
        return 0; /* malformed: forwarded as it came, the client reads it as it can */
    char *masked = NULL;
    size_t mlen = 0;
    int m = h->text_mask(h->user, &s->info, text, (size_t)((const char *)nul - text), &masked, &mlen);
    if (m == 0)
        return 0;
    struct buf out = {0};
    size_t start;
    int rc = m < 0 ? -1 : 0;
    if (rc == 0) {
        rc = pgwire_msg_begin(&out, type, &start) | buf_append(&out, body, text_at) | pgwire_put_cstr(&out, masked) |
             buf_append(&out, nul + 1, (size_t)(body + len - (nul + 1)));
        if (rc == 0)
            rc = pgwire_msg_finish(&out, start);
    }
    if (rc == 0)
        evbuffer_add(gw_conn_output(s->client), out.data, out.len);
    buf_free(&out);
    free(masked);
    if (rc != 0) {
        protocol_error(s, "gateway", "cannot mask a notification's payload or a parameter's value");
        return -1;
    }
    return 1;
}

/* The NotificationResponse body (pid, channel, payload) to the client with
 * its payload replaced. 0, or -1 when the session was failed. */
static int redact_notification(struct gw_session *s, const uint8_t *body, size_t len)
{
    const uint8_t *channel = body + 4, *end = body + len;
    const uint8_t *nul = len > 4 ? memchr(channel, 0, (size_t)(end - channel)) : NULL;
    if (!nul || !memchr(nul + 1, 0, (size_t)(end - nul - 1))) {
        protocol_error(s, "upstream", "malformed NotificationResponse");
        return -1;
    }
    struct buf m = {0};
    size_t start;
    int rc = pgwire_msg_begin(&m, 'A', &start) | pgwire_put_i32(&m, (int32_t)pgwire_get_u32(body)) |
             pgwire_put_cstr(&m, (const char *)channel) |
             pgwire_put_cstr(&m, "hoopctl: the payload is hidden: the statement may read masked columns");
    if (rc == 0 && pgwire_msg_finish(&m, start) == 0)
        evbuffer_add(gw_conn_output(s->client), m.data, m.len);
    buf_free(&m);
    if (rc != 0) {
        protocol_error(s, "gateway", "out of memory while hiding a notification's payload");
        return -1;
    }
    return 0;
}

static void install_filter(struct gw_session *s, const uint8_t *body, size_t len)
{
    const struct gateway_hooks *h = &s->gw->cfg.hooks;
    clear_filter(s);
    struct pgwire_column *cols = NULL;
    int n = pgwire_parse_row_description(body, len, &cols);
    if (n < 0) {
        protocol_error(s, "upstream", "malformed RowDescription");
        return;
    }
    struct gateway_row_filter f = {0};
    if (h->row_description(h->user, &s->info, cols, n, &f)) {
        if (!f.filter || !f.mask || f.ncols != n) {
            free(f.mask);
            gw_session_fail(s, "XX000", "row filter set up incorrectly; closing the session (fail closed)");
        } else {
            s->filter = f;
            s->filter_active = true;
        }
    } else {
        free(f.mask);
    }
    free(cols);
}

/* Rewrite a DataRow through the installed filter and write it to the client. */
static int filter_row(struct gw_session *s, const uint8_t *body, size_t len)
{
    const uint8_t **vals;
    int32_t *lens;
    int n = pgwire_parse_data_row(body, len, &vals, &lens);
    if (n < 0 || n != s->filter.ncols) {
        free(vals);
        free(lens);
        return -1;
    }
    struct buf m = {0}, v = {0};
    size_t start;
    int rc = pgwire_msg_begin(&m, 'D', &start) | pgwire_put_i16(&m, (int16_t)n);
    for (int i = 0; i < n && rc == 0; i++) {
        if (!s->filter.mask[i]) {
            rc |= pgwire_put_i32(&m, lens[i]);
            if (lens[i] > 0)
                rc |= buf_append(&m, vals[i], (size_t)lens[i]);
            continue;
        }
        bool is_null = false;
        buf_reset(&v);
        if (s->filter.filter(s->filter.user, &s->info, i, vals[i], lens[i], 0, &v, &is_null) < 0 ||
            v.len > 0x7fffffff) {
            rc = -1;
            break;
        }
        if (is_null) {
            rc |= pgwire_put_i32(&m, -1);
        } else {
            rc |= pgwire_put_i32(&m, (int32_t)v.len);
            rc |= buf_append(&m, v.data, v.len);
        }
    }
    if (rc == 0)
        rc = pgwire_msg_finish(&m, start);
    if (rc == 0)
        evbuffer_add(gw_conn_output(s->client), m.data, m.len);
    buf_free(&m);
    buf_free(&v);
    free(vals);
    free(lens);
    return rc;
}

static int start_copy_filter(struct gw_session *s, const uint8_t *body, size_t len)
{
    const struct gateway_hooks *h = &s->gw->cfg.hooks;
    struct pgwire_reader r;
    pgwire_reader_init(&r, body, len);
    int format = pgwire_read_u8(&r);
    int16_t ncols = pgwire_read_i16(&r);
    if (r.bad || ncols < 0)
        return -1;
    pgwire_read_bytes(&r, (size_t)ncols * 2);
    if (!pgwire_reader_done(&r))
        return -1;
    struct gateway_copy_filter f = {0};
    s->copy_filter_active = h->copy_out(h->user, &s->info, ncols, format, &f) && f.filter;
    s->copy_filter = f;
    if (s->copy_filter_active && f.notice) {
        struct buf m = {0};
        if (pgwire_build_error(&m, true, "NOTICE", "01000", f.notice) == 0)
            evbuffer_add(gw_conn_output(s->client), m.data, m.len);
        buf_free(&m);
    }
    return 0;
}

static int filter_copy_row(struct gw_session *s, const uint8_t *body, size_t len)
{
    struct buf m = {0}, row = {0};
    size_t start;
    int rc = s->copy_filter.filter(s->copy_filter.user, &s->info, body, len, &row);
    if (rc == 0)
        rc = pgwire_msg_begin(&m, 'd', &start) | buf_append(&m, row.data, row.len);
    if (rc == 0)
        rc = pgwire_msg_finish(&m, start);
    if (rc == 0)
        evbuffer_add(gw_conn_output(s->client), m.data, m.len);
    buf_free(&m);
    buf_free(&row);
    return rc;
}

/* Whether the gateway must see a whole upstream message of this type. */
static bool u2c_inspects(const struct gw_session *s, char type)
{
    const struct gateway_hooks *h = &s->gw->cfg.hooks;
    const bool tracking = h->statement || h->row_description;
    return type == 'K' || (type == 'T' && h->row_description) ||
           (tracks_answers(s->gw) && (type == 'C' || type == 'I' || type == 's' || type == 'G')) ||
           (type == 'H' && h->copy_out) || (type == 'd' && s->copy_filter_active) ||
           (type == 'D' && s->filter_active) || type == 'E' || /* errors are rare: see FATAL */
           (type == 'N' && (h->error_redact || h->notice || h->text_mask)) ||
           (type == 'A' && (h->notification_redact || h->text_mask)) || (type == 'S' && h->text_mask) ||
           (type == 'Z' && h->idle) || (tracking && type && strchr("123EZnStT", type));
}

/* An upstream message passes untouched: the end of a result ends its filters. */
static void u2c_passes(struct gw_session *s, char type)
{
    if (s->copy_filter_active && (type == 'c' || type == 'E' || type == 'Z'))
        s->copy_filter_active = false;
    if (s->filter_active && type && strchr("CIZsHE", type))
        clear_filter(s);
}

static bool u2c_run_member(struct gw_session *s, char type)
{
    if (u2c_inspects(s, type))
        return false;
    u2c_passes(s, type);
    return true;
}

#define GW_PASS_RUN_MAX (64 * 1024)

/* A message of `first` bytes passes through untouched; extend the run with
 * the whole messages after it that `member` also lets through, so that one
 * evbuffer_remove_buffer moves them all (a result's DataRows, say). */
static size_t pass_run(struct gw_session *s, struct evbuffer *in, size_t first, size_t avail,
                       bool (*member)(struct gw_session *, char))
{
    size_t run = first;
    struct evbuffer_ptr at;
    if (run >= avail || evbuffer_ptr_set(in, &at, run, EVBUFFER_PTR_SET) < 0)
        return run;
    while (run < GW_PASS_RUN_MAX && avail - run >= PGWIRE_HEADER_LEN) {
        uint8_t hdr[PGWIRE_HEADER_LEN];
        char err[160];
        if (evbuffer_copyout_from(in, &at, hdr, sizeof hdr) != (ev_ssize_t)sizeof hdr)
            break;
        long blen = pgwire_check_header(hdr, s->gw->cfg.max_message_size, err, sizeof err);
        if (blen < 0 || (size_t)blen + PGWIRE_HEADER_LEN > avail - run || !member(s, (char)hdr[0]))
            break; /* the main loop takes it from here */
        size_t n = (size_t)blen + PGWIRE_HEADER_LEN;
        run += n;
        if (run >= avail || evbuffer_ptr_set(in, &at, n, EVBUFFER_PTR_ADD) < 0)
            break;
    }
    return run;
}

static void u2c_relay(struct gw_session *s)
{
    struct gateway *gw = s->gw;
    const struct gateway_hooks *h = &gw->cfg.hooks;
    const bool tracking = h->statement || h->row_description;
    bool wake_client_side = false;
    while (s->phase == GW_RELAY) {
        struct evbuffer *in = gw_conn_input(s->upstream);
        struct evbuffer *out = gw_conn_output(s->client);
        if (pause_if_full(s, false))
            break;
        size_t avail = evbuffer_get_length(in);
        if (s->u2c_remaining) {
            if (!stream_rest(in, out, &s->u2c_remaining, false))
                break;
            if (s->u2c_remaining == 0 && evbuffer_get_length(s->client_inject))
                evbuffer_add_buffer(out, s->client_inject);
            continue;
        }
        if (avail < PGWIRE_HEADER_LEN)
            break;
        uint8_t hdr[PGWIRE_HEADER_LEN];
        char err[256];
        evbuffer_copyout(in, hdr, sizeof hdr);
        long blen = pgwire_check_header(hdr, gw->cfg.max_message_size, err, sizeof err);
        if (blen < 0) {
            protocol_error(s, "upstream", err);
            return;
        }
        char type = (char)hdr[0];
        size_t total = (size_t)blen + PGWIRE_HEADER_LEN;
        if (!u2c_inspects(s, type)) {
            u2c_passes(s, type);
            s->u2c_remaining = pass_run(s, in, total, avail, u2c_run_member);
            continue;
        }
        if (avail < total)
            break;
        const uint8_t *body = evbuffer_pullup(in, (ev_ssize_t)total) + PGWIRE_HEADER_LEN;
        bool forward = true;
        note_answer_position(s);
        switch (type) {
        case 'K': /* the real key never reaches the client */
            forward = false;
            break;
        case 'T':
            forward = !(tracking && gw_tracking_upstream(&s->tracking, 'T'));
            if (h->row_description)
                install_filter(s, body, (size_t)blen);
            break;
        case 'G':
            if (tracks_answers(gw) && copy_in_started(s) < 0)
                return;
            break;
        case 'H':
            if (start_copy_filter(s, body, (size_t)blen) < 0) {
                protocol_error(s, "upstream", "malformed CopyOutResponse");
                return;
            }
            break;
        case 'd':
            if (filter_copy_row(s, body, (size_t)blen) < 0) {
                gw_session_fail(s, "XX000", "COPY filter failed; closing the session (fail closed)");
                return;
            }
            forward = false;
            break;
        case 't':
            gw_tracking_param_description(&s->tracking, body, (size_t)blen);
            break;
        case 'n':
            forward = !gw_tracking_upstream(&s->tracking, 'n');
            clear_filter(s);
            break;
        case 'D':
            if (filter_row(s, body, (size_t)blen) < 0) {
                gw_session_fail(s, "XX000", "row filter failed; closing the session (fail closed)");
                return;
            }
            forward = false;
            break;
        case 'E': {
            clear_filter(s);
            s->copy_filter_active = false;
            if (copy_failed(s) < 0) /* an error ends copy-in mode; the client may not end it */
                return;
            /* One of an extended segment (not a Query's own): upstream skips
             * what comes before the next Sync, a Query too. */
            if (tracks_answers(gw) && (s->inflight.len == 0 || s->inflight.items[s->inflight.head].type != 'Q'))
                s->upstream_skipping = true;
            if (s->refusals_outstanding && rewrite_refusal(s, body, (size_t)blen))
                forward = false;
            else if (redact_error(s, 'E', body, (size_t)blen) || mark_foreign_hoopctl(s, 'E', body, (size_t)blen)) {
                forward = false;
                if (s->redacted.len > PGWIRE_HEADER_LEN) { /* hooks see what the client got */
                    body = s->redacted.data + PGWIRE_HEADER_LEN;
                    blen = (long)(s->redacted.len - PGWIRE_HEADER_LEN);
                }
            }
            /* Upstream is ending the session with its own FATAL; when it
             * then closes, the client needs no second error from us. */
            char severity[16];
            if (pgwire_error_field(body, (size_t)blen, 'V', severity, sizeof severity) &&
                (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0))
                s->upstream_said_fatal = true;
            break;
        }
        case 'A': /* pg_notify(channel, <a masked value>) */
            if (h->notification_redact && h->notification_redact(h->user, &s->info)) {
                forward = false;
                if (redact_notification(s, body, (size_t)blen) < 0)
                    return;
            } else if (h->text_mask && blen > 4) { /* the payload: after the pid and the channel */
                const uint8_t *cnul = memchr(body + 4, 0, (size_t)blen - 4);
                int m = cnul ? mask_message_text(s, 'A', body, (size_t)blen, (size_t)(cnul + 1 - body)) : 0;
                if (m < 0)
                    return;
                forward = m == 0;
            }
            break;
        case 'N': { /* RAISE NOTICE '%', <a masked value> quotes it like an error */
            const uint8_t *shown = body;
            size_t shown_len = (size_t)blen;
            if (redact_error(s, 'N', body, (size_t)blen) || mark_foreign_hoopctl(s, 'N', body, (size_t)blen)) {
                forward = false;
                if (s->redacted.len > PGWIRE_HEADER_LEN) {
                    shown = s->redacted.data + PGWIRE_HEADER_LEN;
                    shown_len = s->redacted.len - PGWIRE_HEADER_LEN;
                }
            }
            if (h->notice) {
                char severity[16] = "", message[1024] = "";
                pgwire_error_field(shown, shown_len, 'S', severity, sizeof severity);
                pgwire_error_field(shown, shown_len, 'M', message, sizeof message);
                h->notice(h->user, &s->info, severity, message);
            }
            break;
        }
        case 'S': {
            char why[256];
            if (gw_parameter_status_refusal(body, (size_t)blen, why, sizeof why)) {
                gw_session_fail(s, "0A000", why);
                return;
            }
            if (h->statement)
                gw_note_parameter_status(s, body, (size_t)blen);
            if (h->text_mask) { /* the value: after the name */
                const uint8_t *nnul = memchr(body, 0, (size_t)blen);
                int m = nnul ? mask_message_text(s, 'S', body, (size_t)blen, (size_t)(nnul + 1 - body)) : 0;
                if (m < 0)
                    return;
                forward = m == 0;
            }
            break;
        }
        case 'Z':
            clear_filter(s);
            s->copy_filter_active = false;
            s->upstream_skipping = false;
            s->copy_syncs_dropped = 0;
            if (blen == 1 && (body[0] == 'I' || body[0] == 'T' || body[0] == 'E'))
                s->info.txn_status = (char)body[0];
            note_ready(s);
            break;
        case 'C':
        case 'I':
        case 's':
            u2c_passes(s, type); /* the end of a result ends its filters */
            s->copy_syncs_dropped = 0; /* a COPY that ended well ignored them */
            break;
        default:
            break;
        }
        if (type && strchr("CIsEZ", type))
            inflight_answer(s, type, body, (size_t)blen);
        if (tracking && (type && strchr("123EZ", type))) {
            gw_tracking_upstream(&s->tracking, type);
            if (type == 'Z' && blen >= 1 && body[0] == 'I')
                gw_tracking_idle(&s->tracking);
        }
        if (s->waiting_barrier) { /* an answer came: look again */
            s->waiting_barrier = false;
            s->flush_sent = false;
            wake_client_side = true;
            if (!s->held && !s->c2u_paused) /* reading stopped at the limit while it waited */
                gw_conn_read_on(s->client);
        }
        if (s->phase != GW_RELAY)
            return;
        if (forward)
            evbuffer_remove_buffer(in, out, total);
        else
            evbuffer_drain(in, total);
        if (evbuffer_get_length(s->client_inject))
            evbuffer_add_buffer(out, s->client_inject);
    }
    if (wake_client_side && s->phase == GW_RELAY)
        c2u_process(s);
}

static void flush_both(struct gw_session *s)
{
    if (s->phase != GW_RELAY)
        return;
    /* One write per side for everything this pass queued (see conn.c). */
    gw_conn_flush(s->upstream);
    gw_conn_flush(s->client);
    relay_wrote(NULL, s); /* a paused side may have drained right here */
}

static void c2u_process(struct gw_session *s)
{
    c2u_relay(s);
    flush_both(s);
}

static void u2c_process(struct gw_session *s)
{
    u2c_relay(s);
    flush_both(s);
}

static void session_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_session *s = arg;
    size_t low = buffer_limit(s) / 2;
    if (s->phase == GW_RELAY && s->u2c_paused && queued(s->client) <= low) {
        s->u2c_paused = false;
        gw_conn_read_on(s->upstream);
        u2c_process(s);
    }
    if (s->phase == GW_RELAY && s->c2u_paused && queued(s->upstream) <= low) {
        s->c2u_paused = false;
        if (!s->held)
            gw_conn_read_on(s->client);
        c2u_process(s);
    }
}

/* ---- connection callbacks ---------------------------------------------- */

/* While nothing takes the client's input (connecting upstream, a held
 * statement, a barrier waiting for upstream's answers), reading goes on up
 * to the buffer limit only (to see the client go away); it resumes when the
 * relay starts, the hold is resolved, or the barrier clears. */
static void bound_client_input(struct gw_session *s)
{
    bool idle = s->phase == GW_RELAY ? s->held || s->waiting_barrier : s->phase > GW_CLIENT_AUTH;
    if (idle && evbuffer_get_length(gw_conn_input(s->client)) >= buffer_limit(s))
        gw_conn_read_off(s->client);
}

static void client_read(struct gw_conn *c, void *arg)
{
    (void)c;
    struct gw_session *s = arg;
    if (s->phase == GW_CLIENT_STARTUP)
        client_startup_read(s);
    else if (s->phase == GW_CLIENT_AUTH)
        client_auth_read(s);
    else if (s->phase == GW_RELAY && !s->held)
        c2u_process(s);
    if (s->phase == GW_CLOSING)
        evbuffer_drain(gw_conn_input(s->client), evbuffer_get_length(gw_conn_input(s->client)));
    else
        bound_client_input(s);
}

/* Bytes went to the client: a paused relay may go on, and a closing
 * session may go once everything is sent. */
static void client_write(struct gw_conn *c, void *arg)
{
    struct gw_session *s = arg;
    relay_wrote(c, s);
    if (s->phase == GW_CLOSING && queued(s->client) == 0) {
        evtimer_del(s->timer);
        struct timeval tv = {0, 0};
        evtimer_add(s->timer, &tv);
    }
}

static void client_event(struct gw_conn *c, short what, void *arg)
{
    (void)c;
    struct gw_session *s = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (s->phase == GW_CLOSING) {
            evtimer_del(s->timer);
            struct timeval tv = {0, 0};
            evtimer_add(s->timer, &tv);
            return;
        }
        log_debug("gateway", "session %llu: client went away", (unsigned long long)s->id);
        gw_conn_read_off(s->client);
        evbuffer_drain(gw_conn_output(s->client), queued(s->client));
        session_close(s);
    }
}

static void upstream_read(struct gw_conn *c, void *arg)
{
    (void)c;
    u2c_process(arg);
}

static void upstream_event(struct gw_conn *c, short what, void *arg)
{
    (void)c;
    struct gw_session *s = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        /* Whatever upstream said last (often a FATAL) is relayed first. */
        u2c_process(s);
        if (s->phase != GW_RELAY)
            return;
        if (s->u2c_remaining == 0 && evbuffer_get_length(gw_conn_input(s->upstream)) == 0) {
            if (s->upstream_said_fatal) {
                log_info("gateway", "session %llu: upstream ended the session", (unsigned long long)s->id);
                session_close(s);
                return;
            }
            gw_session_fail(s, "08006", "upstream PostgreSQL closed the connection");
        } else {
            gw_session_fail(s, "08P01", "upstream PostgreSQL closed the connection in the middle of a message");
        }
    }
}
