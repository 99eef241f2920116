/* gateway.c — `hoopctl gateway`: run the wire-protocol gateway on its own
 * (offline mode) in front of one upstream PostgreSQL, optionally writing a
 * minimal JSON-lines audit of every client statement and enforcing a local
 * policy file (decisions and masking; review is refused: no review server). */
#include "hoopctl/cli.h"
#include "hoopctl/config.h"
#include "hoopctl/gateway.h"
#include "hoopctl/log.h"
#include "hoopctl/policy.h"
#include "hoopctl/policy_guard.h"
#include "hoopctl/util.h"

#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct gateway_cli;

/* One client session's policy state (with --policy). */
struct gateway_policy_session {
    uint64_t id;
    struct policy_guard guard;
    struct gateway_policy_session *next;
};

struct gateway_cli {
    FILE *audit;
    struct event_base *base;
    struct gateway *gw;
    struct policy *policy;             /* NULL without --policy */
    char catalog_conninfo[2048 + 2 * UTIL_SECRET_MAX]; /* libpq conninfo of the catalog side connection */
    /* With --threads, hooks run on every loop at once (each session's on its
     * own loop): the lock guards the list, not what a session holds. */
    pthread_mutex_t lock;
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

/* A session's state, used on its own loop only (which alone ends it). */
static struct gateway_policy_session *policy_session_find(struct gateway_cli *c, uint64_t id)
{
    pthread_mutex_lock(&c->lock);
    struct gateway_policy_session *s = c->sessions;
    while (s && s->id != id)
        s = s->next;
    pthread_mutex_unlock(&c->lock);
    return s;
}

/* The session's guard, or NULL when it has none (its statements are then
 * refused and its results fail: fail closed). */
static struct policy_guard *policy_guard_of(struct gateway_cli *c, uint64_t id)
{
    struct gateway_policy_session *s = policy_session_find(c, id);
    return s ? &s->guard : NULL;
}

static void policy_session_begin(struct gateway_cli *c, const struct gateway_session_info *si)
{
    struct gateway_policy_session *s = calloc(1, sizeof *s);
    char label[48];
    snprintf(label, sizeof label, "session %llu", (unsigned long long)si->id);
    if (!s || policy_guard_init(&s->guard, c->policy, c->catalog_conninfo, "gateway", label) < 0) {
        free(s);
        log_error("gateway", "%s: out of memory for its policy state", label);
        return; /* its statements are refused: no state to judge them with */
    }
    if (si->search_path_set)
        policy_session_mark_search_path(s->guard.tracker);
    policy_guard_set_client(&s->guard, si->application_name); /* pg_dump: no COPY of masked data */
    s->id = si->id;
    pthread_mutex_lock(&c->lock);
    s->next = c->sessions;
    c->sessions = s;
    pthread_mutex_unlock(&c->lock);
}

static void policy_session_end(struct gateway_cli *c, uint64_t id)
{
    pthread_mutex_lock(&c->lock);
    struct gateway_policy_session **pp = &c->sessions;
    while (*pp && (*pp)->id != id)
        pp = &(*pp)->next;
    struct gateway_policy_session *s = *pp;
    if (s)
        *pp = s->next;
    pthread_mutex_unlock(&c->lock);
    if (s) {
        policy_guard_free(&s->guard);
        free(s);
    }
}

/* Decide on a statement; false with the refusal filled when it must not run. */
static bool policy_statement(struct policy_guard *g, const struct gateway_statement *st, uint64_t id,
                             struct gateway_refusal *ref)
{
    snprintf(ref->sqlstate, sizeof ref->sqlstate, "42501");
    if (!g) {
        snprintf(ref->message, sizeof ref->message, "hoopctl: this session has no policy state (fail closed)");
        return false;
    }
    /* The plans of results still streaming stay: the next result replaces them. */
    const struct policy_decision *d = &g->decision;
    policy_guard_set_portals(g, st->portal_exists, st->portal_ctx, st->portal_closes);
    if (policy_guard_decide(g, st->kind, st->sql, NULL) < 0) {
        snprintf(ref->message, sizeof ref->message, "hoopctl: %s", d->message);
        return false;
    }
    policy_guard_forget_names(g, &ref->forget);
    if (d->action == POLICY_DENY || d->action == POLICY_REVIEW) {
        snprintf(ref->message, sizeof ref->message, "hoopctl: statement %s by rule %s: %s",
                 d->action == POLICY_DENY ? "refused" : "needs a review, which the offline gateway cannot hold,",
                 d->rule_name[0] ? d->rule_name : "default", d->message);
        return false;
    }
    if (policy_guard_admit(g, NULL, id) < 0) {
        snprintf(ref->message, sizeof ref->message, "hoopctl: out of memory while checking the statement");
        return false;
    }
    return true;
}

static bool policy_row_description(void *user, const struct gateway_session_info *si,
                                   const struct pgwire_column *cols, int ncols, struct gateway_row_filter *f)
{
    struct gateway_cli *c = user;
    if (!c->policy || ncols <= 0)
        return false;
    policy_guard_row_description(policy_guard_of(c, si->id), si, cols, ncols, false, f);
    return true;
}

static bool policy_copy_out(void *user, const struct gateway_session_info *si, int ncols, int format,
                            struct gateway_copy_filter *f)
{
    (void)format;
    struct gateway_cli *c = user;
    if (!c->policy)
        return false;
    policy_guard_copy_out(policy_guard_of(c, si->id), si, ncols, f);
    return true;
}

static bool policy_error_redact(void *user, const struct gateway_session_info *si, const char *sqlstate)
{
    struct policy_guard *g = policy_guard_of(user, si->id);
    return !g || policy_guard_error_redact(g, sqlstate);
}

static bool policy_notification_redact(void *user, const struct gateway_session_info *si)
{
    struct policy_guard *g = policy_guard_of(user, si->id);
    return !g || policy_guard_notification_redact(g);
}

static int policy_text_mask(void *user, const struct gateway_session_info *si, const char *text, size_t len,
                            char **out, size_t *outlen)
{
    struct policy_guard *g = policy_guard_of(user, si->id);
    return g ? policy_guard_text_mask(g, text, len, out, outlen) : -1;
}

static void policy_idle(void *user, const struct gateway_session_info *si)
{
    struct policy_guard *g = policy_guard_of(user, si->id);
    if (g)
        policy_guard_idle(g, si->txn_status);
}

/* ---- hooks ---------------------------------------------------------------- */

static void hook_session_start(void *user, const struct gateway_session_info *si)
{
    struct gateway_cli *c = user;
    if (c->policy)
        policy_session_begin(c, si);
    audit_line(user, "session_start", si, json_pack("{s:I}", "backend_pid", (json_int_t)si->backend_pid));
}

static void hook_session_end(void *user, const struct gateway_session_info *si)
{
    struct gateway_cli *c = user;
    if (c->policy)
        policy_session_end(c, si->id);
    audit_line(user, "session_end", si, NULL);
}

/* A binary parameter of a simple type, appended as text; false when it is not one. */
static bool binary_as_text(json_t *params, uint32_t type_oid, const uint8_t *v, size_t len)
{
    struct buf b = {0};
    bool ok = pgwire_binary_to_text(type_oid, v, len, &b) == 0;
    if (ok)
        json_array_append_new(params, audit_text(b.data ? b.data : (const uint8_t *)"", b.len));
    buf_free(&b);
    return ok;
}

static enum gateway_verdict hook_statement(void *user, const struct gateway_session_info *si,
                                           const struct gateway_statement *st, uint64_t hold_id,
                                           struct gateway_refusal *refusal)
{
    struct gateway_cli *c = user;
    struct policy_guard *g = c->policy ? policy_guard_of(c, si->id) : NULL; /* one look-up a statement */
    bool allowed = !c->policy || policy_statement(g, st, hold_id, refusal);
    if (!c->audit)
        return allowed ? GATEWAY_ALLOW : GATEWAY_REFUSE;
    static const char *const kinds[] = {"query", "execute", "function_call"};
    /* Literals and values stay out of the record with redact_literals, or
     * when the text may carry a password. */
    struct policy_redaction red;
    if (policy_audit_redaction(st->sql, c->policy && policy_redacts_literals(c->policy), &red) < 0) {
        red.changed = red.all_params = true; /* out of memory: nothing of it is kept */
        red.text = NULL;
    }
    json_t *params = json_array();
    for (int i = 0; params && i < st->nparams; i++) {
        if (!st->param_values[i])
            json_array_append_new(params, json_null());
        else if (policy_param_is_secret(&red, i) ||
                 policy_value_holds_secret((const char *)st->param_values[i], (size_t)st->param_lengths[i]))
            json_array_append_new(params, json_string("(redacted)"));
        else if (st->param_formats && st->param_formats[i] == 1 && i < st->ntypes && st->param_types[i] &&
                 binary_as_text(params, st->param_types[i], st->param_values[i], (size_t)st->param_lengths[i]))
            ; /* a simple type, as PostgreSQL prints it */
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
        if (st->sql && red.changed) {
            audit_set_text(extra, "sql", red.text ? red.text : "-- (statement withheld: out of memory)");
            json_object_set_new(extra, "redacted", json_true());
        } else if (st->sql)
            audit_set_text(extra, "sql", st->sql);
        else
            json_object_set_new(extra, "sql", json_null());
        if (st->portal_name)
            audit_set_text(extra, "portal", st->portal_name);
        if (st->converted_from) /* sql is UTF-8, converted from what the client sent */
            json_object_set_new(extra, "client_encoding", json_string(st->converted_from));
    }
    if (extra && g) {
        json_object_set_new(extra, "decision", json_string(policy_action_name(g->decision.action)));
        json_object_set_new(extra, "rule", json_string(g->decision.rule_name));
    }
    if (extra && !allowed) /* a parse error quotes the text near it, which may be a redacted value */
        json_object_set_new(extra, "error",
                            json_string(red.changed && g && strcmp(g->decision.rule_name, "parse-error") == 0
                                            ? "the statement does not parse (the parser's message is left out)"
                                            : refusal->message));
    audit_line(user, "statement", si, extra);
    free(red.text);
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

/* The first line of the file; 0, or -1 with a message (a password longer
 * than UTIL_SECRET_MAX is refused, never cut short). */
static int read_password_file(const char *path, char **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read the password file %s: %s", path, strerror(errno));
        return -1;
    }
    bool too_long = false;
    *out = util_read_secret_line(f, UTIL_SECRET_MAX, &too_long);
    int rerr = ferror(f) ? errno : 0;
    fclose(f);
    if (too_long)
        snprintf(err, errlen, "the password in %s is longer than %d bytes", path, UTIL_SECRET_MAX);
    else if (!*out)
        snprintf(err, errlen, "cannot read the password file %s: %s", path, rerr ? strerror(rerr) : "it is empty");
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
    conninfo_put(o, len, "channel_binding", pgwire_channel_binding_name(up->channel_binding));
    conninfo_put(o, len, "application_name", "hoopctl catalog");
    if (password)
        conninfo_put(o, len, "password", password);
}

int cli_get_max_sessions(const struct cli_args *args, size_t *out)
{
    const char *v = cli_get(args, "max-sessions");
    *out = 0;
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < 1 || n > CLI_MAX_SESSIONS)
        return -1;
    *out = (size_t)n;
    return 0;
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
    /* Clients are trusted: past loopback that would hand the upstream role
     * to whoever reaches the port, so there a password is required. */
    bool loopback = strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0;
    if (!loopback && !cli_get(args, "client-password-file"))
        return cli_usage_error(args->cmd, "--listen on an address that is not loopback needs --client-password-file "
                                          "(without it, anyone who reaches the port gets the upstream role)");
    if (pgwire_conninfo_parse(upstream, &cfg.upstream, err, sizeof err) < 0)
        return cli_usage_error(args->cmd, err);
    const char *socket_dir = cli_get(args, "socket-dir");
    if (socket_dir && gateway_check_socket_dir(socket_dir, err, sizeof err) < 0)
        return cli_usage_error(args->cmd, err);
    const struct {
        const char *name;
        unsigned long long max;
        size_t *dst;
    } sizes[] = {{"max-message-size", PGWIRE_DEFAULT_MAX_MESSAGE, &cfg.max_message_size},
                 {"max-held-bytes", 1ull << 40, &cfg.max_held_bytes}};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        const char *v = cli_get(args, sizes[i].name);
        if (!v)
            continue;
        char *end;
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (errno || *end || v[0] == '-' || n < 1024 || n > sizes[i].max) {
            char msg[128];
            snprintf(msg, sizeof msg, "--%s takes bytes, 1024 to %llu", sizes[i].name, sizes[i].max);
            return cli_usage_error(args->cmd, msg);
        }
        *sizes[i].dst = (size_t)n;
    }
    /* One loop per CPU by default (at most GATEWAY_AUTO_THREADS): a loop
     * serves its sessions one at a time, so with one loop the others wait
     * while it is busy or preempted (tests/bench/cpu.sh: 13-18 % of the
     * machine idle at pgbench -c 4 on one loop, none on two). */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cfg.threads = ncpu < 1 ? 1 : ncpu > GATEWAY_AUTO_THREADS ? GATEWAY_AUTO_THREADS : (int)ncpu;
    const char *threads = cli_get(args, "threads");
    if (threads) {
        char *end;
        errno = 0;
        long v = strtol(threads, &end, 10);
        if (errno || *end || v < 1 || v > GATEWAY_MAX_THREADS)
            return cli_usage_error(args->cmd, "--threads takes 1 to 16");
        cfg.threads = (int)v;
    }
    if (cli_get_max_sessions(args, &cfg.max_sessions) < 0)
        return cli_usage_error(args->cmd, "--max-sessions takes 1 to 1000000");
    cfg.tls_cert_file = cli_get(args, "tls-cert");
    cfg.tls_key_file = cli_get(args, "tls-key");
    if (!cfg.tls_cert_file != !cfg.tls_key_file)
        return cli_usage_error(args->cmd, "--tls-cert and --tls-key go together");

    char *password = NULL;
    const char *pwfile = cli_get(args, "upstream-password-file");
    if (pwfile) {
        if (read_password_file(pwfile, &password, err, sizeof err) < 0) {
            fprintf(stderr, "hoopctl gateway: %s\n", err);
            return CLI_EXIT_FAILURE;
        }
    } else if (getenv("HOOPCTL_UPSTREAM_PASSWORD") && *getenv("HOOPCTL_UPSTREAM_PASSWORD")) {
        if (strlen(getenv("HOOPCTL_UPSTREAM_PASSWORD")) > UTIL_SECRET_MAX) {
            fprintf(stderr, "hoopctl gateway: the password in HOOPCTL_UPSTREAM_PASSWORD is longer than %d bytes\n",
                    UTIL_SECRET_MAX);
            return CLI_EXIT_FAILURE;
        }
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
    pthread_mutex_init(&c.lock, NULL);
    cfg.hooks_thread_safe = true; /* the session list is locked; the policy's cache locks itself */
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
        if (policy_has_detectors(c.policy))
            cfg.hooks.text_mask = policy_text_mask;
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
    if (cfg.upstream.sslrootcert_system)
        fprintf(stderr, "hoopctl gateway: the upstream's certificate is checked against the system trust "
                        "store (%s): no sslrootcert in --upstream\n", cfg.upstream.sslrootcert);
    fprintf(stderr, "hoopctl gateway: listening on %s (%d event loop%s)\n", gateway_listen_address(c.gw),
            cfg.threads, cfg.threads == 1 ? "" : "s");
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
    pthread_mutex_destroy(&c.lock);
    return rc;
}

