/* http.c — the server's plumbing on libevent's evhttp: listening (TLS through
 * bufferevent_openssl), bearer-token checks, JSON replies and bodies, long-poll
 * parking, metrics, periodic work, and graceful shutdown on SIGTERM. */
#include "internal.h"
#include "hoopctl/config.h"
#include "hoopctl/log.h"
#include "hoopctl/util.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MOD "server"

static int srv_waiter_count(const struct srv *srv);

static const double srv_bucket_le[SRV_NBUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                   0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

/* ---- replies ------------------------------------------------------------- */

static void srv_count(struct srv_req *rq, int code)
{
    struct srv *srv = rq->srv;
    if (code >= 100 && code < 600)
        srv->m.requests[code / 100]++;
    double secs = (double)(util_monotonic_us() - rq->start_us) / 1e6;
    for (int i = 0; i < SRV_NBUCKETS; i++)
        if (secs <= srv_bucket_le[i])
            srv->m.latency_buckets[i]++;
    srv->m.latency_count++;
    srv->m.latency_sum += secs;
}

void srv_reply_json(struct srv_req *rq, int code, json_t *body)
{
    struct evbuffer *out = evbuffer_new();
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(body);
    if (text) {
        evbuffer_add(out, text, strlen(text));
        evbuffer_add(out, "\n", 1);
        free(text);
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(rq->r);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    const char *reason = code == 200 ? "OK" : code == 201 ? "Created" : NULL;
    evhttp_send_reply(rq->r, code, reason, out);
    evbuffer_free(out);
    srv_count(rq, code);
}

void srv_reply_error(struct srv_req *rq, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (code == 401)
        evhttp_add_header(evhttp_request_get_output_headers(rq->r), "WWW-Authenticate",
                          "Bearer realm=\"hoopctl\"");
    if (code >= 500)
        log_warn(MOD, "%s %s: %d %s", evhttp_request_get_command(rq->r) == EVHTTP_REQ_GET ? "GET" : "req",
                 evhttp_request_get_uri(rq->r), code, msg);
    srv_reply_json(rq, code, json_pack("{s:s,s:i}", "error", msg, "status", code));
}

void srv_reply_store(struct srv_req *rq, int rc, const char *err)
{
    switch (rc) {
    case STORE_NOT_FOUND: srv_reply_error(rq, 404, "%s", err); break;
    case STORE_CONFLICT: srv_reply_error(rq, 409, "%s", err); break;
    case STORE_FORBIDDEN: srv_reply_error(rq, 403, "%s", err); break;
    case STORE_BUSY:
        rq->srv->m.store_errors++;
        log_warn(MOD, "store: %s", err);
        evhttp_add_header(evhttp_request_get_output_headers(rq->r), "Retry-After", "1");
        srv_reply_error(rq, 503, "the store is busy (a lock held by another server instance); try again");
        break;
    default:
        rq->srv->m.store_errors++;
        log_error(MOD, "store: %s", err);
        srv_reply_error(rq, 500, "the store failed; see the server log");
    }
}

json_t *srv_body(struct srv_req *rq, const struct server_field *fields)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(rq->r);
    size_t len = evbuffer_get_length(in);
    if (len > rq->srv->max_body) {
        srv_reply_error(rq, 413, "request body of %zu bytes is over the limit of %zu", len,
                        rq->srv->max_body);
        return NULL;
    }
    if (len == 0) {
        srv_reply_error(rq, 400, "a JSON body is required");
        return NULL;
    }
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(rq->r), "Content-Type");
    if (ct && strncmp(ct, "application/json", 16) != 0) {
        srv_reply_error(rq, 415, "Content-Type must be application/json");
        return NULL;
    }
    const char *data = (const char *)evbuffer_pullup(in, -1);
    json_error_t je;
    json_t *v = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        srv_reply_error(rq, 400, "malformed JSON at line %d column %d: %s", je.line, je.column,
                        config_json_error(&je)); /* a body may carry a secret */
        return NULL;
    }
    char err[256];
    if (fields && server_json_check(v, fields, rq->srv->max_string, err, sizeof err) < 0) {
        json_decref(v);
        srv_reply_error(rq, 400, "%s", err);
        return NULL;
    }
    return v;
}

const char *srv_query(struct srv_req *rq, const char *key, char *buf, size_t len)
{
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(rq->r));
    if (!q)
        return NULL;
    struct evkeyvalq kv;
    TAILQ_INIT(&kv);
    if (evhttp_parse_query_str(q, &kv) != 0)
        return NULL; /* not reached: srv_handle refuses such a query (srv_query_fault) */
    const char *v = evhttp_find_header(&kv, key);
    const char *res = NULL;
    if (v && strlen(v) < len) {
        memcpy(buf, v, strlen(v) + 1);
        res = buf;
    } else if (v) {
        rq->bad_param = key; /* never read as absent: the caller answers 400 */
    }
    evhttp_clear_headers(&kv);
    return res;
}

bool srv_query_too_long(struct srv_req *rq)
{
    if (!rq->bad_param)
        return false;
    srv_reply_error(rq, 400, "query parameter %s is too long", rq->bad_param);
    return true;
}

bool srv_query_int(struct srv_req *rq, const char *key, int64_t *out, bool *present)
{
    char buf[32];
    const char *v = srv_query(rq, key, buf, sizeof buf);
    *present = v != NULL;
    if (!v)
        return rq->bad_param != key;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || n < 0 || errno == ERANGE)
        return false;
    *out = n;
    return true;
}

