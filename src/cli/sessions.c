/* sessions.c — `hoopctl sessions list|show`: recorded sessions from the
 * server, filtered and paged; one session with its events in order. */
#include "hoopctl/api.h"
#include "hoopctl/cli.h"
#include "hoopctl/util.h"

#include <stdio.h>
#include <string.h>

static void fmt_time(json_t *v, char *out, size_t len)
{
    if (!json_is_integer(v)) {
        snprintf(out, len, "-");
        return;
    }
    util_iso8601_ms(json_integer_value(v), out, len);
}

static int add_time_param(struct buf *q, const char *name, const char *val)
{
    int64_t ms;
    if (!val)
        return 0;
    if (api_parse_time(val, util_now_ms(), &ms) < 0)
        return -1;
    buf_printf(q, "&%s=%lld", name, (long long)ms);
    return 0;
}

static int sessions_list(const struct cli_args *a, struct cli_context *ctx, struct api_client *api)
{
    struct buf q = {0};
    char esc[600], err[600];
    buf_append_str(&q, "/api/v1/sessions?x=1");
    const char *sv[] = {"user", "connection", "limit", "cursor"};
    for (size_t i = 0; i < 4; i++)
        if (cli_get(a, sv[i])) {
            api_escape(cli_get(a, sv[i]), esc, sizeof esc);
            buf_printf(&q, "&%s=%s", sv[i], esc);
        }
    if (cli_flag(a, "has-denials"))
        buf_append_str(&q, "&has_denials=true");
    if (cli_flag(a, "has-reviews"))
        buf_append_str(&q, "&has_reviews=true");
    if (add_time_param(&q, "since", cli_get(a, "since")) < 0 ||
        add_time_param(&q, "until", cli_get(a, "until")) < 0) {
        buf_free(&q);
        return cli_usage_error(a->cmd, "--since/--until take ms, an ISO time, or an age like 7d");
    }
    json_t *resp = NULL;
    int rc = api_do(api, "GET", buf_cstr(&q), NULL, &resp, err, sizeof err);
    buf_free(&q);
    if (rc)
        return cli_fail("sessions", rc, err);
    if (!strcmp(ctx->output, "json")) {
        api_print_json(stdout, resp);
    } else {
        printf("%-36s %-16s %-14s %-24s %6s %s\n", "ID", "USER", "CONNECTION", "STARTED", "EVENTS", "FLAGS");
        size_t i;
        json_t *s;
        json_array_foreach(json_object_get(resp, "sessions"), i, s) {
            char started[40];
            fmt_time(json_object_get(s, "started_at"), started, sizeof started);
            const char *conn = json_string_value(json_object_get(s, "connection"));
            /* each field on its own line: no newline in a user name can
             * pass for a session row */
            printf("%-36s %-16s %-14s %-24s %6lld %s%s\n", cli_safe(json_string_value(json_object_get(s, "id"))),
                   cli_safe(json_string_value(json_object_get(s, "user"))), conn ? cli_safe(conn) : "-", started,
                   (long long)json_integer_value(json_object_get(s, "events")),
                   json_is_true(json_object_get(s, "has_denials")) ? "denied " : "",
                   json_is_true(json_object_get(s, "has_reviews")) ? "reviewed" : "");
        }
        const char *next = json_string_value(json_object_get(resp, "next"));
        if (next)
            printf("more: --cursor %s\n", cli_safe(next));
    }
    json_decref(resp);
    return 0;
}

/* Text that others wrote (names, decisions, reviewers, tags), on one line:
 * a newline, a tab or any other control is shown as an escape. */
static int put_field(struct buf *b, const char *s)
{
    return s ? buf_append_terminal_safe(b, s, strlen(s), false) : 0;
}

/* What starts each further line of a statement's text. An event line starts
 * with its number (right-aligned in six columns) and its time; this starts
 * with seven blanks and a bar, so no statement can pass a line of its own
 * text off as an event. Replay shows the same lines behind psql's "->". */
#define STATEMENT_CONT "\n       | "

/* An event's time is the gateway's clock; the server records when it got
 * the event by its own. Say so when the two are minutes apart: a backlog
 * shipped late, or a gateway whose clock is off (or that lies). */
