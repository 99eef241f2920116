/* conns.c — what the server's connections may hold before the server sees
 * a request: at most limits.max_connections open connections, and at most
 * limits.max_unhandled_bytes that they sent and that no handler has had yet.
 *
 * evhttp (libevent 2.1) reads a whole request, body included, before the
 * handler can check its token, and has no hook that refuses a connection.
 * So evhttp's bevcb, which makes each connection's bufferevent, is where a
 * connection is counted:
 *  - past the cap it gets a bufferevent that cannot take a socket, so that
 *    evhttp closes the socket at once;
 *  - else a callback on its input buffer counts the bytes read, and the
 *    connection whose bytes would pass the budget is closed;
 *  - once evhttp has set the connection up (in the same turn of the loop),
 *    its close callback gives the slot and the bytes back. Handlers that
 *    want a close callback of their own set it through srv_conn_on_close.
 * The same two caps hold per peer address (limits.max_connections_per_client
 * and limits.max_unhandled_bytes_per_client, a quarter of the totals by
 * default), so that one client cannot take every slot or the whole budget
 * and keep the others out. A connection learns its address when it is
 * attached, before evhttp has read from it; one past its client's cap is
 * closed there.
 * A filter bufferevent would be the obvious tool, but libevent 2.1's filter
 * loses a reply when evhttp closes the connection after it (libevent issues
 * 613 and 616). As a safety net, the tick gives back the slot of any
 * connection whose socket is gone. */
#include "internal.h"
#include "hoopctl/log.h"
#include "hoopctl/util.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define MOD "server"
#define LOG_EVERY_MS 10000 /* a refusal is logged at most this often */

/* A peer address with connections open: what they hold together. */
struct srv_client {
    unsigned char addr[16];           /* IPv4 as an IPv4-mapped IPv6 address */
    char text[INET6_ADDRSTRLEN];
    int nconns;
    size_t unhandled;
    struct srv_client *prev, *next;
};

struct srv_conn {
    struct srv *srv;
    struct srv_client *client;        /* once attached */
    struct bufferevent *bev;
    struct evhttp_connection *evcon;  /* once attached */
    struct event *attach;
    struct evbuffer_cb_entry *in_cb;
    int fd;                           /* once attached; with its inode, to see it gone */
    ino_t ino;
    size_t unhandled;                 /* bytes read since its last request was handled */
    bool closing;                     /* past the budget: evhttp is told to close it */
    void (*user_closecb)(struct evhttp_connection *, void *);
    void *user_arg;
    struct srv_conn *prev, *next;
};

static bool log_due(int64_t *last)
{
    int64_t now = util_monotonic_us() / 1000;
    if (*last && now - *last < LOG_EVERY_MS)
        return false;
    *last = now;
    return true;
}

/* The client of a connected socket, counted once more; NULL when its
 * address cannot be had (then only the totals hold for it). */
