/* source_api.c — a tui_source over the server's /api/v1 (api.h): sessions (a
 * page at a time) and their events, the reviews this user may decide
 * (long-polled), decided reviews, and approve/deny. HTTP statuses become
 * tui_status values. */
#include "hoopctl/api.h"
#include "hoopctl/tui.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define API_SESSIONS_PAGE 1000 /* the most the server gives at once */
#define API_EVENTS_PAGE 5000

struct api_source {
    struct api_client client;
    char subject[256], issuer[256]; /* who we are (from whoami) */
};

static int status_for_http(long http)
{
    if (http == 401)
        return TUI_ERR_AUTH;
    if (http == 403)
        return TUI_ERR_FORBIDDEN;
    if (http == 404)
        return TUI_ERR_NOT_FOUND;
    if (http == 409)
        return TUI_ERR_CONFLICT;
    if (http == 0 || http >= 500)
        return TUI_ERR_UNAVAILABLE;
    return TUI_ERR_FAILED;
}

/* One call; 0 with *resp on 2xx, else a tui_status with err set. */
static int api_source_call(struct api_source *a, const char *method, const char *path, json_t *body,
                           json_t **resp, char *err, size_t errlen)
{
    long http = 0;
    *resp = NULL;
    if (api_call(&a->client, method, path, body, &http, resp, err, errlen) < 0)
        return TUI_ERR_UNAVAILABLE;
    if (http >= 200 && http < 300) {
        if (!*resp) {
            snprintf(err, errlen, "%s %s: the server's answer is not JSON", method, path);
            return TUI_ERR_INVALID;
        }
        return TUI_OK;
    }
    snprintf(err, errlen, "%s (HTTP %ld)%s", api_error_message(*resp), http,
             http == 401 && a->client.token_source == API_TOKEN_LOGIN ? "; run 'hoopctl login' again" : "");
    json_decref(*resp);
    *resp = NULL;
    return status_for_http(http);
}

static void copy_str(char *dst, size_t len, const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    snprintf(dst, len, "%s", json_is_string(v) ? json_string_value(v) : "");
}