static int put_receipt(struct buf *b, json_t *e)
{
    enum { APART_MS = 5 * 60 * 1000 };
    json_t *rv = json_object_get(e, "received_at");
    if (!json_is_integer(rv))
        return 0; /* stored before the server recorded it */
    json_int_t d = json_integer_value(rv) - json_integer_value(json_object_get(e, "time"));
    if (d > -APART_MS && d < APART_MS)
        return 0;
    char t[40];
    fmt_time(rv, t, sizeof t);
    return buf_printf(b, "  [server received it %s%s]", t, d < 0 ? ", before the time the gateway gave it" : "");
}

/* One event of sessions show, every string in it from the server. */
static int put_event(struct buf *b, json_t *e)
{
    char t[40];
    fmt_time(json_object_get(e, "time"), t, sizeof t);
    json_t *d = json_object_get(e, "data");
    const char *text = json_string_value(json_object_get(d, "text"));
    const char *dec = json_string_value(json_object_get(d, "decision"));
    struct buf type = {0};
    int rc = put_field(&type, json_string_value(json_object_get(e, "type")));
    rc |= buf_printf(b, "%6lld %s %-13s ", (long long)json_integer_value(json_object_get(e, "seq")), t,
                     buf_cstr(&type) ? buf_cstr(&type) : "");
    buf_free(&type);
    if (dec) {
        rc |= put_field(b, dec);
        rc |= buf_append_str(b, " ");
    }
    if (text)
        rc |= cli_put_statement(b, text, STATEMENT_CONT);
    json_t *rv = json_object_get(d, "review");
    if (json_is_object(rv)) {
        const char *by = json_string_value(json_object_get(rv, "decided_by"));
        rc |= buf_append_str(b, "  [review ");
        rc |= put_field(b, json_string_value(json_object_get(rv, "id")) ?: "?");
        rc |= buf_append_str(b, " ");
        rc |= put_field(b, json_string_value(json_object_get(rv, "status")) ?: "?");
        rc |= buf_append_str(b, " by ");
        rc |= put_field(b, by ? by : "nobody");
        rc |= buf_append_str(b, "]");
    }
    /* how a statement finished (completion, or a result's own fields) */
    const char *tag = json_string_value(json_object_get(d, "command_tag"));
    json_t *us = json_object_get(d, "duration_us");
    if (!dec && (tag || json_is_integer(us))) {
        rc |= buf_printf(b, "of #%lld: ", (long long)json_integer_value(json_object_get(d, "statement_seq")));
        if (tag) {
            rc |= put_field(b, tag);
            rc |= buf_append_str(b, ", ");
        }
        rc |= buf_printf(b, "%.3f ms", (double)json_integer_value(us) / 1000.0);
        const char *ss = json_string_value(json_object_get(d, "sqlstate"));
        if (ss) {
            rc |= buf_append_str(b, ", SQLSTATE ");
            rc |= put_field(b, ss);
        }
    }
    rc |= put_receipt(b, e);
    rc |= buf_append_str(b, "\n");
    return rc;
}

