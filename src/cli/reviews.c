/* reviews.c — `hoopctl reviews list|show|approve|deny`: the approval queue of
 * the connections you review, through the server API. */
#include "hoopctl/api.h"
#include "hoopctl/cli.h"
#include "hoopctl/replay.h"
#include "hoopctl/util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A field of r as it may be shown on a terminal (malloc'd; "" when absent). */
static char *shown(json_t *r, const char *key, bool keep_lines)
{
    return util_terminal_safe(json_string_value(json_object_get(r, key)), keep_lines);
}

/* Escaped text (buf_append_terminal_safe's) in at most max columns: whole
 * when it fits, else cut before max - 1 and "…" after it; never inside a
 * UTF-8 character or an escape (\xNN, \uNNNN, \UNNNNNNNN). */
static size_t unit_len(const char *s, int *cols)
{
    size_t n = 1;
    *cols = 1;
    if (s[0] == '\\' && (s[1] == 'x' || s[1] == 'u' || s[1] == 'U')) {
        size_t digits = s[1] == 'x' ? 2 : s[1] == 'u' ? 4 : 8, k = 0;
        while (k < digits && isxdigit((unsigned char)s[2 + k]))
            k++;
        if (k == digits)
            *cols = (int)(n = 2 + digits);
    } else {
        while (s[n] && ((unsigned char)s[n] & 0xc0) == 0x80)
            n++;
        *cols = replay_display_width(s, n); /* a wide character takes two */
    }
    return n;
}

static void put_cut(struct buf *b, const char *s, int max)
{
    int total = 0, cols;
    for (size_t i = 0; s[i] && total <= max; total += cols)
        i += unit_len(s + i, &cols);
    if (total <= max) {
        buf_append_str(b, s);
        return;
    }
    size_t i = 0;
    for (int used = 0; s[i];) {
        size_t n = unit_len(s + i, &cols);
        if (used + cols > max - 1)
            break;
        used += cols;
        i += n;
    }
    buf_append(b, s, i);
    buf_append_str(b, "\u2026");
}

/* The statement and every name come from the requester or the server:
 * escapes could hide from a reviewer what approving releases. */
static void review_line(json_t *r)
{
    char created[40];
    util_iso8601_ms(json_integer_value(json_object_get(r, "created_at")), created, sizeof created);
    char *id = shown(r, "id", false), *status = shown(r, "status", false), *conn = shown(r, "connection", false),
         *who = shown(r, "requester", false), *stmt = shown(r, "statement", false);
    struct buf cut = {0};
    put_cut(&cut, stmt ? stmt : "?", 60);
    printf("%-36s %-9s %-14s %-16s %-24s %s\n", id ? id : "?", status ? status : "?", conn ? conn : "?",
           who ? who : "?", created, buf_cstr(&cut) ? buf_cstr(&cut) : "?");
    buf_free(&cut);
    free(id);
    free(status);
    free(conn);
    free(who);
    free(stmt);
}

/* What starts every line of a statement in reviews show. */
#define STATEMENT_BAR "  | "

/* A decision the server refused with 409 (the review is no longer pending):
 * ask for the review and say what became of it and who decided it. err
 * stays as it is when the review cannot be read or still reads pending. */
static void conflict_detail(struct api_client *api, const char *id, char *err, size_t errlen)
{
    char path[400], esc[300], e2[600];
    json_t *r = NULL;
    api_escape(id, esc, sizeof esc);
    snprintf(path, sizeof path, "/api/v1/reviews/%s", esc);
    if (api_do(api, "GET", path, NULL, &r, e2, sizeof e2) == 0) {
        const char *st = json_string_value(json_object_get(r, "status"));
        const char *by = json_string_value(json_object_get(r, "decided_by"));
        json_t *exp = json_object_get(r, "expires_at");
        if (st && strcmp(st, "pending"))
            /* the status and the decider are the server's: escaped, on one line */
            snprintf(err, errlen, "review %.200s is already %.100s%s%.200s; nothing was changed (HTTP 409)", id,
                     cli_safe(st), by && *by ? " by " : "", by && *by ? cli_safe(by) : "");
        else if (st && json_is_integer(exp) && json_integer_value(exp) <= util_now_ms())
            snprintf(err, errlen, "review %.200s has expired undecided; nothing was changed (HTTP 409)", id);
    }
    json_decref(r);
}

