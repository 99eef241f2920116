/* mcp_policy_gateway.c — a test driver for test_mcp_policy.sh: the real
 * gateway library with stand-in policy hooks shaped like the ones hoopctl
 * connect installs, so that hoopctl mcp meets a real refusal, a real review
 * hold and real masking on the wire:
 *   - a statement containing "drop " (any case) is refused: 42501;
 *   - a DELETE is held for review with the gateway's notice text; it is
 *     approved when the file REVIEW_DIR/approve-<id> appears, denied (with the
 *     file's text as the reason) when REVIEW_DIR/deny-<id> does;
 *   - result columns named "email" are masked as "***".
 * Writes one JSON line per session start and statement to stdout (the audit).
 *   mcp_policy_gateway PORT 'CONNINFO' REVIEW_DIR   (HOOPCTL_UPSTREAM_PASSWORD) */
#include "hoopctl/gateway.h"

#include <event2/event.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct driver {
    struct event_base *base;
    struct gateway *gw;
    const char *review_dir;
};

struct hold {
    struct driver *d;
    uint64_t id;
    struct event *timer;
};

static void audit(json_t *line)
{
    char *text = json_dumps(line, JSON_COMPACT);
    if (text)
        printf("%s\n", text);
    fflush(stdout);
    free(text);
    json_decref(line);
}

/* The contents of a file (first line), or NULL when it does not exist. */
static char *read_decision(const char *dir, const char *verb, uint64_t id)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s-%llu", dir, verb, (unsigned long long)id);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char line[400] = "";
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    fclose(f);
    line[strcspn(line, "\n")] = '\0';
    return strdup(line);
}

static void hold_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hold *h = arg;
    char *approve = read_decision(h->d->review_dir, "approve", h->id);
    char *deny = approve ? NULL : read_decision(h->d->review_dir, "deny", h->id);
    if (!approve && !deny) {
        struct timeval tv = {0, 50000};
        evtimer_add(h->timer, &tv);
        return;
    }
    struct gateway_refusal r = {.sqlstate = "42501"};
    if (deny)
        snprintf(r.message, sizeof r.message, "hoopctl: review %llu denied by bob: %s",
                 (unsigned long long)h->id, deny);
    int rc = gateway_resolve(h->d->gw, h->id, approve ? GATEWAY_ALLOW : GATEWAY_REFUSE, &r);
    audit(json_pack("{s:s, s:I, s:s, s:i}", "event", "review_decided", "review", (json_int_t)h->id,
                    "decision", approve ? "approved" : "denied", "rc", rc));
    free(approve);
    free(deny);
    event_free(h->timer);
    free(h);
}

static enum gateway_verdict on_statement(void *user, const struct gateway_session_info *si,
                                         const struct gateway_statement *st, uint64_t hold_id,
                                         struct gateway_refusal *refusal)
{
    struct driver *d = user;
    const char *sql = st->sql ? st->sql : "";
    const char *decision = "allow";
    enum gateway_verdict v = GATEWAY_ALLOW;
    if (strcasestr(sql, "drop ")) {
        v = GATEWAY_REFUSE;
        decision = "deny";
        snprintf(refusal->sqlstate, sizeof refusal->sqlstate, "42501");
        snprintf(refusal->message, sizeof refusal->message,
                 "hoopctl: DROP is not allowed on this connection (rule no-ddl)");
    } else if (strncasecmp(sql, "delete", 6) == 0) {
        v = GATEWAY_HOLD;
        decision = "review";
        snprintf(refusal->hold_notice, sizeof refusal->hold_notice,
                 "hoopctl: statement held for review %llu (reviewers: dba); waiting up to 10m",
                 (unsigned long long)hold_id);
        struct hold *h = calloc(1, sizeof *h);
        if (!h)
            abort();
        h->d = d;
        h->id = hold_id;
        h->timer = evtimer_new(d->base, hold_poll, h);
        struct timeval tv = {0, 50000};
        evtimer_add(h->timer, &tv);
    }
    audit(json_pack("{s:s, s:I, s:s, s:s, s:s}", "event", "statement", "session", (json_int_t)si->id,
                    "application_name", si->application_name, "sql", sql, "decision", decision));
    return v;
}

static int mask_value(void *user, const struct gateway_session_info *si, int column,
                      const uint8_t *value, int32_t length, int16_t format, struct buf *out,
                      bool *is_null)
{
    (void)user, (void)si, (void)column, (void)value, (void)format;
    if (length < 0) {
        *is_null = true;
        return 0;
    }
    return buf_append_str(out, "***");
}

static bool on_row_description(void *user, const struct gateway_session_info *si,
                               const struct pgwire_column *cols, int ncols,
                               struct gateway_row_filter *f)
{
    (void)user, (void)si;
    uint8_t *mask = calloc((size_t)ncols + 1, 1);
    bool any = false;
    for (int i = 0; mask && i < ncols; i++)
        if (strcmp(cols[i].name, "email") == 0)
            mask[i] = 1, any = true;
    if (!any) {
        free(mask);
        return false;
    }
    *f = (struct gateway_row_filter){.mask = mask, .ncols = ncols, .filter = mask_value};
    return true;
}

static void on_start(void *user, const struct gateway_session_info *si)
{
    (void)user;
    audit(json_pack("{s:s, s:I, s:s, s:s}", "event", "session_start", "session", (json_int_t)si->id,
                    "user", si->client_user, "application_name", si->application_name));
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig, (void)what;
    struct driver *d = arg;
    gateway_shutdown(d->gw);
    struct timeval tv = {0, 100000};
    event_base_loopexit(d->base, &tv);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: mcp_policy_gateway PORT CONNINFO REVIEW_DIR\n");
        return 2;
    }
    struct driver d = {.review_dir = argv[3]};
    struct gateway_config cfg = {.listen_host = "127.0.0.1", .listen_port = argv[1]};
    char err[512];
    if (pgwire_conninfo_parse(argv[2], &cfg.upstream, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    cfg.upstream_password = getenv("HOOPCTL_UPSTREAM_PASSWORD");
    cfg.hooks = (struct gateway_hooks){
        .user = &d,
        .session_start = on_start,
        .statement = on_statement,
        .row_description = on_row_description,
    };
    d.base = event_base_new();
    d.gw = gateway_new(d.base, &cfg, err, sizeof err);
    if (!d.gw) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct event *sigterm = evsignal_new(d.base, SIGTERM, on_signal, &d);
    event_add(sigterm, NULL);
    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "listening on %s\n", gateway_listen_address(d.gw));
    event_base_dispatch(d.base);
    event_free(sigterm);
    gateway_free(d.gw);
    event_base_free(d.base);
    return 0;
}