static struct srv_client *client_get(struct srv *srv, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    unsigned char addr[16];
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return NULL;
    if (ss.ss_family == AF_INET) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        memcpy(addr, mapped, sizeof mapped);
        memcpy(addr + 12, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    } else if (ss.ss_family == AF_INET6) {
        memcpy(addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    } else {
        return NULL;
    }
    struct srv_client *k;
    for (k = srv->clients; k; k = k->next)
        if (memcmp(k->addr, addr, sizeof addr) == 0)
            break;
    if (!k) {
        if (!(k = calloc(1, sizeof *k)))
            return NULL;
        memcpy(k->addr, addr, sizeof addr);
        struct in6_addr a6;
        memcpy(&a6, addr, sizeof a6);
        if (IN6_IS_ADDR_V4MAPPED(&a6))
            inet_ntop(AF_INET, addr + 12, k->text, sizeof k->text);
        else
            inet_ntop(AF_INET6, addr, k->text, sizeof k->text);
        k->next = srv->clients;
        if (srv->clients)
            srv->clients->prev = k;
        srv->clients = k;
        srv->nclients++;
    }
    k->nconns++;
    return k;
}

static void client_put(struct srv *srv, struct srv_client *k)
{
    if (--k->nconns > 0)
        return;
    if (k->prev)
        k->prev->next = k->next;
    else
        srv->clients = k->next;
    if (k->next)
        k->next->prev = k->prev;
    srv->nclients--;
    free(k);
}

/* Tell evhttp to close a connection, as on a read error: it reads no more. */
static void conn_close(struct srv_conn *c)
{
    c->closing = true;
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_trigger_event(c->bev, BEV_EVENT_ERROR | BEV_EVENT_READING, BEV_TRIG_DEFER_CALLBACKS);
}

/* Give back the slot and the bytes; the bufferevent is evhttp's. */
static void conn_release(struct srv_conn *c)
{
    struct srv *srv = c->srv;
    srv->unhandled -= c->unhandled;
    srv->nconns--;
    if (c->client) {
        c->client->unhandled -= c->unhandled;
        client_put(srv, c->client);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    event_free(c->attach);
    free(c);
}

static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
    struct srv_conn *c = arg;
    if (c->user_closecb)
        c->user_closecb(evcon, c->user_arg);
    evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->in_cb);
    conn_release(c);
}

static void bytes_read(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    struct srv_conn *c = arg;
    struct srv *srv = c->srv;
    size_t n = info->n_added;
    if (n == 0 || c->closing)
        return;
    if (n > srv->max_unhandled - srv->unhandled) {
        srv->m.conns_over_budget++;
        if (log_due(&srv->budget_logged_ms))
            log_warn(MOD, "connections hold %zu bytes of requests not yet handled (limit %zu,"
                          " limits.max_unhandled_bytes): closing those that send more",
                     srv->unhandled, srv->max_unhandled);
        conn_close(c);
        return;
    }
    struct srv_client *k = c->client;
    if (k && srv->max_client_unhandled &&
        (k->unhandled >= srv->max_client_unhandled || n > srv->max_client_unhandled - k->unhandled)) {
        srv->m.client_conns_over_budget++;
        if (log_due(&srv->client_budget_logged_ms))
            log_warn(MOD, "client %s holds %zu bytes of requests not yet handled (limit %zu,"
                          " limits.max_unhandled_bytes_per_client): closing its connections that send more",
                     k->text, k->unhandled, srv->max_client_unhandled);
        conn_close(c);
        return;
    }
    c->unhandled += n;
    srv->unhandled += n;
    if (k)
        k->unhandled += n;
}

/* Count an attached connection for its peer address; past that client's
 * cap it is closed before evhttp reads from it. */
static void attach_client(struct srv_conn *c)
{
    struct srv *srv = c->srv;
    if (!(c->client = client_get(srv, c->fd)))
        return;
    c->client->unhandled += c->unhandled;
    if (srv->max_client_conns && c->client->nconns > srv->max_client_conns) {
        srv->m.client_conns_refused++;
        if (log_due(&srv->client_cap_logged_ms))
            log_warn(MOD, "client %s has %d connections open (limits.max_connections_per_client):"
                          " refusing new ones", c->client->text, c->client->nconns - 1);
        conn_close(c);
    }
}

/* The same turn of the loop, after evhttp set the connection up: find its
 * evhttp connection (the argument of the callbacks evhttp set) and its
 * socket. A reference held since bevcb keeps the bufferevent alive if evhttp
 * dropped the connection meanwhile (then its callbacks are gone). */
