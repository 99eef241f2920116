/* listener.c — the gateway object: the loopback listener, optional client
 * TLS, the workers (event loops) and their session lists, holds resolved by
 * id, and an orderly shutdown. */
#include "internal.h"
#include "hoopctl/log.h"

#include <event2/thread.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

void gw_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr, int alen, void *arg)
{
    (void)l;
    struct gateway *gw = arg;
    struct gw_worker *w = &gw->workers[gw->next_worker++ % (unsigned)gw->nworkers];
    pthread_mutex_lock(&gw->lock);
    bool closing = gw->shutting_down;
    pthread_mutex_unlock(&gw->lock);
    if (closing || alen < 0 || (size_t)alen > sizeof(struct sockaddr_storage)) {
        evutil_closesocket(fd);
        return;
    }
    if (w == &gw->workers[0]) {
        gw_session_accept(w, fd, addr, alen);
        return;
    }
    struct gw_handoff *h = calloc(1, sizeof *h);
    if (!h) {
        evutil_closesocket(fd);
        return;
    }
    h->fd = fd;
    memcpy(&h->addr, addr, (size_t)alen);
    h->alen = alen;
    pthread_mutex_lock(&gw->lock);
    h->next = w->queue;   /* order among a burst of accepts does not matter */
    w->queue = h;
    pthread_mutex_unlock(&gw->lock);
    event_active(w->wake, EV_READ, 1);
}

/* accept() failed for a reason other than a retriable one: out of file
 * descriptors (EMFILE, ENFILE), of memory or buffers. The listening socket
 * stays readable, so libevent would call accept() again at once, forever:
 * accepts pause instead, and resume after GW_ACCEPT_PAUSE_MS (or when a
 * session ends and gives a descriptor back). The cause is logged once per
 * GW_ACCEPT_LOG_S while it lasts. */
#define GW_ACCEPT_PAUSE_MS 100
#define GW_ACCEPT_LOG_S 10

static void accepts_set(struct gateway *gw, bool on)
{
    struct evconnlistener *ls[] = {gw->listener, gw->unix_listener};
    for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++)
        if (ls[i])
            (on ? evconnlistener_enable : evconnlistener_disable)(ls[i]);
}

static void accept_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gateway *gw = arg;
    if (!gw->accepts_paused)
        return;
    gw->accepts_paused = false;
    accepts_set(gw, true);
}

void gw_on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    struct gateway *gw = arg;
    int err = EVUTIL_SOCKET_ERROR();
    int64_t now = util_monotonic_us();
    if (!gw->accept_logged_us || now - gw->accept_logged_us >= (int64_t)GW_ACCEPT_LOG_S * 1000000) {
        if (gw->accept_errors)
            log_warn("gateway", "cannot accept a connection: %s; accepts pause for %d ms each time (%llu more "
                     "time%s since the last message)", evutil_socket_error_to_string(err), GW_ACCEPT_PAUSE_MS,
                     (unsigned long long)gw->accept_errors, gw->accept_errors == 1 ? "" : "s");
        else
            log_warn("gateway", "cannot accept a connection: %s; accepts pause for %d ms each time (said again "
                     "at most every %d s while it lasts)", evutil_socket_error_to_string(err), GW_ACCEPT_PAUSE_MS,
                     GW_ACCEPT_LOG_S);
        gw->accept_logged_us = now;
        gw->accept_errors = 0;
    } else {
        gw->accept_errors++;
    }
    if (gw->accepts_paused || !gw->accept_retry)
        return;
    gw->accepts_paused = true;
    accepts_set(gw, false);
    struct timeval tv = {0, GW_ACCEPT_PAUSE_MS * 1000};
    evtimer_add(gw->accept_retry, &tv);
}

void gw_accepts_maybe_resume(struct gateway *gw)
{
    if (gw->accepts_paused && gw->accept_retry)
        event_active(gw->accept_retry, EV_TIMEOUT, 1);
}

/* Shut down (gracefully) the sessions of the calling worker's loop. */
static void worker_shutdown_sessions(struct gw_worker *w)
{
    for (struct gw_session *s = w->sessions; s; s = s->next)
        gw_session_shutdown(s);
}

