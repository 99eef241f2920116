/* gateway_hooks.c — a test driver: the gateway library with example policy
 * hooks, for test_gateway_hooks.sh. Refuses statements whose SQL or
 * parameters contain "forbidden"; holds "hold_me" for 300 ms then allows;
 * holds "hold_deny" then refuses; holds "hold_file" until the file named by
 * HOLD_FILE exists; masks result columns named "secret" as "***", and the
 * last column of every text COPY OUT row.
 * Logs every hook call as one line to stdout.
 *   gateway_hooks PORT 'CONNINFO'    (password in HOOPCTL_UPSTREAM_PASSWORD) */
#include "hoopctl/gateway.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct driver {
    struct event_base *base;
    struct gateway *gw;
};

struct pending_hold {
    struct driver *d;
    uint64_t id;
    enum gateway_verdict verdict;
    const char *wait_file;
    struct event *timer;
};

static void hold_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pending_hold *h = arg;
    if (h->wait_file && access(h->wait_file, F_OK) != 0) {
        struct timeval tv = {0, 50000};
        evtimer_add(h->timer, &tv);
        return;
    }
    struct gateway_refusal r = {.sqlstate = "42501", .message = "denied after review"};
    int rc = gateway_resolve(h->d->gw, h->id, h->verdict, &r);
    printf("resolve %llu %s rc=%d\n", (unsigned long long)h->id,
           h->verdict == GATEWAY_ALLOW ? "allow" : "refuse", rc);
    fflush(stdout);
    event_free(h->timer);
    free(h);
}

static bool contains(const uint8_t *p, int32_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (int32_t i = 0; p && len >= (int32_t)n && i <= len - (int32_t)n; i++)
        if (memcmp(p + i, needle, n) == 0)
            return true;
    return false;
}

static enum gateway_verdict on_statement(void *user, const struct gateway_session_info *si,
                                         const struct gateway_statement *st, uint64_t hold_id,
                                         struct gateway_refusal *refusal)
{
    struct driver *d = user;
    const char *sql = st->sql ? st->sql : "(unknown)";
    printf("statement session=%llu kind=%d portal=%s sql=[%s]", (unsigned long long)si->id, st->kind,
           st->portal_name ? st->portal_name : "-", sql);
    bool forbidden = strstr(sql, "forbidden") != NULL;
    for (int i = 0; i < st->nparams; i++) {
        if (st->param_values[i] && st->param_formats[i] == 1) {
            printf(" param%d=0x", i + 1);
            for (int32_t k = 0; k < st->param_lengths[i]; k++)
                printf("%02x", st->param_values[i][k]);
        } else if (st->param_values[i])
            printf(" param%d=[%.*s]", i + 1, (int)st->param_lengths[i], (const char *)st->param_values[i]);
        else
            printf(" param%d=NULL", i + 1);
        forbidden |= contains(st->param_values[i], st->param_lengths[i], "forbidden");
    }
    printf(" id=%llu\n", (unsigned long long)hold_id);
    fflush(stdout);
    if (forbidden) {
        snprintf(refusal->sqlstate, sizeof refusal->sqlstate, "42501");
        snprintf(refusal->message, sizeof refusal->message, "refused by test policy: contains forbidden");
        return GATEWAY_REFUSE;
    }
    const char *wait_file = NULL;
    enum gateway_verdict later = GATEWAY_ALLOW;
    if (strstr(sql, "hold_file"))
        wait_file = getenv("HOLD_FILE");
    else if (strstr(sql, "hold_deny"))
        later = GATEWAY_REFUSE;
    else if (!strstr(sql, "hold_me"))
        return GATEWAY_ALLOW;
    struct pending_hold *h = calloc(1, sizeof *h);
    h->d = d;
    h->id = hold_id;
    h->verdict = later;
    h->wait_file = wait_file;
    h->timer = evtimer_new(d->base, hold_timer, h);
    struct timeval tv = {0, 300000};
    evtimer_add(h->timer, &tv);
    snprintf(refusal->hold_notice, sizeof refusal->hold_notice, "held for review (hold %llu)",
             (unsigned long long)hold_id);
    printf("hold %llu\n", (unsigned long long)hold_id);
    fflush(stdout);
    return GATEWAY_HOLD;
}

static int mask_value(void *user, const struct gateway_session_info *si, int column,
                      const uint8_t *value, int32_t length, int16_t format, struct buf *out,
                      bool *is_null)
{
    (void)user;
    (void)si;
    (void)column;
    (void)value;
    (void)format;
    if (length < 0) {
        *is_null = true;
        return 0;
    }
    return buf_append_str(out, "***");
}

/* Whose answer upstream is sending, as the gateway counted it. */
static void print_answer(const char *what, const struct gateway_session_info *si)
{
    printf("%s answer=%llu.%u\n", what, (unsigned long long)si->answer_id, si->answer_index);
    fflush(stdout);
}

static bool on_row_description(void *user, const struct gateway_session_info *si,
                               const struct pgwire_column *cols, int ncols,
                               struct gateway_row_filter *f)
{
    (void)user;
    char what[96];
    snprintf(what, sizeof what, "row_description %s", ncols > 0 ? cols[0].name : "-");
    print_answer(what, si);
    bool any = false;
    uint8_t *mask = calloc((size_t)ncols + 1, 1);
    for (int i = 0; i < ncols; i++)
        if (strcmp(cols[i].name, "secret") == 0)
            mask[i] = 1, any = true;
    if (!any) {
        free(mask);
        return false;
    }
    f->mask = mask;
    f->ncols = ncols;
    f->filter = mask_value;
    return true;
}

/* Text COPY rows: replace the last tab-separated field (keep the newline). */
static int mask_copy_row(void *user, const struct gateway_session_info *si, const uint8_t *row,
                         size_t len, struct buf *out)
{
    (void)user;
    (void)si;
    size_t end = len && row[len - 1] == '\n' ? len - 1 : len;
    size_t tab = end;
    while (tab > 0 && row[tab - 1] != '\t')
        tab--;
    if (buf_append(out, row, tab) < 0 || buf_append_str(out, "***") < 0)
        return -1;
    return buf_append(out, row + end, len - end);
}

static bool on_copy_out(void *user, const struct gateway_session_info *si, int ncols, int format,
                        struct gateway_copy_filter *f)
{
    (void)user;
    printf("copy_out ncols=%d format=%d\n", ncols, format);
    print_answer("copy_out", si);
    if (format != 0)
        return false;
    f->filter = mask_copy_row;
    return true;
}

static void on_start(void *user, const struct gateway_session_info *si)
{
    (void)user;
    printf("session_start %llu user=%s app=%s pid=%u\n", (unsigned long long)si->id, si->client_user,
           si->application_name, si->backend_pid);
    fflush(stdout);
}

static void on_end(void *user, const struct gateway_session_info *si)
{
    (void)user;
    printf("session_end %llu\n", (unsigned long long)si->id);
    fflush(stdout);
}

static void on_abandoned(void *user, uint64_t id)
{
    (void)user;
    printf("abandoned %llu\n", (unsigned long long)id);
    fflush(stdout);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct driver *d = arg;
    gateway_shutdown(d->gw);
    struct timeval tv = {0, 100000};
    event_base_loopexit(d->base, &tv);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: gateway_hooks PORT CONNINFO\n");
        return 2;
    }
    struct driver d = {0};
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
        .session_end = on_end,
        .statement = on_statement,
        .hold_abandoned = on_abandoned,
        .row_description = on_row_description,
        .copy_out = on_copy_out,
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