static void attach(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct srv_conn *c = arg;
    struct bufferevent *bev = c->bev;
    bufferevent_data_cb rcb = NULL;
    bufferevent_event_cb ecb = NULL;
    void *cbarg = NULL;
    bufferevent_getcb(bev, &rcb, NULL, &ecb, &cbarg);
    struct evhttp_connection *evcon = cbarg;
    if ((rcb || ecb) && evcon && evhttp_connection_get_bufferevent(evcon) == bev) {
        struct stat st;
        c->evcon = evcon;
        c->fd = bufferevent_getfd(bev);
        if (c->fd >= 0 && fstat(c->fd, &st) == 0)
            c->ino = st.st_ino;
        evhttp_connection_set_closecb(evcon, conn_closed, c);
        attach_client(c);
    } else {
        evbuffer_remove_cb_entry(bufferevent_get_input(bev), c->in_cb);
        conn_release(c);
    }
    bufferevent_decref(bev);
}

/* A bufferevent with no socket support: evhttp's bufferevent_setfd on it
 * fails, and evhttp then drops the connection and closes the socket. */
static struct bufferevent *refusal(struct event_base *base)
{
    struct bufferevent *pair[2];
    if (bufferevent_pair_new(base, 0, pair) < 0)
        return NULL;
    bufferevent_free(pair[1]);
    return pair[0];
}

struct bufferevent *srv_conn_bev(struct event_base *base, void *arg)
{
    struct srv *srv = arg;
    if (srv->nconns >= srv->max_conns) {
        srv->m.conns_refused++;
        if (log_due(&srv->cap_logged_ms))
            log_warn(MOD, "%d connections are open (limits.max_connections): refusing new ones", srv->nconns);
        return refusal(base);
    }
    struct srv_conn *c = calloc(1, sizeof *c);
    SSL *ssl = c && srv->ssl ? SSL_new(srv->ssl) : NULL;
    if (c && (!srv->ssl || ssl))
        c->bev = ssl ? bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE)
                     : bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (c && c->bev)
        c->attach = event_new(base, -1, 0, attach, c);
    if (c && c->attach)
        c->in_cb = evbuffer_add_cb(bufferevent_get_input(c->bev), bytes_read, c);
    if (!c || !c->in_cb) {
        if (c && c->attach)
            event_free(c->attach);
        if (c && c->bev)
            bufferevent_free(c->bev);
        else if (ssl)
            SSL_free(ssl);
        free(c);
        log_error(MOD, "out of memory for a new connection: refusing it");
        return refusal(base);
    }
    c->srv = srv;
    c->fd = -1;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    bufferevent_incref(c->bev);
    event_active(c->attach, EV_TIMEOUT, 1);
    return c->bev;
}

static struct srv_conn *conn_of(struct srv *srv, struct evhttp_connection *evcon)
{
    for (struct srv_conn *c = srv->conns; c && evcon; c = c->next)
        if (c->evcon == evcon)
            return c;
    return NULL;
}

void srv_conn_handled(struct srv *srv, struct evhttp_request *r)
{
    struct srv_conn *c = conn_of(srv, evhttp_request_get_connection(r));
    if (c) {
        srv->unhandled -= c->unhandled;
        if (c->client)
            c->client->unhandled -= c->unhandled;
        c->unhandled = 0;
    }
}

void srv_conn_on_close(struct srv *srv, struct evhttp_connection *evcon,
                       void (*cb)(struct evhttp_connection *, void *), void *arg)
{
    struct srv_conn *c = conn_of(srv, evcon);
    if (c) {
        c->user_closecb = cb;
        c->user_arg = arg;
    } else if (evcon) {
        evhttp_connection_set_closecb(evcon, cb, arg);
    }
}

void srv_conn_sweep(struct srv *srv)
{
    for (struct srv_conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        struct stat st;
        if (c->fd >= 0 && (fstat(c->fd, &st) != 0 || st.st_ino != c->ino)) {
            log_warn(MOD, "a connection went without its close callback: slot given back");
            conn_release(c);
        }
    }
}

void srv_conn_free_all(struct srv *srv)
{
    while (srv->conns) {
        if (!srv->conns->evcon) /* not attached: still holds its reference */
            bufferevent_decref(srv->conns->bev);
        conn_release(srv->conns);
    }
}