/* On a worker's own thread: take the sockets handed to it, and shut down or
 * stop when asked. */
static void worker_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_worker *w = arg;
    struct gateway *gw = w->gw;
    pthread_mutex_lock(&gw->lock);
    struct gw_handoff *q = w->queue;
    w->queue = NULL;
    bool shutdown = w->want_shutdown, stop = w->want_stop, closing = gw->shutting_down;
    w->want_shutdown = false;
    pthread_mutex_unlock(&gw->lock);
    while (q) {
        struct gw_handoff *next = q->next;
        if (closing || stop)
            evutil_closesocket(q->fd);
        else
            gw_session_accept(w, q->fd, (struct sockaddr *)&q->addr, q->alen);
        free(q);
        q = next;
    }
    if (shutdown)
        worker_shutdown_sessions(w);
    if (stop) {
        while (w->sessions)
            gw_session_free(w->sessions);
        gw_cancels_free(w);
        event_base_loopbreak(w->base);
    }
}

static void *worker_main(void *arg)
{
    struct gw_worker *w = arg;
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* Workers 1..threads-1: a loop and a thread each. */
static int workers_start(struct gateway *gw, char *err, size_t errlen)
{
    /* The loops are woken from the listener's thread: their bases need
     * libevent's locking (a second call, after the caller's, changes nothing). */
    if (gw->nworkers > 1 && evthread_use_pthreads() < 0) {
        snprintf(err, errlen, "libevent has no thread support");
        return -1;
    }
    for (int i = 1; i < gw->nworkers; i++) {
        struct gw_worker *w = &gw->workers[i];
        if (!(w->base = event_base_new()) || !(w->wake = event_new(w->base, -1, 0, worker_wake, w))) {
            snprintf(err, errlen, "cannot make the event loop of thread %d", i);
            return -1;
        }
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            snprintf(err, errlen, "cannot start thread %d", i);
            return -1;
        }
        w->started = true;
    }
    return 0;
}

static void workers_stop(struct gateway *gw)
{
    for (int i = 1; i < gw->nworkers; i++) {
        struct gw_worker *w = &gw->workers[i];
        if (w->started) {
            pthread_mutex_lock(&gw->lock);
            w->want_stop = true;
            pthread_mutex_unlock(&gw->lock);
            event_active(w->wake, EV_READ, 1);
            pthread_join(w->thread, NULL);
        }
        for (struct gw_handoff *q = w->queue, *next; q; q = next) {
            next = q->next;
            evutil_closesocket(q->fd);
            free(q);
        }
        if (w->wake)
            event_free(w->wake);
        if (w->base)
            event_base_free(w->base);
    }
}

static int client_tls_context(struct gateway *gw, SSL_CTX **out, char *err, size_t errlen)
{
    const struct gateway_config *c = &gw->cfg;
    *out = NULL;
    if (!c->tls_cert_file && !c->tls_key_file)
        return 0;
    if (!c->tls_cert_file || !c->tls_key_file) {
        snprintf(err, errlen, "--tls-cert and --tls-key go together");
        return -1;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, c->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "cannot load the TLS certificate %s and key %s", c->tls_cert_file,
                 c->tls_key_file);
        SSL_CTX_free(ctx);
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    *out = ctx;
    return 0;
}