/* ---- identity and groups ------------------------------------------------- */

bool srv_is_admin(const struct srv_req *rq)
{
    return auth_identity_in_group(&rq->id, rq->srv->admin_group);
}

bool srv_is_auditor(const struct srv_req *rq)
{
    return srv_is_admin(rq) || auth_identity_in_group(&rq->id, rq->srv->auditor_group);
}

bool srv_in_any(const struct auth_identity *id, json_t *groups)
{
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g) if (json_is_string(g) && auth_identity_in_group(id, json_string_value(g)))
        return true;
    return false;
}

json_t *srv_identity_json(const struct auth_identity *id)
{
    json_t *groups = json_array();
    for (int i = 0; i < id->ngroups; i++)
        json_array_append_new(groups, json_string(id->groups[i]));
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:o}", "issuer", id->issuer, "subject", id->subject, "name",
                     id->name, "email", id->email, "kind", id->kind, "groups", groups);
}

/* Bearer token -> identity through the verifier chain. Replies on failure. */
static bool srv_authenticate(struct srv_req *rq)
{
    struct srv *srv = rq->srv;
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(rq->r), "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        srv->m.auth_failures++;
        srv_reply_error(rq, 401, "a Bearer token is required");
        return false;
    }
    const char *tok = h + 7;
    size_t tl = strlen(tok);
    bool clean = tl > 0 && tl <= 8192;
    for (size_t i = 0; clean && i < tl; i++)
        if (tok[i] <= ' ' || tok[i] > '~')
            clean = false;
    if (!clean) {
        srv->m.auth_failures++;
        srv_reply_error(rq, 401, "the Bearer token is malformed");
        return false;
    }
    char why[256] = "token not recognized";
    for (int i = 0; i < srv->nchain; i++) {
        enum auth_result r = srv->chain[i]->verify(srv->chain[i]->ctx, tok, &rq->id, why, sizeof why);
        if (r == AUTH_NOT_MINE)
            continue;
        if (r == AUTH_OK) {
            if (rq->id.expires_at && rq->id.expires_at < util_now_ms() / 1000) {
                srv->m.auth_failures++;
                srv_reply_error(rq, 401, "the token has expired");
                return false;
            }
            return true;
        }
        srv->m.auth_failures++;
        log_info(MOD, "token refused: %s", why);
        if (r == AUTH_UNAVAILABLE) {
            /* e.g. the issuer's keys are being fetched: nothing was done, retry */
            evhttp_add_header(evhttp_request_get_output_headers(rq->r), "Retry-After", "1");
            srv_reply_error(rq, 503, "cannot verify tokens right now");
        }
        else
            srv_reply_error(rq, 401, "the token was refused");
        return false;
    }
    srv->m.auth_failures++;
    log_info(MOD, "token refused: not recognized by any verifier");
    srv_reply_error(rq, 401, "the token was refused");
    return false;
}

int srv_bound_address(struct srv *srv, struct sockaddr_storage *ss)
{
    socklen_t sl = sizeof *ss;
    if (getsockname(evhttp_bound_socket_get_fd(srv->bound), (struct sockaddr *)ss, &sl) != 0)
        return -1;
    return ntohs(ss->ss_family == AF_INET6 ? ((struct sockaddr_in6 *)ss)->sin6_port
                                           : ((struct sockaddr_in *)ss)->sin_port);
}

/* ---- public endpoints ---------------------------------------------------- */