static int64_t get_int(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static int api_sessions(void *self, const char *cursor, struct tui_session_row **rows, int *n,
                        char next[TUI_CURSOR_MAX], char *err, size_t errlen)
{
    struct api_source *a = self;
    *rows = NULL;
    *n = 0;
    next[0] = 0;
    json_t *resp;
    char path[64 + 3 * TUI_CURSOR_MAX], esc[3 * TUI_CURSOR_MAX + 1];
    api_escape(cursor ? cursor : "", esc, sizeof esc);
    snprintf(path, sizeof path, "/api/v1/sessions?limit=%d%s%s", API_SESSIONS_PAGE, esc[0] ? "&cursor=" : "",
             esc);
    int rc = api_source_call(a, "GET", path, NULL, &resp, err, errlen);
    if (rc != TUI_OK)
        return rc;
    const json_t *arr = json_object_get(resp, "sessions");
    if (!json_is_array(arr)) {
        json_decref(resp);
        snprintf(err, errlen, "GET /api/v1/sessions: no \"sessions\" array");
        return TUI_ERR_INVALID;
    }
    size_t total = json_array_size(arr);
    *rows = calloc(total + 1, sizeof **rows);
    if (!*rows) {
        json_decref(resp);
        return TUI_ERR_FAILED;
    }
    for (size_t i = 0; i < total && i < API_SESSIONS_PAGE; i++) {
        const json_t *s = json_array_get(arr, i);
        struct tui_session_row *r = &(*rows)[*n];
        if (!json_is_string(json_object_get(s, "id")))
            continue;
        copy_str(r->id, sizeof r->id, s, "id");
        copy_str(r->user, sizeof r->user, s, "user");
        copy_str(r->connection, sizeof r->connection, s, "connection");
        r->started_ms = get_int(s, "started_at");
        r->ended_ms = get_int(s, "ended_at");
        snprintf(r->state, sizeof r->state, "%s", r->ended_ms ? "ended" : "active");
        /* the list carries event counts and flags; exact counts come with the session */
        r->statements = -1;
        r->events = (int)get_int(s, "events");
        r->denials = json_is_true(json_object_get(s, "has_denials")) ? -1 : 0;
        r->reviews = json_is_true(json_object_get(s, "has_reviews")) ? -1 : 0;
        (*n)++;
    }
    const json_t *nx = json_object_get(resp, "next");
    if (json_is_string(nx) && json_string_length(nx) < TUI_CURSOR_MAX)
        snprintf(next, TUI_CURSOR_MAX, "%s", json_string_value(nx));
    json_decref(resp);
    return TUI_OK;
}

static int api_session(void *self, const char *id, struct replay_session *out, char *err,
                       size_t errlen)
{
    struct api_source *a = self;
    char esc[256], path[512];
    api_escape(id, esc, sizeof esc);
    snprintf(path, sizeof path, "/api/v1/sessions/%s", esc);
    json_t *sess;
    int rc = api_source_call(a, "GET", path, NULL, &sess, err, errlen);
    if (rc == TUI_ERR_NOT_FOUND)
        snprintf(err, errlen, "no session %s on the server", id);
    if (rc != TUI_OK)
        return rc;
    json_t *events = json_array();
    for (json_int_t off = 0;;) {
        snprintf(path, sizeof path, "/api/v1/sessions/%s/events?offset=%lld&limit=%d", esc,
                 (long long)off, API_EVENTS_PAGE);
        json_t *page;
        rc = api_source_call(a, "GET", path, NULL, &page, err, errlen);
        if (rc != TUI_OK)
            break;
        json_array_extend(events, json_object_get(page, "events"));
        /* pages may stop short of the limit: the server names the next */
        json_t *next = json_object_get(page, "next_offset");
        bool more = json_is_integer(next) && json_integer_value(next) > off;
        if (more)
            off = json_integer_value(next);
        json_decref(page);
        if (!more)
            break;
        if (json_array_size(events) > (size_t)REPLAY_MAX_STATEMENTS * 4) {
            snprintf(err, errlen, "session %s has too many events to replay", id);
            rc = TUI_ERR_INVALID;
            break;
        }
    }
    if (rc == TUI_OK) {
        json_t *doc = json_pack("{s:O,s:O}", "session", sess, "events", events);
        char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        if (!text)
            rc = TUI_ERR_FAILED;
        else if (replay_session_from_json(text, strlen(text), out, err, errlen) < 0)
            rc = TUI_ERR_INVALID;
        free(text);
    }
    json_decref(events);
    json_decref(sess);
    return rc;
}

/* Whether this user asked for the review (one cannot decide one's own). */
static bool requested_by_me(const struct api_source *a, const json_t *o)
{
    const char *sub = json_string_value(json_object_get(o, "requester"));
    const char *iss = json_string_value(json_object_get(o, "requester_issuer"));
    return sub && iss && strcmp(sub, a->subject) == 0 && strcmp(iss, a->issuer) == 0;
}

/* Pages of reviews read at most (each up to 1000 reviews or 4 MiB). */
#define TUI_REVIEW_PAGES 32

static int api_reviews(void *self, const char *status, int64_t *cursor, int wait_ms,
                       struct tui_review **out, int *n, char *err, size_t errlen)
{
    struct api_source *a = self;
    *out = NULL;
    *n = 0;
    bool pending = strcmp(status, "pending") == 0;
    char path[1024];
    json_t *resp;
    int rc;
    if (pending && wait_ms > 0) {
        /* hold until a review newer than after_ms arrives (or the time is up) */
        int secs = wait_ms / 1000 < 1 ? 1 : wait_ms / 1000 > 300 ? 300 : wait_ms / 1000;
        snprintf(path, sizeof path, "/api/v1/reviews/wait?after=%lld&timeout=%d", (long long)*cursor,
                 secs);
        rc = api_source_call(a, "GET", path, NULL, &resp, err, errlen);
        if (rc != TUI_OK)
            return rc;
        const json_t *c = json_object_get(resp, "cursor");
        if (json_is_integer(c) && json_integer_value(c) > *cursor)
            *cursor = json_integer_value(c);
        json_decref(resp);
    }
    /* Every page of the queue: the server ends a page at 1000 reviews or
     * 4 MiB of statements and values, and a reviewer must see the whole
     * queue (one requester's large reviews must not hide the others'). */
    char next[256] = "";
    for (int page = 0; page < TUI_REVIEW_PAGES; page++) {
        char esc[600];
        api_escape(next, esc, sizeof esc);
        snprintf(path, sizeof path, "/api/v1/reviews?status=%s%s%s", pending ? "pending" : "all",
                 next[0] ? "&cursor=" : "", next[0] ? esc : "");
        rc = api_source_call(a, "GET", path, NULL, &resp, err, errlen);
        if (rc != TUI_OK)
            break;
        const json_t *arr = json_object_get(resp, "reviews");
        size_t total = json_array_size(arr);
        struct tui_review *grown = realloc(*out, ((size_t)*n + total + 1) * sizeof **out);
        if (!grown) {
            json_decref(resp);
            rc = TUI_ERR_FAILED;
            break;
        }
        *out = grown;
        for (size_t i = 0; i < total; i++) {
            const json_t *o = json_array_get(arr, i);
            const char *st = json_string_value(json_object_get(o, "status"));
            if (!json_is_string(json_object_get(o, "id")) || !st)
                continue;
            if (pending ? requested_by_me(a, o) : strcmp(st, "pending") == 0)
                continue;
            if (tui_review_from_json(o, &(*out)[*n]) < 0)
                break;
            (*n)++;
        }
        const char *nx = json_string_value(json_object_get(resp, "next"));
        snprintf(next, sizeof next, "%s", nx && strlen(nx) < sizeof next ? nx : "");
        json_decref(resp);
        if (!next[0] || !pending) /* the history: its newest page */
            break;
    }
    if (rc != TUI_OK) {
        tui_reviews_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

static int api_decide(void *self, const char *id, bool approve, const char *reason, char *err,
                      size_t errlen)
{
    struct api_source *a = self;
    char esc[256], path[512];
    api_escape(id, esc, sizeof esc);
    snprintf(path, sizeof path, "/api/v1/reviews/%s/%s", esc, approve ? "approve" : "deny");
    json_t *body = json_object();
    if (reason && *reason)
        json_object_set_new(body, "reason", json_string(reason));
    json_t *resp;
    int rc = api_source_call(a, "POST", path, body, &resp, err, errlen);
    json_decref(body);
    json_decref(resp);
    return rc;
}

static void api_close(void *self)
{
    struct api_source *a = self;
    api_client_free(&a->client);
    free(a);
}

/* The server pages by (started_at, id), newest first: the page after a row
 * holds what is older than it. */
static void api_cursor_after(void *self, const struct tui_session_row *row, char out[TUI_CURSOR_MAX])
{
    (void)self;
    snprintf(out, TUI_CURSOR_MAX, "%lld:%s", (long long)row->started_ms, row->id);
}

static const struct tui_source_ops api_ops = {
    .sessions = api_sessions,
    .cursor_after = api_cursor_after,
    .session = api_session,
    .reviews = api_reviews,
    .decide = api_decide,
    .close = api_close,
};

int tui_source_open_api(struct tui_source *src, const char *server_url, char *err, size_t errlen)
{
    struct api_source *a = calloc(1, sizeof *a);
    if (!a)
        return TUI_ERR_FAILED;
    int irc = api_client_init(&a->client, server_url, err, errlen);
    if (irc) {
        api_client_free(&a->client);
        free(a);
        return irc == 3 ? TUI_ERR_AUTH : TUI_ERR_FAILED;
    }
    a->client.timeout_s = 330; /* long polls hold up to 300 s */
    json_t *who;
    int rc = api_source_call(a, "GET", "/api/v1/whoami", NULL, &who, err, errlen);
    if (rc != TUI_OK) {
        api_close(a);
        return rc;
    }
    copy_str(a->subject, sizeof a->subject, who, "subject");
    copy_str(a->issuer, sizeof a->issuer, who, "issuer");
    src->ops = &api_ops;
    src->self = a;
    snprintf(src->description, sizeof src->description, "%s as %s", a->client.base,
             json_is_string(json_object_get(who, "name")) && json_string_length(json_object_get(who, "name"))
                 ? json_string_value(json_object_get(who, "name"))
                 : a->subject);
    json_decref(who);
    return TUI_OK;
}