static int reviews_run(const struct cli_args *a, struct cli_context *ctx)
{
    const char *verb = a->pos[0];
    bool list = !strcmp(verb, "list");
    if (!list && strcmp(verb, "show") && strcmp(verb, "approve") && strcmp(verb, "deny"))
        return cli_usage_error(a->cmd, "reviews takes list, show, approve or deny");
    int urc = list ? cli_verb_args(a, 1, "") : cli_verb_args(a, 2, "a review id");
    if (!urc && list)
        urc = cli_check_limit(a, 1000);
    if (urc)
        return urc;
    struct api_client api;
    char err[600], path[400], esc[300];
    int irc = api_client_init(&api, cli_get(a, "server"), err, sizeof err);
    if (irc)
        return cli_fail("reviews", irc, err);
    json_t *resp = NULL;
    int rc;
    if (list) {
        const char *st = cli_get(a, "status");
        struct buf q = {0};
        api_escape(st ? st : "pending", esc, sizeof esc);
        buf_printf(&q, "/api/v1/reviews?status=%s", esc);
        const char *pv[] = {"limit", "cursor"};
        for (size_t i = 0; i < 2; i++)
            if (cli_get(a, pv[i])) {
                api_escape(cli_get(a, pv[i]), esc, sizeof esc);
                buf_printf(&q, "&%s=%s", pv[i], esc);
            }
        rc = api_do(&api, "GET", buf_cstr(&q), NULL, &resp, err, sizeof err);
        buf_free(&q);
    } else {
        api_escape(a->pos[1], esc, sizeof esc);
        snprintf(path, sizeof path, "/api/v1/reviews/%s%s%s", esc, strcmp(verb, "show") ? "/" : "",
                 strcmp(verb, "show") ? verb : "");
        json_t *body = NULL;
        if (strcmp(verb, "show")) {
            body = json_object();
            if (cli_get(a, "reason"))
                json_object_set_new(body, "reason", json_string(cli_get(a, "reason")));
        }
        rc = api_do(&api, body ? "POST" : "GET", path, body, &resp, err, sizeof err);
        if (rc && api.last_status == 404)
            snprintf(err, sizeof err, "no review %.200s on the server", a->pos[1]);
        else if (rc && api.last_status == 409 && body)
            conflict_detail(&api, a->pos[1], err, sizeof err);
        json_decref(body);
    }
    api_client_free(&api);
    if (rc)
        return cli_fail("reviews", rc, err);
    const char *next = list ? json_string_value(json_object_get(resp, "next")) : NULL;
    if (!strcmp(ctx->output, "json")) {
        api_print_json(stdout, list ? json_object_get(resp, "reviews") : resp);
        if (next) /* the output stays the array of reviews */
            fprintf(stderr, "more: --cursor %s\n", cli_safe(next));
    } else if (list) {
        printf("%-36s %-9s %-14s %-16s %-24s %s\n", "ID", "STATUS", "CONNECTION", "REQUESTER", "CREATED",
               "STATEMENT");
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(resp, "reviews"), i, r) review_line(r);
        if (next)
            printf("more: --cursor %s\n", cli_safe(next));
    } else if (!strcmp(verb, "show")) {
        static const char *const keys[] = {"id", "status", "connection", "requester", "rule", "decided_by",
                                           "reason", "statement"};
        char *v[7];
        for (size_t i = 0; i < 7; i++)
            v[i] = json_is_string(json_object_get(resp, keys[i])) ? shown(resp, keys[i], false) : NULL;
        /* each line of the statement behind a bar: none of its lines can pass
         * for the parameters block or a field below */
        struct buf st = {0};
        const char *stmt = json_string_value(json_object_get(resp, keys[7]));
        buf_append_str(&st, STATEMENT_BAR);
        cli_put_statement(&st, stmt ? stmt : "-", "\n" STATEMENT_BAR);
        printf("review:     %s\nstatus:     %s\nconnection: %s\nrequester:  %s\nrule:       %s\n"
               "decided by: %s\nreason:     %s\nstatement:\n%s\n",
               v[0] ? v[0] : "-", v[1] ? v[1] : "-", v[2] ? v[2] : "-", v[3] ? v[3] : "-", v[4] ? v[4] : "-",
               v[5] ? v[5] : "-", v[6] ? v[6] : "-", buf_cstr(&st) ? buf_cstr(&st) : "-");
        buf_free(&st);
        for (size_t i = 0; i < 7; i++)
            free(v[i]);
        struct buf params = {0};
        if (api_review_params_text(resp, "  ", &params) == 0 && params.len)
            printf("parameters (bound to the statement, as the approval will run it):\n%s", buf_cstr(&params));
        buf_free(&params);
    } else {
        const char *st = json_string_value(json_object_get(resp, "status"));
        printf("review %s %s\n", cli_safe(a->pos[1]), st ? cli_safe(st) : "?");
    }
    json_decref(resp);
    return 0;
}

static const struct cli_option reviews_options[] = {
    {"status", 0, "STATUS", "list: pending (default), approved, denied, expired, consumed, withdrawn or all",
     CLI_COMPLETE_WORDS, "pending approved denied expired consumed withdrawn all"},
    {"limit", 0, "N", "list: reviews per page (1..1000, default 1000)", CLI_COMPLETE_NONE, NULL},
    {"cursor", 0, "CURSOR", "list: continue after this page cursor", CLI_COMPLETE_NONE, NULL},
    {"reason", 0, "TEXT", "approve/deny: the reason recorded with the decision", CLI_COMPLETE_NONE, NULL},
    CLI_OPTION_SERVER,
    {0},
};

static const struct cli_verb_complete reviews_verb_complete[] = {
    {"show approve deny", CLI_COMPLETE_DYNAMIC, "reviews"},
    {0},
};

const struct cli_command cli_cmd_reviews = {
    .name = "reviews",
    .summary = "List, show, approve or deny statements held for review",
    .usage = "[--server URL] list [--status S] [--limit N] [--cursor C] | show ID | approve ID [--reason R] | deny ID [--reason R]",
    .description = "Only the connection's reviewer groups decide, and never on their own requests.",
    .options = reviews_options,
    .arg_complete = CLI_COMPLETE_WORDS,
    .arg_words = "list show approve deny",
    .verb_complete = reviews_verb_complete,
    .min_args = 1,
    .max_args = 2,
    .run = reviews_run,
};