static void srv_metrics_reply(struct srv_req *rq)
{
    struct srv *srv = rq->srv;
    struct buf b = {0};
    buf_append_str(&b, "# HELP hoopctl_http_requests_total HTTP requests answered, by status class.\n"
                       "# TYPE hoopctl_http_requests_total counter\n");
    for (int c = 1; c <= 5; c++)
        buf_printf(&b, "hoopctl_http_requests_total{code=\"%dxx\"} %llu\n", c,
                   (unsigned long long)srv->m.requests[c]);
    buf_append_str(&b, "# HELP hoopctl_http_request_duration_seconds Time to answer a request.\n"
                       "# TYPE hoopctl_http_request_duration_seconds histogram\n");
    for (int i = 0; i < SRV_NBUCKETS; i++)
        buf_printf(&b, "hoopctl_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n", srv_bucket_le[i],
                   (unsigned long long)srv->m.latency_buckets[i]);
    buf_printf(&b, "hoopctl_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
                   "hoopctl_http_request_duration_seconds_sum %.6f\n"
                   "hoopctl_http_request_duration_seconds_count %llu\n",
               (unsigned long long)srv->m.latency_count, srv->m.latency_sum,
               (unsigned long long)srv->m.latency_count);
    buf_printf(&b, "# HELP hoopctl_events_ingested_total Audit events stored.\n"
                   "# TYPE hoopctl_events_ingested_total counter\n"
                   "hoopctl_events_ingested_total %llu\n"
                   "# HELP hoopctl_events_duplicate_total Audit events ignored as repeats.\n"
                   "# TYPE hoopctl_events_duplicate_total counter\n"
                   "hoopctl_events_duplicate_total %llu\n"
                   "# HELP hoopctl_store_errors_total Store operations that failed.\n"
                   "# TYPE hoopctl_store_errors_total counter\n"
                   "hoopctl_store_errors_total %llu\n"
                   "# HELP hoopctl_auth_failures_total Requests refused for their token.\n"
                   "# TYPE hoopctl_auth_failures_total counter\n"
                   "hoopctl_auth_failures_total %llu\n"
                   "# HELP hoopctl_longpoll_wakeups_total Long polls answered because a review changed.\n"
                   "# TYPE hoopctl_longpoll_wakeups_total counter\n"
                   "hoopctl_longpoll_wakeups_total %llu\n"
                   "# HELP hoopctl_longpoll_waiting Long polls parked now.\n"
                   "# TYPE hoopctl_longpoll_waiting gauge\n",
               (unsigned long long)srv->m.events_ingested, (unsigned long long)srv->m.events_duplicate,
               (unsigned long long)srv->m.store_errors, (unsigned long long)srv->m.auth_failures,
               (unsigned long long)srv->m.longpoll_wakeups);
    buf_printf(&b, "hoopctl_longpoll_waiting %d\n", srv_waiter_count(srv));
    buf_printf(&b, "# HELP hoopctl_http_connections Connections open now.\n"
                   "# TYPE hoopctl_http_connections gauge\n"
                   "hoopctl_http_connections %d\n"
                   "# HELP hoopctl_http_unhandled_bytes Bytes that connections sent and no handler has had yet.\n"
                   "# TYPE hoopctl_http_unhandled_bytes gauge\n"
                   "hoopctl_http_unhandled_bytes %zu\n"
                   "# HELP hoopctl_http_connections_refused_total Connections closed at once: limits.max_connections.\n"
                   "# TYPE hoopctl_http_connections_refused_total counter\n"
                   "hoopctl_http_connections_refused_total %llu\n"
                   "# HELP hoopctl_http_connections_over_budget_total Connections closed: limits.max_unhandled_bytes.\n"
                   "# TYPE hoopctl_http_connections_over_budget_total counter\n"
                   "hoopctl_http_connections_over_budget_total %llu\n"
                   "# HELP hoopctl_http_clients Peer addresses with connections open now.\n"
                   "# TYPE hoopctl_http_clients gauge\n"
                   "hoopctl_http_clients %d\n"
                   "# HELP hoopctl_http_client_connections_refused_total Connections closed at once:"
                   " limits.max_connections_per_client.\n"
                   "# TYPE hoopctl_http_client_connections_refused_total counter\n"
                   "hoopctl_http_client_connections_refused_total %llu\n"
                   "# HELP hoopctl_http_client_connections_over_budget_total Connections closed:"
                   " limits.max_unhandled_bytes_per_client.\n"
                   "# TYPE hoopctl_http_client_connections_over_budget_total counter\n"
                   "hoopctl_http_client_connections_over_budget_total %llu\n",
               srv->nconns, srv->unhandled, (unsigned long long)srv->m.conns_refused,
               (unsigned long long)srv->m.conns_over_budget, srv->nclients,
               (unsigned long long)srv->m.client_conns_refused, (unsigned long long)srv->m.client_conns_over_budget);
    int64_t pending = store_review_count(srv->store, "pending");
    if (pending < 0)
        srv->m.store_errors++;
    buf_printf(&b, "# HELP hoopctl_reviews_pending Reviews waiting for a decision.\n"
                   "# TYPE hoopctl_reviews_pending gauge\n"
                   "hoopctl_reviews_pending %lld\n", (long long)(pending < 0 ? 0 : pending));
    struct evbuffer *out = evbuffer_new();
    evbuffer_add(out, b.data, b.len);
    buf_free(&b);
    evhttp_add_header(evhttp_request_get_output_headers(rq->r), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(rq->r, 200, "OK", out);
    evbuffer_free(out);
    srv_count(rq, 200);
}

static void srv_auth_config(struct srv_req *rq)
{
    json_t *cfg = rq->srv->opt->config;
    const char *keys[] = {"issuer", "client_id", "scopes", "audience"};
    json_t *o = json_object();
    for (size_t i = 0; i < 4; i++) {
        char k[32];
        snprintf(k, sizeof k, "auth.%s", keys[i]);
        const char *v = config_get_string(cfg, k);
        json_object_set_new(o, keys[i], v ? json_string(v) : json_null());
    }
    srv_reply_json(rq, 200, o);
}

/* ---- dispatch ------------------------------------------------------------ */

/* A header that must come once, given more than once: libevent keeps every
 * copy and reads the first. Two Content-Lengths frame the body two ways
 * (RFC 9112 6.3: a 400, and the connection closed, for what follows the
 * body is not known to be a request); two Authorizations name two callers.
 * The name of the first such header, or NULL. */
static const char *srv_repeated_header(struct evhttp_request *r)
{
    static const char *const once[] = {"Content-Length", "Authorization"};
    const struct evkeyvalq *h = evhttp_request_get_input_headers(r);
    for (size_t i = 0; i < sizeof once / sizeof *once; i++) {
        int n = 0;
        for (const struct evkeyval *kv = TAILQ_FIRST(h); kv; kv = TAILQ_NEXT(kv, next))
            if (strcasecmp(kv->key, once[i]) == 0 && ++n > 1)
                return once[i];
    }
    return NULL;
}

/* The query string is name=value pairs joined by '&', each name once, or
 * the request is refused: srv_query finds no parameter at all in a query
 * that does not parse (a name without '=', an empty pair), which would drop
 * a filter (status=denied, since, until) and answer with more than was
 * asked; and of a name given twice it reads the first, where a proxy in
 * front may read the last. NULL when it is fine, else what is wrong (a
 * name given twice is copied into twice[]). */
static const char *srv_query_fault(struct evhttp_request *r, char *twice, size_t len)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r);
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
    if (!q)
        return NULL;
    struct evkeyvalq kv;
    TAILQ_INIT(&kv);
    const char *fault = NULL;
    if (evhttp_parse_query_str(q, &kv) != 0)
        fault = "malformed query string: each parameter is name=value, joined by &";
    for (const struct evkeyval *a = TAILQ_FIRST(&kv); a && !fault; a = TAILQ_NEXT(a, next))
        for (const struct evkeyval *b = TAILQ_NEXT(a, next); b && !fault; b = TAILQ_NEXT(b, next))
            if (strcmp(a->key, b->key) == 0) {
                snprintf(twice, len, "query parameter %.64s is given more than once", a->key);
                fault = twice;
            }
    evhttp_clear_headers(&kv);
    return fault;
}

