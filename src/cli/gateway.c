/* gateway.c — `hoopctl gateway`: run the wire-protocol gateway on its own
 * (offline mode) in front of one upstream PostgreSQL, optionally writing a
 * minimal JSON-lines audit of every client statement and enforcing a local
 * policy file (decisions and masking; review is refused: no review server). */
#include "hoopctl/cli.h"
#include "hoopctl/config.h"
#include "hoopctl/gateway.h"
#include "hoopctl/log.h"
#include "hoopctl/policy.h"

#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gateway_cli;

/* One client session's policy state (with --policy). */
struct gateway_policy_session {
    uint64_t id;
    struct gateway_cli *c;
    struct policy_session *tracker;
    struct policy_catalog *catalog;
    bool catalog_failed;
    struct policy_results *results;    /* forwarded statements whose results may still come */
    bool rows_seen;                    /* the current result carried rows */
    struct policy_decision decision;
    struct policy_mask_plan plan, copy_plan;
    bool have_plan, have_copy_plan;
    struct gateway_policy_session *next;
};

struct gateway_cli {
    FILE *audit;
    struct event_base *base;
    struct gateway *gw;
    struct policy *policy;             /* NULL without --policy */
    char catalog_conninfo[2048];       /* libpq conninfo of the catalog side connection */
    struct gateway_policy_session *sessions;
};

/* Standard base64 of len bytes, NUL-terminated (malloc'd; NULL when out of memory). */
static char *audit_base64(const uint8_t *data, size_t len)
{
    if (len > (size_t)INT32_MAX / 2)
        return NULL;
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out)
        EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

/* Text from the client as JSON, losslessly: a string when it is valid UTF-8
 * (PostgreSQL's client_encoding may be LATIN1 and others), else an object
 * {"b64": base64 of the bytes}. NULL only when memory runs out. */
static json_t *audit_text(const void *data, size_t len)
{
    json_t *v = json_stringn(data, len); /* NULL for invalid UTF-8 */
    if (v)
        return v;
    char *b64 = audit_base64(data, len);
    v = b64 ? json_pack("{s:s}", "b64", b64) : NULL;
    free(b64);
    return v;
}

/* Set key to a string when s is valid UTF-8; otherwise key is null and
 * key_b64 holds the bytes in base64 (so nothing the client sent is lost). */
static void audit_set_text(json_t *o, const char *key, const char *s)
{
    json_t *v = json_string(s);
    if (v) {
        json_object_set_new(o, key, v);
        return;
    }
    char name[64], *b64 = audit_base64((const uint8_t *)s, strlen(s));
    snprintf(name, sizeof name, "%s_b64", key);
    json_object_set_new(o, key, json_null());
    if (b64)
        json_object_set_new(o, name, json_string(b64));
    free(b64);
}

static void audit_line(struct gateway_cli *c, const char *event,
                       const struct gateway_session_info *si, json_t *extra)
{
    if (!c->audit) {
        json_decref(extra);
        return;
    }
    char ts[40];
    util_iso8601_ms(util_now_ms(), ts, sizeof ts);
    json_t *o = json_pack("{s:s, s:s, s:I}", "time", ts, "event", event, "session", (json_int_t)si->id);
    if (o) {
        audit_set_text(o, "user", si->client_user);
        audit_set_text(o, "database", si->client_database);
        audit_set_text(o, "application_name", si->application_name);
        audit_set_text(o, "client", si->client_addr);
    }
    if (o && extra)
        json_object_update(o, extra);
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (line) {
        fprintf(c->audit, "%s\n", line);
        fflush(c->audit);
    } else {
        log_error("gateway", "session %llu: cannot write an audit line (out of memory)",
                  (unsigned long long)si->id);
    }
    free(line);
    json_decref(o);
    json_decref(extra);
}

/* ---- policy (--policy FILE) ---------------------------------------------- */

