/* export.c — GET /api/v1/audit/export: the audit trail as JSON lines or CSV,
 * streamed one page at a time, the next page read only when the previous one
 * has been written to the socket, so memory stays constant.
 * The status line went out with the first page, so a store error later on
 * cannot be answered with an error status. A page the store was too busy
 * for (STORE_BUSY: a lock held elsewhere) is read once more a second later;
 * if that fails too, or the store fails otherwise, the connection is
 * dropped without the chunked reply's last chunk: the client sees a
 * transfer cut short (curl: "transfer closed with outstanding read data
 * remaining"), never an export that looks whole and is not. */
#include "internal.h"
#include "hoopctl/log.h"
#include "hoopctl/util.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT_PAGE 500

struct srv_export {
    struct srv *srv;
    struct evhttp_request *r;
    int64_t after, since, until;
    bool csv;
    bool retried;              /* the page at after was read once more after STORE_BUSY */
    struct event *retry;       /* that second read, a second later */
};

#define EXPORT_RETRY_MS 1000

static void export_done(struct srv_export *ex)
{
    if (ex->retry)
        event_free(ex->retry);
    ex->srv->exports--;
    free(ex);
}

/* The connection went (the client left, or export_abort): a request that
 * evhttp detached from it is ours to free; one still attached is evhttp's. */
static void export_closed(struct evhttp_connection *c, void *arg)
{
    (void)c;
    struct srv_export *ex = arg;
    if (!evhttp_request_get_connection(ex->r))
        evhttp_request_free(ex->r);
    export_done(ex);
}

/* Cut the reply short: evhttp's own error path (deferred, as for a client
 * that went) drops the connection without the last chunk; export_closed
 * then frees ex. */
static void export_abort(struct srv_export *ex)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(ex->r);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    if (!bev)
        return;
    bufferevent_disable(bev, EV_READ);
    bufferevent_trigger_event(bev, BEV_EVENT_ERROR | BEV_EVENT_READING, BEV_TRIG_DEFER_CALLBACKS);
}

static void csv_field(struct evbuffer *b, const char *s, bool last)
{
    evbuffer_add(b, "\"", 1);
    for (const char *p = s ? s : ""; *p; p++) {
        if (*p == '"')
            evbuffer_add(b, "\"", 1);
        evbuffer_add(b, p, 1);
    }
    evbuffer_add(b, last ? "\"\r\n" : "\",", last ? 3 : 2);
}

static void export_write_rows(struct srv_export *ex, json_t *rows, struct evbuffer *b)
{
    size_t i;
    json_t *e;
    json_array_foreach(rows, i, e) {
        ex->after = json_integer_value(json_object_get(e, "n"));
        if (!ex->csv) {
            char *line = json_dumps(e, JSON_COMPACT);
            if (line) {
                evbuffer_add(b, line, strlen(line));
                evbuffer_add(b, "\n", 1);
                free(line);
            }
            continue;
        }
        static const char *const cols[] = {"n", "id", "session_id", "seq", "type", "time", "user",
                                           "data", "prev_hash", "hash", "received_at"};
        enum { NCOLS = sizeof cols / sizeof cols[0] };
        for (size_t k = 0; k < NCOLS; k++) {
            json_t *v = json_object_get(e, cols[k]);
            char num[24], *dumped = NULL;
            const char *s = NULL;
            if (json_is_string(v))
                s = json_string_value(v);
            else if (json_is_integer(v)) {
                snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
                s = num;
            } else if (v && !json_is_null(v))
                s = dumped = json_dumps(v, JSON_COMPACT);
            csv_field(b, s, k == NCOLS - 1);
            free(dumped);
        }
    }
}

static void export_next(struct evhttp_connection *c, void *arg);

static void export_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    export_next(NULL, arg);
}

static void export_next(struct evhttp_connection *c, void *arg)
{
    (void)c;
    struct srv_export *ex = arg;
    json_t *rows = NULL;
    char err[256];
    int rc = store_events_page(ex->srv->store, ex->after, ex->since, ex->until, EXPORT_PAGE, &rows, err, sizeof err);
    if (rc == STORE_BUSY && !ex->retried) {
        ex->retried = true;
        struct timeval tv = {EXPORT_RETRY_MS / 1000, (EXPORT_RETRY_MS % 1000) * 1000};
        if (!ex->retry)
            ex->retry = evtimer_new(ex->srv->base, export_retry, ex);
        if (ex->retry && evtimer_add(ex->retry, &tv) == 0) {
            log_warn("server", "export: %s: reading the page after event %lld once more", err,
                     (long long)ex->after);
            return;
        }
    }
    if (rc != 0) {
        /* The status line is gone already: drop the connection without the
         * last chunk, so that the client sees the export cut short. */
        ex->srv->m.store_errors++;
        log_error("server", "export: %s: the export is cut short after event %lld", err, (long long)ex->after);
        export_abort(ex);
        return;
    }
    if (json_array_size(rows) > 0)
        ex->retried = false;
    if (json_array_size(rows) == 0) {
        json_decref(rows);
        srv_conn_on_close(ex->srv, evhttp_request_get_connection(ex->r), NULL, NULL);
        evhttp_send_reply_end(ex->r);
        export_done(ex);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    export_write_rows(ex, rows, b);
    json_decref(rows);
    evhttp_send_reply_chunk_with_cb(ex->r, b, export_next, ex);
    evbuffer_free(b);
}

void srv_export_start(struct srv_req *rq, int64_t since, int64_t until, bool csv)
{
    struct srv_export *ex = calloc(1, sizeof *ex);
    if (!ex) {
        srv_reply_error(rq, 503, "out of memory");
        return;
    }
    *ex = (struct srv_export){.srv = rq->srv, .r = rq->r, .since = since, .until = until, .csv = csv};
    rq->srv->exports++;
    rq->srv->m.requests[2]++;
    struct evkeyvalq *h = evhttp_request_get_output_headers(rq->r);
    evhttp_add_header(h, "Content-Type", csv ? "text/csv" : "application/x-ndjson");
    evhttp_send_reply_start(rq->r, 200, "OK");
    srv_conn_on_close(rq->srv, evhttp_request_get_connection(rq->r), export_closed, ex);
    if (csv) {
        struct evbuffer *b = evbuffer_new();
        evbuffer_add_printf(b, "n,id,session_id,seq,type,time,user,data,prev_hash,hash,received_at\r\n");
        evhttp_send_reply_chunk_with_cb(rq->r, b, export_next, ex);
        evbuffer_free(b);
    } else {
        export_next(NULL, ex);
    }
}