static void srv_handle(struct evhttp_request *r, void *arg)
{
    struct srv *srv = arg;
    struct srv_req rq = {.srv = srv, .r = r, .start_us = util_monotonic_us()};
    srv_conn_handled(srv, r);
    if (srv->stopping) {
        srv_reply_error(&rq, 503, "the server is shutting down");
        return;
    }
    const char *twice = srv_repeated_header(r);
    if (twice) {
        evhttp_add_header(evhttp_request_get_output_headers(r), "Connection", "close");
        srv_reply_error(&rq, 400, "the %s header is given more than once", twice);
        return;
    }
    char twice_msg[128];
    const char *fault = srv_query_fault(r, twice_msg, sizeof twice_msg);
    if (fault) {
        srv_reply_error(&rq, 400, "%s", fault);
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || strlen(path) > 1024) {
        srv_reply_error(&rq, 400, "bad request path");
        return;
    }
    char copy[1025];
    snprintf(copy, sizeof copy, "%s", path);
    for (char *save = NULL, *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (rq.nseg >= 8) {
            srv_reply_error(&rq, 404, "no such route");
            return;
        }
        rq.seg[rq.nseg++] = t;
    }
    enum evhttp_cmd_type cmd = evhttp_request_get_command(r);
    if (rq.nseg == 1 && strcmp(rq.seg[0], "healthz") == 0) {
        srv_reply_json(&rq, 200, json_pack("{s:s,s:s,s:i}", "status", "ok", "store",
                                           store_kind(srv->store), "schema",
                                           store_schema_version(srv->store)));
        return;
    }
    if (rq.nseg == 4 && cmd == EVHTTP_REQ_GET && strcmp(rq.seg[0], "api") == 0 &&
        strcmp(rq.seg[1], "v1") == 0 && strcmp(rq.seg[2], "auth") == 0 &&
        strcmp(rq.seg[3], "config") == 0) {
        srv_auth_config(&rq);
        return;
    }
    if (!srv_authenticate(&rq))
        return;
    if (rq.nseg == 1 && strcmp(rq.seg[0], "metrics") == 0) {
        /* Counts of users' activity and failures: for operators, not users. */
        if (!srv_is_auditor(&rq))
            srv_reply_error(&rq, 403, "/metrics is for the %s and %s groups", srv->admin_group,
                            srv->auditor_group);
        else
            srv_metrics_reply(&rq);
        return;
    }
    if (rq.nseg < 2 || strcmp(rq.seg[0], "api") != 0 || strcmp(rq.seg[1], "v1") != 0) {
        srv_reply_error(&rq, 404, "no such route");
        return;
    }
    srv_route(&rq);
}

/* ---- long polls ---------------------------------------------------------- */

struct srv_waiter {
    struct srv_waiter *next;
    struct srv *srv;
    struct evhttp_request *r;
    struct auth_identity id;
    int kind;
    char review_id[129];
    int64_t after_ms;
    int64_t start_us;
    struct event *timer;
    struct event *gone;   /* the client closing its socket (EV_CLOSED), when the backend can tell */
    char key_hash[65];    /* the SHA-256 of the API key the caller used ("" for other tokens) */
};

static int srv_waiter_count(const struct srv *srv)
{
    int n = 0;
    for (const struct srv_waiter *w = srv->waiters; w; w = w->next)
        n++;
    return n;
}