static struct gateway_policy_session *policy_session_find(struct gateway_cli *c, uint64_t id)
{
    for (struct gateway_policy_session *s = c->sessions; s; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

static void policy_forget_plans(struct gateway_policy_session *s)
{
    if (s->have_plan)
        policy_mask_plan_free(&s->plan);
    if (s->have_copy_plan)
        policy_mask_plan_free(&s->copy_plan);
    s->have_plan = s->have_copy_plan = false;
}

static void policy_session_begin(struct gateway_cli *c, uint64_t id)
{
    struct gateway_policy_session *s = calloc(1, sizeof *s);
    if (!s || !(s->tracker = policy_session_new()) || !(s->results = policy_results_new())) {
        if (s)
            policy_session_free(s->tracker);
        free(s);
        log_error("gateway", "session %llu: out of memory for its policy state", (unsigned long long)id);
        return; /* its statements are refused: no state to judge them with */
    }
    s->id = id;
    s->c = c;
    s->next = c->sessions;
    c->sessions = s;
}

static void policy_session_end(struct gateway_cli *c, uint64_t id)
{
    for (struct gateway_policy_session **pp = &c->sessions; *pp; pp = &(*pp)->next) {
        struct gateway_policy_session *s = *pp;
        if (s->id != id)
            continue;
        *pp = s->next;
        policy_forget_plans(s);
        policy_results_free(s->results);
        if (s->catalog)
            policy_catalog_free(s->catalog);
        policy_session_free(s->tracker);
        free(s);
        return;
    }
}

/* The catalog side connection, opened when first needed. */
static void policy_catalog_open(struct gateway_policy_session *s)
{
    char err[POLICY_ERR_MAX];
    s->catalog = policy_catalog_pg_new(s->c->catalog_conninfo, err);
    if (!s->catalog) {
        s->catalog_failed = true; /* every table and computed column is then masked (fail closed) */
        log_warn("gateway", "session %llu: catalog look-ups unavailable: %s", (unsigned long long)s->id, err);
    }
}

/* After the decision on an analysed statement: false with the refusal
 * filled when it must not run. */
static bool policy_allowed(struct gateway_cli *c, struct gateway_policy_session *s,
                           const struct policy_analysis *a, const struct policy_decision *d,
                           struct gateway_refusal *ref)
{
    for (size_t i = 0; s->catalog && s->catalog->forget && i < a->nstmts; i++)
        if (strcmp(a->stmts[i].category, "ddl") == 0) {
            s->catalog->forget(s->catalog); /* names and views may change under it */
            break;
        }
    if (d->action == POLICY_DENY || d->action == POLICY_REVIEW) {
        snprintf(ref->message, sizeof ref->message, "hoopctl: statement %s by rule %s: %s",
                 d->action == POLICY_DENY ? "refused" : "needs a review, which the offline gateway cannot hold,",
                 d->rule_name[0] ? d->rule_name : "default", d->message);
        return false;
    }
    /* A COPY in a format that cannot be masked, of data that needs masking
     * the parse tree alone cannot see (a view, user code): refused now
     * rather than failing (and closing the session) once rows flow. */
    for (size_t i = 0; i < a->nstmts; i++) {
        const struct policy_stmt *ps = &a->stmts[i];
        if (!(ps->facts & POLICY_FACT_COPY_OUT) || !(ps->facts & POLICY_FACT_COPY_CUSTOM))
            continue;
        struct policy_mask_plan plan;
        char err[POLICY_ERR_MAX];
        if (!s->catalog && !s->catalog_failed)
            policy_catalog_open(s);
        if (policy_mask_plan_build_copy_catalog(c->policy, s->catalog, ps, d->action, 0, &plan, err) < 0) {
            snprintf(ref->message, sizeof ref->message, "hoopctl: statement refused: %s", err);
            return false;
        }
        policy_mask_plan_free(&plan);
    }
    return true;
}

/* Decide on a statement; false with the refusal filled when it must not run. */
static bool policy_statement(struct gateway_cli *c, const struct gateway_session_info *si,
                             const struct gateway_statement *st, struct gateway_refusal *ref)
{
    struct gateway_policy_session *s = policy_session_find(c, si->id);
    snprintf(ref->sqlstate, sizeof ref->sqlstate, "42501");
    if (!s) {
        snprintf(ref->message, sizeof ref->message, "hoopctl: this session has no policy state (fail closed)");
        return false;
    }
    /* The plans of results still streaming stay: the next result replaces them. */
    struct policy_decision *d = &s->decision;
    memset(d, 0, sizeof *d);
    if (st->kind == GATEWAY_STATEMENT_FUNCTION_CALL) {
        snprintf(ref->message, sizeof ref->message, "hoopctl: the FunctionCall protocol message is not allowed");
        return false;
    }
    if (!st->sql) {
        /* An Execute of a cursor DECLAREd in SQL (judged when DECLAREd): its
         * rows are masked as those of an unknown cursor. */
        d->action = POLICY_ALLOW;
        if (policy_results_push_unknown(s->results) < 0) {
            snprintf(ref->message, sizeof ref->message, "hoopctl: out of memory while checking the statement");
            return false;
        }
        return true;
    }
    struct policy_analysis a;
    if (policy_check(c->policy, s->tracker, st->sql, NULL, d, &a) < 0) {
        snprintf(ref->message, sizeof ref->message, "hoopctl: out of memory while checking the statement");
        return false;
    }
    bool ok = policy_allowed(c, s, &a, d, ref);
    if (ok && policy_results_push(s->results, c->policy, &a, NULL, d) < 0) {
        snprintf(ref->message, sizeof ref->message, "hoopctl: out of memory while checking the statement");
        ok = false;
    }
    policy_analysis_free(&a);
    return ok;
}

/* A new result set begins: the last one's plans go, and when it carried
 * rows, its statement is retired (see policy_results in policy.h). */
static void policy_next_result(struct gateway_policy_session *s)
{
    policy_forget_plans(s);
    if (s->rows_seen)
        policy_results_done(s->results);
    s->rows_seen = false;
}

static int policy_row_filter(void *user, const struct gateway_session_info *si, int column,
                             const uint8_t *value, int32_t length, int16_t format, struct buf *out,
                             bool *is_null)
{
    (void)si;
    (void)format;
    struct gateway_policy_session *s = user;
    if (!s || !s->have_plan || column < 0 || (size_t)column >= s->plan.ncols)
        return -1; /* no plan for this result: close rather than show it unmasked */
    s->rows_seen = true;
    if (length < 0) { /* SQL NULL stays NULL */
        *is_null = true;
        return 0;
    }
    uint8_t *masked = NULL;
    size_t n = 0;
    char err[POLICY_ERR_MAX];
    int r = policy_mask_value(s->c->policy, &s->plan, (size_t)column, value, (size_t)length, &masked, &n, err);
    if (r < 0) {
        log_error("gateway", "session %llu: masking failed: %s", (unsigned long long)s->id, err);
        return -1;
    }
    int rc = 0;
    if (r == 0)
        rc = buf_append(out, value, (size_t)length);
    else if (r == 1)
        rc = buf_append(out, masked, n);
    else
        *is_null = true;
    free(masked);
    return rc;
}

static bool policy_row_description(void *user, const struct gateway_session_info *si,
                                   const struct pgwire_column *cols, int ncols, struct gateway_row_filter *f)
{
    struct gateway_cli *c = user;
    struct gateway_policy_session *s = policy_session_find(c, si->id);
    if (!c->policy || ncols <= 0)
        return false;
    uint8_t *mask = calloc((size_t)ncols, 1);
    struct policy_column_desc *desc = calloc((size_t)ncols, sizeof *desc);
    if (!mask || !desc) {
        free(desc);
        free(mask);
        return false; /* the gateway then fails the result: see gateway.h */
    }
    memset(mask, 1, (size_t)ncols);
    f->mask = mask;
    f->ncols = ncols;
    f->filter = policy_row_filter;
    f->user = s;
    if (!s) { /* no state: the filter closes the session (fail closed) */
        free(desc);
        return true;
    }
    policy_next_result(s);
    char err[POLICY_ERR_MAX];
    if (!s->catalog && !s->catalog_failed)
        policy_catalog_open(s);
    for (int i = 0; i < ncols; i++)
        desc[i] = (struct policy_column_desc){cols[i].name, cols[i].table_oid, cols[i].attnum, cols[i].type_oid,
                                              cols[i].format};
    if (policy_mask_plan_build_results(c->policy, s->catalog, s->results, desc, (size_t)ncols, &s->plan, err) < 0)
        log_error("gateway", "session %llu: no mask plan: %s", (unsigned long long)s->id, err);
    else
        s->have_plan = true;
    free(desc);
    /* Only the columns to mask go through the filter, and the first one
     * always: its call tells that the result carried rows. */
    for (int i = 1; s->have_plan && i < ncols; i++)
        mask[i] = s->plan.cols[i].action == POLICY_COL_MASK || s->plan.cols[i].detect;
    return true;
}

static int policy_copy_filter(void *user, const struct gateway_session_info *si, const uint8_t *row,
                              size_t length, struct buf *out)
{
    (void)si;
    struct gateway_policy_session *s = user;
    if (!s || !s->have_copy_plan)
        return -1;
    s->rows_seen = true;
    char err[POLICY_ERR_MAX];
    if (policy_mask_copy_row(s->c->policy, &s->copy_plan, row, length, out, err) < 0) {
        log_error("gateway", "session %llu: COPY row masking failed: %s", (unsigned long long)s->id, err);
        return -1;
    }
    return 0;
}

static bool policy_copy_out(void *user, const struct gateway_session_info *si, int ncols, int format,
                            struct gateway_copy_filter *f)
{
    (void)format;
    struct gateway_cli *c = user;
    struct gateway_policy_session *s = policy_session_find(c, si->id);
    if (!c->policy)
        return false;
    f->filter = policy_copy_filter;
    f->user = s;
    if (!s)
        return true; /* no state: the filter closes the session (fail closed) */
    policy_next_result(s);
    char err[POLICY_ERR_MAX];
    if (!s->catalog && !s->catalog_failed)
        policy_catalog_open(s);
    if (policy_mask_plan_build_copy_results(c->policy, s->catalog, s->results, ncols > 0 ? (size_t)ncols : 0,
                                            &s->copy_plan, err) < 0) {
        log_error("gateway", "session %llu: COPY cannot be masked: %s", (unsigned long long)s->id, err);
        return true; /* the filter fails and the session closes (fail closed) */
    }
    s->have_copy_plan = true;
    return true; /* also when nothing is masked: the filter tells that rows came */
}

/* The session's policy state with its catalog opened (when it can be), or
 * NULL when the session has none. */
static struct gateway_policy_session *policy_session_catalog(struct gateway_cli *c, uint64_t id)
{
    struct gateway_policy_session *s = policy_session_find(c, id);
    if (s && !s->catalog && !s->catalog_failed)
        policy_catalog_open(s);
    return s;
}

static bool policy_error_redact(void *user, const struct gateway_session_info *si, const char *sqlstate)
{
    struct gateway_cli *c = user;
    struct gateway_policy_session *s = policy_session_catalog(c, si->id);
    return !s || policy_error_must_hide(c->policy, s->catalog, s->results, sqlstate);
}

static bool policy_notification_redact(void *user, const struct gateway_session_info *si)
{
    struct gateway_cli *c = user;
    struct gateway_policy_session *s = policy_session_find(c, si->id);
    if (s && policy_results_empty(s->results))
        return false; /* between statements: another session's, no catalog needed */
    s = policy_session_catalog(c, si->id);
    return !s || policy_notification_must_hide(c->policy, s->catalog, s->results);
}

static void policy_idle(void *user, const struct gateway_session_info *si)
{
    struct gateway_policy_session *s = policy_session_find(user, si->id);
    if (s) {
        policy_results_clear(s->results);
        s->rows_seen = false; /* the last result's statement is gone with the rest */
    }
}

/* ---- hooks ---------------------------------------------------------------- */

static void hook_session_start(void *user, const struct gateway_session_info *si)
{
    struct gateway_cli *c = user;
    if (c->policy)
        policy_session_begin(c, si->id);
    audit_line(user, "session_start", si, json_pack("{s:I}", "backend_pid", (json_int_t)si->backend_pid));
}

static void hook_session_end(void *user, const struct gateway_session_info *si)
{
    struct gateway_cli *c = user;
    if (c->policy)
        policy_session_end(c, si->id);
    audit_line(user, "session_end", si, NULL);
}

static enum gateway_verdict hook_statement(void *user, const struct gateway_session_info *si,
                                           const struct gateway_statement *st, uint64_t hold_id,
                                           struct gateway_refusal *refusal)
{
    (void)hold_id;
    struct gateway_cli *c = user;
    bool allowed = !c->policy || policy_statement(c, si, st, refusal);
    if (!c->audit)
        return allowed ? GATEWAY_ALLOW : GATEWAY_REFUSE;
    static const char *const kinds[] = {"query", "execute", "function_call"};
    json_t *params = json_array();
    for (int i = 0; params && i < st->nparams; i++) {
        if (!st->param_values[i])
            json_array_append_new(params, json_null());
        else if (st->param_formats && st->param_formats[i] == 1) {
            char *hex = malloc((size_t)st->param_lengths[i] * 2 + 4);
            if (hex) {
                memcpy(hex, "\\x", 2);
                util_hex_encode(st->param_values[i], (size_t)st->param_lengths[i], hex + 2);
                json_array_append_new(params, json_string(hex));
            }
            free(hex);
        } else {
            json_array_append_new(params, audit_text(st->param_values[i], (size_t)st->param_lengths[i]));
        }
    }
    json_t *extra = json_pack("{s:s, s:o?}", "kind", kinds[st->kind], "params", params);
    if (extra) {
        if (st->sql)
            audit_set_text(extra, "sql", st->sql);
        else
            json_object_set_new(extra, "sql", json_null());
        if (st->portal_name)
            audit_set_text(extra, "portal", st->portal_name);
    }
    struct gateway_policy_session *ps = c->policy ? policy_session_find(c, si->id) : NULL;
    if (extra && ps) {
        json_object_set_new(extra, "decision", json_string(policy_action_name(ps->decision.action)));
        json_object_set_new(extra, "rule", json_string(ps->decision.rule_name));
    }
    if (extra && !allowed)
        json_object_set_new(extra, "error", json_string(refusal->message));
    audit_line(user, "statement", si, extra);
    return allowed ? GATEWAY_ALLOW : GATEWAY_REFUSE;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct gateway_cli *c = arg;
    log_info("gateway", "signal %d: closing sessions", (int)sig);
    gateway_shutdown(c->gw);
    struct timeval tv = {0, 200000};
    event_base_loopexit(c->base, &tv);
}

static int read_password_file(const char *path, char **out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[1024];
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return -1;
    }
    fclose(f);
    line[strcspn(line, "\r\n")] = 0;
    *out = strdup(line);
    util_secure_zero(line, sizeof line);
    return *out ? 0 : -1;
}

/* key='value' with ' and \\ escaped, appended to a libpq conninfo. */
static void conninfo_put(char *out, size_t len, const char *key, const char *value)
{
    size_t n = strlen(out);
    n += (size_t)snprintf(out + n, n < len ? len - n : 0, "%s%s='", n ? " " : "", key);
    for (const char *p = value; *p && n + 3 < len; p++) {
        if (*p == '\'' || *p == '\\')
            out[n++] = '\\';
        out[n++] = *p;
    }
    if (n + 2 <= len) {
        out[n++] = '\'';
        out[n] = '\0';
    }
}

/* The catalog side connection goes where the gateway goes, as its user. */
static void catalog_conninfo(struct gateway_cli *c, const struct pgwire_conninfo *up, const char *password)
{
    char *o = c->catalog_conninfo;
    size_t len = sizeof c->catalog_conninfo;
    o[0] = '\0';
    conninfo_put(o, len, "host", up->host);
    conninfo_put(o, len, "port", up->port[0] ? up->port : "5432");
    conninfo_put(o, len, "dbname", up->dbname[0] ? up->dbname : up->user);
    conninfo_put(o, len, "user", up->user);
    conninfo_put(o, len, "sslmode", pgwire_sslmode_name(up->sslmode));
    if (up->sslrootcert[0])
        conninfo_put(o, len, "sslrootcert", up->sslrootcert);
    conninfo_put(o, len, "application_name", "hoopctl catalog");
    if (password)
        conninfo_put(o, len, "password", password);
}

static int gateway_run(const struct cli_args *args, struct cli_context *ctx)
{
    (void)ctx;
    struct gateway_config cfg = {0};
    char err[512];
    const char *listen = cli_get(args, "listen");
    const char *upstream = cli_get(args, "upstream");
    if (!listen || !upstream)
        return cli_usage_error(args->cmd, "--listen and --upstream are required");
    char host[128];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host)
        return cli_usage_error(args->cmd, "--listen takes HOST:PORT, e.g. 127.0.0.1:6432");
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = 0;
    cfg.listen_host = host;
    cfg.listen_port = colon + 1;
    if (pgwire_conninfo_parse(upstream, &cfg.upstream, err, sizeof err) < 0)
        return cli_usage_error(args->cmd, err);
    const char *socket_dir = cli_get(args, "socket-dir");
    if (socket_dir && gateway_check_socket_dir(socket_dir, err, sizeof err) < 0)
        return cli_usage_error(args->cmd, err);
    const char *maxs = cli_get(args, "max-message-size");
    if (maxs) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(maxs, &end, 10);
        if (errno || *end || v < 1024 || v > PGWIRE_DEFAULT_MAX_MESSAGE)
            return cli_usage_error(args->cmd, "--max-message-size takes bytes, 1024 to 1073741824");
        cfg.max_message_size = (size_t)v;
    }
    const char *threads = cli_get(args, "threads");
    if (threads) {
        char *end;
        errno = 0;
        long v = strtol(threads, &end, 10);
        if (errno || *end || v < 1 || v > GATEWAY_MAX_THREADS)
            return cli_usage_error(args->cmd, "--threads takes 1 to 16");
        if (v > 1 && (cli_get(args, "policy") || cli_get(args, "audit-log")))
            return cli_usage_error(args->cmd, "--threads above 1 is for a gateway without --policy or --audit-log");
        cfg.threads = (int)v;
    }
    cfg.tls_cert_file = cli_get(args, "tls-cert");
    cfg.tls_key_file = cli_get(args, "tls-key");
    if (!cfg.tls_cert_file != !cfg.tls_key_file)
        return cli_usage_error(args->cmd, "--tls-cert and --tls-key go together");

    char *password = NULL;
    const char *pwfile = cli_get(args, "upstream-password-file");
    if (pwfile) {
        if (read_password_file(pwfile, &password) < 0) {
            fprintf(stderr, "hoopctl gateway: cannot read the password file %s\n", pwfile);
            return CLI_EXIT_FAILURE;
        }
    } else if (getenv("HOOPCTL_UPSTREAM_PASSWORD") && *getenv("HOOPCTL_UPSTREAM_PASSWORD")) {
        password = strdup(getenv("HOOPCTL_UPSTREAM_PASSWORD"));
    }
    cfg.upstream_password = password;

    /* A password for this run only: made here, handed out once, never logged. */
    char client_password[GATEWAY_PASSWORD_LEN + 2];
    const char *client_pwfile = cli_get(args, "client-password-file");
    if (client_pwfile) {
        if (gateway_password_generate(client_password) < 0) {
            fprintf(stderr, "hoopctl gateway: cannot generate a password (no randomness)\n");
            free(password);
            return CLI_EXIT_FAILURE;
        }
        cfg.client_password = client_password;
    }

    struct gateway_cli c = {0};
    const char *policy_path = cli_get(args, "policy");
    if (policy_path) {
        char perr[POLICY_ERR_MAX];
        c.policy = strcmp(policy_path, "default") == 0 ? policy_load_default() : policy_load_file(policy_path, perr);
        if (!c.policy) {
            fprintf(stderr, "hoopctl gateway: policy %s: %s\n", policy_path,
                    strcmp(policy_path, "default") == 0 ? "cannot load the default policy" : perr);
            free(password);
            return CLI_EXIT_FAILURE;
        }
        catalog_conninfo(&c, &cfg.upstream, password);
        cfg.hooks.row_description = policy_row_description;
        cfg.hooks.copy_out = policy_copy_out;
        cfg.hooks.error_redact = policy_error_redact;
        cfg.hooks.notification_redact = policy_notification_redact;
        cfg.hooks.idle = policy_idle;
    }
    const char *audit = cli_get(args, "audit-log");
    if (audit) {
        c.audit = fopen(audit, "a");
        if (!c.audit) {
            fprintf(stderr, "hoopctl gateway: cannot open the audit log %s: %s\n", audit, strerror(errno));
            free(password);
            policy_free(c.policy);
            return CLI_EXIT_FAILURE;
        }
    }
    if (audit || policy_path) {
        cfg.hooks.user = &c;
        cfg.hooks.session_start = hook_session_start;
        cfg.hooks.session_end = hook_session_end;
        cfg.hooks.statement = hook_statement;
    }
    int rc = CLI_EXIT_OK;
    c.base = event_base_new();
    c.gw = c.base ? gateway_new(c.base, &cfg, err, sizeof err) : NULL;
    if (password) {
        util_secure_zero(password, strlen(password));
        free(password);
    }
    if (!c.gw || (socket_dir && gateway_listen_unix(c.gw, socket_dir, err, sizeof err) < 0)) {
        fprintf(stderr, "hoopctl gateway: %s\n", c.base ? err : "cannot create the event loop");
        rc = CLI_EXIT_FAILURE;
        goto out;
    }
    if (client_pwfile) {
        int wrc = 0;
        if (strcmp(client_pwfile, "-") == 0) {
            printf("%s\n", client_password);
            wrc = fflush(stdout) == 0 ? 0 : -1;
        } else {
            size_t n = strlen(client_password);
            client_password[n] = '\n';
            wrc = config_write_atomic(client_pwfile, client_password, n + 1, 0600);
        }
        util_secure_zero(client_password, sizeof client_password);
        if (wrc < 0) {
            fprintf(stderr, "hoopctl gateway: cannot write the client password to %s\n", client_pwfile);
            rc = CLI_EXIT_FAILURE;
            goto out;
        }
        fprintf(stderr, "hoopctl gateway: clients must log in with the password made for this run (%s)\n",
                strcmp(client_pwfile, "-") == 0 ? "printed on standard output" : client_pwfile);
    }
    struct event *sigint = evsignal_new(c.base, SIGINT, on_signal, &c);
    struct event *sigterm = evsignal_new(c.base, SIGTERM, on_signal, &c);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    fprintf(stderr, "hoopctl gateway: listening on %s\n", gateway_listen_address(c.gw));
    if (gateway_socket_path(c.gw))
        fprintf(stderr, "hoopctl gateway: listening on %s\n", gateway_socket_path(c.gw));
    event_base_dispatch(c.base);
    event_free(sigint);
    event_free(sigterm);