static int sessions_show(const struct cli_args *a, struct cli_context *ctx, struct api_client *api)
{
    char path[400], esc[300], err[600];
    json_t *s = NULL, *evs = NULL, *page = NULL;
    api_escape(a->pos[1], esc, sizeof esc);
    snprintf(path, sizeof path, "/api/v1/sessions/%s", esc);
    int rc = api_do(api, "GET", path, NULL, &s, err, sizeof err);
    if (rc && api->last_status == 404)
        snprintf(err, sizeof err, "no session %.200s on the server (or not one of yours)", a->pos[1]);
    if (rc)
        return cli_fail("sessions", rc, err);
    evs = json_array();
    for (json_int_t off = 0;;) {
        snprintf(path, sizeof path, "/api/v1/sessions/%s/events?offset=%lld&limit=1000", esc, (long long)off);
        if ((rc = api_do(api, "GET", path, NULL, &page, err, sizeof err))) {
            json_decref(s);
            json_decref(evs);
            return cli_fail("sessions", rc, err);
        }
        json_array_extend(evs, json_object_get(page, "events"));
        /* the server says where the next page starts, if there is one */
        json_t *next = json_object_get(page, "next_offset");
        bool more = json_is_integer(next) && json_integer_value(next) > off;
        if (more)
            off = json_integer_value(next);
        json_decref(page);
        if (!more)
            break;
    }
    if (!strcmp(ctx->output, "json")) {
        json_object_set(s, "event_list", evs);
        api_print_json(stdout, s);
    } else {
        char started[40], ended[40];
        fmt_time(json_object_get(s, "started_at"), started, sizeof started);
        fmt_time(json_object_get(s, "ended_at"), ended, sizeof ended);
        const char *conn = json_string_value(json_object_get(s, "connection"));
        printf("session:    %s\nuser:       %s\nconnection: %s\nstarted:    %s\nended:      %s\n\n",
               cli_safe(json_string_value(json_object_get(s, "id"))),
               cli_safe(json_string_value(json_object_get(s, "user"))), conn ? cli_safe(conn) : "-", started, ended);
        size_t i;
        json_t *e;
        struct buf line = {0};
        json_array_foreach(evs, i, e) {
            buf_reset(&line);
            if (put_event(&line, e) < 0) {
                buf_free(&line);
                json_decref(s);
                json_decref(evs);
                return cli_fail("sessions", 1, "out of memory");
            }
            fwrite(line.data, 1, line.len, stdout);
        }
        buf_free(&line);
    }
    json_decref(s);
    json_decref(evs);
    return 0;
}

static int sessions_run(const struct cli_args *a, struct cli_context *ctx)
{
    struct api_client api;
    char err[600];
    const char *verb = a->pos[0];
    if (strcmp(verb, "list") && strcmp(verb, "show"))
        return cli_usage_error(a->cmd, "sessions takes list or show ID");
    bool show = !strcmp(verb, "show");
    int urc = cli_verb_args(a, show ? 2 : 1, "a session id");
    if (!urc && !show)
        urc = cli_check_limit(a, 1000);
    if (urc)
        return urc;
    int irc = api_client_init(&api, cli_get(a, "server"), err, sizeof err);
    if (irc)
        return cli_fail("sessions", irc, err);
    int rc = !strcmp(verb, "list") ? sessions_list(a, ctx, &api) : sessions_show(a, ctx, &api);
    api_client_free(&api);
    return rc;
}

static const struct cli_option sessions_options[] = {
    {"user", 0, "SUBJECT", "only this user's sessions", CLI_COMPLETE_NONE, NULL},
    {"connection", 0, "NAME", "only sessions on this connection", CLI_COMPLETE_DYNAMIC, "connections"},
    {"since", 0, "TIME", "started at or after (ms, ISO time, or age like 7d)", CLI_COMPLETE_NONE, NULL},
    {"until", 0, "TIME", "started before", CLI_COMPLETE_NONE, NULL},
    {"has-denials", 0, NULL, "only sessions with a denied statement", CLI_COMPLETE_NONE, NULL},
    {"has-reviews", 0, NULL, "only sessions with a reviewed statement", CLI_COMPLETE_NONE, NULL},
    {"limit", 0, "N", "sessions per page (1..1000, default 100)", CLI_COMPLETE_NONE, NULL},
    {"cursor", 0, "CURSOR", "continue after this page cursor", CLI_COMPLETE_NONE, NULL},
    CLI_OPTION_SERVER,
    {0},
};

static const struct cli_verb_complete sessions_verb_complete[] = {
    {"show", CLI_COMPLETE_DYNAMIC, "sessions"},
    {0},
};

const struct cli_command cli_cmd_sessions = {
    .name = "sessions",
    .summary = "List recorded sessions or show one with its statements",
    .usage = "[--server URL] list [--user SUBJECT] [--connection NAME] [--since T] [--until T] [--has-denials] "
             "[--has-reviews] [--limit N] [--cursor C] | show ID",
    .description = "Users see their own sessions; the auditor and admin groups see all.",
    .options = sessions_options,
    .arg_complete = CLI_COMPLETE_WORDS,
    .arg_words = "list show",
    .verb_complete = sessions_verb_complete,
    .min_args = 1,
    .max_args = 2,
    .run = sessions_run,
};