static void waiter_unlink(struct srv_waiter *w)
{
    for (struct srv_waiter **p = &w->srv->waiters; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    event_free(w->timer);
    if (w->gone)
        event_free(w->gone);
    free(w);
}

static void waiter_finish(struct srv_waiter *w, int code, json_t *body)
{
    struct srv_req rq = {.srv = w->srv, .r = w->r, .start_us = w->start_us};
    srv_conn_on_close(w->srv, evhttp_request_get_connection(w->r), NULL, NULL);
    srv_reply_json(&rq, code, body);
    waiter_unlink(w);
}

static void waiter_closed(struct evhttp_connection *c, void *arg)
{
    (void)c;
    waiter_unlink(arg);
}

/* A long poll holds the identity its token had when it began, for up to
 * 110 s. Before it is answered with reviews, that must still hold: its
 * token has not expired since, nor was its API key revoked. NULL when it
 * does; else the error to answer with (401, or 503 when the store cannot
 * tell), and *code. */
static json_t *waiter_refused(struct srv_waiter *w, int *code)
{
    const char *why = NULL;
    if (w->id.expires_at && w->id.expires_at < util_now_ms() / 1000) {
        why = "the token has expired";
    } else if (w->key_hash[0]) {
        json_t *key = NULL;
        char err[256];
        int rc = store_apikey_lookup(w->srv->store, w->key_hash, &key, err, sizeof err);
        json_decref(key);
        if (rc == STORE_NOT_FOUND) {
            why = "the API key was revoked";
        } else if (rc) {
            log_warn(MOD, "a long poll's API key could not be checked: %s", err);
            *code = 503;
            return json_pack("{s:s,s:i}", "error", "cannot verify tokens right now", "status", *code);
        }
    }
    if (!why)
        return NULL;
    w->srv->m.auth_failures++;
    log_info(MOD, "long poll of %s ended: %s", w->id.subject, why);
    *code = 401;
    return json_pack("{s:s,s:i}", "error", why, "status", *code);
}

/* srv_wait_answer for a parked poll, once its caller is checked again. */
static json_t *waiter_answer(struct srv_waiter *w, int *code, bool final)
{
    json_t *body = srv_wait_answer(w->srv, &w->id, w->kind, w->review_id, w->after_ms, code, final);
    json_t *refused = body ? waiter_refused(w, code) : NULL;
    if (refused) {
        json_decref(body);
        body = refused;
    }
    return body;
}

static void waiter_timeout(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd;
    (void)ev;
    struct srv_waiter *w = arg;
    int code = 200;
    json_t *body = waiter_answer(w, &code, true);
    waiter_finish(w, code, body);
}

/* The client of a long poll closed its socket, or its sending half (EV_CLOSED
 * cannot tell the two apart). evhttp reads nothing from a connection while
 * its request waits for the reply, so it would not see the close until the
 * poll's timeout (up to 110 s), and the connection would hold its slot
 * against limits.max_connections_per_client until then: the poll is
 * answered now, as at its timeout. A client that only half-closed gets that
 * answer; for one that is gone the write fails, and evhttp frees the
 * connection and its slot. */
static void waiter_gone(evutil_socket_t fd, short ev, void *arg)
{
    waiter_timeout(fd, ev, arg);
}

void srv_wait_start(struct srv_req *rq, int kind, const char *review_id, int64_t after_ms,
                    int timeout_s)
{
    int code = 200;
    json_t *now = srv_wait_answer(rq->srv, &rq->id, kind, review_id, after_ms, &code, false);
    if (now) {
        srv_reply_json(rq, code, now);
        return;
    }
    struct srv_waiter *w = calloc(1, sizeof *w);
    if (!w) {
        srv_reply_error(rq, 503, "out of memory");
        return;
    }
    w->srv = rq->srv;
    w->r = rq->r;
    w->id = rq->id;
    if (strcmp(rq->id.kind, "apikey") == 0) { /* checked again before the poll is answered */
        const char *h = evhttp_find_header(evhttp_request_get_input_headers(rq->r), "Authorization");
        if (h && strlen(h) > 7)
            util_sha256_hex(h + 7, strlen(h + 7), w->key_hash);
    }
    w->kind = kind;
    snprintf(w->review_id, sizeof w->review_id, "%s", review_id ? review_id : "");
    w->after_ms = after_ms;
    w->start_us = rq->start_us;
    w->timer = evtimer_new(rq->srv->base, waiter_timeout, w);
    struct timeval tv = {timeout_s, 0};
    evtimer_add(w->timer, &tv);
    struct evhttp_connection *evcon = evhttp_request_get_connection(rq->r);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd >= 0 && (event_base_get_features(rq->srv->base) & EV_FEATURE_EARLY_CLOSE) &&
        (w->gone = event_new(rq->srv->base, fd, EV_CLOSED, waiter_gone, w)))
        event_add(w->gone, NULL);
    srv_conn_on_close(rq->srv, evcon, waiter_closed, w);
    w->next = rq->srv->waiters;
    rq->srv->waiters = w;
}

void srv_reviews_changed(struct srv *srv)
{
    struct srv_waiter *w = srv->waiters, *next;
    for (; w; w = next) {
        next = w->next;
        int code = 200;
        json_t *body = waiter_answer(w, &code, srv->stopping);
        if (body) {
            srv->m.longpoll_wakeups++;
            waiter_finish(w, code, body);
        }
    }
}

static void srv_listen_ready(evutil_socket_t fd, short ev, void *arg);

/* (Re)start listening for change notices from other servers. Returns 0, or
 * -1 when the store has a channel that cannot be reached now. */
static int srv_listen_start(struct srv *srv, char *err, size_t errlen)
{
    int lfd = store_listen_fd(srv->store, err, errlen);
    if (lfd < 0)
        return strcmp(store_kind(srv->store), "postgres") == 0 ? -1 : 0;
    srv->ev_listen = event_new(srv->base, lfd, EV_READ | EV_PERSIST, srv_listen_ready, srv);
    event_add(srv->ev_listen, NULL);
    return 0;
}

