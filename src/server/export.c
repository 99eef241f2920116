/* export.c — GET /api/v1/audit/export: the audit trail as JSON lines or CSV,
 * streamed one page at a time, the next page read only when the previous one
 * has been written to the socket, so memory stays constant. */
#include "internal.h"
#include "hoopctl/log.h"
#include "hoopctl/util.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT_PAGE 500

struct srv_export {
    struct srv *srv;
    struct evhttp_request *r;
    int64_t after, since, until;
    bool csv;
};

static void export_done(struct srv_export *ex)
{
    ex->srv->exports--;
    free(ex);
}

static void export_closed(struct evhttp_connection *c, void *arg)
{
    (void)c;
    export_done(arg);
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

static void export_next(struct evhttp_connection *c, void *arg)
{
    (void)c;
    struct srv_export *ex = arg;
    json_t *rows = NULL;
    char err[256];
    if (store_events_page(ex->srv->store, ex->after, ex->since, ex->until, EXPORT_PAGE, &rows, err,
                          sizeof err) != 0) {
        /* Headers are gone already: end the stream; the client sees it short. */
        ex->srv->m.store_errors++;
        log_error("server", "export: %s", err);
        rows = json_array();
    }
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
    *ex = (struct srv_export){rq->srv, rq->r, 0, since, until, csv};
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
