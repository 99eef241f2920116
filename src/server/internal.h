/* internal.h — private to src/server: the server context, a request's
 * context, and the helpers the route handlers share. */
#ifndef HOOPCTL_SERVER_INTERNAL_H
#define HOOPCTL_SERVER_INTERNAL_H

#include "hoopctl/server.h"

#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>
#include <pthread.h>

#define SRV_NBUCKETS 12
/* Longest long poll, in seconds: below the HTTP layer's idle timeout. */
#define SRV_MAX_POLL_S 110
#define SRV_HTTP_TIMEOUT_S 120
/* evhttp's cap on a request's headers */
#define SRV_MAX_HEADERS (64 * 1024)

struct srv_waiter;
struct srv_export;

struct srv_metrics {
    uint64_t requests[6];                /* by status class 1xx..5xx, [0] unused */
    uint64_t latency_buckets[SRV_NBUCKETS]; /* cumulative-at-scrape histogram of handler time */
    uint64_t latency_count;
    double latency_sum;
    uint64_t events_ingested, events_duplicate;
    uint64_t store_errors;
    uint64_t auth_failures;
    uint64_t longpoll_wakeups;
    uint64_t conns_refused;      /* past limits.max_connections */
    uint64_t conns_over_budget;  /* closed for passing limits.max_unhandled_bytes */
    uint64_t client_conns_refused;     /* past limits.max_connections_per_client */
    uint64_t client_conns_over_budget; /* past limits.max_unhandled_bytes_per_client */
};

struct srv_conn;
struct srv_client;

struct srv {
    const struct server_options *opt;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    SSL_CTX *ssl;
    struct store *store;
    struct auth_verifier *chain[SERVER_MAX_VERIFIERS + 2];
    int nchain;
    struct auth_verifier *owned[2];      /* the ones made here */
    char admin_group[AUTH_GROUP_LEN], auditor_group[AUTH_GROUP_LEN];
    size_t max_body, max_string, max_batch;
    /* Open connections and the bytes they sent that no handler has had
     * yet (conns.c), with their caps. */
    struct srv_conn *conns;
    int nconns, max_conns;
    size_t unhandled, max_unhandled;
    /* The same per peer address (0: no cap per client). */
    struct srv_client *clients;
    int nclients, max_client_conns;
    size_t max_client_unhandled;
    int64_t cap_logged_ms, budget_logged_ms, client_cap_logged_ms, client_budget_logged_ms;
    int64_t sample_rows_statement, sample_rows_session;
    int64_t review_ttl_ms;
    int64_t review_max_pending; /* unexpired pending reviews one requester may have */
    struct srv_waiter *waiters;
    int exports;                         /* streaming exports in flight */
    struct event *ev_term, *ev_int, *ev_tick, *ev_listen, *ev_stop;
    int64_t last_retention_ms;
    bool stopping;
    struct srv_metrics m;
    /* webhook pusher thread */
    pthread_t hook_thread;
    bool hook_running;
    pthread_mutex_t hook_lock;
    pthread_cond_t hook_cond;
    bool hook_stop;
    char hook_key[65];      /* the endpoint's cursor key; "" without a webhook */
};

/* One request: who is calling and the split path. */
struct srv_req {
    struct srv *srv;
    struct evhttp_request *r;
    struct auth_identity id;
    char *seg[8];
    int nseg;
    int64_t start_us;
    const char *bad_param;    /* a query parameter given but too long for its buffer */
};

/* Replies. srv_reply_json steals body. */
void srv_reply_json(struct srv_req *rq, int code, json_t *body);
void srv_reply_error(struct srv_req *rq, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Store failure -> 404/409/403/500 with the message. */
void srv_reply_store(struct srv_req *rq, int rc, const char *err);
/* The body as a JSON object checked against fields; NULL after replying 4xx. */
json_t *srv_body(struct srv_req *rq, const struct server_field *fields);
/* A query parameter, or NULL. */
const char *srv_query(struct srv_req *rq, const char *key, char *buf, size_t len);
bool srv_query_int(struct srv_req *rq, const char *key, int64_t *out, bool *present);
/* A query parameter was too long for its buffer (srv_query gave NULL for
 * it): replies 400 naming it and returns true. */
bool srv_query_too_long(struct srv_req *rq);

bool srv_is_admin(const struct srv_req *rq);
bool srv_is_auditor(const struct srv_req *rq);   /* auditor or admin */
bool srv_in_any(const struct auth_identity *id, json_t *groups);
json_t *srv_identity_json(const struct auth_identity *id);

/* Reviews changed here or in another process: re-check the long polls. */
void srv_reviews_changed(struct srv *srv);
/* Park a long poll: kind 0 = one review (id), 1 = new pending (after ms). */
void srv_wait_start(struct srv_req *rq, int kind, const char *review_id, int64_t after_ms,
                    int timeout_s);
/* The current answer of a long poll, or NULL while it should keep waiting. */
json_t *srv_wait_answer(struct srv *srv, const struct auth_identity *id, int kind,
                        const char *review_id, int64_t after_ms, int *code, bool final);

/* Connections (conns.c). srv_conn_bev is evhttp's bevcb: it counts each
 * connection and the bytes it sends. srv_conn_handled: a request's bytes
 * reached a handler. srv_conn_on_close: a close callback for a request's
 * connection (evhttp's own is conns.c's). The sweep gives back the slots of
 * connections whose sockets are gone; free_all, after evhttp_free. */
struct bufferevent *srv_conn_bev(struct event_base *base, void *srv);
void srv_conn_handled(struct srv *srv, struct evhttp_request *r);
void srv_conn_on_close(struct srv *srv, struct evhttp_connection *evcon,
                       void (*cb)(struct evhttp_connection *, void *), void *arg);
void srv_conn_sweep(struct srv *srv);
void srv_conn_free_all(struct srv *srv);

/* Routes (routes.c). Returns after replying. */
void srv_route(struct srv_req *rq);
/* Streaming audit export (export.c). */
void srv_export_start(struct srv_req *rq, int64_t since, int64_t until, bool csv);
/* The listening socket's address (http.c); returns its port, or -1. */
struct sockaddr_storage;
int srv_bound_address(struct srv *srv, struct sockaddr_storage *ss);
/* Webhook pusher (webhook.c). */
int srv_webhook_start(struct srv *srv, char *err, size_t errlen);
void srv_webhook_stop(struct srv *srv);

#endif