static const struct cli_option gateway_options[] = {
    {"listen", 0, "HOST:PORT", "address to accept clients on (past loopback: with --client-password-file)",
     CLI_COMPLETE_NONE, NULL},
    {"socket-dir", 0, "DIR", "also listen on the Unix socket DIR/.s.PGSQL.<port> (DIR: 0700, yours)",
     CLI_COMPLETE_DIR, NULL},
    {"upstream", 0, "CONNINFO", "upstream 'host=H port=P dbname=D user=U sslmode=M sslrootcert=F channel_binding=B'",
     CLI_COMPLETE_NONE, NULL},
    {"upstream-password-file", 0, "FILE", "file holding the upstream password (first line)",
     CLI_COMPLETE_FILE, NULL},
    {"tls-cert", 0, "FILE", "certificate for TLS to clients (with --tls-key)", CLI_COMPLETE_FILE, NULL},
    {"tls-key", 0, "FILE", "private key for TLS to clients", CLI_COMPLETE_FILE, NULL},
    {"max-message-size", 0, "BYTES", "largest protocol message accepted (default 1 GiB)",
     CLI_COMPLETE_NONE, NULL},
    {"max-held-bytes", 0, "BYTES",
     "with --policy or --audit-log: SQL, parameters and names a session's statements and portals may hold "
     "(default 256 MiB, or --max-message-size when larger)",
     CLI_COMPLETE_NONE, NULL},
    {"client-password-file", 0, "FILE",
     "make a password for this run, write it to FILE ('-': stdout) and require it from clients",
     CLI_COMPLETE_FILE, NULL},
    {"max-sessions", 0, "N",
     "sessions at a time; one more gets SQLSTATE 53300 (default: what ulimit -n leaves room for, 293 at 1024)",
     CLI_COMPLETE_NONE, NULL},
    {"threads", 0, "N", "event loops, one per thread, that take clients in turn (default: one per CPU, at most 4)",
     CLI_COMPLETE_NONE, NULL},
    {"audit-log", 0, "FILE", "append one JSON line per session event and statement", CLI_COMPLETE_FILE, NULL},
    {"policy", 0, "FILE", "enforce this policy file (or \"default\"): decisions and masking", CLI_COMPLETE_FILE,
     NULL},
    {0},
};

const struct cli_command cli_cmd_gateway = {
    .name = "gateway",
    .summary = "Run the PostgreSQL wire-protocol gateway on its own (offline mode)",
    .usage = "--listen HOST:PORT [--socket-dir DIR] --upstream CONNINFO [options]",
    .description = "Relays PostgreSQL clients to one upstream server. The upstream password comes\n"
                   "from --upstream-password-file or HOOPCTL_UPSTREAM_PASSWORD. Clients are trusted\n"
                   "unless --client-password-file makes a password for the run; an address that is\n"
                   "not loopback needs one.",
    .options = gateway_options,
    .min_args = 0,
    .max_args = 0,
    .run = gateway_run,
};