static void srv_listen_ready(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd;
    (void)ev;
    struct srv *srv = arg;
    int n = store_listen_drain(srv->store);
    if (n < 0) {
        /* The listening connection dropped: reconnect (here or on a later
         * tick) and re-check every waiter, since notices may have been lost. */
        log_warn(MOD, "lost the store's change-notice connection; reconnecting");
        event_free(srv->ev_listen);
        srv->ev_listen = NULL;
        store_listen_reset(srv->store);
        char err[256];
        if (srv_listen_start(srv, err, sizeof err) < 0)
            log_warn(MOD, "change notices: %s; retrying", err);
    }
    if (n != 0)
        srv_reviews_changed(srv);
}

/* ---- periodic work and shutdown ------------------------------------------ */

static void srv_tick(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd;
    (void)ev;
    struct srv *srv = arg;
    char err[256];
    int64_t now = util_now_ms();
    srv_conn_sweep(srv);
    if (!srv->ev_listen && strcmp(store_kind(srv->store), "postgres") == 0 &&
        srv_listen_start(srv, err, sizeof err) == 0 && srv->ev_listen) {
        log_info(MOD, "change notices back");
        srv_reviews_changed(srv);
    }
    int n = store_review_expire(srv->store, now, err, sizeof err);
    if (n < 0) {
        srv->m.store_errors++;
        log_warn(MOD, "expiring reviews: %s", err);
    } else if (n > 0) {
        srv_reviews_changed(srv);
    }
    if (srv->opt->retention_ms > 0 && now - srv->last_retention_ms >= 60000) {
        srv->last_retention_ms = now;
        struct store_retention_report r;
        int rc = store_retention(srv->store, now - srv->opt->retention_ms, *srv->hook_key ? srv->hook_key : NULL,
                                 &r, err, sizeof err);
        if (rc) {
            srv->m.store_errors++;
            log_warn(MOD, "retention: %s", err);
        } else {
            if (r.events || r.reviews)
                log_info(MOD, "retention: deleted %lld events and %lld reviews older than the cutoff%s",
                         (long long)r.events, (long long)r.reviews, r.events ? "; checkpoint recorded" : "");
            if (r.held)
                log_warn(MOD, "retention: keeping %lld older events until the webhook has pushed them",
                         (long long)r.held);
        }
    }
}

static void srv_stop_check(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd;
    (void)ev;
    struct srv *srv = arg;
    static const struct timeval flush = {0, 300000};
    if (srv->exports == 0 && srv->waiters == NULL)
        event_base_loopexit(srv->base, &flush);
    else {
        struct timeval tv = {0, 100000};
        evtimer_add(srv->ev_stop, &tv);
    }
}

static void srv_signal(evutil_socket_t sig, short ev, void *arg)
{
    (void)ev;
    struct srv *srv = arg;
    if (srv->stopping)
        return;
    log_info(MOD, "signal %d: finishing requests in flight, then stopping", (int)sig);
    srv->stopping = true;
    if (srv->bound) {
        evhttp_del_accept_socket(srv->http, srv->bound);
        srv->bound = NULL;
    }
    /* Long polls answer now with what they have. */
    srv_reviews_changed(srv);
    srv_stop_check(-1, 0, srv);
}

/* ---- TLS ----------------------------------------------------------------- */

static SSL_CTX *srv_tls_ctx(const char *cert, const char *key, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    return ctx;
fail:
    snprintf(err, errlen, "TLS certificate %s / key %s: %s", cert, key,
             ERR_reason_error_string(ERR_get_error()) ? ERR_reason_error_string(ERR_get_error())
                                                      : "cannot load");
    SSL_CTX_free(ctx);
    return NULL;
}

/* ---- run ----------------------------------------------------------------- */

/* A number from the configuration: dflt when it is absent, else a whole
 * number from min to max; anything else is an error that names the key. */
