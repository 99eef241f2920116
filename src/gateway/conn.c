/* conn.c — one socket of a gateway session, plain or with OpenSSL running
 * directly on it, with an input and an output evbuffer on the libevent loop:
 * a small bufferevent made so that a relay pass costs one read and one write
 * (one TLS record) per side, with no FIONREAD ioctl and no filter copies. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define GW_CONN_READ_CHUNK 16384 /* bytes per read: 4x this */
#define GW_CONN_TLS_WRITE 16384  /* bytes per SSL_write: at most one full record */

enum gw_conn_state { CONN_CONNECTING, CONN_HANDSHAKE, CONN_OPEN, CONN_DEAD };

struct gw_conn {
    evutil_socket_t fd;
    SSL *ssl;
    enum gw_conn_state state;
    struct event *rev, *wev, *notify;
    bool rev_added, wev_added;
    struct evbuffer *in, *out;
    bool read_on;             /* the owner wants input */
    bool handshake_wants_write;
    bool read_wants_write;    /* SSL_read needs the socket writable (TLS housekeeping) */
    bool write_wants_read;    /* SSL_write needs the socket readable */
    int tls_retry_len;        /* an SSL_write to repeat with the same length, or 0 */
    bool flush_scheduled;
    short pending;            /* BEV_EVENT_* to report from the loop */
    int sock_error;
    unsigned long tls_error;
    gw_conn_cb readcb, writecb;
    gw_conn_event_cb eventcb;
    void *arg;
};

static void conn_readable(evutil_socket_t fd, short what, void *arg);
static void conn_writable(evutil_socket_t fd, short what, void *arg);
static void conn_notify(evutil_socket_t fd, short what, void *arg);

/* SSL_get_error needs an empty error queue; emptying an empty one is not free. */
static void tls_clear_errors(void)
{
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

static void set_event(struct event *ev, bool *added, bool want)
{
    if (want && !*added)
        event_add(ev, NULL);
    else if (!want && *added)
        event_del(ev);
    *added = want;
}

/* Poll for what the state needs: epoll_ctl only when that changes. */
static void update_interest(struct gw_conn *c)
{
    bool r = false, w = false;
    switch (c->state) {
    case CONN_CONNECTING:
        w = true;
        break;
    case CONN_HANDSHAKE:
        r = !c->handshake_wants_write;
        w = c->handshake_wants_write;
        break;
    case CONN_OPEN:
        r = c->read_on || c->write_wants_read;
        w = evbuffer_get_length(c->out) > 0 || c->read_wants_write;
        break;
    case CONN_DEAD:
        break;
    }
    set_event(c->rev, &c->rev_added, r);
    set_event(c->wev, &c->wev_added, w);
}

/* Report events from the loop, never from inside the owner's own call. */
static void report(struct gw_conn *c, short what)
{
    c->pending |= what;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        c->state = CONN_DEAD;
        update_interest(c);
    }
    event_active(c->notify, EV_TIMEOUT, 1);
}

struct gw_conn *gw_conn_new(struct event_base *base, evutil_socket_t fd)
{
    struct gw_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    c->state = CONN_OPEN;
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    c->rev = event_new(base, fd, EV_READ | EV_PERSIST, conn_readable, c);
    c->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, conn_writable, c);
    c->notify = event_new(base, -1, 0, conn_notify, c);
    if (!c->in || !c->out || !c->rev || !c->wev || !c->notify || evutil_make_socket_nonblocking(fd) < 0) {
        c->fd = -1; /* the caller still owns fd */
        gw_conn_free(c);
        return NULL;
    }
    return c;
}

struct gw_conn *gw_conn_connect(struct event_base *base, const struct sockaddr *sa, socklen_t len)
{
    evutil_socket_t fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    struct gw_conn *c = gw_conn_new(base, fd);
    if (!c) {
        close(fd);
        return NULL;
    }
    if (connect(fd, sa, len) == 0) {
        report(c, BEV_EVENT_CONNECTED);
        return c;
    }
    if (errno == EINPROGRESS) {
        c->state = CONN_CONNECTING;
        update_interest(c);
        return c;
    }
    if (errno == ECONNREFUSED) { /* reported like a refusal that takes a moment */
        c->sock_error = errno;
        report(c, BEV_EVENT_ERROR);
        return c;
    }
    int e = errno;
    gw_conn_free(c);
    errno = e;
    return NULL;
}

void gw_conn_setcb(struct gw_conn *c, gw_conn_cb readcb, gw_conn_cb writecb, gw_conn_event_cb eventcb,
                   void *arg)
{
    c->readcb = readcb;
    c->writecb = writecb;
    c->eventcb = eventcb;
    c->arg = arg;
}