out:
    util_secure_zero(client_password, sizeof client_password);
    gateway_free(c.gw);
    if (c.base)
        event_base_free(c.base);
    if (c.audit)
        fclose(c.audit);
    while (c.sessions)
        policy_session_end(&c, c.sessions->id);
    util_secure_zero(c.catalog_conninfo, sizeof c.catalog_conninfo);
    policy_free(c.policy);
    return rc;
}

static const struct cli_option gateway_options[] = {
    {"listen", 0, "HOST:PORT", "loopback address to accept clients on", CLI_COMPLETE_NONE, NULL},
    {"socket-dir", 0, "DIR", "also listen on the Unix socket DIR/.s.PGSQL.<port> (DIR: 0700, yours)",
     CLI_COMPLETE_DIR, NULL},
    {"upstream", 0, "CONNINFO", "upstream 'host=H port=P dbname=D user=U sslmode=M sslrootcert=F'",
     CLI_COMPLETE_NONE, NULL},
    {"upstream-password-file", 0, "FILE", "file holding the upstream password (first line)",
     CLI_COMPLETE_FILE, NULL},
    {"tls-cert", 0, "FILE", "certificate for TLS to clients (with --tls-key)", CLI_COMPLETE_FILE, NULL},
    {"tls-key", 0, "FILE", "private key for TLS to clients", CLI_COMPLETE_FILE, NULL},
    {"max-message-size", 0, "BYTES", "largest protocol message accepted (default 1 GiB)",
     CLI_COMPLETE_NONE, NULL},
    {"client-password-file", 0, "FILE",
     "make a password for this run, write it to FILE ('-': stdout) and require it from clients",
     CLI_COMPLETE_FILE, NULL},
    {"threads", 0, "N", "event loops, one per thread, that take clients in turn (default 1; not with "
     "--policy or --audit-log)", CLI_COMPLETE_NONE, NULL},
    {"audit-log", 0, "FILE", "append one JSON line per session event and statement", CLI_COMPLETE_FILE, NULL},
    {"policy", 0, "FILE", "enforce this policy file (or \"default\"): decisions and masking", CLI_COMPLETE_FILE,
     NULL},
    {0},
};

const struct cli_command cli_cmd_gateway = {
    .name = "gateway",
    .summary = "Run the PostgreSQL wire-protocol gateway on its own (offline mode)",
    .usage = "--listen HOST:PORT [--socket-dir DIR] --upstream CONNINFO [options]",
    .description = "Relays PostgreSQL clients on a loopback port to one upstream server. The upstream\n"
                   "password comes from --upstream-password-file or HOOPCTL_UPSTREAM_PASSWORD.\n"
                   "Clients are trusted unless --client-password-file makes a password for the run.",
    .options = gateway_options,
    .min_args = 0,
    .max_args = 0,
    .run = gateway_run,
};