int server_config_count(json_t *cfg, const char *section, const char *key, int64_t dflt, int64_t min, int64_t max,
                        int64_t *out, char *err, size_t errlen)
{
    json_t *sec = json_object_get(cfg, section), *v = json_object_get(sec, key);
    if (sec && !json_is_object(sec)) {
        snprintf(err, errlen, "%s in the configuration must be an object", section);
        return -1;
    }
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        snprintf(err, errlen, "%s.%s must be a whole number from %" PRId64 " to %" PRId64, section, key, min, max);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

#define GIB ((int64_t)1 << 30)

/* The limits, the sampling and the review settings of the configuration. */
static int srv_read_settings(struct srv *srv, json_t *cfg, char *err, size_t errlen)
{
    int64_t body, str, batch, conns, unhandled, client_conns, client_unhandled, rows_stmt, rows_sess, ttl, pending;
    if (server_config_count(cfg, "limits", "max_body_bytes", 8 << 20, 1, GIB, &body, err, errlen) ||
        server_config_count(cfg, "limits", "max_string_bytes", 1 << 20, 1, GIB, &str, err, errlen) ||
        server_config_count(cfg, "limits", "max_batch_events", 1000, 1, 1000000, &batch, err, errlen) ||
        server_config_count(cfg, "limits", "max_connections", 1000, 1, 1000000, &conns, err, errlen))
        return -1;
    /* evhttp holds up to its own cap of a request (headers and twice the
     * body cap) before a handler sees it; a budget must fit one of them. */
    int64_t one_request = SRV_MAX_HEADERS + body * 2 + 4096;
    if (server_config_count(cfg, "limits", "max_unhandled_bytes", 4 * one_request, 1, 1024 * GIB, &unhandled, err,
                            errlen))
        return -1;
    if (unhandled < one_request) {
        snprintf(err, errlen, "limits.max_unhandled_bytes (%" PRId64 ") must hold one whole request: at least %"
                 PRId64 " (twice limits.max_body_bytes, plus headers)", unhandled, one_request);
        return -1;
    }
    /* One peer address may hold a quarter of each by default, and at least
     * one connection and one request; 0 turns the cap per client off. */
    if (server_config_count(cfg, "limits", "max_connections_per_client", conns / 4 > 0 ? conns / 4 : 1, 0, 1000000,
                            &client_conns, err, errlen) ||
        server_config_count(cfg, "limits", "max_unhandled_bytes_per_client",
                            unhandled / 4 > one_request ? unhandled / 4 : one_request, 0, 1024 * GIB,
                            &client_unhandled, err, errlen))
        return -1;
    if (client_unhandled > 0 && client_unhandled < one_request) {
        snprintf(err, errlen, "limits.max_unhandled_bytes_per_client (%" PRId64 ") must hold one whole request:"
                 " at least %" PRId64 " (or 0 for no cap per client)", client_unhandled, one_request);
        return -1;
    }
    if (server_config_count(cfg, "audit", "sample_rows_per_statement", 100, 0, GIB, &rows_stmt, err, errlen) ||
        server_config_count(cfg, "audit", "sample_rows_per_session", 10000, 0, 1024 * GIB, &rows_sess, err, errlen) ||
        server_config_count(cfg, "reviews", "ttl_seconds", 3600, 1, 366 * 86400, &ttl, err, errlen) ||
        server_config_count(cfg, "reviews", "max_pending_per_user", 50, 1, 1000000, &pending, err, errlen))
        return -1;
    srv->max_body = (size_t)body;
    srv->max_string = (size_t)str;
    srv->max_batch = (size_t)batch;
    srv->max_conns = (int)conns;
    srv->max_unhandled = (size_t)unhandled;
    srv->max_client_conns = (int)client_conns;
    srv->max_client_unhandled = (size_t)client_unhandled;
    srv->sample_rows_statement = rows_stmt;
    srv->sample_rows_session = rows_sess;
    srv->review_ttl_ms = ttl * 1000;
    srv->review_max_pending = pending;
    return 0;
}

static int srv_split_listen(const char *listen, char *host, size_t hlen, int *port)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen)
        return -1;
    size_t n = (size_t)(colon - listen);
    if (listen[0] == '[' && n >= 2 && listen[n - 1] == ']') {
        listen++;
        n -= 2;
    }
    if (n >= hlen)
        return -1;
    memcpy(host, listen, n);
    host[n] = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

static void srv_event_free(struct event *ev)
{
    if (ev)   /* libevent 2.1's event_free does not take NULL */
        event_free(ev);
}

static void srv_free(struct srv *srv)
{
    srv_webhook_stop(srv);
    while (srv->waiters)
        waiter_unlink(srv->waiters);
    if (srv->http)
        evhttp_free(srv->http);
    srv_conn_free_all(srv);
    srv_event_free(srv->ev_term);
    srv_event_free(srv->ev_int);
    srv_event_free(srv->ev_tick);
    srv_event_free(srv->ev_listen);
    srv_event_free(srv->ev_stop);
    for (int i = 0; i < 2; i++)
        server_verifier_free(srv->owned[i]);
    store_close(srv->store);
    if (srv->base)
        event_base_free(srv->base);
    SSL_CTX_free(srv->ssl);
}

/* libevent's own messages into the server's log. A connection refused at
 * limits.max_connections makes evhttp warn once each; conns.c already says
 * so, at most every few seconds, so those are dropped. */
static void srv_libevent_log(int severity, const char *msg)
{
    if (strstr(msg, "cannot get connection on"))
        return;
    log_msg(severity >= EVENT_LOG_WARN ? LOG_WARN : LOG_INFO, "libevent", "%s", msg);
}