struct gateway *gateway_new(struct event_base *base, const struct gateway_config *cfg, char *err,
                            size_t errlen)
{
    struct gateway *gw = calloc(1, sizeof *gw);
    if (!gw) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    gw->base = base;
    gw->cfg = *cfg;
    pthread_mutex_init(&gw->lock, NULL);
    int threads = cfg->threads > 0 ? cfg->threads : 1;
    const struct gateway_hooks *h = &cfg->hooks;
    if (threads > GATEWAY_MAX_THREADS) {
        snprintf(err, errlen, "at most %d threads", GATEWAY_MAX_THREADS);
        free(gw);
        return NULL;
    }
    if (threads > 1 && (h->session_start || h->session_end || h->statement || h->hold_abandoned ||
                        h->row_description || h->copy_out || h->error_redact || h->idle ||
                        h->notification_redact || h->notice || h->statement_complete || h->text_mask) &&
        (!cfg->hooks_thread_safe || h->hold_abandoned)) {
        snprintf(err, errlen, "more than one thread needs hooks that are safe on several loops and hold nothing");
        free(gw);
        return NULL;
    }
    if (!(gw->workers = calloc((size_t)threads, sizeof *gw->workers))) {
        snprintf(err, errlen, "out of memory");
        free(gw);
        return NULL;
    }
    gw->nworkers = threads;
    for (int i = 0; i < threads; i++)
        gw->workers[i].gw = gw;
    gw->workers[0].base = base;
    if (!gw->cfg.max_message_size)
        gw->cfg.max_message_size = PGWIRE_DEFAULT_MAX_MESSAGE;
    if (!gw->cfg.max_held_bytes)
        gw->cfg.max_held_bytes = (size_t)256 << 20;
    if (gw->cfg.max_held_bytes < gw->cfg.max_message_size)
        gw->cfg.max_held_bytes = gw->cfg.max_message_size;
    if (!gw->cfg.buffer_limit)
        gw->cfg.buffer_limit = 256 * 1024;
    if (!gw->cfg.max_sessions) {
        gw->cfg.max_sessions = gateway_default_max_sessions();
    } else {
        size_t room = gateway_max_sessions_room();
        if (gw->cfg.max_sessions > room)
            log_warn("gateway", "%zu sessions may not all get file descriptors (the limit, ulimit -n, has room "
                     "for about %zu): past that, accepts pause until a session ends",
                     gw->cfg.max_sessions, room);
    }
    if (cfg->upstream_password && !(gw->upstream_password = strdup(cfg->upstream_password))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    gw->cfg.upstream_password = NULL;
    if (cfg->only_user && !(gw->cfg.only_user = gw->only_user = strdup(cfg->only_user))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (cfg->client_password) {
        /* PostgreSQL's default iteration count; the derivation runs once per gateway. */
        if (!*cfg->client_password ||
            pgwire_scram_secret_make(cfg->client_password, 4096, &gw->client_verifier) < 0) {
            snprintf(err, errlen, "cannot set up the client password");
            goto fail;
        }
        gw->client_auth = true;
    }
    gw->cfg.client_password = NULL;
    uint8_t rnd[8];
    char hex[17];
    util_random_bytes(rnd, sizeof rnd);
    util_hex_encode(rnd, sizeof rnd, hex);
    snprintf(gw->refusal_marker, sizeof gw->refusal_marker, "hoopctl_refused_%s", hex);
    for (int i = 0; i < gw->nworkers; i++) {
        struct gw_worker *w = &gw->workers[i];
        if (client_tls_context(gw, &w->client_tls, err, errlen) < 0 ||
            gw_upstream_tls_context(gw, &w->upstream_tls, err, errlen) < 0)
            goto fail;
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST}, *res = NULL;
    const char *host = cfg->listen_host ? cfg->listen_host : "127.0.0.1";
    if (getaddrinfo(host, cfg->listen_port ? cfg->listen_port : "0", &hints, &res) != 0 || !res) {
        snprintf(err, errlen, "invalid listen address %s (give an IP address)", host);
        goto fail;
    }
    gw->listener = evconnlistener_new_bind(base, gw_on_accept, gw,
                                           LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 128,
                                           res->ai_addr, (int)res->ai_addrlen);
    freeaddrinfo(res);
    if (!gw->listener) {
        snprintf(err, errlen, "cannot listen on %s:%s: %s", host, cfg->listen_port ? cfg->listen_port : "0",
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        goto fail;
    }
    if (!(gw->accept_retry = evtimer_new(base, accept_resume, gw))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    evconnlistener_set_error_cb(gw->listener, gw_on_accept_error);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(evconnlistener_get_fd(gw->listener), (struct sockaddr *)&ss, &sl);
    char ip[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        port = ntohs(in->sin_port);
        snprintf(gw->listen_address, sizeof gw->listen_address, "%s:%u", ip, port);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        port = ntohs(in6->sin6_port);
        snprintf(gw->listen_address, sizeof gw->listen_address, "[%s]:%u", ip, port);
    }
    if (workers_start(gw, err, errlen) < 0)
        goto fail;
    return gw;
fail:
    gateway_free(gw);
    return NULL;
}

int gateway_password_generate(char out[GATEWAY_PASSWORD_LEN + 1])
{
    uint8_t raw[GATEWAY_PASSWORD_LEN / 2];
    if (util_random_bytes(raw, sizeof raw) < 0)
        return -1;
    util_hex_encode(raw, sizeof raw, out);
    util_secure_zero(raw, sizeof raw);
    return 0;
}

#define GW_OWN_DESCRIPTORS 112 /* stdio, listeners, 16 loops' epoll and wake fds, log, spool, curl */

size_t gateway_max_sessions_room(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return SIZE_MAX;
    rlim_t own = GW_OWN_DESCRIPTORS + 2 * GATEWAY_OVER_CAP_SLOTS;
    return rl.rlim_cur > own ? (size_t)((rl.rlim_cur - own) / 3) : 0;
}

size_t gateway_default_max_sessions(void)
{
    size_t n = gateway_max_sessions_room();
    return n < 1 ? 1 : n > GATEWAY_MAX_SESSIONS_CEILING ? GATEWAY_MAX_SESSIONS_CEILING : n;
}

const char *gateway_listen_address(const struct gateway *gw)
{
    return gw->listen_address;
}

size_t gateway_session_count(struct gateway *gw)
{
    pthread_mutex_lock(&gw->lock);
    size_t n = gw->nsessions;
    pthread_mutex_unlock(&gw->lock);
    return n;
}

void gateway_shutdown(struct gateway *gw)
{
    pthread_mutex_lock(&gw->lock);
    gw->shutting_down = true;
    for (int i = 1; i < gw->nworkers; i++)
        gw->workers[i].want_shutdown = true;
    pthread_mutex_unlock(&gw->lock);
    if (gw->listener) {
        evconnlistener_free(gw->listener);
        gw->listener = NULL;
    }
    gw_unix_close(gw);
    if (gw->accept_retry)
        evtimer_del(gw->accept_retry);
    gw->accepts_paused = false;
    for (int i = 1; i < gw->nworkers; i++)
        if (gw->workers[i].started)
            event_active(gw->workers[i].wake, EV_READ, 1);
    worker_shutdown_sessions(&gw->workers[0]);
}

void gateway_free(struct gateway *gw)
{
    if (!gw)
        return;
    if (gw->listener)
        evconnlistener_free(gw->listener);
    gw_unix_close(gw);
    if (gw->accept_retry)
        event_free(gw->accept_retry);
    gw->accept_retry = NULL;
    gw->accepts_paused = false;
    if (gw->workers) {
        workers_stop(gw);
        while (gw->workers[0].sessions)
            gw_session_free(gw->workers[0].sessions);
        gw_cancels_free(&gw->workers[0]);
        for (int i = 0; i < gw->nworkers; i++) {
            SSL_CTX_free(gw->workers[i].client_tls);
            SSL_CTX_free(gw->workers[i].upstream_tls);
        }
        free(gw->workers);
    }
    pthread_mutex_destroy(&gw->lock);
    free(gw->only_user);
    if (gw->upstream_password) {
        util_secure_zero(gw->upstream_password, strlen(gw->upstream_password));
        free(gw->upstream_password);
    }
    util_secure_zero(&gw->client_verifier, sizeof gw->client_verifier);
    util_secure_zero(&gw->scram_salted, sizeof gw->scram_salted);
    free(gw);
}

int gateway_resolve(struct gateway *gw, uint64_t hold_id, enum gateway_verdict verdict,
                    const struct gateway_refusal *refusal)
{
    /* Holds need the statement hook, so the gateway has one thread: the
     * caller's, which runs every session. */
    for (struct gw_session *s = gw->workers[0].sessions; s; s = s->next) {
        if (s->held && s->hold_id == hold_id && s->phase == GW_RELAY) {
            gw_session_resume(s, verdict, refusal);
            return 0;
        }
    }
    return -1;
}