static void handshake(struct gw_conn *c)
{
    tls_clear_errors();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->state = CONN_OPEN;
        update_interest(c);
        if (evbuffer_get_length(c->out))
            gw_conn_flush(c);
        if (c->read_on && SSL_has_pending(c->ssl))
            event_active(c->rev, EV_READ, 1);
        report(c, BEV_EVENT_CONNECTED);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        c->handshake_wants_write = e == SSL_ERROR_WANT_WRITE;
        update_interest(c);
        return;
    }
    c->tls_error = ERR_peek_error();
    c->sock_error = errno;
    report(c, BEV_EVENT_ERROR);
}

int gw_conn_start_tls(struct gw_conn *c, SSL *ssl, bool server)
{
    if (c->state != CONN_OPEN || c->ssl || SSL_set_fd(ssl, (int)c->fd) != 1) {
        SSL_free(ssl);
        return -1;
    }
    c->ssl = ssl;
    SSL_set_read_ahead(ssl, 1); /* a whole flight of records in one read() */
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF); /* a peer's dirty close is an EOF */
    if (server)
        SSL_set_accept_state(ssl);
    else
        SSL_set_connect_state(ssl);
    c->state = CONN_HANDSHAKE;
    handshake(c);
    return 0;
}

SSL *gw_conn_ssl(const struct gw_conn *c)
{
    return c->ssl;
}

unsigned long gw_conn_tls_error(const struct gw_conn *c)
{
    return c->tls_error;
}

int gw_conn_socket_error(const struct gw_conn *c)
{
    return c->sock_error;
}

struct evbuffer *gw_conn_input(const struct gw_conn *c)
{
    return c->in;
}

struct evbuffer *gw_conn_output(const struct gw_conn *c)
{
    return c->out;
}

/* Read what is there: one read() on a plain socket; on TLS, the records
 * OpenSSL has (read ahead) or can get with one read(). Bytes land in a stack
 * buffer and are appended to the input, so that the input's memory follows
 * its length however small the reads (as pgbouncer's sbuf). Returns
 * BEV_EVENT_EOF or _ERROR when the stream ended, else 0. */
static short do_read(struct gw_conn *c, bool *got)
{
    uint8_t chunk[4 * GW_CONN_READ_CHUNK];
    if (!c->ssl) {
        ssize_t n = read(c->fd, chunk, sizeof chunk);
        if (n > 0) {
            *got = true;
            return evbuffer_add(c->in, chunk, (size_t)n) == 0 ? 0 : BEV_EVENT_ERROR;
        }
        if (n == 0)
            return BEV_EVENT_EOF;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 0;
        c->sock_error = errno;
        return BEV_EVENT_ERROR;
    }
    c->read_wants_write = false;
    for (;;) {
        tls_clear_errors();
        int n = SSL_read(c->ssl, chunk, (int)sizeof chunk);
        if (n > 0) {
            *got = true;
            if (evbuffer_add(c->in, chunk, (size_t)n) < 0)
                return BEV_EVENT_ERROR;
            if (SSL_has_pending(c->ssl))
                continue;
            return 0;
        }
        switch (SSL_get_error(c->ssl, n)) {
        case SSL_ERROR_WANT_READ:
            return 0;
        case SSL_ERROR_WANT_WRITE:
            c->read_wants_write = true;
            return 0;
        case SSL_ERROR_ZERO_RETURN:
            return BEV_EVENT_EOF;
        case SSL_ERROR_SYSCALL:
            if (errno == 0)
                return BEV_EVENT_EOF;
            c->sock_error = errno;
            return BEV_EVENT_ERROR;
        default:
            c->tls_error = ERR_peek_error();
            return BEV_EVENT_ERROR;
        }
    }
}

/* Read, then hand the input to the owner (the owner may free c: last). */
static void read_and_deliver(struct gw_conn *c)
{
    bool got = false;
    short end = do_read(c, &got);
    if (end)
        report(c, end);
    else
        update_interest(c);
    if (got && c->readcb)
        c->readcb(c, c->arg);
}

static void flush_plain(struct gw_conn *c)
{
    while (evbuffer_get_length(c->out) > 0) {
        int n = evbuffer_write(c->out, c->fd);
        if (n > 0 && evbuffer_get_length(c->out) > 0)
            continue; /* more than one writev's worth of chains */
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            c->sock_error = errno;
            report(c, BEV_EVENT_ERROR);
        }
        return;
    }
}

/* One SSL_write (one record, one write()) per 16 KiB: small messages queued
 * in one relay pass go out together. */