int server_run(const struct server_options *opt, char *err, size_t errlen)
{
    struct srv srv = {.opt = opt};
    json_t *cfg = opt->config;
    char host[256];
    int port = 0;
    if (srv_split_listen(opt->listen, host, sizeof host, &port) < 0) {
        snprintf(err, errlen, "--listen must be HOST:PORT, not '%s'", opt->listen);
        return -1;
    }
    if (!!opt->tls_cert != !!opt->tls_key) {
        snprintf(err, errlen, "--tls-cert and --tls-key go together");
        return -1;
    }
    const char *ag = config_get_string(cfg, "rbac.admin_group");
    const char *au = config_get_string(cfg, "rbac.auditor_group");
    snprintf(srv.admin_group, sizeof srv.admin_group, "%s", ag ? ag : "admin");
    snprintf(srv.auditor_group, sizeof srv.auditor_group, "%s", au ? au : "auditor");
    if (srv_read_settings(&srv, cfg, err, errlen) < 0)
        return -1;

    json_t *dev = json_object_get(json_object_get(cfg, "auth"), "dev_tokens");
    if (dev && !server_listen_is_loopback(opt->listen)) {
        snprintf(err, errlen, "auth.dev_tokens is for tests on loopback only; refusing to listen on %s",
                 opt->listen);
        return -1;
    }
    srv.store = store_open(opt->store_url, err, errlen);
    if (!srv.store)
        return -1;
    /* Every server on a store needs the key that sealed its secrets: one
     * with another key would hand out 500s and seal secrets the others
     * cannot open. */
    if (opt->have_master_key) {
        char names[256];
        int bad = server_secrets_unopened(srv.store, opt->master_key, NULL, names, sizeof names, err, errlen);
        if (bad != 0) {
            if (bad > 0)
                snprintf(err, errlen,
                         "the master key does not open the secrets of %d connection%s in the store (%s): start "
                         "with the key that sealed them, the one every server on this store uses (if it is "
                         "lost, so are they: start without a master key, delete those connections, and add "
                         "them again under the new key)",
                         bad, bad == 1 ? "" : "s", names);
            srv_free(&srv);
            return -1;
        }
    }
    srv.owned[0] = server_apikey_verifier_new(srv.store);
    srv.chain[srv.nchain++] = srv.owned[0];
    if (dev) {
        srv.owned[1] = server_devtoken_verifier_new(dev, err, errlen);
        if (!srv.owned[1]) {
            srv_free(&srv);
            return -1;
        }
        srv.chain[srv.nchain++] = srv.owned[1];
        log_warn(MOD, "dev-token mode is on: for tests only");
    }
    for (int i = 0; i < opt->nverifiers; i++)
        srv.chain[srv.nchain++] = opt->verifiers[i];

    event_set_log_callback(srv_libevent_log);
    srv.base = event_base_new();
    srv.http = srv.base ? evhttp_new(srv.base) : NULL;
    if (!srv.http) {
        snprintf(err, errlen, "cannot create the event loop");
        srv_free(&srv);
        return -1;
    }
    if (opt->tls_cert) {
        srv.ssl = srv_tls_ctx(opt->tls_cert, opt->tls_key, err, errlen);
        if (!srv.ssl) {
            srv_free(&srv);
            return -1;
        }
    }
    /* Every connection through conns.c, which caps them and their bytes. */
    evhttp_set_bevcb(srv.http, srv_conn_bev, &srv);
    /* evhttp's own cap sits above ours so that we answer 413 in JSON. */
    evhttp_set_max_body_size(srv.http, (ev_ssize_t)(srv.max_body * 2 + 4096));
    evhttp_set_max_headers_size(srv.http, SRV_MAX_HEADERS);
    evhttp_set_timeout(srv.http, SRV_HTTP_TIMEOUT_S);
    evhttp_set_allowed_methods(srv.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                             EVHTTP_REQ_DELETE);
    evhttp_set_gencb(srv.http, srv_handle, &srv);
    srv.bound = evhttp_bind_socket_with_handle(srv.http, host, (ev_uint16_t)port);
    if (!srv.bound) {
        int e = EVUTIL_SOCKET_ERROR();
        snprintf(err, errlen, "cannot listen on %s: %s", opt->listen,
                 e ? evutil_socket_error_to_string(e) : "the address cannot be bound");
        srv_free(&srv);
        return -1;
    }
    if (srv_listen_start(&srv, err, errlen) < 0) {
        srv_free(&srv);
        return -1;
    }
    srv.ev_term = evsignal_new(srv.base, SIGTERM, srv_signal, &srv);
    srv.ev_int = evsignal_new(srv.base, SIGINT, srv_signal, &srv);
    srv.ev_tick = event_new(srv.base, -1, EV_PERSIST, srv_tick, &srv);
    srv.ev_stop = evtimer_new(srv.base, srv_stop_check, &srv);
    event_add(srv.ev_term, NULL);
    event_add(srv.ev_int, NULL);
    struct timeval sec = {0, 500000};
    event_add(srv.ev_tick, &sec);
    /* Print the actual port (":0" picks a free one). */
    struct sockaddr_storage ss;
    int actual = srv_bound_address(&srv, &ss);
    bool bound_ok = actual > 0;
    if (!bound_ok)
        actual = port;
    /* The name said loopback; the address it resolved to must be too. */
    if (dev && (!bound_ok || !util_sockaddr_is_loopback((const struct sockaddr *)&ss))) {
        snprintf(err, errlen, "auth.dev_tokens is for tests on loopback only; %s is not a loopback address",
                 opt->listen);
        srv_free(&srv);
        return -1;
    }
    if (!srv.ssl && (!bound_ok || !util_sockaddr_is_loopback((const struct sockaddr *)&ss)))
        log_warn(MOD, "serving plain HTTP on %s, which is not a loopback address: tokens, connection "
                      "secrets and the audit trail cross the network in clear unless a TLS proxy is in front "
                      "(--tls-cert/--tls-key serve HTTPS)",
                 opt->listen);
    /* After the checks above: nothing is pushed by a server that refuses to run. */
    if (srv_webhook_start(&srv, err, errlen) < 0) {
        srv_free(&srv);
        return -1;
    }
    if (opt->on_listening) {
        char url[400];
        bool v6 = strchr(host, ':') != NULL;
        snprintf(url, sizeof url, "%s://%s%s%s:%d", srv.ssl ? "https" : "http", v6 ? "[" : "", host,
                 v6 ? "]" : "", actual);
        opt->on_listening(opt->on_listening_arg, url);
    }
    log_msg(LOG_WARN, MOD, "listening on %s://%s:%d (store %s, schema v%d)", srv.ssl ? "https" : "http",
            host, actual, store_kind(srv.store), store_schema_version(srv.store));
    event_base_dispatch(srv.base);
    log_msg(LOG_WARN, MOD, "stopped");
    srv_free(&srv);
    return 0;
}