static void flush_tls(struct gw_conn *c)
{
    c->write_wants_read = false;
    size_t len;
    while ((len = evbuffer_get_length(c->out)) > 0) {
        int n = c->tls_retry_len ? c->tls_retry_len : (int)(len < GW_CONN_TLS_WRITE ? len : GW_CONN_TLS_WRITE);
        unsigned char *p = evbuffer_pullup(c->out, n);
        if (!p) {
            report(c, BEV_EVENT_ERROR);
            return;
        }
        tls_clear_errors();
        int r = SSL_write(c->ssl, p, n);
        if (r > 0) {
            evbuffer_drain(c->out, (size_t)r);
            c->tls_retry_len = 0;
            continue;
        }
        switch (SSL_get_error(c->ssl, r)) {
        case SSL_ERROR_WANT_WRITE:
            c->tls_retry_len = n;
            return;
        case SSL_ERROR_WANT_READ:
            c->tls_retry_len = n;
            c->write_wants_read = true;
            return;
        default:
            c->tls_error = ERR_peek_error();
            c->sock_error = errno;
            report(c, BEV_EVENT_ERROR);
            return;
        }
    }
}

void gw_conn_flush(struct gw_conn *c)
{
    if (c->state != CONN_OPEN)
        return;
    if (evbuffer_get_length(c->out) > 0) {
        if (c->ssl)
            flush_tls(c);
        else
            flush_plain(c);
    }
    if (c->state == CONN_OPEN)
        update_interest(c);
}

void gw_conn_write(struct gw_conn *c, const void *data, size_t len)
{
    evbuffer_add(c->out, data, len);
    gw_conn_flush_later(c);
}

void gw_conn_flush_later(struct gw_conn *c)
{
    if (!c->flush_scheduled && c->state == CONN_OPEN) {
        c->flush_scheduled = true;
        event_active(c->notify, EV_TIMEOUT, 1);
    }
}

void gw_conn_read_on(struct gw_conn *c)
{
    if (c->read_on)
        return;
    c->read_on = true;
    if (c->state == CONN_OPEN) {
        update_interest(c);
        if (c->ssl && SSL_has_pending(c->ssl)) /* records read ahead: no poll will say so */
            event_active(c->rev, EV_READ, 1);
    }
}

void gw_conn_read_off(struct gw_conn *c)
{
    if (!c->read_on)
        return;
    c->read_on = false;
    if (c->state == CONN_OPEN)
        update_interest(c);
}

/* A flush from the loop sent something: tell the owner (may free c: call last). */
static void wrote(struct gw_conn *c, size_t before)
{
    if (c->state == CONN_OPEN && evbuffer_get_length(c->out) < before && c->writecb)
        c->writecb(c, c->arg);
}

static void conn_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_conn *c = arg;
    if (c->state == CONN_HANDSHAKE) {
        handshake(c);
        return;
    }
    if (c->state != CONN_OPEN)
        return;
    if (c->write_wants_read) {
        gw_conn_flush(c);
        if (c->state != CONN_OPEN)
            return;
    }
    if (c->read_on)
        read_and_deliver(c);
}

static void conn_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_conn *c = arg;
    if (c->state == CONN_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err == EINPROGRESS)
            return;
        if (err) {
            c->sock_error = err;
            report(c, BEV_EVENT_ERROR);
            return;
        }
        c->state = CONN_OPEN;
        update_interest(c);
        report(c, BEV_EVENT_CONNECTED);
        return;
    }
    if (c->state == CONN_HANDSHAKE) {
        handshake(c);
        return;
    }
    if (c->state != CONN_OPEN)
        return;
    if (c->read_wants_write && c->read_on) {
        read_and_deliver(c);
        return;
    }
    size_t before = evbuffer_get_length(c->out);
    gw_conn_flush(c);
    wrote(c, before);
}

static void conn_notify(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_conn *c = arg;
    bool flushed = c->flush_scheduled;
    size_t before = evbuffer_get_length(c->out);
    c->flush_scheduled = false;
    if (flushed)
        gw_conn_flush(c);
    short ev = c->pending;
    c->pending = 0;
    if (ev && c->eventcb) {
        c->eventcb(c, ev, c->arg); /* may free c */
        return;
    }
    if (flushed)
        wrote(c, before);
}

void gw_conn_close_notify(struct gw_conn *c)
{
    if (!c->ssl || c->state != CONN_OPEN || evbuffer_get_length(c->out) != 0 || !SSL_is_init_finished(c->ssl))
        return;
    tls_clear_errors();
    SSL_shutdown(c->ssl); /* nonblocking, best effort: the alert goes straight to the socket */
}

void gw_conn_free(struct gw_conn *c)
{
    if (!c)
        return;
    if (c->rev)
        event_free(c->rev);
    if (c->wev)
        event_free(c->wev);
    if (c->notify)
        event_free(c->notify);
    if (c->in)
        evbuffer_free(c->in);
    if (c->out)
        evbuffer_free(c->out);
    SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}
